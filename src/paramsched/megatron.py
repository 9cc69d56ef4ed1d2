"""Megatron's command-line arguments, turned into a `Schedule` as Megatron turns them.

Megatron's training loop steps the scheduler by the global batch size, so its
schedule counts samples: in iteration-based training the iteration counts are
multiplied by ``--global-batch-size``; in sample-based training they are used
as they are. ``--lr-warmup-fraction`` is a fraction of the decay length and may
give a fractional warmup.
"""

from __future__ import annotations

from .errors import ScheduleError, check_non_negative, check_number
from .schedule import Schedule
from .units import Run

#: Megatron's defaults for the arguments that have one.
MEGATRON_DEFAULTS = {
    "lr": None,
    "min_lr": 0.0,
    "lr_warmup_init": 0.0,
    "lr_warmup_iters": 0,
    "lr_warmup_samples": 0,
    "lr_warmup_fraction": None,
    "lr_decay_iters": None,
    "lr_decay_samples": None,
    "lr_decay_style": "linear",
    "lr_wsd_decay_style": "exponential",
    "lr_wsd_decay_iters": None,
    "lr_wsd_decay_samples": None,
    "train_iters": None,
    "train_samples": None,
    "global_batch_size": None,
    "weight_decay": 0.01,
    "start_weight_decay": None,
    "end_weight_decay": None,
    "weight_decay_incr_style": "constant",
    "seq_length": None,
    "rampup_batch_size": None,
}


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
    else:
        for name in ("start_weight_decay", "end_weight_decay"):
            if a[name] is None:
                raise ScheduleError(
                    f"{_flag(name)} is not set with --weight-decay-incr-style={wd_style}; "
                    "expected both --start-weight-decay and --end-weight-decay"
                )
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
        lr_warmup_steps = a["lr_warmup_fraction"] * lr_decay_steps
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
