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
``polynomial`` (``decay = (1 - r)**power``). Each phase is one segment of the
curve engine (`paramsched._curve`).

Steps here are the scheduler's clock: consumed samples. A `Run` turns steps,
tokens and percentages into samples when a schedule is built, and the schedule
keeps only what that means: two files that say the same thing in other words
(``"2K samples"`` and ``"2000 samples"``, an omitted default and the default
written out) give equal schedules with equal checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional, Union

from ..errors import ScheduleError, ScheduleTypeError, check_choice, check_number, check_rate
from ._curve import (
    BATCH_SIZE_RULES,
    BRANCH_POINT,
    KINDS,
    VALUE_PLACES,
    Curve,
    CurveSchedule,
    ScheduledValue,
    Segment,
    _check_value,
    scaled,
)
from .shapes import SHAPE_NAMES, MultiStepDecay, PowerLaw, StepDecay, shape_named, shape_with
from .units import Quantity, Run, branch_point, positions_as_written, positions_of

#: Phases whose value is their start times a factor (step, multistep) or a power law of
#: tokens and batch size: they have no ``to``.
LEVEL_SHAPES = ("step", "multistep", "power")
#: The decay shapes (one place: `paramsched.shapes`), and the rules that are not one.
PHASE_SHAPES = (*SHAPE_NAMES, "constant", "inverse-square-root", *LEVEL_SHAPES)
#: Each shape's own keys in a phase (besides shape, until, to, from).
SHAPE_OPTIONS = {
    "cosine": ("k",),
    "tanh": ("lower", "upper"),
    "step": ("every", "factor"),
    "multistep": ("milestones", "factor"),
    "power": ("a", "b"),
}
_OPTION_KEYS = tuple(dict.fromkeys(k for keys in SHAPE_OPTIONS.values() for k in keys))
LR_NAMES = ("init_lr", "max_lr", "min_lr")
WD_NAMES = ("start_wd", "end_wd")
WD_STYLES = ("constant", "linear", "cosine")
#: The kind a phase schedule's checkpoint data carries.
KIND = "phases"


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
        options: The shape's own keys (`SHAPE_OPTIONS`), as ``((key, value), ...)``;
            lengths (``every``, ``milestones``) in samples.
    """

    shape: str
    until: Any
    to: Any = None
    start: Any = None
    value: Any = None
    power: Optional[float] = None
    written: Any = field(default=None, compare=False)  # `until` as the file has it
    where: Optional[str] = field(default=None, compare=False)  # and where, for messages
    options: tuple = ()


def _samples_text(samples, unit: str = "samples") -> str:
    """A clock position (samples, or tokens on a token clock) as an exact quantity that
    reads back to the same number."""
    return f"{samples!r} {unit}"


def _curve(
    phases: tuple[Phase, ...],
    names: dict,
    first: str,
    label: str,
    before: tuple = (),
    number=check_rate,
    unit: str = "samples",
    run=None,
) -> tuple[Curve, list[dict]]:
    """The curve of `phases`, and their meaning as data (each start and target explicit).

    `before` holds the segments of a branch's parent up to the branch point: the
    phases then begin there, from `first` (the parent's value at that point).
    """
    segments, canonical = list(before), []
    previous_end, previous_target = (before[-1].end if before else 0), first

    def operand(where, value):
        if isinstance(value, str):
            factor, name = scaled(value)
            if factor == 1.0 and name == value:
                return check_choice(where, value, tuple(names))
            if not factor >= 0:  # a float already: nan, inf and -1 are refused here
                problem = "is negative" if factor < 0 else "is not finite"
                raise ScheduleError(
                    f"{where}={value!r}: its factor {factor!r} {problem}; expected a factor >= 0"
                )
            check_rate(where, factor)
            return f"{factor!r} * {check_choice(where, name, tuple(names))}"
        return number(where, value)

    for index, phase in enumerate(phases):
        where = f"{label}.phases[{index}]"
        shape = check_choice(f"{where}.shape", phase.shape, PHASE_SHAPES)
        end = check_number(f"{where}.until", phase.until)
        if end <= previous_end:
            raise ScheduleError(
                f"{where}.until={phase.until!r} ({end!r} {unit}) does not come after the "
                f"previous end ({previous_end!r} {unit}); expected increasing phase ends"
            )
        holds_own_value = phase.shape == "constant" and phase.value is not None
        if phase.start is None and previous_target is None and not holds_own_value:
            raise ScheduleError(
                f"{where} follows a power phase, whose end depends on the batch size; "
                "expected its own 'from'"
            )
        start = previous_target if phase.start is None else operand(f"{where}.from", phase.start)
        options = dict(phase.options)
        for key in options:
            if key not in SHAPE_OPTIONS.get(shape, ()):
                owners = [name for name, keys in SHAPE_OPTIONS.items() if key in keys]
                raise ScheduleError(
                    f"{where} ({shape}) has {key}={options[key]!r}; only a "
                    + " or ".join(owners)
                    + f" phase has {key}"
                )
        if shape == "constant" or shape in LEVEL_SHAPES:
            if phase.to is not None:
                raise ScheduleError(
                    f"{where} is constant and has to={phase.to!r}; "
                    "expected 'value' for a constant phase"
                    if shape == "constant"
                    else f"{where} is a {shape} phase and has to={phase.to!r}; expected none: "
                    "its start and its own keys fix where it goes"
                )
            if shape != "constant" and phase.value is not None:
                raise ScheduleError(
                    f"{where} has value={phase.value!r}; only a constant phase holds a value"
                )
        elif phase.value is not None:
            raise ScheduleError(
                f"{where} has value={phase.value!r}; only a constant phase holds a value"
            )
        elif phase.to is None:
            raise ScheduleError(
                f"{where} ({shape}) has no 'to'; expected the value the phase goes to"
            )
        if shape != "polynomial" and phase.power is not None:
            raise ScheduleError(
                f"{where} has power={phase.power!r}; only a polynomial phase has a power"
            )
        data = {"shape": shape, "until": _samples_text(end, unit)}
        if shape in LEVEL_SHAPES:
            segment, target, extra = _level_segment(
                shape, where, options, start, end, previous_end, unit, run
            )
            segments.append(segment)
            data.update({"from": start, **extra})
        elif shape == "constant":
            target = start if phase.value is None else operand(f"{where}.value", phase.value)
            segments.append(Segment(end, "hold", start, target, label=shape))
            data["value"] = target
        else:
            target = operand(f"{where}.to", phase.to)
            data.update({"from": start, "to": target})
            if shape == "inverse-square-root":
                segments.append(
                    Segment(end, "inverse-sqrt", start, target, origin=previous_end, label=shape)
                )
            else:
                if shape == "polynomial":
                    power = (
                        None if phase.power is None else check_number(f"{where}.power", phase.power)
                    )
                    if power is None or power <= 0:
                        raise ScheduleError(
                            f"{where}.power={phase.power!r}; expected a number "
                            "> 0 for a polynomial phase"
                        )
                    data["power"] = float(power)
                curve_shape = shape_named(f"{where}.shape", shape, data.get("power"))
                if options:
                    curve_shape = shape_with(where, shape, options)
                    data.update(_shape_meaning(curve_shape))
                segments.append(
                    Segment(
                        end,
                        "auto",
                        start,
                        target,
                        curve_shape,
                        origin=previous_end,
                        length=float(end - previous_end),
                        label=shape,
                    )
                )
        canonical.append(data)
        previous_end, previous_target = end, target
    if previous_target is None:
        raise ScheduleError(
            f"{label}.phases ends with a power phase, whose end depends on the batch size; "
            "expected a phase after it (a decay, or a constant with its own value)"
        )
    return Curve(tuple(segments), previous_target), canonical


def _shape_meaning(shape) -> dict:
    """A ratio shape's own keys as its meaning holds them: only those not its default."""
    if shape.name == "cosine":
        return {"k": shape.k} if getattr(shape, "k", 1.0) != 1.0 else {}
    if shape.name == "tanh" and (shape.lower, shape.upper) != (-7.0, 3.0):
        return {"lower": shape.lower, "upper": shape.upper}
    return {}


def _factor(where: str, options: dict) -> float:
    if "factor" not in options:
        raise ScheduleError(f"{where} has no 'factor'; expected the factor each step applies")
    factor = check_number(f"{where}.factor", options["factor"])
    if not factor > 0:
        raise ScheduleError(f"{where}.factor={factor!r}; expected a number > 0")
    return float(factor)


def _level_segment(shape, where, options, start, end, begin, unit, run):
    """A step, multistep or power phase: its segment, the value it ends at (an operand;
    None for power, whose end depends on the batch size) and its keys' meaning."""
    if shape == "power":
        for key in ("a", "b"):
            if key not in options:
                raise ScheduleError(f"{where} has no {key!r}; a power phase needs a and b")
        a, b = (float(check_number(f"{where}.{key}", options[key])) for key in ("a", "b"))
        if not a > 0:
            raise ScheduleError(f"{where}.a={a!r}; expected a number > 0")
        if run is None or not isinstance(run, Run) or run.global_batch_size is None:
            raise ScheduleError(
                f"{where} is a power phase on a run without a batch size; expected "
                "global_batch_size (or batch_size_schedule) and seq_length in [run]"
            )
        if run.seq_length is None and not run.counts_tokens:
            raise ScheduleError(
                f"{where} is a power phase on a run without a sequence length; expected "
                "seq_length in [run], or clock = 'tokens'"
            )
        if begin == 0:
            raise ScheduleError(
                f"{where} is a power phase that begins at 0, where no token has been seen "
                "(T**b is infinite); expected a phase before it (a warmup)"
            )
        segment = Segment(
            end, "power", start, start, PowerLaw(a, b, run), origin=begin, label=shape
        )
        return segment, None, {"a": a, "b": b}
    factor = _factor(where, options)
    if shape == "step":
        if "every" not in options:
            raise ScheduleError(f"{where} has no 'every'; expected the length of a step")
        every = options["every"]
        if not every > 0:
            raise ScheduleError(f"{where}.every is {every!r} {unit}; expected a length > 0")
        law, extra = StepDecay(every, factor), {"every": _samples_text(every, unit)}
    else:
        milestones = options.get("milestones")
        if not milestones:
            raise ScheduleError(f"{where} has no 'milestones'; expected a list of lengths")
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or milestones[0] <= 0:
            raise ScheduleError(
                f"{where}.milestones={list(milestones)!r} ({unit}); expected increasing "
                "lengths > 0 from the phase's start"
            )
        law = MultiStepDecay(tuple(milestones), factor)
        extra = {"milestones": [_samples_text(m, unit) for m in milestones]}
    extra["factor"] = factor
    scale = math.pow(factor, law.levels(end - begin))
    if isinstance(start, str):
        times, name = scaled(start)
        target = f"{times * scale!r} * {name}" if times * scale != 1.0 else name
    else:
        target = start * scale
    segment = Segment(end, "levels", start, start, law, origin=begin, label=shape)
    return segment, target, extra


_PHASE_KEYS = ("shape", "until", "to", "from", "value", "power", *_OPTION_KEYS)
_RUN_KEYS = (
    "seq_length",
    "global_batch_size",
    "rampup_batch_size",
    "batch_size_schedule",
    "total",
    "clock",
)
_LR_KEYS = ("init_lr", "max_lr", "min_lr", "phases", "batch_size_rule", "reference_batch_size")
_WD_KEYS = ("start_wd", "end_wd", "style", "until", "phases")


def _table(data, where: str, keys: tuple | None) -> dict:
    """`data`, a table whose keys are all `keys` (any, for None)."""
    if not isinstance(data, dict):
        raise ScheduleTypeError(f"{where} is of type {type(data).__name__}; expected a table")
    for key in data if keys is not None else ():
        if key not in keys:
            raise ScheduleError(
                f"{where} has an unknown key {key!r}; expected one of "
                + ", ".join(repr(k) for k in keys)
            )
    return data


MAX_PHASES = 10_000  # phases a schedule may expand to (repeated blocks included)
_BLOCK_KEYS = ("repeat", "period", "factor", "phases")


def _phases(run: Run, items, where: str, begin=0) -> tuple[Phase, ...]:
    """The phases of a table, ends in samples landed on the run's steps (`Run.land`);
    `begin` is where they begin (a branch's point), where a first repeated block starts.
    `run` may be a `StepClock` (a schedule that counts optimizer steps)."""
    if not isinstance(items, list) or not items:
        raise ScheduleError(f"{where}={items!r}; expected a non-empty list of phases")
    phases: list[Phase] = []
    for index, item in enumerate(items):
        label = f"{where}[{index}]"
        if isinstance(item, dict) and "repeat" in item:
            phases += _block(
                run,
                _table(item, label, _BLOCK_KEYS),
                label,
                phases[-1].until if phases else begin,
                MAX_PHASES - len(phases),
            )
            continue
        phases.append(_phase(item, label, run.position, run))
    _check_ends(run, phases, begin)
    return tuple(phases)


def _check_ends(run, phases: list, begin) -> None:
    """Refuses an end that does not come after the one before, naming it as written and
    the position (and step) it lands on."""
    previous = begin
    for phase in phases:
        if phase.until <= previous and phase.where is not None:
            at = f"({phase.until!r} {run.unit})"
            if getattr(run, "has_steps", False):
                at = (
                    f"lands at {phase.until!r} {run.unit} (step "
                    f"{run.step_at_samples(phase.until):,}), which"
                )
            raise ScheduleError(
                f"{phase.where}.until={phase.written!r} {at} does not come after the previous "
                f"end ({previous!r} {run.unit}); expected increasing phase ends"
                + (
                    ", each on a step of its own (an end inside a step lands at that step's end)"
                    if getattr(run, "has_steps", False)
                    else ""
                )
            )
        previous = phase.until


def _phase(item, label: str, samples, run) -> Phase:
    """One phase of a table, its end in samples through `samples(quantity, field)`, the
    lengths among its shape's keys (``every``, ``milestones``) through `run`."""
    item = _table(item, label, _PHASE_KEYS)
    for key in ("shape", "until"):
        if key not in item:
            raise ScheduleError(f"{label} has no {key!r}; expected shape, until and to")
    until = samples(Quantity.parse(item["until"], f"{label}.until"), f"{label}.until")
    options = {key: item[key] for key in _OPTION_KEYS if key in item}
    if "every" in options:
        options["every"] = _length(run, options["every"], f"{label}.every")
    if "milestones" in options:
        milestones = options["milestones"]
        if not isinstance(milestones, list):
            raise ScheduleTypeError(
                f"{label}.milestones={milestones!r}; expected a list of lengths"
            )
        options["milestones"] = tuple(
            _length(run, m, f"{label}.milestones[{i}]") for i, m in enumerate(milestones)
        )
    return Phase(
        item["shape"],
        until,
        item.get("to"),
        item.get("from"),
        item.get("value"),
        item.get("power"),
        item["until"],
        label,
        tuple(options.items()),
    )


def _length(run, value, field: str):
    """A length within a phase (``every``, a milestone): a quantity from the phase's start,
    in samples (steps only where the batch size does not change)."""
    return _offset(run, Quantity.parse(value, field), None, field)


def _block(run: Run, block: dict, label: str, begin, room: int) -> list[Phase]:
    """A repeated block of phases, expanded: repetition ``k`` begins at ``begin + k *
    period``; its phases' ``until`` are offsets from there (``"%"`` of the period), and
    with a ``factor`` every ``max_lr`` they name is ``factor**k * max_lr``."""
    count = block["repeat"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ScheduleError(f"{label}.repeat={count!r}; expected a whole number >= 1")
    inner = block.get("phases")
    if not isinstance(inner, list) or not inner:
        raise ScheduleError(f"{label}.phases={inner!r}; expected a non-empty list of phases")
    if count * len(inner) > room:
        raise ScheduleError(
            f"{label} repeats {len(inner)} phases {count:,} times; expected "
            f"at most {MAX_PHASES:,} phases in a schedule"
        )
    factor = 1.0 if "factor" not in block else check_rate(f"{label}.factor", block["factor"])
    period = None
    if "period" in block:
        period = _offset(
            run, Quantity.parse(block["period"], f"{label}.period"), None, f"{label}.period"
        )
        if period <= 0:
            raise ScheduleError(f"{label}.period={block['period']!r}; expected a length > 0")

    def offset(quantity, field):
        return _offset(run, quantity, period, field)

    once = [_phase(item, f"{label}.phases[{i}]", offset, run) for i, item in enumerate(inner)]
    length = once[-1].until if period is None else period
    if once[-1].until > length:
        raise ScheduleError(
            f"{label}: its phases end at {once[-1].until!r} {run.unit}, after "
            f"the period of {length!r} {run.unit}; expected phases within the "
            "period"
        )
    expanded = []
    for k in range(count):
        start, scale = begin + k * length, factor**k

        def named(value, scale=scale):
            if value == "max_lr" and scale != 1.0:
                return f"{scale!r} * max_lr"
            return value

        expanded += [
            dataclasses.replace(
                p,
                until=run.land(start + p.until),
                to=named(p.to),
                start=named(p.start),
                value=named(p.value),
            )
            for p in once
        ]
        if once[-1].until < length:  # the rest of the period holds
            expanded.append(
                Phase(
                    "constant",
                    run.land(start + length),
                    written=block.get("period"),
                    where=f"{label}.period",
                )
            )
    return expanded


def _offset(run: Run, quantity: Quantity, period, field: str):
    """A length within a repeated block, in samples: ``"%"`` of the period; steps only
    where the batch size does not change (else a length in steps depends on where)."""
    if quantity.unit == "%":
        if period is None:
            raise ScheduleError(
                f"{field}={str(quantity)!r} is a percentage; expected a "
                "'period' in the block, which it is a percentage of"
            )
        exact = Fraction(period) * quantity.amount / 100
        return exact.numerator if exact.denominator == 1 else float(exact)
    if quantity.unit == "steps" and run.ramps:
        raise ScheduleError(
            f"{field}={str(quantity)!r} is in steps, whose samples depend on "
            "where they fall in a run whose batch size changes; expected "
            "samples or tokens"
        )
    return run.samples(quantity, field)


def _wd_part(run: Run, wd: dict) -> tuple[Curve, dict]:
    """The weight decay of a ``[wd]`` table: phases, or Megatron's triple."""
    start_wd = check_rate("wd.start_wd", wd.get("start_wd", 0.0))
    end_wd = check_rate("wd.end_wd", wd.get("end_wd", start_wd))
    names = {"start_wd": start_wd, "end_wd": end_wd}
    if "phases" in wd:
        for key in ("style", "until"):
            if key in wd:
                raise ScheduleError(f"wd has both phases and {key!r}; expected one form")
        curve, phases = _curve(
            _phases(run, wd["phases"], "wd.phases"), names, "start_wd", "wd", unit=run.unit, run=run
        )
        return curve, {**names, "phases": phases}
    # Megatron's weight decay: style, start_wd, end_wd, over `until` (default the run).
    style = check_choice("wd.style", wd.get("style", "constant"), WD_STYLES)
    if style == "constant":
        if start_wd != end_wd:
            raise ScheduleError(
                f"wd: start_wd={start_wd!r} and end_wd={end_wd!r} differ with "
                "style='constant'; expected equal values, or a 'linear' or "
                "'cosine' style"
            )
        return Curve((), "end_wd", "constant"), {**names, "style": style}
    if end_wd < start_wd:
        raise ScheduleError(
            f"wd: end_wd={end_wd!r} is below start_wd={start_wd!r}; expected start_wd <= end_wd"
        )
    length = run.position(Quantity.parse(wd.get("until", "100%"), "wd.until"), "wd.until")
    if length <= 0:
        raise ScheduleError(
            f"wd.until={wd.get('until', '100%')!r} is {length!r} {run.unit}; expected a length > 0"
        )
    segment = Segment(
        length,
        "rise",
        "start_wd",
        "end_wd",
        shape_named("wd.style", style),
        length=float(length),
        label=f"wd {style}",
    )
    return Curve((segment,), "end_wd"), {
        **names,
        "style": style,
        "until": _samples_text(length, run.unit),
    }


MAX_VALUES = 32  # scheduled values besides lr and wd a schedule may have
MAX_NAMED = 16  # named values a value's table may have
_VALUE_NAME = {
    "group": re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[0-9]\])?", re.ASCII),
    "loop": re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII),
}
_NAMED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
#: Names a value table may not take, and what to write instead.
_RESERVED = {
    "lr": "the [lr] table",
    "weight_decay": "the [wd] table",
    "params": "the optimizer's parameters, not a value",
    "name": "the group's name",
    "initial_lr": "torch's record of the first lr",
    "batch_size": "[run] batch_size_schedule",
    **{
        key: "a per-group override of the [lr] and [wd] tables"
        for key in ("max_lr", "min_lr", "start_wd", "end_wd", "wd_mult", "init_lr")
    },
}


