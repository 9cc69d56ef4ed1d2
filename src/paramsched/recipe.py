"""Schedule files (TOML) and the recipes shipped with paramsched.

A file holds either a multi-phase schedule (``[run]``, ``[lr]``, ``[wd]``, and
``[group.KEY]`` or ``[loop.NAME]`` tables for other values; see
`paramsched.phases`) or one table of another stack's arguments, which mean
exactly what they mean to that stack: ``[megatron]`` (Megatron's flags), ``[hf]``
(transformers' ``get_scheduler``), ``[timm]`` (timm's ``create_scheduler_v2``) or
``[torchtitan]`` (torchtitan's ``lr_scheduler`` section, ``steps`` and ``lr``) or
``[olmo_core]`` (an OLMo-core scheduler class). An optional ``[recipe]`` table names
the recipe and cites its source. Every error names the file and the key.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .check.rules import Finding
from .core._curve import VALUE_PLACES
from .core.phases import PhaseSchedule
from .core.schedule import Schedule
from .errors import ScheduleError, ScheduleTypeError
from .formats.hf import read_hf
from .formats.megatron import MEGATRON_DEFAULTS, read_megatron_args
from .formats.megatron import logger as megatron_logger
from .formats.olmo_core import read_olmo_core
from .formats.timm import read_timm
from .formats.torchtitan import read_torchtitan

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_RECIPE_KEYS = ("name", "description", "source")
#: The tables that hold another stack's configuration, each read by its `formats` module.
STACK_TABLES = ("megatron", "hf", "timm", "torchtitan", "olmo_core")


@dataclass(frozen=True)
class Recipe:
    """A named schedule file shipped with paramsched, with the source it follows."""

    name: str
    description: str
    source: str
    path: Path


def schedule_from_data(data: dict) -> Schedule | PhaseSchedule:
    """The schedule a file's tables describe (without the optional ``[recipe]`` table)."""
    if not isinstance(data, dict):
        raise ScheduleTypeError(f"the schedule is of type {type(data).__name__}; expected tables")
    data = {k: v for k, v in data.items() if k != "recipe"}
    for stack in STACK_TABLES:
        if stack in data and len(data) > 1:
            others = ", ".join(sorted(k for k in data if k != stack))
            raise ScheduleError(f"a [{stack}] table comes alone; found also {others}")
    if "hf" in data:
        return read_hf(data["hf"], "hf.")
    if "timm" in data:
        return read_timm(data["timm"], "timm.")
    if "torchtitan" in data:
        return read_torchtitan(data["torchtitan"], "torchtitan.")
    if "olmo_core" in data:
        return read_olmo_core(data["olmo_core"], "olmo_core.")
    if "megatron" in data:
        if len(data) > 1:
            others = ", ".join(sorted(k for k in data if k != "megatron"))
            raise ScheduleError(f"a [megatron] table comes alone; found also {others}")
        arguments = data["megatron"]
        if not isinstance(arguments, dict):
            raise ScheduleTypeError("[megatron] is not a table; expected Megatron's arguments")
        for key in arguments:
            if key not in MEGATRON_DEFAULTS:
                close = difflib.get_close_matches(key, MEGATRON_DEFAULTS, n=1)
                raise ScheduleError(
                    f"megatron.{key} is not a scheduling argument; expected one of "
                    + ", ".join(MEGATRON_DEFAULTS)
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                )
        ramp = arguments.get("rampup_batch_size")
        if ramp is not None and not isinstance(ramp, list):  # Megatron's flag takes three
            raise ScheduleTypeError(
                f"megatron.rampup_batch_size={ramp!r} is of type "
                f"{type(ramp).__name__}; expected [start, increment, "
                "ramp length]"
            )
        return _from_megatron_table(arguments)
    return PhaseSchedule.from_dict(data)


