"""The schedule that minimizes a law's predicted final loss.

After a linear warmup to the peak, the rate is piecewise linear between `PIECES`
evenly spaced knots, each knot at most the one before (``v[j] = min_lr + (peak -
min_lr) * s[1] * ... * s[j]`` with every ``s`` in ``[0, 1]``, so the rate never
rises after the warmup and never goes below ``min_lr``). The knots minimize the law's
predicted loss at the last step (L-BFGS-B, with the law's exact gradient with
respect to every step's rate). The result is a `PhaseSchedule` counting optimizer
steps (``global_batch_size = 1``): a ``linear`` warmup phase, then one ``linear``
phase per piece, written out as a schedule file by `schedule_text`.

Examples:
    >>> from paramsched.predict import MultiPowerLaw, optimize
    >>> law = MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)
    >>> schedule = optimize(law, steps=2000, peak_lr=3e-4, warmup=100, min_lr=0.0)
    >>> float(schedule.lr(100)), float(schedule.lr(2000)) < 3e-4
    (0.0003, True)
"""

from __future__ import annotations

import math

import numpy as np

from .laws import MultiPowerLaw, PredictError
from .runs import rates_of

#: Pieces of the rate after the warmup (fewer on a shorter run).
PIECES = 48
#: Steps the optimizer handles at most.
MAX_STEPS = 10_000_000


def final_loss_gradient(law, lrs: np.ndarray) -> tuple[float, np.ndarray]:
    """The law's predicted loss at the last step of `lrs`, and its gradient with respect
    to every step's rate (steps whose rate is 0 get 0)."""
    p = law.params
    T = len(lrs) - 1
    area = float(np.sum(lrs))
    after = np.cumsum(lrs[::-1])[::-1]  # after[k] = lrs[k] + ... + lrs[T]
    drop = np.zeros_like(lrs)
    drop[1:] = lrs[:-1] - lrs[1:]
    grad = np.full_like(lrs, -p["alpha"] * p["A"] * area ** (-p["alpha"] - 1.0))
    positive = lrs > 0
    if isinstance(law, MultiPowerLaw):
        power = np.zeros_like(lrs)
        power[positive] = lrs[positive] ** (-p["gamma"])
        x = p["C"] * power * after
        G = 1.0 - (x + 1.0) ** (-p["beta"])
        dG = p["beta"] * (x + 1.0) ** (-p["beta"] - 1.0)
        G[0] = dG[0] = 0.0
        weight, k = p["B"], p["C"] * power  # d x_k / d S_k
        # d x_k / d lrs[k] through lrs[k]**-gamma
        own = np.zeros_like(lrs)
        own[positive] = -p["gamma"] * x[positive] / lrs[positive]
        value = p["L0"] + p["A"] * area ** (-p["alpha"]) - weight * float(np.sum(drop * G))
        w = drop * dG * k
        grad -= weight * (np.cumsum(w) + drop * dG * own)
    else:
        lam = p["lam"]
        age = T - np.arange(len(lrs)) + 1.0
        G = (1.0 - lam**age) / (1.0 - lam)
        G[0] = 0.0
        weight = p["C"]
        value = p["L0"] + p["A"] * area ** (-p["alpha"]) - weight * float(np.sum(drop * G))
    # d drop[k] / d lrs[k] = -1, d drop[k + 1] / d lrs[k] = +1
    grad += weight * G
    grad[:-1] -= weight * G[1:]
    grad[~positive] = 0.0
    return value, grad


def _knots(steps: int, warmup: int) -> np.ndarray:
    count = min(PIECES, steps - warmup)
    return np.unique(np.round(np.linspace(warmup, steps, count + 1)).astype(np.int64))


