"""Train with every value on one clock: lr, weight decay, beta2, gradient clipping, batch size.

`every_value.toml` schedules the learning rate (following the batch size by the
square-root rule), the weight decay, AdamW's beta2 (``[group."betas[1]"]``) and
the gradient-clip norm (``[loop.grad_clip]``), while the batch size doubles by
stages. A tiny language model trains with it on the CPU: each step takes its
batch size from ``scheduler.batch_size`` and its clip norm from
``scheduler.value("grad_clip")``; the scheduler writes lr, weight decay and beta2
into AdamW's groups. After every step, ``scheduler.metrics()`` reports what that
step used, and the script checks it against what the optimizer really held and
against the schedule itself. A second run stops halfway, saves a checkpoint and
resumes in fresh objects; every value after the resume must equal the
uninterrupted run's to the bit. It exits with status 1 if anything differs.

    python examples/every_value.py --out every-value-trained.png
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

import torch

import paramsched
from paramsched.torch import ParamScheduler

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEDULE = os.path.join(HERE, "every_value.toml")
VOCAB, WIDTH = 64, 32
torch.set_num_threads(1)  # a model this small runs fastest on one thread


class TinyLM(torch.nn.Module):
    """A next-token model that sees the current token and its position."""

    def __init__(self, length: int):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.position = torch.nn.Parameter(torch.zeros(length, WIDTH))
        self.mix = torch.nn.Linear(WIDTH, WIDTH)
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.lm_head = torch.nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens):
        hidden = self.embed(tokens) + self.position[: tokens.shape[1]]
        return self.lm_head(self.norm(hidden + torch.relu(self.mix(hidden))))


def batch(step: int, size: int, length: int) -> torch.Tensor:
    """Synthetic text: each sequence counts up by a stride, modulo the vocabulary."""
    generator = torch.Generator().manual_seed(step)
    start = torch.randint(0, VOCAB, (size, 1), generator=generator)
    stride = torch.randint(1, 4, (size, 1), generator=generator)
    return (start + stride * torch.arange(length + 1)) % VOCAB


def build(schedule):
    """A fresh model (the same weights every time), AdamW over two named groups, and
    the scheduler."""
    torch.manual_seed(0)
    model = TinyLM(schedule.run.seq_length)
    decay = [p for name, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for name, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "name": "decay"},
            {"params": no_decay, "name": "no_decay", "wd_mult": 0.0},
        ]
    )
    return model, optimizer, ParamScheduler(optimizer, schedule)


def train(model, optimizer, scheduler, first: int, last: int) -> list[dict]:
    """Steps first..last-1; returns, for each step, the values it used as the optimizer
    held them (and the clip norm the loop applied), checked against `metrics()`."""
    schedule, used = scheduler.schedule, []
    length = schedule.run.seq_length
    for step in range(first, last):
        position = scheduler.num_steps
        tokens = batch(step, scheduler.batch_size, length)
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1)
        )
        loss.backward()
        clip = scheduler.value("grad_clip")
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        held = {"grad_clip": clip, "batch_size": tokens.shape[0]}
        for group in optimizer.param_groups:  # what optimizer.step() reads now
            held[f"lr/{group['name']}"] = group["lr"]
            held[f"weight_decay/{group['name']}"] = group["weight_decay"]
            held[f"betas[1]/{group['name']}"] = group["betas"][1]
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        if scheduler.metrics() != held:
            sys.exit(f"step {step}: metrics() {scheduler.metrics()} != what it used {held}")
        expected = {
            "lr/decay": schedule.lr(position),
            "grad_clip": schedule.value("grad_clip", position),
            "betas[1]/decay": schedule.value("betas[1]", position),
            "weight_decay/decay": schedule.wd(position),
        }
        if any(held[name] != value for name, value in expected.items()):
            sys.exit(f"step {step}: the optimizer held {held}, the schedule says {expected}")
        used.append({**held, "loss": loss.item(), "tokens": position * length})
    return used


def run(steps: int, stop: int):
    """An uninterrupted run, and one that stops at `stop` and resumes from a checkpoint."""
    schedule = paramsched.load_schedule(SCHEDULE)
    straight = train(*build(schedule), 0, steps)
    model, optimizer, scheduler = build(schedule)
    first = train(model, optimizer, scheduler, 0, stop)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "checkpoint.pt")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            path,
        )
        model, optimizer, scheduler = build(schedule)  # as a new process would
        checkpoint = torch.load(path, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
    return straight, first + train(model, optimizer, scheduler, stop, steps)


def plot(path: str, straight: list[dict], stop: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("lr/decay", "learning rate"),
        ("batch_size", "batch size"),
        ("weight_decay/decay", "weight decay"),
        ("betas[1]/decay", "beta2"),
        ("grad_clip", "grad-clip norm"),
        ("loss", "loss"),
    ]
    figure, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(8, 10))
    tokens = [used["tokens"] / 1e3 for used in straight]
    for axis, (name, label) in zip(axes, rows):
        axis.plot(tokens, [used[name] for used in straight], linewidth=1.5)
        axis.axvline(tokens[stop], color="gray", linestyle=":", linewidth=1)
        axis.set_ylabel(label)
    axes[-1].set_xlabel("tokens consumed before the step (K); dotted: where the second run resumed")
    axes[0].set_title("every_value.toml as trained: the values each step used")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write a plot of the values each step used (PNG)")
    args = parser.parse_args(argv)
    schedule = paramsched.load_schedule(SCHEDULE)
    run_ = schedule.run
    steps = run_.step_at_samples(run_.total_samples)
    stop = steps // 2
    straight, resumed = run(steps, stop)
    for used in straight[:: max(1, steps // 6)]:
        print(
            f"{used['tokens']:>7,} tokens  batch {used['batch_size']:>2}  "
            f"lr {used['lr/decay']:.3e}  wd {used['weight_decay/decay']:.3f}  "
            f"beta2 {used['betas[1]/decay']:.4f}  clip {used['grad_clip']:.3f}  "
            f"loss {used['loss']:.3f}"
        )
    differing = [i for i, (a, b) in enumerate(zip(straight, resumed)) if a != b]
    print(
        f"{steps} steps; resumed at step {stop}: "
        + (
            "every value and loss equal to the uninterrupted run's"
            if not differing
            else f"{len(differing)} steps differ, the first at step {differing[0]}"
        )
    )
    if not all(math.isfinite(used["loss"]) for used in straight):
        print("the loss is not finite", file=sys.stderr)
        return 1
    if args.out:
        plot(args.out, straight, stop)
        print(f"wrote {args.out}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
