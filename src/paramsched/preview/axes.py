"""The plots' axes: checks before anything is drawn, the x axis, tick labels, and the
phase labels' places.

Examples:
    >>> count_labels([0, 250_000, 500_000, 1_000_000])
    ['0', '0.25M', '0.50M', '1.00M']
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..core.units import Run
from ..errors import ScheduleError
from .counts import _si_scale
from .points import grid, run_of, step_curve, steps_known, total_samples

PLOT_STEPS = 2_000_000  # a plot against steps draws each step, up to this many
#: The formats a plot is written in: those matplotlib writes on its own (``.pgf`` needs
#: LaTeX, ``.avif`` and ``.webp`` codecs Pillow may lack).
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps")


def check_plot(schedule, path, x_unit: str) -> None:
    """Refuses a plot that `plot` could not draw, before anything is written: no
    matplotlib, a file name without a format of `PLOT_FORMATS`, an x axis the run cannot
    give.

    Examples:
        >>> from paramsched import PhaseSchedule
        >>> s = PhaseSchedule.from_dict({"lr": {"max_lr": 1.0, "phases": [
        ...     {"shape": "linear", "to": "max_lr", "until": "4 samples"}]}})
        >>> check_plot(s, "plot", "samples")
        Traceback (most recent call last):
        ...
        paramsched.errors.ScheduleError: --out='plot' has no file extension; expected one of .png, .pdf, .svg, .svgz, .eps, .ps
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        raise ScheduleError(
            "--out needs matplotlib; expected it installed (pip install matplotlib)"
        ) from None
    formats = [f for f in PLOT_FORMATS if f in FigureCanvasAgg.get_supported_filetypes()]
    suffix = os.path.splitext(str(path))[1].lower().lstrip(".")
    if suffix not in formats:
        what = (
            "has no file extension"
            if not suffix
            else f"has the extension .{suffix}, which matplotlib does not write"
            if suffix not in FigureCanvasAgg.get_supported_filetypes()
            else f"has the extension .{suffix}, which needs more than matplotlib to write "
            f"({'LaTeX' if suffix == 'pgf' else 'an image codec of Pillow'})"
        )
        raise ScheduleError(
            f"--out={str(path)!r} {what}; expected one of " + ", ".join(f".{f}" for f in formats)
        )
    run = run_of(schedule)
    _check_x(run, x_unit)
    if x_unit == "steps" and run.step_at_samples(total_samples(schedule)) > PLOT_STEPS:
        raise ScheduleError(
            f"--x steps: the run has more than {PLOT_STEPS:,} steps to draw one "
            "by one; expected --x samples or --x tokens"
        )


def default_x(schedule) -> str:
    """The x axis a plot has unless told: tokens on a token clock, steps where the run
    has a batch size, else samples."""
    run = run_of(schedule)
    return "tokens" if run.counts_tokens else "steps" if steps_known(run) else "samples"


def _check_x(run: Run, x_unit: str) -> None:
    """Refuses an x axis the run cannot give."""
    if run.counts_tokens and x_unit != "tokens":
        raise ScheduleError(
            f"--x {x_unit}: the run's clock counts tokens, which fix no "
            f"{x_unit}; expected --x tokens"
        )
    if x_unit == "steps" and run.global_batch_size is None:
        raise ScheduleError("--x steps needs the run's global_batch_size")
    if x_unit == "tokens" and run.seq_length is None and not run.counts_tokens:
        raise ScheduleError("--x tokens needs the run's seq_length")


# ------------------------------------------------------------------- the plot

X_LABELS = {"steps": "optimizer steps", "samples": "consumed samples", "tokens": "tokens"}
DPI = 110
LABEL_SIZE = 8  # points, the phase labels'
LABEL_ROWS = 3  # rows of phase labels at most, at the top of the learning-rate panel
NO_BREAK = "\u00a0"  # a space that the legend's line breaks keep


def _decimals(values) -> int:
    """The fewest decimals (up to 6) that write each of `values` to within a billionth
    of the largest."""
    largest = max(map(abs, values), default=0) or 1
    for decimals in range(7):
        if all(abs(v - round(v, decimals)) <= 1e-9 * largest for v in values):
            return decimals
    return 6


def _scaled(values, scale, suffix: str) -> list[str]:
    """`values` divided by `scale`, with one number of decimals and `suffix`; zero is 0."""
    largest = max(map(abs, values), default=0)
    scaled = [v / scale for v in values]
    decimals = _decimals(scaled)
    return [
        "0" if abs(v) <= 1e-9 * largest else f"{s:,.{decimals}f}{suffix}"
        for v, s in zip(values, scaled)
    ]


