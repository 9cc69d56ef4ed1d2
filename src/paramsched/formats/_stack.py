"""What the readers of other stacks share: a schedule of that stack's own formulas.

A `StackSchedule` is a learning-rate curve whose segments use the ``formula`` rule
(`paramsched._curve`): each segment carries a `Formula`, one branch of the stack's
own code, which performs that stack's floating-point operations in its order. Its
meaning is the stack's arguments, normalised (defaults filled in), so two spellings
of one configuration compare equal and checkpoint the same; ``KINDS[kind]`` builds
it back from them. Positions count optimizer steps, as the stack's scheduler does.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core._curve import Curve, CurveSchedule, Piece, Segment
from ..core.phases import _frozen, flatten
from ..core.shapes import ARRAY, SCALAR
from ..core.units import Run
from ..errors import LIMIT, ScheduleError, ScheduleTypeError, check_number


@dataclass(frozen=True)
class Formula:
    """One branch of a stack's code: ``function(n, base, m, *args)``, the rate after
    ``n`` steps for a group whose base rate is ``base``, in the math namespace ``m``.

    Examples:
        >>> half = Formula("half", lambda n, base, m, k: base * k, (0.5,))
        >>> half(3, 2.0)
        1.0
    """

    name: str
    function: Callable = field(repr=False)
    args: tuple = ()

    def __call__(self, n, base, m=SCALAR):
        return self.function(n, base, m, *self.args)


def elementwise(function: Callable) -> Callable:
    """A formula written for one Python number, run element by element on an array
    (each element as a Python int or float): the same operations, so the same floats,
    where a stack's branches or functions have no NumPy twin."""

    @functools.wraps(function)
    def run(n, base, m, *args):
        if m is ARRAY:
            positions = np.asarray(n)
            values = [function(x, base, SCALAR, *args) for x in positions.ravel().tolist()]
            return np.array(values, dtype=np.float64).reshape(positions.shape)
        return function(n, base, m, *args)

    return run


def curve(pieces: list, final, final_label: str = "hold") -> Curve:
    """The curve of ``(last step, Formula)`` pieces in order (a piece covers the steps
    after the previous piece's last one, up to its own; a piece with no step of its own
    is left out), then `final` (a number or ``"r * max_lr"``) held."""
    segments, previous = [], -1
    for end, formula in pieces:
        if end > previous:
            segments.append(
                Segment(end, "formula", "max_lr", "max_lr", formula, label=formula.name)
            )
            previous = end
    return Curve(tuple(segments), final, final_label)


