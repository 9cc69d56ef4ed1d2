"""The conventions by which a Markdown page's code runs as written (the README and every
page under docs/): its ```python blocks run in order, as one script in a fresh
interpreter, in a scratch folder; its ```toml blocks whose first line is ``# NAME.toml``
are written there first, as NAME; its console blocks whose first line starts with
``$ paramsched `` run there and must print exactly what follows them (a command may end
with ``|| echo "exit status $?"``, the status being the last line shown). Commands a
test cannot run (``pip install``) go in ```sh blocks, which are not run."""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[pathlib.Path]:
    """Every page of the site, in a stable order."""
    return sorted(DOCS.rglob("*.md"))


def blocks(language: str, document: pathlib.Path = README) -> list[str]:
    """The contents of the page's fenced blocks of `language`, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", document.read_text(), re.M | re.S)


def named_toml(document: pathlib.Path) -> dict[str, str]:
    """The page's TOML blocks that name their file (a first line ``# NAME.toml``)."""
    found = {}
    for block in blocks("toml", document):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".toml"):
            found[first[2:]] = block
    return found


def prepare(document: pathlib.Path, where: pathlib.Path) -> None:
    """The scratch folder a page's code runs in: its named TOML files, the repository's
    examples beside them, and a docs/ folder for the plots it writes."""
    for name, block in named_toml(document).items():
        (where / name).write_text(block)
    shutil.copytree(ROOT / "examples", where / "examples", dirs_exist_ok=True)
    (where / "docs").mkdir(exist_ok=True)


def run_in_order(python_blocks: list[str], where: pathlib.Path) -> None:
    """Runs the blocks, in order, as one script in a fresh interpreter in `where`."""
    script = "\n\n".join(
        f"print('--- block {n}', flush=True)\n{block}" for n, block in enumerate(python_blocks)
    )
    (where / "blocks.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "blocks.py"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def console_examples(document: pathlib.Path = README) -> list[tuple[str, str]]:
    """The page's ``$ paramsched ...`` examples: each command and the output shown."""
    found, fenced, block = [], False, []
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            if fenced and block and block[0].startswith("$ paramsched "):
                found.append(block)
            fenced, block = not fenced, []
        elif fenced:
            block.append(line)
    examples = []
    for lines in found:
        command = lines.pop(0)[2:]
        while command.endswith("\\"):
            command = command[:-1] + lines.pop(0).strip()
        command = command.removesuffix(' || echo "exit status $?"')
        examples.append((command, "\n".join(lines) + "\n"))
    return examples


def check_console_example(command: str, shown: str, where: pathlib.Path) -> None:
    """Runs `command` in `where` and checks that it prints `shown`, with the status shown
    (the last line of ``|| echo "exit status $?"``; 0 otherwise)."""
    argv = shlex.split(command)
    result = subprocess.run(
        [sys.executable, "-m", "paramsched", *argv[1:]],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )
    status = 0
    if shown.endswith("\n") and shown.splitlines()[-1].startswith("exit status "):
        status = int(shown.splitlines()[-1].split()[-1])
        shown = shown[: shown.rstrip("\n").rfind("\n") + 1]
    assert result.returncode == status, (command, result.stderr)
    assert result.stdout + result.stderr == shown, command
