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
import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Literal

import numpy as np

from .errors import LIMIT, ScheduleError, ScheduleTypeError, check_number

Unit = Literal["steps", "samples", "tokens", "%"]
UNITS: tuple[str, ...] = ("steps", "samples", "tokens", "%")
MAX_AMOUNT = LIMIT  # far beyond any run, and within what the clock's int64 arrays hold
MAX_INCREMENTS = 100_000  # batch-size increments of a ramp-up (real runs have tens)
MAX_STAGES = 10_000  # stages of a step batch-size schedule (real runs have a handful)
SI_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_UNIT_NAMES = {"step": "steps", "steps": "steps", "sample": "samples", "samples": "samples",
               "token": "tokens", "tokens": "tokens", "%": "%"}
_QUANTITY = re.compile(
    r"^\s*(?P<number>(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?P<si>[KkMmBbGgTt]?)"
    r"\s*(?P<unit>%|[A-Za-z]+)\s*$"
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

    @classmethod
    def parse(cls, text: object, field: str = "quantity") -> "Quantity":
        """Reads ``"2000 steps"``, ``"1.5M samples"``, ``"10T tokens"`` or ``"5%"``.

        SI suffixes K, M, B (or G) and T multiply by 10**3, 10**6, 10**9, 10**12.

        Raises:
            ScheduleError: naming `field`, for anything else.

        Example:
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
        match = _QUANTITY.match(text)
        unit = _UNIT_NAMES.get(match["unit"].lower()) if match else None
        if unit is None or (unit == "%" and match["si"]):
            raise ScheduleError(
                f"{field}={text!r} is not a quantity; expected a number, an optional SI suffix "
                "(K, M, B or G, T) and a unit (steps, samples, tokens), or a percentage: "
                "'2000 steps', '1.5M samples', '10T tokens', '5%'"
            )
        amount = Fraction(match["number"].replace("_", "")) * SI_SUFFIXES[match["si"].upper()]
        if amount > MAX_AMOUNT:
            raise ScheduleError(f"{field}={text!r} is beyond any run; expected at most "
                                f"{float(MAX_AMOUNT):g}")
        return cls(amount, unit)

    def __str__(self) -> str:
        number = _format_amount(self.amount)
        return f"{number}%" if self.unit == "%" else f"{number} {self.unit}"


def _format_amount(amount: Fraction) -> str:
    """``1500000`` as ``1.5M``; fractions as a short decimal."""
    if amount.denominator != 1:
        return f"{float(amount):g}"
    value = amount.numerator
    for suffix, scale, step in (("T", 10**12, 10**9), ("B", 10**9, 10**6), ("M", 10**6, 10**3),
                                ("K", 10**3, 10**3)):
        if value >= scale and value % step == 0:
            return f"{value / scale:g}{suffix}"
    return str(value)


def _within_runs(samples: Fraction, quantity: Quantity, field: str) -> Fraction:
    """`samples`, refused beyond any run (steps of large batches, a large percentage)."""
    if samples > MAX_AMOUNT:
        raise ScheduleError(f"{field}={str(quantity)!r} is {float(samples):g} samples, beyond any "
                            f"run; expected at most {float(MAX_AMOUNT):g} samples")
    return samples


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
    """

    global_batch_size: int | None = None
    seq_length: int | None = None
    rampup_batch_size: tuple | None = None
    total: Quantity | str | None = None
    batch_size_schedule: tuple | None = None
    _ramp: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("global_batch_size", "seq_length"):
            value = getattr(self, name)
            if value is not None:
                value = check_number(name, value)
                if not isinstance(value, int) or not 0 < value <= MAX_AMOUNT:
                    raise ScheduleError(f"{name}={value!r}; expected a whole number > 0 "
                                        f"and at most {float(MAX_AMOUNT):g}")
                object.__setattr__(self, name, value)
        if self.total is not None:
            total = Quantity.parse(self.total, "total")
            if total.unit == "%":
                raise ScheduleError(f"total={self.total!r} is a percentage; expected steps, "
                                    "samples or tokens")
            object.__setattr__(self, "total", total)
        if self.rampup_batch_size is not None:
            if self.batch_size_schedule is not None:
                raise ScheduleError(
                    f"rampup_batch_size={self.rampup_batch_size!r} and batch_size_schedule are "
                    "both set; expected one way for the batch size to change")
            object.__setattr__(self, "_ramp", self._check_ramp(self.rampup_batch_size))
            object.__setattr__(self, "rampup_batch_size", tuple(self.rampup_batch_size))
        if self.batch_size_schedule is not None:
            stages = self._check_stages(self.batch_size_schedule)
            final = stages[-1][1]
            if self.global_batch_size is not None and self.global_batch_size != final:
                raise ScheduleError(
                    f"global_batch_size={self.global_batch_size} with a batch_size_schedule "
                    f"whose last stage is {final}; expected no global_batch_size (it is the "
                    "last stage's)")
            object.__setattr__(self, "global_batch_size", final)
            object.__setattr__(self, "batch_size_schedule", stages)
        if self.total is not None and self.total.unit == "steps" \
                and self.global_batch_size is not None:
            self._exact_samples(self.total, "total")  # refused now if beyond any run

    def _check_stages(self, stages) -> tuple[tuple[int, int], ...]:
        """The stages as ``((threshold in samples, batch size), ...)``, checked."""
        label = "batch_size_schedule"
        if isinstance(stages, (str, bytes)) or not isinstance(stages, (list, tuple)) \
                or not stages:
            raise ScheduleTypeError(f"{label}={stages!r}; expected a non-empty list of "
                                    "[threshold, batch size] pairs, e.g. [[0, 256], "
                                    "['100B tokens', 512]]")
        if len(stages) > MAX_STAGES:
            raise ScheduleError(f"{label} has {len(stages):,} stages; expected at most "
                                f"{MAX_STAGES:,}")
        checked: list[tuple[int, int]] = []
        for index, stage in enumerate(stages):
            where = f"{label}[{index}]"
            if isinstance(stage, (str, bytes)) or not isinstance(stage, (list, tuple)) \
                    or len(stage) != 2:
                raise ScheduleTypeError(f"{where}={stage!r}; expected a pair [threshold, "
                                        "batch size]")
            threshold, size = stage
            if isinstance(threshold, str):
                quantity = Quantity.parse(threshold, f"{where}[0]")
                if quantity.unit in ("steps", "%"):
                    raise ScheduleError(
                        f"{where}[0]={threshold!r}; expected a threshold in samples or tokens "
                        "(in steps it would depend on the schedule itself)")
                exact = self._exact_samples(quantity, f"{where}[0]")
            else:
                exact = check_number(f"{where}[0]", threshold)
                if exact < 0 or exact > MAX_AMOUNT:
                    raise ScheduleError(f"{where}[0]={threshold!r}; expected samples >= 0 and "
                                        f"at most {float(MAX_AMOUNT):g}")
            samples = math.ceil(Fraction(exact))  # reached by the first whole count past it
            size = check_number(f"{where}[1]", size)
            if not isinstance(size, int) or not 0 < size <= MAX_AMOUNT:
                raise ScheduleError(f"{where}[1]={stage[1]!r}; expected a whole batch size > 0 "
                                    f"and at most {float(MAX_AMOUNT):g}")
            if index == 0 and samples != 0:
                raise ScheduleError(f"{where}[0]={threshold!r}; expected the first stage at 0")
            if checked and samples <= checked[-1][0]:
                raise ScheduleError(
                    f"{where}[0]={threshold!r} is {samples:,} samples, not after the stage "
                    f"before it ({checked[-1][0]:,} samples); expected strictly increasing "
                    "thresholds")
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
                raise ScheduleError(f"{label}[2]={length!r} is beyond any run; expected at "
                                    f"most {float(MAX_AMOUNT):g} samples")
            if isinstance(length, float) and length.is_integer():
                length = int(length)  # 1000.0 samples mean what 1000 samples mean
        if length == 0:
            raise ScheduleError(f"{label}[2]={ramp[2]!r} is a ramp of no length; expected a "
                                "length > 0 (Megatron divides by it)")
        difference = self.global_batch_size - start
        if difference // increment > MAX_INCREMENTS:
            raise ScheduleError(
                f"{label}={list(ramp)!r} has {difference // increment:,} increments; expected at "
                f"most {MAX_INCREMENTS:,} (start + increment * n = global_batch_size)")
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
                f"{size} from {threshold:,} samples" for threshold, size in
                self.batch_size_schedule)
        if self.rampup_batch_size is not None:
            return f"rampup_batch_size {list(self.rampup_batch_size)!r}"
        return f"global_batch_size {self.global_batch_size}"

    # ------------------------------------------------------------ conversions

    def _exact_samples(self, quantity: Quantity, field: str) -> Fraction:
        if quantity.unit == "samples":
            return quantity.amount
        if quantity.unit == "tokens":
            if self.seq_length is None:
                raise ScheduleError(f"{field}={str(quantity)!r} is in tokens; expected "
                                    "seq_length in the run to convert tokens to samples")
            return quantity.amount / self.seq_length
        if quantity.unit == "steps":
            if quantity.amount.denominator != 1:
                raise ScheduleError(f"{field}={str(quantity)!r}; expected a whole number of steps")
            if self.global_batch_size is None:
                raise ScheduleError(f"{field}={str(quantity)!r} is in steps; expected "
                                    "global_batch_size in the run to convert steps to samples")
            return _within_runs(Fraction(int(self.samples_at_step(int(quantity.amount)))),
                                quantity, field)
        if self.total is None:
            raise ScheduleError(f"{field}={str(quantity)!r} is a percentage; expected total in "
                                "the run, which it is a percentage of")
        return _within_runs(self._exact_samples(self.total, "total") * quantity.amount / 100,
                            quantity, field)

    def samples(self, quantity: Quantity | str, field: str = "quantity") -> int | float:
        """The number of consumed samples `quantity` stands for (an int when whole)."""
        exact = self._exact_samples(Quantity.parse(quantity, field), field)
        return exact.numerator if exact.denominator == 1 else float(exact)

    def batch_size_at(self, consumed_samples) -> int:
        """The global batch size after `consumed_samples`, as Megatron's calculator gives it."""
        if self.global_batch_size is None:
            raise ScheduleError("the run has no global_batch_size; expected one to speak of steps")
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
        return (np.array(steps, dtype=np.int64), np.array(consumed, dtype=np.int64),
                np.array(sizes, dtype=np.int64))

    def stretches(self) -> list[tuple[int, int, int]]:
        """The clock in stretches of one batch size: each one's first step, the samples
        consumed before it, and its batch size; the last never ends.

        Example:
            >>> Run(batch_size_schedule=[[0, 4], [10, 8]]).stretches()
            [(0, 0, 4), (3, 12, 8)]
        """
        return list(zip(*(part.tolist() for part in self._stages)))

    @cached_property
    def _thresholds(self) -> list[int]:
        return [threshold for threshold, _ in self.batch_size_schedule]

    def samples_at_step(self, steps):
        """Consumed samples after `steps` optimizer steps (a number or an array)."""
        if self.global_batch_size is None:
            raise ScheduleError("the run has no global_batch_size; expected one to speak of steps")
        first, consumed, sizes = self._stages
        if np.ndim(steps) == 0:  # Python ints: exact at any size
            steps = int(steps)
            stage = int(np.searchsorted(first, steps, side="right")) - 1
            return int(consumed[stage]) + (steps - int(first[stage])) * int(sizes[stage])
        steps_array = np.asarray(steps, dtype=np.int64)
        stage = np.searchsorted(first, steps_array, side="right") - 1
        return consumed[stage] + (steps_array - first[stage]) * sizes[stage]

    def step_at_samples(self, samples):
        """The first step after which at least `samples` samples are consumed."""
        first, consumed, sizes = self._stages
        if np.ndim(samples) == 0:
            stage = int(np.searchsorted(consumed, samples, side="right")) - 1
            return int(first[stage]) + math.ceil(
                (Fraction(samples) - int(consumed[stage])) / int(sizes[stage]))
        samples_array = np.asarray(samples, dtype=np.float64)
        stage = np.searchsorted(consumed, samples_array, side="right") - 1
        return (first[stage] + np.ceil((samples_array - consumed[stage]) / sizes[stage])
                ).astype(np.int64)

    def tokens(self, samples):
        """Tokens in `samples` samples, or None without a sequence length."""
        return None if self.seq_length is None else samples * self.seq_length

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
            "total": None if self.total is None else f"{self.total_samples!r} samples",
        }
        if self.batch_size_schedule is not None:
            meaning["global_batch_size"] = None  # the last stage's, not a setting
            meaning["batch_size_schedule"] = [list(stage) for stage in self.batch_size_schedule]
        return meaning