def _check(law, steps, peak_lr, warmup, min_lr):
    from .laws import _Law

    if not isinstance(law, _Law):
        raise PredictError(f"law is of type {type(law).__name__}; expected a fitted law")
    for field, value in (("steps", steps), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise PredictError(f"{field}={value!r}; expected a whole number of steps")
    if not 2 <= steps <= MAX_STEPS:
        raise PredictError(f"steps={steps!r}; expected 2..{MAX_STEPS:,}")
    if not 0 <= warmup < steps:
        raise PredictError(f"warmup={warmup!r}; expected 0 <= warmup < steps ({steps})")
    for field, value in (("peak_lr", peak_lr), ("min_lr", min_lr)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise PredictError(f"{field}={value!r}; expected a finite rate")
    if not peak_lr > 0:
        raise PredictError(f"peak_lr={peak_lr!r}; expected a rate > 0")
    if not 0 <= min_lr <= peak_lr:
        raise PredictError(f"min_lr={min_lr!r}; expected a rate in [0, peak_lr={peak_lr!r}]")


def schedule_text(steps: int, peak_lr: float, warmup: int, min_lr: float, knots, values) -> str:
    """A schedule file (TOML): the warmup, then a linear phase to each knot's value."""
    phases = []
    if warmup > 0:
        phases.append(f'  {{ shape = "linear", to = "max_lr", until = "{warmup} steps" }},')
    for j in range(1, len(knots)):
        end, value = knots[j], values[j]
        if j + 1 < len(knots) and values[j + 1] == value == values[j - 1]:
            continue  # a flat piece runs on into the next
        phases.append(
            f'  {{ shape = "linear", to = {float(value)!r}, until = "{int(end)} steps" }},'
        )
    return "\n".join(
        [
            "# The schedule that minimizes the predicted final loss (paramsched optimize).",
            "[run]",
            "global_batch_size = 1",
            f'total = "{steps} steps"',
            "",
            "[lr]",
            f"init_lr = {0.0 if warmup > 0 else float(peak_lr)!r}",
            f"max_lr = {float(peak_lr)!r}",
            f"min_lr = {float(min_lr)!r}",
            "phases = [",
            *phases,
            "]",
            "",
        ]
    )


def optimize_text(law, steps: int, peak_lr: float, warmup: int, min_lr: float = 0.0) -> tuple:
    """`optimize`'s schedule, its file text, and its predicted final loss."""
    import tomllib

    from ..recipe import schedule_from_data
    from .fitting import _scipy

    _check(law, steps, peak_lr, warmup, min_lr)
    optimize = _scipy()
    knots = _knots(steps, warmup)
    warm = peak_lr * np.arange(warmup) / warmup if warmup else np.zeros(0)
    position = np.arange(warmup, steps)
    piece = np.clip(np.searchsorted(knots, position, side="right") - 1, 0, len(knots) - 2)
    ratio = (position - knots[piece]) / (knots[piece + 1] - knots[piece])
    span = peak_lr - min_lr

    def rates(s):
        values = min_lr + span * np.concatenate([[1.0], np.cumprod(s)])
        tail = values[piece] + (values[piece + 1] - values[piece]) * ratio
        return np.concatenate([warm, tail]), values

    def objective(s):
        lrs, values = rates(s)
        value, grad = final_loss_gradient(law, lrs)
        g = grad[warmup:]
        g_values = np.bincount(piece, weights=g * (1 - ratio), minlength=len(knots))
        g_values += np.bincount(piece + 1, weights=g * ratio, minlength=len(knots))
        # values[j] = min_lr + span * prod(s[:j]); d values[j] / d s[i] = (values[j] - min_lr) / s[i], j > i
        scaled = g_values[1:] * (values[1:] - min_lr)
        tail = np.cumsum(scaled[::-1])[::-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            g_s = np.where(s > 0, tail / s, 0.0)
        return value, g_s

    start = np.ones(len(knots) - 1)
    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * len(start),
        options={"maxiter": 3000},
    )
    if not np.all(np.isfinite(result.x)):
        raise PredictError("the optimization did not converge; no schedule is returned")
    _, values = rates(result.x)
    text = schedule_text(steps, peak_lr, warmup, min_lr, knots, values)
    schedule = schedule_from_data(tomllib.loads(text))
    final = float(law.loss(rates_of(schedule, steps), [steps - 1])[0])
    return schedule, text, final


def optimize(law, steps: int, peak_lr: float, warmup: int, min_lr: float = 0.0):
    """The `PhaseSchedule` of `steps` optimizer steps (a linear warmup of `warmup` steps
    to `peak_lr`, then never rising, never below `min_lr`) whose final loss `law`
    predicts lowest; see the module."""
    return optimize_text(law, steps, peak_lr, warmup, min_lr)[0]
