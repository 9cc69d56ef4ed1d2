"""The curve engine: every schedule is a learning-rate curve and a weight-decay curve.

A `Curve` is a sequence of `Segment`s and a final value. Segment ``k`` covers
the clock positions ``(end[k-1], end[k]]`` (the first one ``[0, end[0]]``);
after the last one the curve holds its final value. A segment goes from a start
value ``a`` to a target ``b``; both are numbers or names (``"max_lr"``), which a
parameter group's overrides resolve, so every shape honours ``max_lr`` and
``min_lr`` overrides. With ``ratio = float(n - origin) / length``, the rules::

    warmup        a + (b - a) * float(n - origin) / length      (Megatron's warmup)
    decay         b + shape.decay(ratio) * (a - b)              (Megatron's decay)
    rise          a + shape.rise(ratio) * (b - a)               (Megatron's weight decay)
    stable        b + 1.0 * (a - b)                             (Megatron's WSD plateau)
    hold          b
    inverse-sqrt  max(b, a * max(origin, 1)**0.5 / max(n, 1)**0.5)
    formula       shape(n, a, m): another stack's own formula, operation for operation
    levels        a * factor**shape.levels(n - origin)        (step and multistep decays)
    power         min(a, coefficient * B(n) * T(n)**exponent)   (batch size B, tokens T)
    auto          warmup (linear) or rise when b >= a, else decay (phase schedules)

Each rule is written once, for a number or a NumPy array (`paramsched.shapes`),
and keeps Megatron-Core's operations in their order, so the floats are its own.

`CurveSchedule` is the schedule protocol, implemented once over the two curves:
everything a consumer (scheduler, writer, preview, checkpoint, distributed
check) asks of a schedule. `Schedule` (Megatron's arguments) and
`PhaseSchedule` (phases) differ only in how they build their curves and how
they describe themselves.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import numpy as np

from ..errors import (
    LIMIT,
    ScheduleError,
    ScheduleTypeError,
    check_non_negative,
    check_number,
    check_rate,
)
from .shapes import ARRAY, SCALAR, Shape, warmup
from .units import Length, branch_point, exact_searchsorted, length_of, positions_of

Operand = Union[str, float]
_BOUND_CACHE_SIZE = 64  # bound curves a schedule keeps (one per class of groups)
LR_NAMES = ("init_lr", "max_lr", "min_lr")
WD_NAMES = ("start_wd", "end_wd")
#: The value a branch starts from: its parent's at the branch point, for the group's values.
BRANCH_POINT = "@branch"
#: How a schedule is built back from its meaning, by kind (``kind(meaning, run)``):
#: each module that defines a kind of schedule registers it.
KINDS: dict[str, Callable] = {}


# Each rule makes the function of the clock position ``n`` for one segment with
# start ``a`` and target ``b``: a number in, a number out, or an array with
# ``m=ARRAY``. ``(n - origin) / length`` divides by a float, so it is
# Megatron's ``float(n - origin) / float(length)``; ``a - b`` is its ``delta_lr``.


def _warmup(seg, a, b):
    origin, length = seg.origin, seg.length

    def value(n, m=SCALAR):
        return warmup(a, b, n - origin, length)

    return value


def _decay(seg, a, b):
    origin, length, decay, delta = seg.origin, seg.length, seg.shape.decay, a - b

    def value(n, m=SCALAR):
        return b + decay((n - origin) / length, m) * delta

    return value


def _rise(seg, a, b):
    origin, length, rise, delta = seg.origin, seg.length, seg.shape.rise, b - a

    def value(n, m=SCALAR):
        return a + rise((n - origin) / length, m) * delta

    return value


def _stable(seg, a, b):
    held = b + 1.0 * (a - b)  # Megatron's WSD plateau: min + 1.0 * (max - min)

    def value(n, m=SCALAR):
        return held

    return value


def _hold(seg, a, b):
    def value(n, m=SCALAR):
        return b

    return value


def _inverse_sqrt(seg, a, b):
    scale = a * max(seg.origin, 1) ** 0.5

    def value(n, m=SCALAR):
        return m.maximum(b, scale / m.pow(m.maximum(n, 1), 0.5))

    return value


def _formula(seg, a, b):
    # Another stack's formula (`paramsched.formats`): a callable ``(n, base, m)`` that
    # performs that stack's operations in its order, with `a` (a group's ``max_lr``)
    # as the base its rate is scaled from.
    formula = seg.shape

    def value(n, m=SCALAR):
        return formula(n, a, m)

    return value


def _levels(seg, a, b):
    origin, levels, factor = seg.origin, seg.shape.levels, seg.shape.factor

    def value(n, m=SCALAR):
        return a * m.pow(factor, levels(n - origin, m))

    return value


def _power(seg, a, b):
    law = seg.shape
    coefficient, exponent = law.a, law.b

    def value(n, m=SCALAR):
        return m.minimum(a, coefficient * law.batch_size(n, m) * m.pow(law.tokens(n, m), exponent))

    return value


RULES: dict[str, Callable] = {
    "warmup": _warmup,
    "decay": _decay,
    "rise": _rise,
    "stable": _stable,
    "hold": _hold,
    "inverse-sqrt": _inverse_sqrt,
    "formula": _formula,
    "levels": _levels,
    "power": _power,
}


@dataclass(frozen=True)
class Segment:
    """One piece of a curve; see the module docstring for the rules.

    Attributes:
        end: The last clock position it covers.
        rule: One of `RULES`, or ``"auto"``.
        start: The value it starts from (a number or a name).
        target: The value it goes to (a number or a name).
        shape: The shape, for ``decay``, ``rise`` and ``auto``.
        origin: Where the ratio is 0 (usually the segment's begin).
        length: The ratio's denominator, a float.
        label: Its name in previews.
    """

    end: Union[int, float]
    rule: str
    start: Operand
    target: Operand
    shape: Optional[Shape] = None
    origin: Union[int, float] = 0
    length: float = 1.0
    label: str = ""

    def formula(self, a: float, b: float) -> Callable:
        """The segment's value as a function of the clock, for start `a` and target `b`
        (``auto`` picks its rule by direction)."""
        rule = self.rule
        if rule == "auto":
            rule = "decay" if b < a else "warmup" if self.shape.name == "linear" else "rise"
        return RULES[rule](self, a, b)


_SCALED = re.compile(r"(?P<factor>[^*\s]+) \* (?P<name>\S+)")


@functools.lru_cache(maxsize=256)
def scaled(operand: str) -> tuple[float, str]:
    """A named value times a factor, written ``"0.8 * max_lr"``: ``(0.8, "max_lr")``;
    a plain name is ``(1.0, name)``."""
    match = _SCALED.fullmatch(operand)
    try:
        return (float(match["factor"]), match["name"]) if match else (1.0, operand)
    except ValueError:  # not a number: not a scaled name
        return (1.0, operand)


def _resolve(operand: Operand, values: dict) -> float:
    if not isinstance(operand, str):
        return operand
    value = values.get(operand)
    if value is None:  # "0.8 * max_lr": the named value times the factor
        factor, name = scaled(operand)
        return factor * values[name]
    return value


#: Where a scheduled value other than lr and wd goes: into every parameter group under
#: its key, or to the training loop, which reads it from the scheduler.
VALUE_PLACES = ("group", "loop")
#: A per-group override of a scheduled value's named value (``"betas[1].end"``).
VALUE_OVERRIDE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[0-9]\])?\.[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
#: How a learning rate follows the batch size (`batch_factor`).
BATCH_SIZE_RULES = ("sqrt", "linear")


def batch_factor(rule: str, batch_size, reference) -> float:
    """The factor a ``sqrt`` or ``linear`` rule scales the learning rate by at
    `batch_size`: ``math.sqrt(batch_size / reference)`` or ``batch_size / reference``
    (the learning rate is then ``lr * factor``: one correctly rounded division, square
    root and product, the same for a number and an array)."""
    ratio = batch_size / reference
    return (
        (np.sqrt(ratio) if isinstance(ratio, np.ndarray) else math.sqrt(ratio))
        if rule == "sqrt"
        else ratio
    )


@dataclass(frozen=True)
class ScheduledValue:
    """A value besides the learning rate and weight decay, scheduled by phases.

    Attributes:
        name: The group key (``"eps"``, ``"momentum"``, ``"betas[1]"``: one component
            of a tuple) or the loop's name for it (``"grad_clip"``).
        place: ``"group"`` (written into every parameter group) or ``"loop"`` (read
            from the scheduler by the training loop).
        curve: Its curve; the names it uses are `named`'s.
        named: ``((name, value), ...)``: the table's named values (``start`` first),
            which a parameter group overrides under ``"{name}.{named value}"``.
    """

    name: str
    place: str
    curve: Curve
    named: tuple

    @property
    def key(self) -> str:
        """The group key it is written under (``"betas"`` for ``"betas[1]"``)."""
        return self.name.split("[", 1)[0]

    @property
    def index(self) -> int | None:
        """The tuple component it is written into, or None for the whole key."""
        return int(self.name[:-1].split("[", 1)[1]) if self.name.endswith("]") else None

    @property
    def override_keys(self) -> tuple[str, ...]:
        """The group keys that override its named values (``"betas[1].end"``)."""
        return tuple(f"{self.name}.{name}" for name, _ in self.named)

    def defaults(self) -> dict:
        return dict(self.named)


@dataclass(frozen=True)
class Piece:
    """One segment of a schedule, for display: where it runs and its end values."""

    name: str
    start: float
    end: float
    lr_start: float
    lr_end: float


@dataclass(frozen=True)
class Curve:
    """Segments with increasing ends, then a final value (`final_label` in previews).

    Examples:
        >>> warm = Segment(4, "warmup", "init_lr", "max_lr", length=4.0)
        >>> curve = Curve((warm,), "max_lr")
        >>> values = {"init_lr": 0.0, "max_lr": 1.0}
        >>> curve.at(2, values), curve.at(9, values), curve.bind(values)(3)
        (0.5, 1.0, 0.75)
    """

    segments: tuple[Segment, ...]
    final: Operand
    final_label: str = "hold"
    ends: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", tuple(s.end for s in self.segments))

    def names(self) -> set[str]:
        """The named values the curve uses."""
        operands = [self.final] + [o for s in self.segments for o in (s.start, s.target)]
        return {scaled(o)[1] for o in operands if isinstance(o, str)}

    def at(self, n, values: dict) -> float:
        """The value at clock position `n` (no checks), names resolved from `values`;
        `bind` is the same, for many positions."""
        return self.bind(values)(n)

    def bind(self, values: dict) -> Callable:
        """`at` with the names resolved once: a function of `n`, for the per-step path."""
        final = _resolve(self.final, values)
        formulas = [
            seg.formula(_resolve(seg.start, values), _resolve(seg.target, values))
            for seg in self.segments
        ]
        formulas.append(lambda n: final)  # after the last segment
        ends, find = self.ends, bisect.bisect_left

        def at(n):
            return formulas[find(ends, n)](n)

        return at

    def array(self, steps: np.ndarray, values: dict) -> np.ndarray:
        """`at` over a float64 array; the cost grows with the steps, not the segments."""
        out = np.empty(steps.shape, dtype=np.float64)
        flat, result = steps.ravel(), out.ravel()
        index = exact_searchsorted(self.ends, flat, side="left")
        order = (
            None
            if flat.size < 2 or np.all(flat[1:] >= flat[:-1])
            else np.argsort(index, kind="stable")
        )
        ordered = index if order is None else index[order]
        bounds = np.searchsorted(ordered, np.arange(len(self.segments) + 2), side="left")
        for number in range(len(self.segments) + 1):
            chunk = slice(bounds[number], bounds[number + 1])
            if chunk.start == chunk.stop:
                continue
            where = chunk if order is None else order[chunk]
            if number == len(self.segments):
                result[where] = _resolve(self.final, values)
                continue
            seg = self.segments[number]
            formula = seg.formula(_resolve(seg.start, values), _resolve(seg.target, values))
            result[where] = formula(flat[where], ARRAY)
        return out

    def up_to(self, at) -> tuple[Segment, ...]:
        """The segments that give this curve's values at every position up to `at`,
        the last one ending at `at` (a hold of the final value if `at` is past the
        last end): the same rules, origins and lengths, so the same floats.

        Examples:
            >>> warm = Segment(4, "warmup", 0.0, 1.0, length=4.0)
            >>> [(s.end, s.rule) for s in Curve((warm,), 1.0).up_to(2)]
            [(2, 'warmup')]
            >>> [(s.end, s.rule) for s in Curve((warm,), 1.0).up_to(9)]
            [(4, 'warmup'), (9, 'hold')]
        """
        kept = []
        for segment in self.segments:
            if segment.end >= at:
                return (*kept, dataclasses.replace(segment, end=at))
            kept.append(segment)
        return (*kept, Segment(at, "hold", self.final, self.final, label=self.final_label))

    def pieces(self, values: dict, horizon) -> list[Piece]:
        """Each segment with its values at its begin and end, then a hold to `horizon`."""
        found, begin = [], 0
        for seg in self.segments:
            formula = seg.formula(_resolve(seg.start, values), _resolve(seg.target, values))
            found.append(
                Piece(seg.label, begin, seg.end, float(formula(begin)), float(formula(seg.end)))
            )
            begin = seg.end
        if horizon > begin:
            final = float(_resolve(self.final, values))
            found.append(Piece(self.final_label, begin, horizon, final, final))
        return found


class CurveSchedule:
    """The schedule protocol, answered once for every schedule built of curves.

    A subclass sets `lr_curve` and `wd_curve` (a `Curve`, or None for a schedule
    without a weight-decay part, which leaves each group's ``weight_decay`` as the
    optimizer has it), `run` (a `paramsched.Run` or None), the named values
    (``init_lr``, ``max_lr``, ``min_lr``, ``start_wd``, ``end_wd``) as attributes,
    and answers `horizon`, `fields` and `to_state`.
    """

    lr_curve: Curve
    wd_curve: Optional[Curve]
    parent = None  # a branch's parent schedule (see `branch`), and where it departs
    branch_point = None
    kind: str  # its name in `KINDS`
    #: The other values it schedules (`ScheduledValue`), by name.
    values: tuple = ()
    #: Whether each parameter group's own ``lr`` (torch's ``initial_lr``), when a torch
    #: scheduler attaches, is its ``max_lr``: a stack whose scheduler scales each group's
    #: first rate (``LambdaLR``'s ``base_lr``) says so.
    base_lr_from_groups: bool = False
    #: Parameter-group keys the schedule cannot honour, each with the reason: a group that
    #: has one is refused rather than run otherwise than its stack would run it.
    refused_group_keys: dict = {}
    #: How the learning rate follows the run's batch size: ``(rule, reference batch
    #: size)`` (`batch_factor`), or None.
    batch_size_rule: Optional[tuple] = None

    def meaning(self) -> dict:
        """What the schedule is, as builtins that ``KINDS[kind]`` builds it back from."""
        raise NotImplementedError

    # --------------------------------------------------------------- values

    def lr(self, step, max_lr: float | None = None, min_lr: float | None = None):
        """The learning rate after `step` steps of the schedule's clock.

        Args:
            step: A clock position, or an array-like of them (>= 0, finite).
            max_lr: A parameter group's override of `max_lr`; default the schedule's.
            min_lr: A parameter group's override of `min_lr`; default the schedule's.

        Returns:
            A float for a scalar step, a float64 array of the same shape for an array.
        """
        return self._lr(step, max_lr, min_lr, "lr")

    def base_lr(self, step, max_lr: float | None = None, min_lr: float | None = None):
        """`lr` before a batch-size rule scales it (`lr` itself without one)."""
        return self._lr(step, max_lr, min_lr, "lr-base")

    def _lr(self, step, max_lr, min_lr, which: str):
        max_lr = self.max_lr if max_lr is None else check_rate("max_lr", max_lr)
        min_lr = self.min_lr if min_lr is None else check_rate("min_lr", min_lr)
        if is_scalar(step):
            return float(self._bound(which, max_lr, min_lr)(check_non_negative("step", step)))
        steps = step_array(step)
        base = self.lr_curve.array(steps, self._lr_values(max_lr, min_lr))
        if which == "lr-base" or self.batch_size_rule is None:
            return base
        rule, reference = self.batch_size_rule
        return base * batch_factor(rule, self.run.batch_sizes_at(steps), reference)

    def value(self, name: str, step, **overrides):
        """A scheduled value (`values`) after `step` steps of the clock.

        Args:
            name: Its name (``"betas[1]"``, ``"grad_clip"``).
            step: A clock position, or an array-like of them.
            **overrides: A parameter group's overrides of its named values
                (``end=0.999``); default the schedule's.
        """
        scheduled = self.scheduled(name)
        given = self.value_overrides(
            scheduled, tuple(overrides.get(n) for n, _ in scheduled.named), "value"
        )
        unknown = sorted(set(overrides) - {n for n, _ in scheduled.named})
        if unknown:
            raise ScheduleError(
                f"value({name!r}) got {unknown[0]}=...; expected one of its "
                "named values: " + ", ".join(n for n, _ in scheduled.named)
            )
        if is_scalar(step):
            return float(self._bound(("value", name), given)(check_non_negative("step", step)))
        return scheduled.curve.array(step_array(step), self._value_values(name, given))

    def scheduled(self, name: str) -> ScheduledValue:
        """The `ScheduledValue` called `name`, or an error listing them."""
        for scheduled in self.values:
            if scheduled.name == name:
                return scheduled
        raise ScheduleError(
            f"the schedule has no value {name!r}; expected one of "
            + (
                ", ".join(repr(v.name) for v in self.values)
                or "(none: it schedules only lr and weight decay)"
            )
        )

    def value_overrides(self, scheduled: ScheduledValue, given: tuple, where: str) -> tuple:
        """A group's overrides of a value's named values (None: the schedule's), checked."""
        return tuple(
            default if value is None else _check_value(f"{where}[{key!r}]", value)
            for (_, default), key, value in zip(scheduled.named, scheduled.override_keys, given)
        )

    def value_at(self, name: str, n, given: tuple) -> float:
        """`value` without checks, for a group's checked overrides (`value_overrides`)."""
        return self._bound(("value", name), given)(n)

    def bind_value(self, name: str, given: tuple) -> Callable:
        """A value as a function of the clock, for a group's checked overrides."""
        return self._bound(("value", name), given)

    def wd(self, step, start_wd: float | None = None, end_wd: float | None = None):
        """The weight decay after `step` steps (before any group's ``wd_mult``).

        Raises:
            ScheduleError: the schedule has no weight-decay part.
        """
        if self.wd_curve is None:
            raise ScheduleError(
                "the schedule has no weight-decay part; expected start_wd "
                "(and end_wd) in it, or the optimizer's own weight_decay"
            )
        start_wd = self.start_wd if start_wd is None else check_rate("start_wd", start_wd)
        end_wd = self.end_wd if end_wd is None else check_rate("end_wd", end_wd)
        if is_scalar(step):
            return float(self._bound("wd", start_wd, end_wd)(check_non_negative("step", step)))
        return self.wd_curve.array(step_array(step), self._wd_values(start_wd, end_wd))

    def lr_at(self, n, max_lr: float, min_lr: float) -> float:
        """`lr` without checks, for a group's ``max_lr`` and ``min_lr``."""
        return self._bound("lr", max_lr, min_lr)(n)

    def base_lr_at(self, n, max_lr: float, min_lr: float) -> float:
        """`base_lr` without checks (what a branch starts from: its rule scales it again)."""
        return self._bound("lr-base", max_lr, min_lr)(n)

    def wd_at(self, n, start_wd: float, end_wd: float) -> float:
        """`wd` without checks, for a group's ``start_wd`` and ``end_wd``."""
        return self._bound("wd", start_wd, end_wd)(n)

    def bind(self, max_lr, min_lr, start_wd, end_wd) -> tuple[Callable, Callable | None]:
        """The learning rate and weight decay of one class of groups, as functions of
        the clock (the weight decay None without a weight-decay part)."""
        lr = self._bound("lr", max_lr, min_lr)
        return lr, None if self.wd_curve is None else self._bound("wd", start_wd, end_wd)

    def _bound(self, which, first, second=None) -> Callable:
        """A curve bound to a group's values (``max_lr, min_lr``, ``start_wd, end_wd``,
        or a scheduled value's overrides), kept in a small cache: derived, never
        compared or pickled."""
        cache = self.__dict__.get("_bound_curves")
        if cache is None:
            cache = self.__dict__["_bound_curves"] = {}
        key = (which, type(first), first, type(second), second)  # float32 is not float
        bound = cache.get(key)
        if bound is None:
            if len(cache) >= _BOUND_CACHE_SIZE:
                cache.clear()
            if which == "lr":
                bound = self._scaled(self._bound("lr-base", first, second))
            elif which == "lr-base":
                bound = self.lr_curve.bind(self._lr_values(first, second))
            elif which == "wd":
                bound = self.wd_curve.bind(self._wd_values(first, second))
            else:
                bound = self.scheduled(which[1]).curve.bind(self._value_values(which[1], first))
            cache[key] = bound
        return bound

    def _scaled(self, base: Callable) -> Callable:
        """The learning rate `base` scaled by the batch-size rule (itself without one)."""
        if self.batch_size_rule is None:
            return base
        rule, reference = self.batch_size_rule
        batch_size_at, factors = self.run.batch_size_at, {}

        def at(n):
            size = batch_size_at(n)
            factor = factors.get(size)
            if factor is None:
                factor = factors[size] = batch_factor(rule, size, reference)
            return base(n) * factor

        return at

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_bound_curves", None)
        return state

    def _lr_values(self, max_lr, min_lr) -> dict:
        return {
            "init_lr": self.init_lr,
            "max_lr": self.max_lr if max_lr is None else max_lr,
            "min_lr": self.min_lr if min_lr is None else min_lr,
        }

    def _wd_values(self, start_wd, end_wd) -> dict:
        return {
            "start_wd": self.start_wd if start_wd is None else start_wd,
            "end_wd": self.end_wd if end_wd is None else end_wd,
        }

    def _value_values(self, name: str, given: tuple) -> dict:
        """A scheduled value's named values, for a group's overrides (`value_overrides`)."""
        return {key: value for (key, _), value in zip(self.scheduled(name).named, given)}

    # ------------------------------------------------------ what it answers

    @property
    def has_wd(self) -> bool:
        """Whether the schedule sets the weight decay."""
        return self.wd_curve is not None

    @property
    def length(self) -> Length:
        """The run's length: ``Length(steps, samples, tokens)``, each None where the run
        cannot say. It is the run's ``total`` (landed on a whole step, as ``"100%"`` is),
        or where the learning rate's last phase or decay ends for a run without one, as
        ``paramsched preview`` totals it. A schedule without a run counts optimizer steps
        (as `paramsched.torch.ParamScheduler` steps it): its length is in steps only.

        Examples:
            >>> from paramsched import PhaseSchedule, Schedule
            >>> schedule = PhaseSchedule.from_dict({
            ...     "run": {"global_batch_size": 256, "seq_length": 4096, "total": "2B tokens"},
            ...     "lr": {"max_lr": 3e-4, "phases": [
            ...         {"shape": "linear", "to": "max_lr", "until": "100 steps"},
            ...         {"shape": "cosine", "to": "min_lr", "until": "100%"}]}})
            >>> schedule.length
            Length(steps=1908, samples=488448, tokens=2000683008)
            >>> schedule.length.steps
            1908
            >>> Schedule(max_lr=3e-4, lr_decay_steps=10_000, lr_decay_style="cosine").length
            Length(steps=10000, samples=None, tokens=None)
        """
        return length_of(self)

    def pieces(self, total) -> list[Piece]:
        """The learning rate's segments, for previews, up to `total` clock positions."""
        return self.lr_curve.pieces(self._lr_values(None, None), total)

    def value_pieces(self, name: str, total) -> list[Piece]:
        """A scheduled value's segments, for previews, up to `total` clock positions
        (`Piece.lr_start` and `lr_end` hold the value's own start and end)."""
        scheduled = self.scheduled(name)
        given = tuple(value for _, value in scheduled.named)
        return scheduled.curve.pieces(self._value_values(name, given), total)

    def branch(
        self, at, phases: list, wd: list | None = None, total=None, values: dict | None = None
    ):
        """A schedule equal to this one up to `at` (to the bit), then following `phases`.

        Args:
            at: The branch point: a quantity (``"60000 steps"``, ``"800B tokens"``,
                ``"80%"``) of this schedule's run, or a clock position (samples).
            phases: The learning rate's phases after `at`, as in a ``[lr]`` table; the
                first one's ``from`` defaults to this schedule's value at `at`, for
                each group's ``max_lr`` and ``min_lr``, so per-group overrides hold.
            wd: Optionally, the weight decay's phases after `at`, the same way;
                without them the weight decay is this schedule's.
            total: Optionally, a new length for the run (what ``"%"`` refers to in
                `phases`).
            values: Optionally, ``{name: phases}`` for values this schedule schedules
                (``"betas[1]"``, ``"grad_clip"``), the same way; the others continue as
                this schedule's.

        Returns:
            A `paramsched.PhaseSchedule` that carries this schedule and `at`, so its
            checkpoints resume the same branch.

        Examples:
            >>> from paramsched import Schedule
            >>> wsd = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=10, lr_decay_steps=1000,
            ...                lr_decay_style="WSD", wsd_decay_steps=100, lr_wsd_decay_style="linear")
            >>> cooldown = wsd.branch(500, [{"shape": "linear", "to": "min_lr",
            ...                              "until": "600 steps"}])
            >>> cooldown.lr(500) == wsd.lr(500), cooldown.lr(550), cooldown.lr(600)
            (True, 0.5, 0.0)
        """
        # On this schedule's positions, before `total` changes the run.
        positions = positions_of(self)
        at = branch_point(positions, at)
        run = {} if self.run is None else self.run.to_dict()
        if total is not None:
            # Without a run, positions count optimizer steps: a total in steps is as many.
            ends = positions.samples(total, "total")
            run["total"] = total if self.run is not None else f"{ends!r} samples"
            if ends < at:
                raise ScheduleError(
                    f"total={total!r} is {ends!r} {positions.unit}, before the "
                    f"branch point at {at!r} {positions.unit}; expected a run "
                    "that goes past it"
                )
        data = {
            "branch": {"parent": {"kind": self.kind, **self.meaning()}, "at": at},
            "run": run,
            "lr": {"phases": phases},
        }
        if wd is not None:
            data["wd"] = {"phases": wd}
        if values is not None:
            if not isinstance(values, dict):
                raise ScheduleTypeError(f"values={values!r}; expected {{name: phases}}")
            for name, value_phases in values.items():
                place = self.scheduled(name).place
                data.setdefault(place, {})[name] = {"phases": value_phases}
        return KINDS["phases"](data, None)

    def agrees_with(self, other, position) -> bool:
        """Whether `other` gives this schedule's values at every clock position up to
        `position`: it is this schedule, or one it branches from (through any number
        of branches) and `position` is at or before the branch point."""
        schedule = self
        while schedule != other:
            if schedule.parent is None or position > schedule.branch_point:
                return False
            schedule = schedule.parent
        return True

    def departs_from(self, other):
        """The branch point where this schedule departs from `other`, one it branches
        from, or None."""
        schedule, point = self, None
        while schedule.parent is not None:
            point = schedule.branch_point if point is None else min(point, schedule.branch_point)
            if schedule.parent == other:
                return point
            schedule = schedule.parent
        return None

    def check_group(self, max_lr, min_lr, start_wd, end_wd, where: str) -> list[str]:
        """Refuses a group the schedule cannot run, naming `where`; returns what is
        unusual about one it runs (``["min_lr=0.5 and max_lr=0.1"]``, for one
        WARNING), else an empty list.

        A group whose ``min_lr`` and ``max_lr`` (or ``start_wd`` and ``end_wd``) are in
        the opposite order to the schedule's own runs as Megatron runs it (its rate
        rises during the decay), since Megatron's formulas are well defined there; a
        constant weight decay with two different values is refused, as Megatron does.
        """
        unusual = []
        if (min_lr > max_lr) != (self.min_lr > self.max_lr):
            unusual.append(f"min_lr={min_lr!r} and max_lr={max_lr!r}")
        if self.wd_curve is None:
            return unusual
        if (
            "start_wd" not in self.wd_curve.names()
            and start_wd != end_wd
            and self.start_wd == self.end_wd
        ):  # a constant weight decay (Megatron's)
            raise ScheduleError(
                f"{where} has start_wd={start_wd!r} and end_wd={end_wd!r} with "
                "a constant weight decay; expected equal values"
            )
        if (start_wd > end_wd) != (self.start_wd > self.end_wd):
            unusual.append(f"start_wd={start_wd!r} and end_wd={end_wd!r}")
        return unusual

    def describe(self) -> str:
        """A short description for messages."""
        return type(self).__name__


def _check_value(field: str, value) -> float:
    """A scheduled value's named value: a finite number (of either sign), as a float."""
    try:
        return float(check_number(field, value))
    except ScheduleTypeError:
        raise
    except ScheduleError as error:  # "beyond any run" speaks of clock positions
        raise ScheduleError(
            str(error).replace(
                "is beyond any run; expected at most 1e18 in size",
                "is too large for a hyperparameter; expected at most 1e18 in size",
            )
        ) from None


def is_scalar(step) -> bool:
    kind = type(step)
    return kind is int or kind is float or (np.ndim(step) == 0 and not isinstance(step, np.ndarray))


def step_array(step) -> np.ndarray:
    """`step` as an array, refusing negative, non-finite and non-numeric entries: whole
    numbers as int64 (exact, as the scalar path's ints are, up to 1e18), others as
    float64."""
    try:
        steps = np.asarray(step)
    except (TypeError, ValueError) as error:
        raise ScheduleTypeError(f"step={step!r} is not an array of numbers") from error
    if steps.dtype == bool or not (
        np.issubdtype(steps.dtype, np.integer) or np.issubdtype(steps.dtype, np.floating)
    ):
        raise ScheduleTypeError(f"step has dtype {steps.dtype}; expected integer or float steps")
    if (
        np.issubdtype(steps.dtype, np.integer)
        and steps.size
        and steps.min() >= 0
        and steps.max() <= LIMIT
    ):
        return steps.astype(np.int64)  # compared and subtracted exactly, as ints are
    steps = steps.astype(np.float64)
    bad = ~np.isfinite(steps) | (steps < 0)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ScheduleError(
            f"step[{where}]={float(steps[index])!r} is negative or not finite; "
            "expected finite steps >= 0"
        )
    return steps
