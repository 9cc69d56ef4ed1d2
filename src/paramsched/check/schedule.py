"""The rules that apply to any schedule, and the summary of a run.

`examine` reads a schedule's pieces (its warmup, its decay, its floor) against its
run (where training ends, in steps when the run has a batch size) and returns the
summary `paramsched check` prints with the findings of the ``S`` rules; `word` is
what the findings call a step (Megatron's: iteration). Where a stack's lengths put
the warmup and the decay elsewhere than they end (``S107``, ``S108``) is its
reader's finding, which knows those lengths.

Examples:
    >>> from paramsched import Schedule, Run
    >>> short = Schedule(max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=100, lr_decay_steps=3000,
    ...                  lr_decay_style="cosine", run=Run(global_batch_size=1, total="10000 steps"))
    >>> summary, findings = examine(short)
    >>> summary["decay_end_step"], summary["share_at_floor"]
    (3000, 0.7)
    >>> [finding.line() for finding in findings]
    ['warning S101: the learning rate reaches its floor (3e-05) at step 3,000 of 10,000: 70% of training at the floor']
"""

from __future__ import annotations

import numpy as np

from .. import preview
from ..core.units import Run
from ..preview.counts import _number
from .rules import JUMP_SHARE, LATE_SHARE, Finding


def _count(value) -> str:
    return _number(value)


class _Where:
    """Positions of one schedule's run in the words of a finding: ``step 3,000`` where
    the run has steps (`word` names them), else samples or tokens."""

    def __init__(self, run: Run, word: str) -> None:
        self.run, self.word = run, word
        self.steps = preview.steps_known(run)

    def step(self, position) -> int | None:
        return self.run.step_at_samples(position) if self.steps else None

    def __call__(self, position) -> str:
        if self.steps:
            return f"{self.word} {self.step(position):,}"  # a step exactly, at any size
        return f"{_count(position)} {self.run.unit}"

    def value(self, position):
        """The position in the run's steps if it has steps, else as it is."""
        return self.step(position) if self.steps else position


def _next_position(run: Run, piece):
    """The first position after `piece`'s start the run steps to (its end, on a clock
    without whole steps), within the piece."""
    if not preview.steps_known(run):
        return piece.end
    return min(run.samples_at_step(run.step_at_samples(piece.start) + 1), piece.end)


def _floor_reached(schedule, run: Run, piece, floor, end):
    """Where the rate last leaves `floor` for good within the run, from `piece` on (the
    last piece not at the floor): a formula may reach it before the piece ends (timm's
    ``step`` decay, at its last milestone), a step down reaches it at the step after;
    checked step by step up to `preview.LISTED_STEPS` steps."""
    first, last = run.step_at_samples(piece.start), run.step_at_samples(piece.end)
    if last - first > preview.LISTED_STEPS:
        return piece.end
    # the piece's steps and the one after it (at the floor), within the run
    steps = np.arange(first, min(last + 1, run.step_at_samples(end)) + 1)
    rates = np.asarray(schedule.base_lr(run.samples_at_step(steps)), dtype=float)
    off = np.flatnonzero(rates != floor)
    if not len(off) or off[-1] + 1 >= len(steps):
        return piece.end
    return run.samples_at_step(int(steps[off[-1] + 1]))


