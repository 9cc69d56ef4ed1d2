"""``paramsched check``: the command, its report and its exit status.

A schedule comes from a FILE (TOML, a branch file), a built-in ``--recipe``, or a
whole Megatron argument list after ``--megatron``, exactly as ``pretrain_gpt.py``
receives it. The report is a summary of the run and the findings, one line each;
``--json`` gives them as one JSON object. Exit status: 0 without errors, 1 with
errors (or warnings, under ``--strict``), 2 for a usage error.

Examples:
    >>> report = Report("example", {"steps": 10, "unit": "step"}, [Finding("S111", "no total")])
    >>> report.status(strict=False), report.counts()
    (0, {'error': 0, 'warning': 0, 'note': 1})
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
from dataclasses import dataclass

from ..errors import ScheduleError
from ..preview.counts import _number
from .rules import RULES, SEVERITIES, Finding
from .schedule import examine


def add_check(commands) -> None:
    """Adds ``check`` to the subcommands `commands` of the ``paramsched`` parser."""
    check = commands.add_parser(
        "check",
        help="find what is wrong with a run before it starts (a linter for schedules)",
        description="Checks a run before it starts: a summary (steps, samples, tokens, peak "
        "and final lr, where the warmup and the decay end, the share of training at the "
        "floor, the batch-size stages) and findings, each with a code, a severity and the "
        "flag or key as written: errors (Megatron or the scheduler would refuse or stop), "
        "warnings (it runs, almost surely not as meant) and notes. The schedule is a FILE "
        "(TOML), a --recipe, or a whole Megatron argument list after --megatron (replace "
        "'torchrun ... pretrain_gpt.py' in a launch script by 'paramsched check --megatron'). "
        "Exit status 0 without errors, 1 with errors (or warnings under --strict), 2 for a "
        "usage error.",
        epilog="examples: paramsched check schedule.toml;  paramsched check --megatron-version "
        "main --data-parallel-size 16 --megatron --lr 6e-5 --train-iters 500000 ...;  "
        "paramsched check --json --ignore S112 --recipe llama2-7b",
    )
    check.add_argument("file", nargs="?", help="a schedule file (TOML)")
    check.add_argument("--recipe", help="a built-in recipe (see: paramsched recipes)")
    check.add_argument(
        "--megatron-version",
        choices=("0.16", "main"),
        help="the Megatron whose behaviour to check (default: the one the flags imply)",
    )
    check.add_argument(
        "--data-parallel-size",
        type=int,
        help="data-parallel ranks, which Megatron derives from the world size",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        help="silence a rule (repeatable; CODE,CODE also works)",
    )
    check.add_argument("--strict", action="store_true", help="exit with status 1 on warnings too")


@dataclass
class Report:
    """What ``check`` found on one schedule: its `source`, the `summary` and the
    `findings`, most severe first."""

    source: str
    summary: dict | None
    findings: list

    def counts(self) -> dict:
        return {
            severity: sum(finding.severity == severity for finding in self.findings)
            for severity in SEVERITIES
        }

    def status(self, strict: bool) -> int:
        """1 with errors (or warnings, if `strict`), or for a run that would not start
        (no summary), whose refusal ``--ignore`` may have silenced; else 0."""
        counts = self.counts()
        failed = self.summary is None or counts["error"] or (strict and counts["warning"])
        return 1 if failed else 0

    def as_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "summary": self.summary,
                "findings": [finding.as_dict() for finding in self.findings],
                "counts": self.counts(),
            },
            indent=2,
            allow_nan=False,
        )

    def text(self) -> str:
        lines = [f"check: {self.source}"]
        if self.summary is not None:
            lines += summary_lines(self.summary)
        else:
            lines.append("no run to summarize: it would not start")
        lines.append("")
        lines += [finding.line() for finding in self.findings] or ["no findings"]
        counts = self.counts()
        lines.append(
            ", ".join(
                f"{counts[severity]} {severity}{'s' if counts[severity] != 1 else ''}"
                for severity in SEVERITIES
            )
        )
        return "\n".join(lines)


def summary_lines(summary: dict) -> list[str]:
    """The summary for people, a few lines."""
    unit = summary["unit"]
    units = unit if unit in ("samples", "tokens") else f"{unit}s"

    def at(value) -> str:
        if unit in ("samples", "tokens"):  # a run without steps
            return f"{_number(value)} {unit}"
        return f"{unit} {value:,}"  # a step exactly, at any size

    length = ", ".join(
        (f"{summary[key]:,}" if key == "steps" else _number(summary[key]))
        + f" {name if summary[key] != 1 else name.removesuffix('s')}"
        for key, name in (("steps", units), ("samples", "samples"), ("tokens", "tokens"))
        if summary.get(key) is not None
    )
    lines = [f"run: {length}"]
    lines.append(
        f"lr: peak {summary['peak_lr']:.6g}, final {summary['final_lr']:.6g}, "
        + ("floor" if summary.get("batch_size_rule") is None else "base floor")
        + f" {summary['floor_lr']:.6g}; "
        + (
            "no warmup"
            if summary["warmup_end_step"] is None
            else f"warmup ends at {at(summary['warmup_end_step'])}"
        )
        + (
            ", no decay"
            if summary["decay_end_step"] is None
            else f", decay ends at {at(summary['decay_end_step'])}"
        )
        + (
            f" ({summary['share_at_floor']:.1%} of training at the floor)"
            if summary["share_at_floor"]
            else ""
        )
    )
    stages = summary["batch_size_stages"]
    if stages:
        key = next(iter(stages[0]))  # "step", else the clock's unit (samples, tokens)
        shown = [
            f"{stage['batch_size']} from "
            + (at(stage["step"]) if key == "step" else f"{_number(stage[key])} {key}")
            for stage in stages[:8]
        ]
        more = f" and {len(stages) - 8:,} more" if len(stages) > 8 else ""
        lines.append(f"batch size: {', '.join(shown)}{more}")
    return lines


def ignored_codes(words: list[str]) -> set[str]:
    """The codes of ``--ignore``, each checked against the rule table."""
    from ..cli import UsageError

    codes = set()
    for word in words:
        for code in filter(None, (part.strip().upper() for part in word.split(","))):
            if code not in RULES:
                close = difflib.get_close_matches(code, RULES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(
                    f"paramsched check: error: --ignore {word!r}: no rule {code}{hint}; "
                    "expected codes from the rule table, such as S101"
                )
            codes.add(code)
    return codes


def check_schedule_file(load, source: str) -> Report:
    """Checks the schedule `load()` returns (a file or a recipe): a refusal is ``S100``
    (or the rule it is marked with); what the reader notes on the way (a ``[megatron]``
    table's notes) becomes findings."""
    with kept_notes() as notes:
        try:
            schedule = load()
        except ScheduleError as error:
            code = getattr(error, "code", None)
            code = code if code in RULES else "S100"
            return Report(source, None, [Finding(code, str(error), getattr(error, "step", None))])
    word = (
        "iteration" if any(finding.code.startswith("M") for finding in notes.findings) else "step"
    )
    return report_on(source, schedule, notes.findings, word)


def report_on(source: str, schedule, findings: list, word: str) -> Report:
    """The report on `schedule`, with the `findings` its reader gave, then the schedule
    rules' (`examine`)."""
    if schedule is None:
        return Report(source, None, _ordered(findings))
    moved = any(finding.code == "S108" for finding in findings)
    summary, more = examine(schedule, word=word, moved=moved)
    return Report(source, summary, _ordered(findings + more))


def _ordered(findings: list) -> list:
    """Errors first, then warnings, then notes; within a severity, in the order found."""
    return sorted(findings, key=lambda finding: SEVERITIES.index(finding.severity))


@contextlib.contextmanager
def kept_notes():
    """Keeps paramsched's WARNINGs logged within the block as findings, in the
    ``findings`` of the handler it yields (`KeptNotes`), instead of the log's."""
    notes = KeptNotes()
    logging.getLogger("paramsched").addHandler(notes)
    try:
        yield notes
    finally:
        logging.getLogger("paramsched").removeHandler(notes)


class KeptNotes(logging.Handler):
    """Keeps paramsched's WARNINGs as findings, while a schedule is read or a command
    runs (the command line prints them once it has succeeded, so that an error stays
    one line): a finding logged as such keeps its rule; any other note is ``S113``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.findings: list = []

    def emit(self, record: logging.LogRecord) -> None:
        found = [arg for arg in (record.args or ()) if isinstance(arg, Finding)]
        if found and record.getMessage() == str(found[0]):
            self.findings.append(found[0])
        else:
            self.findings.append(Finding("S113", record.getMessage()))


def with_options(report: Report, options: argparse.Namespace) -> Report:
    """`report` without the findings of the ``--ignore``d rules."""
    ignored = ignored_codes(options.ignore)
    return Report(
        report.source,
        report.summary,
        [finding for finding in report.findings if finding.code not in ignored],
    )


def parse_in_chunks(parser: argparse.ArgumentParser, words: list[str], size: int = 256):
    """``parser.parse_args(words)``, `size` flags at a time (argparse's time grows with
    the square of the flags it is given at once): each chunk, read into the namespace of
    the chunks before, sets what it gives over theirs, as one call would."""
    chunks, chunk, flags = [], [], 0
    for index, word in enumerate(words):
        if word == "--":  # the rest are positionals, read with the chunk before them
            chunk += words[index:]
            break
        if word.startswith("--"):
            if flags == size:
                chunks.append(chunk)
                chunk, flags = [], 0
            flags += 1
        chunk.append(word)
    namespace = None
    for chunk in [*chunks, chunk]:
        namespace = parser.parse_args(chunk, namespace)
    return namespace
