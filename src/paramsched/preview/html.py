"""A schedule (or several, side by side) as one self-contained HTML page: every curve on
a shared x axis, a switch between steps, samples and tokens, a readout of the exact
values at the point under the mouse, the phase and batch-size boundaries, and zoom.

The page is offline: its script, style and data are inline, and it makes no request.
Its readout shows the strings `paramsched table` prints (`timeline_columns`),
computed here in Python and embedded as text; the page's script parses them only to
draw.

Design notes: a page embeds exact values at `PAGE_POINTS` + 1 evenly spaced steps (clock
positions, for a run without steps), at every boundary (the start, each phase end of the
learning rate, weight decay and scheduled values, each batch-size change, a branch
point, the end) and at the step on either side of each boundary; nothing else. Its
curves are drawn through those points, so its size and the work to write it are bounded
by that budget and the schedule's boundaries, not by the run's length (a predicted loss
excepted: the law reads every step's rate). The readout snaps to the embedded point
nearest the mouse and names its step, samples and tokens. Zoom magnifies the embedded
points; it adds none. Within 4 pixels of a boundary, the readout snaps to the boundary,
so that each can be read at any zoom.

Examples:
    >>> import os, tempfile
    >>> from paramsched.recipe import load_schedule, recipe_path
    >>> path = os.path.join(tempfile.mkdtemp(), "llama2-7b.html")
    >>> write_html(load_schedule(recipe_path("llama2-7b")), path, "recipe llama2-7b")
    2006
    >>> text = open(path, encoding="utf-8").read()
    >>> text.startswith("<!DOCTYPE html>"), "Design notes" in text, "http" in text
    (True, True, False)
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources

import numpy as np

from ..errors import ScheduleError, ScheduleTypeError
from .axes import X_LABELS, _check_x
from .counts import _csv_number
from .points import point, run_of, steps_known, timeline, timeline_columns, value_columns
from .text import panel_label

PAGE_POINTS = 2000  # evenly spaced points a page embeds, besides the boundaries
HTML_SUFFIXES = (".html", ".htm")
#: Where each x unit is read from: the readout's column.
UNIT_COLUMNS = {"steps": "step", "samples": "samples", "tokens": "tokens"}
#: Curves' colours in a preview of one schedule (matplotlib's, as the PNG plot's).
CURVE_COLORS = {"lr": "#1f77b4", "wd": "#ff7f0e", "batch": "#2ca02c", "loss": "#000000"}
VALUE_COLORS = ("#9467bd", "#d62728", "#8c564b", "#bcbd22", "#17becf", "#e377c2")
#: Each schedule's colour in a comparison, in turn.
SCHEDULE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

DESIGN_NOTES = (
    f"This page embeds exact values at {PAGE_POINTS + 1:,} evenly spaced steps (clock "
    "positions, for a run without steps), at every boundary (the start, each phase end, each "
    "batch-size change, a branch point, the end) and at the step on either side of each "
    "boundary. The curves are drawn through those points. The readout snaps to the embedded "
    "point nearest the mouse (to a boundary within 4 pixels of it, so that each boundary can be "
    "read at any zoom) and names its step, samples and tokens; its values are the "
    "strings paramsched table prints there, computed in Python. A predicted loss is the law's "
    "over the embedded steps from the peak rate on, in one evaluation, as the PNG plot "
    "evaluates its points, written as paramsched preview --law writes it (5 decimals). Zoom "
    "magnifies the embedded points; it adds none."
)


def check_html(named: list, path, x_unit: str | None, flag: str = "--html") -> None:
    """Refuses a page that `write_html` could not write, before anything is written: a
    file name that does not end in ``.html`` or ``.htm`` (a device or a pipe excepted),
    or an initial x axis (`x_unit`, ``--x``) that not every schedule of `named` has."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in HTML_SUFFIXES and not (os.path.exists(path) and not os.path.isfile(path)):
        raise ScheduleError(
            f"{flag}={str(path)!r} "
            + (f"has the extension {suffix}" if suffix else "has no file extension")
            + "; expected a name ending in .html or .htm"
        )
    if x_unit is not None:
        for name, schedule in named:
            try:
                _check_x(run_of(schedule), x_unit)
            except ScheduleError as error:
                message = str(error)
                raise ScheduleError(message if len(named) == 1 else f"{name}: {message}") from None


def _key_row(schedule, key) -> dict:
    """`point` at a timeline key: a step where the run has steps, else a clock position."""
    run = run_of(schedule)
    if steps_known(run):
        return point(schedule, run.samples_at_step(key), key)
    return point(schedule, key, None)