def _shape(schedule, end) -> tuple[list, float, float | None, float]:
    """The schedule's pieces up to beyond `end` and its floor: ``(pieces, warmup end,
    decay end, floor)``; the warmup is the rising pieces from the start (its end 0 for
    none), the decay ends where the rate last changes (None for a rate that never falls
    below its peak), the floor is the rate from there on."""
    limit = max(end, schedule.horizon)
    run = preview.run_of(schedule)
    pieces, held = schedule.pieces(limit), schedule.pieces(limit + 1)
    if len(held) > len(pieces) and held[-1].start >= limit:  # the value held after the last
        pieces = held  # segment (a formula that goes on past it, as some stacks' do, is cut)
    floor = pieces[-1].lr_end
    warmup_end = 0
    for piece in pieces:
        if piece.start == piece.end == warmup_end:  # a stack's first position, alone
            continue
        if piece.start != warmup_end:
            break
        # The rate at the piece's first step: a stack's piece begins at the last step of
        # the piece before it (`lr_start` is that step's rate), and its own first step may
        # still rise to the peak (transformers' warmup ends at its step `num_warmup_steps`).
        first = _next_position(run, piece)
        rate = piece.lr_end if first == piece.end else float(schedule.base_lr(first))
        if rate <= piece.lr_start:
            break
        if piece.lr_end > rate:
            warmup_end = piece.end
        else:
            warmup_end = first
            if first != piece.end:
                break
    tail = len(pieces)
    while tail and pieces[tail - 1].lr_start == pieces[tail - 1].lr_end == floor:
        tail -= 1
    decay_end = pieces[tail - 1].end if tail else 0
    if tail and preview.steps_known(run):  # a formula may reach its floor before its end
        decay_end = _floor_reached(schedule, run, pieces[tail - 1], floor, end)
    peak = max(max(piece.lr_start, piece.lr_end) for piece in pieces)
    return pieces, warmup_end, (decay_end if floor < peak else None), floor


def examine(schedule, *, word: str = "step", moved: bool = False) -> tuple[dict, list]:
    """The run's summary and the findings of the schedule rules on it.

    Args:
        schedule: A paramsched schedule (`Schedule`, `PhaseSchedule`, a branch).
        word: What the findings call a step (``"iteration"`` for Megatron).
        moved: Whether the reader of the configuration already found the decay's end
            moved (``S108``), which then says what ``S101`` would.

    Returns:
        ``(summary, findings)``: the summary as JSON data (steps, samples, tokens, peak
        and final lr, warmup and decay ends, share at the floor, batch-size stages).
    """
    run = preview.run_of(schedule)
    where = _Where(run, word)
    end = preview.total_samples(schedule)
    pieces, warmup_end, decay_end, floor = _shape(schedule, end)
    findings: list[Finding] = []
    end_step = where.step(end)
    curve = preview.step_curve(schedule)
    rates = schedule.lr(curve[1]) if curve is not None else None
    summary = _summary(schedule, run, end, end_step, rates, warmup_end, decay_end, floor, where)
    if run.total is None:
        findings.append(
            Finding(
                "S111",
                f"the run has no total: checked up to the last phase's end, {where(end)}",
            )
        )
    elif getattr(schedule, "kind", None) == "hf" and not schedule.arguments["num_training_steps"]:
        findings.append(  # transformers' schedule without a length: its run is made up
            Finding(
                "S111",
                f"the run has no length (no hf.num_training_steps): checked up to {where(end)}",
            )
        )
    findings += _ends(schedule, where, end, warmup_end, decay_end, floor, moved)
    findings += _past_the_end(schedule, pieces, where, end)
    if rates is not None and len(rates) > 1:
        findings += _jumps(rates, word, where.value(warmup_end) if where.steps else 0)
    elif rates is None and where.steps:  # too long to list: the jumps between its pieces
        findings += _boundary_jumps(schedule, pieces, where, warmup_end, end)
    return summary, findings


