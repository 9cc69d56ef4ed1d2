"""Megatron's command-line arguments, turned into a `Schedule` as Megatron turns them.

Megatron's training loop steps the scheduler by the global batch size, so its
schedule counts samples: in iteration-based training the iteration counts are
multiplied by ``--global-batch-size``; in sample-based training they are used
as they are. ``--lr-warmup-fraction`` is a fraction of the decay length and may
give a fractional warmup.

`MEGATRON_FLAGS` lists the arguments once, with their types, Megatron's defaults
and a line of help; ``paramsched table``, ``paramsched preview`` (through
`add_megatron_flags`), the ``[megatron]`` table of a schedule file and
`from_megatron_args` all take their arguments from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import numbers
import re
from dataclasses import dataclass
from fractions import Fraction

from ..check.rules import Finding
from ..core.schedule import (
    LR_DECAY_STYLES,
    WD_INCR_STYLES,
    WSD_DECAY_STYLES,
    Schedule,
    _unusual_wsd,
)
from ..core.schedule import logger as schedule_logger
from ..core.units import MAX_AMOUNT, MAX_STAGES, Run
from ..errors import (
    ScheduleError,
    ScheduleTypeError,
    check_non_negative,
    check_number,
    check_rate,
    coded,
    shown,
)

logger = logging.getLogger("paramsched.megatron")


@dataclass(frozen=True)
class MegatronFlag:
    """One of Megatron's scheduling arguments, as its command line defines it.

    Args:
        name: The argument's name, the argparse dest (``lr_warmup_iters``).
        kind: The type a value is read as (``float``, ``int`` or, for the values of
            ``--rampup-batch-size``, ``str``), or the tuple of choices.
        default: Megatron's default (None: unset).
        help: One line for ``--help``, stating the default.
        metavar: For a flag of several values, one name per value; their count is
            the number of values the flag takes.
    """

    name: str
    kind: type | tuple[str, ...]
    default: object
    help: str
    metavar: tuple[str, ...] | None = None

    @property
    def option(self) -> str:
        """The flag as typed: ``--lr-warmup-iters``."""
        return _flag(self.name)


#: Megatron's scheduling arguments: everything `from_megatron_args` reads, what
#: ``paramsched table`` and ``paramsched preview`` accept, and the keys of a
#: ``[megatron]`` table in a schedule file.
MEGATRON_FLAGS: tuple[MegatronFlag, ...] = (
    MegatronFlag("lr", float, None, "peak learning rate (default none; required)"),
    MegatronFlag("min_lr", float, 0.0, "final learning rate (default 0.0)"),
    MegatronFlag("lr_warmup_init", float, 0.0, "learning rate at step 0 (default 0.0)"),
    MegatronFlag("lr_warmup_iters", int, 0, "warmup length in iterations (default 0)"),
    MegatronFlag("lr_warmup_samples", int, 0, "warmup length in samples (default 0)"),
    MegatronFlag(
        "lr_warmup_fraction",
        float,
        None,
        "warmup length as a fraction of the decay length (default none)",
    ),
    MegatronFlag("lr_decay_iters", int, None, "decay length in iterations (default --train-iters)"),
    MegatronFlag(
        "lr_decay_samples", int, None, "decay length in samples (default --train-samples)"
    ),
    MegatronFlag(
        "train_iters",
        int,
        None,
        "training length in iterations (default none; this or --train-samples)",
    ),
    MegatronFlag(
        "train_samples",
        int,
        None,
        "training length in samples (default none; this or --train-iters)",
    ),
    MegatronFlag(
        "lr_decay_style", LR_DECAY_STYLES, "linear", "shape of the decay (default linear)"
    ),
    MegatronFlag(
        "lr_wsd_decay_style",
        WSD_DECAY_STYLES,
        "exponential",
        "shape of the WSD anneal (default exponential)",
    ),
    MegatronFlag(
        "lr_wsd_decay_iters",
        int,
        None,
        "length of the WSD anneal in iterations (default none; WSD needs it)",
    ),
    MegatronFlag(
        "lr_wsd_decay_samples",
        int,
        None,
        "length of the WSD anneal in samples (default none; WSD needs it)",
    ),
    MegatronFlag("weight_decay", float, 0.01, "constant weight decay (default 0.01)"),
    MegatronFlag(
        "start_weight_decay",
        float,
        None,
        "first weight decay of a linear or cosine increment (default none)",
    ),
    MegatronFlag(
        "end_weight_decay",
        float,
        None,
        "last weight decay of a linear or cosine increment (default none)",
    ),
    MegatronFlag(
        "weight_decay_incr_style",
        WD_INCR_STYLES,
        "constant",
        "shape of the weight decay's increment (default constant)",
    ),
    MegatronFlag(
        "global_batch_size",
        int,
        None,
        "samples per iteration (default --micro-batch-size x "
        "--data-parallel-size, else 1 with --train-iters)",
    ),
    MegatronFlag(
        "rampup_batch_size",
        str,
        None,
        "batch-size ramp-up: start, increment, length in samples or '20B tokens' (default none)",
        metavar=("START", "INCREMENT", "RAMP_LENGTH"),
    ),
    MegatronFlag("seq_length", int, None, "tokens per sample (default none)"),
    MegatronFlag(
        "step_batch_size_schedule",
        str,
        None,
        "batch size by stages, '0:768 250B:1536', core 0.18 on (default none)",
    ),
    MegatronFlag("micro_batch_size", int, None, "samples per micro-batch (default none)"),
    MegatronFlag(
        "data_parallel_size",
        int,
        None,
        "data-parallel ranks; Megatron derives it from the world size (default none)",
    ),
)

#: Megatron's defaults, by argument name (None: unset); taken from `MEGATRON_FLAGS`.
MEGATRON_DEFAULTS: dict[str, object] = {flag.name: flag.default for flag in MEGATRON_FLAGS}

#: Flags Megatron still defines but refuses (``validate_args``), with what it says to
#: use instead; a command line that holds one is refused as Megatron refuses it.
MEGATRON_RETIRED_FLAGS: dict[str, str] = {
    "--batch-size": "--micro-batch-size",
    "--warmup": "--lr-warmup-fraction or --lr-warmup-iters/--lr-warmup-samples",
    "--model-parallel-size": "--tensor-model-parallel-size",
}

#: Megatron's flags that give some parameter groups rates of their own (overrides of
#: ``max_lr`` and ``min_lr``): the schedule read from the flags is that of the other
#: groups, and a preview says so.
MEGATRON_GROUP_RATE_FLAGS: tuple[str, ...] = (
    "--decoupled-lr",
    "--decoupled-min-lr",
    "--use-mup",
    "--head-lr-mult",
)

#: Megatron's own flags (Megatron-Core 0.16 to main) that `difflib` finds within
#: `NEAR_MISS` of a flag paramsched reads: they are Megatron's, not misspellings, and
#: are set aside with the other flags that do not affect the schedule.
MEGATRON_LOOKALIKES: frozenset[str] = frozenset(
    {
        "--context-parallel-size",
        "--decoder-seq-length",
        "--encoder-seq-length",
        "--eval-global-batch-size",
        "--eval-micro-batch-size",
        "--fp4-recipe",
        "--fp8-recipe",
        "--ft-num-warmup-iters",
        "--indexer-batch-size",
        "--no-weight-decay-cond-type",
        # flags its example trainers, tools and extensions add to Megatron's parser
        "--calib-batch-size",
        "--image-seq-length",
        "--max-batch-size",
        "--mem-batch-size",
        "--mmlu-batch-size",
        "--num-samples",
        "--out-seq-length",
        "--packing-seq-length",
        "--total-seq-length",
    }
)

#: How close (`difflib.SequenceMatcher.ratio`) an unknown flag must be to a known one
#: to be taken for a misspelling of it (``--lr-warmup-steps`` for ``--lr-warmup-iters``,
#: ``--train-iter`` for ``--train-iters``).
NEAR_MISS = 0.75


def add_megatron_flags(parser) -> None:
    """Adds every flag of `MEGATRON_FLAGS` to `parser` (an argparse parser or group).

    A flag not given parses as None, not as Megatron's default, so that a caller
    can tell which flags were given; `from_megatron_args` fills in the defaults.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_megatron_flags(parser)
        >>> options = parser.parse_args(["--lr", "3e-4", "--train-samples", "1000"])
        >>> options.lr, options.train_samples, options.min_lr
        (0.0003, 1000, None)
    """
    for flag in MEGATRON_FLAGS:
        if flag.metavar is not None:
            parser.add_argument(
                flag.option,
                type=flag.kind,
                nargs=len(flag.metavar),
                metavar=flag.metavar,
                help=flag.help,
            )
        elif isinstance(flag.kind, tuple):
            parser.add_argument(flag.option, choices=flag.kind, help=flag.help)
        else:
            parser.add_argument(flag.option, type=flag.kind, help=flag.help)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _megatron_int(label: str, value):
    """Megatron reads --rampup-batch-size as strings and converts them with int()."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScheduleError(f"{label}={value!r}; expected a whole number") from None


