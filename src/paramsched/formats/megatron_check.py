"""Megatron's command line, checked: what Megatron of a version would refuse, ignore or
run otherwise than written, as findings of the check rules (`paramsched.check.rules`).

`check_megatron` takes the scheduling flags already parsed (by name), the other
flags with their values, and Megatron's version; it reads the schedule as
``paramsched table`` does, except that what ``table`` refuses becomes a finding,
and goes on where Megatron's behaviour is still defined. Before, `read_words` and
`last_values` read the words of a launch line as Megatron's parser would (a value the
shell split, ``--help``, a flag given twice).

Examples:
    >>> schedule, findings = check_megatron(
    ...     {"lr": 3e-4, "min_lr": 3e-5, "train_iters": 1000, "global_batch_size": 96,
    ...      "micro_batch_size": 4, "data_parallel_size": 16}, [], None)
    >>> [finding.line() for finding in findings]
    ['error M130: --global-batch-size 96 is not a multiple of --micro-batch-size x --data-parallel-size = 64; expected a multiple, since Megatron refuses it at start-up']
"""

from __future__ import annotations

import difflib

from ..check.rules import Finding
from ..errors import ScheduleError, check_number
from .megatron import (
    MEGATRON_DEFAULTS,
    MEGATRON_FLAGS,
    MEGATRON_GROUP_RATE_FLAGS,
    MEGATRON_LOOKALIKES,
    MEGATRON_RETIRED_FLAGS,
    NEAR_MISS,
    batch_stops,
    contradictions,
    read_megatron_flags,
)

#: The versions ``--megatron-version`` names: Megatron-Core 0.16 (and 0.17), and main
#: (0.18 on), where the batch-size flags differ.
VERSIONS = ("0.16", "main")

#: Flags of Megatron that change how many samples an iteration really consumes, which
#: the schedule's batch sizes then do not say.
_ROUNDING_FLAGS = ("--decrease-batch-size-if-needed",)


#: The words that make Megatron's parser print its help and exit.
_HELP = ("-h", "--help")


class NeedsMore(Exception):
    """What the flags cannot say and the check needs (``--data-parallel-size``)."""


def read_words(words: list[str], options: dict | None = None) -> tuple[list[str], list[Finding]]:
    """The words of a Megatron command line as the rest of the check reads them, and
    what Megatron would do with them before it reads any value: ``-h``/``--help``
    print its help and exit (``M100``; the rest is checked without them); a
    ``--step-batch-size-schedule`` whose value the shell split into words (an array
    expanded unquoted) leaves Megatron's parser unrecognized arguments (``M100``; the
    rest is checked with the value joined, as if quoted); a scheduling flag of one
    value (`options`: argparse's actions, by flag) written ``--lr=--`` is no value
    (argparse makes it an empty list: ``M100``, and the rest is checked without it).

    Examples:
        >>> words, found = read_words(["--step-batch-size-schedule", "0:16", "1M:32"])
        >>> words, found[0].code
        (['--step-batch-size-schedule', '0:16 1M:32'], 'M100')
    """
    options = options or {}
    findings, kept, index = [], [], 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            kept += words[index - 1 :]
            break
        if word in _HELP:
            findings.append(
                Finding(
                    "M100",
                    f"Megatron's parser prints its help at {word} and exits: the run does not "
                    "start (the rest is checked without it)",
                )
            )
            continue
        name, equals, attached = word.partition("=")
        if attached == "--" and name in options and options[name].nargs is None:
            findings.append(
                Finding(
                    "M100",
                    f"{word} gives {name} no value (Megatron's parser reads an empty list); "
                    "expected a value after = (the rest is checked without it)",
                )
            )
            continue
        if name != "--step-batch-size-schedule":
            kept.append(word)
            continue
        kept.append(name)
        parts = [attached] if equals else []
        while index < len(words) and ":" in words[index] and not words[index].startswith("-"):
            parts.append(words[index])
            index += 1
        if len(parts) > 1:
            findings.append(
                Finding(
                    "M100",
                    f"--step-batch-size-schedule takes one value, and the shell split it into "
                    f"{len(parts)} words ({' '.join(parts)}): Megatron refuses all but the first "
                    "as unrecognized arguments; expected the schedule quoted (the rest is checked "
                    "as if it were)",
                )
            )
        if parts:
            kept.append(" ".join(parts))
    return kept, findings


