"""The multi-power law's fit, by the procedure its paper publishes (Luo et al. 2025).

Two stages, every constant below as the paper's code holds it:

1. **The constant-rate part.** ``L0 + A * S**-alpha - B * (peak - lr)`` (``S`` the area
   under the rates, ``lr`` the rate at the point, ``peak`` the highest rate of the runs)
   is fitted by L-BFGS-B, every parameter bounded below by 0, minimizing the Huber
   loss (``delta = 1e-3``) of ``log(loss) - log(predicted)`` summed over every point.
   Its starts: ``alpha`` and ``A`` from a line through ``log(loss - least + 0.01)``
   against ``log(S)`` (``least`` the least loss logged), ``B = 550`` (the middle of
   the paper's 100..1000), and ``L0`` each of ``least - 0.2, least - 0.1, ..., least +
   0.2``; the least objective is kept. The objective is divided by ``delta**2`` times
   the number of points, so that the tolerances stop it at its minimum.
2. **The whole law.** From those four and ``C = 1, beta = gamma = 0.5``, AdamW
   (``betas = (0.9, 0.999)``, ``eps = 1e-8``, weight decay ``1e-2``) on the parameters
   themselves, at the rate ``5e-2`` for ``L0, A, B, C`` and ``5e-3`` for ``alpha,
   beta, gamma``, minimizing the same Huber loss of the whole law (predictions held
   at ``1e-10`` or more). Each step evaluates the objective and its gradient at the
   current parameters, then updates them. The law's sum over the past rate changes is
   evaluated exactly, every (point, change) term (`paramsched.predict.exactsum`), as
   the paper's code does, for a run of up to `EXACT_PAIRS` terms; a longer run's far
   changes are gathered by blocks (`paramsched.predict.laws.terms`). It stops after `MAX_STEPS` steps, or once
   the objective has not improved for `PATIENCE` steps (after the first `PATIENCE`),
   or when the gradient's norm falls below `GRAD_NORM_STOP`. The parameters returned
   are those the update from the least objective evaluated reached (the paper's code
   records them after the step).

The few steps and the weight decay (which pulls ``B``, the largest parameter, down by
about ``5e-4 * B`` a step) regularize the fit: it stops far from the least objective.

Examples:
    >>> import numpy as np
    >>> import scipy.optimize
    >>> from paramsched.predict import LossRun
    >>> lrs = np.r_[np.linspace(0, 3e-4, 500), np.full(3500, 3e-4), np.full(4000, 6e-5)]
    >>> steps = np.arange(600, 8000, 100)
    >>> area = np.cumsum(lrs)[steps]
    >>> run = LossRun.of(lrs, steps, 2.9 + 0.6 * area**-0.45 - 500.0 * (3e-4 - lrs[steps]))
    >>> [round(float(v), 4) for v in constant_part([run], scipy.optimize)]
    [2.9, 0.6, 0.45, 500.0]
"""

from __future__ import annotations

import math

import numpy as np

from .exactsum import ExactSum, Gathered, pair_count
from .laws import MultiPowerLaw

HUBER_DELTA = 1e-3
#: The offsets of the constant-rate part's starts of ``L0`` from the least loss logged.
L0_OFFSETS = (-0.2, -0.1, 0.0, 0.1, 0.2)
#: The constant-rate part's start of ``B``.
B_START = 550.0
#: The start of the drop term's shape.
SHAPE_START = {"C": 1.0, "beta": 0.5, "gamma": 0.5}
#: AdamW's rate for each parameter.
ADAM_LR = {"L0": 5e-2, "A": 5e-2, "alpha": 5e-3, "B": 5e-2, "C": 5e-2, "beta": 5e-3, "gamma": 5e-3}
ADAM_BETAS, ADAM_EPS, WEIGHT_DECAY = (0.9, 0.999), 1e-8, 1e-2
MAX_STEPS, PATIENCE, GRAD_NORM_STOP = 200, 20, 1e-5
#: The least prediction the objective takes the log of.
FLOOR = 1e-10
#: A run of up to this many (point, change) terms is fitted on the law's exact sum.
EXACT_PAIRS = 20_000_000
#: A longer run's far changes are gathered (`paramsched.predict.laws.terms`), the last
#: this many blocks before each point summed exactly.
NEAR_BLOCKS = 4


def huber(r: np.ndarray) -> tuple[float, np.ndarray]:
    """The summed Huber loss of the residuals `r`, and its derivative at each."""
    small = np.abs(r) < HUBER_DELTA
    value = np.where(small, 0.5 * r * r, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))
    return float(np.sum(value)), np.where(small, r, HUBER_DELTA * np.sign(r))