def count_labels(values) -> list[str]:
    """Counts on one axis (steps, samples, tokens, batch sizes), all by one rule: as the
    table writes them, exact below a million (with commas), else every one in the SI
    suffix of the largest (`_si_scale`, the table's), with one number of decimals.

    Examples:
        >>> count_labels([0, 5e5, 1e6, 1.5e6])
        ['0', '0.5M', '1.0M', '1.5M']
        >>> count_labels([0, 50_000, 100_000, 150_000])
        ['0', '50,000', '100,000', '150,000']
        >>> count_labels([0.0, 2e12, 4e12, 1.4e13])
        ['0', '2T', '4T', '14T']
    """
    largest = max(map(abs, values), default=0)
    suffix, scale = _si_scale(largest) if largest >= 10**6 else ("", 1)
    return _scaled(values, scale, suffix)


def rate_labels(values) -> list[str]:
    """Rates on one axis (learning rate, weight decay), all by one rule: decimals when
    the largest is from 0.001 to 10,000, else every one as a multiple of the largest's
    power of ten; one number of decimals throughout.

    Examples:
        >>> rate_labels([0, 5e-5, 1e-4, 1.5e-4, 2.5e-4])
        ['0', '0.5e-4', '1.0e-4', '1.5e-4', '2.5e-4']
        >>> rate_labels([0, 0.025, 0.05, 0.1])
        ['0', '0.025', '0.050', '0.100']
        >>> rate_labels([2.2e-5]), rate_labels([0.1])
        (['2.2e-5'], ['0.1'])
    """
    largest = max(map(abs, values), default=0)
    exponent = 0 if largest == 0 or 1e-3 <= largest < 1e4 else math.floor(math.log10(largest))
    return _scaled(values, 10.0**exponent, f"e{exponent}" if exponent else "")


def _axis_formatter(rule):
    """A FuncFormatter writing each tick by `rule` applied to all of the axis's ticks at
    once (matplotlib hands them over in `set_locs` before writing any), so that an axis
    never mixes two formats."""
    from matplotlib.ticker import FuncFormatter

    class OneRule(FuncFormatter):
        def __init__(self, func):
            super().__init__(func)
            self.labels = {}

        def set_locs(self, locs):
            super().set_locs(locs)
            self.labels = dict(zip(locs, rule(list(locs))))

    def label(value, position):
        if value in formatter.labels:
            return formatter.labels[value]
        ticks = [*formatter.labels, value]  # a value off the ticks, written as one of them
        return rule(ticks)[-1]

    formatter = OneRule(label)
    return formatter


def _count_axis(axis) -> None:
    """Whole ticks (steps, samples and batch sizes are counts), written by `count_labels`."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    axis.set_major_formatter(_axis_formatter(count_labels))


def _plotted_points(schedule, x_unit: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The samples plotted, and the step after which each is reached (every step, up to
    `PLOT_STEPS`; else a grid of samples, and None)."""
    _check_x(run_of(schedule), x_unit)
    curve = step_curve(schedule)
    if curve is not None and len(curve[0]) <= PLOT_STEPS + 1:
        steps, samples = curve
        return samples, steps
    if x_unit == "steps":
        raise ScheduleError("--x steps needs the run's global_batch_size")
    return grid(schedule, 200_001), None


def _x_of(run: Run, x_unit: str, samples: np.ndarray, steps: np.ndarray | None):
    """The plotted x values of the points at `samples` (and `steps`), and the function
    that takes a clock position to x."""
    _check_x(run, x_unit)
    if x_unit == "steps":
        return steps, run.step_at_samples
    if x_unit == "tokens" and not run.counts_tokens:
        return samples * run.seq_length, (lambda s: s * run.seq_length)
    return samples, (lambda s: s)  # samples, or tokens on a token clock


def _batch_sizes(run: Run, samples: np.ndarray, steps: np.ndarray | None):
    """The global batch size of the step that starts at each plotted point, as a step
    function: the indices of the points where it changes (and the last), and the sizes
    from there. Vectorised over the plotted points, asking only `run.samples_at_step`
    (and `run.step_at_samples` for a grid of samples). On a token clock, whose steps are
    unknown, the size of a step that starts at each point (`run.batch_sizes_at`)."""
    if run.counts_tokens:
        sizes = run.batch_sizes_at(np.asarray(samples, dtype=np.float64)).astype(np.int64)
    else:
        sizes = _step_sizes(run, samples, steps)
    where = np.unique(np.concatenate(([0], np.flatnonzero(np.diff(sizes)) + 1, [len(sizes) - 1])))
    return where, sizes[where]


