"""The multi-power law's accuracy on the paper's split of its published 25M curves.

Fits on ``cosine_24000``, ``constant_24000`` and ``wsdcon_9`` (nothing in the fit looks
at the other curves), predicts the other six, and prints each curve's R², MAE, RMSE,
PredE and WorstE and their averages, beside the paper's. Run
``python benchmarks/predict_accuracy.py`` (``--law annealing`` for the other law).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from paramsched.predict import LossRun, fit, read_csv

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "multi-power-law"
FIT = ("cosine_24000", "constant_24000", "wsdcon_9")
HELD_OUT = (
    "constant_72000",
    "cosine_72000",
    "wsd_20000_24000",
    "wsdld_20000_24000",
    "wsdcon_3",
    "wsdcon_18",
)
METRICS = ("R2", "MAE", "RMSE", "PredE", "WorstE")
#: The paper's averaged figures on the six held-out curves (25M model).
PAPER = {"R2": 0.9988, "MAE": 0.00376, "RMSE": 0.00465, "PredE": 0.00110, "WorstE": 0.00409}
#: The paper's fitted parameters, as its published code holds them.
PAPER_PARAMS = dict(
    L0=3.04045406,
    A=0.52468604,
    alpha=0.50786857,
    B=363.78751622,
    C=2.06560812,
    beta=0.58279013,
    gamma=0.64142257,
)
WARMUP, PEAK, LOW = 2160, 3e-4, 3e-5


def rates(name: str) -> np.ndarray:
    """The exact per-step rates of the schedule `name` (see the data's SOURCE.md)."""
    kind, *numbers = name.split("_")
    warm = np.linspace(0, PEAK, WARMUP)
    if kind in ("constant", "cosine"):
        total = int(numbers[0])
        t = np.arange(WARMUP, total)
        if kind == "constant":
            return np.concatenate([warm, np.full(total - WARMUP, PEAK)])
        return np.concatenate(
            [warm, LOW + 0.5 * (PEAK - LOW) * (1 + np.cos(np.pi * (t - WARMUP) / (total - WARMUP)))]
        )
    if kind == "wsdcon":
        low = int(numbers[0]) * 1e-5
        return np.concatenate([warm, np.full(8000 - WARMUP, PEAK), np.full(8000, low)])
    t = np.arange(20000, 24000)
    r = (t - 20000) / 4000
    decay = PEAK * (1 - r) + LOW * r if kind == "wsdld" else PEAK ** ((24000 - t) / 4000) * LOW**r
    return np.concatenate([warm, np.full(20000 - WARMUP, PEAK), decay])


def run(name: str) -> LossRun:
    """The curve `name` with its exact rates; points at step >= 24,000 of the 24,000-step
    files are dropped, as the paper's evaluation drops them."""
    logged = read_csv(DATA / f"{name}.csv")
    lrs = rates(name)
    keep = logged.steps < len(lrs)
    return LossRun.of(lrs, logged.steps[keep], logged.losses[keep], name)


def metrics(predicted: np.ndarray, loss: np.ndarray) -> dict:
    error = np.abs(predicted - loss)
    return {
        "R2": 1 - np.sum((loss - predicted) ** 2) / np.sum((loss - loss.mean()) ** 2),
        "MAE": error.mean(),
        "RMSE": np.sqrt(np.mean(error**2)),
        "PredE": np.mean(error / loss),
        "WorstE": np.max(error / loss),
    }


def held_out_figures(law, exact: bool = True) -> tuple[dict, dict]:
    """Each held-out curve's metrics under `law`, and their averages."""
    each = {}
    for name in HELD_OUT:
        r = run(name)
        each[name] = metrics(law.loss(r.lrs, r.steps, exact=exact), r.losses)
    average = {m: float(np.mean([each[n][m] for n in HELD_OUT])) for m in METRICS}
    return each, average


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", default="multi-power", choices=("multi-power", "annealing"))
    options = parser.parse_args(argv)
    start = time.perf_counter()
    law = fit([run(name) for name in FIT], law=options.law)
    seconds = time.perf_counter() - start
    ridge = f", ridge {law.fitted['ridge']:g}" if "ridge" in law.fitted else ""
    print(f"fitted in {seconds:.2f} s{ridge}: {law.describe()}")
    each, average = held_out_figures(law)
    print("curve".ljust(20) + "".join(m.rjust(10) for m in METRICS))
    for name, figures in [*each.items(), ("average", average), ("paper", PAPER)]:
        print(name.ljust(20) + "".join(f"{figures[m]:10.5f}" for m in METRICS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
