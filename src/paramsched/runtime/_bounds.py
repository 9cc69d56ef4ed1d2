"""The values each optimizer accepts, and the check of a schedule's whole curves against them.

`BOUNDS` is the one table: for each ``torch.optim`` optimizer, the bound its
constructor puts on each group value (``0 <= betas[1] < 1`` for Adam's family,
``momentum >= 0`` for SGD...), as torch's own constructors check them. The
optimizer's class is looked up along its MRO (a subclass of ``AdamW`` has
AdamW's bounds), then, for a wrapper that is not one (Megatron's optimizers,
accelerate's), on the optimizer it wraps (``optimizer.optimizer``). Any other
optimizer gets the checks every optimizer needs: ``lr >= 0``, ``weight_decay >= 0``
(both hold by construction, see `_BY_CONSTRUCTION`), and every value finite.

`check_bounds` checks the whole curve of the learning rate, the weight decay
and every scheduled group value, for each class of groups (their overrides
resolved as the writer resolves them), at every position ``>= 0``. A curve is
segments, each monotone over its positions (every rule is: a warmup, a hold,
``b + coeff(ratio) * (a - b)`` with a shape's coefficient going one way over
its ratio in ``[0, 1]``, the inverse square root), and the float evaluation of
each is a composition of correctly rounded monotone operations. So a segment's
values lie between its values at its first and last positions, and two
evaluations per segment (and per stage of the weight decay's ``wd_mult``, a
constant) decide exactly whether any position is out of range: the work grows
with the number of segments, never with the steps. A batch-size rule scales the
learning rate by a factor > 0, which keeps its sign: the learning rate's bounds
(all of the form ``lr >= 0`` or ``lr > 0``) are checked on the rate before the
rule. The first position out of range is then found in the offending segment
by bisection: the first whole position (samples, tokens and steps are whole
numbers), or, where no whole position of the segment is out, the first float.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable

from ..errors import LIMIT, ScheduleError


@dataclass(frozen=True)
class Bound:
    """``low <= value`` (``<`` when not `low_inclusive`), and below `high` likewise;
    `note` says why, where the bound is tighter than the optimizer's own check."""

    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = False
    note: str = ""

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and not (
            self.low <= value if self.low_inclusive else self.low < value
        ):
            return False
        return self.high is None or (
            value <= self.high if self.high_inclusive else value < self.high
        )

    def describe(self, key: str) -> str:
        """The bound as torch writes it: ``0 <= betas[1] < 1``, ``eps >= 0``."""
        low = None if self.low is None else f"{self.low:g} {'<=' if self.low_inclusive else '<'}"
        high = (
            None if self.high is None else f"{'<=' if self.high_inclusive else '<'} {self.high:g}"
        )
        if low is not None and high is not None:
            return f"{low} {key} {high}"
        if low is not None:
            return f"{key} {'>=' if self.low_inclusive else '>'} {self.low:g}"
        return f"{key} {high}"


_AT_LEAST_0 = Bound(0.0)
_ABOVE_0 = Bound(0.0, low_inclusive=False)
_BELOW_1 = Bound(0.0, high=1.0)  # 0 <= x < 1
# torch checks only momentum >= 0 (alpha >= 0): beyond 1 its update cannot work.
_MOMENTUM = Bound(
    0.0,
    high=1.0,
    high_inclusive=True,
    note="torch accepts more, but above 1 the momentum buffer grows without bound",
)
_ALPHA = Bound(
    0.0,
    high=1.0,
    high_inclusive=True,
    note="torch accepts more, but above 1 the average of squared gradients it "
    "takes the square root of turns negative",
)
_ADAM = {
    "lr": _AT_LEAST_0,
    "eps": _AT_LEAST_0,
    "betas[0]": _BELOW_1,
    "betas[1]": _BELOW_1,
    "weight_decay": _AT_LEAST_0,
}