def _step_sizes(run: Run, samples: np.ndarray, steps: np.ndarray | None) -> np.ndarray:
    """The global batch size of the step under way at each point, on a clock of samples."""
    if steps is None:  # steps done when the clock reads each sample count
        steps = run.step_at_samples(samples)
        steps = steps - (run.samples_at_step(steps) > samples)
    return run.samples_at_step(steps + 1) - run.samples_at_step(steps)


def _named_values(schedule, names, order) -> str:
    """The named values a curve uses, in one notation: decimals when all are from 0.001
    to 10,000 (or zero), else powers of ten.

    Examples:
        >>> from types import SimpleNamespace
        >>> values = SimpleNamespace(init_lr=0.0, max_lr=1e-3, min_lr=1e-4)
        >>> _named_values(values, {"max_lr", "min_lr"}, ("init_lr", "max_lr", "min_lr"))
        'max_lr=1e-3, min_lr=1e-4'
        >>> _named_values(SimpleNamespace(end_wd=0.1), {"end_wd"}, ("start_wd", "end_wd"))
        'end_wd=0.1'
    """
    return _written_values([(name, getattr(schedule, name)) for name in order if name in names])


def _written_values(used) -> str:
    """``name=value`` pairs, in `_named_values`'s notation.

    Examples:
        >>> _written_values([("start", 0.95), ("end", 0.99)])
        'start=0.95, end=0.99'
    """
    decimals = all(1e-3 <= abs(value) < 1e4 for _, value in used if value)

    def write(value):
        if not value or decimals:
            return "0" if not value else f"{value:.6g}"
        mantissa, exponent = f"{value:.5e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"

    return ", ".join(f"{name}={write(value)}" for name, value in used)


def _label_places(spans, full, short, low, high, gap, rows):
    """Where the phase labels go along the x axis (all lengths in one unit).

    Each label is centred over its phase (`spans`, ``(begin, end)`` pairs), written in
    full if its full width (`full`) fits within the phase, else in its short form
    (`short`); it is moved inside ``[low, high]`` and goes to the first of `rows` rows
    where it clears every label already there by `gap`. Returns, for each phase,
    ``(written in full, left edge, row)``, or None when no row has room for it.

    Examples:
        >>> _label_places([(0, 1), (1, 2), (2, 100)], full=[30, 30, 30], short=[5, 5, 5],
        ...               low=0, high=100, gap=2, rows=2)
        [(False, 0, 0), (False, 0, 1), (True, 36.0, 0)]
    """
    row_ends = [-math.inf] * rows
    places = []
    for (begin, end), full_width, short_width in zip(spans, full, short):
        whole = full_width <= end - begin
        width = full_width if whole else short_width
        left = min(max((begin + end - width) / 2, low), high - width)
        row = next((r for r in range(rows) if left >= row_ends[r] + gap), None)
        if row is None or left < low:
            places.append(None)
            continue
        row_ends[row] = left + width
        places.append((whole, left, row))
    return places


def _phase_labels(axis, phases, to_x, renderer, rows: int, draw: bool) -> int:
    """Lays out the phase labels at the top of `axis` (see `plot_figure`), drawing them
    if `draw`; returns the number of rows they use."""
    from matplotlib.font_manager import FontProperties

    font = FontProperties(size=LABEL_SIZE)
    pixels = axis.figure.dpi / 72

    def width(text):
        return renderer.get_text_width_height_descent(text, font, ismath=False)[0]

    texts = [(f"{index}: {piece.name}", str(index)) for index, piece in enumerate(phases)]
    ends = axis.transData.transform(
        [(to_x(end), 0) for piece in phases for end in (piece.start, piece.end)]
    )[:, 0]
    box = axis.bbox
    edge = 3 * pixels
    places = _label_places(
        list(zip(ends[::2], ends[1::2])),
        [width(t[0]) for t in texts],
        [width(t[1]) for t in texts],
        box.x0 + edge,
        box.x1 - edge,
        4 * pixels,
        rows,
    )
    if draw:
        for index, place in enumerate(places):
            if place is None:
                continue
            whole, left, row = place
            axis.annotate(
                texts[index][0 if whole else 1],
                ((left - box.x0) / box.width, 1),
                xycoords="axes fraction",
                xytext=(0, -3 - 1.6 * LABEL_SIZE * row),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=LABEL_SIZE,
                color="0.3",
                gid="phase label",
                annotation_clip=False,
                bbox={
                    "boxstyle": "square,pad=0.15",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.85,
                },
            )
    return 1 + max((place[2] for place in places if place is not None), default=-1)
