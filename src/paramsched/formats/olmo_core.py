"""OLMo-core's learning-rate schedulers (``olmo_core.optim.scheduler``), read as OLMo-core runs them.

An ``[olmo_core]`` table of a schedule file, or `from_olmo_core`, names a scheduler
class (``scheduler = "CosWithWarmup"``) with that class's own fields (``warmup``,
``warmup_fraction``, ``alpha_f``, ``t_max``, ``decay``, ``stages``, ``schedulers``,
...), ``units`` (``"steps"`` or ``"tokens"``, as the class's), ``lr`` (the
optimizer's rate, OLMo-core's ``initial_lr``) and the trainer's length as OLMo-core
hands it to ``get_lr``: ``max_steps``, or with token units ``max_tokens`` and
``tokens_per_batch`` (the trainer's tokens per optimizer step).

OLMo-core's trainer counts the step before it steps: optimizer step ``k`` (from 1)
runs at ``get_lr(initial_lr, current, t_max)`` with ``current`` = ``k`` (steps) or the
tokens seen with that step's batch (``k * tokens_per_batch``). So ``lr(n)``, the rate
step ``n + 1`` uses, is ``get_lr(lr, n + 1, max_steps)`` (or ``(n + 1) *
tokens_per_batch`` of ``max_tokens``), to the bit (`paramsched.formats._olmo_rates`),
for ``n`` below the run's last step; the trainer stops after its last step, whose rate
then holds. Positions are optimizer steps; with ``tokens_per_batch`` the run speaks of
tokens too (one position per step of that many tokens).

`OLMO_CORE_SCHEDULERS` is the table: each class, its fields with OLMo-core's defaults.
Every scheduler of ``olmo_core.optim.scheduler`` follows a clock (steps or tokens);
none follows a metric.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core._curve import KINDS
from ..core.shapes import ARRAY
from ..core.units import Run
from ..errors import ScheduleError
from . import _olmo_rates as rates
from ._olmo_args import (
    KIND,
    OLMO_CORE_SCHEDULERS,
    RUN_KEYS,
    logger,
    olmo_core_arguments,
)
from ._stack import END, Formula, StackSchedule, curve, elementwise


def _bounds(a: dict, t: int) -> list:
    """``(label, the last current of its branch)`` in order, the last one open."""
    name, r = a["scheduler"], rates.resolved
    if name == "ConstantScheduler":
        return [("constant", None)]
    if name == "ExponentialScheduler":
        return [("exponential", t - 1), ("hold", None)]
    if name == "ComposableScheduler":
        found, end = [], 0
        for stage in a["stages"]:
            end += stage["duration"]
            found.append((f"{stage['shape']} stage", end - 1))
        return _override_bounds(a, found)
    if name == "SequentialScheduler":
        found, end = [], 0
        for inner, most in zip(a["schedulers"], a["schedulers_max"]):
            end += most
            found.append((inner["scheduler"], end))
        return _override_bounds(a, found + [(a["schedulers"][-1]["scheduler"], t)])
    if name == "WSDS":
        w, adjusted, ends = rates.wsds_periods(a)
        found = [("warmup", w - 1)]
        for i, end in enumerate(ends):
            d = rates.wsds_decay(a, a["period_lengths"][i])
            found += [(f"stable {i}", w + end - d - 1), (f"decay {i}", w + end)]
        return found + [("hold", None)]
    own = a.get("t_max") or t
    warm = r(a, "warmup", own)
    if name in ("ConstantWithWarmup", "WSD", "PowerLR"):
        middle = {"ConstantWithWarmup": "constant", "WSD": "stable", "PowerLR": "power"}[name]
        if name == "ConstantWithWarmup":
            return [("warmup", warm), (middle, None)]
        return [("warmup", warm), (middle, t - r(a, "decay", t) - 1), ("decay", None)]
    shape = {"LinearWithWarmup": "linear", "InvSqrtWithWarmup": "inverse sqrt",
             "HalfCosWithWarmup": "half cosine"}.get(name, "cosine")  # fmt: skip
    if name == "InvSqrtWithWarmup":
        return [("warmup", warm - 1), (shape, None)]
    if name == "CosWithWarmupAndLinearDecay":
        return [("warmup", warm - 1), (shape, t - r(a, "decay", t) - 1), ("linear decay", None)]
    return [("warmup", warm - 1), (shape, own - 1), ("floor", None)]


def _override_bounds(a: dict, found: list) -> list:
    o = a["override_decay"]
    if o is None:
        return found + [("hold", None)]
    kept = [(label, min(end, o["start"] - 1)) for label, end in found]
    return kept + [(f"{o['shape']} override", o["start"] + o["duration"] - 1), ("hold", None)]


def _olmo_rate(n, base, m, a, last, per, t_max):
    """The rate step ``n + 1`` uses (after the run's last step, the last one's)."""
    current = (min(max(int(n), 0), last) + 1) * per
    try:
        value = rates.rate(a, base, current, t_max)
        if isinstance(value, complex):  # a negative number to PowerLR's power
            raise ValueError(f"a complex rate, {value!r}")
        return value
    except ScheduleError:
        raise
    except (ZeroDivisionError, OverflowError, ValueError) as error:
        what = "divides by zero" if isinstance(error, ZeroDivisionError) else f"fails ({error})"
        raise ScheduleError(f"OLMo-core's get_lr at current={current} of t_max={t_max} {what}; "
                            "expected a configuration OLMo-core runs to its end") from None  # fmt: skip


def _rates(n, base, m, a, last, per, t_max):
    """`_olmo_rate` for a number or an array (NumPy's operations where they are OLMo-core's:
    `paramsched.formats._olmo_rates.rate_array`; else element by element)."""
    if m is not ARRAY:
        return _olmo_rate(n, base, m, a, last, per, t_max)
    positions = np.asarray(n)
    current = (np.clip(positions.astype(np.int64), 0, last) + 1) * per
    try:
        fast = rates.rate_array(a, base, current.ravel(), t_max)
    except ZeroDivisionError:
        fast = None  # the scalar path names the count it fails at
    if fast is None:
        return elementwise(_olmo_rate)(n, base, m, a, last, per, t_max)
    return fast.reshape(positions.shape)


@dataclass(frozen=True, eq=False)
class OlmoCoreSchedule(StackSchedule):
    """A `StackSchedule` whose run may speak of tokens: `tokens_per_batch` per step."""

    tokens_per_batch: int | None = None

    @property
    def run(self) -> Run:
        """One position per optimizer step (of `tokens_per_batch` tokens, when known)."""
        return Run(global_batch_size=1, seq_length=self.tokens_per_batch, total=f"{self.horizon} steps")  # fmt: skip

    def describe(self) -> str:
        return f"{KIND} {self.arguments['scheduler']}"


def read_olmo_core(arguments, prefix: str = "") -> OlmoCoreSchedule:
    """`from_olmo_core` of an ``[olmo_core]`` table (or a checkpoint's meaning); errors name
    each key as `prefix` + its name."""
    a = olmo_core_arguments(arguments, prefix)
    tokens = a["units"] == "tokens"
    per = a["tokens_per_batch"] if tokens else 1
    t_max = a["max_tokens"] if tokens else a["max_steps"]
    horizon = -(-t_max // per)  # the trainer's max_steps
    spec = {k: v for k, v in a.items() if k not in RUN_KEYS[1:]}
    function = Formula(a["scheduler"], _rates, (spec, horizon - 1, per, t_max))
    pieces, previous = [], -1
    for label, bound in _bounds(spec, t_max):
        end = END if bound is None else min(max(bound // per - 1, previous), horizon - 1)
        pieces.append((end, dataclasses.replace(function, name=label)))
        previous = max(previous, end)
    if pieces[-1][0] != END:
        pieces.append((END, dataclasses.replace(function, name="hold")))
    lr_curve = curve(pieces, 0.0)
    values = {"init_lr": 0.0, "max_lr": a["lr"], "min_lr": 0.0}
    try:
        for end, _ in pieces:  # OLMo-core's asserts and divisions, where its branches begin and end
            for n in {0, max(min(end, horizon), 0), max(min(end + 1, horizon), 0)}:
                lr_curve.at(n, values)
        if horizon <= 10_000:
            lr_curve.array(np.arange(horizon + 1, dtype=np.float64), values)
    except ScheduleError as error:
        raise type(error)(f"{prefix}scheduler={a['scheduler']!r}: {error}") from None
    if horizon * per > t_max:
        last = float(lr_curve.at(horizon - 1, values))
        logger.warning("%smax_tokens=%d is not a whole number of batches of %d tokens: OLMo-core's last "
                       "step sees %d tokens, past its t_max, and sets lr=%r", prefix, t_max, per,
                       horizon * per, last)  # fmt: skip
    return OlmoCoreSchedule.of_curve(KIND, a, lr_curve, horizon, a["lr"],
                                     tokens_per_batch=a["tokens_per_batch"])  # fmt: skip


def from_olmo_core(scheduler, lr, *, units="steps", max_steps=None, max_tokens=None,
                   tokens_per_batch=None, **fields) -> OlmoCoreSchedule:  # fmt: skip
    """The schedule OLMo-core's scheduler class `scheduler` sets, as a paramsched schedule.

    Args:
        scheduler: A class name of `OLMO_CORE_SCHEDULERS` (or its registered name,
            ``"cos_with_warmup"``).
        lr: The optimizer's learning rate (OLMo-core's ``initial_lr``).
        units: ``"steps"`` or ``"tokens"``, the class's ``units``.
        max_steps: The trainer's ``max_steps`` (units ``"steps"``).
        max_tokens: The trainer's ``max_tokens`` (units ``"tokens"``).
        tokens_per_batch: The tokens of each optimizer step (needed for ``"tokens"``).
        **fields: The class's own fields (``warmup``, ``alpha_f``, ``stages``, ...).

    Returns:
        A schedule whose ``lr(n)`` is the rate OLMo-core's trainer uses at step ``n + 1``.

    Examples:
        >>> s = from_olmo_core("CosWithWarmup", lr=1e-3, warmup=10, max_steps=110)
        >>> s.lr(0), s.lr(9), s.lr(59), s.lr(109), s.lr(200)
        (0.0001, 0.001, 0.00055, 0.0001, 0.0001)
    """
    table = {"scheduler": scheduler, "lr": lr, "units": units, "max_steps": max_steps,
             "max_tokens": max_tokens, "tokens_per_batch": tokens_per_batch, **fields}  # fmt: skip
    return read_olmo_core(table)


KINDS[KIND] = lambda meaning, run: read_olmo_core(meaning)

__all__ = ["OLMO_CORE_SCHEDULERS", "OlmoCoreSchedule", "from_olmo_core", "olmo_core_arguments", "read_olmo_core"]  # fmt: skip