def page_rows(schedule, points: int = PAGE_POINTS) -> list[dict]:
    """The `timeline` rows a page embeds: its boundaries and `points` + 1 evenly spaced
    rows, the step (or whole clock position) on either side of each boundary, and, for a
    branch, its branch point; sorted, each with its ``"event"`` ("" where none).

    Examples:
        >>> from paramsched import Run, Schedule
        >>> s = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=3, lr_decay_steps=10,
        ...              lr_decay_style="linear", run=Run(global_batch_size=1, total="10 steps"))
        >>> [(row["step"], row["event"]) for row in page_rows(s, 2)]
        [(0, 'start'), (1, ''), (2, ''), (3, 'lr phase 0 (warmup) ends'), (4, ''), (5, ''), (9, ''), (10, 'end')]
    """
    run = run_of(schedule)
    keyed = steps_known(run)

    def key(row):  # as `timeline` keys its rows: steps, else clock positions
        return row["step"] if keyed else row["tokens"] if run.counts_tokens else row["samples"]

    found = {key(row): row for row in timeline(schedule, points)}
    last = max(found)
    if schedule.parent is not None and schedule.branch_point is not None:
        at = run.step_at_samples(schedule.branch_point) if keyed else schedule.branch_point
        if at <= last:
            row = found.get(at) or _key_row(schedule, at)
            row["event"] = ", ".join(e for e in (row.get("event"), "branch point") if e)
            found[at] = row
    for where in [k for k, row in found.items() if row["event"]]:
        for near in (where - 1, where + 1):
            near = int(near) if float(near).is_integer() else near
            if 0 <= near <= last and near not in found:
                found[near] = {**_key_row(schedule, near), "event": ""}
    return [found[k] for k in sorted(found)]


def _columns(schedule, rows: list[dict], law) -> tuple[dict, list[dict]]:
    """Each readout column's cells (strings, as `paramsched table` writes them) and the
    curves drawn from them: ``{column: [cell, ...]}``, ``[{column, panel, dash, color}]``."""
    run = run_of(schedule)
    cells = {name: [write(row) for row in rows] for name, write in timeline_columns(schedule)}
    positions = [row["tokens"] if run.counts_tokens else row["samples"] for row in rows]
    has_batch = run.global_batch_size is not None or (
        run.counts_tokens and run.batch_size_schedule is not None
    )
    if "batch size" not in cells and has_batch:
        cells["batch size"] = [_csv_number(run.batch_size_at(p)) for p in positions]
    if schedule.parent is not None:
        cells["lr (parent)"] = [f"{float(schedule.parent.lr(p)):.6e}" for p in positions]
    if law is not None:
        cells["predicted loss"] = _losses(schedule, law, [row["step"] for row in rows])
    cells["event"] = [row["event"] for row in rows]
    curves = [{"column": "lr", "panel": "lr", "color": CURVE_COLORS["lr"]}]
    if "base lr" in cells:
        curves.append({"column": "base lr", "panel": "lr", "color": "#1f77b4", "dash": "6 4"})
    if "lr (parent)" in cells:
        curves.append({"column": "lr (parent)", "panel": "lr", "color": "#737373", "dash": "6 4"})
    if "weight_decay" in cells:
        curves.append({"column": "weight_decay", "panel": "wd", "color": CURVE_COLORS["wd"]})
    if "batch size" in cells:
        curves.append(
            {"column": "batch size", "panel": "batch", "color": CURVE_COLORS["batch"], "steps": 1}
        )
    for index, (column, _) in enumerate(value_columns(schedule)):
        color = VALUE_COLORS[index % len(VALUE_COLORS)]
        curves.append({"column": column, "panel": "value " + column, "color": color})
    if law is not None:
        curves.append({"column": "predicted loss", "panel": "loss", "color": CURVE_COLORS["loss"]})
    return cells, curves


def _losses(schedule, law, steps: list) -> list[str]:
    """The loss `law` predicts after each of `steps`, as ``paramsched preview --law``
    writes it (``.5f``), from the peak rate on (before it, ``-``), all in one evaluation
    of the law, as the PNG plot evaluates its points."""
    from ..predict import laws
    from ..predict.cli import schedule_rates

    lrs = schedule_rates(schedule, "the schedule")
    first = max(1, int(np.argmax(lrs)))  # the loss is drawn from the peak on
    shown = sorted({s - 1 for s in steps if s is not None and first <= s - 1 < len(lrs)})
    quiet, laws.logger.disabled = laws.logger.disabled, True  # the command has warned
    try:
        losses = dict(zip(shown, law.loss(lrs, shown).tolist())) if shown else {}
    finally:
        laws.logger.disabled = quiet
    return ["-" if s is None or s - 1 not in losses else f"{losses[s - 1]:.5f}" for s in steps]


