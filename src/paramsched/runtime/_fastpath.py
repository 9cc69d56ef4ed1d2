"""A plan's step as one compiled function, built once per plan and segment.

`paramsched._writer.Plan.step` goes through layers on every step: its checks,
each class's bound curves (the search for the segment, the segment's formula,
the shape's coefficient), then the loop over the groups. While a plan holds,
`step_function` replaces all of it by one function generated as Python source
and compiled (as `dataclasses` builds ``__init__``), specialised to the plan:

- the segment each curve is in, as a guard on the clock position;
- each class's values, its overrides as constants, an operation shared by
  several classes (the cosine of a decay) computed once;
- for each group, the reads `Plan.step` makes (the five overrides, the types of
  ``lr`` and ``weight_decay``), compared as one tuple with the plan's, then the
  two writes; then the classes' cells and the plan's position, as
  `Plan.advance` leaves them.

It returns ``(plan, the position it wrote before)`` when it wrote every group,
and None, having changed nothing the general path does not redo, at the first
thing it was not built for: another schedule, another number of groups, a group
that differs, a position in another segment, an error of any kind. The caller
then takes the general path (`GroupWriter.write_step`), which rewrites, plans
afresh, or refuses and restores, as it always does.

Correct by construction: no formula is written here. Each class's value comes
from *running* the curve's own segment formula (`paramsched._curve.Segment.formula`,
the function `Curve.bind` uses) on a traced clock position (`_Traced`), with the
shapes' math namespace (`paramsched.shapes.SCALAR`) replaced by one that records
a call to the very same functions. Every operation the formula performs is
recorded in its order, with its operands (constants as the objects themselves,
not their text), and the generated code performs exactly those: the same
operations on the same numbers give the same floats. Whatever the trace cannot
record (a comparison on the position, a conversion of it) abandons the build, and
the plan keeps the general path. A built function is also checked against the
values the general path just computed before it is used.

Plans with tensors, scheduled values besides ``lr`` and ``weight_decay``, a
batch-size rule or more than `MAX_CLASSES` classes keep the general path, and so
do schedules whose curves are not bound by `Curve.bind` (which the trace follows).
A function is built only once the general path has served `SERVED` steps of the
plan in the segments it is for, so groups changed every few steps, and segments a
few steps long, never pay for one; compiled code is cached by its text, so the
same plan planned again (group dicts replaced by equal ones) reuses it.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math

from ..core._curve import Curve, CurveSchedule, _resolve
from ..core.overrides import OVERRIDE_KEYS
from ..core.shapes import SCALAR

logger = logging.getLogger("paramsched.scheduler")

#: Up to this many groups the generated code has one block per group; beyond, a loop.
UNROLL = 1024
#: General steps a plan serves in the same segments before their function is built.
SERVED = 16
#: Plans with more classes of groups keep the general path (building would take long).
MAX_CLASSES = 512


class _Untraceable(Exception):
    """The formula did something with the clock position that is not arithmetic."""


class _Node:
    """One operation recorded: a template (``"{} * {}"``) and its operands, each a
    `_Node` or a constant's text; `uses` counts the operations (and outputs) using it."""

    __slots__ = ("template", "operands", "uses", "name")

    def __init__(self, template: str, operands: tuple, name: str | None = None) -> None:
        self.template, self.operands, self.uses, self.name = template, operands, 0, name


