"""Quantities with units, and the clock of a run: steps, samples and tokens.

The clock is Megatron's: the scheduler counts consumed samples. A `Run`
converts steps, samples and tokens both ways, and its batch size may change
during the run in one of Megatron's two ways; each optimizer step consumes the
batch size of the moment.

- A ramp-up (``--rampup-batch-size``, Megatron-Core up to 0.17), exactly as its
  calculator has it: after ``consumed`` samples the global batch size is
  ``start + int(consumed / (ramp / n)) * increment`` (``n`` the number of
  increments) while ``consumed <= ramp``, and the full global batch size after.
- A step schedule (``--step-batch-size-schedule``, Megatron-Core 0.18 on): a
  list of ``(threshold, batch size)`` stages; after ``consumed`` samples the
  batch size is that of the last stage whose threshold ``consumed`` has reached.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import difflib
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np

from ..errors import LIMIT, ScheduleError, ScheduleTypeError, check_choice, check_number

Unit = Literal["steps", "samples", "tokens", "%"]
UNITS: tuple[str, ...] = ("steps", "samples", "tokens", "%")
MAX_AMOUNT = LIMIT  # far beyond any run, and within what the clock's int64 arrays hold
MAX_INCREMENTS = 100_000  # batch-size increments of a ramp-up (real runs have tens)
MAX_STAGES = 10_000  # stages of a step batch-size schedule (real runs have a handful)
#: What a step on a token clock without its tokens is told.
TOKEN_CLOCK_STEP = (
    "the schedule's clock counts tokens, so how far this step goes is the "
    "tokens it consumed; expected step(tokens=n) (or add_tokens(n) before "
    "step())"
)
#: Set while a schedule's meaning is read back (a checkpoint, a branch's parent): its
#: positions are where they were landed when it was written, taken as they are.
_AS_WRITTEN = contextvars.ContextVar("paramsched_positions_as_written", default=False)
#: What a run's clock counts (`Run.clock`).
CLOCKS = ("samples", "tokens")
SI_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
MAX_DIGITS = 40  # significant digits a quantity may have (a float's repr has 17)
_UNIT_NAMES = {
    "step": "steps",
    "steps": "steps",
    "sample": "samples",
    "samples": "samples",
    "token": "tokens",
    "tokens": "tokens",
    # Megatron's word for an optimizer step
    "iter": "steps",
    "iters": "steps",
    "iteration": "steps",
    "iterations": "steps",
}
# One grammar (ASCII only): a number with optional `_` between digits, an optional
# decimal point and exponent; then either an upper-case SI suffix attached to it, one or
# more spaces and a unit, or a percent sign (spaces allowed before it, no SI suffix).
_DIGITS = r"[0-9](?:_?[0-9])*"
_NUMBER = rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?[0-9]+)?"
_QUANTITY = re.compile(
    rf"\s*(?P<number>{_NUMBER})(?:(?P<si>[KMBGT]?)\s+(?P<unit>[A-Za-z]+)|\s*(?P<percent>%))\s*",
    re.ASCII,
)
# What a near miss looks like ("10steps", "100ttokens", "5k samples"), to suggest the form.
_NEAR_MISS = re.compile(rf"\s*(?P<number>{_NUMBER})\s*(?P<rest>[A-Za-z][A-Za-z ]*?)\s*", re.ASCII)
_SI_PERCENT = re.compile(rf"\s*{_NUMBER}\s*[A-Za-z]\s*%\s*", re.ASCII)
_FORM = (
    "expected a number (digits 0-9), an optional SI suffix (K, M, B or G, T) attached "
    "to it, a space and a unit (steps, samples, tokens), or a percentage: "
    "'2000 steps', '1.5M samples', '10T tokens', '5%'"
)


@dataclass(frozen=True)
class Quantity:
    """An amount of steps, samples or tokens, or a percentage of a run's total.

    Attributes:
        amount: The exact amount (a Fraction, so "1.5M" is exactly 1,500,000).
        unit: One of `UNITS`.
    """

    amount: Fraction
    unit: Unit

    def __post_init__(self) -> None:
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, (numbers.Rational, float)):
            raise ScheduleTypeError(
                f"amount={amount!r} is of type {type(amount).__name__}; "
                "expected an exact number (a Fraction or an int)"
            )
        if not (math.isfinite(amount) and 0 <= amount <= MAX_AMOUNT):
            raise ScheduleError(
                f"amount={amount!r}; expected a number from 0 to {float(MAX_AMOUNT):g}"
            )
        check_choice("unit", self.unit, UNITS)
        object.__setattr__(self, "amount", Fraction(amount))

    @classmethod
    def parse(cls, text: object, field: str = "quantity") -> "Quantity":
        """Reads ``"2000 steps"``, ``"1.5M samples"``, ``"10T tokens"`` or ``"5%"``.

        The one grammar, in ASCII:

        - a number: digits 0-9, a single ``_`` allowed between two digits, an optional
          decimal point and an optional exponent (``4_096``, ``1.5``, ``.5``, ``1e3``);
        - then either an optional SI suffix attached to the number, upper case only
          (K, M, B or G, T: 10**3, 10**6, 10**9, 10**12), at least one space and a
          unit, ``step(s)``, ``sample(s)`` or ``token(s)`` in any case (``iter(s)`` and
          ``iteration(s)``, Megatron's words, are steps);
        - or a ``%``, directly or after spaces, without an SI suffix.

        So ``"10steps"``, ``"10tokens"``, ``"10k steps"`` and ``"5K%"`` are refused,
        with the form meant where it is clear (``did you mean '10 steps'?``). The
        amount is exact (a Fraction): 0, or from the smallest float (5e-324) up to
        `MAX_AMOUNT`, with at most `MAX_DIGITS` significant digits, all bounded before
        it is computed.

        Raises:
            ScheduleTypeError: `text` is not a string (nor a `Quantity`).
            ScheduleError: naming `field`, for anything else.

        Examples:
            >>> Quantity.parse("1.5M samples")
            Quantity(amount=Fraction(1500000, 1), unit='samples')
            >>> str(Quantity.parse("5%"))
            '5%'
        """
        if isinstance(text, Quantity):
            return text
        if not isinstance(text, str):
            raise ScheduleTypeError(
                f"{field}={text!r} is of type {type(text).__name__}; expected a quantity such as "
                "'2000 steps', '1.5M samples', '10T tokens' or '5%'"
            )
        match = _QUANTITY.fullmatch(text)
        unit = None
        if match:
            unit = "%" if match["percent"] else _UNIT_NAMES.get(match["unit"].lower())
        if unit is None:
            raise ScheduleError(
                f"{field}={_shown(text)} is not a quantity; {_FORM}" + _suggestion(text)
            )
        return cls(_exact_amount(text, field, match["number"], match["si"] or ""), unit)

    def __str__(self) -> str:
        number = _format_amount(self.amount)
        return f"{number}%" if self.unit == "%" else f"{number} {self.unit}"


def _exact_amount(text: str, field: str, number: str, si: str) -> Fraction:
    """The number times the SI suffix, exactly, its size bounded before any big integer
    is built (``"1e100000000 steps"`` is refused at once, not computed)."""
    mantissa, _, exponent = number.replace("_", "").lower().partition("e")
    whole, _, decimals = mantissa.partition(".")
    digits = (whole + decimals).lstrip("0")
    if not digits:
        return Fraction(0)
    power = 0
    if exponent:  # more than 9 digits (leading zeros aside) is far out of bounds either way
        power = (
            int(exponent)
            if len(exponent.lstrip("+-").lstrip("0")) <= 9
            else (-1 if exponent.startswith("-") else 1) * 10**9
        )
    si_power = len(str(SI_SUFFIXES[si])) - 1  # "M": 6
    scale = power - len(decimals) + si_power  # amount = int(whole + decimals) * 10**scale
    order = len(digits) - 1 + scale  # 10**order <= amount < 10**(order + 1)
    significant = digits.rstrip("0")
    if order > 18:
        raise ScheduleError(
            f"{field}={_shown(text)} is beyond any run; expected at most {float(MAX_AMOUNT):g}"
        )
    if order < -324:  # every float's repr parses (phase ends are written so)
        raise ScheduleError(
            f"{field}={_shown(text)} is below the smallest float, 5e-324; expected 0 or more"
        )
    if len(significant) > MAX_DIGITS:
        raise ScheduleError(
            f"{field}={_shown(text)} has {len(significant)} significant digits; "
            f"expected at most {MAX_DIGITS}"
        )
    scale += len(digits) - len(significant)
    amount = (
        Fraction(int(significant) * 10**scale)
        if scale >= 0
        else Fraction(int(significant), 10**-scale)
    )
    if amount > MAX_AMOUNT:
        raise ScheduleError(
            f"{field}={_shown(text)} is beyond any run; expected at most {float(MAX_AMOUNT):g}"
        )
    return amount


def _shown(text: str) -> str:
    """`text` for a message: its repr, or the start of it and its length if it is long."""
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text):,} characters)"


def _suggestion(text: str) -> str:
    """What a near miss of the grammar meant, as `` (did you mean '10 steps'?)``, or ``""``."""
    if any(c.isdigit() and not c.isascii() for c in text):
        return " (only the ASCII digits 0-9 are read)"
    if _SI_PERCENT.fullmatch(text):
        return " (a percentage takes no SI suffix)"
    match = _NEAR_MISS.fullmatch(text) if len(text) <= 100 else None
    if match is None:
        return ""
    rest = match["rest"].replace(" ", "")
    si, unit = "", _UNIT_NAMES.get(rest.lower())
    if unit is None and rest[0].upper() in SI_SUFFIXES:  # "100ttokens", "5k steps"
        si, unit = rest[0].upper(), _UNIT_NAMES.get(rest[1:].lower())
    if unit is None:  # "10 stpes"
        close = difflib.get_close_matches(rest.lower(), _UNIT_NAMES, n=1, cutoff=0.8)
        si, unit = "", _UNIT_NAMES[close[0]] if close else None
    return "" if unit is None else f" (did you mean '{match['number']}{si} {unit}'?)"


def _format_amount(amount: Fraction) -> str:
    """``1500000`` as ``1.5M``; fractions as a short decimal."""
    if amount.denominator != 1:
        return f"{float(amount):g}"
    value = amount.numerator
    for suffix in ("T", "B", "M", "K"):  # the names `SI_SUFFIXES` writes (B, not G)
        scale = SI_SUFFIXES[suffix]
        step = max(scale // 1000, 1000)  # at most 3 decimals, and whole thousands
        if scale <= value < scale * 10**6 and value % step == 0:
            return f"{value / scale:.3f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def _within_runs(
    samples: Fraction, quantity: Quantity, field: str, unit: str = "samples"
) -> Fraction:
    """`samples`, refused beyond any run (steps of large batches, a large percentage)."""
    if samples > MAX_AMOUNT:
        raise ScheduleError(
            f"{field}={str(quantity)!r} is {float(samples):g} {unit}, beyond any "
            f"run; expected at most {float(MAX_AMOUNT):g} {unit}"
        )
    return samples


def check_tokens(field: str, value) -> int:
    """A count of tokens on a token clock: a whole number (an int, or an integer NumPy
    scalar), from 0 to `MAX_AMOUNT`; a float is refused even when whole, since the
    clock's positions are exact integers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ScheduleTypeError(
            f"{field}={value!r} is of type {type(value).__name__}; expected "
            "a whole number of tokens (an int)"
        )
    value = int(value)
    if not 0 <= value <= MAX_AMOUNT:
        raise ScheduleError(
            f"{field}={value!r}; expected a whole number of tokens from 0 to {float(MAX_AMOUNT):g}"
        )
    return value


