"""A schedule before the run: its phases, totals, values at chosen points, and a plot.

"At step N" means what the scheduler holds after N optimizer steps, the value
Megatron logs at iteration N: with a batch-size ramp-up, each step advances the
clock by that step's global batch size. A point given in samples or tokens is
the value when the clock reads that many samples; its step is the first step
after which at least that many samples are consumed.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from ._curve import Piece  # noqa: F401  (what `pieces` returns)
from .errors import ScheduleError
from .units import Quantity, Run


def pieces(schedule, total: float) -> list[Piece]:
    """The learning rate's segments, up to `total` samples (the schedule answers)."""
    return schedule.pieces(total)


def run_of(schedule) -> Run:
    return schedule.run if schedule.run is not None else Run()


def total_samples(schedule) -> float:
    """How far a preview goes: the run's total, or the end of the last phase."""
    run = run_of(schedule)
    if run.total is not None:
        return run.total_samples
    return schedule.horizon


def point(schedule, samples: float, step: int | None) -> dict:
    """The step, samples, tokens, lr and wd at `samples`."""
    run = run_of(schedule)
    return {
        "step": step,
        "samples": samples,
        "tokens": run.tokens(samples),
        "lr": float(schedule.lr(samples)),
        "wd": float(schedule.wd(samples)) if schedule.has_wd else None,
    }


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
        raise ScheduleError(f"--at={quantity!r} is a percentage; expected a schedule whose run "
                            "has a total")
    samples = run.samples(parsed, "--at")
    step = None
    if run.global_batch_size is not None:
        step = int(parsed.amount) if parsed.unit == "steps" else run.step_at_samples(samples)
    return point(schedule, samples, step)


#: Steps a preview evaluates one by one (the area under the curve, a CSV of every step);
#: beyond, the arrays of every step would not fit in memory.
STEP_LIMIT = 20_000_000


def step_count(schedule) -> int | None:
    """The steps of the previewed run, or None without a batch size."""
    run = run_of(schedule)
    if run.global_batch_size is None:
        return None
    return run.step_at_samples(total_samples(schedule))


def step_curve(schedule) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps 0..N and the samples after each, or None without a batch size or with
    more than `STEP_LIMIT` steps."""
    count = step_count(schedule)
    if count is None or count > STEP_LIMIT:
        return None
    steps = np.arange(count + 1)
    return steps, run_of(schedule).samples_at_step(steps)


def totals(schedule) -> dict:
    """Steps, samples, tokens, peak and final lr, and the area under the lr curve (None
    without a batch size, or beyond `STEP_LIMIT` steps)."""
    total = total_samples(schedule)
    run = run_of(schedule)
    curve = step_curve(schedule)
    if curve is not None:
        steps, samples = curve
        lr = schedule.lr(samples)
        # Each optimizer step uses the rate the scheduler held before it.
        area, peak, count = math.fsum(lr[:-1].tolist()), float(lr.max()), int(steps[-1])
    else:
        grid = np.linspace(0, total, 100_001)
        lr = schedule.lr(grid)
        area, peak, count = None, float(lr.max()), step_count(schedule)
    return {"steps": count, "samples": total, "tokens": run.tokens(total), "peak_lr": peak,
            "final_lr": float(schedule.lr(total)), "lr_area": area}


def _number(value) -> str:
    """Counts for people: exact below a million, then 3.4912B, 14.633T."""
    if value is None:
        return "-"
    if abs(value) >= 10**6:
        for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
            if abs(value) >= scale:
                return f"{value / scale:.5g}{suffix}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{int(value):,}"


def _steps_at(run: Run, samples: float) -> str:
    return "-" if run.global_batch_size is None else _number(run.step_at_samples(samples))


def table(schedule, title: str) -> str:
    """The phases and totals as text."""
    run = run_of(schedule)
    total = total_samples(schedule)
    header = ["phase", "shape", "steps", "samples", "tokens", "lr at start", "lr at end"]
    rows = []
    for index, piece in enumerate(pieces(schedule, total)):
        span = lambda f: f"{f(piece.start)} .. {f(piece.end)}"  # noqa: E731
        rows.append([
            str(index), piece.name, span(lambda s: _steps_at(run, s)), span(_number),
            span(lambda s: _number(run.tokens(s))), f"{piece.lr_start:.6g}",
            f"{piece.lr_end:.6g}",
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    sums = totals(schedule)
    area = "-" if sums["lr_area"] is None else f"{sums['lr_area']:.6g}"
    return "\n".join([
        title,
        line(header),
        line(["-" * w for w in widths]),
        *map(line, rows),
        "",
        f"total: {_number(sums['steps'])} steps, {_number(sums['samples'])} samples, "
        f"{_number(sums['tokens'])} tokens",
        f"peak lr {sums['peak_lr']:.6g}, final lr {sums['final_lr']:.6g}, "
        f"area under the lr curve {area} (sum over optimizer steps of the rate each used)",
        *batch_size_stages(run),
    ])


def write_csv(schedule, path) -> int:
    """Writes step, samples, tokens, lr, wd for every step (or a fine grid); returns rows."""
    run = run_of(schedule)
    count = step_count(schedule)
    if count is not None and count > STEP_LIMIT:
        raise ScheduleError(f"--csv: the run has {count:,} steps, more than the {STEP_LIMIT:,} "
                            "a CSV of every step holds; expected --at points or --out")
    curve = step_curve(schedule)
    if curve is not None:
        steps, samples = curve
    else:
        samples = np.linspace(0, total_samples(schedule), 100_001)
        steps = None
    lr = schedule.lr(samples)
    wd = schedule.wd(samples) if schedule.has_wd else None
    tokens = None if run.seq_length is None else samples * run.seq_length
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", "samples", "tokens", "lr", "wd"])
        for i in range(len(samples)):
            writer.writerow([
                "" if steps is None else int(steps[i]), _csv_number(samples[i]),
                "" if tokens is None else _csv_number(tokens[i]), repr(float(lr[i])),
                "" if wd is None else repr(float(wd[i])),
            ])
    return len(samples)


def _csv_number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


PLOT_STEPS = 2_000_000  # a plot against steps draws each step, up to this many


def check_plot(schedule, path, x_unit: str) -> None:
    """Refuses a plot that `plot` could not draw, before anything is written: no
    matplotlib, a file name without a format matplotlib writes, an x axis the run cannot
    give.

    Example:
        >>> from paramsched import PhaseSchedule
        >>> s = PhaseSchedule.from_dict({"lr": {"max_lr": 1.0, "phases": [
        ...     {"shape": "linear", "to": "max_lr", "until": "4 samples"}]}})
        >>> check_plot(s, "plot", "samples")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        paramsched.errors.ScheduleError: --out='plot' has no file extension; expected one of ..., .png, ...
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        raise ScheduleError("--out needs matplotlib; expected it installed "
                            "(pip install matplotlib)") from None
    formats = sorted(FigureCanvasAgg.get_supported_filetypes())
    suffix = os.path.splitext(str(path))[1].lower().lstrip(".")
    if suffix not in formats:
        what = f"has the extension .{suffix}, which matplotlib does not write" if suffix \
            else "has no file extension"
        raise ScheduleError(f"--out={str(path)!r} {what}; expected one of "
                            + ", ".join(f".{f}" for f in formats))
    run = run_of(schedule)
    if x_unit == "steps" and run.global_batch_size is None:
        raise ScheduleError("--x steps needs the run's global_batch_size")
    if x_unit == "steps" and run.step_at_samples(total_samples(schedule)) > PLOT_STEPS:
        raise ScheduleError(f"--x steps: the run has more than {PLOT_STEPS:,} steps to draw one "
                            "by one; expected --x samples or --x tokens")
    if x_unit == "tokens" and run.seq_length is None:
        raise ScheduleError("--x tokens needs the run's seq_length")


