"""A schedule before the run: its phases, totals, values at chosen points, and a plot.

"At step N" means what the scheduler holds after N optimizer steps, the value
Megatron logs at iteration N: with a batch-size ramp-up, each step advances the
clock by that step's global batch size. A point given in samples or tokens is
the value when the clock reads that many samples; its step is the first step
after which at least that many samples are consumed.

On a run whose clock counts tokens (``clock = "tokens"``), a position is a number
of tokens consumed, and steps and samples are unknown (a step consumes the tokens
it really had): every preview counts in tokens there, and leaves steps and samples
out. Besides the learning rate and weight decay, a preview shows each scheduled
value (``schedule.values``: ``[group.KEY]`` and ``[loop.NAME]`` tables) as it
shows the learning rate, and with a batch-size rule both the rate the rule gives
and the base rate it scales.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import textwrap

import numpy as np

from ._curve import CurveSchedule, Piece  # noqa: F401  (Piece: what `pieces` returns)
from .errors import ScheduleError, ScheduleTypeError
from .units import SI_SUFFIXES, Quantity, Run


def pieces(schedule, total: float) -> list[Piece]:
    """The learning rate's segments, up to `total` samples (the schedule answers)."""
    return schedule.pieces(total)


def run_of(schedule) -> Run:
    """The schedule's run (an empty one if it has none); every preview asks for it first,
    so a preview of something that is not a schedule is refused here, by type."""
    if not isinstance(schedule, CurveSchedule):
        raise ScheduleTypeError(
            f"schedule={schedule!r} is of type {type(schedule).__name__}; "
            "expected a paramsched.Schedule or PhaseSchedule"
        )
    return schedule.run if schedule.run is not None else Run()


def total_samples(schedule) -> float:
    """How far a preview goes: the run's total (landed on a whole step, as `"100%"` is),
    or the end of the last phase."""
    run = run_of(schedule)
    if run.total is not None:
        return run.land(run.total_samples)
    return schedule.horizon


def steps_known(run: Run) -> bool:
    """Whether the run's positions convert to optimizer steps: it has a batch size and
    its clock counts samples (a token clock's steps are not fixed)."""
    return run.global_batch_size is not None and not run.counts_tokens


def step_at(run: Run, position) -> int | None:
    """The first step after which `position` is reached, or None where steps are unknown."""
    return run.step_at_samples(position) if steps_known(run) else None


def tokens_at(run: Run, position):
    """Tokens at a clock position (a number or an array): the position itself on a token
    clock, else through the sequence length (None without one)."""
    return position if run.counts_tokens else run.tokens(position)


#: Columns every point, CSV and timeline has before the scheduled values (a value
#: whose name is one of them is written ``place.name``, as in its table's name).
FIXED_COLUMNS = ("step", "samples", "tokens", "lr", "base_lr", "batch_size", "wd")


def value_columns(schedule) -> list[tuple[str, object]]:
    """Each scheduled value (`schedule.values`) and the column it is written under: its
    name, or ``place.name`` if that is one of `FIXED_COLUMNS`.

    Example:
        >>> from paramsched import PhaseSchedule
        >>> s = PhaseSchedule.from_dict({"lr": {"max_lr": 1.0, "phases": [
        ...     {"shape": "linear", "to": "max_lr", "until": "4 samples"}]},
        ...     "group": {"betas[1]": {"start": 0.9, "phases": [
        ...         {"shape": "linear", "to": 0.99, "until": "4 samples"}]}},
        ...     "loop": {"step": {"start": 1.0, "phases": [
        ...         {"shape": "constant", "until": "4 samples"}]}}})
        >>> [(column, value.place) for column, value in value_columns(s)]
        [('betas[1]', 'group'), ('loop.step', 'loop')]
    """
    return [
        (v.name if v.name not in FIXED_COLUMNS else f"{v.place}.{v.name}", v)
        for v in schedule.values
    ]


def rule_text(schedule) -> str | None:
    """How the learning rate follows the batch size, in words (None without a rule).

    Example:
        >>> from paramsched import PhaseSchedule
        >>> s = PhaseSchedule.from_dict({"run": {"global_batch_size": 512}, "lr": {
        ...     "max_lr": 1.0, "batch_size_rule": "sqrt", "reference_batch_size": 256,
        ...     "phases": [{"shape": "linear", "to": "max_lr", "until": "4 samples"}]}})
        >>> rule_text(s)
        'lr follows the batch size: sqrt rule, reference 256 (lr = base lr * sqrt(batch size / 256))'
    """
    if schedule.batch_size_rule is None:
        return None
    rule, reference = schedule.batch_size_rule
    return (
        f"lr follows the batch size: {rule} rule, reference {reference} "
        f"(lr = base lr * {_factor_text(schedule)})"
    )


