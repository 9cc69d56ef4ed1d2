"""A schedule's plot: the learning rate with its phases, the weight decay, every
scheduled value and the batch size, one panel each, against steps, samples or tokens.

Examples:
    >>> VALUE_COLORS[0]
    'tab:purple'
"""

from __future__ import annotations

import itertools
import textwrap

import numpy as np

from ..errors import ScheduleError
from .axes import (
    DPI,
    LABEL_ROWS,
    LABEL_SIZE,
    NO_BREAK,
    X_LABELS,
    _axis_formatter,
    _batch_sizes,
    _count_axis,
    _named_values,
    _phase_labels,
    _plotted_points,
    _written_values,
    _x_of,
    check_plot,
    rate_labels,
)
from .counts import _number
from .points import _factor_text, pieces, run_of, total_samples, value_columns
from .text import panel_label

#: The colours of the scheduled values' curves, in turn.
VALUE_COLORS = ("tab:purple", "tab:red", "tab:brown", "tab:olive", "tab:cyan", "tab:pink")


def plot_figure(schedule, x_unit: str, title: str):
    """The plot `plot` writes, as a laid-out matplotlib Figure on an Agg canvas.

    Panels share the x axis: the learning rate, the weight decay, the global batch size
    when the run's batch size changes (``run.ramps``) or the learning rate follows it
    (a batch-size rule), drawn as the step function it is: at each point, the size of
    the step that starts there; then one panel per scheduled value (`value_columns`),
    labelled ``"betas[1] (group)"`` or ``"grad_clip (loop)"`` and written as the
    learning rate is. With a batch-size rule the learning-rate panel draws the rate the
    rule gives and, dashed, the base rate it scales; the batch-size panel marks the
    rule's reference batch size, dotted. On a token clock the x axis is tokens.

    Phase labels: each phase (`pieces`) is labelled at the top of the learning-rate
    panel, centred over it, as ``"2: cosine"`` when that fits over the phase, else by
    its number alone (the table's numbering); labels are kept inside the panel and
    staggered in up to `LABEL_ROWS` rows so that none overlaps another; a label with no
    room in any row is left out. Every phase is named in the legend, so a shortened or
    left-out label loses nothing. The curve is scaled to stay below the labels.

    Legend: below the panels, outside them, so that it covers no curve. Each drawn
    line has an entry naming the values that shape it (``lr (init_lr=0,
    max_lr=2.2e-4, min_lr=2.2e-5)``, ``betas[1] (start=0.95, end=0.99)``); the dotted
    phase boundaries have one listing the phases.

    Ticks: one rule per axis: `count_labels` for steps, samples, tokens and batch
    sizes (the table's SI suffixes K, M, B, T), `rate_labels` for rates and values.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run = run_of(schedule)
    total = total_samples(schedule)
    samples, steps = _plotted_points(schedule, x_unit)
    x, to_x = _x_of(run, x_unit, samples, steps)
    lr = schedule.lr(samples)
    wd = schedule.wd(samples) if schedule.has_wd else None
    rule = schedule.batch_size_rule
    batch = _batch_sizes(run, samples, steps) if run.ramps or rule is not None else None
    values = value_columns(schedule)
    ratios = [3, 1.3] + ([1.1] if batch is not None else []) + [1.1] * len(values)
    figure = Figure(figsize=(10, 2.4 + 1.2 * sum(ratios)), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios}, squeeze=False
    )[:, 0]
    top, middle = axes[0], axes[1]

    lr_values = _named_values(schedule, schedule.lr_curve.names(), ("init_lr", "max_lr", "min_lr"))
    if rule is None:
        label = f"lr ({lr_values})"
    else:
        label = (
            f"lr, following the batch size ({rule[0]} rule): base lr \u00d7 "
            f"{_factor_text(schedule)}"
        )
    handles = [top.plot(x, lr, color="tab:blue", linewidth=1.6, label=label)[0]]
    highest = float(np.max(lr))
    if rule is not None:  # the base rate the rule scales, dashed under it
        base = schedule.base_lr(samples)
        highest = max(highest, float(np.max(base)))
        handles.append(
            top.plot(
                x,
                base,
                color="tab:blue",
                linestyle="--",
                linewidth=1.2,
                alpha=0.6,
                zorder=1.5,
                label=f"base lr, before the {rule[0]} rule ({lr_values})",
            )[0]
        )
    if schedule.parent is not None:  # a branch: its parent dashed under it
        parent_lr = schedule.parent.lr(samples)
        highest = max(highest, float(np.max(parent_lr)))
        handles.append(
            top.plot(
                x,
                parent_lr,
                color="0.45",
                linestyle="--",
                linewidth=1.2,
                zorder=1,
                label=f"the schedule it branches from, at {_number(to_x(schedule.branch_point))} "
                f"{x_unit}",
            )[0]
        )
    top.set_ylabel("learning rate")
    top.yaxis.set_major_formatter(_axis_formatter(rate_labels))
    if wd is None:
        middle.text(
            0.5,
            0.5,
            "no weight-decay part: the optimizer's own weight_decay",
            transform=middle.transAxes,
            ha="center",
            va="center",
            color="0.35",
        )
        middle.set_yticks([])
    else:
        handles.append(
            middle.plot(
                x,
                wd,
                color="tab:orange",
                linewidth=1.6,
                label="wd ("
                + _named_values(schedule, schedule.wd_curve.names(), ("start_wd", "end_wd"))
                + ")",
            )[0]
        )
        middle.set_ylim(0, (float(np.max(wd)) or 1.0) * 1.25)
        middle.yaxis.set_major_formatter(_axis_formatter(rate_labels))
    middle.set_ylabel("weight decay")
    if batch is not None:
        where, sizes = batch
        panel = axes[2]
        handles.append(
            panel.plot(
                x[where],
                sizes,
                color="tab:green",
                linewidth=1.6,
                drawstyle="steps-post",
                label=f"global batch size ({_number(int(sizes.min()))} to "
                f"{_number(int(sizes.max()))})",
            )[0]
        )
        largest = float(sizes.max())
        if rule is not None:
            largest = max(largest, float(rule[1]))
            handles.append(
                panel.plot(
                    [x[0], x[-1]],
                    [rule[1], rule[1]],
                    color="0.45",
                    linestyle=":",
                    linewidth=1.2,
                    label=f"reference batch size {_number(rule[1])} (the {rule[0]} rule's)",
                )[0]
            )
        panel.set_ylabel("global batch size")
        panel.set_ylim(0, largest * 1.2)
        _count_axis(panel.yaxis)
    for (column, scheduled), panel, color in zip(
        values, axes[len(axes) - len(values) :], itertools.cycle(VALUE_COLORS)
    ):
        handles.append(
            panel.plot(
                x,
                schedule.value(scheduled.name, samples),
                color=color,
                linewidth=1.6,
                label=f"{column} ({_written_values(scheduled.named)})",
            )[0]
        )
        panel.set_ylabel(panel_label(column, scheduled))
        panel.margins(y=0.15)
        panel.yaxis.set_major_formatter(_axis_formatter(rate_labels))

    phases = pieces(schedule, total)
    boundaries = [float(to_x(piece.start)) for piece in phases[1:]]
    marks = [
        axis.vlines(
            boundaries,
            0,
            1,
            transform=axis.get_xaxis_transform(),
            colors="0.55",
            linestyles=":",
            linewidth=1,
        )
        for axis in axes
    ]
    for axis in axes:
        axis.grid(True, alpha=0.3)
    marks[0].set_label(
        textwrap.fill(  # lines broken between phases, not inside a name
            "phase boundaries; phases as numbered in the table: "
            + ", ".join(
                f"{index} {piece.name}".replace(" ", NO_BREAK) for index, piece in enumerate(phases)
            ),
            100,
        )
    )
    handles.append(marks[0])
    top.set_title(textwrap.fill(title, 100))
    axes[-1].set_xlabel(X_LABELS[x_unit])
    _count_axis(axes[-1].xaxis)
    axes[-1].set_xlim(0, float(x[-1]) or 1.0)
    legend = figure.legend(
        handles,
        [h.get_label() for h in handles],
        loc="lower center",
        bbox_to_anchor=(0.5, 0.005),
        fontsize=9,
    )

    # Room above the curve for the rows of phase labels the panel needs as first laid out
    # (narrower than the final panel, so mostly as many rows as that needs, or more), then
    # the layout, with room for the legend below, then the labels in those rows; one that
    # finds no room there is left out (its phase is named in the legend).
    renderer = figure.canvas.get_renderer()
    rows = _phase_labels(top, phases, to_x, renderer, LABEL_ROWS, draw=False)
    band = (3 + 1.6 * LABEL_SIZE * rows) * DPI / 72 / top.bbox.height + 0.04
    top.set_ylim(0, (highest or 1.0) / (1 - min(band, 0.6)))
    below = (legend.get_window_extent(renderer).height + 6) / figure.bbox.height
    figure.tight_layout(rect=(0, below, 1, 1))
    _phase_labels(top, phases, to_x, renderer, rows, draw=True)
    return figure


def plot(schedule, path, x_unit: str, title: str) -> None:
    """Draws lr and wd (and the batch size, when it changes or the lr follows it, and
    each scheduled value) against steps, samples or tokens, with the phases marked (see
    `plot_figure`), and writes the file `path`."""
    check_plot(schedule, path, x_unit)
    _save(plot_figure(schedule, x_unit, title), path)


def _save(figure, path) -> None:
    """Writes `figure` to `path`; a failure of matplotlib's own (not of the system: an
    ``OSError`` names the file elsewhere) is a `ScheduleError` naming ``--out``."""
    try:
        figure.savefig(path)
    except (RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ScheduleError(
            f"--out={str(path)!r}: matplotlib could not write it: {reason[:150]}"
        ) from None