def _value_tables(run: Run, data: dict, parent=None, at=None) -> tuple[tuple, dict]:
    """The ``[group.NAME]`` and ``[loop.NAME]`` tables: their `ScheduledValue`s (a
    branch's: its parent's, each one the branch sets continuing from `at`) and meaning."""
    found, meaning = [], {}
    inherited = {v.name: v for v in (parent.values if parent is not None else ())}
    for place in VALUE_PLACES:
        tables = data.get(place, {})
        if not isinstance(tables, dict):
            raise ScheduleTypeError(
                f"{place} is of type {type(tables).__name__}; expected tables [{place}.NAME]"
            )
    count = len({*inherited, *(name for place in VALUE_PLACES for name in data.get(place, {}))})
    if count > MAX_VALUES:  # refused before any is built
        raise ScheduleError(
            f"the schedule has {count} values besides lr and wd; expected at most {MAX_VALUES}"
        )
    for place in VALUE_PLACES:
        for name, table in data.get(place, {}).items():
            where = f"{place}.{name}"
            if not isinstance(name, str) or not _VALUE_NAME[place].fullmatch(name):
                form = (
                    "a group key, or one component of a tuple key such as 'betas[1]'"
                    if place == "group"
                    else "a name such as 'grad_clip'"
                )
                raise ScheduleError(f"{place} has a value named {name!r}; expected {form}")
            if name.split("[", 1)[0] in _RESERVED:
                raise ScheduleError(
                    f"{where}: {name!r} is {_RESERVED[name.split('[')[0]]}; "
                    "expected another value's name"
                )
            if any(v.name == name for v in found):
                raise ScheduleError(
                    f"{where}: {name!r} is scheduled twice; expected it in [group] or [loop], once"
                )
            if parent is None:
                value, meaning.setdefault(place, {})[name] = _value(run, table, place, name)
            else:
                value, meaning.setdefault(place, {})[name] = _branch_value(
                    run, table, where, inherited.pop(name, None), place, at
                )
            found.append(value)
    for value in inherited.values():  # the parent's, its branch-point names one deeper
        found.append(
            dataclasses.replace(
                value,
                curve=Curve(
                    _deeper(value.curve.segments),
                    _deeper_name(value.curve.final),
                    value.curve.final_label,
                ),
            )
        )
    order = {place: i for i, place in enumerate(VALUE_PLACES)}
    return tuple(sorted(found, key=lambda v: (order[v.place], v.name))), meaning