def _summary(schedule, run, end, end_step, rates, warmup_end, decay_end, floor, where) -> dict:
    if rates is not None:
        peak = float(rates.max())
    else:  # a grid may step over a short warmup's peak; the pieces hold it (the base rate)
        peak = float(np.max(schedule.lr(preview.grid(schedule, 100_001))))
        if schedule.batch_size_rule is None:
            peak = max(peak, max(max(p.lr_start, p.lr_end) for p in schedule.pieces(end)))
    share = None
    if decay_end is not None and decay_end < end:
        if where.steps:
            share = (end_step - where.step(decay_end)) / end_step
        else:
            share = (end - decay_end) / end
    stages = []
    if run.batch_size_schedule is not None or run.ramps:
        if where.steps:
            stages = [
                {"step": step, "samples": samples, "batch_size": size}
                for step, samples, size in run.stretches()
                if samples <= end
            ]
        else:
            stages = [
                {run.unit: threshold, "batch_size": size}
                for threshold, size in run.batch_size_schedule
            ]
    return {
        "steps": end_step,
        "samples": None if run.counts_tokens else end,
        "tokens": preview.tokens_at(run, end),
        "peak_lr": peak,
        "final_lr": float(schedule.lr(end)),
        "floor_lr": floor,  # the pieces' floor: before any batch-size rule
        "batch_size_rule": None
        if schedule.batch_size_rule is None
        else schedule.batch_size_rule[0],
        "warmup_end_step": where.value(warmup_end) if warmup_end else None,
        "decay_end_step": None if decay_end is None else where.value(decay_end),
        "share_at_floor": share,
        "batch_size_stages": stages,
        "unit": where.word if where.steps else run.unit,
    }


def _ends(schedule, where: _Where, end, warmup_end, decay_end, floor, moved) -> list[Finding]:
    """``S101`` to ``S106``: where the warmup and the decay end against the run's end."""
    found = []
    step_of = where.value
    if warmup_end and warmup_end > end:
        return [
            Finding(
                "S105",
                f"training ends at {where(end)}, within the warmup (to its peak at "
                f"{where(warmup_end)})",
                step_of(end),
            )
        ]
    anneal = _anneal_start(schedule)
    if anneal is not None and warmup_end > max(anneal, 0):
        found.append(
            Finding(
                "S106",
                f"the warmup ends at {where(warmup_end)}, after the WSD anneal begins "
                + (f"at {where(anneal)}" if anneal >= 0 else "(before the run begins)"),
                step_of(warmup_end),
            )
        )
    if decay_end is None:
        return found
    rate = float(schedule.base_lr(end))  # the pieces' rate: before any batch-size rule
    if decay_end > end or (decay_end == end and rate != floor):
        if where.steps and where.step(decay_end) == where.step(end) + 1:
            found.append(
                Finding(
                    "S103",
                    f"training ends at {where(end)}, {_count(decay_end - end)} "
                    f"{where.run.unit} before the decay ends: its last rate is "
                    f"{_apart(rate, floor)}",
                    step_of(end),
                )
            )
        elif rate != floor:
            found.append(
                Finding(
                    "S102",
                    f"training ends at {where(end)}, before the decay reaches its floor "
                    f"({floor:.6g} at {where(decay_end)}{_after(schedule, decay_end)}): its last "
                    f"rate is {rate:.6g}",
                    step_of(end),
                )
            )
        return found
    end_value, at_floor = step_of(end), step_of(decay_end)
    share = (end_value - at_floor) / end_value if end_value else 0
    before = (  # the rate just before: a rise to the final rate (a re-warm) is no decay
        where.run.samples_at_step(at_floor - 1) if where.steps else max(decay_end - 1, 0)
    )
    if share > LATE_SHARE and not moved and float(schedule.base_lr(before)) > floor:
        total = f"{end_value:,}" if where.steps else _count(end_value)
        found.append(
            Finding(
                "S101",
                f"the learning rate reaches its floor ({floor:.6g}) at {where(decay_end)} of "
                f"{total}: {share:.0%} of training at the floor",
                at_floor,
            )
        )
    return found


def _after(schedule, position) -> str:
    """`` and after``, where the rate reaches its floor only once past `position`."""
    before, after = schedule.base_lr(position), schedule.base_lr(position + 1)
    return " and after" if float(before) != float(after) else ""


def _apart(rate: float, floor: float) -> str:
    """``rate, not floor``, each with the digits that tell them apart."""
    for digits in range(6, 18):
        shown, other = f"{rate:.{digits}g}", f"{floor:.{digits}g}"
        if shown != other:
            break
    return f"{shown}, not {other}"


