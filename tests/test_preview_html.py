"""``paramsched preview --html`` and ``compare --html`` (paramsched.preview.html): the
page, opened in a real browser (Debian's chromium, driven by Playwright), makes no
request and logs no error; its readout shows the strings ``paramsched table`` prints;
the unit switch, zoom, a branch's dashed parent and a comparison work; a million-step
run's page is small; bad input is refused in one line, with nothing written."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from paramsched import PhaseSchedule, Run, Schedule
from paramsched.cli import main
from paramsched.preview import run_of, timeline_columns, timeline_table
from paramsched.preview.html import PAGE_POINTS, page_data, page_rows, write_html
from paramsched.recipe import load_schedule, recipe_path

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOW_TO = ROOT / "docs" / "how-to" / "html-preview.md"
BRANCH = """[branch]
from = "minicpm-wsd"
at = "50%"

[lr]
phases = [{ shape = "minus_sqrt", to = "min_lr", until = "60%" }]
"""


TOKEN_CLOCK = {
    "run": {
        "clock": "tokens",
        "total": "40K tokens",
        "batch_size_schedule": [["0 tokens", 8], ["10K tokens", 16]],
    },
    "lr": {
        "max_lr": 1e-3,
        "min_lr": 1e-4,
        "batch_size_rule": "sqrt",
        "reference_batch_size": 8,
        "phases": [
            {"shape": "linear", "to": "max_lr", "until": "4K tokens"},
            {"shape": "cosine", "to": "min_lr", "until": "100%"},
        ],
    },
    "wd": {"start_wd": 0.1, "phases": [{"shape": "constant", "until": "100%"}]},
    "group": {
        "betas[1]": {"start": 0.95, "phases": [{"shape": "linear", "to": 0.99, "until": "100%"}]}
    },
    "loop": {
        "grad_clip": {
            "start": 0.25,
            "peak": 1.0,
            "phases": [{"shape": "linear", "to": "peak", "until": "4K tokens"}],
        }
    },
}


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("no chromium: none on PATH (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.skip(f"no chromium: playwright cannot be imported ({error})")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


class Opened:
    """A page opened from its file, with every request, console error and page error
    recorded; `close` fails the test on any but the page's own file."""

    def __init__(self, browser, path: pathlib.Path):
        self.url = path.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.requests, self.errors = [], []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(self.url)
        self.page.wait_for_selector("#plot-area")

    def close(self):
        self.page.wait_for_timeout(50)
        assert self.errors == []
        assert self.requests == [self.url]
        self.page.close()

    def domain(self) -> tuple[float, float]:
        chart = self.page.locator("#chart")
        return float(chart.get_attribute("data-lo")), float(chart.get_attribute("data-hi"))

    def pixel(self, value: float) -> tuple[float, float]:
        """Where on the screen the x value `value` is, over the plot's middle."""
        box = self.page.locator("#plot-area").bounding_box()
        lo, hi = self.domain()
        return box["x"] + (value - lo) / (hi - lo) * box["width"], box["y"] + box["height"] / 2

    def hover(self, value: float) -> dict:
        self.page.mouse.move(*self.pixel(value))
        return self.readout()

    def readout(self, schedule: int = 0) -> dict:
        cells = self.page.locator(f'#readout td[data-schedule="{schedule}"]')
        return {cell.get_attribute("data-column"): cell.text_content() for cell in cells.all()}


@pytest.fixture
def opened(browser):
    pages = []

    def open_page(path):
        pages.append(Opened(browser, pathlib.Path(path)))
        return pages[-1]

    yield open_page
    for each in pages:
        each.close()


def table_rows(schedule, points: int) -> dict:
    """`paramsched table`'s rows (`timeline_table`), by their first cell: each row's
    cells as printed."""
    lines = timeline_table(schedule, points, "t").splitlines()
    names = [name for name, _ in timeline_columns(schedule)]
    rows = {}
    for line in lines[2 + (schedule.batch_size_rule is not None) :]:
        cells = line.split()
        rows[cells[0]] = dict(zip(names, cells[: len(names)]))
    return rows


