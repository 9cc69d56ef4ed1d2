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

from dataclasses import dataclass

from .errors import ScheduleError, check_non_negative, check_number, check_rate
from .schedule import LR_DECAY_STYLES, WD_INCR_STYLES, WSD_DECAY_STYLES, Schedule
from .units import Run


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
    MegatronFlag("lr_warmup_fraction", float, None,
                 "warmup length as a fraction of the decay length (default none)"),
    MegatronFlag("lr_decay_iters", int, None,
                 "decay length in iterations (default --train-iters)"),
    MegatronFlag("lr_decay_samples", int, None,
                 "decay length in samples (default --train-samples)"),
    MegatronFlag("train_iters", int, None,
                 "training length in iterations (default none; this or --train-samples)"),
    MegatronFlag("train_samples", int, None,
                 "training length in samples (default none; this or --train-iters)"),
    MegatronFlag("lr_decay_style", LR_DECAY_STYLES, "linear",
                 "shape of the decay (default linear)"),
    MegatronFlag("lr_wsd_decay_style", WSD_DECAY_STYLES, "exponential",
                 "shape of the WSD anneal (default exponential)"),
    MegatronFlag("lr_wsd_decay_iters", int, None,
                 "length of the WSD anneal in iterations (default none; WSD needs it)"),
    MegatronFlag("lr_wsd_decay_samples", int, None,
                 "length of the WSD anneal in samples (default none; WSD needs it)"),
    MegatronFlag("weight_decay", float, 0.01, "constant weight decay (default 0.01)"),
    MegatronFlag("start_weight_decay", float, None,
                 "first weight decay of a linear or cosine increment (default none)"),
    MegatronFlag("end_weight_decay", float, None,
                 "last weight decay of a linear or cosine increment (default none)"),
    MegatronFlag("weight_decay_incr_style", WD_INCR_STYLES, "constant",
                 "shape of the weight decay's increment (default constant)"),
    MegatronFlag("global_batch_size", int, None,
                 "samples per iteration (default none; paramsched table assumes 1)"),
    MegatronFlag("rampup_batch_size", str, None,
                 "batch-size ramp-up: start, increment, length in samples or '20B tokens' "
                 "(default none)",
                 metavar=("START", "INCREMENT", "RAMP_LENGTH")),
    MegatronFlag("seq_length", int, None, "tokens per sample (default none)"),
)

#: Megatron's defaults, by argument name (None: unset); taken from `MEGATRON_FLAGS`.
MEGATRON_DEFAULTS: dict[str, object] = {flag.name: flag.default for flag in MEGATRON_FLAGS}