def last_values(words: list[str], options) -> tuple[list[str], list[Finding]]:
    """`words` (scheduling flags with their values) with each flag given more than
    once kept at its last value only, as Megatron's parser keeps it: ``M111`` for a
    flag given with different values, whose earlier ones Megatron ignores. Each
    different value is kept (at its last place), so that each is still read.

    Examples:
        >>> words, found = last_values(["--lr", "1e-4", "--lr=3e-4"], {"--lr"})
        >>> words, found[0].code
        (['--lr', '1e-4', '--lr=3e-4'], 'M111')
    """
    groups: list[list[str]] = []
    for index, word in enumerate(words):
        if word == "--":
            groups.append(words[index:])
            break
        if word.startswith("--") and word.split("=", 1)[0] in options or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    given: dict[str, list[tuple[str, ...]]] = {}
    last: dict[tuple[str, ...], int] = {}
    for index, group in enumerate(groups):
        name, _, attached = group[0].partition("=")
        if name not in options:
            continue
        values = tuple(([attached] if "=" in group[0] else []) + group[1:])
        given.setdefault(name, []).append(values)
        last[(name, *values)] = index
    findings = []
    for name, values in given.items():
        if len(set(values)) > 1:
            shown = [" ".join(value) for value in values]
            listed = ", ".join(shown[:-1][:3]) + (", ..." if len(shown) > 4 else "")
            findings.append(
                Finding(
                    "M111",
                    f"{name} is given {len(values):,} times with different values ({listed}, "
                    f"then {shown[-1]}): Megatron takes the last, {shown[-1]}, and ignores the "
                    "others",
                )
            )
    kept = []
    for index, group in enumerate(groups):
        name, _, attached = group[0].partition("=")
        if name in options:
            values = tuple(([attached] if "=" in group[0] else []) + group[1:])
            if last[(name, *values)] != index:
                continue
        kept += group
    return kept, findings


def check_megatron(flags: dict, others: list, version: str | None):
    """The schedule Megatron of `version` would run from `flags` (the scheduling flags,
    by name), or None where it would not start, and every finding on the way.

    Args:
        flags: The scheduling flags given, by name (``{"lr": 3e-4, ...}``).
        others: Every other flag, as ``(flag, values)``, in order.
        version: ``"0.16"``, ``"main"`` or None (the version the flags imply).

    Raises:
        NeedsMore: a length cannot be computed without a fact the flags cannot say.
    """
    findings = other_flags(
        others,
        [flag.option for flag in MEGATRON_FLAGS],
        read=("--encoder-seq-length",),
        unit=_unit(flags),
    )
    flags = dict(flags)
    findings += _encoder_seq_length(flags, others)
    findings += _version(flags, version)
    if any(finding.code == "M110" for finding in findings):
        return None, findings
    values = {**MEGATRON_DEFAULTS, **flags}
    for error in contradictions(values):
        more = " (the rest is checked without it)" if error.code == "M122" else ""
        findings.append(Finding(error.code, f"{error}{more}"))
    if any(finding.code in ("M120", "M121") for finding in findings):
        return None, findings
    if any(finding.code == "M122" for finding in findings):  # checked as main would run it
        flags.pop("global_batch_size")
    findings += _group_rates(values, others)
    if (
        values["train_samples"]
        and not values["train_iters"]
        and values["global_batch_size"] is None
        and values["step_batch_size_schedule"] is None
        and values["micro_batch_size"] is not None
        and values["data_parallel_size"] is None
    ):
        raise NeedsMore(
            "--global-batch-size is not set with --train-samples: Megatron takes "
            "--micro-batch-size x data-parallel size, which the flags do not say"
        )
    stops: list = []
    try:
        schedule, notes = read_megatron_flags(flags, stops=stops)
    except ScheduleError as error:
        code = getattr(error, "code", "M100")
        if code == "usage":
            raise NeedsMore(str(error)) from None
        return None, findings + [Finding(code, str(error), getattr(error, "step", None))]
    findings += [note for note in notes if version is None or note.code != "M112"]
    findings += [Finding(error.code, str(error), error.step) for error in stops]
    run = schedule.run
    rounding = any(flag in _ROUNDING_FLAGS for flag, _ in others)
    if run.batch_size_schedule is None and not rounding:
        iterations = run.step_at_samples(run.total_samples)
        for error in batch_stops(run, iterations, values):
            findings.append(Finding(error.code, str(error), error.step))
    if values["micro_batch_size"] is not None and values["data_parallel_size"] is None:
        findings.append(
            Finding(
                "M152",
                "--data-parallel-size is not given: batch sizes are not checked for "
                "divisibility by --micro-batch-size x data-parallel size",
            )
        )
    return schedule, findings