def page_data(named: list, x_unit: str | None = None, law=None, points: int = PAGE_POINTS):
    """What a page shows of each ``(name, schedule)`` of `named`, as builtins (the JSON
    the page embeds): its units, panels and, per schedule, its cells and curves."""
    schedules, panels = [], {"lr": "learning rate"}
    for index, (name, schedule) in enumerate(named):
        rows = page_rows(schedule, points)
        cells, curves = _columns(schedule, rows, law)
        if len(named) > 1:  # a comparison: each schedule in its own colour
            for curve in curves:
                curve["color"] = SCHEDULE_COLORS[index % len(SCHEDULE_COLORS)]
        for column, scheduled in value_columns(schedule):
            panels.setdefault("value " + column, panel_label(column, scheduled))
        if "weight_decay" in cells:
            panels.setdefault("wd", "weight decay")
        if "batch size" in cells:
            panels.setdefault("batch", "global batch size")
        schedules.append(
            {
                "name": name,
                "color": SCHEDULE_COLORS[index % len(SCHEDULE_COLORS)],
                "cells": cells,
                "curves": curves,
            }
        )
    if law is not None:
        panels["loss"] = f"predicted loss ({law.name} law)"
    order = ["lr", "wd", "batch"] + [k for k in panels if k.startswith("value ")] + ["loss"]
    units = [u for u in UNIT_COLUMNS if all(UNIT_COLUMNS[u] in s["cells"] for s in schedules)]
    if not units:
        raise ScheduleError(
            "the schedules share no x axis (steps, samples or tokens); expected runs "
            "that all count one of them"
        )
    return {
        "units": units,
        "unit": x_unit if x_unit in units else units[0],
        "unitLabels": {u: X_LABELS[u] for u in units},
        "unitColumns": UNIT_COLUMNS,
        "panels": [{"key": k, "label": panels[k]} for k in order if k in panels],
        "schedules": schedules,
    }


def _part(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def page(named: list, title: str, x_unit: str | None = None, law=None) -> str:
    """The page of `named` (``(name, schedule)`` pairs, one to preview, several to
    compare) as HTML text: `page_data` embedded as JSON, with the inline script and style."""
    return _render(page_data(named, x_unit, law), title)


def _render(data: dict, title: str) -> str:
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_part('html_page.css')}</style>",
            "</head><body>",
            f"<h1>{html.escape(title)}</h1>",
            '<div id="controls"><fieldset id="units"><legend>x axis</legend></fieldset>'
            '<button id="reset" type="button">reset zoom</button>'
            '<span class="hint">drag across the plot to zoom, or use the wheel; '
            "double-click or reset to see it all</span></div>",
            '<div id="legend"></div>',
            '<div id="main"><div id="plot"></div><table id="readout"></table></div>',
            '<svg id="svg-namespace" width="0" height="0" aria-hidden="true"></svg>',
            '<section id="design-notes"><h2>Design notes</h2>'
            f"<p>{html.escape(DESIGN_NOTES)}</p></section>",
            f'<script type="application/json" id="paramsched-data">{text}</script>',
            f"<script>{_part('html_page.js')}</script>",
            "</body></html>",
            "",
        ]
    )


def write_html(schedule, path, title: str | None = None, x_unit: str | None = None, law=None):
    """Writes the page of `schedule` (a schedule, or a list of ``(name, schedule)`` pairs
    to compare) to `path`; returns the number of points embedded (over all schedules).

    Args:
        schedule: A `paramsched.Schedule` or `PhaseSchedule`, or ``(name, schedule)``
            pairs, drawn on one x axis, each in its own colour.
        path: The file to write (``.html`` or ``.htm``).
        title: The page's title (default: the schedules' names).
        x_unit: The x axis the page opens on: ``"steps"``, ``"samples"`` or ``"tokens"``
            (default: the first of them every schedule has).
        law: A fitted law (`paramsched.predict`): adds the predicted loss.

    Raises:
        ScheduleTypeError: `schedule` is not a schedule, nor a non-empty list of
            ``(name, schedule)`` pairs.
        ScheduleError: `path` does not end in ``.html`` or ``.htm``, or a schedule's run
            lacks `x_unit`.

    Examples:
        >>> import os, tempfile
        >>> from paramsched.recipe import load_schedule, recipe_path
        >>> wsd = load_schedule(recipe_path("minicpm-wsd"))
        >>> cooldown = wsd.branch("50%", [{"shape": "minus_sqrt", "to": "min_lr", "until": "60%"}])
        >>> path = os.path.join(tempfile.mkdtemp(), "compare.html")
        >>> write_html([("wsd", wsd), ("cooldown", cooldown)], path, x_unit="tokens")
        4016
        >>> write_html(wsd, "wsd.png")
        Traceback (most recent call last):
        ...
        paramsched.errors.ScheduleError: path='wsd.png' has the extension .png; expected a name ending in .html or .htm
    """
    if isinstance(schedule, (list, tuple)):
        named = list(schedule)
        if not named:
            raise ScheduleTypeError("schedule=[]; expected a schedule or (name, schedule) pairs")
        for index, pair in enumerate(named):
            if not (
                isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
            ):
                raise ScheduleTypeError(
                    f"schedule[{index}]={pair!r}; expected a (name, schedule) pair"
                )
    else:
        named = [("schedule" if title is None else title, schedule)]
    for _, each in named:
        run_of(each)  # what is not a schedule is refused here, by type
    check_html(named, path, x_unit, "path")
    if title is None:
        title = ", ".join(name for name, _ in named)
    data = page_data(named, x_unit, law)
    text = _render(data, title)  # whole before the file is opened
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return sum(len(s["cells"]["event"]) for s in data["schedules"])
