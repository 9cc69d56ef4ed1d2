"""The ``paramsched`` command.

``paramsched table`` prints the learning rate and weight decay a Megatron run
would use, from Megatron's own flags, at the schedule's boundaries and at evenly
spaced iterations. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import sys

from . import __version__
from .errors import ScheduleError
from .megatron import MEGATRON_DEFAULTS, from_megatron_args
from .schedule import LR_DECAY_STYLES, WD_INCR_STYLES, WSD_DECAY_STYLES

#: The run `paramsched table` shows when it is given no flags.
EXAMPLE = {
    "lr": 3e-4,
    "min_lr": 3e-5,
    "train_iters": 10_000,
    "lr_warmup_iters": 500,
    "lr_decay_style": "WSD",
    "lr_wsd_decay_style": "minus_sqrt",
    "lr_wsd_decay_iters": 2_000,
    "weight_decay": 0.1,
    "global_batch_size": 256,
}

EXAMPLE_FLAGS = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in EXAMPLE.items())


class UsageError(Exception):
    """A command-line mistake, reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="paramsched",
        description="Exact learning-rate and weight-decay schedules (Megatron-Core's, and more).",
        epilog="example: paramsched table --lr 3e-4 --min-lr 3e-5 --train-iters 10000 "
        "--lr-warmup-iters 500 --lr-decay-style cosine --global-batch-size 256",
    )
    parser.add_argument("--version", action="version", version=f"paramsched {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    table = commands.add_parser(
        "table",
        help="print lr and weight decay at the boundaries and at evenly spaced iterations",
        description="Prints what Megatron's scheduler holds after each listed iteration, "
        "from Megatron's flags (same names, meanings and defaults). With no flags it "
        f"shows a built-in example: {EXAMPLE_FLAGS}.",
        epilog="example: paramsched table --lr 3e-4 --min-lr 3e-5 --train-iters 10000 "
        "--lr-warmup-iters 500 --lr-decay-style cosine --global-batch-size 256",
    )
    number = float
    table.add_argument("--lr", type=number, help="peak learning rate")
    table.add_argument("--min-lr", type=number, help="final learning rate (default 0.0)")
    table.add_argument("--lr-warmup-init", type=number, help="learning rate at step 0 (default 0.0)")
    table.add_argument("--lr-warmup-iters", type=int, help="warmup length in iterations (default 0)")
    table.add_argument("--lr-warmup-fraction", type=number,
                       help="warmup length as a fraction of the decay length")
    table.add_argument("--lr-decay-iters", type=int,
                       help="decay length in iterations (default: --train-iters)")
    table.add_argument("--train-iters", type=int, help="training length in iterations")
    table.add_argument("--lr-decay-style", choices=LR_DECAY_STYLES, help="default linear")
    table.add_argument("--lr-wsd-decay-style", choices=WSD_DECAY_STYLES,
                       help="shape of the WSD anneal (default exponential)")
    table.add_argument("--lr-wsd-decay-iters", type=int, help="length of the WSD anneal")
    table.add_argument("--weight-decay", type=number,
                       help="constant weight decay (default 0.01)")
    table.add_argument("--start-weight-decay", type=number)
    table.add_argument("--end-weight-decay", type=number)
    table.add_argument("--weight-decay-incr-style", choices=WD_INCR_STYLES,
                       help="default constant")
    table.add_argument("--global-batch-size", type=int,
                       help="samples per iteration (default 1)")
    table.add_argument("--points", type=int, default=10,
                       help="evenly spaced iterations to show besides the boundaries (default 10)")
    return parser


def _megatron_args(options: argparse.Namespace) -> tuple[argparse.Namespace, bool]:
    """Megatron's arguments from the flags given, or the example if none was."""
    given = {name: getattr(options, name) for name in MEGATRON_DEFAULTS
             if getattr(options, name, None) is not None}
    is_example = not given
    values = {**MEGATRON_DEFAULTS, "global_batch_size": 1, **(EXAMPLE if is_example else given)}
    return argparse.Namespace(**values), is_example


def _table(options: argparse.Namespace) -> str:
    if options.points < 0:
        raise UsageError(
            f"paramsched table: error: --points={options.points}; expected a number >= 0"
        )
    args, is_example = _megatron_args(options)
    schedule = from_megatron_args(args)
    batch, train_iters = args.global_batch_size, args.train_iters
    events = {0: "start"}

    def mark(samples: float, text: str) -> None:
        iteration = math.ceil(samples / batch)
        events[iteration] = f"{events[iteration]}, {text}" if iteration in events else text

    if schedule.lr_warmup_steps > 0:
        mark(schedule.lr_warmup_steps, "warmup ends")
    if schedule.lr_decay_style == "WSD":
        mark(schedule.lr_decay_steps - schedule.wsd_decay_steps, "anneal starts")
    if schedule.lr_decay_style != "constant":
        mark(schedule.lr_decay_steps, "decay ends")
        after = math.floor(schedule.lr_decay_steps / batch) + 1
        if after <= train_iters:
            events.setdefault(after, "after decay")
    if schedule.wd_incr_style != "constant":
        mark(schedule.wd_incr_steps, "weight decay reaches its end")
    mark(train_iters * batch, "training ends")
    spaced = {round(train_iters * k / options.points) for k in range(options.points + 1)} \
        if options.points else set()
    rows = sorted(set(events) | spaced)

    lines = []
    if is_example:
        lines.append(f"example run: {EXAMPLE_FLAGS}")
    lines.append(
        f"decay style {schedule.lr_decay_style}, {train_iters} iterations of "
        f"{batch} samples; values the scheduler holds after each iteration"
    )
    lines.append(f"{'iteration':>10} {'samples':>12} {'lr':>14} {'weight_decay':>14}  event")
    for iteration in rows:
        samples = iteration * batch
        lines.append(
            f"{iteration:>10} {samples:>12} {schedule.lr(samples):>14.6e} "
            f"{schedule.wd(samples):>14.6e}  {events.get(iteration, '')}".rstrip()
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _build_parser()
    try:
        options = parser.parse_args(argv)
        if options.command is None:
            parser.print_help()
            return 2
        print(_table(options))
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except ScheduleError as error:
        print(f"paramsched {options.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
