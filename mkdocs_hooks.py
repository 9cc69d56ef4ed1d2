"""The docs build's hook: each built-in recipe's HTML preview, written beside the site's
pages (``recipe-pages/NAME.html``) from the installed paramsched, so that the recipes page
shows the pages of the current code."""

from __future__ import annotations

from pathlib import Path


def write_recipe_pages(site_dir) -> list[Path]:
    """Writes every built-in recipe's page into ``site_dir/recipe-pages``; returns the
    files written."""
    from paramsched.preview.html import write_html
    from paramsched.recipe import load_schedule, recipes

    out = Path(site_dir) / "recipe-pages"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for recipe in recipes():
        path = out / f"{recipe.name}.html"
        write_html(load_schedule(recipe.path), path, title=recipe.name)
        written.append(path)
    return written


def on_post_build(config, **kwargs) -> None:
    write_recipe_pages(config["site_dir"])
