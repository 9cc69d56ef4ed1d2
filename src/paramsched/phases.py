"""Multi-phase schedules: a learning rate (and a weight decay) as a sequence of phases.

A phase has a shape, an end (``until``) and a target (``to``). It starts where
the previous phase ended, from the value that phase ended at (its ``to``),
unless it sets its own ``from``; a ``constant`` phase holds its start, or its own
``value`` (a step down). After the last phase its end value holds. Values are
numbers or the names of the schedule's own values (``init_lr``, ``max_lr``,
``min_lr`` for the learning rate, ``start_wd``, ``end_wd`` for the weight
decay), so a parameter group's overrides of those keep working for every shape.

Phase ``k`` covers the steps ``(end[k-1], end[k]]`` (the first one ``[0, end[0]]``).
With ``r = (n - start) / (end - start)``, ``a`` the start value and ``b`` the target::

    rising  (b >= a)   linear: a + (b - a) * (n - start) / (end - start)
                       other:  a + shape.rise(r) * (b - a)
    falling (b < a)    b + shape.decay(r) * (a - b)
    constant           a, or the phase's value
    inverse-square-root  max(b, a * max(start, 1)**0.5 / max(n, 1)**0.5)

These are Megatron-Core's operations (its warmup for a linear rise, its decay for
a fall), so a linear warmup to ``max_lr`` followed by a cosine to ``min_lr``
gives Megatron's cosine schedule to the bit. Shapes: ``linear``, ``constant``,
``cosine``, ``exponential``, ``minus_sqrt``, ``inverse-square-root`` and
``polynomial`` (``decay = (1 - r)**power``).

Steps here are the scheduler's clock: consumed samples. A `Run` turns steps,
tokens and percentages into samples when a schedule is built.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .errors import (
    ScheduleError,
    ScheduleTypeError,
    check_choice,
    check_number,
    check_rate,
)
from .schedule import Evaluates, Schedule
from .shapes import ARRAY, SCALAR, SHAPES, Shape, interpolate, warmup
from .units import Quantity, Run

PHASE_SHAPES = ("linear", "constant", "cosine", "exponential", "minus_sqrt",
                "inverse-square-root", "polynomial")
LR_NAMES = ("init_lr", "max_lr", "min_lr")
WD_NAMES = ("start_wd", "end_wd")


@dataclass(frozen=True)
class Phase:
    """One phase: its shape, where it ends, and the values it goes between.

    Args:
        shape: One of `PHASE_SHAPES`.
        until: Where the phase ends: a quantity (``"2000 steps"``, ``"10T tokens"``,
            ``"80%"``) or a number of samples.
        to: The value the phase goes to (not for ``constant``): a number or a name.
        start: The value the phase starts from (``from`` in files); default: where
            the previous phase ended.
        value: For ``constant``: the value to hold (a step down or up).
        power: For ``polynomial``: the exponent, > 0.
    """

    shape: str
    until: Any
    to: Any = None
    start: Any = None
    value: Any = None
    power: Optional[float] = None

    def to_dict(self) -> dict:
        data = {"shape": self.shape, "until": str(self.until)
                if isinstance(self.until, Quantity) else self.until}
        for key, name in (("to", "to"), ("start", "from"), ("value", "value"), ("power", "power")):
            if getattr(self, key) is not None:
                data[name] = getattr(self, key)
        return data


def _polynomial(power: float) -> Shape:
    return Shape("polynomial", lambda r, m=SCALAR: m.pow(1.0 - r, power))


@dataclass(frozen=True)
class PhaseCurve:
    """One quantity (learning rate or weight decay) as phases; see the module docstring.

    Args:
        phases: The phases, their ends already in samples and increasing.
        names: The named values and their defaults, e.g. ``{"init_lr": 0.0, ...}``.
        first: The name of the value the first phase starts from.
        label: How errors name the curve (``"lr"``, ``"wd"``).
    """

    phases: tuple[Phase, ...]
    names: dict
    first: str
    label: str = "lr"
    _ends: tuple = field(default=(), init=False, repr=False, compare=False)
    _starts: tuple = field(default=(), init=False, repr=False, compare=False)
    _targets: tuple = field(default=(), init=False, repr=False, compare=False)
    _shapes: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ends, starts, targets, shapes = [], [], [], []
        previous_end, previous_target = 0, self.first
        for index, phase in enumerate(self.phases):
            where = f"{self.label}.phases[{index}]"
            shape = check_choice(f"{where}.shape", phase.shape, PHASE_SHAPES)
            end = check_number(f"{where}.until", phase.until)
            if end <= previous_end:
                raise ScheduleError(
                    f"{where}.until={phase.until!r} ({end!r} samples) does not come after the "
                    f"previous end ({previous_end!r} samples); expected increasing phase ends"
                )
            start = previous_target if phase.start is None else self._operand(
                f"{where}.from", phase.start)
            if shape == "constant":
                if phase.to is not None:
                    raise ScheduleError(f"{where} is constant and has to={phase.to!r}; "
                                        "expected 'value' for a constant phase")
                target = start if phase.value is None else self._operand(
                    f"{where}.value", phase.value)
            else:
                if phase.value is not None:
                    raise ScheduleError(f"{where} has value={phase.value!r}; only a constant "
                                        "phase holds a value")
                if phase.to is None:
                    raise ScheduleError(f"{where} ({shape}) has no 'to'; expected the value "
                                        "the phase goes to")
                target = self._operand(f"{where}.to", phase.to)
            if shape == "polynomial":
                power = check_number(f"{where}.power", phase.power) if phase.power is not None \
                    else None
                if power is None or power <= 0:
                    raise ScheduleError(f"{where}.power={phase.power!r}; expected a number > 0 "
                                        "for a polynomial phase")
                shapes.append(_polynomial(float(power)))
            elif phase.power is not None:
                raise ScheduleError(f"{where} has power={phase.power!r}; only a polynomial "
                                    "phase has a power")
            else:
                shapes.append(SHAPES.get(shape))
            ends.append(end)
            starts.append(start)
            targets.append(target)
            previous_end, previous_target = end, target
        object.__setattr__(self, "_ends", tuple(ends))
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_targets", tuple(targets))
        object.__setattr__(self, "_shapes", tuple(shapes))

    def _operand(self, label: str, value):
        if isinstance(value, str):
            return check_choice(label, value, tuple(self.names))
        return check_rate(label, value)

    @property
    def ends(self) -> tuple:
        """Each phase's end, in samples."""
        return self._ends

    def resolve(self, operand, names: dict) -> float:
        return names[operand] if isinstance(operand, str) else operand

    def end_value(self, names: dict) -> float:
        """The value after the last phase."""
        return self.resolve(self._targets[-1] if self.phases else self.first, names)

    def at(self, n, names: dict):
        """The value after `n` samples, for the named values `names`."""
        index = bisect.bisect_left(self._ends, n)
        if index == len(self._ends):
            return self.end_value(names)
        return self.phase_value(index, n, names, SCALAR)

    def phase_value(self, index: int, n, names: dict, m=SCALAR):
        """Phase `index`'s formula at `n` (a number, or an array with `m=ARRAY`)."""
        phase = self.phases[index]
        begin = self._ends[index - 1] if index else 0
        end = self._ends[index]
        a = self.resolve(self._starts[index], names)
        b = self.resolve(self._targets[index], names)
        if phase.shape == "constant":
            return b if m is SCALAR else np.full(np.shape(n), b)
        if phase.shape == "inverse-square-root":
            if m is SCALAR:
                return max(b, a * max(begin, 1) ** 0.5 / max(n, 1) ** 0.5)
            return np.maximum(b, a * max(begin, 1) ** 0.5 / np.sqrt(np.maximum(n, 1.0)))
        if m is SCALAR:
            offset, length = float(n - begin), float(end - begin)
        else:
            offset, length = n - begin, float(end - begin)
        if b >= a:
            if phase.shape == "linear":
                return warmup(a, b, offset, length)
            return interpolate(a, b, self._shapes[index].rise(offset / length, m))
        return interpolate(b, a, self._shapes[index].decay(offset / length, m))

    def array(self, steps: np.ndarray, names: dict) -> np.ndarray:
        """`at` for an array of steps; the cost grows with the steps, not with the phases."""
        out = np.empty_like(steps)
        flat, result = steps.ravel(), out.ravel()
        index = np.searchsorted(np.asarray(self._ends, dtype=np.float64), flat, side="left")
        order = None if flat.size < 2 or np.all(flat[1:] >= flat[:-1]) else np.argsort(
            index, kind="stable")
        ordered = index if order is None else index[order]
        bounds = np.searchsorted(ordered, np.arange(len(self._ends) + 2), side="left")
        for phase in range(len(self._ends) + 1):
            chunk = slice(bounds[phase], bounds[phase + 1])
            if chunk.start == chunk.stop:
                continue
            where = chunk if order is None else order[chunk]
            if phase == len(self._ends):
                result[where] = self.end_value(names)
            else:
                result[where] = self.phase_value(phase, flat[where], names, ARRAY)
        return out

    def to_dict(self) -> dict:
        return {"names": dict(self.names), "first": self.first,
                "phases": [p.to_dict() for p in self.phases]}


