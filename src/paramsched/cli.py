"""The ``paramsched`` command.

``paramsched table`` prints the learning rate and weight decay a Megatron run
would use, from Megatron's own flags, at the schedule's boundaries and at evenly
spaced iterations. ``paramsched preview`` shows any schedule (a file, a recipe,
or Megatron's flags) as a table of phases, points, a plot and a CSV; both take
the flags of `paramsched.megatron.MEGATRON_FLAGS`. ``paramsched compare`` puts two
or more schedules (files and recipes, in the order given) side by side: totals,
peak and final lr, the area under the lr curve, the first step where each departs
from the first, and optionally their lr curves overlaid in one plot. ``paramsched
recipes`` lists the built-in recipes. Errors are one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from fractions import Fraction
from pathlib import Path

from . import __version__
from .check.command import KeptNotes, add_check
from .errors import ScheduleError
from .formats._convert_io import add_convert
from .formats.megatron import (
    MEGATRON_DEFAULTS,
    MEGATRON_FLAGS,
    add_megatron_flags,
    read_megatron_flags,
)
from .predict import cli as predict_cli
from .preview import LISTED_STEPS

logger = logging.getLogger(__name__)

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


MAX_POINTS = 10_000  # evenly spaced rows `paramsched table` shows at most
HTML_HELP = (
    "write one self-contained page (offline): every curve on a shared x axis, steps, "
    "samples or tokens, the exact values under the mouse, zoom (paramsched.preview.html)"
)


class UsageError(Exception):
    """A command-line mistake, reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its errors raised as `UsageError`s.

    With ``interleaved=True`` (``paramsched compare``) the positionals (FILEs) may come
    among the options and keep their order with them: argparse would fill a positional
    once, from the words before the first option after it, and leave later ones over
    (so ``A --recipe R B`` would lose B's place). Such a parser first writes each
    positional word as the hidden option ``--file=WORD`` (a word is positional when it
    does not start with a dash, follows ``--``, and is not the value of an option that
    takes one), so that one `_InOrder` action sees every schedule in the order given.
    No parser takes an abbreviated option (``--train-iter`` is refused, with the flag
    meant): a pre-pass has to know which options take a value, and a launch line of
    Megatron's is read by exact names, as Megatron reads it.
    """

    def __init__(self, *args, interleaved: bool = False, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)
        self.interleaved = interleaved

    def parse_known_args(self, args=None, namespace=None):
        if self.interleaved and args is not None:
            args = self._positionals_as_options(list(args))
        return super().parse_known_args(args, namespace)

    def _positionals_as_options(self, args: list[str]) -> list[str]:
        written, takes_value, only_positionals = [], False, False
        for word in args:
            if only_positionals or not (takes_value or word.startswith("-")):
                written.append(f"--file={word}")
            elif takes_value:
                written.append(word)
                takes_value = False
            elif word == "--":
                only_positionals = True
            else:
                action = self._option_string_actions.get(word)
                takes_value = action is not None and action.nargs is None
                written.append(word)
        return written

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


class _InOrder(argparse.Action):
    """Appends ``("file", FILE)`` for ``--file`` (the positionals, see `_Parser`) and
    ``("recipe", NAME)`` for ``--recipe`` to one list, so that `paramsched compare`
    keeps the schedules in the order of the command line."""

    def __call__(self, parser, namespace, values, option_string=None):
        kind = "recipe" if option_string == "--recipe" else "file"
        given = values if isinstance(values, list) else [values]
        setattr(
            namespace,
            self.dest,
            [*(getattr(namespace, self.dest) or []), *((kind, value) for value in given)],
        )


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
        "from Megatron's flags (same names, meanings and defaults; the same flags as "
        "paramsched preview). A whole launch line may be given: flags that do not affect the "
        "schedule are ignored with their values, and counted in a note. Without "
        "--global-batch-size (or --micro-batch-size and --data-parallel-size) an iteration "
        "of --train-iters is one sample. With "
        "--train-samples the table runs for the iterations Megatron trains: those whose "
        "samples fit in --train-samples (a partial last batch is dropped), counted with "
        "any --rampup-batch-size; a run that ends within the ramp-up is refused, since "
        "Megatron's versions count its iterations differently. With no flags it shows a "
        f"built-in example: {EXAMPLE_FLAGS}. Given a schedule FILE (TOML) or --recipe instead "
        "of flags, it lists the values at the schedule's boundaries (the phases of lr, weight "
        "decay and every scheduled value, batch-size changes) and at evenly spaced points, a "
        "column for each value; a run whose clock counts tokens is listed in tokens.",
        epilog="examples: paramsched table --lr 3e-4 --min-lr 3e-5 --train-iters 10000 "
        "--lr-warmup-iters 500 --lr-decay-style cosine --global-batch-size 256;  paramsched "
        "table --lr 3e-4 --train-samples 2560000 --lr-warmup-samples 128000 "
        "--global-batch-size 256 --rampup-batch-size 64 64 500000;  paramsched table "
        "schedule.toml --points 20",
    )
    table.add_argument("file", nargs="?", help="a schedule file (TOML), instead of flags")
    table.add_argument(
        "--recipe", help="a built-in recipe (see: paramsched recipes), instead of flags"
    )
    _add_megatron_flags(table)
    table.add_argument(
        "--points",
        type=int,
        default=10,
        help="evenly spaced iterations to show besides the boundaries (default 10)",
    )
    _add_preview(commands)
    _add_compare(commands)
    add_check(commands)
    predict_cli.add_commands(commands)
    add_convert(commands)
    commands.add_parser(
        "recipes",
        help="list the built-in recipes",
        description="Lists the recipes shipped with paramsched, each with its source.",
    )
    parser.commands = commands.choices  # each command's parser, by name
    return parser


def _add_preview(commands) -> None:
    preview = commands.add_parser(
        "preview",
        help="show a schedule before a run: phases, totals, points, plot, CSV",
        description="Shows a schedule before the run: a table of its phases in steps, "
        "samples and tokens, its totals, its values at chosen points (--at), a plot (--out) "
        "and the whole curve (--csv). The schedule comes from a TOML FILE, a built-in "
        "--recipe, or Megatron's own flags (a whole launch line, as paramsched table takes "
        "it). The value at step N is what the scheduler holds "
        "after N optimizer steps, the value Megatron logs at iteration N.",
        epilog="examples: paramsched preview --recipe deepseek-v3 --at '10T tokens' --out "
        "schedule.png --x tokens;  paramsched preview --lr 3e-4 --min-lr 3e-5 --train-iters "
        "10000 --lr-warmup-iters 500 --lr-decay-style cosine --global-batch-size 256",
    )
    preview.add_argument("file", nargs="?", help="a schedule file (TOML)")
    preview.add_argument("--recipe", help="a built-in recipe (see: paramsched recipes)")
    preview.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="QUANTITY",
        help="a point to show: '2000 steps', '1.5M samples', '10T tokens', '50%%' (repeatable)",
    )
    preview.add_argument(
        "--json",
        action="store_true",
        help="print the --at points (or the phase ends) as JSON instead",
    )
    preview.add_argument(
        "--csv",
        metavar="FILE",
        help="write step, samples, tokens, lr, wd "
        "and each scheduled value for every step (tokens alone on a token "
        "clock)",
    )
    preview.add_argument(
        "--out", metavar="PNG", help="write a plot of lr, weight decay and each scheduled value"
    )
    preview.add_argument("--html", metavar="FILE", help=HTML_HELP)
    preview.add_argument(
        "--x",
        choices=("steps", "samples", "tokens"),
        default=None,
        help="the plot's x axis (default steps; samples for a run without a batch size, "
        "tokens on a token clock)",
    )
    predict_cli.add_law_option(preview)
    _add_megatron_flags(preview)


def _add_compare(commands) -> None:
    compare = commands.add_parser(
        "compare",
        interleaved=True,
        help="compare schedules: steps, peak and final lr, area, where each departs; plot",
        description="Prints one row per schedule: its total steps, samples and tokens, peak "
        "and final lr, the area under the lr curve (the sum over optimizer steps of the rate "
        "each used), and the first step at which its lr differs (!=) from the first "
        "schedule's, comparing the value after n optimizer steps of each run, over the steps "
        "both runs have ('never' if it does not differ there). Each schedule is a FILE "
        "(TOML; a branch file too) or --recipe NAME, in the order of the command line; at "
        "least two. Runs are compared step by step, so each needs a global_batch_size and "
        f"at most {LISTED_STEPS:,} steps.",
        epilog="examples: paramsched compare --recipe minicpm-wsd cooldown.toml;  paramsched "
        "compare a.toml --recipe llama2-7b b.toml --out compare.png --x tokens",
    )
    compare.add_argument(
        "schedules", nargs="*", action=_InOrder, metavar="FILE", help="a schedule file (TOML)"
    )
    compare.add_argument("--file", dest="schedules", action=_InOrder, help=argparse.SUPPRESS)
    compare.add_argument(
        "--recipe",
        dest="schedules",
        action=_InOrder,
        metavar="NAME",
        help="a built-in recipe (see: paramsched recipes); repeatable, and "
        "taken in order with the FILEs",
    )
    compare.add_argument(
        "--json",
        action="store_true",
        help="print the rows as JSON instead (keys name, total_steps, "
        "peak_lr, final_lr, area, diverges_at_step)",
    )
    compare.add_argument("--out", metavar="PNG", help="write a plot of the lr curves overlaid")
    compare.add_argument("--html", metavar="FILE", help=HTML_HELP)
    compare.add_argument(
        "--x",
        choices=("steps", "samples", "tokens"),
        default="steps",
        help="the plot's x axis (default steps)",
    )
    predict_cli.add_law_option(compare)


def _add_megatron_flags(parser: argparse.ArgumentParser) -> None:
    add_megatron_flags(
        parser.add_argument_group("Megatron's scheduling flags (same meanings and defaults)")
    )


def _preview(options: argparse.Namespace) -> str:
    from . import preview
    from .preview import html
    from .recipe import load_schedule, recipe_path

    flags = _given_megatron_flags(options)
    _check_other_flags(options, "preview", from_flags=bool(flags))
    sources = [options.file is not None, options.recipe is not None, bool(flags)]
    if sum(sources) != 1:
        raise UsageError(
            "paramsched preview: error: expected one schedule: a FILE, "
            "--recipe NAME, or Megatron's flags (--lr ... --train-iters ...)"
        )
    if options.file == "":
        raise ScheduleError("FILE='' is empty; expected a schedule file (TOML)")
    outputs = {
        flag: path
        for flag, path in (("--csv", options.csv), ("--out", options.out), ("--html", options.html))
        if path is not None
    }
    if options.json and outputs:
        raise UsageError(
            f"paramsched preview: error: --json with {' and '.join(outputs)}; "
            "expected --json alone (it prints the points as JSON, nothing else)"
        )
    _check_outputs(
        outputs, {} if options.file is None else {options.file: "the schedule FILE"}
    )  # before any work
    predict_cli.check_law_options(options)
    if options.file is not None:
        schedule, title = load_schedule(options.file), options.file
    elif options.recipe is not None:
        schedule, title = load_schedule(recipe_path(options.recipe)), f"recipe {options.recipe}"
    else:
        schedule = _megatron_schedule(flags)
        title = "Megatron flags: " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in flags.items()
        )
    _warn_by_the_rules(schedule, "iteration" if flags else "step")
    if options.json:
        points = (
            [preview.at(schedule, q) for q in options.at]
            if options.at
            else preview.phase_ends(schedule)
        )
        return json.dumps(points, indent=2)
    lines = [preview.table(schedule, title)]
    if options.at:
        lines += ["", *preview.point_lines(schedule, options.at)]
    if options.law is not None:
        lines += predict_cli.law_lines(options, [(title, schedule)])
    x_unit = options.x or preview.default_x(schedule)
    if options.out is not None:  # every output checked before any is written
        preview.check_plot(schedule, options.out, x_unit)
    if options.html is not None:
        html.check_html([(title, schedule)], options.html, options.x)
    writers = {
        "--csv": lambda path: preview.write_csv(schedule, path),
        "--out": lambda path: (
            preview.plot(schedule, path, x_unit, title)
            if options.law is None
            else predict_cli.plot_with_law(options, [(title, schedule)], path, title)
        ),
        "--html": lambda path: html.write_html(schedule, path, title, options.x, _law(options)),
    }
    results = _write_outputs(outputs, writers)
    if options.csv is not None:
        lines.append(f"\nwrote {results['--csv']:,} rows to {options.csv}")
    if options.out is not None:
        lines.append(f"wrote the plot to {options.out}")
    if options.html is not None:
        lines.append(f"wrote the page to {options.html}")
    return "\n".join(lines)


def _law(options: argparse.Namespace):
    """The law ``--law`` names, or None."""
    return None if options.law is None else predict_cli.read_law(options.law)


def _warn_by_the_rules(schedule, word: str) -> None:
    """The check rules' warnings on `schedule` (`paramsched.check.examine`), logged as
    notes: a preview says what ``paramsched check`` would warn of, in the same words."""
    from .check import examine

    moved = "S108" in _logged_codes()
    for finding in examine(schedule, word=word, moved=moved)[1]:
        if finding.severity == "warning":
            logger.warning("%s", finding)


def _logged_codes() -> set[str]:
    """The check rules of the notes logged so far in this command."""
    for handler in logging.getLogger("paramsched").handlers:
        if isinstance(handler, KeptNotes):
            return {finding.code for finding in handler.findings}
    return set()


def _write_outputs(outputs: dict, writers: dict) -> dict:
    """Writes every output all or nothing: `outputs` maps a flag to its path (checked
    by `_check_outputs`), `writers` a flag to a function that writes a path; returns
    what each writer returned, by flag.

    Each output file is written beside itself under a temporary name, and put in place
    only when every one has been written (a pipe or a device, such as /dev/stdout, is
    written directly); an error of the system names the flag, and leaves nothing behind.
    """
    temporary = {flag: _temporary_name(path) for flag, path in outputs.items()}
    results = {}
    try:
        for flag, path in outputs.items():
            results[flag] = _writing(flag, path, writers[flag], temporary[flag] or path)
        for flag, path in outputs.items():
            if temporary[flag] is not None:
                _writing(flag, path, os.replace, temporary[flag], os.path.realpath(path))
    finally:
        for name in temporary.values():
            if name is not None and os.path.lexists(name):
                os.remove(name)
    return results


def _compare(options: argparse.Namespace) -> str:
    from . import preview
    from .preview import html
    from .recipe import load_schedule, recipe_path

    given = options.schedules or []
    if len(given) < 2:
        count = "no schedule" if not given else "one schedule"
        raise UsageError(
            f"paramsched compare: error: {count} given; expected at least two "
            "(FILEs or --recipe NAMEs)"
        )
    if ("file", "") in given:
        raise ScheduleError("FILE='' is empty; expected a schedule file (TOML)")
    outputs = {
        flag: path
        for flag, path in (("--out", options.out), ("--html", options.html))
        if path is not None
    }
    if options.json and outputs:
        raise UsageError(
            f"paramsched compare: error: --json with {' and '.join(outputs)}; expected --json "
            "alone (it prints the rows as JSON, nothing else)"
        )
    _check_outputs(
        outputs, {path: f"the schedule FILE {path!r}" for kind, path in given if kind == "file"}
    )  # before any work
    predict_cli.check_law_options(options)
    named = [
        (value, load_schedule(value))
        if kind == "file"
        else (f"recipe {value}", load_schedule(recipe_path(value)))
        for kind, value in given
    ]
    if options.out is not None:
        preview.check_compare_plot(named, options.out, options.x)
    rows = preview.comparison(named)  # refuses a run without steps, naming it
    if options.html is not None:
        html.check_html(named, options.html, options.x)
    if options.json:
        keys = ("name", "total_steps", "peak_lr", "final_lr", "area", "diverges_at_step")
        return json.dumps(
            [{key: row[key] for key in keys} for row in rows], indent=2, allow_nan=False
        )
    lines = [preview.comparison_table(rows)]
    title = "learning rates: " + ", ".join(name for name, _ in named)
    if options.law is not None:
        lines = [predict_cli.with_loss_column(lines[0], options, named)]
    if options.law is None:
        draw = lambda path: preview.plot_compare(named, path, options.x, title)  # noqa: E731
    else:
        draw = lambda path: predict_cli.plot_with_law(options, named, path, title)  # noqa: E731
    names = ", ".join(name for name, _ in named)
    page = lambda path: html.write_html(named, path, names, options.x, _law(options))  # noqa: E731
    _write_outputs(outputs, {"--out": draw, "--html": page})
    if options.out is not None:
        lines.append(f"wrote the plot to {options.out}")
    if options.html is not None:
        lines.append(f"wrote the page to {options.html}")
    return "\n".join(lines)


def _check_outputs(outputs: dict, schedule_files: dict) -> None:
    """Refuses an output file that cannot be written, before anything is done: an empty
    name, a directory, a missing or read-only directory, a read-only file, two outputs
    in one file, or one of the schedule files (`schedule_files` maps each to how the
    message names it)."""
    seen = {_same_file(path): shown for path, shown in schedule_files.items()}
    for flag, path in outputs.items():
        shown = f"{flag}={path!r}"
        if not path or "\0" in path:
            raise ScheduleError(
                f"{shown} is not a file name; expected one such as "
                f"{ {'--csv': 'schedule.csv', '--html': 'schedule.html'}.get(flag, 'schedule.png') }"
            )
        if os.path.isdir(path):
            raise ScheduleError(f"{shown} is a directory; expected a file name")
        directory = os.path.dirname(os.path.realpath(path))
        if not os.path.isdir(directory):
            problem = (
                "Not a directory" if os.path.exists(directory) else "No such file or directory"
            )
            raise ScheduleError(
                f"{shown} cannot be written: {directory}: {problem}; "
                "expected a file in an existing directory"
            )
        if not os.access(directory, os.W_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)
        ):
            raise ScheduleError(
                f"{shown} cannot be written: Permission denied; expected a file you may write"
            )
        if _same_file(path) in seen:
            raise ScheduleError(
                f"{shown} is also {seen[_same_file(path)]}; expected different files"
            )
        seen[_same_file(path)] = flag


def _same_file(path: str) -> str:
    """What `path` resolves to, to compare files by (a name holding NUL is refused
    elsewhere, and resolves to nothing)."""
    return path if "\0" in path else os.path.normcase(os.path.realpath(path))


def _temporary_name(path: str) -> str | None:
    """A name beside the file `path` names (through any symbolic link) to write it
    under first, with its extension (its format); None for a file that exists and is
    not a regular one (a pipe, a device), which is written directly."""
    target = os.path.realpath(path)
    if os.path.exists(target) and not os.path.isfile(target):
        return None
    directory, name = os.path.split(target)
    _remove_stale(directory, name)
    return os.path.join(directory, f".{name}.paramsched-{os.getpid()}{os.path.splitext(name)[1]}")


def _remove_stale(directory: str, name: str) -> None:
    """Removes what a writer of the file `name` left in `directory` when it was killed
    mid-write: its temporary files (`_temporary_name`) whose process is gone. Files of a
    process still running, and others, are left alone (on Windows, all are: a process
    cannot be asked there whether it runs)."""
    if os.name == "nt":
        return
    pattern = re.compile(
        rf"\.{re.escape(name)}\.paramsched-([0-9]+)"
        rf"{re.escape(os.path.splitext(name)[1])}"
    )
    try:
        entries = os.listdir(directory)
    except OSError:  # refused later, naming the flag
        return
    for entry in entries:
        found = pattern.fullmatch(entry)
        if found is None or int(found[1]) == os.getpid() or _running(int(found[1])):
            continue
        try:
            os.remove(os.path.join(directory, entry))
        except OSError:  # gone already, or not ours to remove
            pass


def _running(pid: int) -> bool:
    """Whether the process `pid` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except (ProcessLookupError, OverflowError):  # no such process (nor number)
        return False
    except OSError:  # another user's
        return True
    return True


def _writing(flag: str, path: str, write, *args):
    """`write(*args)`, an error of the system reported as one that names `flag`, and
    a refusal that names the temporary file (``args[0]``) made to name `path`."""
    try:
        return write(*args)
    except OSError as error:
        raise ScheduleError(
            f"{flag}={path!r} cannot be written: {error.strerror or error}"
        ) from None
    except ScheduleError as error:
        raise type(error)(str(error).replace(repr(str(args[0])), repr(path))) from None


def _check(options: argparse.Namespace) -> tuple[str, int]:
    """``paramsched check``: the report and its exit status (`paramsched.check.command`)."""
    from .check.command import check_schedule_file, ignored_codes, with_options
    from .recipe import load_schedule, recipe_path

    given = [options.file is not None, options.recipe is not None, options.megatron is not None]
    if sum(given) != 1:
        raise UsageError(
            "paramsched check: error: expected one schedule: a FILE, --recipe NAME, or "
            "--megatron followed by Megatron's arguments"
        )
    if options.data_parallel_size is not None and options.data_parallel_size <= 0:
        raise UsageError(
            f"paramsched check: error: --data-parallel-size={options.data_parallel_size}; "
            "expected a whole number > 0"
        )
    ignored_codes(options.ignore)  # checked before any work
    if options.megatron is not None:
        report = _check_megatron(options)
    elif options.file is not None:
        if options.file == "":
            raise ScheduleError("FILE='' is empty; expected a schedule file (TOML)")
        _readable(options.file)
        report = check_schedule_file(lambda: load_schedule(options.file), options.file)
    else:
        path = recipe_path(options.recipe)
        report = check_schedule_file(lambda: load_schedule(path), f"recipe {options.recipe}")
    report = with_options(report, options)
    return (report.as_json() if options.json else report.text()), report.status(options.strict)


def _convert(options: argparse.Namespace) -> str:
    """``paramsched convert``: the configuration, or where it was written."""
    from .formats.convert import convert
    from .recipe import load_schedule

    outputs = {} if options.out is None else {"--out": options.out}
    _check_outputs(outputs, {options.file: f"the schedule FILE {options.file!r}"})
    text = convert(load_schedule(options.file), options.to, options.within_ulps)
    if not outputs:
        return text.rstrip("\n")
    text += "\n" * (not text.endswith("\n"))
    _write_outputs(outputs, {"--out": lambda path: Path(path).write_text(text)})
    return f"wrote the {options.to} configuration to {options.out}"


def _readable(path: str) -> None:
    """Refuses, as a usage error, a FILE that cannot be opened (what is in it is checked)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise UsageError(f"paramsched check: error: {path}: {error.strerror or error}") from None


def _check_megatron(options: argparse.Namespace):
    """The report on the Megatron arguments after ``--megatron``: what Megatron's parser
    refuses is a finding (``M100``), as is every other finding of
    `paramsched.formats.megatron_check.check_megatron`."""
    from .check.command import Report, kept_notes, parse_in_chunks, report_on
    from .check.rules import Finding
    from .formats.megatron_check import NeedsMore, check_megatron, last_values, read_words

    source = f"Megatron arguments ({len(options.megatron):,} words)"
    parser = _Parser(prog="Megatron's argument parser", add_help=False)
    add_megatron_flags(parser)
    words, found = read_words(options.megatron, parser._option_string_actions)
    try:
        rest, others = _set_aside_other_flags(parser, words, launch_line=True, files=False)
        rest, repeated = last_values(rest, parser._option_string_actions)
        flags = vars(parse_in_chunks(parser, _attach_negatives(rest)))
    except UsageError as error:
        message = str(error).replace("Megatron's argument parser: error: ", "")
        refused = Finding("M100", f"Megatron refuses the arguments: {message}")
        return Report(source, None, [*found, refused])
    found += repeated
    own = {*options.parser._option_string_actions, "--megatron"}  # check's, after --megatron
    for flag in dict.fromkeys(flag for flag, _ in others if flag in own):
        found.append(
            Finding(
                "M101",
                f"{flag} is paramsched check's flag, not Megatron's (Megatron refuses it); "
                "expected it before --megatron",
            )
        )
    others = [(flag, values) for flag, values in others if flag not in own]
    flags = {name: value for name, value in flags.items() if value is not None}
    if "data_parallel_size" in flags:
        found.append(
            Finding(
                "M101",
                f"--data-parallel-size {flags['data_parallel_size']} is not one of Megatron's "
                "flags (Megatron refuses it; it derives the size from the world size); "
                "expected it before --megatron, as paramsched check's own",
            )
        )
    dp = options.data_parallel_size
    if dp is not None:
        if flags.get("data_parallel_size", dp) != dp:
            raise UsageError(
                f"paramsched check: error: --data-parallel-size {dp} before --megatron and "
                f"{flags['data_parallel_size']} after it; expected one value"
            )
        flags["data_parallel_size"] = dp
    try:
        with kept_notes() as notes:  # the schedule's own notes (a WSD anneal's length)
            schedule, findings = check_megatron(flags, others, options.megatron_version)
    except NeedsMore as error:
        raise UsageError(
            f"paramsched check: error: {error} (pass --data-parallel-size N)"
        ) from None
    return report_on(source, schedule, found + findings + notes.findings, "iteration")


def _recipes() -> str:
    from .recipe import recipes

    lines = []
    for recipe in recipes():
        lines += [
            f"{recipe.name}: {recipe.description}",
            f"    source: {recipe.source}",
            f"    file: {recipe.path}",
            "",
        ]
    lines.append("preview one with: paramsched preview --recipe NAME")
    return "\n".join(lines)


def _given_megatron_flags(options: argparse.Namespace) -> dict:
    """The Megatron flags given on the command line, by name."""
    return {
        flag.name: getattr(options, flag.name)
        for flag in MEGATRON_FLAGS
        if getattr(options, flag.name) is not None
    }


def _megatron_schedule(flags: dict):
    """The schedule of Megatron's scheduling flags (`flags`, by name), for every command
    alike (`paramsched.formats.megatron.read_megatron_flags`), its notes logged."""
    schedule, notes = read_megatron_flags(flags)
    for note in notes:
        logger.warning("%s", note)
    return schedule


def _set_aside_other_flags(
    parser: argparse.ArgumentParser, words: list[str], launch_line: bool, files: bool = True
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Splits the words after a command into those its `parser` reads and the flags it
    does not know, each with its values, as ``(flag, values)``; an unknown flag takes
    values only in a `launch_line` (``table`` and ``preview``), as follows.

    A launch line of Megatron's is taken whole: a flag is ``--name`` or ``--name=value``;
    the values of an unknown one are the words after it that do not start with ``--``
    (``-1`` is a value), except a word ending in ``.toml``, the schedule FILE. So a
    boolean flag (``--bf16``) takes no FILE named so. A known option keeps as many
    following words as it takes (stopping at a ``--`` word, which argparse then refuses);
    more words after its values are refused, unless one ends in ``.toml``, as Megatron
    refuses them (``--step-batch-size-schedule 0:16 2.4B:320``, a value split by the
    shell). After ``--`` every word is kept. Without `files` (Megatron's arguments
    alone, for ``check --megatron``) no word is a schedule FILE.
    """
    kept, others, index = [], [], 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            return kept + words[index - 1 :], others
        if not word.startswith("--"):
            kept.append(word)
            continue
        name = word.split("=", 1)[0]
        action = parser._option_string_actions.get(name)
        if action is not None:
            given = [word]
            taken = (
                0
                if "=" in word
                else action.nargs
                if isinstance(action.nargs, int)
                else 1
                if action.nargs in (None, "?")
                else 0
            )
            while taken and index < len(words) and not words[index].startswith("--"):
                given.append(words[index])
                index, taken = index + 1, taken - 1
            kept += given
            stray = []
            while launch_line and index < len(words) and _a_value(parser, words[index], files):
                stray.append(words[index])
                index += 1
            if stray and len(given) > 1:  # "--step-batch-size-schedule 0:16 2.4B:320 ..."
                raise UsageError(
                    f"{parser.prog}: error: unrecognized arguments: "
                    f"{' '.join(stray)} (after {' '.join(given)}, which takes "
                    f"{len(given) - 1} value{'s' if len(given) > 2 else ''}: quote a value "
                    "that holds spaces"
                    + ("; a schedule FILE's name ends in .toml)" if files else ")")
                )
            kept += stray
            continue
        values = [word.split("=", 1)[1]] if "=" in word else []
        while (
            launch_line
            and "=" not in word
            and index < len(words)
            and _a_value(parser, words[index], files)
        ):
            values.append(words[index])
            index += 1
        others.append((name, values))
    return kept, others


def _a_value(parser: argparse.ArgumentParser, word: str, files: bool = True) -> bool:
    """Whether `word`, after an unknown flag, is one of its values: not a flag (``--x``,
    or one of `parser`'s, such as ``-h``) nor, where there may be one (`files`), a
    schedule FILE (a name ending in .toml)."""
    return (
        not word.startswith("--")
        and word not in parser._option_string_actions
        and not (files and word.lower().endswith(".toml"))
    )


def _check_other_flags(options: argparse.Namespace, command: str, from_flags: bool) -> None:
    """Refuses or notes the flags `_set_aside_other_flags` set aside (``options.others``).

    Refused: a flag Megatron itself refuses (``--warmup``); a near miss of a flag
    paramsched reads (``--lr-warmup-steps``: did you mean ``--lr-warmup-iters``?), unless
    it is one of Megatron's own (`MEGATRON_LOOKALIKES`); and any unknown flag when the
    schedule is not read from Megatron's flags (`from_flags`). Otherwise the flags are
    Megatron's others, which do not change the schedule: one note counts them, and one
    more names those that give some groups rates of their own.
    """
    from .formats.megatron_check import _unit, other_flags

    others = getattr(options, "others", [])
    if not others:
        return
    known = [option for option in options.parser._option_string_actions if option.startswith("--")]
    found = other_flags(others, known, unit=_unit(vars(options)))
    for finding in found:
        if finding.code == "M101":
            raise UsageError(f"paramsched {command}: error: {finding}")
    if not from_flags:
        words = " ".join(" ".join([flag, *values]) for flag, values in others)
        why = (
            " (Megatron's other flags are taken beside its scheduling flags, --lr ... "
            "--train-iters ...)"
            if command in ("table", "preview")
            else ""
        )
        raise UsageError(f"paramsched {command}: error: unrecognized arguments: {words}{why}")
    for finding in found:
        logger.warning("%s", finding)


def _table(options: argparse.Namespace) -> str:
    if options.points > MAX_POINTS:
        raise UsageError(
            f"paramsched table: error: --points={options.points}; expected at most "
            f"{MAX_POINTS:,} (a table for people; --csv in preview writes every step)"
        )
    if options.points < 0:
        raise UsageError(
            f"paramsched table: error: --points={options.points}; expected a number >= 0"
        )
    given = _given_megatron_flags(options)
    _check_other_flags(options, "table", from_flags=bool(given))
    if options.file is not None or options.recipe is not None:
        return _table_of_a_schedule(options)
    is_example = not given
    schedule = _megatron_schedule(EXAMPLE if is_example else given)
    _warn_by_the_rules(schedule, "iteration")
    args = argparse.Namespace(**{**MEGATRON_DEFAULTS, **(EXAMPLE if is_example else given)})
    run = schedule.run
    iterations = run.step_at_samples(run.total_samples)  # where Megatron's training ends
    events = {0: "start"}

    def note(iteration: int, text: str) -> None:
        events[iteration] = f"{events[iteration]}, {text}" if iteration in events else text

    def mark(samples: float, text: str) -> None:
        note(run.step_at_samples(samples), text)

    if schedule.lr_warmup_steps > 0:
        mark(schedule.lr_warmup_steps, "warmup ends")
    if schedule.lr_decay_style == "WSD":
        # An anneal longer than the decay starts at once (Megatron's rule), so after the warmup.
        mark(
            max(schedule.lr_decay_steps - schedule.wsd_decay_steps, schedule.lr_warmup_steps),
            "anneal starts",
        )
    if schedule.lr_decay_style != "constant":
        mark(schedule.lr_decay_steps, "decay ends")
        after = run.step_past_samples(schedule.lr_decay_steps)
        if after <= iterations:
            events.setdefault(after, "after decay")
    if schedule.wd_incr_style != "constant":
        mark(schedule.wd_incr_steps, "weight decay reaches its end")
    if run.batch_size_schedule is not None:
        for step, _, size in run.stretches()[1:]:
            if step <= iterations:
                note(step, f"batch size {size}")
    note(iterations, "training ends")
    spaced = (
        {round(Fraction(iterations * k, options.points)) for k in range(options.points + 1)}
        if options.points
        else set()
    )
    rows = sorted(row for row in set(events) | spaced if row <= run._last_step)  # on the clock

    lines = []
    if is_example:
        lines.append(f"example run: {EXAMPLE_FLAGS}")
    length = f"{iterations} iterations of {run.global_batch_size} samples"
    if run.batch_size_schedule is not None:
        sizes = [size for _, size in run.batch_size_schedule]
        length = (
            f"{iterations} iterations of {sizes[0]} to {sizes[-1]} samples in {len(sizes)} stages"
        )
    elif not args.train_iters:
        if run.rampup_batch_size is not None and run.rampup_batch_size[0] != run.global_batch_size:
            length = (
                f"{iterations} iterations of {run.rampup_batch_size[0]} rising to "
                f"{run.global_batch_size} samples"
            )
    if not args.train_iters:
        length += f" (Megatron's count for --train-samples {args.train_samples})"
    lines.append(
        f"decay style {schedule.lr_decay_style}, {length}; "
        "values the scheduler holds after each iteration"
    )
    lines.append(f"{'iteration':>10} {'samples':>12} {'lr':>14} {'weight_decay':>14}  event")
    for iteration in rows:
        samples = run.samples_at_step(iteration)
        lines.append(
            f"{iteration:>10} {samples:>12} {schedule.lr(samples):>14.6e} "
            f"{schedule.wd(samples):>14.6e}  {events.get(iteration, '')}".rstrip()
        )
    return "\n".join(lines)


def _table_of_a_schedule(options: argparse.Namespace) -> str:
    """`paramsched table FILE` or ``--recipe NAME``: `paramsched.preview.timeline_table`."""
    from . import preview
    from .recipe import load_schedule, recipe_path

    if (options.file is not None) + (options.recipe is not None) + bool(
        _given_megatron_flags(options)
    ) != 1:
        raise UsageError(
            "paramsched table: error: expected one schedule: a FILE, --recipe "
            "NAME, or Megatron's flags (--lr ... --train-iters ...)"
        )
    if options.file == "":
        raise ScheduleError("FILE='' is empty; expected a schedule file (TOML)")
    if options.file is not None:
        schedule, title = load_schedule(options.file), options.file
    else:
        schedule, title = load_schedule(recipe_path(options.recipe)), f"recipe {options.recipe}"
    _warn_by_the_rules(schedule, "step")
    return preview.timeline_table(schedule, options.points, title)


#: The flags that take one number: a negative value is attached to them (`_attach_negatives`).
_NUMBER_OPTIONS = frozenset(
    [
        flag.option
        for flag in MEGATRON_FLAGS
        if flag.metavar is None and not isinstance(flag.kind, tuple)
    ]
    + ["--points"]
)


def _attach_negatives(argv: list[str]) -> list[str]:
    """`argv` with ``--lr -3e-4`` written ``--lr=-3e-4``.

    argparse reads a word that starts with a dash as a flag unless it looks like a
    negative number to it, and ``-3e-4`` does not (only ``-3`` and ``-.3`` do), so
    ``--lr -3e-4`` would fail with "expected one argument" before the value could be
    checked. Attached, the value reaches the check that names what is wrong with it.
    """
    attached, index = [], 0
    while index < len(argv):
        word = argv[index]
        if word == "--":  # the rest are positionals
            return attached + argv[index:]
        following = argv[index + 1] if index + 1 < len(argv) else None
        if (
            word in _NUMBER_OPTIONS
            and following is not None
            and following.startswith("-")
            and _is_number(following)
        ):
            attached.append(f"{word}={following}")
            index += 2
        else:
            attached.append(word)
            index += 1
    return attached


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Examples:
        >>> main(["table", "--lr", "1e-3", "--train-iters", "4", "--points", "0"])
        decay style linear, 4 iterations of 1 samples; values the scheduler holds after each iteration
         iteration      samples             lr   weight_decay  event
                 0            0   1.000000e-03   1.000000e-02  start
                 4            4   0.000000e+00   1.000000e-02  decay ends, training ends
        0
    """
    parser = _build_parser()
    notes = KeptNotes()
    logging.getLogger("paramsched").addHandler(notes)
    command = None
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        command_parser = parser.commands.get(words[0]) if words else None
        megatron_words = None
        if words and words[0] == "check" and "--megatron" in words:  # Megatron's, verbatim
            index = words.index("--megatron")
            words, megatron_words = words[:index], words[index + 1 :]
        others = []
        if command_parser is not None:  # a launch line's other flags, set aside
            rest, others = _set_aside_other_flags(
                command_parser, words[1:], words[0] in ("table", "preview")
            )
            words = [words[0], *rest]
        try:
            options = parser.parse_args(_attach_negatives(words))
        except SystemExit as exit:  # --help or --version, printed
            return 0 if exit.code is None else exit.code
        command = options.command
        if command is None:  # `paramsched` alone: the help, with the list of commands
            parser.print_help()
            return 0
        options.others, options.parser = others, command_parser
        options.megatron = megatron_words
        if command in ("compare", "recipes", "check", "fit", "predict", "optimize", "convert"):
            _check_other_flags(options, command, from_flags=False)
        run = {
            "table": _table,
            "preview": _preview,
            "compare": _compare,
            "recipes": lambda _: _recipes(),
            "check": _check,
            "fit": predict_cli.fit_command,
            "predict": predict_cli.predict_command,
            "optimize": predict_cli.optimize_command,
            "convert": _convert,
        }
        output = run[command](options)
        status = 0
        if isinstance(output, tuple):  # a command with an exit status of its own
            output, status = output
        else:
            for note in notes.findings:
                _error(f"paramsched {command}: note: {note}")
        print(output)
        return status
    except UsageError as error:
        _error(str(error))
        return 2
    except ScheduleError as error:
        _error(f"paramsched {command}: error: {error}")
        return 2
    except BrokenPipeError:  # the reader went away (`paramsched table | head -1`)
        _silence_stdout()
        _error(f"paramsched {command}: error: the output was closed before it was all written")
        return 2
    except OSError as error:
        _error(f"paramsched {command}: error: {error}")
        return 2
    finally:
        logging.getLogger("paramsched").removeHandler(notes)
    return 0


def _error(message: str) -> None:
    """`message` on stderr as one line."""
    print(" ".join(message.split("\n")), file=sys.stderr)


def _silence_stdout() -> None:
    """Points stdout at the null device, so that the interpreter's last flush of a
    closed pipe does not print a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output)
        pass