def exact_cells(schedule, position) -> dict:
    """The values at a clock position, each written as `paramsched table` writes it,
    asked of the schedule directly."""
    run_ = run_of(schedule)
    cells = {"lr": f"{float(schedule.lr(position)):.6e}"}
    if schedule.has_wd:
        cells["weight_decay"] = f"{float(schedule.wd(position)):.6e}"
    if schedule.batch_size_rule is not None:
        cells["base lr"] = f"{float(schedule.base_lr(position)):.6e}"
    if run_.global_batch_size is not None or run_.batch_size_schedule is not None:
        cells["batch size"] = str(run_.batch_size_at(position))
    for value in schedule.values:
        column = value.name if value.name not in ("lr", "wd") else f"{value.place}.{value.name}"
        cells[column] = f"{float(schedule.value(value.name, position)):.6e}"
    return cells


def check_readout(schedule, shown: dict, table: dict) -> None:
    """`shown` (a readout) holds the schedule's values at the step (or tokens) it names,
    and, where `paramsched table` lists that step, that row, cell for cell."""
    run_ = run_of(schedule)
    if "step" in shown:
        step = int(shown["step"])
        position = run_.samples_at_step(step)
        assert shown["samples"] == str(position)
        if run_.seq_length is not None:
            assert shown["tokens"] == str(position * run_.seq_length)
        key = shown["step"]
    else:
        position = int(shown["tokens"])
        key = shown["tokens"]
    for column, cell in exact_cells(schedule, position).items():
        assert shown[column] == cell, column
    if key in table:
        listed = table[key]
        assert {column: shown[column] for column in listed} == listed


# ------------------------------------------------------------------ the pages


@pytest.mark.slow
def test_the_readout_shows_the_table_strings_at_the_step_it_names(opened, capsys, tmp_path):
    page_file = tmp_path / "deepseek.html"
    status, out, err = run(capsys, "preview", "--recipe", "deepseek-v3", "--html", page_file)
    assert status == 0 and out.endswith(f"wrote the page to {page_file}\n")
    schedule = load_schedule(recipe_path("deepseek-v3"))
    table = table_rows(schedule, PAGE_POINTS)  # the page's evenly spaced steps are these rows
    page = opened(page_file)
    assert page.readout()["step"] == "0"  # before any hover: the start
    lo, hi = page.domain()
    steps = set()
    for fraction in (0.0, 0.004, 0.0081, 0.05, 0.31, 0.7, 0.96, 0.999, 1.0):
        shown = page.hover(lo + fraction * (hi - lo))
        check_readout(schedule, shown, table)
        steps.add(shown["step"])
    assert len(steps) == 9 and {"0", "247199"} <= steps
    # Each boundary, hovered: its step and its event, as the table lists them.
    lines = page.page.locator("line.boundary")
    assert lines.count() >= 7
    for index in range(lines.count()):
        event = lines.nth(index).get_attribute("data-event")
        x1 = float(lines.nth(index).get_attribute("x1"))
        box = page.page.locator("#chart").bounding_box()
        page.page.mouse.move(box["x"] + x1, page.pixel(lo)[1])
        shown = page.readout()
        assert event in shown["event"]
        check_readout(schedule, shown, table)
        assert shown["step"] in table  # a boundary is a row of the table