#: The bounds of each ``torch.optim`` optimizer (by class name) on its group values, as its
#: constructor checks them, and where its update cannot work past a value torch accepts
#: (a `Bound.note` says so: ``momentum`` and RMSprop's ``alpha`` above 1; and SparseAdam's
#: ``lr = 0``, which its constructor refuses and its step runs).
#: ``initial_accumulator_value`` and the like, read only when the optimizer starts, are
#: not group values a schedule changes.
BOUNDS: dict[str, dict[str, Bound]] = {
    "Adam": _ADAM,
    "AdamW": _ADAM,
    "Adamax": _ADAM,
    "NAdam": {**_ADAM, "momentum_decay": _AT_LEAST_0},
    "RAdam": _ADAM,
    "SparseAdam": {
        "lr": Bound(
            0.0,
            note="torch's constructor refuses 0, but a step at 0 "
            "changes nothing (a warmup from 0 runs)",
        ),
        "eps": _ABOVE_0,
        "betas[0]": _BELOW_1,
        "betas[1]": _BELOW_1,
    },
    "SGD": {"lr": _AT_LEAST_0, "momentum": _MOMENTUM, "weight_decay": _AT_LEAST_0},
    "RMSprop": {
        "lr": _AT_LEAST_0,
        "eps": _AT_LEAST_0,
        "momentum": _MOMENTUM,
        "weight_decay": _AT_LEAST_0,
        "alpha": _ALPHA,
    },
    "Adagrad": {
        "lr": _AT_LEAST_0,
        "lr_decay": _AT_LEAST_0,
        "weight_decay": _AT_LEAST_0,
        "eps": _AT_LEAST_0,
    },
    "Adadelta": {
        "lr": _AT_LEAST_0,
        "rho": Bound(0.0, high=1.0, high_inclusive=True),
        "eps": _AT_LEAST_0,
        "weight_decay": _AT_LEAST_0,
    },
    "ASGD": {"lr": _AT_LEAST_0, "weight_decay": _AT_LEAST_0},
    "Rprop": {
        "lr": _AT_LEAST_0,
        "etas[0]": Bound(0.0, low_inclusive=False, high=1.0),
        "etas[1]": Bound(1.0, low_inclusive=False),
    },
    "LBFGS": {"lr": _AT_LEAST_0},
    "Adafactor": {
        "lr": _AT_LEAST_0,
        "beta2_decay": Bound(high=0.0, high_inclusive=True),
        "eps[0]": _AT_LEAST_0,
        "eps[1]": _AT_LEAST_0,
        "d": Bound(1.0),
        "weight_decay": _AT_LEAST_0,
    },
    "Muon": {"lr": _AT_LEAST_0, "momentum": _MOMENTUM, "weight_decay": _AT_LEAST_0},
}
#: What every optimizer needs (and every value is finite).
GENERIC: dict[str, Bound] = {"lr": _AT_LEAST_0, "weight_decay": _AT_LEAST_0}
_FINITE = Bound()
#: Values >= 0 by construction: every named value and override of the learning rate and
#: weight decay is checked >= 0 (and ``wd_mult``, and a batch-size rule's factor > 0), and
#: every rule stays between two of them. Their floats may still round below 0 where a
#: rule meets 0 (a group warming up to ``max_lr = 0`` ends at -8.7e-19 by Megatron's
#: formula, which megatron-core writes too): that is no value an optimizer's step notices,
#: and is not refused; only another bound would be checked on them (none is).
_BY_CONSTRUCTION = ("lr", "weight_decay")


def optimizer_bounds(optimizer) -> tuple[str | None, dict[str, Bound]]:
    """``(the torch optimizer's name, its bounds)`` for `optimizer`, or ``(None,
    GENERIC)`` for an optimizer of another kind."""
    for candidate in (optimizer, getattr(optimizer, "optimizer", None)):
        for cls in type(candidate).__mro__ if candidate is not None else ():
            module = getattr(cls, "__module__", "") or ""
            if (
                module == "torch.optim" or module.startswith("torch.optim.")
            ) and cls.__name__ in BOUNDS:
                return cls.__name__, {**GENERIC, **BOUNDS[cls.__name__]}
    return None, GENERIC