def _factor_text(schedule) -> str:
    rule, reference = schedule.batch_size_rule
    return f"sqrt(batch size / {reference})" if rule == "sqrt" else f"batch size / {reference}"


def point(schedule, samples: float, step: int | None) -> dict:
    """The step, samples, tokens, lr and wd at `samples` (a clock position: tokens on a
    token clock, whose samples are None), then, with a batch-size rule, ``base_lr``
    and ``batch_size``, then each scheduled value under its column (`value_columns`)."""
    run = run_of(schedule)
    found = {
        "step": step,
        "samples": None if run.counts_tokens else samples,
        "tokens": tokens_at(run, samples),
        "lr": float(schedule.lr(samples)),
        "wd": float(schedule.wd(samples)) if schedule.has_wd else None,
    }
    if schedule.batch_size_rule is not None:
        found["base_lr"] = float(schedule.base_lr(samples))
        found["batch_size"] = run.batch_size_at(samples)
    for column, scheduled in value_columns(schedule):
        found[column] = float(schedule.value(scheduled.name, samples))
    return found


def at(schedule, quantity: str) -> dict:
    """The point a quantity names (``"2000 steps"``, ``"10T tokens"``, ``"50%"``).

    Example:
        >>> from paramsched.recipe import load_schedule, recipe_path
        >>> at(load_schedule(recipe_path("llama2-7b")), "2000 steps")
        {'step': 2000, 'samples': 2048000, 'tokens': 8388608000, 'lr': 0.0003, 'wd': 0.1}
    """
    run = run_of(schedule)
    parsed = Quantity.parse(quantity, "--at")
    if parsed.unit == "%" and run.total is None:
        raise ScheduleError(
            f"--at={quantity!r} is a percentage; expected a schedule whose run has a total"
        )
    samples = run.position(parsed, "--at")  # landed on a whole step, as phase ends are
    if run.total is not None and samples > run.land(run.total_samples):
        end = run.land(run.total_samples)
        where = [f"step {run.step_at_samples(end):,}"] if steps_known(run) else []
        if not run.counts_tokens:
            where.append(f"{_number(end)} samples")
        if tokens_at(run, end) is not None:
            where.append(f"{_number(tokens_at(run, end))} tokens")
        raise ScheduleError(
            f"--at={quantity!r} is past the end of the run ({', '.join(where)}); "
            "expected a point within it"
        )
    step = None
    if steps_known(run):
        step = int(parsed.amount) if parsed.unit == "steps" else run.step_at_samples(samples)
    return point(schedule, samples, step)


def phase_ends(schedule) -> list[dict]:
    """The `point` at the end of each of the learning rate's phases (`pieces`)."""
    run = run_of(schedule)
    return [
        point(schedule, piece.end, step_at(run, piece.end))
        for piece in pieces(schedule, total_samples(schedule))
    ]


def point_lines(schedule, quantities: list[str]) -> list[str]:
    """The points `quantities` name (`at`), as lines of text: step, samples, tokens, lr
    and wd (tokens alone on a token clock), then, with a batch-size rule, the base lr and
    the batch size, then each scheduled value, written as the lr is."""
    run = run_of(schedule)
    columns = [("step", 12, lambda p: _number(p["step"]))] if not run.counts_tokens else []
    if not run.counts_tokens:
        columns.append(("samples", 16, lambda p: _number(p["samples"])))
    columns += [
        ("tokens", 18, lambda p: _number(p["tokens"])),
        ("lr", 13, lambda p: f"{p['lr']:.6e}"),
        ("wd", 10, lambda p: "-" if p["wd"] is None else format(p["wd"], ".4g")),
    ]
    if schedule.batch_size_rule is not None:
        columns += [
            ("base lr", 13, lambda p: f"{p['base_lr']:.6e}"),
            ("batch size", 10, lambda p: _number(p["batch_size"])),
        ]
    for column, _ in value_columns(schedule):
        columns.append((column, max(13, len(column)), lambda p, column=column: f"{p[column]:.6e}"))
    lines = [" ".join([f"{'at':>16}", *(f"{name:>{width}}" for name, width, _ in columns)])]
    for quantity in quantities:
        found = at(schedule, quantity)
        lines.append(
            " ".join(
                [f"{quantity:>16}", *(f"{write(found):>{width}}" for _, width, write in columns)]
            )
        )
    return lines