@pytest.mark.slow
@pytest.mark.parametrize(
    "schedule, units, positions",
    [
        (
            load_schedule(ROOT / "examples" / "every_value.toml"),
            ["steps", "samples", "tokens"],
            ["step", "samples", "tokens"],
        ),
        (PhaseSchedule.from_dict(TOKEN_CLOCK), ["tokens"], ["tokens"]),
    ],
    ids=["every-value", "token-clock"],
)
def test_every_kind_of_value_is_drawn_and_read(opened, tmp_path, schedule, units, positions):
    page_file = tmp_path / "every.html"
    write_html(schedule, page_file, "every value")
    page = opened(page_file)
    assert page.page.locator("#units input").evaluate_all("i => i.map(e => e.value)") == units
    columns = page.page.locator("#readout tr").evaluate_all(
        "rows => rows.map(r => r.dataset.column).filter(Boolean)"
    )
    assert columns == [
        *positions,
        "lr",
        "base lr",
        "batch size",
        "weight_decay",
        "betas[1]",
        "grad_clip",
        "event",
    ]
    drawn = page.page.locator("path.curve").evaluate_all("p => p.map(e => e.dataset.curve)")
    assert drawn == ["lr", "base lr", "weight_decay", "batch size", "betas[1]", "grad_clip"]
    assert page.page.locator('path[data-curve="base lr"]').get_attribute("stroke-dasharray")
    panels = page.page.locator(".panel-label").all_text_contents()
    assert panels[-2:] == ["betas[1] (group)", "grad_clip (loop)"]
    table = table_rows(schedule, PAGE_POINTS)
    lo, hi = page.domain()
    for fraction in (0.0, 0.1, 0.126, 0.37, 0.69, 0.71, 1.0):
        check_readout(schedule, page.hover(lo + fraction * (hi - lo)), table)


@pytest.mark.slow
def test_the_unit_switch_changes_the_axis_and_the_readout_keeps_its_point(opened, tmp_path):
    schedule = load_schedule(recipe_path("minicpm-wsd"))
    page_file = tmp_path / "wsd.html"
    write_html(schedule, page_file)
    page = opened(page_file)
    assert page.page.locator("#x-label").text_content() == "optimizer steps"
    assert page.domain() == (0, 100_000)
    shown = page.hover(30_000)
    page.page.locator('#units input[value="tokens"]').check()
    assert page.page.locator("#x-label").text_content() == "tokens"
    assert page.domain() == (0, 100_000 * 1024 * 4096)
    assert page.page.locator("#chart").get_attribute("data-unit") == "tokens"
    ticks = page.page.locator("text.tick.x").all_text_contents()
    assert ticks[-1].endswith("B") and "100,000" not in ticks
    assert page.readout() == shown  # the same embedded point, under the other unit
    page.page.locator('#units input[value="samples"]').check()
    assert page.page.locator("#x-label").text_content() == "consumed samples"
    assert page.domain() == (0, 100_000 * 1024)
    assert page.readout() == shown


@pytest.mark.slow
def test_drag_and_wheel_zoom_and_reset(opened, tmp_path):
    page_file = tmp_path / "llama.html"
    write_html(load_schedule(recipe_path("llama2-7b")), page_file)
    page = opened(page_file)
    full = page.domain()
    page.page.mouse.move(*page.pixel(100_000))
    page.page.mouse.down()
    page.page.mouse.move(*page.pixel(150_000), steps=4)
    page.page.mouse.up()
    lo, hi = page.domain()
    pixel = (full[1] - full[0]) / page.page.locator("#plot-area").bounding_box()["width"]
    assert abs(lo - 100_000) < pixel and abs(hi - 150_000) < pixel
    ticks = page.page.locator("text.tick.x").all_text_contents()
    assert "120,000" in ticks and "0" not in ticks
    page.page.mouse.move(*page.pixel(125_000))
    page.page.mouse.wheel(0, -240)
    page.page.wait_for_function(f"document.getElementById('chart').dataset.hi < {hi}")
    narrower = page.domain()
    assert lo < narrower[0] < 125_000 < narrower[1] < hi
    shown = page.hover(125_000)  # the readout still snaps to an embedded step
    assert abs(int(shown["step"]) - 125_000) <= full[1] / PAGE_POINTS
    page.page.locator("#reset").click()
    assert page.domain() == full
    page.page.mouse.move(*page.pixel(300_000))
    page.page.mouse.down()
    page.page.mouse.move(*page.pixel(350_000), steps=4)
    page.page.mouse.up()
    assert page.domain() != full
    page.page.mouse.dblclick(*page.pixel(320_000))
    assert page.domain() == full


