"""A schedule's phases, totals and batch-size stages as a table of text.

Examples:
    >>> from paramsched import Run, Schedule
    >>> s = Schedule(max_lr=1.0, min_lr=0.0, lr_warmup_steps=0, lr_decay_steps=100, lr_decay_style="linear",
    ...              run=Run(global_batch_size=10, total="10 steps"))
    >>> print(table(s, "a linear decay").splitlines()[3])
    0      linear  0 .. 10  0 .. 100  - .. -  1            0
"""

from __future__ import annotations

from ..core.units import Run
from .counts import _number
from .points import pieces, rule_text, run_of, total_samples, totals, value_columns


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


def batch_size_stages(run: Run) -> list[str]:
    """The stages of a step batch-size schedule, as Megatron logs them at start-up,
    with the step each begins at (empty without one).

    Examples:
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