def _encoder_seq_length(flags: dict, others: list) -> list[Finding]:
    """Megatron's sequence length is ``--encoder-seq-length`` when ``--seq-length`` is
    not given (`flags` gets it as ``seq_length``: tokens, and a step schedule's
    thresholds in tokens); ``M100`` where both are given, or where its value is not one
    whole number, which Megatron refuses."""
    given = [words for flag, words in others if flag == "--encoder-seq-length"]
    if not given:
        return []
    if flags.get("seq_length") is not None:
        return [
            Finding(
                "M100",
                f"--encoder-seq-length {' '.join(given[-1])} with --seq-length "
                f"{flags['seq_length']}; expected one of the two, as Megatron requires (the "
                "rest is checked with --seq-length)",
            )
        ]
    for words in given:  # Megatron's parser reads each: one whole number
        try:
            (length,) = map(int, words)
        except ValueError:
            shown = " ".join(words) or "nothing"
            return [
                Finding(
                    "M100",
                    f"Megatron refuses the arguments: --encoder-seq-length takes one whole "
                    f"number, not {shown} (the rest is checked without a sequence length)",
                )
            ]
    flags["seq_length"] = length
    return []


def _version(flags: dict, version: str | None) -> list[Finding]:
    """``M110``, ``M111``, ``M112``: the batch-size flags that differ between versions.
    On main a ramp-up is dropped from `flags`, as main ignores it."""
    step = flags.get("step_batch_size_schedule") is not None
    ramp = flags.get("rampup_batch_size") is not None
    if version == "0.16" and step:
        return [
            Finding(
                "M110",
                "--step-batch-size-schedule is not a flag of Megatron-Core 0.16 or 0.17 "
                "(main's, from 0.18): Megatron refuses it",
            )
        ]
    if version == "main" and ramp and not step:
        ramp_value = flags.pop("rampup_batch_size")
        size = flags.get("global_batch_size")
        return [
            Finding(
                "M111",
                f"Megatron main ignores --rampup-batch-size {' '.join(map(str, ramp_value))}: "
                f"the batch size is {size if size is not None else '--global-batch-size'} "
                "from the first iteration",
            )
        ]
    if version is None and step:
        return [
            Finding(
                "M112",
                "checked as Megatron main (0.18 on) runs it, the version with "
                "--step-batch-size-schedule (--megatron-version to choose)",
            )
        ]
    if version is None and ramp:
        return [
            Finding(
                "M112",
                "checked as Megatron-Core 0.16/0.17 run --rampup-batch-size (main ignores "
                "it; --megatron-version main to check that)",
            )
        ]
    return []


