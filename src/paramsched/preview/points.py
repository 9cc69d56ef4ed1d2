"""Where a schedule is at a point: its run, its total, its values at chosen points,
the phase ends, evenly spaced points and the per-step curve.

Examples:
    >>> from paramsched import Run, Schedule
    >>> s = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=0, lr_decay_steps=100, lr_decay_style="linear",
    ...              run=Run(global_batch_size=10, total="10 steps"))
    >>> at(s, "5 steps")["lr"], totals(s)["steps"]
    (0.5, 10)
"""

from __future__ import annotations

import math

import numpy as np

from ..core._curve import CurveSchedule, Piece
from ..core.units import Quantity, Run
from ..errors import ScheduleError, ScheduleTypeError
from .counts import _csv_number, _number


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

    Examples:
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

    Examples:
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

    Examples:
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


def _rate_cell(key: str):
    return lambda row: f"{row[key]:.6e}"


def _count_cell(key: str):
    return lambda row: "-" if row[key] is None else _csv_number(row[key])


def timeline_columns(schedule) -> list[tuple[str, object]]:
    """The columns of `timeline_table`, each a name and the function that writes a
    `timeline` row's cell: each known position (step, samples, tokens) as a whole
    number (or the float's repr), the lr (with a batch-size rule, the base lr and batch
    size too), the weight decay and each scheduled value as ``.6e``.

    Examples:
        >>> from paramsched import Run, Schedule
        >>> s = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=0, lr_decay_steps=8,
        ...              lr_decay_style="linear", run=Run(global_batch_size=2, total="4 steps"))
        >>> [(name, write(timeline(s, 1)[1])) for name, write in timeline_columns(s)]
        [('step', '4'), ('samples', '8'), ('lr', '0.000000e+00')]
    """
    run = run_of(schedule)
    columns = []
    if steps_known(run):
        columns.append(("step", _count_cell("step")))
    if not run.counts_tokens:
        columns.append(("samples", _count_cell("samples")))
    if run.counts_tokens or run.seq_length is not None:
        columns.append(("tokens", _count_cell("tokens")))
    columns.append(("lr", _rate_cell("lr")))
    if schedule.batch_size_rule is not None:
        columns += [("base lr", _rate_cell("base_lr")), ("batch size", _count_cell("batch_size"))]
    if schedule.has_wd:
        columns.append(("weight_decay", _rate_cell("wd")))
    columns += [(column, _rate_cell(column)) for column, _ in value_columns(schedule)]
    return columns


def timeline_table(schedule, points: int, title: str) -> str:
    """`timeline` as text: a column for each known position (step, samples, tokens),
    the lr (with a batch-size rule, the base lr and batch size too), the weight decay,
    each scheduled value, and the event."""
    run = run_of(schedule)
    rows = timeline(schedule, points)
    columns = timeline_columns(schedule)
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