def timeline(schedule, points: int) -> list[dict]:
    """The values the scheduler holds at the schedule's boundaries and at `points`
    evenly spaced places, as `point`s with an ``"event"`` (what happens there, or "").

    Boundaries are where a phase of the learning rate, the weight decay or a scheduled
    value ends, where the batch size changes, and the end. With steps (a batch size
    and a clock of samples), rows are steps, each boundary at the first step that
    reaches it, as `paramsched table` lists Megatron's iterations; without a batch
    size they are clock positions in samples, on a token clock in whole tokens.
    """
    run = run_of(schedule)
    total = total_samples(schedule)
    events: dict = {}

    def note(key, text: str) -> None:
        events[key] = f"{events[key]}, {text}" if key in events else text

    def mark(position, text: str) -> None:
        if position <= total:
            note(run.step_at_samples(position) if steps_known(run) else position, text)

    note(0, "start")
    phases = pieces(schedule, total)
    for index, piece in enumerate(phases[:-1]):
        mark(piece.end, f"lr phase {index} ({piece.name}) ends")
    if schedule.has_wd:
        for segment in schedule.wd_curve.segments:
            if segment.end < total:
                mark(segment.end, f"{segment.label or 'wd'} ends")
    for column, scheduled in value_columns(schedule):
        found = schedule.value_pieces(scheduled.name, total)
        for index, piece in enumerate(found[:-1] if found[-1].end >= total else found):
            mark(piece.end, f"{column} phase {index} ({piece.name}) ends")
    if steps_known(run):
        last = run.step_at_samples(total)
        stretches = run.stretches()
        for (step, _, size), (_, _, before) in zip(stretches[1:], stretches):
            if step <= last and size != before:  # a ramp's last stretch may be the full size
                note(step, f"batch size {size}")
        spaced = {round(last * k / points) for k in range(points + 1)} if points else set()
    else:
        if run.counts_tokens and run.batch_size_schedule is not None:
            for threshold, size in run.batch_size_schedule[1:]:
                mark(threshold, f"batch size {size}")
        spaced = {total * k / points for k in range(points + 1)} if points else set()
        spaced = {min(round(p), total) for p in spaced}  # whole samples or tokens
        last = total
    note(last, "end")
    rows = []
    for key in sorted(set(events) | spaced):
        key = int(key) if float(key).is_integer() else key
        if steps_known(run):
            found = point(schedule, run.samples_at_step(key), key)
        else:
            found = point(schedule, key, None)
        rows.append({**found, "event": events.get(key, "")})
    return rows


def timeline_table(schedule, points: int, title: str) -> str:
    """`timeline` as text: a column for each known position (step, samples, tokens),
    the lr (with a batch-size rule, the base lr and batch size too), the weight decay,
    each scheduled value, and the event."""
    run = run_of(schedule)
    rows = timeline(schedule, points)
    rate = lambda key: lambda row: f"{row[key]:.6e}"  # noqa: E731
    count = lambda key: lambda row: "-" if row[key] is None else _csv_number(row[key])  # noqa
    columns = []
    if steps_known(run):
        columns.append(("step", count("step")))
    if not run.counts_tokens:
        columns.append(("samples", count("samples")))
    if run.counts_tokens or run.seq_length is not None:
        columns.append(("tokens", count("tokens")))
    columns.append(("lr", rate("lr")))
    if schedule.batch_size_rule is not None:
        columns += [("base lr", rate("base_lr")), ("batch size", count("batch_size"))]
    if schedule.has_wd:
        columns.append(("weight_decay", rate("wd")))
    columns += [(column, rate(column)) for column, _ in value_columns(schedule)]
    cells = [[write(row) for _, write in columns] for row in rows]
    widths = [max(len(name), *(len(c[i]) for c in cells)) for i, (name, _) in enumerate(columns)]
    line = lambda texts, event: " ".join(  # noqa: E731
        [t.rjust(w) for t, w in zip(texts, widths)] + [f" {event}"]
    ).rstrip()
    where = (
        "after each listed step"
        if steps_known(run)
        else "at each listed token count (the clock counts tokens)"
        if run.counts_tokens
        else "at each listed count of samples"
    )
    rule = rule_text(schedule)
    return "\n".join(
        [
            f"{title}: values the scheduler holds {where}",
            *([] if rule is None else [rule]),
            line([name for name, _ in columns], "event"),
            *(line(texts, row["event"]) for texts, row in zip(cells, rows)),
        ]
    )


