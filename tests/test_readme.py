"""The README runs as written: its Python blocks, in order, in a fresh interpreter, with
the files its TOML blocks name (a first line ``# NAME.toml``) written beside them; and its
``$ paramsched`` examples print what it shows."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")  # the blocks use torch, transformers and Lightning's API
pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.torch]

README = pathlib.Path(__file__).parent.parent / "README.md"


def blocks(language: str, document: pathlib.Path = README) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", document.read_text(), re.M | re.S)


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
        timeout=300,
        env={**os.environ, "WANDB_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_the_readme_has_python_and_named_toml_blocks():
    assert len(blocks("python")) >= 10
    assert any(block.startswith("# schedule.toml\n") for block in blocks("toml"))


def test_every_python_block_runs_as_written_in_order(tmp_path):
    for block in blocks("toml"):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".toml"):
            (tmp_path / first[2:]).write_text(block)
    run_in_order(blocks("python"), tmp_path)


def test_the_every_value_file_is_the_example_s():
    import tomllib

    shown = next(b for b in blocks("toml") if b.startswith("# every_value.toml\n"))
    example = tomllib.loads((README.parent / "examples" / "every_value.toml").read_text())
    example.pop("recipe")
    assert tomllib.loads(shown) == example


def console_examples() -> list[tuple[str, str]]:
    """The README's ``$ paramsched ...`` examples: each command and the output shown."""
    found, fenced, block = [], False, []
    for line in README.read_text().splitlines():
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


def test_the_readme_shows_what_its_commands_print(tmp_path):
    """Each command runs as shown (the README's TOML files and the examples beside it,
    plots written to a scratch folder) and prints what the README shows."""
    import shlex
    import shutil

    for block in blocks("toml"):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".toml"):
            (tmp_path / first[2:]).write_text(block)
    shutil.copytree(README.parent / "examples", tmp_path / "examples")
    (tmp_path / "docs").mkdir()
    examples = console_examples()
    assert len(examples) >= 5
    for command, shown in examples:
        argv = shlex.split(command)
        result = subprocess.run(
            [sys.executable, "-m", "paramsched", *argv[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        status = 0
        if shown.endswith("\n") and shown.splitlines()[-1].startswith("exit status "):
            # a command shown with `|| echo "exit status $?"`: its status, then its output
            status = int(shown.splitlines()[-1].split()[-1])
            shown = shown[: shown.rstrip("\n").rfind("\n") + 1]
        assert result.returncode == status, (command, result.stderr)
        assert result.stdout + result.stderr == shown, command