def plot(schedule, path, x_unit: str, title: str) -> None:
    """Draws lr and wd against steps, samples or tokens, with the phase boundaries marked."""
    check_plot(schedule, path, x_unit)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter, FuncFormatter

    run = run_of(schedule)
    total = total_samples(schedule)
    count = step_count(schedule)
    curve = step_curve(schedule) if count is not None and count <= PLOT_STEPS else None
    if curve is not None:
        steps, samples = curve
    else:
        samples = np.linspace(0, total, 200_001)
        steps = None
    if x_unit == "steps":
        if steps is None:
            raise ScheduleError("--x steps needs the run's global_batch_size")
        x, convert = steps, (lambda s: run.step_at_samples(s))
    elif x_unit == "tokens":
        if run.seq_length is None:
            raise ScheduleError("--x tokens needs the run's seq_length")
        x, convert = samples * run.seq_length, (lambda s: s * run.seq_length)
    else:
        x, convert = samples, (lambda s: s)
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5),
                                         gridspec_kw={"height_ratios": [3, 1.4]})
    top.plot(x, schedule.lr(samples), color="tab:blue", linewidth=1.6)
    wd = schedule.wd(samples) if schedule.has_wd else None
    if wd is None:
        bottom.text(0.5, 0.5, "no weight-decay part: the optimizer's own weight_decay",
                    transform=bottom.transAxes, ha="center", va="center", color="0.35")
    else:
        bottom.plot(x, wd, color="tab:orange", linewidth=1.6)
    phases = pieces(schedule, total)
    span = float(convert(total)) or 1.0
    for index, piece in enumerate(phases):
        for axis in (top, bottom):
            if index:
                axis.axvline(convert(piece.start), color="0.6", linestyle=":", linewidth=1)
        wide = (convert(piece.end) - convert(piece.start)) / span > 0.12
        top.annotate(f"{index}: {piece.name}" if wide else str(index),
                     (convert((piece.start + piece.end) / 2), 0.98 - 0.06 * (index % 2)),
                     xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=8,
                     color="0.35")
    top.set_title(title)
    top.set_ylabel("learning rate")
    bottom.set_ylabel("weight decay")
    bottom.set_xlabel({"steps": "optimizer steps", "samples": "consumed samples",
                       "tokens": "tokens"}[x_unit] + "   (dotted lines: phase boundaries, "
                      "numbered as in the table)")
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    bottom.xaxis.set_major_formatter(EngFormatter(sep=""))
    bottom.set_xlim(0, float(x[-1]))
    top.set_ylim(0, max(float(np.max(schedule.lr(samples))), 1e-12) * 1.15)
    if wd is not None:
        bottom.set_ylim(0, max(float(np.max(wd)), 1e-12) * 1.25)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    header = ["stage", "from samples", "from tokens", "batch size", "first step"]
    rows = []
    stages = run.batch_size_schedule
    for index, (threshold, size) in enumerate(stages):
        step = run.step_at_samples(threshold)
        reached = index + 1 == len(stages) or run.samples_at_step(step) < stages[index + 1][0]
        rows.append([str(index), _number(threshold), _number(run.tokens(threshold)),
                     str(size), _number(step) if reached else f"none (passed within step "
                     f"{_number(step)})"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    return ["", "batch size by stages (a stage begins at the first step whose samples reach it)",
            line(header), line(["-" * w for w in widths]), *map(line, rows)]