def _value(run: Run, table, place: str, name: str) -> tuple[ScheduledValue, dict]:
    """One value's table: named values (``start`` the first phase's default start) and
    phases, as the learning rate's."""
    where = f"{place}.{name}"
    table = _table(table, where, None)
    named = {}
    for key, number in table.items():
        if key == "phases":
            continue
        if not isinstance(key, str) or not _NAMED.fullmatch(key):
            raise ScheduleError(
                f"{where} has a key {key!r}; expected 'phases' and named values such as start = 0.9"
            )
        named[key] = _check_value(f"{where}.{key}", number)
    if "start" not in named:
        raise ScheduleError(
            f"{where} has no 'start'; expected the value at the start of the "
            "run (start = ...), which its first phase begins from"
        )
    if len(named) > MAX_NAMED:
        raise ScheduleError(f"{where} has {len(named)} named values; expected at most {MAX_NAMED}")
    named = {"start": named.pop("start"), **dict(sorted(named.items()))}
    curve, phases = _curve(
        _phases(run, table.get("phases"), f"{where}.phases"),
        named,
        "start",
        where,
        number=_check_value,
        unit=run.unit,
        run=run,
    )
    return (ScheduledValue(name, place, curve, tuple(named.items())), {**named, "phases": phases})


def _branch_value(run: Run, table, where: str, parent_value, place: str, at):
    """A value a branch sets after its branch point, from the parent's value there."""
    if parent_value is None or parent_value.place != place:
        raise ScheduleError(
            f"the branch has a [{where}] table but its parent schedules no "
            f"{where}; expected phases for the values its parent schedules"
        )
    table = _table(table, where, ("phases",))
    names = {**parent_value.defaults(), BRANCH_POINT: None}
    curve, phases = _curve(
        _phases(run, table.get("phases"), f"{where}.phases", at),
        names,
        BRANCH_POINT,
        where,
        _deeper(parent_value.curve.up_to(at)),
        number=_check_value,
        unit=run.unit,
        run=run,
    )
    return dataclasses.replace(parent_value, curve=curve), {"phases": phases}