@pytest.mark.slow
def test_a_branch_page_draws_its_parent_dashed(opened, capsys, tmp_path):
    branch_file = tmp_path / "cooldown.toml"
    branch_file.write_text(BRANCH)
    page_file = tmp_path / "cooldown.html"
    status, out, err = run(capsys, "preview", branch_file, "--html", page_file)
    assert status == 0, err
    schedule = load_schedule(branch_file)
    page = opened(page_file)
    parent = page.page.locator('path[data-curve="lr (parent)"]')
    assert parent.get_attribute("stroke-dasharray")
    assert page.page.locator('path[data-curve="lr"]').get_attribute("stroke-dasharray") is None
    assert page.page.locator('#legend [data-curve="lr (parent)"] line').get_attribute(
        "stroke-dasharray"
    )
    events = page.page.locator("line.boundary").evaluate_all("l => l.map(e => e.dataset.event)")
    assert any("branch point" in event for event in events)
    shown = page.hover(55_000)
    step = int(shown["step"])
    samples = run_of(schedule).samples_at_step(step)
    assert shown["lr (parent)"] == f"{float(schedule.parent.lr(samples)):.6e}"
    assert shown["lr"] == f"{float(schedule.lr(samples)):.6e}" != shown["lr (parent)"]
    check_readout(schedule, shown, table_rows(schedule, PAGE_POINTS))


@pytest.mark.slow
def test_a_compare_page_has_each_schedule(opened, capsys, tmp_path):
    branch_file = tmp_path / "cooldown.toml"
    branch_file.write_text(BRANCH)
    page_file = tmp_path / "compare.html"
    status, out, err = run(
        capsys, "compare", "--recipe", "minicpm-wsd", branch_file, "--html", page_file
    )
    assert status == 0, err
    assert out.endswith(f"wrote the page to {page_file}\n")
    named = [
        ("recipe minicpm-wsd", load_schedule(recipe_path("minicpm-wsd"))),
        (str(branch_file), load_schedule(branch_file)),
    ]
    page = opened(page_file)
    headers = page.page.locator("#readout th[data-schedule]").all_text_contents()
    assert headers == [name for name, _ in named]
    legend = page.page.locator("#legend .entry").all_text_contents()
    assert [entry.strip() for entry in legend] == [
        "recipe minicpm-wsd",
        str(branch_file),
        f"{branch_file}: lr (parent)",
    ]
    for index in range(2):
        assert page.page.locator(f'path[data-schedule="{index}"][data-curve="lr"]').count() == 1
    colors = page.page.locator('path[data-curve="lr"]').evaluate_all(
        "p => p.map(e => e.getAttribute('stroke'))"
    )
    assert len(set(colors)) == 2
    page.hover(57_000)
    for index, (name, schedule) in enumerate(named):
        check_readout(schedule, page.readout(index), table_rows(schedule, PAGE_POINTS))
    assert page.readout(0)["lr"] != page.readout(1)["lr"]


@pytest.mark.slow
def test_a_million_step_page_is_small_and_exact(opened, tmp_path):
    schedule = PhaseSchedule.from_dict(
        {
            "run": {
                "seq_length": 4096,
                "batch_size_schedule": [[0, 256], ["50M samples", 512], ["200M samples", 1024]],
                "total": "1000000 steps",
            },
            "lr": {
                "max_lr": 3e-4,
                "min_lr": 3e-5,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "2000 steps"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.1, "phases": [{"shape": "constant", "until": "100%"}]},
            "group": {
                "betas[1]": {
                    "start": 0.95,
                    "phases": [{"shape": "linear", "to": 0.99, "until": "100%"}],
                }
            },
        }
    )
    page_file = tmp_path / "million.html"
    points = write_html(schedule, page_file)
    assert points < PAGE_POINTS + 40
    assert page_file.stat().st_size < 2_000_000
    page = opened(page_file)
    table = table_rows(schedule, PAGE_POINTS)
    lo, hi = page.domain()
    assert hi == 1_000_000
    for fraction in (0.0005, 0.002, 0.2, 0.5, 0.999):
        check_readout(schedule, page.hover(lo + fraction * (hi - lo)), table)


