"""The text forms of a conversion (a TOML file, phases, Megatron's flags line), the distance
of two rates in ulps, and the ``paramsched convert`` command's arguments.

Examples:
    >>> int(ulps([1.0], [1.0000000000000002])[0])
    1
    >>> print(toml_text({"hf": {"name": "linear", "scheduler_specific_kwargs": {}}}), end="")
    [hf]
    name = "linear"
    scheduler_specific_kwargs = {}
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from fractions import Fraction

import numpy as np

from ..errors import ScheduleError

TARGETS = ("megatron", "hf", "toml", "torchtitan", "olmo_core")
MAX_ULPS = 1000  # a larger difference is another schedule, not a rounding


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_text(data: dict) -> str:
    """`data` (tables of numbers, strings, lists and inline tables) as TOML."""

    def key(name) -> str:
        return name if _BARE.fullmatch(name) else json.dumps(name)

    def value(v) -> str:
        if isinstance(v, dict):
            inner = ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None)
            return "{ " + inner + " }" if inner else "{}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        return repr(v) if isinstance(v, (int, float)) else json.dumps(v)

    tables = []
    for name, table in sorted(data.items(), key=lambda item: item[0] != "run"):
        lines = [f"[{key(name)}]"]
        lines += [f"{key(k)} = {value(v)}" for k, v in table.items() if v is not None]
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def phases_file(plan) -> dict:
    """`plan` (`paramsched.formats.convert.Plan`) as a schedule file's tables: ``[run]`` and ``[lr]`` phases, in samples."""
    end = f"{plan.decay} samples"
    phases = []
    if plan.warmup:
        phases.append({"shape": "linear", "to": "max_lr", "until": f"{plan.warmup} samples"})
    if plan.style == "WSD":
        phases.append({"shape": "constant", "until": f"{plan.decay - plan.wsd} samples"})
        phases.append({"shape": plan.wsd_style, "to": "min_lr", "until": end})
    elif plan.style == "constant":
        phases.append({"shape": "constant", "until": f"{plan.total} samples"})
    else:
        phases.append({"shape": plan.style, "to": "min_lr", "until": end})
    run = {"global_batch_size": plan.batch or 1, "rampup_batch_size": plan.ramp}
    data = {"run": {**run, "total": f"{plan.total} samples"},
            "lr": {"init_lr": plan.init_lr, "max_lr": plan.max_lr, "min_lr": plan.min_lr,
                   "phases": phases}}  # fmt: skip
    if plan.wd is not None:
        start, end_wd, style, until = plan.wd
        data["wd"] = {"start_wd": start, "end_wd": end_wd, "style": style,
                      "until": f"{until} samples"}  # fmt: skip
    return data


def flags_text(flags: dict) -> str:
    """Megatron's flags, by name, as one line of ``--flag value`` words (a list's
    values one after another)."""
    words = []
    for name, value in flags.items():
        words.append("--" + name.replace("_", "-"))
        words += [str(v) for v in value] if isinstance(value, list) else [repr(value)]
    return " ".join(w.strip("'") for w in words)


def read_flags(text: str):
    """Megatron's flags `text` as paramsched's Megatron reader reads a command line."""
    from .megatron import add_megatron_flags, read_megatron_flags

    parser = argparse.ArgumentParser(add_help=False)
    add_megatron_flags(parser)
    given = {k: v for k, v in vars(parser.parse_args(text.split())).items() if v is not None}
    return read_megatron_flags(given)[0]


def ulps(a, b) -> np.ndarray:
    """How many doubles lie from `a` to `b` (arrays), counted across zero."""

    def ordered(x):
        bits = np.asarray(x, dtype=np.float64).view(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFFFFFFFFFF), bits)

    return np.abs(ordered(a) - ordered(b))


def ulps_text(count) -> str:
    """``"1 ulp"``, ``"3 ulps"``."""
    return f"{int(count)} ulp" + "s" * (int(count) != 1)


def ulps_allowed(text: str) -> int:
    """``--within-ulps``: a whole number from 0 to `MAX_ULPS`."""
    if not re.fullmatch(r"[0-9]{1,7}", text) or int(text) > MAX_ULPS:
        raise argparse.ArgumentTypeError(
            f"{text!r}; expected a whole number of ulps from 0 to {MAX_ULPS} "
            "(a larger difference is another schedule)"
        )
    return int(text)


def add_convert(commands) -> None:
    """Adds ``convert`` to the subcommands `commands` of the ``paramsched`` parser."""
    convert_ = commands.add_parser(
        "convert",
        help="write a schedule as Megatron's flags, transformers' arguments, a schedule file "
        "or a [torchtitan] table",
        description="Writes the schedule FILE as Megatron's flags (--to megatron), the "
        "arguments of transformers' get_scheduler and the optimizer's lr as JSON (--to hf), "
        "a schedule file (--to toml: phases where they give the same rates, else the "
        "source's own table), torchtitan's lr_scheduler fields, steps and lr as a [torchtitan] "
        "table (--to torchtitan), or an [olmo_core] table (--to olmo_core), only if the target's "
        "learning rate after every optimizer step "
        "of the run equals the source's with ==; otherwise it refuses, naming the first step "
        "that differs or what the target cannot express.",
        epilog="examples: paramsched convert hf.toml --to megatron --within-ulps 1;  "
        "paramsched convert megatron.toml --to hf --out hf.json",
    )
    convert_.add_argument("file", help="a schedule file (TOML)")
    convert_.add_argument("--to", required=True, choices=TARGETS, help="the target")
    convert_.add_argument("--out", help="write the configuration to this file, not stdout")
    convert_.add_argument(
        "--within-ulps",
        type=ulps_allowed,
        metavar="N",
        help=f"accept rates within N ulps of the source's (0 to {MAX_ULPS}), with one warning",
    )


def judge(name: str, expected: np.ndarray, got: np.ndarray, within_ulps: int | None) -> None:
    """Refuses the target `name` at the first step where its rates `got` are more than
    `within_ulps` (None: 0) ulps from the source's `expected`; logs one WARNING with the
    largest difference when they are apart but within it."""
    apart = ulps(expected, got)
    worst = int(apart.max()) if len(apart) else 0
    if worst > (within_ulps or 0):
        n = int(np.flatnonzero(apart > (within_ulps or 0))[0])
        raise ScheduleError(
            f"{name} does not run this schedule: at step {n} its lr is {float(got[n])!r}, the "
            f"source's {float(expected[n])!r} ({ulps_text(apart[n])} apart); nothing written"
        )
    if worst:
        n = int(np.argmax(apart))
        logging.getLogger("paramsched.convert").warning(
            "%s runs this schedule within %s: the largest difference is at step %d (%r, the "
            "source's %r)", name, ulps_text(worst), n, float(got[n]), float(expected[n]))  # fmt: skip


def whole_steps(plan, refuse) -> dict:
    """The plan's lengths (total, decay, warmup, wsd) in optimizer steps of its batch, or
    `refuse(what)` for the first that is no whole number of steps."""
    g, steps = plan.batch or 1, {}
    for name in ("total", "decay", "warmup", "wsd"):
        value = getattr(plan, name) or 0
        if Fraction(value) % g:
            raise refuse(f"{name} of {value!r} samples at {g} per step (it counts whole steps)")
        steps[name] = int(value // g)
    return steps
