"""Fitting a law to runs.

The multi-power law is fitted by the procedure its paper publishes
(`paramsched.predict.adamfit`: the constant-rate part by L-BFGS-B, then the whole law
by 200 steps at most of AdamW), unless a ridge is given.

The annealing law (and the multi-power law given a ridge) minimizes the same
objective, the sum over every logged point of every run of the Huber loss (``delta
= 1e-3``) of the residual of the log loss, ``log(loss) - log(predicted)``. Every
parameter is fitted through its logarithm (so it stays > 0; ``lam`` through ``log(lam
/ (1 - lam))``), with a ridge penalty that pulls the drop term's shape (``lam``; the
multi-power law's ``C, beta, gamma``) toward a start that does not depend on the data
(``lam = 0.999``; ``C = 1, beta = gamma = 0.5``); for the annealing law its strength
is chosen by leave-one-run-out cross-validation when three or more runs are given
(fit on all but one, score the log-loss error on the one left out), else
`DEFAULT_RIDGE`. The power law's parameters start from a fit of the constant-rate
part (``L0 + A * S**-alpha - B * (peak - lr)``, two starts), and the whole law is
then minimized by trust-region least squares, analytic gradients. This fit evaluates
the law many times: a run of more than `FIT_EXACT_TERMS` (point, change) terms has its
far changes gathered (`paramsched.predict.laws.terms`).

Examples:
    >>> import numpy as np
    >>> from paramsched.predict import AnnealingLaw, fit
    >>> truth = AnnealingLaw(L0=3.0, A=0.5, alpha=0.5, C=2.0, lam=0.995)
    >>> lrs = [np.full(3000, 3e-4), np.r_[np.full(2000, 3e-4), np.linspace(3e-4, 3e-5, 1000)]]
    >>> steps = np.arange(100, 3000, 50)
    >>> runs = [(r, steps, truth.loss(r, steps)) for r in lrs]
    >>> law = fit(runs, law="annealing", ridge=0.0)
    >>> bool(np.max(np.abs(law.loss(lrs[1], steps) - runs[1][2])) < 1e-3)
    True
"""

from __future__ import annotations

import logging
import math

import numpy as np

from . import adamfit
from .laws import LAWS, PredictError, terms
from .runs import LossRun

logger = logging.getLogger(__name__)

HUBER_DELTA = 1e-3
#: The least-squares fit sums a run's drops exactly up to this many terms, else gathers
#: them (`paramsched.predict.laws.terms`) with this many exact blocks.
FIT_EXACT_TERMS, FIT_NEAR_BLOCKS = 20_000, 4
#: The strongest ridge a fit takes (its penalty rows are ``sqrt(2 * ridge * points)``).
RIDGE_LIMIT = 1e18
#: The ridge strengths cross-validation chooses from, and the one used with fewer runs.
RIDGES = (0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
DEFAULT_RIDGE = 1.0
#: The start of the drop term's shape parameters (prior centre of the ridge).
SHAPE_START = {"multi-power": {"C": 1.0, "beta": 0.5, "gamma": 0.5}, "annealing": {"lam": 0.999}}


def _scipy():
    try:
        import scipy.optimize
    except ImportError:
        raise PredictError('fitting a law needs SciPy: pip install "paramsched[predict]"') from None
    return scipy.optimize


def as_runs(runs) -> list[LossRun]:
    """Runs as `LossRun`s: each a `LossRun` or a ``(rates, steps, losses)`` tuple."""
    if isinstance(runs, LossRun) or not isinstance(runs, (list, tuple)):
        raise PredictError(f"runs is of type {type(runs).__name__}; expected a list of runs")
    out = []
    for i, run in enumerate(runs):
        if isinstance(run, LossRun):
            out.append(run)
        elif isinstance(run, (list, tuple)) and len(run) == 3:
            out.append(LossRun.of(*run, name=f"runs[{i}]"))
        else:
            raise PredictError(
                f"runs[{i}] is of type {type(run).__name__}; expected a LossRun or (rates, steps, losses)"
            )
    if not out:
        raise PredictError("runs is empty; expected at least one run")
    return out


class _Problem:
    """The runs' data, prepared once: terms, areas, log losses."""

    def __init__(self, law, runs: list[LossRun]):
        self.law = law
        self.runs = runs
        self.data = []
        for run in runs:
            term_set = terms(run.lrs, run.steps, FIT_EXACT_TERMS, FIT_NEAR_BLOCKS)
            self.data.append((np.cumsum(run.lrs)[run.steps], term_set, np.log(run.losses)))
        self.centre = self.to_z({**{n: 1.0 for n in law.names}, **SHAPE_START[law.name]})

    # z: lam through its logit, the others through their log
    def to_z(self, params: dict) -> np.ndarray:
        z = []
        for name in self.law.names:
            v = params[name]
            z.append(math.log(v / (1 - v)) if name == "lam" else math.log(v))
        return np.asarray(z)

    def from_z(self, z):
        theta, dtheta = np.empty_like(z), np.empty_like(z)
        for i, name in enumerate(self.law.names):
            if name == "lam":
                theta[i] = 1.0 / (1.0 + math.exp(-z[i]))
                dtheta[i] = theta[i] * (1.0 - theta[i])
            else:
                theta[i] = math.exp(min(z[i], 700.0))
                dtheta[i] = theta[i]
        return theta, dtheta

    def shaped(self) -> np.ndarray:
        return np.asarray([name in SHAPE_START[self.law.name] for name in self.law.names])

    def objective(self, z, ridge: float, which=None):
        theta, dtheta = self.from_z(z)
        total, grad = 0.0, np.zeros_like(z)
        for i, (area, term_set, log_loss) in enumerate(self.data):
            if which is not None and i not in which:
                continue
            pred, jac = self.law._curve(theta, area, term_set, True)
            if not np.all(pred > 0) or not np.all(np.isfinite(pred)):
                return 1e30, np.zeros_like(z)
            r = log_loss - np.log(pred)
            small = np.abs(r) <= HUBER_DELTA
            total += float(
                np.sum(np.where(small, 0.5 * r * r, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA)))
            )
            dr = np.where(small, r, HUBER_DELTA * np.sign(r))  # d huber / d r
            grad += -(dr / pred) @ jac
        grad = grad * dtheta
        shaped = self.shaped()
        gap = (z - self.centre) * shaped
        scale = 1.0 / (HUBER_DELTA**2 * sum(self.data[i][0].size for i in self.used(which)))
        return total * scale + ridge * float(gap @ gap), grad * scale + 2.0 * ridge * gap

    def used(self, which):
        return range(len(self.data)) if which is None else which

    def score(self, z, which) -> float:
        """Mean absolute log-loss error on the runs `which`."""
        theta, _ = self.from_z(z)
        errors = []
        for i in which:
            area, term_set, log_loss = self.data[i]
            pred, _ = self.law._curve(theta, area, term_set, False)
            errors.append(np.abs(log_loss - np.log(np.maximum(pred, 1e-300))))
        return float(np.mean(np.concatenate(errors)))