LISTED_STEPS = 10_000_000  # a preview goes step by step up to this many steps


def step_curve(schedule) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps 0..N and the samples after each, or None without a batch size, on a token
    clock, or for a run of more than `LISTED_STEPS` steps (previewed on a grid of
    samples or tokens instead)."""
    run = run_of(schedule)
    if not steps_known(run):
        return None
    last = run.step_at_samples(total_samples(schedule))
    if last > LISTED_STEPS:
        return None
    steps = np.arange(last + 1)
    return steps, run.samples_at_step(steps)


def totals(schedule) -> dict:
    """Steps, samples, tokens, peak and final lr, and the area under the lr curve (None
    without a batch size, or beyond `LISTED_STEPS` steps)."""
    total = total_samples(schedule)
    run = run_of(schedule)
    curve = step_curve(schedule)
    if curve is not None:
        steps, samples = curve
        lr = schedule.lr(samples)
        # Each optimizer step uses the rate the scheduler held before it.
        area, peak, count = math.fsum(lr[:-1].tolist()), float(lr.max()), int(steps[-1])
    else:  # no batch size, a token clock, or too many steps to list: no per-step area
        lr = schedule.lr(grid(schedule, 100_001))
        count = step_at(run, total)
        area, peak = None, float(lr.max())
    return {
        "steps": count,
        "samples": None if run.counts_tokens else total,
        "tokens": tokens_at(run, total),
        "peak_lr": peak,
        "final_lr": float(schedule.lr(total)),
        "lr_area": area,
    }


def grid(schedule, count: int) -> np.ndarray:
    """`count` evenly spaced positions from 0 to the end of the preview; on a token
    clock, whole tokens (fewer, if the run has fewer tokens), the end included."""
    total = total_samples(schedule)
    positions = np.linspace(0, total, count)
    if not run_of(schedule).counts_tokens:
        return positions
    return np.unique(np.append(np.minimum(np.round(positions[:-1]), total), total))


# One suffix per scale, largest first: the first `SI_SUFFIXES` lists (B, not its alias G).
_SI_SCALES = sorted(
    {scale: suffix for suffix, scale in reversed(SI_SUFFIXES.items()) if scale > 1}.items(),
    reverse=True,
)


def _si_scale(value) -> tuple[str, int]:
    """The largest SI suffix not above `value`, and its scale; the table and the plot's
    axes both write counts with it.

    Example:
        >>> _si_scale(3.6e9), _si_scale(999)
        (('B', 1000000000), ('', 1))
    """
    for scale, suffix in _SI_SCALES:
        if abs(value) >= scale:
            return suffix, scale
    return "", 1


def _number(value) -> str:
    """Counts for people: exact below a million, then 3.4912B, 14.633T."""
    if value is None:
        return "-"
    if abs(value) >= 10**6:
        suffix, scale = _si_scale(value)
        return f"{value / scale:.5g}{suffix}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{int(value):,}"


def _steps_at(run: Run, samples: float) -> str:
    return "-" if run.global_batch_size is None else _number(run.step_at_samples(samples))


def _span_columns(run: Run) -> list[tuple[str, object]]:
    """The position columns of a table of spans: steps, samples and tokens (each a
    function of the position, written as the table writes counts); tokens alone on a
    token clock, whose steps and samples are unknown."""
    if run.counts_tokens:
        return [("tokens", _number)]
    return [
        ("steps", lambda s: _steps_at(run, s)),
        ("samples", _number),
        ("tokens", lambda s: _number(run.tokens(s))),
    ]


def _lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """`header`, a rule and `rows`, in columns as wide as their widest cell."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def table(schedule, title: str) -> str:
    """The phases and totals as text; with a batch-size rule, the rule (the phases are
    then the base rate's); with scheduled values, the phases of each."""
    run = run_of(schedule)
    total = total_samples(schedule)
    spans = _span_columns(run)
    rate = "lr" if schedule.batch_size_rule is None else "base lr"
    header = ["phase", "shape", *(name for name, _ in spans), f"{rate} at start", f"{rate} at end"]
    rows = []
    for index, piece in enumerate(pieces(schedule, total)):
        rows.append(
            [
                str(index),
                piece.name,
                *(f"{f(piece.start)} .. {f(piece.end)}" for _, f in spans),
                f"{piece.lr_start:.6g}",
                f"{piece.lr_end:.6g}",
            ]
        )
    sums = totals(schedule)
    area = "-" if sums["lr_area"] is None else f"{sums['lr_area']:.6g}"
    length = (
        f"{_number(sums['tokens'])} tokens (the clock counts tokens)"
        if run.counts_tokens
        else f"{_number(sums['steps'])} steps, "
        f"{_number(sums['samples'])} samples, {_number(sums['tokens'])} tokens"
    )
    rule = rule_text(schedule)
    return "\n".join(
        [
            title,
            *_lines(header, rows),
            "",
            f"total: {length}",
            f"peak lr {sums['peak_lr']:.6g}, final lr {sums['final_lr']:.6g}, "
            f"area under the lr curve {area} (sum over optimizer steps of the rate each used)",
            *([] if rule is None else [rule]),
            *value_phases(schedule),
            *batch_size_stages(run),
        ]
    )