def _check_counts(field: str, values, whole: bool):
    """`values`, a count of steps (`whole`) or of samples, or an array of them, checked:
    numbers (not bools), finite, from 0 to `MAX_AMOUNT`, and whole numbers for steps.

    Returns an int (steps, or whole samples), a Fraction or float (other samples), or an
    int64 (steps) or numeric array; an array is checked in a few vectorised passes.
    """
    if isinstance(values, np.ndarray) and values.ndim == 0:
        values = values.item()  # a 0-d array is one number
    if np.ndim(values) == 0:
        number = check_number(field, values)  # a number, finite, at most 1e18 in size
        problem = _count_problem(number, whole)
        if problem:
            raise ScheduleError(
                f"{field}={number!r} {problem}; expected "
                f"{'a whole' if whole else 'a'} number of {field} >= 0"
            )
        if whole:
            return int(number)
        return values if isinstance(values, Fraction) else number  # Fractions stay exact
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise ScheduleTypeError(
            f"{field} is not an array of numbers; expected {field} >= 0"
        ) from error
    if array.dtype.kind not in "iuf":
        raise ScheduleTypeError(
            f"{field} has dtype {array.dtype}; expected an array of "
            f"{'integer' if whole else 'integer or float'} {field}"
        )
    if array.size:
        bad = None
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                bad = ~finite
            elif whole and (array != np.floor(array)).any():
                bad = array != np.floor(array)
        if bad is None and not (array.min() >= 0 and array.max() <= MAX_AMOUNT):
            bad = (array < 0) | (array > MAX_AMOUNT)
        if bad is not None:
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            where = index[0] if len(index) == 1 else index
            value = array[index].item()
            raise ScheduleError(
                f"{field}[{where}]={value!r} {_count_problem(value, whole)}; "
                f"expected {'whole ' if whole else ''}{field} from 0 to "
                f"{float(MAX_AMOUNT):g}"
            )
    return array.astype(np.int64, copy=False) if whole else array


