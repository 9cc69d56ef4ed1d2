"""The ``paramsched`` command.

``paramsched table`` prints the learning rate and weight decay a Megatron run
would use, from Megatron's own flags, at the schedule's boundaries and at evenly
spaced iterations. ``paramsched preview`` shows any schedule (a file, a recipe,
or Megatron's flags) as a table of phases, points, a plot and a CSV;
``paramsched recipes`` lists the built-in recipes. Errors are one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import json
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
    table.add_argument("--lr-warmup-init", type=number,
                       help="learning rate at step 0 (default 0.0)")
    table.add_argument("--lr-warmup-iters", type=int,
                       help="warmup length in iterations (default 0)")
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
    _add_preview(commands)
    commands.add_parser(
        "recipes", help="list the built-in recipes",
        description="Lists the recipes shipped with paramsched, each with its source.",
    )
    return parser


def _add_preview(commands) -> None:
    preview = commands.add_parser(
        "preview",
        help="show a schedule before a run: phases, totals, points, plot, CSV",
        description="Shows a schedule before the run: a table of its phases in steps, "
        "samples and tokens, its totals, its values at chosen points (--at), a plot (--out) "
        "and the whole curve (--csv). The schedule comes from a TOML FILE, a built-in "
        "--recipe, or Megatron's own flags. The value at step N is what the scheduler holds "
        "after N optimizer steps, the value Megatron logs at iteration N.",
        epilog="examples: paramsched preview --recipe deepseek-v3 --at '10T tokens' --out "
        "schedule.png --x tokens;  paramsched preview --lr 3e-4 --min-lr 3e-5 --train-iters "
        "10000 --lr-warmup-iters 500 --lr-decay-style cosine --global-batch-size 256",
    )
    preview.add_argument("file", nargs="?", help="a schedule file (TOML)")
    preview.add_argument("--recipe", help="a built-in recipe (see: paramsched recipes)")
    preview.add_argument("--at", action="append", default=[], metavar="QUANTITY",
                         help="a point to show: '2000 steps', '1.5M samples', '10T tokens', "
                         "'50%%' (repeatable)")
    preview.add_argument("--json", action="store_true",
                         help="print the --at points (or the phase ends) as JSON instead")
    preview.add_argument("--csv", metavar="FILE", help="write step, samples, tokens, lr, wd "
                         "for every step")
    preview.add_argument("--out", metavar="PNG", help="write a plot of lr and weight decay")
    preview.add_argument("--x", choices=("steps", "samples", "tokens"), default="steps",
                         help="the plot's x axis (default steps)")
    flags = preview.add_argument_group("Megatron's scheduling flags (same meanings and defaults)")
    for name, kind, text in MEGATRON_FLAGS:
        if name == "rampup_batch_size":
            flags.add_argument("--rampup-batch-size", nargs=3,
                               metavar=("START", "INCREMENT", "RAMP_SAMPLES"), help=text)
        elif isinstance(kind, tuple):
            flags.add_argument("--" + name.replace("_", "-"), choices=kind, help=text)
        else:
            flags.add_argument("--" + name.replace("_", "-"), type=kind, help=text)


#: Megatron's flags for scheduling, with their types: what `paramsched preview` accepts.
MEGATRON_FLAGS = [
    ("lr", float, "peak learning rate"),
    ("min_lr", float, "final learning rate (default 0.0)"),
    ("lr_warmup_init", float, "learning rate at step 0 (default 0.0)"),
    ("lr_warmup_iters", int, "warmup in iterations (default 0)"),
    ("lr_warmup_samples", int, "warmup in samples (default 0)"),
    ("lr_warmup_fraction", float, "warmup as a fraction of the decay"),
    ("lr_decay_iters", int, "decay length in iterations (default: --train-iters)"),
    ("lr_decay_samples", int, "decay length in samples (default: --train-samples)"),
    ("train_iters", int, "training length in iterations"),
    ("train_samples", int, "training length in samples"),
    ("lr_decay_style", LR_DECAY_STYLES, "default linear"),
    ("lr_wsd_decay_style", WSD_DECAY_STYLES, "the WSD anneal's shape (default exponential)"),
    ("lr_wsd_decay_iters", int, "the WSD anneal's length in iterations"),
    ("lr_wsd_decay_samples", int, "the WSD anneal's length in samples"),
    ("weight_decay", float, "constant weight decay (default 0.01)"),
    ("start_weight_decay", float, "weight decay at the start (linear or cosine style)"),
    ("end_weight_decay", float, "weight decay at the end (linear or cosine style)"),
    ("weight_decay_incr_style", WD_INCR_STYLES, "default constant"),
    ("global_batch_size", int, "samples per iteration"),
    ("rampup_batch_size", None, "Megatron's batch-size ramp-up"),
    ("seq_length", int, "tokens per sample"),
]


def _preview(options: argparse.Namespace) -> str:
    from . import preview
    from .recipe import load_schedule, recipe_path

    flags = {name: getattr(options, name) for name, _, _ in MEGATRON_FLAGS
             if getattr(options, name) is not None}
    sources = [bool(options.file), bool(options.recipe), bool(flags)]
    if sum(sources) != 1:
        raise UsageError("paramsched preview: error: expected one schedule: a FILE, "
                         "--recipe NAME, or Megatron's flags (--lr ... --train-iters ...)")
    if options.file:
        schedule, title = load_schedule(options.file), options.file
    elif options.recipe:
        schedule, title = load_schedule(recipe_path(options.recipe)), f"recipe {options.recipe}"
    else:
        schedule = from_megatron_args(argparse.Namespace(**{**MEGATRON_DEFAULTS, **flags}))
        title = "Megatron flags: " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in flags.items())
    if options.json:
        points = [preview.at(schedule, q) for q in options.at] if options.at else [
            preview.point(schedule, p.end, None if schedule.run is None or
                          schedule.run.global_batch_size is None
                          else schedule.run.step_at_samples(p.end))
            for p in preview.pieces(schedule, preview.total_samples(schedule))]
        return json.dumps(points, indent=2)
    lines = [preview.table(schedule, title)]
    if options.at:
        lines += ["", f"{'at':>16} {'step':>12} {'samples':>16} {'tokens':>18} {'lr':>13} "
                      f"{'wd':>10}"]
        for quantity in options.at:
            p = preview.at(schedule, quantity)
            lines.append(f"{quantity:>16} {preview._number(p['step']):>12} "
                         f"{preview._number(p['samples']):>16} {preview._number(p['tokens']):>18} "
                         f"{p['lr']:>13.6e} {'-' if p['wd'] is None else format(p['wd'], '.4g'):>10}")
    if options.csv:
        rows = preview.write_csv(schedule, options.csv)
        lines.append(f"\nwrote {rows:,} rows to {options.csv}")
    if options.out:
        preview.plot(schedule, options.out, options.x, title)
        lines.append(f"wrote the plot to {options.out}")
    return "\n".join(lines)


def _recipes() -> str:
    from .recipe import recipes

    lines = []
    for recipe in recipes():
        lines += [f"{recipe.name}: {recipe.description}", f"    source: {recipe.source}",
                  f"    file: {recipe.path}", ""]
    lines.append("preview one with: paramsched preview --recipe NAME")
    return "\n".join(lines)


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
        run = {"table": _table, "preview": _preview, "recipes": lambda _: _recipes()}
        print(run[options.command](options))
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except ScheduleError as error:
        print(f"paramsched {options.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # --csv or --out cannot be written
        print(f"paramsched {options.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
