"""Train a tiny transformer language model on the CPU with paramsched, stop, resume.

A small causal transformer learns a synthetic sequence rule with AdamW. Its
parameter groups come from rules (no weight decay on biases and norms, a
decoupled learning rate for the embedding and output layers) and its schedule
is WSD (warmup, stable, a minus_sqrt anneal). One run goes straight through; a
second stops halfway, saves a checkpoint, and resumes from it in fresh objects.
The script prints, and plots with --out, that the resumed run's learning rates
equal the uninterrupted run's at every step; it exits with status 1 if not.

    python examples/train_tiny_lm.py --out resume.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch

import paramsched
from paramsched.rules import decoupled_lr, no_weight_decay_on_bias_and_norm
from paramsched.torch import ParamScheduler

VOCAB, WIDTH, LENGTH, BATCH = 64, 32, 16, 16


class TinyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.position = torch.nn.Parameter(torch.zeros(LENGTH, WIDTH))
        layer = torch.nn.TransformerEncoderLayer(
            WIDTH, nhead=4, dim_feedforward=2 * WIDTH, dropout=0.0, batch_first=True
        )
        self.blocks = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.lm_head = torch.nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens):
        mask = torch.nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        hidden = self.blocks(
            self.embed(tokens) + self.position[: tokens.shape[1]], mask=mask, is_causal=True
        )
        return self.lm_head(self.norm(hidden))


def batch(step: int) -> torch.Tensor:
    """Synthetic text: each sequence counts up by a stride, modulo the vocabulary."""
    generator = torch.Generator().manual_seed(step)
    start = torch.randint(0, VOCAB, (BATCH, 1), generator=generator)
    stride = torch.randint(1, 4, (BATCH, 1), generator=generator)
    return (start + stride * torch.arange(LENGTH + 1)) % VOCAB


def model_and_optimizer():
    """A fresh model (the same initial weights every time) and AdamW over its groups."""
    torch.manual_seed(0)
    model = TinyLM()
    rules = {**no_weight_decay_on_bias_and_norm(), **decoupled_lr(model, max_lr=3e-3, min_lr=0.0)}
    return model, torch.optim.AdamW(paramsched.param_groups(model, rules))


def build(total_steps: int):
    model, optimizer = model_and_optimizer()
    schedule = paramsched.Schedule(
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=total_steps // 10,
        lr_decay_steps=total_steps,
        lr_decay_style="WSD",
        wsd_decay_steps=total_steps // 3,
        lr_wsd_decay_style="minus_sqrt",
        start_wd=0.1,
        end_wd=0.1,
    )
    return model, optimizer, ParamScheduler(optimizer, schedule)


def train(model, optimizer, scheduler, first: int, last: int):
    """Steps first..last-1; returns each step's learning rates (by group), loss, and the
    scheduler's clock position the learning rates are for."""
    lrs, losses, positions = [], [], []
    for step in range(first, last):
        positions.append(scheduler.num_steps)
        tokens = batch(step)
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1)
        )
        loss.backward()
        lrs.append([group["lr"] for group in optimizer.param_groups])  # what this step uses
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        losses.append(loss.item())
    return lrs, losses, positions


def save(path, model, optimizer, scheduler) -> None:
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        path,
    )


def restore(path, model, optimizer, scheduler) -> None:
    """Loads a checkpoint of `save` into fresh objects, as a new process would."""
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])


def plot(path, straight, resumed, stop, labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.5))
    curves: dict = {}  # groups that share a learning-rate curve are drawn once
    for index, label in enumerate(labels):
        curves.setdefault(tuple(lr[index] for lr in straight), []).append((index, label))
    for members in curves.values():
        index = members[0][0]
        label = "; ".join(f"group {i} ({text})" for i, text in members)
        (line,) = axis.plot(
            range(len(straight)),
            [lr[index] for lr in straight],
            linewidth=2.5,
            alpha=0.45,
            label=f"uninterrupted: {label}",
        )
        axis.plot(
            range(stop, len(straight)),
            [lr[index] for lr in resumed],
            "o",
            markersize=3,
            color=line.get_color(),
            label="resumed from the checkpoint",
        )
    axis.axvline(stop, color="0.5", linestyle=":", label="checkpoint and resume")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("learning rate")
    axis.set_title("Tiny LM with a WSD schedule: the resumed run follows the uninterrupted one")
    axis.legend(fontsize=7, loc="center left")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="training steps (default 120)")
    parser.add_argument("--out", help="write a plot of both runs' learning rates (PNG)")
    options = parser.parse_args(argv)
    if options.steps < 10:
        parser.error(f"--steps={options.steps}; expected at least 10")
    total, stop = options.steps, options.steps // 2

    straight_lrs, straight_losses, _ = train(*build(total), 0, total)

    model, optimizer, scheduler = build(total)
    first_lrs, _, _ = train(model, optimizer, scheduler, 0, stop)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "checkpoint.pt")
        save(path, model, optimizer, scheduler)
        model, optimizer, scheduler = build(total)  # fresh objects, as in a new process
        restore(path, model, optimizer, scheduler)
    resumed_lrs, resumed_losses, _ = train(model, optimizer, scheduler, stop, total)

    same_lrs = first_lrs + resumed_lrs == straight_lrs
    print(f"trained {total} steps, checkpoint at step {stop}")
    print(
        f"loss: {straight_losses[0]:.3f} -> {straight_losses[-1]:.3f} (uninterrupted), "
        f"{resumed_losses[-1]:.3f} (resumed)"
    )
    print(f"learning rates at step {stop}: {[f'{lr:.3e}' for lr in straight_lrs[stop]]}")
    print(f"resumed run's learning rates equal the uninterrupted run's at every step: {same_lrs}")
    if options.out:
        labels = [
            ", ".join(f"{k}={g[k]:g}" for k in ("max_lr", "wd_mult") if k in g) or "defaults"
            for g in optimizer.param_groups
        ]
        plot(options.out, straight_lrs, resumed_lrs, stop, labels)
        print(f"wrote {options.out}")
    return 0 if same_lrs else 1


if __name__ == "__main__":
    sys.exit(main())
