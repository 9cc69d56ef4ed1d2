"""Runs to fit a law on: per-step rates and logged ``(step, loss)`` points.

A run's rates are an array (``lrs[t]`` is the rate of optimizer step ``t``) or a
paramsched schedule (the rate the scheduler holds before each step). A CSV with the
columns ``step``, ``lr`` and ``loss`` (as W&B and TensorBoard exports give) is read
by `read_csv`; its rates between logged steps are interpolated linearly (held
before the first), unless a schedule gives them exactly.

Examples:
    >>> import numpy as np
    >>> run = LossRun.of(np.full(100, 1e-3), [10, 50, 99], [3.0, 2.5, 2.4], name="demo")
    >>> run.name, run.steps.tolist(), run.peak_lr
    ('demo', [10, 50, 99], 0.001)
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from .laws import PredictError, check_rates, check_steps

#: A CSV's size at most (10M rows of about 25 bytes).
MAX_CSV_BYTES = 1 << 28
#: A CSV's columns, as exports name them.
COLUMNS = ("step", "lr", "loss")
#: Steps a run may have at most (its rates are held in memory, 8 bytes each), as many
#: as a preview lists step by step.
MAX_STEPS = 10_000_000


@dataclass(frozen=True, eq=False)
class LossRun:
    """A run's per-step rates, and its logged losses at increasing steps."""

    lrs: np.ndarray
    steps: np.ndarray
    losses: np.ndarray
    name: str = "run"
    rates_from: str = "given"  # "given", "schedule" or "interpolated"

    @classmethod
    def of(cls, rates, steps, losses, name: str = "run", rates_from: str = "given") -> "LossRun":
        """A run from rates (an array or a schedule), steps and losses, all checked."""
        logged = np.asarray(steps)
        if logged.ndim == 1 and logged.size and np.issubdtype(logged.dtype, np.number):
            if np.all(np.isfinite(logged)) and logged.max() >= MAX_STEPS:
                raise PredictError(
                    f"{name}: step {logged.max()}; expected fewer than {MAX_STEPS:,} steps"
                )
        if not isinstance(rates, np.ndarray) and hasattr(rates, "lr"):
            rates, rates_from = rates_of(rates, int(np.max(logged)) + 1, name), "schedule"
        lrs = check_rates(rates, f"{name}: lrs")
        points = check_steps(steps, len(lrs), f"{name}: steps")
        if np.any(np.diff(points) <= 0):
            i = int(np.flatnonzero(np.diff(points) <= 0)[0]) + 1
            raise PredictError(
                f"{name}: steps[{i}]={int(points[i])} after {int(points[i - 1])}; expected increasing steps"
            )
        values = np.asarray(losses, dtype=np.float64)
        if values.shape != points.shape:
            raise PredictError(
                f"{name}: {values.size} losses for {points.size} steps; expected one per step"
            )
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            raise PredictError(
                f"{name}: losses[{bad[0]}]={float(values[bad[0]])!r}; expected a finite loss > 0"
            )
        first = int(np.flatnonzero(lrs)[0])
        if points[0] < first:
            raise PredictError(
                f"{name}: step {int(points[0])} comes before the first positive rate (step {first}); "
                "expected points after some training"
            )
        return cls(lrs, points, values, name, rates_from)

    @property
    def peak_lr(self) -> float:
        return float(self.lrs.max())


def rates_of(schedule, steps: int, name: str = "schedule") -> np.ndarray:
    """The rate each of the first `steps` optimizer steps uses under `schedule` (the
    rate the scheduler holds before the step)."""
    from ..preview import run_of, steps_known

    run = run_of(schedule)
    if not steps_known(run):
        raise PredictError(
            f"{name} has no global_batch_size (or counts tokens); expected a schedule whose "
            "steps are known, to give each step's rate"
        )
    if steps > MAX_STEPS:
        raise PredictError(f"{name}: {steps:,} steps; expected at most {MAX_STEPS:,}")
    return np.asarray(schedule.lr(run.samples_at_step(np.arange(steps))), dtype=np.float64)


def read_text(path, limit: int, expected: str) -> str:
    """The UTF-8 text of the file `path`, refused beyond `limit` bytes (``/dev/zero`` is
    endless); errors name the file."""
    name = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise PredictError(f"{name}: cannot be read ({error.strerror})") from None
    if len(data) > limit:
        raise PredictError(f"{name} is larger than {limit:,} bytes; expected {expected}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PredictError(
            f"{name}: byte {error.start} is not UTF-8; expected {expected}"
        ) from None


def read_csv(path, schedule=None) -> LossRun:
    """A run from a CSV of ``step,lr,loss`` rows; its rates from `schedule` when given,
    else interpolated from the logged rates. Errors name the file, the row (as a text
    editor counts lines) and the column."""
    name = str(path)
    text = read_text(path, MAX_CSV_BYTES, "a CSV text file")
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise PredictError(
            f"{name} is empty; expected a header with the columns {', '.join(COLUMNS)}"
        )
    header = [cell.strip().lstrip("\ufeff") for cell in rows[0]]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise PredictError(
            f"{name}: no column {missing[0]!r} in the header {','.join(header)!r}; "
            f"expected the columns {', '.join(COLUMNS)}"
        )
    where = {column: header.index(column) for column in COLUMNS}
    data = {column: [] for column in COLUMNS}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        for column, index in where.items():
            cell = row[index].strip() if index < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                raise PredictError(
                    f"{name}: row {line}, column {column}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise PredictError(
                    f"{name}: row {line}, column {column}: {cell!r}; expected a finite number"
                )
            if column == "step" and (value < 0 or value != int(value) or value >= MAX_STEPS):
                raise PredictError(
                    f"{name}: row {line}, column step: {cell!r}; expected a whole step 0..{MAX_STEPS - 1:,}"
                )
            if column == "lr" and value < 0:
                raise PredictError(f"{name}: row {line}, column lr: {cell!r}; expected a rate >= 0")
            if column == "loss" and value <= 0:
                raise PredictError(
                    f"{name}: row {line}, column loss: {cell!r}; expected a loss > 0"
                )
            data[column].append(value)
    steps = np.asarray(data["step"], dtype=np.int64)
    if steps.size == 0:
        raise PredictError(
            f"{name} has a header but no rows; expected logged (step, lr, loss) rows"
        )
    order = np.diff(steps) <= 0
    if order.any():
        i = int(np.flatnonzero(order)[0]) + 1
        raise PredictError(
            f"{name}: row {i + 2}, column step: {steps[i]} after {steps[i - 1]}; expected increasing steps"
        )
    if schedule is not None:
        lrs = rates_of(schedule, int(steps[-1]) + 1, name)
        return LossRun.of(lrs, steps, data["loss"], name, "schedule")
    lrs = np.interp(np.arange(steps[-1] + 1), steps, np.asarray(data["lr"]))
    return LossRun.of(lrs, steps, data["loss"], name, "interpolated")