def check_bounds(schedule, optimizer, classes: list[tuple]) -> None:
    """Refuses a schedule any of whose values leaves the optimizer's bounds at some
    position, for some class of groups; the message names each one found (its groups,
    the value, where it first leaves them, and the bound). Writes nothing.

    Args:
        schedule: The schedule (`paramsched._curve.CurveSchedule`).
        optimizer: The optimizer (for `optimizer_bounds`).
        classes: For each class of groups: ``(positions of its groups, (max_lr, min_lr,
            start_wd, end_wd, wd_mult) as resolved, each scheduled group value's
            overrides as resolved)``.
    """
    name, bounds = optimizer_bounds(optimizer)
    scheduled = [v for v in schedule.values if v.place == "group"]
    problems = []
    for positions, (max_lr, min_lr, start_wd, end_wd, wd_mult), given in classes:
        curves = [
            (
                "lr",
                schedule.lr_curve,
                lambda n, a=max_lr, b=min_lr: schedule.base_lr_at(n, a, b),
                lambda n, a=max_lr, b=min_lr: schedule.lr_at(n, a, b),
            )
        ]
        if schedule.has_wd:

            def wd(n, a=start_wd, b=end_wd, mult=wd_mult):
                return schedule.wd_at(n, a, b) * mult

            curves.append(("weight_decay", schedule.wd_curve, wd, wd))
        for value, overrides in zip(scheduled, given):

            def at(n, key=value.name, overrides=overrides):
                return schedule.value_at(key, n, overrides)

            curves.append((value.name, value.curve, at, at))
        for key, curve, checked, reported in curves:
            bound = bounds.get(key, _FINITE)
            if (
                key in _BY_CONSTRUCTION
                and bound.low == 0.0
                and bound.low_inclusive
                and bound.high is None
            ):
                bound = _FINITE
            first = first_out_of_range(curve.ends, checked, bound.holds)
            if first is None:
                continue
            groups = ", ".join(str(p) for p in positions)
            requires = (
                f"{name} requires {bound.describe(key)}" + (f": {bound.note}" if bound.note else "")
                if name is not None
                else (
                    "a value must be finite"
                    if bound is _FINITE
                    else f"every optimizer requires {bound.describe(key)}"
                )
            )
            problems.append(
                f"optimizer.param_groups[{groups}]: {key} reaches "
                f"{float(reported(first))!r} at {_where(schedule, first)} "
                f"({requires})"
            )
    if problems:
        raise ScheduleError(
            "; ".join(problems) + "; expected a schedule whose values the "
            "optimizer accepts at every step"
        )


def first_out_of_range(ends, value: Callable, holds: Callable):
    """The first position ``>= 0`` (up to `LIMIT`) at which `value` does not hold, for a
    curve whose segments end at `ends` (each monotone), or None: the first whole position
    of the first segment that has one out, else that segment's first float position.
    Two evaluations a segment, and a bisection in the one found.

    Examples:
        >>> ramp = lambda n: 0.95 + 0.55 * min(n, 200) / 200  # to 1.5 at 200
        >>> first_out_of_range((200,), ramp, BOUNDS["AdamW"]["betas[1]"].holds)
        19
        >>> BOUNDS["AdamW"]["betas[1]"].describe("betas[1]"), ramp(18) < 1 <= ramp(19)
        ('0 <= betas[1] < 1', True)
    """
    begin = None  # the previous end (the segment's positions are above it), None for 0
    for end in (*(e for e in ends if e < LIMIT), LIMIT):
        low = 0 if begin is None else _after(begin)
        if low <= end:
            low_holds, end_holds = holds(value(low)), holds(value(end))
            if not (low_holds and end_holds):
                return _first_in(low, end, low_holds, value, holds)
        begin = end
    return None


def _after(position):
    """The first position above `position` (a float one where floats are finer)."""
    if isinstance(position, int) and position >= 2**53:
        return position + 1  # every float from here on is whole
    return math.nextafter(float(position), math.inf)


def _first_in(low, high, low_holds: bool, value, holds):
    """The first position out of range in ``[low, high]`` (`value` monotone there, out of
    range at one end at least), whole if one is."""

    def out(n):
        return not holds(value(n))

    first_whole, last_whole = math.ceil(low), math.floor(high)
    if first_whole <= last_whole:
        if out(first_whole):
            return first_whole
        if out(last_whole):  # out on a suffix of [first_whole, last_whole]
            inside, outside = first_whole, last_whole
            while outside - inside > 1:
                middle = (inside + outside) // 2
                inside, outside = (inside, middle) if out(middle) else (middle, outside)
            return outside
    if not low_holds:
        return low
    inside, outside = _bits(float(low)), _bits(float(high))  # out at high: a float suffix
    while outside - inside > 1:
        middle = (inside + outside) // 2
        inside, outside = (inside, middle) if out(_float(middle)) else (middle, outside)
    return _float(outside)


def _bits(number: float) -> int:
    """A float >= 0 as an integer of the same order (its IEEE 754 bits)."""
    return struct.unpack("<q", struct.pack("<d", number))[0]


def _float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def _where(schedule, position) -> str:
    """A position as the scheduler counts it: ``num_steps=120``, with the unit and the
    optimizer step for a run."""
    shown = f"num_steps={position!r}"
    run = schedule.run
    if run is None:
        return shown
    if run.counts_tokens or run.global_batch_size is None:
        return f"{shown} ({run.unit})"
    try:
        step = run.step_at_samples(position)
        exact = run.samples_at_step(step) == position
    except ScheduleError:
        return f"{shown} ({run.unit})"
    return (
        f"{shown} ({run.unit}, step {step})"
        if exact
        else f"{shown} ({run.unit}, before step {step})"
    )