def _starts(problem: _Problem, which) -> list[np.ndarray]:
    """Starts: the constant-rate part fitted from a few guesses, the shape at its centre."""
    optimize = _scipy()
    runs = [problem.runs[i] for i in which]
    area = np.concatenate([np.cumsum(r.lrs)[r.steps] for r in runs])
    gap = np.concatenate([r.peak_lr - r.lrs[r.steps] for r in runs])
    losses = np.concatenate([r.losses for r in runs])
    low = float(losses.min())

    def residual(p):
        L0, A, alpha, B = p
        return np.log(losses) - np.log(np.maximum(L0 + A * area ** (-alpha) - B * gap, 1e-12))

    starts = []
    for L0 in (0.5 * low, 0.9 * low):
        for alpha in (0.5,):
            A = max(float(np.median((losses - L0) * area**alpha)), 1e-6)
            result = optimize.least_squares(
                residual, [L0, A, alpha, 100.0], bounds=([0, 0, 0, 0], [low, np.inf, 5, np.inf])
            )
            L0f, Af, alphaf, Bf = (float(v) for v in result.x)
            params = {"L0": L0f, "A": max(Af, 1e-9), "alpha": max(alphaf, 1e-6)}
            if problem.law.name == "multi-power":
                params.update(B=max(Bf, 1e-6), **SHAPE_START["multi-power"])
            else:
                lam = SHAPE_START["annealing"]["lam"]  # a settled drop is C * d / (1 - lam)
                params.update(C=max(Bf * (1 - lam), 1e-9), lam=lam)
            starts.append(problem.to_z(params))
    return starts