def _batch_size_rule(run: Run, lr: dict) -> dict:
    """The ``[lr]`` table's batch-size rule, checked: ``{}`` or its meaning."""
    if "batch_size_rule" not in lr:
        if "reference_batch_size" in lr:
            raise ScheduleError(
                "lr.reference_batch_size without lr.batch_size_rule; expected both, or neither"
            )
        return {}
    rule = check_choice("lr.batch_size_rule", lr["batch_size_rule"], BATCH_SIZE_RULES)
    if run.global_batch_size is None:
        raise ScheduleError(
            f"lr.batch_size_rule={rule!r} on a run without a batch size; "
            "expected global_batch_size or batch_size_schedule in [run]"
        )
    reference = lr.get("reference_batch_size", run.batch_size_at(0))
    reference = check_number("lr.reference_batch_size", reference)
    if not isinstance(reference, int) or reference <= 0:
        raise ScheduleError(
            f"lr.reference_batch_size={lr['reference_batch_size']!r}; "
            "expected a whole batch size > 0"
        )
    return {"batch_size_rule": rule, "reference_batch_size": reference}


def _check_branch_run(parent, run: Run, at) -> None:
    """Refuses a branch's run that gives its parent's positions up to `at` other values:
    another clock, or (under a batch-size rule, which scales the rate by them) other
    batch sizes before the branch point."""
    mine = parent_run(parent)
    if run.clock != mine.clock:
        raise ScheduleError(
            f"run.clock={run.clock!r} with a parent whose clock counts "
            f"{mine.unit}; expected the parent's clock (a branch continues "
            "its positions)"
        )
    if parent.batch_size_rule is not None and _batch_sizes_until(run, at) != _batch_sizes_until(
        mine, at
    ):

        def said(r):
            return "no batch size" if r.global_batch_size is None else r.describe_batch_size()

        raise ScheduleError(
            f"the branch's run ({said(run)}) gives other batch sizes than its parent's "
            f"({said(mine)}) before the branch point at {at!r} {mine.unit}; expected the "
            "parent's batch sizes up to the branch point, since its batch-size rule scales "
            "the learning rate by them"
        )


