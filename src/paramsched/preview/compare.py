"""Schedules side by side: where each departs from the first, a table of totals, and
their learning rates overlaid in one plot.

Examples:
    >>> from paramsched import Run, Schedule
    >>> a = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=0, lr_decay_steps=100, lr_decay_style="linear",
    ...              run=Run(global_batch_size=10, total="10 steps"))
    >>> departure(a.replace(min_lr=0.5), a)
    1
"""

from __future__ import annotations

import textwrap

import numpy as np

from ..errors import ScheduleError
from .axes import (
    DPI,
    X_LABELS,
    _axis_formatter,
    _count_axis,
    _plotted_points,
    _x_of,
    check_plot,
    rate_labels,
)
from .counts import _number
from .plot import _save
from .points import LISTED_STEPS, run_of, step_curve, totals, value_columns
from .text import panel_label

# ------------------------------------------------------------ comparisons


def _steps_of(schedule, name: str) -> tuple[np.ndarray, np.ndarray]:
    """`step_curve(schedule)`, or a refusal naming the schedule: a comparison goes step
    by step, so that where two schedules part is exact."""
    curve = step_curve(schedule)
    if curve is not None:
        return curve
    if run_of(schedule).counts_tokens:
        raise ScheduleError(
            f"{name}'s clock counts tokens, which fix no steps; expected a run "
            "that counts optimizer steps (a comparison goes step by step)"
        )
    if run_of(schedule).global_batch_size is None:
        raise ScheduleError(
            f"{name} has no global_batch_size; expected a run that counts "
            "optimizer steps (a comparison goes step by step)"
        )
    raise ScheduleError(
        f"{name} has more than {LISTED_STEPS:,} steps; expected at most that "
        "many (a comparison goes step by step)"
    )


def departure(
    schedule, reference, name: str = "the schedule", reference_name: str = "the reference"
) -> int | None:
    """The first step n (the value after n optimizer steps, each run with its own batch
    sizes) at which `schedule`'s learning rate differs (``!=``) from `reference`'s, over
    the steps both runs have; None if it never does there. Vectorised over the steps.

    Raises:
        ScheduleError: either run has no batch size, or more than `LISTED_STEPS` steps
            (named by `name` or `reference_name`).

    Examples:
        >>> from paramsched import Schedule, Run
        >>> wsd = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=10, lr_decay_steps=1000,
        ...                lr_decay_style="WSD", wsd_decay_steps=100, lr_wsd_decay_style="linear",
        ...                run=Run(global_batch_size=10, total="1000 samples"))
        >>> cooldown = wsd.branch("50 steps", [{"shape": "linear", "to": "min_lr",
        ...                                     "until": "60 steps"}])
        >>> departure(cooldown, wsd), departure(wsd, wsd)
        (51, None)
    """
    reference_samples = _steps_of(reference, reference_name)[1]
    samples = _steps_of(schedule, name)[1]
    shared = min(len(samples), len(reference_samples))
    differs = np.flatnonzero(
        schedule.lr(samples[:shared]) != reference.lr(reference_samples[:shared])
    )
    return int(differs[0]) if len(differs) else None


def comparison(named: list) -> list[dict]:
    """One row per ``(name, schedule)`` of `named`: its name, total steps, samples and
    tokens (None without a sequence length), peak and final lr, the area under the lr
    curve (`totals`), and the step its lr departs from the first schedule's
    (`departure`; None for the first, and for one that never departs)."""
    (reference_name, reference), rows = named[0], []
    for name, schedule in named:
        _steps_of(schedule, name)  # refused before any work, naming the schedule
    for index, (name, schedule) in enumerate(named):
        sums = totals(schedule)
        rows.append(
            {
                "name": name,
                "total_steps": sums["steps"],
                "samples": sums["samples"],
                "tokens": sums["tokens"],
                "peak_lr": sums["peak_lr"],
                "final_lr": sums["final_lr"],
                "area": sums["lr_area"],
                "diverges_at_step": None
                if index == 0
                else departure(schedule, reference, name, reference_name),
            }
        )
    return rows