def test_a_page_s_work_is_bounded_by_its_points_not_the_run_s_length():
    short = Schedule(
        max_lr=1.0,
        min_lr=0.1,
        lr_warmup_steps=100,
        lr_decay_steps=10**4,
        lr_decay_style="cosine",
        run=Run(global_batch_size=8, total=f"{10**4} steps"),
    )
    huge = short.replace(lr_decay_steps=10**12, run=Run(global_batch_size=8, total="1e12 steps"))
    for schedule in (short, huge):
        rows = page_rows(schedule)
        boundaries = [row["step"] for row in rows if row["event"]]
        assert len(boundaries) == 4  # the start, the warmup's end, the decay's end, the end
        assert len(rows) <= PAGE_POINTS + 1 + 3 * len(boundaries)
        table = table_rows(schedule, PAGE_POINTS)  # each row of the table is a point
        assert set(table) <= {str(row["step"]) for row in rows}
    data = page_data([("huge", huge)])
    assert data["units"] == ["steps", "samples"]
    assert len(json.dumps(data)) < 200_000


def test_the_page_holds_no_address_and_escapes_what_it_shows(tmp_path):
    page_file = tmp_path / "page.html"
    write_html(load_schedule(recipe_path("llama2-7b")), page_file, "</script><b>x</b>")
    text = page_file.read_text()
    assert not re.search(r"https?:|//[a-z]|src=|href=|@import|url\((?!#)", text)
    assert "<b>x</b>" not in text and text.count("</script>") == 2
    schedule = load_schedule(recipe_path("minicpm-wsd"))
    write_html([("</script><b>x</b>", schedule), ("b & c", schedule)], page_file)
    text = page_file.read_text()
    assert "<b>x</b>" not in text and text.count("</script>") == 2
    embedded = text.split('id="paramsched-data">')[1].split("</script>")[0]
    assert [s["name"] for s in json.loads(embedded)["schedules"]] == ["</script><b>x</b>", "b & c"]


def test_the_readout_is_the_law_at_that_one_step(tmp_path):
    # The page evaluates its 2,005 steps in one call; each must read as law.loss at that
    # step alone (at step 2,496 it once read 3.95472 where law.loss gives 3.95471).
    from predict_data import PAPER_PARAMS, schedule_file

    from paramsched.predict import MultiPowerLaw
    from paramsched.predict.cli import schedule_rates
    from paramsched.preview.html import _losses

    toml = schedule_file(
        tmp_path, "cosine", '{ shape = "cosine", to = "min_lr", until = "100%" },', 24000
    )
    schedule, law = load_schedule(toml), MultiPowerLaw(**PAPER_PARAMS)
    rates = schedule_rates(schedule, "s")
    steps = [row["step"] for row in page_rows(schedule)]
    readout = dict(zip(steps, _losses(schedule, law, steps)))
    assert len(steps) > 2000 and readout[2496] == "3.95471"
    for step in [2316, 2364, 2400, 2496, 2508, *steps[::40]]:
        if step - 1 >= 2160:
            assert readout[step] == f"{law.loss(rates, [step - 1])[0]:.5f}", step