def _as_keys(text: str) -> str:
    """`text` with Megatron's flags (``--global-batch-size``) written as the keys of a
    ``[megatron]`` table (``megatron.global_batch_size``)."""

    def key(match) -> str:
        name = match.group(1).replace("-", "_")
        return f"megatron.{name}" if name in MEGATRON_DEFAULTS else match.group(0)

    return re.sub(r"--([a-z0-9]+(?:-[a-z0-9]+)*)", key, text)


def _from_megatron_table(arguments: dict) -> Schedule:
    """`from_megatron_args` on a ``[megatron]`` table, its errors and notes naming the
    table's keys rather than Megatron's flags."""
    try:
        schedule, notes = read_megatron_args(argparse.Namespace(**arguments))
    except ScheduleError as error:
        shown = type(error)(_as_keys(str(error)))
        shown.__dict__.update(error.__dict__)  # a check rule's code and step
        raise shown from None
    for note in notes:
        note = Finding(note.code, _as_keys(note), note.step) if isinstance(note, Finding) else note
        megatron_logger.warning("%s", note)
    return schedule


MAX_FILE_BYTES = 1 << 20  # a schedule file is a few kilobytes; /dev/zero is endless
MAX_NESTING = 64  # tables, arrays and dotted keys within one another (a schedule has ~5)