def comparison_table(rows: list[dict]) -> str:
    """`comparison`'s rows as text: ``-`` for what is unknown and for the first
    schedule's departure, ``never`` for a schedule that does not depart from it."""
    header = [
        "schedule",
        "steps",
        "samples",
        "tokens",
        "peak lr",
        "final lr",
        "lr area",
        "departs at step",
    ]
    cells = [
        [
            row["name"],
            _number(row["total_steps"]),
            _number(row["samples"]),
            _number(row["tokens"]),
            f"{row['peak_lr']:.6g}",
            f"{row['final_lr']:.6g}",
            "-" if row["area"] is None else f"{row['area']:.6g}",
            "-"
            if index == 0
            else "never"
            if row["diverges_at_step"] is None
            else _number(row["diverges_at_step"]),
        ]
        for index, row in enumerate(rows)
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    return "\n".join(
        [
            line(header),
            line(["-" * w for w in widths]),
            *map(line, cells),
            "",
            textwrap.fill(
                "departs at step: the first step n whose lr (after n optimizer steps) "
                f"differs from {rows[0]['name']}'s, over the steps both runs have; lr "
                "area: the sum over optimizer steps of the rate each used",
                100,
                break_on_hyphens=False,
            ),
        ]
    )


def check_compare_plot(named: list, path, x_unit: str) -> None:
    """`check_plot` for each ``(name, schedule)`` of `named`, its refusal naming it."""
    for name, schedule in named:
        try:
            check_plot(schedule, path, x_unit)
        except ScheduleError as error:
            message = str(error)
            raise ScheduleError(
                message if message.startswith("--out") else f"{name}: {message}"
            ) from None


def compare_figure(named: list, x_unit: str, title: str):
    """The learning rates of each ``(name, schedule)`` of `named`, overlaid on one panel
    against steps, samples or tokens, as a laid-out matplotlib Figure on an Agg canvas:
    one line per schedule, labelled with its name, in the order given; ticks by
    `count_labels` and `rate_labels`; the legend below the panel, as `plot_figure`'s.
    Below it, a panel for each scheduled value any of them has (labelled as
    `plot_figure` labels it, in order of first appearance), one line per schedule that
    has it, in that schedule's colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = {}  # each value's panel label, by column, in order of first appearance
    for _, schedule in named:
        run_of(schedule)  # what is not a schedule is refused here, by type
        for column, scheduled in value_columns(schedule):
            panels.setdefault(column, panel_label(column, scheduled))
    ratios = [3] + [1.1] * len(panels)
    figure = Figure(figsize=(10, 5.2 + 1.3 * len(panels)), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios}, squeeze=False
    )[:, 0]
    axis, below_axes = axes[0], dict(zip(panels, axes[1:]))
    handles, highest, right = [], 0.0, 0.0
    for name, schedule in named:
        run = run_of(schedule)
        try:
            samples, steps = _plotted_points(schedule, x_unit)
            x, _ = _x_of(run, x_unit, samples, steps)
        except ScheduleError as error:
            raise ScheduleError(f"{name}: {error}") from None
        lr = schedule.lr(samples)
        handles.append(axis.plot(x, lr, linewidth=1.4, label=name)[0])
        highest, right = max(highest, float(np.max(lr))), max(right, float(x[-1]))
        for column, scheduled in value_columns(schedule):
            below_axes[column].plot(
                x,
                schedule.value(scheduled.name, samples),
                linewidth=1.4,
                color=handles[-1].get_color(),
                label=name,
            )
    axis.set_ylabel("learning rate")
    axis.set_ylim(0, (highest or 1.0) * 1.08)
    axis.yaxis.set_major_formatter(_axis_formatter(rate_labels))
    for column, panel in below_axes.items():
        panel.set_ylabel(panels[column])
        panel.margins(y=0.15)
        panel.yaxis.set_major_formatter(_axis_formatter(rate_labels))
    for each in axes:
        each.grid(True, alpha=0.3)
    axes[-1].set_xlabel(X_LABELS[x_unit])
    _count_axis(axes[-1].xaxis)
    axes[-1].set_xlim(0, right or 1.0)
    axis.set_title(textwrap.fill(title, 100))
    legend = figure.legend(
        handles,
        [h.get_label() for h in handles],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.005),
        fontsize=9,
        ncols=min(len(handles), 3),
    )
    renderer = figure.canvas.get_renderer()
    below = (legend.get_window_extent(renderer).height + 6) / figure.bbox.height
    figure.tight_layout(rect=(0, below, 1, 1))
    return figure


def plot_compare(named: list, path, x_unit: str, title: str) -> None:
    """Draws the learning rates of `named` overlaid (see `compare_figure`) and writes
    the file `path`."""
    check_compare_plot(named, path, x_unit)
    _save(compare_figure(named, x_unit, title), path)