def add_megatron_flags(parser) -> None:
    """Adds every flag of `MEGATRON_FLAGS` to `parser` (an argparse parser or group).

    A flag not given parses as None, not as Megatron's default, so that a caller
    can tell which flags were given; `from_megatron_args` fills in the defaults.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_megatron_flags(parser)
        >>> options = parser.parse_args(["--lr", "3e-4", "--train-samples", "1000"])
        >>> options.lr, options.train_samples, options.min_lr
        (0.0003, 1000, None)
    """
    for flag in MEGATRON_FLAGS:
        if flag.metavar is not None:
            parser.add_argument(flag.option, type=flag.kind, nargs=len(flag.metavar),
                                metavar=flag.metavar, help=flag.help)
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

    Args:
        args: An object with Megatron's argument names as attributes (an
            ``argparse.Namespace``, say); a missing attribute takes Megatron's default.

    Returns:
        A schedule whose steps are samples, as Megatron's scheduler counts them.

    Raises:
        ScheduleError: an argument is missing, contradicts another, or is invalid;
            the message names the flag.
    """
    a = {name: getattr(args, name, default) for name, default in MEGATRON_DEFAULTS.items()}
    if a["lr"] is None:
        raise ScheduleError("--lr is not set; expected the peak learning rate")
    for name in ("lr", "min_lr", "lr_warmup_init"):  # checked here to name the flag
        check_rate(_flag(name), a[name])
    for name in ("train_iters", "train_samples"):
        if a[name] is not None and check_number(_flag(name), a[name]) <= 0:
            raise ScheduleError(f"{_flag(name)}={a[name]!r}; expected a number > 0")
    if a["train_iters"] and a["train_samples"]:
        raise ScheduleError(
            f"--train-iters={a['train_iters']!r} and --train-samples={a['train_samples']!r} "
            "are both set; expected one of them"
        )
    wd_style = a["weight_decay_incr_style"]
    if wd_style == "constant":
        for name in ("start_weight_decay", "end_weight_decay"):
            if a[name] is not None:
                raise ScheduleError(
                    f"{_flag(name)}={a[name]!r} with --weight-decay-incr-style=constant; "
                    "expected --weight-decay alone"
                )
        start_wd = end_wd = a["weight_decay"]
        check_rate("--weight-decay", start_wd)
    else:
        for name in ("start_weight_decay", "end_weight_decay"):
            if a[name] is None:
                raise ScheduleError(
                    f"{_flag(name)} is not set with --weight-decay-incr-style={wd_style}; "
                    "expected both --start-weight-decay and --end-weight-decay"
                )
            check_rate(_flag(name), a[name])
        start_wd, end_wd = a["start_weight_decay"], a["end_weight_decay"]

    if a["train_iters"] and a["rampup_batch_size"] is not None:
        raise ScheduleError(
            f"--rampup-batch-size={a['rampup_batch_size']!r} with --train-iters; expected "
            "--train-samples, as Megatron requires for a batch-size ramp-up"
        )
    if a["train_iters"]:
        unit, scale = "iters", a["global_batch_size"]
        if scale is None:
            raise ScheduleError(
                "--global-batch-size is not set; expected it with --train-iters, "
                "since the schedule counts samples"
            )
        scale = check_non_negative("--global-batch-size", scale)
    elif a["train_samples"]:
        unit, scale = "samples", 1
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
        if a[f"lr_warmup_{unit}"]:
            raise ScheduleError(
                f"--lr-warmup-fraction={a['lr_warmup_fraction']!r} and "
                f"--lr-warmup-{unit}={a[f'lr_warmup_{unit}']!r} are both set; expected one"
            )
        lr_warmup_steps = check_non_negative("--lr-warmup-fraction",
                                             a["lr_warmup_fraction"]) * lr_decay_steps
    else:
        lr_warmup_steps = steps("lr_warmup")
    wsd_decay_steps = steps("lr_wsd_decay")
    if a["lr_decay_style"] == "WSD" and wsd_decay_steps is None:
        raise ScheduleError(
            f"--lr-wsd-decay-{unit} is not set with --lr-decay-style=WSD; "
            "expected the length of the final anneal"
        )
    try:
        rampup = a["rampup_batch_size"]
        if rampup is not None and not isinstance(rampup, (str, bytes)):
            rampup = [_megatron_int(f"--rampup-batch-size[{i}]", v) if i < 2 else
                      _megatron_ramp_length(v) for i, v in enumerate(rampup)]
        run = Run(global_batch_size=a["global_batch_size"], seq_length=a["seq_length"],
                  rampup_batch_size=rampup, total=f"{train} samples")
        return Schedule(
            init_lr=a["lr_warmup_init"],
            max_lr=a["lr"],
            min_lr=a["min_lr"],
            lr_warmup_steps=lr_warmup_steps,
            lr_decay_steps=lr_decay_steps,
            lr_decay_style=a["lr_decay_style"],
            start_wd=start_wd,
            end_wd=end_wd,
            wd_incr_steps=train,
            wd_incr_style=wd_style,
            wsd_decay_steps=wsd_decay_steps,
            lr_wsd_decay_style=a["lr_wsd_decay_style"],
            run=run,
        )
    except ScheduleError as error:
        raise type(error)(f"from Megatron's arguments: {error}") from None