class _Trace:
    """The operations recorded while formulas run on a `_Traced` position.

    An operation already recorded with the same operands is not recorded again. An
    operation used once is written inside its user's expression, fully
    parenthesised; one used more often (or an output) gets a line ``tN = ...`` of
    its own. A plain finite float or int is written as its literal (its repr reads
    back as the same number); any other constant is passed to the generated code as
    an argument ``kN`` (the object itself).

    Examples:
        >>> from paramsched.shapes import SHAPES
        >>> trace = _Trace()
        >>> ratio = _Traced(trace, trace.position) / 10.0
        >>> cosine = trace.output(SHAPES["cosine"].decay(ratio, _RECORDING))
        >>> trace.lines(), trace.constants
        (['t0 = 0.5 * ((k0((3.141592653589793 * (n / 10.0)))) + 1.0)'], [<built-in function cos>])
    """

    def __init__(self) -> None:
        self.position = _Node("n", (), "n")
        self.constants: list = []  # the arguments, kept alive (their ids name them)
        self._nodes: list[_Node] = []  # in the order recorded: operands first
        self._arguments: dict[int, str] = {}
        self._memo: dict[tuple, _Node] = {}

    def constant(self, value) -> str:
        kind = type(value)
        if kind is int or kind is float and math.isfinite(value):
            text = repr(value)
            return f"({text})" if text.startswith("-") else text
        name = self._arguments.get(id(value))
        if name is None:
            name = self._arguments[id(value)] = f"k{len(self.constants)}"
            self.constants.append(value)
        return name

    def _part(self, operand):
        if isinstance(operand, _Traced):
            if operand.trace is not self:
                raise _Untraceable
            return operand.node
        return self.constant(operand)

    def record(self, template: str, *operands) -> "_Traced":
        parts = tuple(self._part(o) for o in operands)
        key = (template, tuple(id(p) if isinstance(p, _Node) else p for p in parts))
        node = self._memo.get(key)
        if node is None:
            node = self._memo[key] = _Node(template, parts)
            self._nodes.append(node)
            for part in parts:
                if isinstance(part, _Node):
                    part.uses += 1
        return _Traced(self, node)

    def output(self, value):
        """Marks a result the generated code uses by name; returns its part."""
        part = self._part(value)
        if isinstance(part, _Node):
            part.uses += 2
        return part

    def text(self, part) -> str:
        if not isinstance(part, _Node):
            return part
        if part.name is not None:
            return part.name
        return "(" + part.template.format(*(self.text(p) for p in part.operands)) + ")"

    def lines(self) -> list[str]:
        """The lines computing every operation used more than once (call once)."""
        lines = []
        for node in self._nodes:
            if node.uses > 1:
                expression = node.template.format(*(self.text(p) for p in node.operands))
                node.name = f"t{len(lines)}"
                lines.append(f"{node.name} = {expression}")
        return lines


def _refuse(self, *args):
    raise _Untraceable


class _Traced:
    """A number known only by name, whose arithmetic is recorded in its `_Trace`."""

    __slots__ = ("trace", "node")
    __array_ufunc__ = None  # numpy scalars defer to the reflected operation

    def __init__(self, trace: _Trace, node: _Node) -> None:
        self.trace, self.node = trace, node

    def __add__(self, other):
        return self.trace.record("{} + {}", self, other)  # noqa: E704

    def __radd__(self, other):
        return self.trace.record("{} + {}", other, self)  # noqa: E704

    def __sub__(self, other):
        return self.trace.record("{} - {}", self, other)  # noqa: E704

    def __rsub__(self, other):
        return self.trace.record("{} - {}", other, self)  # noqa: E704

    def __mul__(self, other):
        return self.trace.record("{} * {}", self, other)  # noqa: E704

    def __rmul__(self, other):
        return self.trace.record("{} * {}", other, self)  # noqa: E704

    def __truediv__(self, other):
        return self.trace.record("{} / {}", self, other)  # noqa: E704

    def __rtruediv__(self, other):
        return self.trace.record("{} / {}", other, self)  # noqa: E704

    def __floordiv__(self, other):
        return self.trace.record("{} // {}", self, other)  # noqa: E704

    def __rfloordiv__(self, other):
        return self.trace.record("{} // {}", other, self)  # noqa: E704

    def __mod__(self, other):
        return self.trace.record("{} % {}", self, other)  # noqa: E704

    def __rmod__(self, other):
        return self.trace.record("{} % {}", other, self)  # noqa: E704

    def __neg__(self):
        return self.trace.record("-{}", self)  # noqa: E704

    def __pos__(self):
        return self.trace.record("+{}", self)  # noqa: E704

    def __abs__(self):
        return self.trace.record("abs({})", self)  # noqa: E704

    def __pow__(self, other, modulo=None):
        if modulo is not None:
            raise _Untraceable
        return self.trace.record("{} ** {}", self, other)

    def __rpow__(self, other, modulo=None):
        if modulo is not None:
            raise _Untraceable
        return self.trace.record("{} ** {}", other, self)

    # Anything that would turn the position into a decision or a plain number.
    __bool__ = __float__ = __int__ = __index__ = __complex__ = __hash__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __round__ = __trunc__ = __floor__ = __ceil__ = __iter__ = __len__ = _refuse