def _megatron_ramp_length(value):
    """The ramp's length: samples as Megatron has them, or a quantity such as '20B tokens'."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value  # a quantity, checked by Run
    return value


def from_megatron_args(args) -> Schedule:
    """The `Schedule` Megatron's ``get_optimizer_param_scheduler`` builds from `args`.

    What Megatron does that a user may not expect (a step batch-size schedule that
    makes the learning rate end early, a flag Megatron ignores, a threshold its
    parser reads differently from the decimal written) is logged at WARNING on the
    ``paramsched.megatron`` logger; `read_megatron_args` returns those notes instead.

    Args:
        args: An object with Megatron's argument names as attributes (an
            ``argparse.Namespace``, say); a missing attribute takes Megatron's default.

    Returns:
        A schedule whose steps are samples, as Megatron's scheduler counts them.

    Raises:
        ScheduleError: an argument is missing, contradicts another, or is invalid;
            the message names the flag.
    """
    schedule, notes = read_megatron_args(args)
    for note in notes:
        logger.warning("%s", note)
    return schedule


def read_megatron_flags(flags: dict, *, stops: list | None = None) -> tuple[Schedule, list[str]]:
    """The schedule of Megatron's scheduling flags given on a command line (`flags`, by
    name), with its notes: Megatron's defaults, then `read_megatron_args`, which counts
    the iterations Megatron trains (`train_iterations`) and ends the schedule's run there.

    Without --global-batch-size (nor --micro-batch-size and --data-parallel-size, whose
    product is Megatron's default for it) a run of --train-iters counts an iteration as
    one sample, with a note: its learning rate by iteration is the same at any constant
    batch size. A run of --train-samples is refused so: Megatron trains
    --train-samples // --global-batch-size iterations.

    Examples:
        >>> schedule, notes = read_megatron_flags({"lr": 1e-3, "train_iters": 100})
        >>> schedule.run.global_batch_size, notes[0].code
        (1, 'M152')
    """
    values = {**MEGATRON_DEFAULTS, **flags}
    notes = []
    if (
        values["global_batch_size"] is None
        and values["step_batch_size_schedule"] is None
        and (values["micro_batch_size"] is None or values["data_parallel_size"] is None)
    ):
        if values["train_samples"] and not values["train_iters"]:
            raise ScheduleError(
                "--global-batch-size is not set with --train-samples; expected "
                "it (or --micro-batch-size and --data-parallel-size), since "
                "Megatron trains --train-samples // --global-batch-size "
                "iterations"
            )
        if values["train_iters"] and values["rampup_batch_size"] is None:
            values["global_batch_size"] = 1
            notes.append(
                Finding(
                    "M152",
                    "--global-batch-size is not set: an iteration counts as 1 sample "
                    "(the learning rate by iteration is the same at any constant batch "
                    "size; samples and tokens are not)",
                )
            )
    schedule, more = read_megatron_args(argparse.Namespace(**values), stops=stops)
    return schedule, notes + more


def read_megatron_args(args, *, stops: list | None = None) -> tuple[Schedule, list[str]]:
    """`from_megatron_args`, returning its notes (one line each, each a
    `paramsched.check.Finding`) instead of logging them. Given a list `stops`, where
    Megatron's loop would stop within the run for its batch sizes (`batch_stops`) is
    added to it rather than refused."""
    a = {name: getattr(args, name, default) for name, default in MEGATRON_DEFAULTS.items()}
    notes: list[str] = []
    if a["lr"] is None:
        raise ScheduleError("--lr is not set; expected the peak learning rate")
    for name in ("lr", "min_lr", "lr_warmup_init"):  # checked here to name the flag
        check_rate(_flag(name), a[name])
    for name in ("train_iters", "train_samples"):
        if a[name] is not None and check_number(_flag(name), a[name]) <= 0:
            raise ScheduleError(f"{_flag(name)}={a[name]!r}; expected a number > 0")
    for name in ("micro_batch_size", "data_parallel_size", "global_batch_size", "seq_length"):
        if a[name] is not None and (
            not isinstance(check_number(_flag(name), a[name]), int) or a[name] <= 0
        ):
            raise ScheduleError(f"{_flag(name)}={a[name]!r}; expected a whole number > 0")
    for name in ("min_lr", "lr_warmup_init"):
        if a[name] > a["lr"]:
            raise ScheduleError(
                f"{_flag(name)} {a[name]!r} is greater than --lr {a['lr']!r}; "
                f"expected {_flag(name)} <= --lr"
            )
    _refuse_contradictions(a)
    if (
        a["global_batch_size"] is None
        and a["step_batch_size_schedule"] is None
        and a["micro_batch_size"] is not None
        and a["data_parallel_size"] is not None
    ):
        # Megatron's default: --micro-batch-size x the data-parallel size.
        a["global_batch_size"] = a["micro_batch_size"] * a["data_parallel_size"]
    start_wd, end_wd = _weight_decay(a)

    stages = None
    if a["step_batch_size_schedule"] is not None:
        stages = _step_schedule(a["step_batch_size_schedule"], a["seq_length"], notes)
        if a["rampup_batch_size"] is not None:
            notes.append(
                Finding(
                    "M111",
                    f"--rampup-batch-size={shown(a['rampup_batch_size'])} is ignored: with "
                    "--step-batch-size-schedule, Megatron follows the schedule",
                )
            )
    elif a["rampup_batch_size"] is not None:
        notes.append(
            Finding(
                "M112",
                "--rampup-batch-size follows Megatron-Core 0.16 and 0.17; from 0.18 "
                "Megatron ignores it (use --step-batch-size-schedule)",
            )
        )
        if a["train_iters"]:
            raise coded(
                ScheduleError(
                    f"--rampup-batch-size={a['rampup_batch_size']!r} with --train-iters; "
                    "expected --train-samples, as Megatron requires for a batch-size ramp-up"
                ),
                "M123",
            )
    if a["train_iters"]:
        if a["train_iters"] != int(a["train_iters"]):
            raise ScheduleError(
                f"--train-iters={a['train_iters']!r}; expected a whole number of iterations"
            )
        unit, scale = "iters", _iteration_samples(a)
        if a["lr_wsd_decay_samples"] is not None:
            notes.append(
                Finding(
                    "M111",
                    f"--lr-wsd-decay-samples={a['lr_wsd_decay_samples']!r} is ignored "
                    "with --train-iters (Megatron reads --lr-wsd-decay-iters)",
                )
            )
    elif a["train_samples"]:
        unit, scale = "samples", 1
        if a["lr_wsd_decay_iters"] is not None:
            notes.append(
                Finding(
                    "M111",
                    f"--lr-wsd-decay-iters={a['lr_wsd_decay_iters']!r} is ignored "
                    "with --train-samples (Megatron reads --lr-wsd-decay-samples)",
                )
            )
    else:
        raise ScheduleError("neither --train-iters nor --train-samples is set; expected one")

    def steps(name: str):
        value = a[f"{name}_{unit}"]
        if value is None:
            return None
        return check_non_negative(_flag(f"{name}_{unit}"), value) * scale

    train = steps("train")
    lr_decay_steps = train if a[f"lr_decay_{unit}"] is None else steps("lr_decay")
    if a["lr_warmup_fraction"] is not None:
        lr_warmup_steps = (
            check_non_negative("--lr-warmup-fraction", a["lr_warmup_fraction"]) * lr_decay_steps
        )
    else:
        lr_warmup_steps = steps("lr_warmup")
    _check_lengths(a, unit, lr_warmup_steps, lr_decay_steps)
    wsd_decay_steps = steps("lr_wsd_decay")
    if a["lr_decay_style"] == "WSD" and wsd_decay_steps is None:
        raise ScheduleError(
            f"--lr-wsd-decay-{unit} is not set with --lr-decay-style=WSD; "
            "expected the length of the final anneal"
        )
    try:
        rampup = a["rampup_batch_size"] if stages is None else None
        if rampup is not None and not isinstance(rampup, (str, bytes)):
            rampup = [
                _megatron_int(f"--rampup-batch-size[{i}]", v) if i < 2 else _megatron_ramp_length(v)
                for i, v in enumerate(rampup)
            ]
        run = Run(
            global_batch_size=None if stages else a["global_batch_size"],
            seq_length=a["seq_length"],
            rampup_batch_size=rampup,
            batch_size_schedule=stages,
        )
    except ScheduleError as error:  # Run's fields are Megatron's arguments, by name
        raise type(error)(_as_flags(str(error))) from None
    if run.global_batch_size is not None:  # where Megatron stops: its iterations
        iterations = train_iterations(run, a["train_iters"], a["train_samples"])
        run = dataclasses.replace(run, total=f"{iterations} steps")
    else:  # no batch size: the schedule counts samples, and its run ends at the last
        run = dataclasses.replace(run, total=f"{train} samples")
    if a["lr_decay_style"] == "WSD":  # noted in the flags' words, not the Schedule's
        unusual = _unusual_wsd(wsd_decay_steps, lr_decay_steps, lr_warmup_steps)
        if unusual:
            decay = f"lr_decay_{unit}" if a[f"lr_decay_{unit}"] is not None else f"train_{unit}"
            notes.append(
                Finding(
                    "S113",
                    f"--lr-wsd-decay-{unit}={a[f'lr_wsd_decay_{unit}']!r} with "
                    f"{_flag(decay)}={a[decay]!r}: "
                    + unusual.replace("lr_decay_steps", _flag(decay))
                    .replace("max_lr", "--lr")
                    .replace("min_lr", "--min-lr")
                    + "; run as Megatron-Core runs it",
                )
            )
    quiet = _Quiet()  # the Schedule's own note on it, in its fields' words
    schedule_logger.addFilter(quiet)
    try:
        schedule = Schedule(
            init_lr=a["lr_warmup_init"],
            max_lr=a["lr"],
            min_lr=a["min_lr"],
            lr_warmup_steps=lr_warmup_steps,
            lr_decay_steps=lr_decay_steps,
            lr_decay_style=a["lr_decay_style"],
            start_wd=start_wd,
            end_wd=end_wd,
            wd_incr_steps=train,
            wd_incr_style=a["weight_decay_incr_style"],
            wsd_decay_steps=wsd_decay_steps,
            lr_wsd_decay_style=a["lr_wsd_decay_style"],
            run=run,
        )
    except ScheduleError as error:
        raise type(error)(f"from Megatron's arguments: {error}") from None
    finally:
        schedule_logger.removeFilter(quiet)
    if stages is not None:
        if stops is None:
            _check_stages_reached(run, iterations, a)
        else:
            stops += batch_stops(run, iterations, a)
        if a["train_iters"]:
            notes += _early_end(schedule, a, scale)
    return schedule, notes


class _Quiet(logging.Filter):
    """Drops the records of the logger it filters (while `read_megatron_args` says the
    same in Megatron's words)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _refuse_contradictions(a: dict) -> None:
    """Refuses what Megatron's ``validate_args`` refuses, naming the flags: the first
    of `contradictions`."""
    found = contradictions(a)
    if found:
        raise found[0]


def contradictions(a: dict) -> list[ScheduleError]:
    """Every pair of Megatron's arguments (`a`, by name) that Megatron's
    ``validate_args`` refuses together, as errors naming both flags, each marked with
    its check rule: iteration and sample flags mixed (``M120``), a warmup fraction
    beside a warmup length (``M121``), a step schedule with ``--global-batch-size``
    (``M122``)."""
    found = []

    def refuse(first: str, second: str, why: str, code: str) -> None:
        message = (
            f"{_flag(first)}={a[first]!r} with {_flag(second)}={a[second]!r}; "
            f"expected {why}, as Megatron requires"
        )
        found.append(coded(ScheduleError(message), code))

    if a["train_iters"]:
        for name in ("train_samples", "lr_decay_samples"):
            if a[name] is not None:
                refuse(
                    "train_iters",
                    name,
                    "iteration-based lengths (--train-iters, --lr-decay-iters, --lr-warmup-iters)",
                    "M120",
                )
        if a["lr_warmup_samples"]:
            refuse("train_iters", "lr_warmup_samples", "--lr-warmup-iters", "M120")
        if a["lr_warmup_fraction"] is not None and a["lr_warmup_iters"]:
            refuse("lr_warmup_fraction", "lr_warmup_iters", "one of the two", "M121")
    if a["train_samples"]:
        if a["lr_decay_iters"] is not None:
            refuse(
                "train_samples",
                "lr_decay_iters",
                "sample-based lengths (--train-samples, --lr-decay-samples, --lr-warmup-samples)",
                "M120",
            )
        if a["lr_warmup_iters"]:
            refuse("train_samples", "lr_warmup_iters", "--lr-warmup-samples", "M120")
        if a["lr_warmup_fraction"] is not None and a["lr_warmup_samples"]:
            refuse("lr_warmup_fraction", "lr_warmup_samples", "one of the two", "M121")
    if a["step_batch_size_schedule"] is not None and a["global_batch_size"] is not None:
        refuse(
            "step_batch_size_schedule",
            "global_batch_size",
            "one of the two (the schedule sets the batch size)",
            "M122",
        )
    return found


def _check_lengths(a: dict, unit: str, lr_warmup_steps, lr_decay_steps) -> None:
    """Refuses a decay of no length and a warmup not shorter than the decay, naming the
    flags that set them as typed (the decay's length is --train-iters or
    --train-samples unless --lr-decay-iters or --lr-decay-samples is given)."""
    decay = f"lr_decay_{unit}" if a[f"lr_decay_{unit}"] is not None else f"train_{unit}"
    if lr_decay_steps <= 0:
        raise ScheduleError(
            f"{_flag(decay)}={a[decay]!r}; expected a number > 0 (the length of the decay)"
        )
    if lr_warmup_steps < lr_decay_steps:
        return
    if a["lr_warmup_fraction"] is not None:
        raise coded(
            ScheduleError(
                f"--lr-warmup-fraction {a['lr_warmup_fraction']!r} makes the "
                f"warmup no shorter than the decay ({_flag(decay)} {a[decay]!r}); "
                "expected a fraction below 1"
            ),
            "S104",
        )
    warmup = f"lr_warmup_{unit}"
    raise coded(
        ScheduleError(
            f"{_flag(warmup)} {a[warmup]!r} is not below {_flag(decay)} "
            f"{a[decay]!r}; expected a warmup shorter than the decay"
        ),
        "S104",
    )


#: Run's fields that are Megatron's arguments by the same name.
_RUN_FLAGS = re.compile(r"\b(global_batch_size|seq_length|rampup_batch_size)\b")


def _as_flags(message: str) -> str:
    """A `Run` refusal in the words of Megatron's command line."""
    return _RUN_FLAGS.sub(lambda match: _flag(match[1]), message)


def _weight_decay(a: dict) -> tuple[float, float]:
    wd_style = a["weight_decay_incr_style"]
    if wd_style == "constant":
        for name in ("start_weight_decay", "end_weight_decay"):
            if a[name] is not None:
                raise ScheduleError(
                    f"{_flag(name)}={a[name]!r} with --weight-decay-incr-style=constant; "
                    "expected --weight-decay alone"
                )
        return check_rate("--weight-decay", a["weight_decay"]), a["weight_decay"]
    for name in ("start_weight_decay", "end_weight_decay"):
        if a[name] is None:
            raise ScheduleError(
                f"{_flag(name)} is not set with --weight-decay-incr-style={wd_style}; "
                "expected both --start-weight-decay and --end-weight-decay"
            )
        check_rate(_flag(name), a[name])
    if a["end_weight_decay"] < a["start_weight_decay"]:
        raise ScheduleError(
            f"--end-weight-decay {a['end_weight_decay']!r} is below "
            f"--start-weight-decay {a['start_weight_decay']!r}; expected "
            "--start-weight-decay <= --end-weight-decay"
        )
    return a["start_weight_decay"], a["end_weight_decay"]


def _iteration_samples(a: dict):
    """Samples per iteration in Megatron's lengths: ``--global-batch-size``, or under a
    step schedule Megatron's default for it, micro-batch x data-parallel size."""
    if a["step_batch_size_schedule"] is not None:
        for name in ("micro_batch_size", "data_parallel_size"):
            if a[name] is None:
                raise coded(
                    ScheduleError(
                        f"{_flag(name)} is not set with --step-batch-size-schedule and "
                        "--train-iters; expected it, since Megatron then measures every length "
                        "in samples of --micro-batch-size x --data-parallel-size"
                    ),
                    "usage" if name == "data_parallel_size" else "M100",
                )
        return a["micro_batch_size"] * a["data_parallel_size"]
    if a["global_batch_size"] is None:
        raise ScheduleError(
            "--global-batch-size is not set; expected it (or --micro-batch-size and "
            "--data-parallel-size, Megatron's default for it) with --train-iters, since the "
            "schedule counts samples"
        )
    return check_non_negative("--global-batch-size", a["global_batch_size"])


_SUFFIXES = {"T": 10**12, "B": 10**9, "M": 10**6, "K": 10**3}


def _megatron_number(text: str, where: str, notes: list[str], per: int = 1) -> int:
    """A number of ``--step-batch-size-schedule`` as Megatron's parser reads it: an
    optional K/M/B/T suffix (any case), the rest through a float, ``int()`` of the
    product; a note when that differs from the decimal written. Refused beyond any
    run once floor-divided by `per` (tokens per sample, for a threshold in tokens)."""
    text = text.strip().upper()
    scale = _SUFFIXES.get(text[-1:], 1)
    digits = text[:-1] if scale != 1 else text
    try:
        value = int(float(digits) * scale)
    except (ValueError, OverflowError):
        raise ScheduleError(
            f"{where}={text!r}; expected a number with an optional K, M, B or T suffix"
        ) from None
    if abs(value // per) > MAX_AMOUNT:
        unit = "" if per == 1 else f" samples (tokens // --seq-length {per})"
        raise ScheduleError(
            f"{where}={text!r} is beyond any run; expected at most {float(MAX_AMOUNT):g}{unit}"
        )
    try:
        written = Fraction(digits) * scale
    except ValueError:
        written = value
    if written != value:
        exact = (
            f"{written.numerator:,}"
            if written.denominator == 1
            else f"{float(written):,}"
            if Fraction(float(written)) == written
            else ""
        )
        notes.append(
            Finding(
                "M150",
                f"--step-batch-size-schedule: Megatron reads {shown(text)} as {value:,} "
                f"(through a float), not {exact if 0 < len(exact) <= 40 else 'as written'}",
            )
        )
    return value


def _step_schedule(text, seq_length, notes: list[str]) -> list[tuple[int, int]]:
    """Megatron's ``StepBatchsizeNumMicroBatchesCalculator`` reading of `text`: pairs
    ``THRESHOLD:BATCH`` split on spaces or commas, thresholds in tokens floor-divided
    by `seq_length` when there is one, sorted by threshold; the first must be 0,
    thresholds strictly increasing, batch sizes positive."""
    label = "--step-batch-size-schedule"
    if not isinstance(text, str):
        raise ScheduleTypeError(f"{label}={text!r}; expected a string such as '0:768 250B:1536'")
    entries = text.replace(",", " ").split()
    if not entries:
        raise ScheduleError(f"{label}={text!r} is empty; expected 'THRESHOLD:BATCH ...'")
    if len(entries) > MAX_STAGES:
        raise ScheduleError(
            f"{label} has {len(entries):,} entries; expected at most {MAX_STAGES:,}"
        )
    if seq_length is not None:
        seq_length = check_number("--seq-length", seq_length)
        if not isinstance(seq_length, int) or seq_length <= 0:
            raise ScheduleError(f"--seq-length={seq_length!r}; expected a whole number > 0")
    stages = []
    for entry in entries:
        if ":" not in entry:
            raise ScheduleError(f"{label} entry {entry!r} has no ':'; expected THRESHOLD:BATCH")
        threshold, size = entry.split(":", 1)
        threshold = _megatron_number(threshold, f"{label} threshold", notes, seq_length or 1)
        size = _megatron_number(size, f"{label} batch size", notes)
        stages.append((threshold if seq_length is None else threshold // seq_length, size))
    stages.sort(key=lambda stage: stage[0])
    unit = "samples" if seq_length is None else f"samples (tokens // --seq-length {seq_length})"
    if stages[0][0] != 0:
        raise ScheduleError(
            f"{label}={text!r} begins at {stages[0][0]:,} {unit}; expected a first threshold of 0"
        )
    for (before, _), (after, _) in zip(stages, stages[1:]):
        if after <= before:
            raise ScheduleError(
                f"{label}={text!r} has two thresholds at {after:,} {unit}; "
                "expected strictly increasing thresholds"
            )
    for _, size in stages:
        if size <= 0:
            raise ScheduleError(f"{label}={text!r} has batch size {size}; expected batch sizes > 0")
    return stages


def train_iterations(run: Run, train_iters, train_samples) -> int:
    """The iterations Megatron trains: `train_iters`, or those it counts for
    `train_samples` before training (``update_train_iters``).

    Under a step batch-size schedule (Megatron-Core 0.18 on) it counts iterations
    until the consumed samples reach `train_samples`, a last partial batch included;
    otherwise the iterations of any ramp-up, then whole batches of the global batch
    size, a partial last batch dropped. A run that ends within a ramp-up is refused,
    since Megatron's versions count its iterations differently.
    """
    if train_iters:
        return train_iters
    if run.batch_size_schedule is not None:
        return run.step_at_samples(train_samples)
    if run.rampup_batch_size is not None:
        length = run.rampup_batch_size[2]
        if not isinstance(length, numbers.Real):  # a quantity such as '20B tokens'
            length = run.samples(length, "--rampup-batch-size[2]")
        ramp_samples = run.samples_at_step(run.step_past_samples(length))
        if train_samples < ramp_samples:
            raise ScheduleError(
                f"--train-samples={train_samples} ends within the batch-size ramp-up, which "
                f"takes {ramp_samples} samples; expected at least that many, since Megatron's "
                "versions count the iterations of a shorter run differently"
            )
    step = run.step_at_samples(train_samples)  # its end may lie beyond any run
    reached = step <= run._last_step and run.samples_at_step(step) == train_samples
    iterations = step if reached else step - 1
    if iterations < 1:
        raise ScheduleError(
            f"--train-samples={train_samples} is less than one iteration of "
            f"{run.global_batch_size} samples; expected at least one iteration"
        )
    return iterations


def _check_stages_reached(run: Run, iterations: int, a: dict) -> None:
    """Refuses a step schedule that stops Megatron's training loop within the run: the
    first of `batch_stops`."""
    found = batch_stops(run, iterations, a)
    if found:
        raise found[0]


def batch_stops(run: Run, iterations: int, a: dict) -> list[ScheduleError]:
    """Where Megatron's training loop stops within the run for its batch sizes (`a`,
    Megatron's arguments by name), each an error marked with its check rule and
    iteration: a batch size not divisible by micro-batch x data-parallel size, when
    both are given (``M130``: at start-up for a constant batch size, at the iteration
    that reaches it in a ramp-up or a step schedule); a step schedule's batch size
    that falls, since its number of micro-batches must not decrease (``M131``)."""
    divisor = None
    if a["micro_batch_size"] is not None and a["data_parallel_size"] is not None:
        divisor = a["micro_batch_size"] * a["data_parallel_size"]
    found = []
    stretches = run.stretches()
    sizes = [size for _, _, size in stretches]
    where = "--step-batch-size-schedule" if run.batch_size_schedule else "the batch-size ramp-up"
    for index, (step, _, size) in enumerate(stretches):
        if step >= iterations:
            break
        if divisor is not None and size % divisor:
            message = (
                f"{where} reaches batch size {size} at iteration {step}, not a multiple of "
                f"--micro-batch-size x --data-parallel-size = {divisor}; expected multiples, "
                "since Megatron stops there"
            )
            if not run.batch_size_schedule and run.rampup_batch_size is None:  # constant
                message = (
                    f"--global-batch-size {size} is not a multiple of --micro-batch-size x "
                    f"--data-parallel-size = {divisor}; expected a multiple, since Megatron "
                    "refuses it at start-up"
                )
            found.append(
                coded(
                    ScheduleError(message),
                    "M130",
                    step,
                )
            )
            break
        if index and size < sizes[index - 1]:
            found.append(
                coded(
                    ScheduleError(
                        f"--step-batch-size-schedule falls from batch size {sizes[index - 1]} "
                        f"to {size} at iteration {step}; expected no fall within the run, "
                        "since Megatron stops when its number of micro-batches decreases"
                    ),
                    "M131",
                    step,
                )
            )
            break
    return found


def _early_end(schedule: Schedule, a: dict, scale: int) -> list[Finding]:
    """Where the warmup and the decay really end, in iterations, when a step schedule
    moves them from where the flags put them (at `scale` samples per iteration)."""
    run = schedule.run
    moved = []
    if schedule.lr_warmup_steps > 0:
        ends, meant = (
            run.step_at_samples(schedule.lr_warmup_steps),
            math.ceil(schedule.lr_warmup_steps / scale),
        )
        if ends != meant:
            moved.append(("S107", f"the warmup ends at iteration {ends:,}, not {meant:,}", ends))
    if schedule.lr_decay_style == "inverse-square-root":
        # Megatron's rate drops to --min-lr once the samples pass the decay length.
        ends = run.step_past_samples(schedule.lr_decay_steps)
        meant = math.floor(schedule.lr_decay_steps / scale) + 1
        if ends != meant:
            moved.append(
                (
                    "S108",
                    f"the learning rate drops to --min-lr at iteration {ends:,}, not {meant:,}",
                    ends,
                )
            )
    elif schedule.lr_decay_style != "constant":
        ends, meant = (
            run.step_at_samples(schedule.lr_decay_steps),
            math.ceil(schedule.lr_decay_steps / scale),
        )
        if ends != meant:
            moved.append(
                (
                    "S108",
                    f"the learning rate reaches --min-lr at iteration {ends:,}, not {meant:,}",
                    ends,
                )
            )
    if not moved:
        return []
    # One line each: Megatron measures the schedule in samples of its --global-batch-size
    # default (--micro-batch-size x --data-parallel-size), while each iteration consumes
    # the schedule's batch size.
    return [
        Finding(
            code,
            f"--step-batch-size-schedule with --train-iters counts samples of micro-batch x "
            f"data-parallel ({scale}): {item} (of {a['train_iters']:,})",
            step,
        )
        for code, item, step in moved
    ]