@dataclass(frozen=True)
class Clock:
    """How far each optimizer step advances a schedule: the run's batch size at the
    samples consumed so far (ramp-up included, as Megatron's calculator has it), or
    a fixed amount.

    Args:
        run: The run whose batch sizes each step consumes, or None.
        per_step: Without a run, the fixed amount each step advances (1: the schedule
            counts optimizer steps).
    """

    run: Run | None = None
    per_step: int | float = 1

    def increment(self, position):
        """How far the step taken at clock `position` advances it."""
        return self.per_step if self.run is None else self.run.batch_size_at(position)

    def position(self, steps: int):
        """The clock after `steps` optimizer steps from 0."""
        return steps * self.per_step if self.run is None else self.run.samples_at_step(steps)

    def describe(self):
        """The clock as data: the fixed amount, or the run as JSON text (what a
        checkpoint stores under ``samples_per_step``)."""
        if self.run is None:
            return self.per_step
        return json.dumps({"run": self.run.to_dict()}, sort_keys=True)


def clock_for(schedule, samples_per_step=None) -> Clock:
    """The clock that drives `schedule`, one optimizer step at a time.

    Without `samples_per_step`: a schedule whose run has a global batch size advances
    by the run's batch size (ramp-up included); a schedule without a run counts
    optimizer steps (1 per step); a schedule whose run has no batch size is
    ambiguous and refused. With it: each step advances by that much, which must
    agree with the run's batch size where there is one.

    Raises:
        ScheduleError: the clock is ambiguous or contradicts the run; the message
            says what to pass.
    """
    run = schedule.run
    if samples_per_step is None:
        if run is None:
            return Clock()
        if run.global_batch_size is None:
            raise ScheduleError(
                "the schedule counts samples but its run has no global_batch_size, so how far "
                "one optimizer step goes is ambiguous; expected global_batch_size in the "
                "schedule's run, or samples_per_step=N (samples each step consumes)")
        return Clock(run)
    per_step = check_number("samples_per_step", samples_per_step)
    if per_step <= 0:
        raise ScheduleError(f"samples_per_step={per_step!r}; expected a number > 0")
    if run is not None and run.global_batch_size is not None:
        if run.ramps:
            raise ScheduleError(
                f"samples_per_step={per_step!r} with a run whose batch size changes "
                f"({run.describe_batch_size()}); expected samples_per_step=None, so that "
                "each step advances by the run's batch size of the moment")
        if per_step != run.global_batch_size:
            raise ScheduleError(
                f"samples_per_step={per_step!r} contradicts the schedule's run, whose "
                f"global_batch_size is {run.global_batch_size}; expected samples_per_step=None "
                "(the run's batch size) or a schedule whose run agrees")
    return Clock(per_step=per_step)