def _recording(function):
    """`function` as the traced formulas see it: a call on a traced operand is recorded
    as a call to `function` itself; on plain numbers it is simply called."""

    def call(*args):
        for arg in args:
            if isinstance(arg, _Traced):
                template = "{}(" + ", ".join(["{}"] * len(args)) + ")"
                return arg.trace.record(template, function, *args)
        return function(*args)

    return call


#: The shapes' math namespace, every function recorded (`_recording`).
_RECORDING = type(
    "_RecordingMath",
    (),
    {
        name: staticmethod(_recording(getattr(SCALAR, name)))
        for name in vars(SCALAR)
        if not name.startswith("_")
    },
)


def _value(curve, values: dict, number: int, position: _Traced):
    """The curve's value on segment `number` (its final value past the last), for the
    named `values`: what `Curve.bind(values)` computes there, traced."""
    if number == len(curve.segments):
        return _resolve(curve.final, values)
    segment = curve.segments[number]
    formula = segment.formula(_resolve(segment.start, values), _resolve(segment.target, values))
    return formula(position, _RECORDING)


def eligible(plan) -> bool:
    """Whether a step function can stand for the plan: floats only, lr and weight
    decay only, at most `MAX_CLASSES` classes, no batch-size rule, curves bound as
    `_value` traces them."""
    schedule, kind = plan.schedule, type(plan.schedule)
    return (
        plan.tensors is None
        and plan.values is None
        and len(plan.classes) <= MAX_CLASSES
        and schedule.batch_size_rule is None
        and kind.bind is CurveSchedule.bind
        and kind._bound is CurveSchedule._bound
        and all(
            curve is None or type(curve).bind is Curve.bind
            for curve in (schedule.lr_curve, schedule.wd_curve)
        )
    )


def segments(schedule, num_steps) -> tuple:
    """The segment each curve is in at `num_steps`, as `Curve.bind` finds it."""
    wd = schedule.wd_curve
    return (
        bisect.bisect_left(schedule.lr_curve.ends, num_steps),
        None if wd is None else bisect.bisect_left(wd.ends, num_steps),
    )


def step_function(plan, num_steps, compiled: dict):
    """The plan's step function for the segments `num_steps` is in, built once the
    general path has served `SERVED` steps there; None until then, and where the plan
    keeps the general path. `compiled` holds, for the plan, by segments, the steps
    served so far (an int) or what was built."""
    if not eligible(plan):
        return None
    where = segments(plan.schedule, num_steps)
    found = compiled.get(where, 0)
    if type(found) is int:
        if found + 1 < SERVED:  # short segments (a step or two each) never pay for one
            compiled[where] = found + 1
            return None
        if len(compiled) >= 64:  # a run over many segments
            compiled.clear()
        found = compiled[where] = _build(plan, where, num_steps)
    return found


def _build(plan, where: tuple, num_steps):
    """Generates, compiles and checks the plan's step function for `where`, or None."""
    try:
        source, constants, held = _source(plan, where)
        values, function = _compiled(source)(*constants)
        function.held = (tuple(plan.keys), held)  # what the groups held, for metrics()
        found = values(num_steps)
    except Exception as error:  # _Untraceable, or anything a formula did not expect
        logger.debug("the plan keeps the general path: %r", error)
        return None
    expected = [v for cell, *_ in plan.classes for v in cell[: len(plan.keys)]]
    if [(type(v), repr(v)) for v in found] != [(type(v), repr(v)) for v in expected]:
        logger.debug(
            "the plan keeps the general path: its step function computes %r, the curves %r",
            found,
            expected,
        )
        return None
    return function


@functools.lru_cache(maxsize=16)
def _compiled(source: str):
    namespace: dict = {}
    exec(compile(source, "<paramsched step function>", "exec"), namespace)
    return namespace["make"]


