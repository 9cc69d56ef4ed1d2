"""The check rules: one table, a stable code each, and the findings they give.

Every rule `paramsched check` applies is one entry of `RULES`: its code, its
severity, what it checks, an example of what it reports and how to fix it. The
README's rule table is generated from it, and the findings of ``check``,
``preview`` and ``table`` are made here, so that no message is written twice.

- **error**: what Megatron (of the chosen version) or the scheduler would refuse
  or crash on;
- **warning**: it runs, but almost surely not as meant;
- **note**: a fact worth a look.

Examples:
    >>> finding = Finding("S101", "the learning rate reaches its floor at step 100 of 1,000")
    >>> finding.code, finding.severity, str(finding)
    ('S101', 'warning', 'the learning rate reaches its floor at step 100 of 1,000')
    >>> finding.as_dict()["severity"]
    'warning'
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("error", "warning", "note")

#: The share of training that may follow the end of the decay before `S101` warns.
LATE_SHARE = 0.25

#: A change of the learning rate between two consecutive steps larger than this share
#: of the peak rate is a jump (`S112`).
JUMP_SHARE = 0.10


@dataclass(frozen=True)
class Rule:
    """One check: `code` (stable), `severity`, what it `checks`, an `example` of its
    finding, and the `fix`."""

    code: str
    severity: str
    checks: str
    example: str
    fix: str


_TABLE = (
    # Rules on any schedule: a file, a recipe, a branch or Megatron's flags.
    Rule(
        "S100",
        "error",
        "The scheduler refuses the schedule (an invalid value, a contradiction).",
        "`lr.phases[1].until='200 steps' lands at 51,200 samples ... expected increasing phase ends`",
        "Follow the message: it names the key and what is expected.",
    ),
    Rule(
        "S101",
        "warning",
        f"The learning rate reaches its floor well before training ends: more than "
        f"{LATE_SHARE:.0%} of training left, or earlier than its lengths say (a batch-size "
        "schedule under an iteration-based run). The step is computed on the run's batch sizes.",
        "`the learning rate reaches its floor at iteration 81,663 of 500,000, not 430,000: "
        "84% of training at 6e-06`",
        "Lengthen the decay to the run (`--lr-decay-iters`, the last phase's `until`), or "
        "give lengths in samples (`--train-samples`, `--lr-decay-samples`).",
    ),
    Rule(
        "S102",
        "warning",
        "Training ends before the decay reaches its floor: the final rate is above the "
        "minimum, or the WSD anneal never completes.",
        "`training ends at step 10,000, before the decay reaches its floor (3e-05 at step "
        "30,000): its last rate is 0.000264079`",
        "End the decay at the end of the run, or run the steps it needs.",
    ),
    Rule(
        "S103",
        "note",
        "Training ends within the decay's last step: a last partial batch is dropped, so the "
        "final rate is a hair above the minimum.",
        "`training ends at iteration 3,906, 64 samples before the decay ends`",
        "Make the training length a multiple of the batch size, if the floor matters.",
    ),
    Rule(
        "S104",
        "error",
        "The warmup is not shorter than the decay.",
        "`--lr-warmup-iters 2000 is not below --lr-decay-iters 1000`",
        "Shorten the warmup or lengthen the decay.",
    ),
    Rule(
        "S105",
        "warning",
        "Training ends within the warmup: the peak rate is never reached.",
        "`training ends at step 400, within the warmup (to 0.0003 at step 500)`",
        "Shorten the warmup, or train longer.",
    ),
    Rule(
        "S106",
        "warning",
        "The warmup ends after the WSD anneal begins: the anneal starts from below the peak.",
        "`the warmup ends at step 900, after the WSD anneal begins at step 800`",
        "Shorten the warmup or the anneal (`--lr-wsd-decay-iters`).",
    ),
    Rule(
        "S107",
        "warning",
        "The warmup ends at another step than its length says (a batch-size schedule under "
        "an iteration-based run).",
        "`... counts samples of micro-batch x data-parallel (16): the warmup ends at "
        "iteration 2,187, not 500 (of 500,000)`",
        "Give lengths in samples (`--train-samples`, `--lr-warmup-samples`).",
    ),
    Rule(
        "S108",
        "warning",
        "The decay ends at another step than its length says (a batch-size schedule under "
        "an iteration-based run): Megatron measures the lengths in samples of "
        "`--micro-batch-size` x data-parallel size, while each iteration consumes the "
        "schedule's batch size.",
        "`... counts samples of micro-batch x data-parallel (16): the learning rate reaches "
        "--min-lr at iteration 81,663, not 430,000 (of 500,000)`",
        "Give lengths in samples (`--train-samples`, `--lr-decay-samples`).",
    ),
    Rule(
        "S109",
        "warning",
        "A phase, or a branch's point, lies past the end of the run: it is never reached.",
        "`the learning rate's phase 2 ('cosine', from step 12,000) begins after training ends "
        "at step 10,000`",
        "Move the phase's `until` within the run, or lengthen `run.total`.",
    ),
    Rule(
        "S110",
        "warning",
        "A batch-size stage lies past the end of the run: it is never reached.",
        "`batch-size stage 2 (from 500B tokens) begins after training ends at step 120,000`",
        "Remove the stage, or lengthen the run.",
    ),
    Rule(
        "S111",
        "note",
        "The run has no length (`run.total`): ends are checked up to the last phase only.",
        "`the run has no total: checked up to the last phase's end, step 10,000`",
        'Give `total` in `[run]` (`"100000 steps"`, `"2T tokens"`).',
    ),
    Rule(
        "S112",
        "note",
        f"The learning rate jumps between two consecutive steps by more than {JUMP_SHARE:.0%} "
        "of its peak: a step-down, a drop to the floor, or a branch's start.",
        "`the learning rate jumps from 0.0003 to 3e-05 at step 8,001 (-90% of the peak)`",
        "Nothing, if meant; otherwise smooth the phase (a short linear phase between).",
    ),
    Rule(
        "S113",
        "note",
        "A note of the schedule's reader: a setting Megatron-Core runs as written though it "
        "is unusual (a WSD anneal of no length, or longer than the decay).",
        "`wsd_decay_steps=0 with lr_decay_steps=1000: no anneal: the rate drops from max_lr "
        "to min_lr after lr_decay_steps; run as Megatron-Core runs it`",
        "Nothing, if meant.",
    ),
    # Megatron's command line and [megatron] tables.
    Rule(
        "M100",
        "error",
        "Megatron refuses the arguments: an unreadable value, a missing or invalid one, a "
        "value the shell split into words (an array expanded unquoted); or `-h`/`--help`, "
        "which print Megatron's help instead of training.",
        "`--lr-decay-style='cosin' is not one of ... (did you mean 'cosine'?)`",
        "Follow the message: it names the flag and what is expected.",
    ),
    Rule(
        "M101",
        "error",
        "A flag Megatron no longer accepts (`--warmup`, `--batch-size`), a misspelling of "
        "a scheduling flag, or `--data-parallel-size` among Megatron's arguments (paramsched's "
        "flag: Megatron derives the size from the world size), which Megatron's parser refuses.",
        "`unrecognized argument --lr-warmup-steps; did you mean --lr-warmup-iters?`",
        "Use the flag named in the message.",
    ),
    Rule(
        "M110",
        "error",
        "A flag the chosen Megatron does not have (`--step-batch-size-schedule` before 0.18).",
        "`--step-batch-size-schedule is not a flag of Megatron-Core 0.16 (it is main's)`",
        "Check with `--megatron-version main`, or use `--rampup-batch-size`.",
    ),
    Rule(
        "M111",
        "warning",
        "A flag the chosen Megatron reads but ignores: `--rampup-batch-size` on main or beside "
        "a step schedule, `--lr-wsd-decay-samples` with `--train-iters` (and the reverse), the "
        "earlier values of a scheduling flag given more than once (Megatron takes the last).",
        "`Megatron main ignores --rampup-batch-size: the batch size is 1024 from the first "
        "iteration`",
        "Remove the flag, or give what the version reads (`--step-batch-size-schedule`).",
    ),
    Rule(
        "M112",
        "note",
        "Which Megatron the check follows, when `--megatron-version` is not given and a "
        "version-specific flag decides it.",
        "`checked as Megatron-Core 0.16/0.17 run --rampup-batch-size (main ignores it; "
        "--megatron-version main to check that)`",
        "Pass `--megatron-version 0.16` or `main`.",
    ),
    Rule(
        "M120",
        "error",
        "Iteration and sample flags mixed (`--train-iters` with `--lr-decay-samples`, ...).",
        "`--train-iters=1000 with --lr-decay-samples=5000; expected iteration-based lengths`",
        "Use one unit throughout.",
    ),
    Rule(
        "M121",
        "error",
        "A warmup fraction beside a warmup length.",
        "`--lr-warmup-fraction=0.01 with --lr-warmup-iters=100; expected one of the two`",
        "Keep one of the two.",
    ),
    Rule(
        "M122",
        "error",
        "A step batch-size schedule with `--global-batch-size` (Megatron main refuses it); "
        "the rest is checked without `--global-batch-size`.",
        "`--step-batch-size-schedule='0:16 ...' with --global-batch-size=1536; expected one "
        "of the two`",
        "Remove `--global-batch-size`: the schedule sets the batch size.",
    ),
    Rule(
        "M123",
        "error",
        "A batch-size ramp-up with `--train-iters` (Megatron requires `--train-samples`).",
        "`--rampup-batch-size=['32', '32', '2000000'] with --train-iters; expected --train-samples`",
        "Give the run's length in samples.",
    ),
    Rule(
        "M130",
        "error",
        "A batch size not divisible by `--micro-batch-size` x data-parallel size: Megatron "
        "stops at the iteration that reaches it.",
        "`the batch size 320 at iteration 1,523 is not a multiple of --micro-batch-size x "
        "data-parallel size = 64: Megatron stops there`",
        "Choose batch sizes that are multiples, or another micro-batch size.",
    ),
    Rule(
        "M131",
        "error",
        "A step schedule whose batch size falls within the run: Megatron stops there.",
        "`--step-batch-size-schedule falls from batch size 512 to 256 at iteration 4,001`",
        "Keep the batch sizes non-decreasing.",
    ),
    Rule(
        "M140",
        "warning",
        "A group's `min_lr` above its `max_lr`: `--decoupled-lr` below `--min-lr` (or below "
        "`--decoupled-min-lr`). Megatron runs it; the group's rate rises as the others decay.",
        "`--decoupled-lr 1e-05 is below the decoupled groups' min_lr (--min-lr 3e-05)`",
        "Give `--decoupled-min-lr` below `--decoupled-lr`.",
    ),
    Rule(
        "M150",
        "note",
        "A number of `--step-batch-size-schedule` that Megatron reads through a float, so "
        "not as the decimal written.",
        "`Megatron reads 2.01M as 2,009,999 (through a float), not 2,010,000`",
        "Write the threshold without a suffix, or accept Megatron's reading.",
    ),
    Rule(
        "M151",
        "note",
        "Flags that do not affect the schedule, ignored with their values and counted; "
        "flags that give some groups rates of their own are named.",
        "`ignored 41 flags that do not affect the schedule (--num-layers, ...)`",
        "Nothing: the schedule's flags are read.",
    ),
    Rule(
        "M152",
        "note",
        "Facts the flags cannot say, assumed: no batch size (an iteration is 1 sample), no "
        "data-parallel size (divisibility unchecked).",
        "`--data-parallel-size is not given: batch sizes are not checked for divisibility`",
        "Pass `--data-parallel-size` (and `--global-batch-size`).",
    ),
)

#: Every rule, by code.
RULES: dict[str, Rule] = {rule.code: rule for rule in _TABLE}


class Finding(str):
    """What one rule found: its text (the string itself, one line), `code`, `severity`
    and, where it happens at one, the `step` (an iteration, for Megatron)."""

    code: str
    severity: str
    step: int | None

    def __new__(cls, code: str, message: str, step: int | None = None) -> "Finding":
        if code not in RULES:
            raise KeyError(f"no check rule {code!r}")
        finding = super().__new__(cls, message)
        finding.code, finding.severity, finding.step = code, RULES[code].severity, step
        return finding

    def as_dict(self) -> dict:
        """The finding as JSON data: code, severity, message and step."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": str(self),
            "step": self.step,
        }

    def line(self) -> str:
        """One line for people: ``warning S101: ...``."""
        return f"{self.severity} {self.code}: {self}"


def rule_table() -> str:
    """The README's table of rules, in Markdown, from `RULES`."""
    lines = [
        "| code | severity | what it checks | example | how to fix it |",
        "|---|---|---|---|---|",
    ]
    for rule in _TABLE:
        lines.append(
            f"| `{rule.code}` | {rule.severity} | {rule.checks} | {rule.example} | {rule.fix} |"
        )
    return "\n".join(lines)