def other_flags(
    others: list, known: list[str], read: tuple = (), unit: str | None = None
) -> list[Finding]:
    """What Megatron makes of the flags a command line holds besides its scheduling
    ones (`others`, as ``(flag, values)``): ``M101`` for a flag Megatron refuses (retired,
    or a near miss of one of `known`, unless it is one of Megatron's own), ``M151``
    counting the rest but those the caller `read`, and naming those that give groups
    rates of their own. A near miss is suggested in the run's `unit` (``"iters"`` or
    ``"samples"``, as ``--train-iters`` or ``--train-samples`` is given), so that taking the
    suggestion does not mix the two. The commands that read a launch line (``table``,
    ``preview``, ``check``) all ask here."""
    findings, counted, near = [], [], {}
    for flag, _ in others:
        if flag in MEGATRON_RETIRED_FLAGS:
            findings.append(
                Finding(
                    "M101",
                    f"{flag} is no longer one of Megatron's flags (Megatron refuses it); "
                    f"expected {MEGATRON_RETIRED_FLAGS[flag]}",
                )
            )
            continue
        if flag not in near:  # each name once: a launch line repeats flags
            near[flag] = (
                []
                if flag in MEGATRON_LOOKALIKES
                else difflib.get_close_matches(flag, known, n=1, cutoff=NEAR_MISS)
            )
        close = [_in_unit(match, unit, known) for match in near[flag]]
        if close:
            findings.append(
                Finding("M101", f"unrecognized argument {flag}; did you mean {close[0]}?")
            )
            continue
        if flag not in read:
            counted.append(flag)
    names = list(dict.fromkeys(counted))
    rates = [flag for flag in names if flag in MEGATRON_GROUP_RATE_FLAGS]
    names = [flag for flag in names if flag not in rates]
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        findings.append(
            Finding(
                "M151",
                f"ignored {len(names)} flag{'s' if len(names) != 1 else ''} that "
                f"do{'' if len(names) != 1 else 'es'} not affect the schedule ({shown})",
            )
        )
    if rates:
        findings.append(
            Finding(
                "M151",
                f"ignored {', '.join(rates)}, which give{'' if len(rates) > 1 else 's'} some "
                "parameter groups rates of their own: the schedule shown is the other groups'",
            )
        )
    return findings


def _in_unit(option: str, unit: str | None, known: list[str]) -> str:
    """`option` in the run's `unit`: ``--lr-warmup-iters`` is ``--lr-warmup-samples`` in a
    run of samples, where Megatron refuses the iteration flags (and the reverse)."""
    other = {"iters": "samples", "samples": "iters"}.get(unit)
    if other and option.endswith(f"-{other}") and option[: -len(other)] + unit in known:
        return option[: -len(other)] + unit
    return option


def _unit(flags: dict) -> str | None:
    """The unit of a run's lengths, ``"iters"`` or ``"samples"``, as its flags say."""
    return (
        "iters" if flags.get("train_iters") else "samples" if flags.get("train_samples") else None
    )


def _group_rates(values: dict, others: list) -> list[Finding]:
    """``M140``: the decoupled groups' ``min_lr`` above their ``max_lr``. Megatron gives
    them ``--decoupled-lr`` as max_lr, and ``--decoupled-min-lr`` (else ``--min-lr``)
    as min_lr."""
    given = {flag: words for flag, words in others if len(words) == 1}
    try:
        decoupled = given.get("--decoupled-lr")
        if decoupled is None:
            return []
        max_lr = check_number("--decoupled-lr", float(decoupled[0]))
        if "--decoupled-min-lr" in given:
            min_name = "--decoupled-min-lr"
            min_lr = check_number(min_name, float(given[min_name][0]))
        else:
            min_name, min_lr = "--min-lr", values["min_lr"]
    except (ValueError, TypeError):
        return []  # Megatron's parser refuses it; its value is not the schedule's
    if min_lr <= max_lr:
        return []
    return [
        Finding(
            "M140",
            f"--decoupled-lr {max_lr!r} is below the decoupled groups' min_lr "
            f"({min_name} {min_lr!r}): their rate rises as the others' decays",
        )
    ]