def _source(plan, where: tuple) -> tuple[str, list, list]:
    """The step function's source, the constants it takes (see the module docstring), and
    the list it keeps what each group held in, before its write."""
    schedule, trace = plan.schedule, _Trace()
    position = _Traced(trace, trace.position)
    width = len(plan.keys)  # lr, and weight_decay if the schedule has a weight-decay part
    outputs = []  # each class's lr (and weight decay), as `Plan.advance` computes them
    for (_, _, _, wd_mult), (max_lr, min_lr, start_wd, end_wd, _) in zip(
        plan.classes, plan.overrides
    ):
        outputs.append(
            trace.output(
                _value(schedule.lr_curve, schedule._lr_values(max_lr, min_lr), where[0], position)
            )
        )
        if width == 2:  # the curve's value times the class's wd_mult
            outputs.append(
                trace.output(
                    _value(
                        schedule.wd_curve, schedule._wd_values(start_wd, end_wd), where[1], position
                    )
                    * wd_mult
                )
            )
    lines = trace.lines()
    results = [trace.text(output) for output in outputs]
    guards = []
    for curve, number in ((schedule.lr_curve, where[0]), (schedule.wd_curve, where[1])):
        if curve is None:
            continue
        if number > 0:  # bisect_left's comparisons: ends[number - 1] < n <= ends[number]
            guards.append(f"not {trace.constant(curve.ends[number - 1])} < n")
        if number < len(curve.ends):
            guards.append(f"{trace.constant(curve.ends[number])} < n")
    cells = {id(cell): number for number, (cell, *_) in enumerate(plan.classes)}
    rows = [(key, cells[id(cell)]) for _, key, cell in plan.rows]

    def reads(g: str, held: str) -> str:  # the values held are kept as their types are read
        return ", ".join(
            [f"{g}.get({k!r})" for k in OVERRIDE_KEYS]
            + [f"({held}{i} := {g}[{k!r}]).__class__" for i, k in enumerate(plan.keys)]
        )

    def kept(held: str) -> str:
        return "(" + "".join(f"{held}{i}, " for i in range(width)) + ")"

    body = list(lines)
    # What each group held before the write (what the optimizer used: `metrics`), kept
    # in a list made once, row by row, so that no list is made at each step.
    held = [None] * len(rows)
    held_name = trace.constant(held)
    # Every group is checked before any is written, then written: the same reads,
    # comparison and writes as Plan.step.
    if len(rows) <= UNROLL:
        for number, (key, cls) in enumerate(rows):
            body += [
                f"g{number} = groups[{number}]",
                f"if ({reads(f'g{number}', f'h{number}_')}) != {trace.constant(key)}:",
                "    return None",
            ]
        for number, (key, cls) in enumerate(rows):
            body += [
                f"g{number}[{k!r}] = {results[cls * width + i]}" for i, k in enumerate(plan.keys)
            ]
        body += [f"{held_name}[{number}] = {kept(f'h{number}_')}" for number in range(len(rows))]
    else:  # each row: the group's key, and where its values are in `values`
        rows = tuple((key, *(cls * width + i for i in range(width))) for key, cls in rows)
        places = ", ".join(f"i{i}" for i in range(width))
        body += [
            f"values = ({', '.join(results)},)",
            "held = []",
            f"for g, (key, {places}) in zip(groups, {trace.constant(rows)}):",
            f"    if ({reads('g', 'h')}) != key:",
            "        return None",
            f"    held.append({kept('h')})",
            f"for g, (key, {places}) in zip(groups, {trace.constant(rows)}):",
            *[f"    g[{k!r}] = values[i{i}]" for i, k in enumerate(plan.keys)],
            f"{held_name}[:] = held",
        ]
    tail = [
        f"{trace.constant(cell)}[{i}] = {results[number * width + i]}"
        for number, (cell, *_) in enumerate(plan.classes)
        for i in range(width)
    ]
    plan_name, schedule_name = trace.constant(plan), trace.constant(schedule)
    arguments = ", ".join(f"k{i}" for i in range(len(trace.constants)))
    indent = "\n" + " " * 12
    source = f"""\
def make({arguments}):
    def values(n):
        {indent[:9].join(lines) or "pass"}
        return ({", ".join(results)},)

    def step(optimizer, schedule, n):
        if schedule is not {schedule_name}{"".join(f" or {g}" for g in dict.fromkeys(guards))}:
            return None
        try:
            groups = optimizer.param_groups
            if groups.__class__ is not list or len(groups) != {len(rows)}:
                return None
            {indent.join(body)}
        except Exception:
            return None  # the general path redoes the step, and raises if it must
        {indent[:9].join(tail)}
        taken = ({plan_name}, {plan_name}.num_steps)
        {plan_name}.num_steps = n
        return taken

    return values, step
"""
    return source, trace.constants, held