def _minimize(
    problem: _Problem, ridge: float, which, starts=None
) -> tuple[np.ndarray, float, bool]:
    """The least objective from each start (trust-region least squares: the data rows
    Huber-weighted, the ridge rows plain squares); the best, its value, and whether it
    converged."""
    optimize = _scipy()
    rows = list(problem.used(which))
    count = sum(problem.data[i][0].size for i in rows)
    shaped = problem.shaped()
    weight = math.sqrt(2.0 * ridge * count)

    def residuals(z, jacobian: bool):
        theta, dtheta = problem.from_z(z)
        out, jac_rows = [], []
        for i in rows:
            area, term_set, log_loss = problem.data[i]
            pred, jac = problem.law._curve(theta, area, term_set, jacobian)
            pred = np.maximum(pred, 1e-300)
            out.append((log_loss - np.log(pred)) / HUBER_DELTA)
            if jacobian:
                jac_rows.append(-(jac * dtheta) / (pred[:, None] * HUBER_DELTA))
        out.append(weight * (z - problem.centre)[shaped])
        if not jacobian:
            return np.concatenate(out), None
        jac_rows.append(weight * np.eye(len(z))[shaped])
        return np.concatenate(out), np.concatenate(jac_rows)

    cache = {}  # least squares asks for the Jacobian where it has just asked for values

    def fun(z):
        cache["z"], (values, cache["jac"]) = z.copy(), residuals(z, True)
        return values

    def jac(z):
        if "z" not in cache or not np.array_equal(cache["z"], z):
            fun(z)
        return cache["jac"]

    def loss(z):  # Huber on the data rows, plain squares on the ridge rows
        rho = np.empty((3, z.size))
        data = np.arange(z.size) < count
        big = data & (z > 1.0)
        root = np.sqrt(np.where(big, z, 1.0))
        rho[0] = np.where(big, 2.0 * root - 1.0, z)
        rho[1] = np.where(big, 1.0 / root, 1.0)
        rho[2] = np.where(big, -0.5 / (root * np.where(big, z, 1.0)), 0.0)
        return rho

    best = None
    for z0 in _starts(problem, which) if starts is None else starts:
        try:
            with np.errstate(all="ignore"):
                result = optimize.least_squares(
                    fun,
                    z0,
                    jac=jac,
                    loss=loss,
                    method="trf",
                    x_scale="jac",
                    ftol=1e-12,
                    xtol=1e-12,
                    gtol=1e-12,
                    max_nfev=500,
                )
        except ValueError:  # a step reached parameters where the law is not finite
            continue
        if np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        return None, math.inf, False
    return best.x, float(best.cost) / count, bool(best.status > 0)


def choose_ridge(problem: _Problem) -> tuple[float, dict]:
    """The ridge whose leave-one-run-out error is least (`DEFAULT_RIDGE` with < 3 runs)."""
    count = len(problem.runs)
    if count < 3:
        return DEFAULT_RIDGE, {}
    errors = {ridge: [] for ridge in RIDGES}
    for out in range(count):
        rest = [i for i in range(count) if i != out]
        starts = None
        for ridge in sorted(RIDGES, reverse=True):  # each from the stronger ridge's fit
            z, _, _ = _minimize(problem, ridge, rest, starts)
            errors[ridge].append(math.inf if z is None else problem.score(z, [out]))
            if z is not None:
                starts = [z]
    scores = {ridge: float(np.mean(e)) for ridge, e in errors.items()}
    return min(scores, key=lambda r: (scores[r], r)), scores


def fit(runs, law: str = "multi-power", ridge: float | None = None):
    """Fits `law` (``"multi-power"`` or ``"annealing"``) to `runs`; see the module.

    Args:
        runs: `LossRun`s, or ``(rates, steps, losses)`` tuples: rates an array of
            per-step rates or a paramsched schedule.
        law: The law's name.
        ridge: The ridge strength of the least-squares fit; for the annealing law,
            None chooses it by cross-validation; for the multi-power law, None fits by
            its paper's procedure (no ridge), a number by the least-squares fit.

    Returns:
        The fitted law; it remembers the peak rate and the last step it was fitted on
        (and the ridge, when fitted with one).

    Raises:
        PredictError: bad runs, too few points, a bad ridge, or a fit that does not
            converge.
    """
    if law not in LAWS:
        raise PredictError(f"law={law!r}; expected one of " + ", ".join(repr(n) for n in LAWS))
    if ridge is not None and (
        isinstance(ridge, bool)
        or not isinstance(ridge, (int, float))
        or not math.isfinite(ridge)
        or not 0 <= ridge <= RIDGE_LIMIT
    ):
        raise PredictError(
            f"ridge={ridge!r}; expected a finite number >= 0 and at most 1e18, or None"
        )
    ridge = None if ridge is None else float(ridge) + 0.0  # -0.0 is 0.0
    runs = as_runs(runs)
    kind = LAWS[law]
    points = sum(run.steps.size for run in runs)
    if points < len(kind.names):
        raise PredictError(
            f"{points} logged points; the {law} law has {len(kind.names)} parameters, "
            f"expected at least {len(kind.names)} points"
        )
    fitted = {
        "peak_lr": max(run.peak_lr for run in runs),
        "max_step": max(int(run.steps[-1]) for run in runs),
    }
    if law == "multi-power" and ridge is None:
        theta, value = adamfit.fit_multi_power(runs, _scipy())
        converged = theta is not None
    else:
        problem = _Problem(kind, runs)
        if ridge is None:
            ridge, _ = choose_ridge(problem)
        z, value, converged = _minimize(problem, float(ridge), list(range(len(runs))))
        theta = None if z is None else problem.from_z(z)[0]
        fitted["ridge"] = float(ridge)
    if theta is None or not converged or not math.isfinite(value):
        raise PredictError(
            f"the {law} fit did not converge (objective {value:.6g}); no law is returned"
        )
    try:
        return kind(**dict(zip(kind.names, (float(v) for v in theta))), fitted=fitted)
    except PredictError as error:
        raise PredictError(
            f"the {law} fit did not converge ({error}); no law is returned"
        ) from None
