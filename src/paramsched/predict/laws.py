"""Loss laws: the loss of a run predicted from its per-step learning rates.

Two laws, each a function of the rates ``lrs[0..t]`` used by the optimizer steps up
to the step ``t`` where the loss is logged (the loss logged at step ``t`` follows
the updates that used ``lrs[0]`` .. ``lrs[t]``)::

    S(t)   = lrs[0] + ... + lrs[t]                 the area under the rates
    S_k(t) = lrs[k] + ... + lrs[t]                 the area from step k on
    d_k    = lrs[k-1] - lrs[k]                     the drop at step k (k >= 1)

    multi-power (Luo et al. 2025, arXiv 2503.12811):
        L(t) = L0 + A * S(t)**(-alpha) - B * sum_k d_k * (1 - (C * lrs[k]**(-gamma) * S_k(t) + 1)**(-beta))
    annealing (Tissue et al. 2024, arXiv 2408.11029):
        L(t) = L0 + A * S(t)**(-alpha) - C * sum_k d_k * (1 - lam**(t - k + 1)) / (1 - lam)

(the annealing law's momentum ``m_i = lam * m_{i-1} + d_i``, summed over the steps,
written in closed form). The sums run over the steps ``k <= t`` where the rate
changes, so a schedule that holds its rate costs nothing there.

Cost: the sum has a term per (point, change) pair. A point that follows at most
`EXACT_CHANGES` changes is summed term by term, a later one has its far changes
gathered by blocks (`paramsched.predict.drops`); which of the two, and the blocks,
depend on the rates and the point alone, never on the other points asked for with it:
``loss(lrs, steps)[i] == loss(lrs, [steps[i]])[0]``. ``exact=True`` sums every term
of every point.

Examples:
    >>> import numpy as np
    >>> law = MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)
    >>> lrs = np.full(1000, 3e-4)
    >>> lrs[800:] = 3e-5                      # a step down at step 800
    >>> [round(float(x), 4) for x in law.loss(lrs, [799, 999])]
    [4.0206, 3.9519]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScheduleError
from .drops import EXACT_CHANGES, Terms, terms

#: A prediction evaluates its points in groups of about this many terms at most.
EXACT_TERMS = 4_000_000


logger = logging.getLogger(__name__)


class PredictError(ScheduleError):
    """Bad input to a law, a fit or an optimization (a `ValueError`)."""


def check_rates(lrs, field: str = "lrs") -> np.ndarray:
    """`lrs` as a 1-d float64 array of finite rates >= 0, not all zero."""
    try:
        array = np.asarray(lrs, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictError(f"{field} is not an array of numbers; expected per-step rates") from None
    if array.ndim != 1 or array.size == 0:
        raise PredictError(f"{field} has shape {array.shape}; expected a 1-d array of rates")
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        raise PredictError(
            f"{field}[{bad[0]}]={float(array[bad[0]])!r}; expected a finite rate >= 0"
        )
    if not array.any():
        raise PredictError(f"{field} are all 0; expected some positive rate")
    return array


def check_steps(steps, count: int, field: str = "steps") -> np.ndarray:
    """`steps` as int64 indices into ``count`` rates, after the first positive rate."""
    array = np.asarray(steps)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise PredictError(f"{field} has shape {array.shape}; expected a 1-d array of steps")
    if not np.issubdtype(array.dtype, np.integer):
        as_int = np.asarray(array, dtype=np.float64)
        if not np.all(np.isfinite(as_int)) or np.any(as_int != np.round(as_int)):
            raise PredictError(f"{field} holds {array!r}; expected whole steps")
        array = as_int
    if array.min() < 0 or array.max() >= count:
        bad = array[(array < 0) | (array >= count)][0]
        raise PredictError(
            f"{field} holds {int(bad)}; expected steps 0..{count - 1} (the rates given)"
        )
    return array.astype(np.int64)


@dataclass(frozen=True)
class _Law:
    """What both laws share: the power law in the area, and a sum over the drops."""

    #: Parameter names, in the order of `params`; the law's name in `LAWS` and files.
    names = ()
    name = ""

    @property
    def params(self) -> dict:
        """The parameters, by name."""
        return {name: getattr(self, name) for name in self.names}

    def __post_init__(self):
        if self.fitted is not None:
            object.__setattr__(
                self, "fitted", _check_fitted(self.fitted, f"{self.name} law: fitted")
            )
        for name in self.names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise PredictError(
                    f"{self.name} law: {name}={value!r} is of type {type(value).__name__}; "
                    "expected a number"
                )
            value = float(value)
            if not math.isfinite(value) or not self._admissible(name, value):
                raise PredictError(
                    f"{self.name} law: {name}={value!r}; expected {self._range(name)}"
                )
            object.__setattr__(self, name, value)

    def _admissible(self, name: str, value: float) -> bool:
        return value > 0

    def _range(self, name: str) -> str:
        return "a finite number > 0"

    def loss(self, lrs, steps, exact: bool = False) -> np.ndarray:
        """The predicted loss at each of `steps` of a run whose optimizer step ``t`` used
        the rate ``lrs[t]`` (the point at step ``t`` follows ``lrs[0..t]``); with
        `exact`, every term is summed, however many (see the module). A point's loss
        depends on the rates and the point alone, not on the other `steps`."""
        rates = check_rates(lrs)
        points = check_steps(steps, len(rates))
        first = int(np.flatnonzero(rates)[0])
        if points.min() < first:
            raise PredictError(
                f"steps holds {int(points.min())}, before the first positive rate "
                f"(step {first}); expected steps after some training"
            )
        if not exact:
            self._warn_beyond(rates, points)
        theta = np.asarray([self.params[n] for n in self.names])
        # The points gathered in one evaluation, those summed exactly by groups of about
        # EXACT_TERMS terms: the terms of a point do not depend on the others, so neither
        # does its loss.
        changes = np.flatnonzero(np.diff(rates)) + 1
        before = np.searchsorted(changes, points, side="right")
        limit = math.inf if exact else EXACT_CHANGES
        whole = np.flatnonzero(before <= limit)
        weight = np.cumsum(before[whole] + 1)
        ends = np.flatnonzero(np.diff(weight // EXACT_TERMS)) + 1
        groups = [*np.split(whole, ends), np.flatnonzero(before > limit)]
        losses = np.empty(points.size)
        for group in (g for g in groups if g.size):
            term_set = terms(rates, points[group], exact_changes=limit)
            losses[group] = self.curve(theta, rates, points[group], term_set)[0]
        return losses

    def _warn_beyond(self, rates: np.ndarray, points: np.ndarray) -> None:
        """One WARNING for rates above the fitted peak, one for steps beyond 10 times the
        fitted range: the law extrapolates there."""
        if self.fitted is None:
            return
        peak, last = float(rates[: points.max() + 1].max()), int(points.max())
        if peak > self.fitted["peak_lr"] * (1 + 1e-9):
            logger.warning(
                "predicting for a rate of %.6g, above the peak %.6g the law was fitted on: "
                "it extrapolates",
                peak,
                self.fitted["peak_lr"],
            )
        if last > 10 * self.fitted["max_step"]:
            logger.warning(
                "predicting at step %d, beyond 10x the last step fitted (%d): it extrapolates",
                last,
                self.fitted["max_step"],
            )

    def curve(self, theta, lrs, steps, term_set: Terms | None = None, jacobian: bool = False):
        """The predicted losses for the parameter vector `theta`, and their Jacobian
        (one column per parameter) when asked."""
        area = np.cumsum(lrs)[steps]
        if term_set is None:
            term_set = terms(lrs, steps)
        return self._curve(theta, area, term_set, jacobian)

    def to_dict(self) -> dict:
        """The law as builtins: ``{"law": name, "params": {...}}``, and ``"fitted"`` (the
        peak rate and last step it was fitted on, and a ridge fitted with) for a fitted law."""
        data = {"law": self.name, "params": self.params}
        if self.fitted is not None:
            data["fitted"] = dict(self.fitted)
        return data

    def describe(self) -> str:
        return f"{self.name} law: " + ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())

    @staticmethod
    def _power(theta, area, jacobian):
        L0, A, alpha = theta[0], theta[1], theta[2]
        power = area ** (-alpha)
        value = L0 + A * power
        if not jacobian:
            return value, None
        return value, [np.ones_like(area), power, -A * power * np.log(area)]


@dataclass(frozen=True)
class MultiPowerLaw(_Law):
    """The multi-power law; parameters ``L0, A, alpha, B, C, beta, gamma`` (all > 0)."""

    L0: float
    A: float
    alpha: float
    B: float
    C: float
    beta: float
    gamma: float
    fitted: dict | None = field(default=None, compare=False, repr=False)
    names = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
    name = "multi-power"

    @classmethod
    def _curve(cls, theta, area, t: Terms, jacobian: bool):
        value, columns = cls._power(theta, area, jacobian)
        B, C, beta, gamma = theta[3], theta[4], theta[5], theta[6]
        zero = t.lr == 0  # a drop to a rate of 0: the limit of G as the rate goes to 0
        log_lr = np.log(np.where(zero, 1.0, t.lr))
        u = np.exp(-gamma * log_lr) * t.area
        if zero.any():
            held = t.area > 0  # rates after it: G = 1; none: G -> 0, its 1 - (C n + 1)**-beta, 1
            limit = 0.0 if gamma < 1 else np.inf if gamma > 1 else t.age
            u = np.where(zero, np.where(held, np.inf, limit), u)
        base = C * u + 1.0
        log_base = np.log(base)
        tail = np.exp(-beta * log_base)
        G = 1.0 - tail
        if zero.any():
            u, log_base, log_lr = (np.where(np.isinf(u), 0.0, x) for x in (u, log_base, log_lr))
        drop = t.total(t.drop * G)
        value = value - B * drop
        if not jacobian:
            return value, None
        dtail = t.drop * beta * tail / base  # d(1 - base**-beta)/d(base), times the drop
        columns += [
            -drop,
            -B * t.total(dtail * u),
            -B * t.total(t.drop * tail * log_base),
            B * t.total(dtail * C * u * log_lr),
        ]
        return value, np.stack(columns, axis=1)


@dataclass(frozen=True)
class AnnealingLaw(_Law):
    """The LR-annealing law; parameters ``L0, A, alpha, C`` (> 0) and ``lam`` (in (0, 1))."""

    L0: float
    A: float
    alpha: float
    C: float
    lam: float
    fitted: dict | None = field(default=None, compare=False, repr=False)
    names = ("L0", "A", "alpha", "C", "lam")
    name = "annealing"

    def _admissible(self, name: str, value: float) -> bool:
        return 0 < value < 1 if name == "lam" else value > 0

    def _range(self, name: str) -> str:
        return "a number in (0, 1)" if name == "lam" else "a finite number > 0"

    @classmethod
    def _curve(cls, theta, area, t: Terms, jacobian: bool):
        value, columns = cls._power(theta, area, jacobian)
        C, lam = theta[3], theta[4]
        decayed = np.exp(t.age * np.log(lam))
        momentum = t.total(t.drop * (1.0 - decayed)) / (1.0 - lam)
        value = value - C * momentum
        if not jacobian:
            return value, None
        d_lam = t.total(t.drop * (-t.age * decayed / lam)) / (1.0 - lam) + momentum / (1.0 - lam)
        columns += [-momentum, -C * d_lam]
        return value, np.stack(columns, axis=1)


#: The laws, by the name files and ``--law`` use.
LAWS = {law.name: law for law in (MultiPowerLaw, AnnealingLaw)}


def law_from_dict(data, where: str = "law") -> _Law:
    """A law from `to_dict`'s output, every field checked and named in errors."""
    if not isinstance(data, dict):
        raise PredictError(f"{where} is of type {type(data).__name__}; expected an object")
    unknown = sorted(set(data) - {"law", "params", "fitted"})
    if unknown:
        raise PredictError(f"{where} has the key {unknown[0]!r}; expected law, params, fitted")
    name = data.get("law")
    if name not in LAWS:
        raise PredictError(
            f"{where}.law={name!r}; expected one of " + ", ".join(repr(n) for n in LAWS)
        )
    law = LAWS[name]
    params = data.get("params")
    if not isinstance(params, dict) or set(params) != set(law.names):
        raise PredictError(
            f"{where}.params={params!r}; expected an object with the keys " + ", ".join(law.names)
        )
    try:
        return law(**{n: params[n] for n in law.names}, fitted=data.get("fitted"))
    except PredictError as error:
        raise PredictError(f"{where}: {error}") from None


def _check_fitted(fitted, where: str) -> dict:
    """The fitted range: ``peak_lr`` (> 0), ``max_step`` (a whole step > 0), and for a
    law fitted with a ridge, ``ridge`` (>= 0)."""
    keys = ("peak_lr", "max_step", "ridge")
    if not isinstance(fitted, dict) or not {"peak_lr", "max_step"} <= set(fitted) <= set(keys):
        raise PredictError(
            f"{where}={fitted!r}; expected an object with the keys peak_lr, max_step "
            "and optionally ridge"
        )
    out = {}
    for key in (k for k in keys if k in fitted):
        value = fitted[key]
        whole = key == "max_step"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise PredictError(
                f"{where}.{key}={value!r} is of type {type(value).__name__}; "
                f"expected {'a whole number' if whole else 'a number'}"
            )
        if not math.isfinite(value) or value < 0 or (value == 0 and key != "ridge"):
            raise PredictError(f"{where}.{key}={value!r}; expected a finite number > 0")
        out[key] = int(value) if whole else float(value)
    return out