def _anneal_start(schedule):
    """Where Megatron's WSD anneal begins, for a schedule of Megatron's ``WSD`` style."""
    if getattr(schedule, "lr_decay_style", None) != "WSD":
        return None
    return schedule.lr_decay_steps - schedule.wsd_decay_steps


def _past_the_end(schedule, pieces, where: _Where, end) -> list[Finding]:
    """``S109``, ``S110``: phases, a branch point and batch-size stages the run never
    reaches."""
    found = []
    for index, piece in enumerate(pieces[:-1]):
        if piece.start >= end and piece.lr_start != piece.lr_end:
            found.append(
                Finding(
                    "S109",
                    f"the learning rate's phase {index} ({piece.name!r}, from "
                    f"{where(piece.start)}) begins "
                    + ("after" if piece.start > end else "where")
                    + f" training ends at {where(end)}",
                )
            )
    if schedule.branch_point is not None and schedule.branch_point >= end:
        found.append(
            Finding(
                "S109",
                f"the branch point ({where(schedule.branch_point)}) is at or after the end "
                f"of training ({where(end)}): the branch never runs",
            )
        )
    run = where.run
    for index, (threshold, size) in enumerate(run.batch_size_schedule or ()):
        if threshold > end:
            found.append(
                Finding(
                    "S110",
                    f"batch-size stage {index} (batch size {size} from {_count(threshold)} "
                    f"{run.unit}) begins after training ends at {where(end)}",
                )
            )
    return found


def _jumps(rates: np.ndarray, word: str, warmup_end: int) -> list[Finding]:
    """``S112``: steps after the warmup whose rate differs from the step before by more
    than `JUMP_SHARE` of the peak; the first is named, the others counted. (A warmup's
    steps rise by the peak over its length: a short warmup is not a jump.)"""
    peak = float(rates.max())
    if peak <= 0:
        return []
    change = np.diff(rates)
    change[:warmup_end] = 0
    jumps = np.flatnonzero(np.abs(change) > JUMP_SHARE * peak)
    if not len(jumps):
        return []
    first = int(jumps[0])
    more = f" (and {len(jumps) - 1:,} more)" if len(jumps) > 1 else ""
    return [
        Finding(
            "S112",
            f"the learning rate jumps from {rates[first]:.6g} to {rates[first + 1]:.6g} at "
            f"{word} {first + 1:,} ({change[first] / peak:+.0%} of the peak){more}",
            first + 1,
        )
    ]


def _boundary_jumps(schedule, pieces, where: _Where, warmup_end, end) -> list[Finding]:
    """``S112`` on a run too long to list step by step: the jumps where one piece ends
    and the next begins (a step down, a restart), from the last step of one to the first
    step of the next."""
    run, starts = where.run, []
    for piece in pieces[1:]:
        if warmup_end <= piece.start < end and piece.start not in starts:
            starts.append(piece.start)
    if not starts:
        return []
    steps = np.array([run.step_at_samples(start) for start in starts])
    before = np.asarray(schedule.lr(run.samples_at_step(steps)), dtype=float)
    after = np.asarray(schedule.lr(run.samples_at_step(steps + 1)), dtype=float)
    peak = float(np.max(schedule.lr(preview.grid(schedule, 100_001))))
    peak = max(peak, float(before.max()), float(after.max()))
    if peak <= 0:
        return []
    jumps = np.flatnonzero(np.abs(after - before) > JUMP_SHARE * peak)
    if not len(jumps):
        return []
    first = int(jumps[0])
    more = f" (and {len(jumps) - 1:,} more)" if len(jumps) > 1 else ""
    step = int(steps[first]) + 1
    return [
        Finding(
            "S112",
            f"the learning rate jumps from {before[first]:.6g} to {after[first]:.6g} at "
            f"{where.word} {step:,} ({(after[first] - before[first]) / peak:+.0%} of the peak)"
            f"{more}",
            step,
        )
    ]