def _count_problem(value, whole: bool) -> str:
    """What is wrong with one count, or ``""``."""
    if not math.isfinite(value):
        return "is not finite"
    if value < 0:
        return "is negative"
    if value > MAX_AMOUNT:
        return "is beyond any run"
    return "is not a whole number" if whole and value != int(value) else ""


@dataclass(frozen=True)
class Run:
    """How a run consumes samples: batch size, ramp-up, sequence length, length.

    Args:
        global_batch_size: Samples per optimizer step once any ramp-up is over.
        seq_length: Tokens per sample; needed to speak of tokens.
        rampup_batch_size: Megatron's ``--rampup-batch-size``: ``(start, increment,
            ramp)``, the ramp in samples (a number) or as a quantity in samples or tokens.
        total: The run's length, a quantity; what ``"%"`` refers to, and where previews stop.
        batch_size_schedule: Stages of the batch size, ``[(threshold, batch size), ...]``:
            each threshold in samples (a number) or a quantity in samples or tokens,
            the first 0, strictly increasing; a stage begins at the first step whose
            consumed samples reach its threshold exactly (``"250B tokens"`` with a
            sequence of 4096 is reached at 61,035,157 samples, the first count whose
            tokens reach 250B). `global_batch_size` is then the last stage's size and
            need not be given. Not with `rampup_batch_size`.
        clock: What the scheduler's positions count: ``"samples"`` (Megatron's clock,
            the default) or ``"tokens"``, a live token clock driven by the tokens each
            step really consumed (``scheduler.step(tokens=n)``), for packed and
            variable-length data. On a token clock, quantities are in tokens (or
            ``"%"`` of a total in tokens), stage thresholds are in tokens, and there
            is no sequence length or ramp-up: a step's tokens are not fixed.
    """

    global_batch_size: int | None = None
    seq_length: int | None = None
    rampup_batch_size: tuple | None = None
    total: Quantity | str | None = None
    batch_size_schedule: tuple | None = None
    clock: str = "samples"
    _ramp: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice("clock", self.clock, CLOCKS)
        if self.clock == "tokens":
            for name in ("seq_length", "rampup_batch_size"):
                if getattr(self, name) is not None:
                    raise ScheduleError(
                        f"{name}={getattr(self, name)!r} with clock='tokens'; expected no "
                        f"{name}: a token clock counts the tokens each step really consumed"
                    )
        for name in ("global_batch_size", "seq_length"):
            value = getattr(self, name)
            if value is not None:
                value = check_number(name, value)
                if not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
                    raise ScheduleError(
                        f"{name}={value!r}; expected a whole number > 0 "
                        f"and at most {float(MAX_AMOUNT):g}"
                    )
                object.__setattr__(self, name, value)
        if self.total is not None:
            total = Quantity.parse(self.total, "total")
            if total.unit == "%":
                raise ScheduleError(
                    f"total={self.total!r} is a percentage; expected steps, samples or tokens"
                )
            if self.clock == "tokens" and total.unit != "tokens":
                raise ScheduleError(
                    f"total={self.total!r} with clock='tokens'; expected the run's length in tokens"
                )
            object.__setattr__(self, "total", total)
        if self.rampup_batch_size is not None:
            if self.batch_size_schedule is not None:
                raise ScheduleError(
                    f"rampup_batch_size={self.rampup_batch_size!r} and batch_size_schedule are "
                    "both set; expected one way for the batch size to change"
                )
            object.__setattr__(self, "_ramp", self._check_ramp(self.rampup_batch_size))
            object.__setattr__(self, "rampup_batch_size", tuple(self.rampup_batch_size))
        if self.batch_size_schedule is not None:
            stages = self._check_stages(self.batch_size_schedule)
            final = stages[-1][1]
            if self.global_batch_size is not None and self.global_batch_size != final:
                raise ScheduleError(
                    f"global_batch_size={self.global_batch_size} with a batch_size_schedule "
                    f"whose last stage is {final}; expected no global_batch_size (it is the "
                    "last stage's)"
                )
            object.__setattr__(self, "global_batch_size", final)
            object.__setattr__(self, "batch_size_schedule", stages)
        if (
            self.total is not None
            and self.total.unit == "steps"
            and self.global_batch_size is not None
        ):
            self._exact_samples(self.total, "total")  # refused now if beyond any run

    def _check_stages(self, stages) -> tuple[tuple[int, int], ...]:
        """The stages as ``((threshold in samples, batch size), ...)``, checked."""
        label = "batch_size_schedule"
        if isinstance(stages, (str, bytes)) or not isinstance(stages, (list, tuple)) or not stages:
            raise ScheduleTypeError(
                f"{label}={stages!r}; expected a non-empty list of "
                "[threshold, batch size] pairs, e.g. [[0, 256], "
                "['100B tokens', 512]]"
            )
        if len(stages) > MAX_STAGES:
            raise ScheduleError(
                f"{label} has {len(stages):,} stages; expected at most {MAX_STAGES:,}"
            )
        checked: list[tuple[int, int]] = []
        for index, stage in enumerate(stages):
            where = f"{label}[{index}]"
            if (
                isinstance(stage, (str, bytes))
                or not isinstance(stage, (list, tuple))
                or len(stage) != 2
            ):
                raise ScheduleTypeError(
                    f"{where}={stage!r}; expected a pair [threshold, batch size]"
                )
            threshold, size = stage
            if isinstance(threshold, str):
                quantity = Quantity.parse(threshold, f"{where}[0]")
                if quantity.unit in ("steps", "%"):
                    raise ScheduleError(
                        f"{where}[0]={threshold!r}; expected a threshold in samples or tokens "
                        "(in steps it would depend on the schedule itself)"
                    )
                exact = self._exact_samples(quantity, f"{where}[0]")
            else:
                exact = check_number(f"{where}[0]", threshold)
                if exact < 0 or exact > MAX_AMOUNT:
                    raise ScheduleError(
                        f"{where}[0]={threshold!r}; expected {self.unit} >= 0 "
                        f"and at most {float(MAX_AMOUNT):g}"
                    )
            samples = math.ceil(Fraction(exact))  # reached by the first whole count past it
            size = check_number(f"{where}[1]", size)
            if not isinstance(size, int) or not 0 < size <= MAX_AMOUNT:
                raise ScheduleError(
                    f"{where}[1]={stage[1]!r}; expected a whole batch size > 0 "
                    f"and at most {float(MAX_AMOUNT):g}"
                )
            if index == 0 and samples != 0:
                raise ScheduleError(f"{where}[0]={threshold!r}; expected the first stage at 0")
            if checked and samples <= checked[-1][0]:
                raise ScheduleError(
                    f"{where}[0]={threshold!r} is {samples:,} {self.unit}, not after the stage "
                    f"before it ({checked[-1][0]:,} {self.unit}); expected strictly increasing "
                    "thresholds"
                )
            checked.append((samples, size))
        return tuple(checked)

    def _check_ramp(self, ramp) -> tuple[int, int, float]:
        label = "rampup_batch_size"
        if not isinstance(ramp, (list, tuple)) or len(ramp) != 3:
            raise ScheduleError(f"{label}={ramp!r}; expected [start, increment, ramp length]")
        if self.global_batch_size is None:
            raise ScheduleError(f"{label}={list(ramp)!r} without global_batch_size; expected both")
        start, increment = (check_number(f"{label}[{i}]", v) for i, v in enumerate(ramp[:2]))
        for index, value in enumerate((start, increment)):
            if not isinstance(value, int) or value <= 0:
                raise ScheduleError(f"{label}[{index}]={value!r}; expected a whole number > 0")
        length = ramp[2]
        if isinstance(length, str):
            quantity = Quantity.parse(length, f"{label}[2]")
            if quantity.unit in ("steps", "%"):
                raise ScheduleError(
                    f"{label}[2]={length!r}; expected the ramp's length in samples or tokens "
                    "(in steps it would depend on itself)"
                )
            samples = self._exact_samples(quantity, f"{label}[2]")
            length = int(samples) if samples.denominator == 1 else float(samples)
        else:
            length = check_number(f"{label}[2]", length)
            if length < 0:
                raise ScheduleError(f"{label}[2]={length!r} is negative; expected samples >= 0")
            if length > MAX_AMOUNT:
                raise ScheduleError(
                    f"{label}[2]={length!r} is beyond any run; expected at "
                    f"most {float(MAX_AMOUNT):g} samples"
                )
            if isinstance(length, float) and length.is_integer():
                length = int(length)  # 1000.0 samples mean what 1000 samples mean
        if length == 0:
            raise ScheduleError(
                f"{label}[2]={ramp[2]!r} is a ramp of no length; expected a "
                "length > 0 (Megatron divides by it)"
            )
        difference = self.global_batch_size - start
        if difference // increment > MAX_INCREMENTS:
            raise ScheduleError(
                f"{label}={list(ramp)!r} has {difference // increment:,} increments; expected at "
                f"most {MAX_INCREMENTS:,} (start + increment * n = global_batch_size)"
            )
        if difference < 0 or difference % increment:
            raise ScheduleError(
                f"{label}={list(ramp)!r}: global_batch_size {self.global_batch_size} minus the "
                f"start {start} is {difference}; expected a multiple >= 0 of the increment "
                f"{increment}"
            )
        return start, increment, length

    @property
    def ramps(self) -> bool:
        """Whether the batch size changes during the run (a ramp starting at the full
        size does not, nor a schedule whose stages all have one size)."""
        if self.batch_size_schedule is not None:
            return len({size for _, size in self.batch_size_schedule}) > 1
        return self._ramp is not None and self._ramp[0] != self.global_batch_size

    def describe_batch_size(self) -> str:
        """How the batch size changes, in a few words, for messages."""
        if self.batch_size_schedule is not None:
            return "batch_size_schedule " + ", ".join(
                f"{size} from {threshold:,} {self.unit}"
                for threshold, size in self.batch_size_schedule
            )
        if self.rampup_batch_size is not None:
            return f"rampup_batch_size {list(self.rampup_batch_size)!r}"
        return f"global_batch_size {self.global_batch_size}"

    # ------------------------------------------------------------ conversions

    @property
    def counts_tokens(self) -> bool:
        """Whether the clock is a live token clock (positions are tokens consumed)."""
        return self.clock == "tokens"

    @property
    def unit(self) -> str:
        """What a position on the clock counts: ``"samples"`` or ``"tokens"``."""
        return self.clock

    def _exact_samples(self, quantity: Quantity, field: str) -> Fraction:
        if self.clock == "tokens" and quantity.unit in ("samples", "steps"):
            raise ScheduleError(
                f"{field}={str(quantity)!r} is in {quantity.unit}, on a run whose "
                "clock counts tokens; expected tokens, or a percentage of the "
                "run's total"
            )
        if self.clock == "tokens" and quantity.unit == "tokens":
            return quantity.amount
        if quantity.unit == "samples":
            return quantity.amount
        if quantity.unit == "tokens":
            if self.seq_length is None:
                raise ScheduleError(
                    f"{field}={str(quantity)!r} is in tokens; expected "
                    "seq_length in the run to convert tokens to samples"
                )
            return quantity.amount / self.seq_length
        if quantity.unit == "steps":
            if quantity.amount.denominator != 1:
                raise ScheduleError(f"{field}={str(quantity)!r}; expected a whole number of steps")
            if self.global_batch_size is None:
                raise ScheduleError(
                    f"{field}={str(quantity)!r} is in steps; expected "
                    "global_batch_size in the run to convert steps to samples"
                )
            if quantity.amount > self._last_step:
                raise ScheduleError(
                    f"{field}={str(quantity)!r} is beyond any run; expected at most "
                    f"{self._last_step:,} steps ({float(MAX_AMOUNT):g} samples)"
                )
            return Fraction(int(self.samples_at_step(int(quantity.amount))))
        if self.total is None:
            raise ScheduleError(
                f"{field}={str(quantity)!r} is a percentage; expected total in "
                "the run, which it is a percentage of"
            )
        return _within_runs(
            self._exact_samples(self.total, "total") * quantity.amount / 100,
            quantity,
            field,
            self.unit,
        )

    def samples(self, quantity: Quantity | str, field: str = "quantity") -> int | float:
        """The number of consumed samples `quantity` stands for (an int when whole)."""
        exact = self._exact_samples(Quantity.parse(quantity, field), field)
        return exact.numerator if exact.denominator == 1 else float(exact)

    @property
    def has_steps(self) -> bool:
        """Whether the run's clock moves in whole optimizer steps of known size (a
        batch size on the sample clock), so that a position can fall inside a step."""
        return self.global_batch_size is not None and self.clock == "samples"

    def land(self, position):
        """Where a position lands on a run with whole steps: the end of the first step
        whose consumed samples reach it (`step_at_samples`), which is what previews and
        tables report; the position itself on a clock without whole steps.

        Examples:
            >>> run = Run(global_batch_size=16)
            >>> run.land(6250), run.land(6256), Run().land(6250)
            (6256, 6256, 6250)
        """
        if not self.has_steps or _AS_WRITTEN.get():
            return position
        return int(self.samples_at_step(self.step_at_samples(position)))

    def position(self, quantity: Quantity | str, field: str = "quantity") -> int | float:
        """The clock position `quantity` lands at (`land` of its samples): where a phase
        ends and a branch begins."""
        samples = self.samples(quantity, field)
        try:
            return self.land(samples)
        except ScheduleError:  # the step it lands on ends beyond any run
            written = quantity if isinstance(quantity, str) else str(quantity)
            raise ScheduleError(
                f"{field}={written!r} lands at the end of step "
                f"{self.step_at_samples(samples):,}, beyond any run; expected a point that "
                f"lands within {float(MAX_AMOUNT):g} samples"
            ) from None

    def batch_size_at(self, consumed_samples) -> int:
        """The global batch size after `consumed_samples` (tokens, on a token clock), as
        Megatron's calculator gives it."""
        self._check_batch(steps=False)
        if type(consumed_samples) is not int or not 0 <= consumed_samples <= MAX_AMOUNT:
            if np.ndim(consumed_samples):
                raise ScheduleTypeError("samples is an array; expected one number of samples")
            consumed_samples = _check_counts("samples", consumed_samples, whole=False)
        if self.batch_size_schedule is not None:
            stages = self.batch_size_schedule
            return stages[bisect.bisect_right(self._thresholds, consumed_samples) - 1][1]
        if self._ramp is None:
            return self.global_batch_size
        start, increment, length = self._ramp
        per_increment = length / ((self.global_batch_size - start) // increment or 1)
        if consumed_samples > length or start == self.global_batch_size:
            return self.global_batch_size
        return start + int(consumed_samples / per_increment) * increment

    def batch_sizes_at(self, positions: np.ndarray) -> np.ndarray:
        """`batch_size_at` over a float64 array of checked positions (the same floats)."""
        self._check_batch(steps=False)
        if self.batch_size_schedule is not None:
            sizes = np.array([size for _, size in self.batch_size_schedule], dtype=np.float64)
            return sizes[exact_searchsorted(self._thresholds, positions, side="right") - 1]
        if self._ramp is None or self._ramp[0] == self.global_batch_size:
            return np.full_like(positions, float(self.global_batch_size))
        start, increment, length = self._ramp
        per_increment = length / ((self.global_batch_size - start) // increment or 1)
        ramping = start + np.floor(positions / per_increment) * increment  # int(): floor, >= 0
        return np.where(positions > length, float(self.global_batch_size), ramping)

    def _check_batch(self, steps: bool = True) -> None:
        if steps and self.clock == "tokens":
            raise ScheduleError(
                "the run's clock counts tokens, which steps do not fix; "
                "expected a clock in samples to speak of steps"
            )
        if self.global_batch_size is None:
            raise ScheduleError("the run has no global_batch_size; expected one to speak of steps")

    @cached_property
    def _stages(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The clock in stretches of one batch size: each stretch's first step, the samples
        consumed at it, and its batch size; the last one (the full size) never ends.

        Found stretch by stretch, each end by a search over `batch_size_at` (so the float
        arithmetic of Megatron's rule is kept exactly), not step by step: the work grows
        with the number of increments, which the run bounds, not with the ramp's length.
        """
        steps, consumed, sizes = [0], [0], []
        if self.batch_size_schedule is not None:
            thresholds = self._thresholds
            while True:  # stage by stage; a stage may be passed over within one step
                stage = bisect.bisect_right(thresholds, consumed[-1]) - 1
                if stage == len(thresholds) - 1:
                    break
                size = self.batch_size_schedule[stage][1]
                count = -(-(thresholds[stage + 1] - consumed[-1]) // size)
                steps.append(steps[-1] + count)
                consumed.append(consumed[-1] + count * size)
                sizes.append(size)
        elif self.ramps:
            length = self._ramp[2]
            while consumed[-1] <= length:
                start, size = consumed[-1], self.batch_size_at(consumed[-1])

                def past(count, start=start, size=size):
                    after = start + count * size
                    return after > length or self.batch_size_at(after) != size

                high = 1
                while not past(high):
                    high *= 2
                low = high // 2  # not past (or 0); find the first count that is
                while high - low > 1:
                    middle = (low + high) // 2
                    low, high = (low, middle) if past(middle) else (middle, high)
                steps.append(steps[-1] + high)
                consumed.append(start + high * size)
                sizes.append(size)
        sizes.append(self.global_batch_size)
        return (
            np.array(steps, dtype=np.int64),
            np.array(consumed, dtype=np.int64),
            np.array(sizes, dtype=np.int64),
        )

    def stretches(self) -> list[tuple[int, int, int]]:
        """The clock in stretches of one batch size: each one's first step, the samples
        consumed before it, and its batch size; the last never ends.

        Examples:
            >>> Run(batch_size_schedule=[[0, 4], [10, 8]]).stretches()
            [(0, 0, 4), (3, 12, 8)]
        """
        self._check_batch()  # a token clock has no steps to count
        return list(zip(*(part.tolist() for part in self._stages)))

    @cached_property
    def _thresholds(self) -> list[int]:
        return [threshold for threshold, _ in self.batch_size_schedule]

    @cached_property
    def _last_step(self) -> int:
        """The last step whose consumed samples are within `MAX_AMOUNT`."""
        first, consumed, sizes = self._stages
        return int(first[-1]) + (MAX_AMOUNT - int(consumed[-1])) // int(sizes[-1])

    def samples_at_step(self, steps):
        """Consumed samples after `steps` optimizer steps (a number or an array).

        Raises:
            ScheduleError: a step is negative, fractional, not finite, or past the step
                that consumes `MAX_AMOUNT` samples; naming it.
        """
        self._check_batch()
        steps = _check_counts("steps", steps, whole=True)
        first, consumed, sizes = self._stages
        last = self._last_step
        if np.ndim(steps) == 0:  # Python ints: exact at any size
            if steps > last:
                raise ScheduleError(
                    f"steps={steps!r} is beyond any run; expected at most "
                    f"{last} steps ({float(MAX_AMOUNT):g} samples)"
                )
            stage = int(np.searchsorted(first, steps, side="right")) - 1
            return int(consumed[stage]) + (steps - int(first[stage])) * int(sizes[stage])
        if steps.size and steps.max() > last:
            index = int(np.argmax(steps > last))
            raise ScheduleError(
                f"steps[{index}]={int(steps.flat[index])} is beyond any run; "
                f"expected at most {last} steps ({float(MAX_AMOUNT):g} samples)"
            )
        stage = np.searchsorted(first, steps, side="right") - 1
        return consumed[stage] + (steps - first[stage]) * sizes[stage]

    def step_at_samples(self, samples):
        """The first step after which at least `samples` samples are consumed.

        Raises:
            ScheduleError: a number of samples is negative, not finite or beyond
                `MAX_AMOUNT`; naming it.
        """
        self._check_batch()
        samples = _check_counts("samples", samples, whole=False)
        first, consumed, sizes = self._stages
        if np.ndim(samples) == 0:
            stage = int(np.searchsorted(consumed, samples, side="right")) - 1
            return int(first[stage]) + math.ceil(
                (Fraction(samples) - int(consumed[stage])) / int(sizes[stage])
            )
        if samples.dtype.kind in "iu":  # whole samples: a ceiling division of ints, exact
            samples_int = samples.astype(np.int64)
            stage = np.searchsorted(consumed, samples_int, side="right") - 1
            return first[stage] - ((consumed[stage] - samples_int) // sizes[stage])
        samples_array = samples.astype(np.float64, copy=False)
        stage = exact_searchsorted(consumed.tolist(), samples_array, side="right") - 1
        return (first[stage] + np.ceil((samples_array - consumed[stage]) / sizes[stage])).astype(
            np.int64
        )

    def step_past_samples(self, samples) -> int:
        """The first step after which more than `samples` samples are consumed.

        Examples:
            >>> run = Run(global_batch_size=4)
            >>> run.step_at_samples(8), run.step_past_samples(8), run.step_past_samples(7)
            (2, 3, 2)
        """
        step = self.step_at_samples(samples)  # (its end may lie beyond any run)
        return (
            step + 1 if step <= self._last_step and self.samples_at_step(step) == samples else step
        )

    def tokens(self, samples):
        """Tokens in `samples` samples (a number or an array), or None without a
        sequence length. Refuses what `step_at_samples` refuses. An integer array whose
        tokens would not fit in int64 gives float64 tokens, not wrapped-around ones."""
        samples = _check_counts("samples", samples, whole=False)
        if self.seq_length is None:
            return None
        if (
            isinstance(samples, np.ndarray)
            and samples.dtype.kind in "iu"
            and samples.size
            and samples.max() > np.iinfo(np.int64).max // self.seq_length
        ):
            samples = samples.astype(np.float64)
        return samples * self.seq_length

    @property
    def total_samples(self) -> int | float | None:
        """The run's length in samples, or None if it has no total."""
        return None if self.total is None else self.samples(self.total, "total")

    def to_dict(self) -> dict:
        """What the run means, as builtins: the total, the ramp's length and the
        stages' thresholds in samples (``batch_size_schedule`` only when it has one)."""
        meaning = {
            "global_batch_size": self.global_batch_size,
            "seq_length": self.seq_length,
            "rampup_batch_size": None if self._ramp is None else list(self._ramp),
            "total": None if self.total is None else f"{self.total_samples!r} {self.unit}",
        }
        if self.batch_size_schedule is not None:
            meaning["global_batch_size"] = None  # the last stage's, not a setting
            meaning["batch_size_schedule"] = [list(stage) for stage in self.batch_size_schedule]
        if self.clock != "samples":
            meaning["clock"] = self.clock
        return meaning


class StepClock:
    """The positions of a schedule that counts optimizer steps (one without a run, and
    its branches): a quantity in steps is that many positions, ``"%"`` is of a total in
    steps, and a position lands on a whole step. Samples and tokens are ambiguous there
    and refused (a meaning written before positions were said in steps reads them as
    positions).

    Examples:
        >>> clock = StepClock(Run(total="1000 steps"))
        >>> clock.position("500 steps"), clock.position("33.35%"), clock.land(2.5)
        (500, 334, 3)
    """

    unit = "steps"
    ramps = False

    def __init__(self, run: Run | None = None) -> None:
        self.total = None if run is None else run.total

    def samples(self, quantity, field: str = "quantity"):
        written = quantity if isinstance(quantity, str) else str(quantity)
        quantity = Quantity.parse(quantity, field)
        if quantity.unit == "%":
            if self.total is None or self.total.unit == "tokens":
                raise ScheduleError(
                    f"{field}={written!r} is a percentage, on a schedule that counts "
                    "optimizer steps; expected steps, or total='N steps' in its run"
                )
            exact = self.total.amount * quantity.amount / 100
        elif quantity.unit == "steps" or (quantity.unit == "samples" and _AS_WRITTEN.get()):
            exact = quantity.amount
        else:
            raise ScheduleError(
                f"{field}={written!r} is in {quantity.unit}, on a schedule that counts "
                "optimizer steps (it has no run, so its positions are what its scheduler "
                f"counts); expected steps ('{_format_amount(quantity.amount)} steps'), or a "
                "schedule whose run has a global_batch_size"
            )
        if quantity.unit == "steps" and exact.denominator != 1:
            raise ScheduleError(f"{field}={written!r}; expected a whole number of steps")
        exact = _within_runs(exact, quantity, field, "steps")
        return exact.numerator if exact.denominator == 1 else float(exact)

    def land(self, position):
        """The whole step a position lands on: the first at or after it."""
        if _AS_WRITTEN.get() or float(position).is_integer():
            return int(position) if isinstance(position, float) else position
        return math.ceil(position)

    def position(self, quantity, field: str = "quantity"):
        return self.land(self.samples(quantity, field))


def exact_searchsorted(points, values: np.ndarray, side: str = "left") -> np.ndarray:
    """`np.searchsorted` of `values` (an int64 or float64 array) among `points` (Python
    ints or floats, increasing), comparing as Python compares numbers: exactly. NumPy
    compares an int64 with a float64 as two float64s, which blurs numbers above 2**53.

    Examples:
        >>> exact_searchsorted([2**53 + 1], np.array([2**53 + 1, 2**53 + 2]))
        array([0, 1])
    """
    if values.dtype.kind in "iu":
        # A whole v: p >= v when floor(p) >= v (left); p > v when ceil(p) > v (right).
        whole = [math.floor(p) if side == "left" else math.ceil(p) for p in points]
        return np.searchsorted(np.array(whole, dtype=np.int64), values, side=side)
    found = np.searchsorted(np.asarray(points, dtype=np.float64), values, side=side)
    large = values >= 2.0**53  # whole floats, compared with the points as ints
    if large.any():
        found[large] = exact_searchsorted(points, values[large].astype(np.int64), side)
    return found


class Length(NamedTuple):
    """A run's length in optimizer steps, samples and tokens, each None where the run
    cannot say (no batch size, no sequence length, a token clock's steps and samples,
    the samples and tokens of a schedule that counts optimizer steps).

    Examples:
        >>> Length(steps=1000, samples=8000, tokens=None).samples
        8000
    """

    steps: int | None
    samples: int | float | None
    tokens: int | float | None


def length_of(schedule) -> Length:
    """`schedule`'s length (`CurveSchedule.length`): its run's ``total``, landed on a
    whole step as ``"100%"`` is, or else where its learning rate's last change is
    (``horizon``), in steps, samples and tokens, as previews count them.

    Examples:
        >>> from paramsched import Schedule
        >>> run = Run(global_batch_size=8, seq_length=16, total="1000 steps")
        >>> length_of(Schedule(max_lr=1e-3, lr_decay_steps=6400, lr_decay_style="cosine", run=run))
        Length(steps=1000, samples=8000, tokens=128000)
    """
    clock = positions_of(schedule)
    if isinstance(clock, StepClock):  # positions count optimizer steps
        if clock.total is None:
            return Length(clock.land(schedule.horizon), None, None)
        with positions_as_written():  # a branch's total is kept as the positions it meant
            return Length(clock.position(clock.total, "total"), None, None)
    run = clock
    end = schedule.horizon if run.total is None else run.land(run.total_samples)
    if run.counts_tokens:
        return Length(None, None, end)
    steps = None if run.global_batch_size is None else run.step_at_samples(end)
    return Length(steps, end, run.tokens(end))


def positions_of(schedule, run: Run | None = None):
    """What quantities of `schedule` (or of a branch of it whose run is `run`) are
    positions on: its run, or a `StepClock` (with the run's total) when it counts
    optimizer steps: it has no run, or it is a branch of one without a batch size."""
    root = schedule
    while getattr(root, "parent", None) is not None:
        root = root.parent
    run = schedule.run if run is None else run
    if root.run is None and (run is None or run.global_batch_size is None):
        return StepClock(run)
    return run


def branch_point(positions, at, field: str = "branch.at"):
    """Where a branch begins on `positions` (a `Run` or `StepClock`): a quantity, or a
    clock position, landed on a whole step (`Run.land`)."""
    if isinstance(at, (str, Quantity)):
        return positions.position(at, field)
    number = check_number(field, at)
    if number < 0:
        raise ScheduleError(f"{field}={at!r}; expected a point >= 0")
    if isinstance(number, float) and number.is_integer():  # 500.0 samples is 500 samples
        number = int(number)
    return positions.land(number)


@contextlib.contextmanager
def positions_as_written():
    """Within it, `Run.land` keeps positions as they are: for reading back a schedule's
    meaning (its positions were landed when it was built, or were written exactly by a
    version that kept them as given)."""
    token = _AS_WRITTEN.set(True)
    try:
        yield
    finally:
        _AS_WRITTEN.reset(token)


@dataclass(frozen=True)
class Clock:
    """How far each optimizer step advances a schedule: the run's batch size at the
    samples consumed so far (ramp-up included, as Megatron's calculator has it), or
    a fixed amount. A run whose clock counts tokens has no fixed step: each step
    advances by the tokens it consumed, which the training loop says
    (``scheduler.step(tokens=n)``).

    Args:
        run: The run whose batch sizes each step consumes, or None.
        per_step: Without a run, the fixed amount each step advances (1: the schedule
            counts optimizer steps).
    """

    run: Run | None = None
    per_step: int | float = 1

    @property
    def counts_tokens(self) -> bool:
        """Whether each step advances by the tokens it consumed (a live token clock)."""
        return self.run is not None and self.run.counts_tokens

    def increment(self, position):
        """How far the step taken at clock `position` advances it."""
        if self.run is None:
            return self.per_step
        if self.run.counts_tokens:
            raise ScheduleError(TOKEN_CLOCK_STEP)
        return self.run.batch_size_at(position)

    def position(self, steps: int):
        """The clock after `steps` optimizer steps from 0."""
        if self.run is None:
            return steps * self.per_step
        if self.run.counts_tokens:
            raise ScheduleError(
                "the schedule's clock counts tokens, so a number of steps is "
                "no position on it; expected step(tokens=n) at every step, or "
                "the scheduler's own checkpoint to resume"
            )
        return self.run.samples_at_step(steps)

    def describe(self):
        """The clock as data: the fixed amount, or the run as JSON text (what a
        checkpoint stores under ``samples_per_step``)."""
        if self.run is None:
            return self.per_step
        return json.dumps({"run": self.run.to_dict()}, sort_keys=True)


def clock_for(schedule, samples_per_step=None) -> Clock:
    """The clock that drives `schedule`, one optimizer step at a time.

    Without `samples_per_step`: a schedule whose run has a global batch size advances
    by the run's batch size (ramp-up included); a schedule without a run, or a branch
    of one (whose positions are its parent's steps), counts optimizer steps (1 per
    step); a schedule whose run has no batch size is ambiguous and refused. With it: each step advances by that much, which must
    agree with the run's batch size where there is one.

    Raises:
        ScheduleError: the clock is ambiguous or contradicts the run; the message
            says what to pass.
    """
    run = schedule.run
    root = schedule
    while getattr(root, "parent", None) is not None:
        root = root.parent
    if run is not None and run.counts_tokens:
        if samples_per_step is not None:
            raise ScheduleError(
                f"samples_per_step={samples_per_step!r} with a run whose clock "
                "counts tokens; expected samples_per_step=None and "
                "step(tokens=n) at every step"
            )
        return Clock(run)
    if samples_per_step is None:
        # A schedule without a run counts optimizer steps, and so do its branches.
        if run is None or (root.run is None and run.global_batch_size is None):
            return Clock()
        if run.global_batch_size is None:
            raise ScheduleError(
                "the schedule counts samples but its run has no global_batch_size, so how far "
                "one optimizer step goes is ambiguous; expected global_batch_size in the "
                "schedule's run, or samples_per_step=N (samples each step consumes)"
            )
        return Clock(run)
    per_step = check_number("samples_per_step", samples_per_step)
    if per_step <= 0:
        raise ScheduleError(f"samples_per_step={per_step!r}; expected a number > 0")
    if run is not None and run.global_batch_size is not None:
        if run.ramps:
            raise ScheduleError(
                f"samples_per_step={per_step!r} with a run whose batch size changes "
                f"({run.describe_batch_size()}); expected samples_per_step=None, so that "
                "each step advances by the run's batch size of the moment"
            )
        if per_step != run.global_batch_size:
            raise ScheduleError(
                f"samples_per_step={per_step!r} contradicts the schedule's run, whose "
                f"global_batch_size is {run.global_batch_size}; expected samples_per_step=None "
                "(the run's batch size) or a schedule whose run agrees"
            )
    return Clock(per_step=per_step)