def _batch_sizes_until(run: Run, at):
    """What fixes a run's batch sizes at the positions up to `at`: its stages that begin
    by then, or its ramp-up and full size."""
    if run.global_batch_size is None:
        return None
    if run.rampup_batch_size is not None and run.ramps:
        return ("ramp", run._ramp, run.global_batch_size)
    stages = run.batch_size_schedule or ((0, run.global_batch_size),)
    return tuple(stage for stage in stages if stage[0] <= at)


def _deeper_name(operand):
    """A parent's branch-point name, as its branch sees it: ``@branch`` is the branch's
    own start, ``@branch1`` its parent's, ``@branch2`` the grandparent's..."""
    if isinstance(operand, str) and operand.startswith(BRANCH_POINT):
        return f"{BRANCH_POINT}{int(operand[len(BRANCH_POINT) :] or 0) + 1}"
    return operand


def _deeper(segments) -> tuple:
    """A parent's segments with their branch-point names one level deeper."""
    return tuple(
        dataclasses.replace(s, start=_deeper_name(s.start), target=_deeper_name(s.target))
        for s in segments
    )


def _deeper_values(values: dict) -> dict:
    return {_deeper_name(k): v for k, v in values.items() if k.startswith(BRANCH_POINT)}


def parent_run(parent) -> Run:
    """The run a parent's quantities refer to (a run without batch size if it has none)."""
    return parent.run if parent.run is not None else Run()