def value_phases(schedule) -> list[str]:
    """The phases of each scheduled value, as the table writes the learning rate's
    (empty without values)."""
    if not schedule.values:
        return []
    run = run_of(schedule)
    total = total_samples(schedule)
    spans = _span_columns(run)
    header = ["value", "phase", "shape", *(name for name, _ in spans), "at start", "at end"]
    rows = []
    for column, scheduled in value_columns(schedule):
        for index, piece in enumerate(schedule.value_pieces(scheduled.name, total)):
            rows.append(
                [
                    panel_label(column, scheduled),
                    str(index),
                    piece.name,
                    *(f"{f(piece.start)} .. {f(piece.end)}" for _, f in spans),
                    f"{piece.lr_start:.6g}",
                    f"{piece.lr_end:.6g}",
                ]
            )
    return [
        "",
        "scheduled values (group: written into every parameter group; loop: read "
        "by the training loop)",
        *_lines(header, rows),
    ]


def panel_label(column: str, scheduled) -> str:
    """A scheduled value as previews name it: ``"betas[1] (group)"``, ``"grad_clip (loop)"``."""
    return f"{column} ({scheduled.place})"


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


def _csv_number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


PLOT_STEPS = 2_000_000  # a plot against steps draws each step, up to this many
#: The formats a plot is written in: those matplotlib writes on its own (``.pgf`` needs
#: LaTeX, ``.avif`` and ``.webp`` codecs Pillow may lack).
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps")


def check_plot(schedule, path, x_unit: str) -> None:
    """Refuses a plot that `plot` could not draw, before anything is written: no
    matplotlib, a file name without a format of `PLOT_FORMATS`, an x axis the run cannot
    give.

    Example:
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

    Example:
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

    Example:
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

    Example:
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

    Example:
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

    Example:
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


def batch_size_stages(run: Run) -> list[str]:
    """The stages of a step batch-size schedule, as Megatron logs them at start-up,
    with the step each begins at (empty without one).

    Example:
        >>> run = Run(seq_length=10, batch_size_schedule=[[0, 4], ["100 tokens", 8],
        ...                                                ["130 tokens", 16]])
        >>> print("\\n".join(batch_size_stages(run)))
        <BLANKLINE>
        batch size by stages (a stage begins at the first step whose samples reach it)
        stage  from samples  from tokens  batch size  first step
        -----  ------------  -----------  ----------  ----------
        0      0             0            4           0
        1      10            100          8           3
        2      13            130          16          4
    """
    if run.batch_size_schedule is None:
        return []
    stages = run.batch_size_schedule
    if run.counts_tokens:  # no steps to begin at: a stage begins where the tokens reach it
        rows = [
            [str(index), _number(threshold), str(size)]
            for index, (threshold, size) in enumerate(stages)
        ]
        return [
            "",
            "batch size by stages (a stage begins once the tokens consumed reach it)",
            *_lines(["stage", "from tokens", "batch size"], rows),
        ]
    header = ["stage", "from samples", "from tokens", "batch size", "first step"]
    rows = []
    for index, (threshold, size) in enumerate(stages):
        step = run.step_at_samples(threshold)
        reached = index + 1 == len(stages) or run.samples_at_step(step) < stages[index + 1][0]
        rows.append(
            [
                str(index),
                _number(threshold),
                _number(run.tokens(threshold)),
                str(size),
                _number(step) if reached else f"none (passed within step {_number(step)})",
            ]
        )
    return [
        "",
        "batch size by stages (a stage begins at the first step whose samples reach it)",
        *_lines(header, rows),
    ]


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

    Example:
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
