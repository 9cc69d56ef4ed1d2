"""Predict a schedule's loss before training it: a tiny language model on the CPU.

The tiny transformer of ``train_tiny_lm.py`` learns noisy synthetic text (a counting
rule, with a share of the tokens random, so the loss has a floor) with AdamW under
three schedules: constant, cosine and WSD. The multi-power law is fitted on the
constant and cosine runs' evaluation losses and predicts the WSD run's; then
`paramsched.predict.optimize` derives a schedule, which is trained too. The script
prints the predicted and the actual final loss of each and draws them (--out).

    python examples/predict_tiny_lm.py --out docs/predict_tiny_lm.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tomllib
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_tiny_lm import LENGTH, VOCAB, TinyLM  # noqa: E402

from paramsched.predict import LossRun, fit, optimize, rates_of  # noqa: E402
from paramsched.recipe import schedule_from_data  # noqa: E402
from paramsched.torch import ParamScheduler  # noqa: E402

BATCH, NOISE, PEAK, EVERY = 32, 0.3, 1e-2, 10


def batch(seed: int) -> torch.Tensor:
    """Sequences that count up by a stride (mod the vocabulary), a share of tokens random."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (BATCH, 1), generator=generator)
    stride = torch.randint(1, 4, (BATCH, 1), generator=generator)
    tokens = (start + stride * torch.arange(LENGTH + 1)) % VOCAB
    noise = torch.rand(tokens.shape, generator=generator) < NOISE
    return torch.where(noise, torch.randint(0, VOCAB, tokens.shape, generator=generator), tokens)


EVAL = [batch(10**6 + i) for i in range(4)]


def loss_of(model, tokens) -> torch.Tensor:
    logits = model(tokens[:, :-1])
    return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))


def schedule(steps: int, warmup: int, phases: str):
    text = (
        f'[run]\nglobal_batch_size = 1\ntotal = "{steps} steps"\n[lr]\nmax_lr = {PEAK}\n'
        f'min_lr = {PEAK / 10}\nphases = [{{ shape = "linear", to = "max_lr", until = '
        f'"{warmup} steps" }}, {phases}]\n'
    )
    return schedule_from_data(tomllib.loads(text))


def train(plan, steps: int) -> LossRun:
    """Trains a fresh model (the same initial weights every time) under `plan`; the
    evaluation loss every EVERY steps, with the rates each step used."""
    torch.manual_seed(0)
    model = TinyLM()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    scheduler = ParamScheduler(optimizer, plan)
    points, losses = [], []
    for step in range(steps):
        loss_of(model, batch(step)).backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        if (step + 1) % EVERY == 0:
            with torch.no_grad():
                points.append(step)
                losses.append(float(np.mean([loss_of(model, b).item() for b in EVAL])))
    return LossRun.of(rates_of(plan, steps), points, losses)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", help="write a figure of the predicted and actual losses")
    options = parser.parse_args(argv)
    steps = options.steps
    if steps < 100:
        print(f"--steps={steps}; expected at least 100", file=sys.stderr)
        return 2
    warmup = steps // 10
    plans = {
        "constant": schedule(steps, warmup, ""),
        "cosine": schedule(steps, warmup, '{ shape = "cosine", to = "min_lr", until = "100%" }'),
        "wsd": schedule(
            steps,
            warmup,
            f'{{ shape = "constant", until = "{steps * 4 // 5} steps" }}, '
            '{ shape = "linear", to = "min_lr", until = "100%" }',
        ),
    }
    torch.set_num_threads(1)
    runs = {name: train(plan, steps) for name, plan in plans.items()}
    law = fit([runs["constant"], runs["cosine"]])
    print(f"fitted on constant and cosine: {law.describe()}")
    plans["optimized"] = optimize(law, steps, PEAK, warmup, min_lr=0.0)
    runs["optimized"] = train(plans["optimized"], steps)
    print(f"{'schedule':<10} {'predicted':>10} {'actual':>10}  (final evaluation loss)")
    predicted = {}
    for name, run in runs.items():
        predicted[name] = law.loss(run.lrs, run.steps)
        role = " (fitted on)" if name in ("constant", "cosine") else ""
        print(f"{name:<10} {predicted[name][-1]:>10.4f} {run.losses[-1]:>10.4f}{role}")
    if options.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
        for name, run in runs.items():
            line = top.plot(run.lrs, label=name)[0]
            bottom.plot(run.steps, run.losses, ".", color=line.get_color(), markersize=3)
            bottom.plot(run.steps, predicted[name], "-", color=line.get_color(), label=name)
        top.set_ylabel("lr")
        top.legend()
        bottom.set_ylabel("evaluation loss (dots) and predicted (lines)")
        bottom.set_xlabel("steps")
        bottom.set_ylim(
            min(r.losses.min() for r in runs.values()) - 0.05, runs["constant"].losses[5] + 0.1
        )
        figure.tight_layout()
        figure.savefig(options.out)
        print(f"wrote the figure to {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