@dataclass(frozen=True, eq=False)
class StackSchedule(CurveSchedule):
    """A schedule read from another stack's configuration (`paramsched.formats`).

    Attributes:
        kind: The stack's name (``"hf"``), its key in `paramsched._curve.KINDS`.
        arguments: The stack's arguments, normalised: what the schedule means.
        lr_curve: The curve of the stack's formulas.
        horizon: The last step the stack's configuration speaks of.
        max_lr: The base rate a group's ``max_lr`` overrides.
        min_lr: The rate the schedule ends at.
    """

    kind: str
    arguments: dict
    lr_curve: Curve
    horizon: int
    max_lr: float
    min_lr: float
    init_lr: float = 0.0
    refused_group_keys: dict = field(default_factory=dict, compare=False, repr=False)
    wd_curve = None
    base_lr_from_groups = True  # each group's base rate is its own, as LambdaLR's is
    start_wd = None
    end_wd = None

    @classmethod
    def of_curve(cls, kind: str, arguments: dict, lr_curve: Curve, horizon: int, max_lr: float,
                 **extra):  # fmt: skip
        """The schedule of `lr_curve` at the peak `max_lr`, its last rate (at `horizon`)
        and its first one read off the curve."""
        values = {"init_lr": 0.0, "max_lr": max_lr, "min_lr": 0.0}
        return cls(kind, arguments, lr_curve, horizon, max_lr, float(lr_curve.at(horizon, values)),
                   float(lr_curve.at(0, values)), **extra)  # fmt: skip

    @property
    def run(self) -> Run:
        """One position per optimizer step, for the steps the stack's configuration
        speaks of (what ``"%"`` refers to, and where previews and checks end)."""
        return Run(global_batch_size=1, total=f"{self.horizon} steps")

    def meaning(self) -> dict:
        return json.loads(json.dumps(self.arguments))

    def fields(self) -> dict:
        """The stack's arguments, flat (``{"hf.num_warmup_steps": 100, ...}``)."""
        return flatten(self.arguments, self.kind)

    def to_state(self) -> dict:
        """The checkpoint entry: the stack's arguments as one JSON text, with the kind."""
        return {"schedule": json.dumps({"kind": self.kind, **self.arguments}, sort_keys=True)}

    def pieces(self, total) -> list:
        """The segments for previews, up to `total` (a formula that never settles, such
        as a cosine transformers continues past its training, is cut there), each with
        the rate at its first and last position (a stack's branches need not meet)."""
        shown, values = [], self._lr_values(None, None)
        # Each piece's rates are the stack's own at its first and last position (a
        # formula evaluated at the position before its own, as `Curve.pieces` would,
        # can leave its domain: transformers' 1-sqrt decay takes a negative root).
        found, begin = [], 0
        for segment in self.lr_curve.segments:
            found.append(Piece(segment.label, begin, segment.end, 0.0, 0.0))
            begin = segment.end
        if total > begin:
            found.append(Piece(self.lr_curve.final_label, begin, total, 0.0, 0.0))
        for piece in found:
            end = min(piece.end, max(total, piece.start))
            piece = dataclasses.replace(
                piece,
                end=end,
                lr_start=float(self.lr_curve.at(piece.start, values)),
                lr_end=float(self.lr_curve.at(end, values)),
            )
            if piece.start < total or not shown:
                shown.append(piece)
        return shown

    def check_group(self, max_lr, min_lr, start_wd, end_wd, where: str) -> list[str]:
        """Refuses a group ``min_lr`` of its own: the stack's floor follows each group's
        base rate (its ``max_lr``), and has no other."""
        if min_lr != self.min_lr:
            raise ScheduleError(
                f"{where} has min_lr={min_lr!r}; a {self.kind} schedule's floor follows "
                "each group's max_lr (its base rate): expected no min_lr in the group"
            )
        return []

    def describe(self) -> str:
        name = self.arguments.get("name", self.arguments.get("sched", ""))
        return f"{self.kind} {name}".strip()

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, StackSchedule)
            and self.kind == other.kind
            and self.arguments == other.arguments
        )

    def __hash__(self) -> int:
        return hash((self.kind, _frozen(self.arguments)))  # as == sees them (1 == 1.0)


def unknown_key(prefix: str, key, known, what: str) -> ScheduleError:
    """The error for a `key` (named `prefix` + `key`) that is not `what`, listing the
    `known` keys and the nearest of them."""
    close = difflib.get_close_matches(str(key), known, n=1)
    return ScheduleError(
        f"{prefix}{key} is not {what}; expected one of "
        + ", ".join(known)
        + (f" (did you mean {close[0]!r}?)" if close else "")
    )


def whole(field_name: str, value, least: int = 0) -> int:
    """A step count as a stack takes it: a Python int (or NumPy integer) >= `least`."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ScheduleTypeError(
            f"{field_name}={value!r} is of type {type(value).__name__}; expected a whole number"
        )
    value = int(value)
    if value < least or value > LIMIT:
        raise ScheduleError(
            f"{field_name}={value!r}; expected a whole number >= {least} and at most 1e18"
        )
    return value


def number(field_name: str, value) -> float:
    """A real argument (a rate, a ratio, a count of cycles) as a finite float."""
    return float(check_number(field_name, value))


END = LIMIT  # the last step a formula that never settles covers