_PHASE_KEYS = ("shape", "until", "to", "from", "value", "power")
_RUN_KEYS = ("seq_length", "global_batch_size", "rampup_batch_size", "total")
_LR_KEYS = ("init_lr", "max_lr", "min_lr", "phases")
_WD_KEYS = ("start_wd", "end_wd", "style", "until", "phases")


def _table(data, where: str, keys: tuple) -> dict:
    if not isinstance(data, dict):
        raise ScheduleTypeError(f"{where} is of type {type(data).__name__}; expected a table")
    for key in data:
        if key not in keys:
            raise ScheduleError(f"{where} has an unknown key {key!r}; expected one of "
                                + ", ".join(repr(k) for k in keys))
    return data


def _phases(run: Run, items, where: str) -> tuple[Phase, ...]:
    if not isinstance(items, list) or not items:
        raise ScheduleError(f"{where}={items!r}; expected a non-empty list of phases")
    phases = []
    for index, item in enumerate(items):
        label = f"{where}[{index}]"
        item = _table(item, label, _PHASE_KEYS)
        for key in ("shape", "until"):
            if key not in item:
                raise ScheduleError(f"{label} has no {key!r}; expected shape, until and to")
        until = run.samples(Quantity.parse(item["until"], f"{label}.until"), f"{label}.until")
        phases.append(Phase(item["shape"], until, item.get("to"), item.get("from"),
                            item.get("value"), item.get("power")))
    return tuple(phases)