def _log_residual(log_loss, pred):
    """``log_loss - log(max(pred, FLOOR))``, and ``d residual / d pred`` (0 where held)."""
    held = pred < FLOOR
    safe = np.where(held, FLOOR, pred)
    return log_loss - np.log(safe), np.where(held, 0.0, -1.0 / safe)


def constant_part(runs, optimize) -> np.ndarray:
    """Stage 1: ``L0, A, alpha, B`` of the constant-rate part (see the module)."""
    peak = max(run.peak_lr for run in runs)
    area = np.concatenate([np.cumsum(run.lrs)[run.steps] for run in runs])
    gap = np.concatenate([peak - run.lrs[run.steps] for run in runs])
    losses = np.concatenate([run.losses for run in runs])
    log_loss, log_area = np.log(losses), np.log(area)
    least = float(losses.min())
    slope, intercept = np.polyfit(log_area, np.log(losses - least + 0.01), 1)
    scale = 1.0 / (HUBER_DELTA**2 * losses.size)

    def objective(p):
        L0, A, alpha, B = p
        power = np.exp(-alpha * log_area)
        r, dr_dpred = _log_residual(log_loss, L0 + A * power - B * gap)
        value, dh = huber(r)
        w = dh * dr_dpred
        grad = np.array([w.sum(), w @ power, w @ (-A * power * log_area), w @ (-gap)])
        return value * scale, grad * scale

    best = None
    for offset in L0_OFFSETS:
        start = np.maximum([least + offset, math.exp(intercept), -slope, B_START], 0.0)
        with np.errstate(all="ignore"):
            result = optimize.minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, np.inf)] * 4,
                options={"maxiter": 100_000, "ftol": 1e-12, "gtol": 1e-9},
            )
        if np.all(np.isfinite(result.x)) and math.isfinite(result.fun):
            if best is None or result.fun < best.fun:
                best = result
    return None if best is None else best.x


def prepare(runs) -> list:
    """The runs laid out for the objective: ``(law's sum, log losses)`` each."""
    data = []
    for run in runs:
        if pair_count(run.lrs, run.steps) <= EXACT_PAIRS:
            law_sum = ExactSum(run.lrs, run.steps)
        else:
            law_sum = Gathered(run.lrs, run.steps, NEAR_BLOCKS)
        data.append((law_sum, np.log(run.losses)))
    return data


def objective(data, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """The summed Huber loss of the whole law at `theta` over the prepared runs `data`
    (`prepare`), and its gradient."""
    total, grad = 0.0, np.zeros_like(theta)
    for law_sum, log_loss in data:
        pred, jac = law_sum.curve(theta, True)
        r, dr_dpred = _log_residual(log_loss, pred)
        value, dh = huber(r)
        total += value
        grad += (dh * dr_dpred) @ jac
    return total, grad


def adamw(data, theta0: np.ndarray) -> tuple[np.ndarray | None, float, int]:
    """Stage 2: AdamW from `theta0` (see the module); the parameters kept, their
    objective and the steps taken."""
    rate = np.array([ADAM_LR[name] for name in MultiPowerLaw.names])
    beta1, beta2 = ADAM_BETAS
    theta = np.array(theta0, dtype=np.float64)
    first, second = np.zeros_like(theta), np.zeros_like(theta)
    best, kept, least, stale = math.inf, None, math.inf, 0
    step = 0
    for step in range(MAX_STEPS):
        with np.errstate(all="ignore"):
            value, grad = objective(data, theta)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            break
        count = step + 1
        theta = theta * (1.0 - rate * WEIGHT_DECAY)
        first = beta1 * first + (1.0 - beta1) * grad
        second = beta2 * second + (1.0 - beta2) * grad * grad
        denominator = np.sqrt(second) / math.sqrt(1.0 - beta2**count) + ADAM_EPS
        theta = theta - (rate / (1.0 - beta1**count)) * first / denominator
        if value < least:
            least, stale = value, 0
        else:
            stale += 1
        if step > PATIENCE and stale >= PATIENCE:
            break
        if float(np.linalg.norm(grad)) < GRAD_NORM_STOP:
            break
        if value < best:
            best, kept = value, theta.copy()
    return kept, best, step + 1


def fit_multi_power(runs, optimize) -> tuple[np.ndarray | None, float]:
    """Both stages on the `LossRun`s `runs`."""
    start = constant_part(runs, optimize)
    if start is None:
        return None, math.inf
    theta0 = np.concatenate([start, [SHAPE_START[n] for n in ("C", "beta", "gamma")]])
    theta, value, _ = adamw(prepare(runs), theta0)
    return theta, value