def _read(path: Path) -> dict:
    """The TOML file `path` as a dict: at most `MAX_FILE_BYTES`, UTF-8 (a byte-order mark
    at its start is read as nothing, as TOML readers commonly do), nested at most
    `MAX_NESTING` deep (checked before parsing: a deeper file would exhaust the parser's
    recursion, and dotted keys take time in the square of their parts)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ScheduleError(
                f"{path}: larger than {MAX_FILE_BYTES:,} bytes; expected a schedule file (TOML)"
            )
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ScheduleError(
                f"{path}: starts with a UTF-16 byte-order mark; expected a TOML file in UTF-8"
            )
        text = data.decode("utf-8-sig")  # without a UTF-8 byte-order mark
    except FileNotFoundError:
        raise ScheduleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScheduleError(f"{path}: is a directory; expected a TOML file") from None
    except OSError as error:  # permission, a device that cannot be read, a loop of links
        raise ScheduleError(f"{path}: cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ScheduleError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at "
            f"offset {error.start}); expected a TOML file in UTF-8"
        ) from None
    deepest = _nesting(text)
    if deepest is not None:
        line, depth = deepest
        raise ScheduleError(
            f"{path}: line {line} nests {depth} levels deep; expected at most "
            f"{MAX_NESTING} (tables, arrays, inline tables and the parts of "
            "dotted keys, within one another)"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScheduleError(f"{path}: not valid TOML: {error}") from None
    except ValueError:  # Python reads no integer of more than 4300 digits
        raise ScheduleError(
            f"{path}: holds an integer of more than 4300 digits; expected "
            "numbers of at most 1e18 in size"
        ) from None


# What the nesting scan looks at: line ends, quotes, comments, brackets, dots, commas.
_TOKENS = re.compile(r"""[\n"'#\[\]{}.,]""")
_STRING_ENDS = {  # from after the opening quotes to the closing ones, lazily
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*?"""', re.S),
    "'''": re.compile(r"(?:[^']|'(?!''))*?'''", re.S),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
}


def _nesting(text: str) -> tuple[int, int] | None:
    """The first line (and its depth) where `text` nests deeper than `MAX_NESTING`, or
    None: a linear scan, before any parsing, that skips strings and comments and counts
    the levels a TOML parser builds, a table header's parts, each open array or inline
    table with the parts of the key that holds it, and the parts of a dotted key. A dot
    between two digits is a number's. Text the scan cannot follow (an unclosed string)
    is left to the parser, which refuses it."""
    header = held = key = 0  # the header's parts; the open brackets' levels; key dots
    opened: list[int] = []
    line, line_start, index = 1, True, 0
    while True:
        match = _TOKENS.search(text, index)
        if match is None:
            return None
        at, token = match.start(), match.group()
        if line_start and text[index:at].strip():
            line_start = False
        index = at + 1
        if token == "\n":
            line, line_start, key = line + 1, True, 0
            continue
        if token == "#":
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        if token in "\"'":
            quotes = token * 3 if text.startswith(token * 3, at) else token
            end = _STRING_ENDS[quotes].match(text, at + len(quotes))
            if end is None:
                return None
            index = end.end()
            if len(quotes) == 3:  # up to two quotes may end the content
                while index < len(text) and text[index] == token and index - end.end() < 2:
                    index += 1
            line += text.count("\n", at, index)
            line_start = False
            continue
        if token == "[" and line_start and not opened:  # a table header: its parts
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            header = 1 + _key_dots(text[at:end])
            if header > MAX_NESTING:
                return line, header
            index, line_start = end, False
            continue
        line_start = False
        if token in "[{":
            opened.append(key + 1)
            held, key = held + key + 1, 0
        elif token in "]}":
            held -= opened.pop() if opened else 0
            key = 0
        elif token == ",":
            key = 0
        elif not (text[at - 1 : at].isdigit() and text[at + 1 : at + 2].isdigit()):  # a key's dot
            key += 1
        depth = header + held + key + 1
        if depth > MAX_NESTING:
            return line, depth


def _key_dots(header: str) -> int:
    """The dots between the parts of a table header's key, up to its closing bracket
    (not in its quoted parts, nor in a comment after it)."""
    bare = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'", "", header)
    return bare.split("]", 1)[0].count(".")


MAX_BRANCH_DEPTH = 32  # files a branch may stand on, one on another


def load_schedule(path, _within: tuple = ()) -> Schedule | PhaseSchedule:
    """Reads a schedule file.

    A file may be a branch: a ``[branch]`` table with ``from`` (a schedule file,
    its path relative to this one and ending in ``.toml``, or the name of a
    built-in recipe) and ``at`` (the branch point, a quantity of that schedule's
    run), an ``[lr]`` table with the ``phases`` after it, optionally a ``[wd]``
    table with its own, and optionally ``[run]`` with a new ``total``. See
    `CurveSchedule.branch`.

    Returns:
        A `PhaseSchedule`, or for a ``[megatron]`` table the `Schedule` Megatron builds.

    Raises:
        ScheduleError: the file is missing or malformed, or its branches go round in
            a circle; the message names the file and the key.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ScheduleTypeError(
            f"path={path!r} is of type {type(path).__name__}; expected "
            "a schedule file's name (a str or a pathlib.Path)"
        )
    if isinstance(path, str) and ("\0" in path or not path):
        raise ScheduleError(f"{path!r} is not a file name; expected a schedule file (TOML)")
    path = Path(path)
    data = _read(path)
    try:
        if isinstance(data, dict) and "branch" in data:
            return _branch_file(path, data, _within)
        return schedule_from_data(data)
    except ScheduleError as error:
        raise type(error)(f"{path}: {error}") from None


def _real(path: Path) -> str:
    """The file `path` names, through its links; a loop of links is left as it is (its
    file cannot be read, which says so)."""
    return os.path.normcase(os.path.realpath(path))


def _branch_file(path: Path, data: dict, within: tuple) -> PhaseSchedule:
    allowed = {
        "branch": ("from", "at"),
        "run": ("total",),
        "lr": ("phases",),
        "wd": ("phases",),
        "recipe": _RECIPE_KEYS,
    }
    values = {}  # [group.KEY] and [loop.NAME]: phases after the branch point
    for table, value in data.items():
        if table not in allowed and table not in VALUE_PLACES:
            raise ScheduleError(
                f"a branch file has a [{table}] table; expected [branch], "
                "[lr], and optionally [wd], [group.KEY], [loop.NAME] and "
                "[run] (its total)"
            )
        if not isinstance(value, dict):
            raise ScheduleTypeError(f"[{table}] is not a table")
        tables = value.items() if table in VALUE_PLACES else ((None, value),)
        for name, keys in tables:
            where = table if name is None else f"{table}.{name}"
            if not isinstance(keys, dict):
                raise ScheduleTypeError(f"[{where}] is not a table")
            for key in keys:
                if key not in allowed.get(table, ("phases",)):
                    raise ScheduleError(
                        f"{where}.{key} is not allowed in a branch file; expected "
                        + ", ".join(f"{where}.{k}" for k in allowed.get(table, ("phases",)))
                    )
            if name is not None:
                if name in values:
                    raise ScheduleError(
                        f"[{where}]: {name!r} is in [{values[name][0]}] too; "
                        "expected it in one place, once"
                    )
                values[name] = (table, keys.get("phases"))
    branch = data["branch"]
    for key in ("from", "at"):
        if key not in branch:
            raise ScheduleError(f"branch has no {key!r}; expected branch.from and branch.at")
    source = branch["from"]
    if not isinstance(source, str):
        raise ScheduleTypeError(f"branch.from={source!r}; expected a file or a recipe name")
    if not source or "\0" in source:
        raise ScheduleError(f"branch.from={source!r} is not a file name or a recipe name")
    parent_path = (path.parent / source) if source.endswith(".toml") else recipe_path(source)
    chain = (*within, (_real(path), str(path)))  # the files branched from, and this one
    key = _real(parent_path)
    if any(real == key for real, _ in chain):
        circle = [shown for real, shown in chain[[r for r, _ in chain].index(key) :]]
        raise ScheduleError(
            f"branch.from={source!r} goes round in a circle: "
            f"{' -> '.join([*circle, str(parent_path)])}; expected branches "
            "that end in a schedule"
        )
    if len(within) >= MAX_BRANCH_DEPTH:
        raise ScheduleError(
            f"branch.from={source!r} stands on {len(within)} branches; "
            f"expected at most {MAX_BRANCH_DEPTH}"
        )
    if source.endswith(".toml") and not os.path.lexists(parent_path):
        raise ScheduleError(
            f"branch.from={source!r}: {parent_path} does not exist; expected a schedule "
            "file (its path relative to this file's folder) or a recipe name"
        )
    parent = load_schedule(parent_path, chain)
    for name, (place, _) in values.items():  # where the parent has it, else refused below
        theirs = next((v.place for v in parent.values if v.name == name), place)
        if theirs != place:
            raise ScheduleError(
                f"[{place}.{name}]: the parent schedules {name!r} in "
                f"[{theirs}]; expected [{theirs}.{name}]"
            )
    if "lr" not in data:
        raise ScheduleError("a branch file has no [lr] table; expected the phases after branch.at")
    return parent.branch(
        branch["at"],
        data["lr"].get("phases"),
        data["wd"].get("phases") if "wd" in data else None,
        total=data.get("run", {}).get("total"),
        values={name: phases for name, (_, phases) in values.items()} or None,
    )


def recipes() -> list[Recipe]:
    """The recipes shipped with paramsched, by name.

    Examples:
        >>> [recipe.name for recipe in recipes()]
        ['deepseek-v3', 'llama2-7b', 'minicpm-wsd']
    """
    found = []
    for entry in sorted(
        resources.files("paramsched").joinpath("recipes").iterdir(), key=lambda e: e.name
    ):
        if entry.name.endswith(".toml"):
            path = Path(str(entry))
            meta = _read(path).get("recipe", {})
            found.append(
                Recipe(path.stem, meta.get("description", ""), meta.get("source", ""), path)
            )
    return found


def recipe_path(name: str) -> Path:
    """The file of the recipe `name`, or an error listing the recipes."""
    available = {recipe.name: recipe.path for recipe in recipes()}
    if name not in available:
        raise ScheduleError(
            f"recipe {name!r} is not one of " + ", ".join(repr(n) for n in available)
        )
    return available[name]