@dataclass(frozen=True, eq=False)
class PhaseSchedule(Evaluates):
    """A learning rate of phases, and a weight decay of phases or Megatron's triple.

    Build one from the data of a schedule file with `PhaseSchedule.from_dict` (or
    `paramsched.load_schedule`). It answers `lr(step)` and `wd(step)` like
    `paramsched.Schedule`, for a number or a NumPy array of consumed samples, and
    drives `OptimizerParamScheduler.from_schedule`, stepping in samples. Two
    schedules are equal when their data are; `to_dict` gives the data back.
    """

    lr_curve: PhaseCurve
    wd_curve: Any  # a PhaseCurve, or a Schedule evaluating Megatron's weight decay
    run: Run
    source: dict

    @classmethod
    def from_dict(cls, data: dict) -> "PhaseSchedule":
        """Builds a schedule from ``{"run": ..., "lr": ..., "wd": ...}`` (a file's tables)."""
        import copy

        data = _table(data, "schedule", ("run", "lr", "wd"))
        run = Run(**_table(data.get("run", {}), "run", _RUN_KEYS))
        if "lr" not in data:
            raise ScheduleError("the schedule has no [lr] table; expected one with phases")
        lr = _table(data["lr"], "lr", _LR_KEYS)
        if "max_lr" not in lr:
            raise ScheduleError("lr has no 'max_lr'; expected the peak learning rate")
        names = {name: check_rate(f"lr.{name}", lr.get(name, 0.0)) for name in LR_NAMES}
        if names["min_lr"] > names["max_lr"]:
            raise ScheduleError(f"lr.min_lr={names['min_lr']!r} is greater than lr.max_lr="
                                f"{names['max_lr']!r}; expected min_lr <= max_lr")
        lr_curve = PhaseCurve(_phases(run, lr.get("phases"), "lr.phases"), names, "init_lr", "lr")
        wd = _table(data.get("wd", {}), "wd", _WD_KEYS)
        start_wd = check_rate("wd.start_wd", wd.get("start_wd", 0.0))
        end_wd = check_rate("wd.end_wd", wd.get("end_wd", start_wd))
        if "phases" in wd:
            for key in ("style", "until"):
                if key in wd:
                    raise ScheduleError(f"wd has both phases and {key!r}; expected one form")
            wd_curve = PhaseCurve(_phases(run, wd["phases"], "wd.phases"),
                                  {"start_wd": start_wd, "end_wd": end_wd}, "start_wd", "wd")
        else:
            style = check_choice("wd.style", wd.get("style", "constant"),
                                 ("constant", "linear", "cosine"))
            length = 0
            if style != "constant":
                length = run.samples(Quantity.parse(wd.get("until", "100%"), "wd.until"),
                                     "wd.until")
            try:
                # Megatron's weight decay, evaluated by Schedule itself (its learning-rate
                # fields are placeholders and never used).
                wd_curve = Schedule(max_lr=0.0, lr_decay_steps=1, lr_decay_style="constant",
                                    start_wd=start_wd, end_wd=end_wd, wd_incr_steps=length,
                                    wd_incr_style=style)
            except ScheduleError as error:
                raise type(error)(f"wd: {error}") from None
        return cls(lr_curve, wd_curve, run, copy.deepcopy(data))

    def to_dict(self) -> dict:
        """The schedule's data, as given to `from_dict` (what a checkpoint carries)."""
        import copy

        return copy.deepcopy(self.source)

    def __eq__(self, other) -> bool:
        return isinstance(other, PhaseSchedule) and self.source == other.source

    __hash__ = None  # type: ignore[assignment]

    # The named values, where the scheduler's per-group overrides expect them.
    @property
    def init_lr(self) -> float:
        return self.lr_curve.names["init_lr"]

    @property
    def max_lr(self) -> float:
        return self.lr_curve.names["max_lr"]

    @property
    def min_lr(self) -> float:
        return self.lr_curve.names["min_lr"]

    @property
    def start_wd(self) -> float:
        return self._wd_names["start_wd"]

    @property
    def end_wd(self) -> float:
        return self._wd_names["end_wd"]

    @property
    def wd_incr_style(self) -> str | None:
        """Megatron's weight-decay style when the weight decay is Megatron's triple."""
        return self.wd_curve.wd_incr_style if isinstance(self.wd_curve, Schedule) else None

    @property
    def _wd_names(self) -> dict:
        if isinstance(self.wd_curve, Schedule):
            return {"start_wd": self.wd_curve.start_wd, "end_wd": self.wd_curve.end_wd}
        return self.wd_curve.names

    # ------------------------------------------------------------- evaluation

    def lr_at(self, n, max_lr, min_lr):
        """`lr` without checks, for a group's ``max_lr`` and ``min_lr``."""
        names = self.lr_curve.names
        if max_lr != names["max_lr"] or min_lr != names["min_lr"]:
            names = {**names, "max_lr": max_lr, "min_lr": min_lr}
        return self.lr_curve.at(n, names)

    def wd_at(self, n, start_wd, end_wd):
        """`wd` without checks, for a group's ``start_wd`` and ``end_wd``."""
        if isinstance(self.wd_curve, Schedule):
            return self.wd_curve.wd_at(n, start_wd, end_wd)
        return self.wd_curve.at(n, {"start_wd": start_wd, "end_wd": end_wd})

    def _lr_array(self, steps, max_lr, min_lr):
        names = {**self.lr_curve.names, "max_lr": max_lr, "min_lr": min_lr}
        return self.lr_curve.array(steps, names)

    def _wd_array(self, steps, start_wd, end_wd):
        if isinstance(self.wd_curve, Schedule):
            return self.wd_curve._wd_array(steps, start_wd, end_wd)
        return self.wd_curve.array(steps, {"start_wd": start_wd, "end_wd": end_wd})
