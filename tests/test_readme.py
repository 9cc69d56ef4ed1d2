"""The README runs as written: its Python blocks, in order, in a fresh interpreter, with
the files its TOML blocks name (a first line ``# NAME.toml``) written beside them; and its
``$ paramsched`` examples print what it shows (the conventions of `docs_blocks`)."""

from __future__ import annotations

import pytest
from docs_blocks import (
    README,
    blocks,
    check_console_example,
    console_examples,
    prepare,
    run_in_order,
)

pytest.importorskip("torch")  # the tour trains with torch
pytestmark = [pytest.mark.slow, pytest.mark.torch]


def test_the_readme_has_python_and_named_toml_blocks():
    assert len(blocks("python")) >= 2
    assert any(block.startswith("# schedule.toml\n") for block in blocks("toml"))


def test_the_readme_is_at_most_200_lines_with_the_quick_start_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    start = lines.index("## Quick start")
    fence = lines.index("```", start)
    assert lines[fence + 1 : fence + 4] == [
        "pip install . && paramsched table",
        'pip install ".[test]" && pip install --no-deps timm==1.0.31 && python -m pytest -q',
        "```",
    ]


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository():
    import re

    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    assert len(links) >= 20
    missing = [link for link in links if not (README.parent / link).is_file()]
    assert missing == []


def test_every_python_block_runs_as_written_in_order(tmp_path):
    prepare(README, tmp_path)
    run_in_order(blocks("python"), tmp_path)


def test_the_readme_shows_what_its_commands_print(tmp_path):
    """Each command runs as shown (the README's TOML files and the examples beside it,
    plots written to a scratch folder) and prints what the README shows."""
    prepare(README, tmp_path)
    examples = console_examples()
    assert examples
    for command, shown in examples:
        check_console_example(command, shown, tmp_path)
