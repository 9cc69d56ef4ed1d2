"""The whole curve as CSV: a row per step (or per grid point), every value a column.

Examples:
    >>> import os, tempfile
    >>> from paramsched import Run, Schedule
    >>> s = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=0, lr_decay_steps=4, lr_decay_style="linear",
    ...              run=Run(global_batch_size=1, total="4 steps"))
    >>> path = os.path.join(tempfile.mkdtemp(), "lr.csv")
    >>> write_csv(s, path)
    5
    >>> open(path).read().splitlines()[:2]
    ['step,samples,tokens,lr,wd', '0,0,,1.0,']
"""

from __future__ import annotations

import csv

import numpy as np

from .counts import _csv_number
from .points import grid, run_of, step_curve, tokens_at, value_columns


def write_csv(schedule, path) -> int:
    """Writes step, samples, tokens, lr, wd for every step; returns the rows. Without a
    batch size, or beyond `LISTED_STEPS` steps, a grid of 100,001 points in samples
    (the step column empty). On a token clock, a grid of up to 100,001 whole token
    counts, without the step and samples columns (unknown there). With a batch-size
    rule, then ``base_lr`` and ``batch_size``; then a column per scheduled value,
    named as `value_columns` names it."""
    run = run_of(schedule)
    curve = step_curve(schedule)
    if curve is not None:
        steps, samples = curve
    else:
        samples = grid(schedule, 100_001)
        steps = None
    columns = {
        "lr": schedule.lr(samples).tolist(),
        "wd": schedule.wd(samples).tolist() if schedule.has_wd else None,
    }
    if schedule.batch_size_rule is not None:
        columns["base_lr"] = schedule.base_lr(samples).tolist()
        columns["batch_size"] = run.batch_sizes_at(samples).astype(np.int64).tolist()
    for column, scheduled in value_columns(schedule):
        columns[column] = schedule.value(scheduled.name, samples).tolist()
    extra = [columns[name] for name in list(columns)[2:]]
    tokens = tokens_at(run, samples)
    lr, wd = columns["lr"], columns["wd"]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        if run.counts_tokens:
            writer.writerow(["tokens", "lr", "wd", *list(columns)[2:]])
            for i in range(len(samples)):
                writer.writerow(
                    [
                        _csv_number(samples[i]),
                        repr(lr[i]),
                        "" if wd is None else repr(wd[i]),
                        *(repr(values[i]) for values in extra),
                    ]
                )
            return len(samples)
        writer.writerow(["step", "samples", "tokens", "lr", "wd", *list(columns)[2:]])
        for i in range(len(samples)):
            writer.writerow(
                [
                    "" if steps is None else int(steps[i]),
                    _csv_number(samples[i]),
                    "" if tokens is None else _csv_number(tokens[i]),
                    repr(lr[i]),
                    "" if wd is None else repr(wd[i]),
                    *(repr(values[i]) for values in extra),
                ]
            )
    return len(samples)