@pytest.mark.slow
def test_the_predicted_loss_is_the_law_s(opened, capsys, tmp_path):
    from predict_data import PAPER_PARAMS, schedule_file

    from paramsched.predict.cli import read_law, schedule_rates

    law_file = tmp_path / "law.json"
    law_file.write_text(json.dumps({"law": "multi-power", "params": PAPER_PARAMS}))
    toml = schedule_file(
        tmp_path, "cosine", '{ shape = "cosine", to = "min_lr", until = "100%" },', 24000
    )
    page_file = tmp_path / "law.html"
    status, out, err = run(capsys, "preview", toml, "--law", law_file, "--html", page_file)
    assert status == 0, err
    schedule, law = load_schedule(toml), read_law(str(law_file))
    rates = schedule_rates(schedule, "s")
    # The law over the page's steps from the peak on, in one call (as the PNG's points).
    steps = [row["step"] for row in page_rows(schedule) if row["step"] - 1 >= 2160]
    losses = dict(zip(steps, law.loss(rates, [step - 1 for step in steps])))
    page = opened(page_file)
    assert "predicted loss" in page.page.locator('[data-panel="loss"] .panel-label').text_content()
    assert page.hover(1000)["predicted loss"] == "-"  # before the peak, as the PNG
    for step in (2500, 9000, 23999):
        shown = page.hover(step)
        assert shown["predicted loss"] == f"{losses[int(shown['step'])]:.5f}"


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["preview", "--recipe", "llama2-7b", "--html", "{tmp}/p.png"],
            "--html='{tmp}/p.png' has the extension .png; expected a name ending in .html or .htm",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--html", "{tmp}/page"],
            "--html='{tmp}/page' has no file extension; expected a name ending in .html or .htm",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--json", "--html", "{tmp}/p.html"],
            "--json with --html; expected --json alone",
        ),
        (
            [
                "compare",
                "--recipe",
                "llama2-7b",
                "--recipe",
                "minicpm-wsd",
                "--json",
                "--html",
                "{tmp}/p.html",
            ],
            "--json with --html; expected --json alone",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--html", "{tmp}/no/p.html"],
            "--html='{tmp}/no/p.html' cannot be written: {tmp}/no: No such file or directory",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--html", "{tmp}"],
            "--html='{tmp}' is a directory; expected a file name",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--html", ""],
            "--html='' is not a file name; expected one such as schedule.html",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--html", "{tmp}/p.html", "--out", "{tmp}/p.html"],
            "--html='{tmp}/p.html' is also --out; expected different files",
        ),
        (
            ["preview", "{tokens}", "--html", "{tmp}/p.html", "--x", "steps"],
            "--x steps: the run's clock counts tokens, which fix no steps; expected --x tokens",
        ),
    ],
    ids=[
        "png",
        "no-extension",
        "json",
        "compare-json",
        "no-directory",
        "directory",
        "empty",
        "same-file",
        "x",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    capsys, tmp_path, tmp_path_factory, argv, message
):
    tokens = tmp_path_factory.mktemp("schedule") / "tokens.toml"
    tokens.write_text(
        '[run]\nclock = "tokens"\ntotal = "40K tokens"\n[lr]\nmax_lr = 1e-3\n'
        'phases = [{ shape = "constant", until = "100%" }]\n'
    )
    argv = [word.replace("{tmp}", str(tmp_path)).replace("{tokens}", str(tokens)) for word in argv]
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in err
    assert os.listdir(tmp_path) == []


def test_write_html_refuses_what_is_not_a_schedule(tmp_path):
    from paramsched.errors import ScheduleTypeError

    with pytest.raises(ScheduleTypeError, match="expected a paramsched.Schedule"):
        write_html({"lr": 1}, tmp_path / "p.html")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ the how-to


def console_examples() -> list[tuple[str, str]]:
    """The how-to's ``$ paramsched ...`` blocks: each command and the output shown."""
    found = re.findall(r"^```console\n(.*?)^```", HOW_TO.read_text(), re.M | re.S)
    examples = []
    for block in found:
        command, _, output = block.partition("\n")
        assert command.startswith("$ paramsched ")
        if command.endswith(' || echo "exit status $?"'):  # the status, as the last line shown
            command = command.removesuffix(' || echo "exit status $?"')
            output = output.removesuffix("exit status 2\n")
        examples.append((command[2:], output))
    return examples


def test_the_how_to_s_console_examples_print_what_they_show(capsys, tmp_path, monkeypatch):
    """Each example prints what it shows: on stdout, or, for an error, its one line on
    stderr with exit status 2 and nothing written."""
    examples = console_examples()
    assert len(examples) >= 4
    monkeypatch.chdir(tmp_path)
    shown_toml = re.search(r"^```toml\n# cooldown.toml\n(.*?)^```", HOW_TO.read_text(), re.M | re.S)
    assert tomllib.loads(shown_toml.group(1)) == tomllib.loads(BRANCH)
    (tmp_path / "cooldown.toml").write_text(BRANCH)
    for command, shown in examples:
        words = shlex.split(command)[1:]
        before = set(os.listdir(tmp_path))
        status, out, err = run(capsys, *words)
        if " error: " in shown:
            assert (status, out, err) == (2, "", shown), command
            assert set(os.listdir(tmp_path)) == before
            continue
        assert status == 0, err
        assert out == shown, command
        page_file = tmp_path / words[words.index("--html") + 1]
        assert page_file.stat().st_size > 10_000