def _parent_from_state(state, run: Run):
    """A branch's parent, built back from its kind and meaning (`CurveSchedule.meaning`)."""
    kind = state.get("kind") if isinstance(state, dict) else state
    if not isinstance(kind, str) or kind not in KINDS:
        raise ScheduleError(
            f"branch.parent.kind={kind!r}; expected one of " + ", ".join(repr(k) for k in KINDS)
        )
    try:
        with positions_as_written():  # a meaning: its positions are where they landed
            return KINDS[kind]({k: v for k, v in state.items() if k != "kind"}, run)
    except ScheduleError as error:
        nested = str(error).startswith("branch.")  # the parent's own parent: a path
        raise type(error)(f"branch.parent{'.' if nested else ': '}{error}") from None


@dataclass(frozen=True, eq=False)
class PhaseSchedule(CurveSchedule):
    """A learning rate of phases, and a weight decay of phases or Megatron's triple.

    Build one from the data of a schedule file with `PhaseSchedule.from_dict` (or
    `paramsched.load_schedule`). It answers `lr(step)` and `wd(step)` like
    `paramsched.Schedule`, for a number or a NumPy array of consumed samples, and
    drives the schedulers, stepping in samples. Without a ``[wd]`` table it has no
    weight-decay part, and the optimizer's own ``weight_decay`` is left alone. Two
    schedules are equal when they mean the same; `to_dict` gives that meaning as
    data, which `from_dict` reads back.

    Examples:
        >>> s = PhaseSchedule.from_dict({"lr": {"max_lr": 1.0, "phases": [
        ...     {"shape": "linear", "to": "max_lr", "until": "2K samples"}]}})
        >>> s.lr(1000), s == PhaseSchedule.from_dict(s.to_dict())
        (0.5, True)
    """

    lr_curve: Curve
    wd_curve: Optional[Curve]
    run: Run
    data: dict
    parent: Optional[CurveSchedule] = None  # a branch's parent, and where it branches
    branch_point: Union[int, float, None] = None
    values: tuple = ()  # the other values it schedules (ScheduledValue), by place and name
    kind = KIND

    @property
    def batch_size_rule(self) -> tuple | None:
        """``(rule, reference batch size)`` if the learning rate follows the batch size
        (a branch's is its parent's), else None."""
        if self.parent is not None:
            return self.parent.batch_size_rule
        lr = self.data["lr"]
        rule = lr.get("batch_size_rule")
        return None if rule is None else (rule, lr["reference_batch_size"])

    def meaning(self) -> dict:
        return json.loads(self.to_json())

    @classmethod
    def from_dict(cls, data: dict) -> "PhaseSchedule":
        """Builds a schedule from ``{"run": ..., "lr": ..., "wd": ...}`` (a file's tables),
        or a branch from ``{"branch": {"parent": ..., "at": ...}, "run": ..., "lr": ...}``
        (what `to_dict` gives for one; see `CurveSchedule.branch`)."""
        data = _table(data, "schedule", ("run", "lr", "wd", "branch", *VALUE_PLACES))
        run = Run(**_table(data.get("run", {}), "run", _RUN_KEYS))
        if "branch" in data:
            return cls._branch(data, run)
        if "lr" not in data:
            raise ScheduleError("the schedule has no [lr] table; expected one with phases")
        lr = _table(data["lr"], "lr", _LR_KEYS)
        if "max_lr" not in lr:
            raise ScheduleError("lr has no 'max_lr'; expected the peak learning rate")
        names = {name: check_rate(f"lr.{name}", lr.get(name, 0.0)) for name in LR_NAMES}
        if names["min_lr"] > names["max_lr"]:
            raise ScheduleError(
                f"lr.min_lr={names['min_lr']!r} is greater than lr.max_lr="
                f"{names['max_lr']!r}; expected min_lr <= max_lr"
            )
        lr_curve, lr_phases = _curve(
            _phases(run, lr.get("phases"), "lr.phases"),
            names,
            "init_lr",
            "lr",
            unit=run.unit,
            run=run,
        )
        meaning = {
            "run": run.to_dict(),
            "lr": {**names, "phases": lr_phases, **_batch_size_rule(run, lr)},
        }
        wd_curve = None
        if "wd" in data:
            wd_curve, meaning["wd"] = _wd_part(run, _table(data["wd"], "wd", _WD_KEYS))
        values, value_meaning = _value_tables(run, data)
        return cls(lr_curve, wd_curve, run, {**meaning, **value_meaning}, values=values)

    @classmethod
    def _branch(cls, data: dict, run: Run) -> "PhaseSchedule":
        branch = _table(data["branch"], "branch", ("parent", "at"))
        if "parent" not in branch or "at" not in branch:
            raise ScheduleError("branch needs 'parent' and 'at'; expected both")
        # A Megatron parent keeps no run of its own: it gets the branch's, unless that says
        # nothing of batches or tokens (a parent without a run counts optimizer steps).
        says = run.global_batch_size is not None or run.seq_length is not None
        parent = _parent_from_state(branch["parent"], run if says else None)
        # A parent without a run counts optimizer steps, and so does the branch.
        clock = positions_of(parent, run)
        at = branch_point(positions_of(parent), branch["at"])
        _check_branch_run(parent, run, at)
        names = {name: getattr(parent, name) for name in LR_NAMES}
        branch_names = {**names, BRANCH_POINT: None}
        lr = _table(data.get("lr", {}), "lr", ("phases",))
        lr_curve, lr_phases = _curve(
            _phases(clock, lr.get("phases"), "lr.phases", at),
            branch_names,
            BRANCH_POINT,
            "lr",
            _deeper(parent.lr_curve.up_to(at)),
            unit=clock.unit,
            run=clock,
        )
        meaning = {
            "branch": {
                "parent": {"kind": parent.kind, **parent.meaning()},
                "at": _samples_text(at, clock.unit),
            },
            "run": run.to_dict(),
            "lr": {"phases": lr_phases},
        }
        wd_curve = parent.wd_curve
        if wd_curve is not None:  # the parent's weight decay, its branch-point names one deeper
            wd_curve = Curve(
                _deeper(wd_curve.segments), _deeper_name(wd_curve.final), wd_curve.final_label
            )
        if "wd" in data:
            if parent.wd_curve is None:
                raise ScheduleError(
                    "the branch has a [wd] table but its parent has no weight "
                    "decay; expected [lr] phases only"
                )
            wd = _table(data["wd"], "wd", ("phases",))
            wd_names = {"start_wd": parent.start_wd, "end_wd": parent.end_wd, BRANCH_POINT: None}
            wd_curve, wd_phases = _curve(
                _phases(clock, wd.get("phases"), "wd.phases", at),
                wd_names,
                BRANCH_POINT,
                "wd",
                _deeper(parent.wd_curve.up_to(at)),
                unit=clock.unit,
                run=clock,
            )
            meaning["wd"] = {"phases": wd_phases}
        values, value_meaning = _value_tables(clock, data, parent, at)
        return cls(lr_curve, wd_curve, run, {**meaning, **value_meaning}, parent, at, values)

    def to_dict(self) -> dict:
        """What the schedule means, as data `from_dict` reads: ends in samples, every
        start and target explicit, the run's quantities in samples."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """`to_dict` as one JSON text, keys sorted: the form checkpoints carry."""
        return json.dumps(self.data, sort_keys=True)

    def __eq__(self, other) -> bool:
        return isinstance(other, PhaseSchedule) and self.data == other.data

    def __hash__(self) -> int:
        # Of what __eq__ compares, as == sees it (10 and 10.0, 0.0 and -0.0 are equal, and
        # hash alike), not of the JSON text, which tells them apart.
        return hash(_frozen(self.data))

    # The named values, where the scheduler's per-group overrides expect them (a
    # branch's are its parent's).
    @property
    def init_lr(self) -> float:
        return self.parent.init_lr if self.parent else self.data["lr"]["init_lr"]

    @property
    def max_lr(self) -> float:
        return self.parent.max_lr if self.parent else self.data["lr"]["max_lr"]

    @property
    def min_lr(self) -> float:
        return self.parent.min_lr if self.parent else self.data["lr"]["min_lr"]

    @property
    def start_wd(self) -> float | None:
        if self.parent:
            return self.parent.start_wd
        return self.data["wd"]["start_wd"] if "wd" in self.data else None

    @property
    def end_wd(self) -> float | None:
        if self.parent:
            return self.parent.end_wd
        return self.data["wd"]["end_wd"] if "wd" in self.data else None

    def _lr_values(self, max_lr, min_lr) -> dict:
        values = super()._lr_values(max_lr, min_lr)
        if self.parent is not None:  # where the branch starts: its parent's value there
            first, second = values["max_lr"], values["min_lr"]
            values.update(_deeper_values(self.parent._lr_values(first, second)))
            values[BRANCH_POINT] = self.parent.base_lr_at(self.branch_point, first, second)
        return values

    def _wd_values(self, start_wd, end_wd) -> dict:
        values = super()._wd_values(start_wd, end_wd)
        if self.parent is not None:
            first, second = values["start_wd"], values["end_wd"]
            values.update(_deeper_values(self.parent._wd_values(first, second)))
            values[BRANCH_POINT] = self.parent.wd_at(self.branch_point, first, second)
        return values

    def _value_values(self, name: str, given: tuple) -> dict:
        values = super()._value_values(name, given)
        if self.parent is not None:
            values.update(_deeper_values(self.parent._value_values(name, given)))
            values[BRANCH_POINT] = self.parent.value_at(name, self.branch_point, given)
        return values

    @property
    def horizon(self):
        """Where the learning rate's last phase ends, in samples."""
        return self.lr_curve.ends[-1]

    def fields(self) -> dict:
        """What the schedule is, flat (``{"schedule.lr.phases[2].until": ...}``)."""
        return flatten(self.data, "schedule")

    def to_state(self) -> dict:
        """The checkpoint entry: the whole schedule as one JSON text (atomic for DCP)."""
        return {"schedule": json.dumps({"kind": KIND, **self.data}, sort_keys=True)}

    def describe(self) -> str:
        return f"phases ({len(self.lr_curve.segments)} for lr)"


KINDS[KIND] = lambda meaning, run: PhaseSchedule.from_dict(meaning)


def _frozen(value):
    """Nested dicts and lists as hashable tuples, equal where the data are equal."""
    if isinstance(value, dict):
        return frozenset((key, _frozen(item)) for key, item in value.items())
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def flatten(value, path: str) -> dict:
    """Nested dicts and lists as ``{path: leaf}``."""
    if isinstance(value, dict):
        return {
            k: v
            for key, item in value.items()
            for k, v in flatten(item, f"{path}.{key}" if path else str(key)).items()
        }
    if isinstance(value, list):
        return {
            k: v
            for index, item in enumerate(value)
            for k, v in flatten(item, f"{path}[{index}]").items()
        }
    return {path: value}


__all__ = ["PHASE_SHAPES", "Phase", "PhaseSchedule", "SHAPE_NAMES", "flatten"]
