"""Every page of the documentation site runs as written, page by page (the conventions of
`docs_blocks`: Python blocks in order in a fresh interpreter, named TOML files beside
them, ``$ paramsched`` examples printing what the page shows), and the site builds
with ``mkdocs build --strict``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from docs_blocks import (
    DOCS,
    ROOT,
    blocks,
    check_console_example,
    console_examples,
    named_toml,
    pages,
    prepare,
    run_in_order,
)

pytestmark = pytest.mark.slow
PAGES = [page.relative_to(DOCS).as_posix() for page in pages()]
RUNS = [page for page in PAGES if blocks("python", DOCS / page)]
SHOWS = [page for page in PAGES if console_examples(DOCS / page)]


def test_the_site_has_its_reference_pages():
    for page in (
        "index.md",
        "reference/api.md",
        "reference/schedule-file.md",
        "reference/cli.md",
        "reference/check-rules.md",
        "reference/megatron.md",
        "stacks/index.md",
        "stacks/hf.md",
        "stacks/timm.md",
        "performance.md",
        "changelog.md",
    ):
        assert page in PAGES


@pytest.mark.parametrize("page", RUNS)
def test_every_python_block_of_a_page_runs_as_written_in_order(page, tmp_path):
    if "import torch" in "".join(blocks("python", DOCS / page)):
        pytest.importorskip("torch")
    prepare(DOCS / page, tmp_path)
    run_in_order(blocks("python", DOCS / page), tmp_path)


@pytest.mark.parametrize("page", SHOWS)
def test_a_page_shows_what_its_commands_print(page, tmp_path):
    prepare(DOCS / page, tmp_path)
    for command, shown in console_examples(DOCS / page):
        check_console_example(command, shown, tmp_path)


def test_every_shown_every_value_file_is_the_examples():
    """A page that shows ``every_value.toml`` shows examples/every_value.toml (less its
    [recipe] table), so the page and the example cannot drift apart."""
    import tomllib

    example = tomllib.loads((ROOT / "examples" / "every_value.toml").read_text())
    example.pop("recipe")
    shown = [
        named_toml(DOCS / page)["every_value.toml"]
        for page in PAGES
        if "every_value.toml" in named_toml(DOCS / page)
    ]
    assert shown
    for block in shown:
        assert tomllib.loads(block) == example


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: every page under docs/ in the navigation and every entry
    of the navigation a page, every link and anchor found, every docstring of the API
    reference rendered without a warning."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python", reason="pip install '.[docs]'")
    pytest.importorskip("material", reason="pip install '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def test_the_recipes_page_embeds_each_recipe_s_html_preview(tmp_path):
    """The docs build's hook writes every built-in recipe's page, and the recipes page
    shows each of them."""
    import importlib.util

    from paramsched.recipe import recipes

    spec = importlib.util.spec_from_file_location("hooks", ROOT / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    written = hooks.write_recipe_pages(tmp_path)
    names = [recipe.name for recipe in recipes()]
    assert [path.name for path in written] == [f"{name}.html" for name in names]
    assert all(path.stat().st_size > 10_000 for path in written)
    page = (DOCS / "recipes.md").read_text()
    for name in names:
        assert f'<iframe src="../recipe-pages/{name}.html"' in page, name
