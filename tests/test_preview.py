"""Tests for paramsched.preview: phases, points, totals, CSV and plot."""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import math
import re

import numpy as np
import pytest
from conftest import RULE_TOML, TOKEN_CLOCK_TOML, VALUES_TOML, schedule_from_toml, with_rule
from hypothesis import given
from hypothesis import strategies as st

from paramsched import (
    PhaseSchedule,
    Run,
    ScheduleError,
    ScheduleTypeError,
    from_megatron_args,
    preview,
)
from paramsched.recipe import load_schedule, recipe_path
from paramsched.units import SI_SUFFIXES

RUN = {
    "global_batch_size": 4,
    "seq_length": 10,
    "rampup_batch_size": [2, 2, 8],
    "total": "100 samples",
}


def ramped():
    return PhaseSchedule.from_dict(
        {
            "run": RUN,
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.0,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "3 steps"},
                    {"shape": "linear", "to": "min_lr", "until": "100%"},
                ],
            },
        }
    )


def test_step_n_is_the_value_after_n_steps_of_the_ramped_clock():
    s = ramped()
    # One increment over 8 samples: batch 2 while consumed < 8, 2 + int(8 / 8) * 2 = 4 at
    # consumed = 8, and the full 4 after: steps end at 2, 4, 6, 8, 12, 16, ...
    assert s.run.samples_at_step(np.arange(7)).tolist() == [0, 2, 4, 6, 8, 12, 16]
    point = preview.at(s, "3 steps")
    assert point == {"step": 3, "samples": 6, "tokens": 60, "lr": 1.0, "wd": None}
    assert preview.at(s, "60 tokens")["step"] == 3
    assert preview.at(s, "7 samples")["step"] == 4  # the first step after which 7 are consumed


def test_pieces_and_totals():
    s = ramped()
    pieces = preview.pieces(s, 100)
    assert [(p.name, p.start, p.end, p.lr_start, p.lr_end) for p in pieces] == [
        ("linear", 0, 6, 0.0, 1.0),
        ("linear", 6, 100, 1.0, 0.0),
    ]
    sums = preview.totals(s)
    steps = s.run.step_at_samples(100)
    manual = math.fsum(s.lr(s.run.samples_at_step(k)) for k in range(steps))
    assert sums == {
        "steps": steps,
        "samples": 100,
        "tokens": 1000,
        "peak_lr": 1.0,
        "final_lr": 0.0,
        "lr_area": manual,
    }


def test_megatron_pieces():
    s = from_megatron_args(
        argparse.Namespace(
            lr=1.0,
            min_lr=0.1,
            train_iters=100,
            lr_warmup_iters=10,
            lr_decay_iters=80,
            lr_decay_style="WSD",
            lr_wsd_decay_iters=20,
            lr_wsd_decay_style="cosine",
            global_batch_size=2,
        )
    )
    names = [(p.name, p.start, p.end) for p in preview.pieces(s, 200)]
    assert names == [
        ("warmup", 0, 20),
        ("stable", 20, 120),
        ("WSD cosine", 120, 160),
        ("hold", 160, 200),
    ]
    assert "warmup" in preview.table(s, "t") and "stable" in preview.table(s, "t")


def test_csv_holds_every_step(tmp_path):
    s = ramped()
    path = tmp_path / "curve.csv"
    rows = preview.write_csv(s, path)
    with open(path) as file:
        table = list(csv.DictReader(file))
    assert len(table) == rows == s.run.step_at_samples(100) + 1
    for row in table[:8]:
        samples = int(row["samples"])
        assert samples == s.run.samples_at_step(int(row["step"]))
        assert float(row["lr"]) == s.lr(samples) and int(row["tokens"]) == samples * 10


@pytest.mark.parametrize("x", ["steps", "samples", "tokens"])
def test_plot_writes_a_png(tmp_path, x):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"plot-{x}.png"
    preview.plot(ramped(), path, x, "ramped")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pieces_hold_the_final_value_up_to_the_total():
    phases = PhaseSchedule.from_dict(
        {
            "run": {"total": "30 samples"},
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.25,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "10 samples"},
                    {"shape": "linear", "to": "min_lr", "until": "20 samples"},
                ],
            },
        }
    )
    assert [(p.name, p.start, p.end, p.lr_start, p.lr_end) for p in preview.pieces(phases, 30)] == [
        ("linear", 0, 10, 0.0, 1.0),
        ("linear", 10, 20, 1.0, 0.25),
        ("hold", 20, 30, 0.25, 0.25),
    ]
    assert [p.name for p in preview.pieces(phases, 20)] == ["linear", "linear"]  # no hold
    megatron = from_megatron_args(
        argparse.Namespace(
            lr=1.0,
            min_lr=0.5,
            train_iters=10,
            lr_decay_iters=8,
            global_batch_size=1,
            lr_decay_style="linear",
        )
    )
    last = preview.pieces(megatron, 10)[-1]
    assert (last.name, last.start, last.end, last.lr_start, last.lr_end) == (
        "hold",
        8,
        10,
        0.5,
        0.5,
    )
    constant = from_megatron_args(
        argparse.Namespace(
            lr=1.0,
            train_iters=10,
            lr_warmup_iters=2,
            global_batch_size=1,
            lr_decay_style="constant",
        )
    )
    assert [(p.name, p.start, p.end) for p in preview.pieces(constant, 10)] == [
        ("warmup", 0, 2),
        ("constant", 2, 10),
    ]


# ------------------------------------------------------------------ the plot, as drawn


def one_step_warmup():
    return PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 1, "total": "100000 steps"},
            "lr": {
                "max_lr": 1e-3,
                "min_lr": 1e-4,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "1 steps"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear"},
        }
    )


def one_step_warmup_megatron():
    return from_megatron_args(
        argparse.Namespace(
            lr=1e-3,
            min_lr=1e-4,
            train_iters=100_000,
            lr_warmup_iters=1,
            lr_decay_style="WSD",
            lr_wsd_decay_iters=1_000,
            lr_wsd_decay_style="cosine",
            global_batch_size=8,
            weight_decay=0.1,
        )
    )


def many_phases():
    """Seventeen phases, tiny ones among long ones, with a batch-size ramp."""
    ends = [
        "1 steps",
        "2 steps",
        "10%",
        "30%",
        "31%",
        "50%",
        "60%",
        "90%",
        "90.5%",
        "91%",
        "91.5%",
        "92%",
        "92.5%",
        "93%",
        "99%",
        "99.5%",
        "100%",
    ]
    values = [
        3e-4,
        3e-4,
        1e-4,
        1e-4,
        2e-4,
        2e-4,
        2e-5,
        2e-5,
        1e-5,
        1e-5,
        3e-5,
        3e-5,
        1e-5,
        1e-5,
        0.0,
        0.0,
        1e-6,
    ]
    shapes = itertools.cycle(
        [
            "linear",
            "constant",
            "cosine",
            "constant",
            "exponential",
            "constant",
            "minus_sqrt",
            "constant",
        ]
    )
    phases = [
        {
            "shape": shape,
            "until": end,
            **({"value": value} if shape == "constant" else {"to": value}),
        }
        for end, value, shape in zip(ends, values, shapes)
    ]
    phases[0]["to"] = "max_lr"
    return PhaseSchedule.from_dict(
        {
            "run": {
                "global_batch_size": 8,
                "seq_length": 2048,
                "rampup_batch_size": [2, 2, "5K samples"],
                "total": "1M samples",
            },
            "lr": {"max_lr": 3e-4, "min_lr": 1e-6, "phases": phases},
        }
    )


def crowded():
    """Ten phases of 0.05% each after a long one: not all labels fit."""
    phases = [{"shape": "linear", "to": "max_lr", "until": "95%"}] + [
        {"shape": "constant", "value": 0.1 * k, "until": f"{95 + 0.05 * k:g}%"}
        for k in range(1, 11)
    ]
    return PhaseSchedule.from_dict(
        {"run": {"total": "1M samples"}, "lr": {"max_lr": 1.0, "phases": phases}}
    )


def no_weight_decay():
    return PhaseSchedule.from_dict(
        {
            "run": {"total": "1000 samples"},
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.5,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "10 samples"},
                    {"shape": "linear", "to": "min_lr", "until": "100%"},
                ],
            },
        }
    )


def full_size_ramp():
    """A ramp that starts at the full batch size: no ramp."""
    return PhaseSchedule.from_dict(
        {
            "run": {**RUN, "rampup_batch_size": [4, 2, 8]},
            "lr": {"max_lr": 1.0, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
        }
    )


def recipe(name):
    return lambda: load_schedule(recipe_path(name))


SCHEDULES = {
    "one-step-warmup": one_step_warmup,
    "one-step-warmup-megatron": one_step_warmup_megatron,
    "many-phases": many_phases,
    "crowded": crowded,
    "no-wd": no_weight_decay,
    "ramped": ramped,
    "full-size-ramp": full_size_ramp,
    "deepseek-v3": recipe("deepseek-v3"),
    "llama2-7b": recipe("llama2-7b"),
    "minicpm-wsd": recipe("minicpm-wsd"),
    "values": lambda: schedule_from_toml(VALUES_TOML),
    "token-clock": lambda: schedule_from_toml(TOKEN_CLOCK_TOML),
}
PLOTS = [
    ("one-step-warmup", "steps"),
    ("one-step-warmup-megatron", "samples"),
    ("many-phases", "samples"),
    ("many-phases", "steps"),
    ("crowded", "samples"),
    ("no-wd", "samples"),
    ("ramped", "steps"),
    ("ramped", "tokens"),
    ("deepseek-v3", "steps"),
    ("deepseek-v3", "tokens"),
    ("deepseek-v3", "samples"),
    ("llama2-7b", "tokens"),
    ("minicpm-wsd", "steps"),
    ("values", "steps"),
    ("values", "tokens"),
    ("token-clock", "tokens"),
]
PLOT_IDS = [f"{name}-{x}" for name, x in PLOTS]


@functools.cache
def schedule_of(name):
    return SCHEDULES[name]()


@functools.cache
def _drawn(name, x):
    figure = preview.plot_figure(schedule_of(name), x, name)
    figure.canvas.draw()
    return figure, figure.canvas.get_renderer()


@pytest.fixture
def drawn():
    """The plot of a schedule drawn on its Agg canvas, and the canvas's renderer (one
    drawing per schedule and x axis, shared by the tests, which only read it)."""
    pytest.importorskip("matplotlib")
    return _drawn


def inside(inner, outer) -> bool:
    return (
        outer.x0 <= inner.x0
        and inner.x1 <= outer.x1
        and outer.y0 <= inner.y0
        and inner.y1 <= outer.y1
    )


def apart(a, b) -> bool:
    return a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0


def phase_labels(figure):
    return [t for t in figure.axes[0].texts if t.get_gid() == "phase label"]


def legend_texts(figure) -> list[str]:
    (legend,) = figure.legends
    return [" ".join(t.get_text().split()) for t in legend.get_texts()]  # unwrapped


@pytest.mark.parametrize("name, x", PLOTS, ids=PLOT_IDS)
def test_phase_labels_lie_inside_the_axes_apart_above_the_curve_and_clear_of_the_legend(
    drawn, name, x
):
    figure, renderer = drawn(name, x)
    top = figure.axes[0]
    panel = top.get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in phase_labels(figure)]
    assert boxes
    for box in boxes:
        assert inside(box, panel), (box, panel)
    for a, b in itertools.combinations(boxes, 2):
        assert apart(a, b), (a, b)
    legend = figure.legends[0].get_window_extent(renderer)
    assert all(apart(box, legend) for box in boxes)
    lr = top.get_lines()[0]
    highest = top.transData.transform(np.column_stack([lr.get_xdata(), lr.get_ydata()]))[:, 1]
    assert highest.max() < min(box.y0 for box in boxes)


@pytest.mark.parametrize("name, x", PLOTS, ids=PLOT_IDS)
def test_each_label_is_its_phase_and_the_legend_names_every_phase(drawn, name, x):
    figure, _ = drawn(name, x)
    schedule = schedule_of(name)
    phases = preview.pieces(schedule, preview.total_samples(schedule))
    (boundaries,) = [t for t in legend_texts(figure) if t.startswith("phase boundaries")]
    for index, piece in enumerate(phases):
        assert re.search(rf"(?<!\d){index} {re.escape(piece.name)}(,|$)", boundaries)
    numbers = []
    for label in phase_labels(figure):
        number, _, rest = label.get_text().partition(": ")
        assert rest in ("", phases[int(number)].name)
        numbers.append(int(number))
    assert numbers == sorted(set(numbers))


def test_a_one_step_warmup_is_labelled_by_its_number_and_a_crowd_loses_labels(drawn):
    figure, _ = drawn("one-step-warmup", "steps")
    assert [t.get_text() for t in phase_labels(figure)] == ["0", "1: cosine"]
    figure, _ = drawn("crowded", "samples")
    assert len(phase_labels(figure)) < len(preview.pieces(schedule_of("crowded"), 10**6))


@given(
    spans=st.lists(st.tuples(st.floats(0, 500), st.floats(0, 50)), min_size=1, max_size=30),
    widths=st.lists(st.tuples(st.floats(1, 80), st.floats(1, 20)), min_size=30, max_size=30),
    rows=st.integers(1, 4),
)
def test_label_places_keep_labels_inside_and_apart(spans, widths, rows):
    spans = sorted((begin, begin + length) for begin, length in spans)
    full = [max(w) for w in widths[: len(spans)]]
    short = [min(w) for w in widths[: len(spans)]]
    places = preview.axes._label_places(spans, full, short, 0.0, 600.0, 3.0, rows)
    placed = []
    for (begin, end), whole_width, short_width, place in zip(spans, full, short, places):
        if place is None:
            continue
        whole, left, row = place
        width = whole_width if whole else short_width
        assert whole == (whole_width <= end - begin)
        assert 0 <= left and left + width <= 600 and 0 <= row < rows
        placed.append((row, left, left + width))
    for (row_a, left_a, right_a), (row_b, left_b, right_b) in itertools.combinations(placed, 2):
        assert row_a != row_b or right_a + 3 <= left_b or right_b + 3 <= left_a


TICK = re.compile(r"-?\d{1,3}(?:,\d{3})*(?:\.(?P<decimals>\d+))?(?P<unit>e-?\d+|[KMBT])?")


def tick_format(label: str) -> tuple:
    """A tick label's format: its number of decimals and its suffix or power of ten."""
    match = TICK.fullmatch(label)
    assert match, f"{label!r} is not a tick label paramsched writes"
    return len(match["decimals"] or ""), match["unit"]


def tick_value(label: str) -> float:
    match = TICK.fullmatch(label)
    number = (
        float(label[: match.start("unit")].replace(",", ""))
        if match["unit"]
        else float(label.replace(",", ""))
    )
    unit = match["unit"] or ""
    return number * (10.0 ** int(unit[1:]) if unit.startswith("e") else SI_SUFFIXES[unit])


@pytest.mark.parametrize("name, x", PLOTS, ids=PLOT_IDS)
def test_every_axis_writes_its_ticks_in_one_format(drawn, name, x):
    figure, _ = drawn(name, x)
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
            formats = {tick_format(label) for label in labels if label != "0"}
            assert len(formats) <= 1, (axes.get_ylabel(), labels)


NICE_TICKS = st.builds(
    lambda start, count, mantissa, exponent: [
        (start + k) * mantissa * 10.0**exponent for k in range(count)
    ],
    st.integers(0, 3),
    st.integers(2, 12),
    st.sampled_from([1, 2, 2.5, 5]),
    st.integers(-9, 14),
)


@given(ticks=NICE_TICKS)
def test_tick_rules_write_one_format_that_reads_back(ticks):
    whole = all(float(tick).is_integer() for tick in ticks)  # count axes have whole ticks
    for rule in (preview.count_labels, preview.rate_labels) if whole else (preview.rate_labels,):
        labels = rule(ticks)
        assert len({tick_format(label) for label in labels if label != "0"}) <= 1, labels
        for tick, label in zip(ticks, labels):
            assert tick_value(label) == pytest.approx(tick, rel=1e-9, abs=1e-9 * max(ticks))


@pytest.mark.parametrize("x, total", [("samples", "samples"), ("tokens", "tokens")])
def test_count_axes_use_the_tables_si_suffixes(drawn, x, total):
    figure, _ = drawn("deepseek-v3", x)
    labels = [t.get_text() for t in figure.axes[-1].get_xticklabels() if t.get_text()]
    table_suffix = preview.counts._number(preview.totals(schedule_of("deepseek-v3"))[total])[-1]
    assert table_suffix in "KMBT"
    assert {tick_format(label)[1] for label in labels if label != "0"} == {table_suffix}
    # One table of suffixes for both, units': B (not its alias G) for 10**9.
    assert preview.counts._number(2.5 * 10**9) == "2.5B" and preview.count_labels([0, 2e9]) == [
        "0",
        "2B",
    ]
    assert [preview.counts._si_scale(scale)[1] for scale in SI_SUFFIXES.values()] == list(
        SI_SUFFIXES.values()
    )


def batch_panel(figure):
    found = [axes for axes in figure.axes if axes.get_ylabel() == "global batch size"]
    return found[0] if found else None


@pytest.mark.parametrize(
    "name, x",
    [
        ("ramped", "steps"),
        ("ramped", "tokens"),
        ("many-phases", "samples"),
        ("many-phases", "steps"),
        ("deepseek-v3", "steps"),
        ("deepseek-v3", "tokens"),
    ],
    ids=lambda v: v,
)
def test_the_batch_size_is_drawn_as_the_run_gives_it_at_every_step(drawn, name, x):
    figure, _ = drawn(name, x)
    schedule = schedule_of(name)
    run = schedule.run
    (line,) = batch_panel(figure).get_lines()
    assert line.get_drawstyle() == "steps-post" and line.get_label() in legend_texts(figure)
    xs, sizes = line.get_xdata(), line.get_ydata()
    assert len(xs) < 50  # the function's changes, not every step
    last = run.step_at_samples(preview.total_samples(schedule))
    steps = sorted(set(range(min(last, 30_000) + 1)) | set(range(0, last + 1, 997)))
    samples = run.samples_at_step(np.array(steps))
    at = {"steps": np.array(steps), "samples": samples, "tokens": samples * (run.seq_length or 0)}[
        x
    ]
    drawn_sizes = sizes[np.searchsorted(xs, at, side="right") - 1]
    assert drawn_sizes.tolist() == [run.batch_size_at(int(s)) for s in samples]


def test_the_batch_size_over_a_grid_of_samples_is_the_size_of_the_step_under_way():
    pytest.importorskip("matplotlib")
    schedule = PhaseSchedule.from_dict(
        {
            "run": {
                "global_batch_size": 4,
                "rampup_batch_size": [1, 1, "3000 samples"],
                "total": "10M samples",
            },
            "lr": {"max_lr": 1.0, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
        }
    )
    run = schedule.run
    assert run.step_at_samples(10**7) > preview.PLOT_STEPS  # so the plot is on a grid
    figure = preview.plot_figure(schedule, "samples", "grid")
    (line,) = batch_panel(figure).get_lines()
    xs, sizes = line.get_xdata(), line.get_ydata()
    grid = np.linspace(0, preview.total_samples(schedule), 200_001)  # the plot's grid
    for s in [*grid[:100], *grid[::997], 2999.5, 3000, 3001]:
        step = run.step_at_samples(s)
        start = run.samples_at_step(step if run.samples_at_step(step) <= s else step - 1)
        assert sizes[np.searchsorted(xs, s, side="right") - 1] == run.batch_size_at(start), s


def test_the_batch_size_comes_from_whole_arrays_not_a_loop_over_steps(monkeypatch):
    pytest.importorskip("matplotlib")
    schedule = load_schedule(recipe_path("deepseek-v3"))
    schedule.run.samples_at_step(0)  # the ramp's stretches, found once per run
    calls = []
    for method in ("batch_size_at", "samples_at_step", "step_at_samples"):
        original = getattr(Run, method)
        monkeypatch.setattr(
            Run,
            method,
            lambda self, value, original=original, method=method: (
                calls.append(method),
                original(self, value),
            )[1],
        )
    preview.plot_figure(schedule, "steps", "deepseek-v3")
    assert len(calls) < 100  # a few per phase; a loop over the steps would make 247,199


@pytest.mark.parametrize("name", ["llama2-7b", "no-wd", "one-step-warmup", "full-size-ramp"])
def test_no_batch_size_panel_when_the_batch_size_is_constant(name):
    pytest.importorskip("matplotlib")
    schedule = schedule_of(name)
    assert schedule.run is None or not schedule.run.ramps
    figure = preview.plot_figure(schedule, "samples", name)
    assert len(figure.axes) == 2 and batch_panel(figure) is None


@pytest.mark.parametrize("name, x", PLOTS, ids=PLOT_IDS)
def test_the_legend_names_every_line_and_its_values_and_stays_off_the_panels(drawn, name, x):
    figure, renderer = drawn(name, x)
    schedule = schedule_of(name)
    texts = legend_texts(figure)
    lines = [line for axes in figure.axes for line in axes.get_lines() if len(line.get_xdata())]
    assert len(texts) == len(lines) + 1  # and the phase boundaries
    for line in lines:
        assert " ".join(line.get_label().split()) in texts
    curves = {"lr": schedule.lr_curve} | ({"wd": schedule.wd_curve} if schedule.has_wd else {})
    for which, curve in curves.items():
        (text,) = [t for t in texts if t.startswith(f"{which} (")]
        named = dict(pair.split("=") for pair in text[len(which) + 2 : -1].split(", "))
        assert set(named) == curve.names()
        for key, value in named.items():
            assert float(value) == pytest.approx(getattr(schedule, key), rel=1e-5)
    legend = figure.legends[0].get_window_extent(renderer)
    assert inside(legend, figure.bbox)
    for axes in figure.axes:
        assert apart(legend, axes.get_window_extent(renderer))
        assert apart(legend, axes.xaxis.label.get_window_extent(renderer))


@pytest.mark.parametrize(
    "call",
    [
        lambda s: preview.at("2000 steps", s),
        lambda s: preview.table("title", s),
        lambda s: preview.totals(None),
        lambda s: preview.step_curve({"lr": 1.0}),
    ],
    ids=["at-swapped", "table-swapped", "totals-none", "curve-dict"],
)
def test_a_preview_of_what_is_not_a_schedule_is_refused_by_type(call):
    schedule = from_megatron_args(argparse.Namespace(lr=1e-3, train_iters=10, global_batch_size=4))
    with pytest.raises(
        ScheduleTypeError, match="is of type .*; expected a paramsched.Schedule or PhaseSchedule"
    ):
        call(schedule)


def test_a_run_too_long_to_list_step_by_step_is_previewed_on_a_grid():
    schedule = from_megatron_args(
        argparse.Namespace(lr=1e-3, train_iters=10**9, global_batch_size=4)
    )
    assert preview.step_curve(schedule) is None  # 10**9 steps: not listed one by one
    sums = preview.totals(schedule)
    assert (sums["steps"], sums["samples"], sums["lr_area"]) == (10**9, 4 * 10**9, None)


def test_a_branch_is_drawn_over_its_parent_dashed():
    pytest.importorskip("matplotlib")
    parent = load_schedule(recipe_path("minicpm-wsd"))
    branch = parent.branch("50%", [{"shape": "linear", "to": "min_lr", "until": "60%"}])
    figure = preview.plot_figure(branch, "steps", "a cooldown")
    top = figure.axes[0]
    dashed = [line for line in top.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    samples, _ = preview.axes._plotted_points(branch, "steps")
    assert dashed[0].get_ydata().tolist() == parent.lr(samples).tolist()
    half = branch.run.step_at_samples(branch.branch_point)
    assert dashed[0].get_label() == f"the schedule it branches from, at {half:,} steps"
    legend = figure.legends[0]
    assert dashed[0].get_label() in [t.get_text() for t in legend.get_texts()]


# ------------------------------------------------------------ comparisons


def wsd_and_cooldown():
    """The minicpm-wsd recipe and a cooldown branched from it at step 40,000."""
    wsd = load_schedule(recipe_path("minicpm-wsd"))
    return wsd, wsd.branch(
        "40000 steps", [{"shape": "minus_sqrt", "to": "min_lr", "until": "50000 steps"}]
    )


def first_difference(a, b) -> int | None:
    """The first step whose lr differs, found one step at a time on the scalar path (not
    `preview.departure`'s)."""
    steps = range(
        min(
            a.run.step_at_samples(preview.total_samples(a)),
            b.run.step_at_samples(preview.total_samples(b)),
        )
        + 1
    )
    return next(
        (n for n in steps if a.lr(a.run.samples_at_step(n)) != b.lr(b.run.samples_at_step(n))), None
    )


def test_a_branch_departs_at_the_first_step_after_its_branch_point():
    wsd, cooldown = wsd_and_cooldown()
    assert cooldown.branch_point == wsd.run.samples_at_step(40_000)
    expected = first_difference(cooldown, wsd)
    assert expected == 40_001
    assert preview.departure(cooldown, wsd) == expected
    assert preview.departure(wsd, cooldown) == expected
    assert preview.departure(wsd, wsd) is None


def test_departure_compares_step_n_of_each_run_over_the_steps_both_have():
    # The same rates in samples, but batches of 1 against batches of 2: step n is at n
    # samples in one run and 2n in the other, so they part after the warmup's first step.
    def linear(batch, total):
        return PhaseSchedule.from_dict(
            {
                "run": {"global_batch_size": batch, "total": total},
                "lr": {
                    "max_lr": 1.0,
                    "phases": [{"shape": "linear", "to": "max_lr", "until": "8 samples"}],
                },
            }
        )

    assert (
        preview.departure(linear(2, "16 samples"), linear(1, "16 samples"))
        == first_difference(linear(2, "16 samples"), linear(1, "16 samples"))
        == 1
    )
    # A run that is the other's first part never departs from it.
    assert preview.departure(linear(1, "10 samples"), linear(1, "40 samples")) is None


def test_comparison_rows():
    wsd, cooldown = wsd_and_cooldown()
    rows = preview.comparison([("wsd", wsd), ("cooldown", cooldown), ("again", wsd)])
    sums = preview.totals(cooldown)
    assert rows[1] == {
        "name": "cooldown",
        "total_steps": sums["steps"],
        "samples": sums["samples"],
        "tokens": sums["tokens"],
        "peak_lr": sums["peak_lr"],
        "final_lr": sums["final_lr"],
        "area": sums["lr_area"],
        "diverges_at_step": 40_001,
    }
    assert rows[0]["diverges_at_step"] is None and rows[2]["diverges_at_step"] is None
    text = preview.comparison_table(rows)
    assert [line.split()[-1] for line in text.splitlines()[2:5]] == ["-", "40,001", "never"]


def test_a_comparison_goes_step_by_step_or_is_refused(monkeypatch):
    wsd, _ = wsd_and_cooldown()
    unbatched = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": 0.0, "from": "max_lr", "until": "10 samples"}],
            }
        }
    )
    with pytest.raises(
        ScheduleError,
        match="^file.toml has no global_batch_size; expected a "
        r"run that counts optimizer steps \(a comparison goes step by step\)$",
    ):
        preview.comparison([("wsd", wsd), ("file.toml", unbatched)])
    for module in (preview.points, preview.compare):  # where it is read
        monkeypatch.setattr(module, "LISTED_STEPS", 1000)
    with pytest.raises(ScheduleError, match="^wsd has more than 1,000 steps; expected at most"):
        preview.comparison([("wsd", wsd), ("other", wsd)])


def test_the_comparison_plot_has_one_line_per_schedule_named_in_the_legend():
    pytest.importorskip("matplotlib")
    wsd, cooldown = wsd_and_cooldown()
    for x in ("steps", "samples", "tokens"):
        figure = preview.compare_figure([("wsd", wsd), ("cooldown", cooldown)], x, "title")
        (axis,) = figure.axes
        lines = axis.get_lines()
        assert [line.get_label() for line in lines] == ["wsd", "cooldown"]
        assert legend_texts(figure) == ["wsd", "cooldown"]
        assert np.array_equal(
            lines[1].get_ydata(), cooldown.lr(cooldown.run.samples_at_step(np.arange(100_001)))
        )
        scale = {"steps": 1, "samples": 1024, "tokens": 1024 * 4096}[x]
        assert lines[0].get_xdata()[-1] == 100_000 * scale
        assert axis.get_xlabel() == preview.X_LABELS[x]
        renderer = figure.canvas.get_renderer()
        assert apart(
            figure.legends[0].get_window_extent(renderer), axis.get_window_extent(renderer)
        )


def test_a_comparison_plot_the_runs_cannot_give_is_refused_naming_the_schedule():
    pytest.importorskip("matplotlib")
    wsd, _ = wsd_and_cooldown()
    short = PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 2},
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "8 samples"}],
            },
        }
    )
    with pytest.raises(ScheduleError, match="^short.toml: --x tokens needs the run's seq_length$"):
        preview.check_compare_plot([("wsd", wsd), ("short.toml", short)], "c.png", "tokens")
    with pytest.raises(ScheduleError, match="^--out='c.xyz' has the extension .xyz"):
        preview.check_compare_plot([("wsd", wsd), ("short.toml", short)], "c.xyz", "steps")


# ------------------------------------------------- scheduled values, rules, token clocks


def value_panels(figure) -> dict:
    """The panels of scheduled values, by their labels."""
    return {
        axes.get_ylabel(): axes
        for axes in figure.axes
        if axes.get_ylabel().endswith((" (group)", " (loop)"))
    }


@pytest.mark.parametrize(
    "name, x",
    [("values", "steps"), ("values", "samples"), ("values", "tokens"), ("token-clock", "tokens")],
    ids=lambda v: v,
)
def test_each_scheduled_value_has_its_own_panel_on_the_shared_x_axis(drawn, name, x):
    figure, _ = drawn(name, x)
    schedule = schedule_of(name)
    panels = value_panels(figure)
    expected = {
        "values": ["betas[1] (group)", "grad_clip (loop)"],
        "token-clock": ["momentum (group)"],
    }[name]
    assert list(panels) == expected
    batch = 1 if schedule.run.ramps else 0
    assert len(figure.axes) == 2 + batch + len(expected)
    assert [axes.get_ylabel() for axes in figure.axes[-len(expected) :]] == expected
    samples, steps = preview.axes._plotted_points(schedule, x)
    top = figure.axes[0]
    for (label, panel), value in zip(panels.items(), schedule.values):
        assert panel.get_shared_x_axes().joined(top, panel)
        (line,) = panel.get_lines()
        assert line.get_label() in legend_texts(figure)
        assert line.get_label().startswith(f"{value.name} (start=")
        assert np.array_equal(line.get_ydata(), schedule.value(value.name, samples))
        assert np.array_equal(line.get_xdata(), top.get_lines()[0].get_xdata())
    assert figure.axes[-1].get_xlabel() == preview.X_LABELS[x]


def test_values_read_back_from_the_csv_bit_for_bit(tmp_path):
    schedule = schedule_from_toml(VALUES_TOML)
    path = tmp_path / "values.csv"
    rows = preview.write_csv(schedule, path)
    with open(path) as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == ["step", "samples", "tokens", "lr", "wd", "betas[1]", "grad_clip"]
    assert len(table) == rows == 401
    samples = np.array([int(row["samples"]) for row in table])
    assert samples.tolist() == schedule.run.samples_at_step(np.arange(401)).tolist()
    for column in ("betas[1]", "grad_clip"):
        written = np.array([float(row[column]) for row in table])
        assert (written == schedule.value(column, samples)).all()
    assert (np.array([float(row["lr"]) for row in table]) == schedule.lr(samples)).all()


def test_points_and_the_table_carry_every_value():
    schedule = schedule_from_toml(VALUES_TOML)
    found = preview.at(schedule, "50%")
    assert list(found) == ["step", "samples", "tokens", "lr", "wd", "betas[1]", "grad_clip"]
    assert found["betas[1]"] == schedule.value("betas[1]", found["samples"]) == 0.99
    assert found["grad_clip"] == schedule.value("grad_clip", found["samples"])
    assert [point["samples"] for point in preview.phase_ends(schedule)] == [160, 3200]
    text = preview.table(schedule, "values")
    assert (
        "scheduled values (group: written into every parameter group; loop: read by the "
        "training loop)" in text
    )
    rows = [line.split() for line in text.splitlines() if line.startswith(("betas", "grad"))]
    assert [(row[0], row[2], row[3]) for row in rows] == [
        ("betas[1]", "0", "linear"),
        ("betas[1]", "1", "hold"),
        ("grad_clip", "0", "cosine"),
        ("grad_clip", "1", "hold"),
    ]
    assert rows[0][-2:] == ["0.95", "0.99"] and rows[2][-2:] == ["1", "0.25"]


def test_a_value_named_as_a_fixed_column_is_written_under_its_place():
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "10 samples"}],
            },
            "loop": {
                "wd": {
                    "start": 2.0,
                    "phases": [{"shape": "linear", "to": 1.0, "until": "10 samples"}],
                }
            },
        }
    )
    assert [column for column, _ in preview.value_columns(schedule)] == ["loop.wd"]
    found = preview.at(schedule, "5 samples")
    assert found["wd"] is None and found["loop.wd"] == schedule.value("wd", 5) == 1.5


def test_a_batch_size_rule_draws_the_scaled_rate_and_the_base_rate_dashed():
    pytest.importorskip("matplotlib")
    schedule = schedule_from_toml(RULE_TOML)
    assert schedule.batch_size_rule == ("sqrt", 256)
    figure = preview.plot_figure(schedule, "steps", "rule")
    samples, _ = preview.axes._plotted_points(schedule, "steps")
    top = figure.axes[0]
    scaled, base = top.get_lines()
    assert np.array_equal(scaled.get_ydata(), schedule.lr(samples))
    assert np.array_equal(base.get_ydata(), schedule.base_lr(samples))
    assert (scaled.get_linestyle(), base.get_linestyle()) == ("-", "--")
    assert (
        scaled.get_label() == "lr, following the batch size (sqrt rule): base lr \u00d7 "
        "sqrt(batch size / 256)"
    )
    assert base.get_label() == (
        "base lr, before the sqrt rule (init_lr=0, max_lr=1e-3, min_lr=1e-4)"
    )
    # The rule doubles the rate once the batch is 4 times the reference.
    assert scaled.get_ydata()[-1] == 2 * base.get_ydata()[-1]
    sizes, reference = batch_panel(figure).get_lines()
    assert sizes.get_drawstyle() == "steps-post" and reference.get_ydata().tolist() == [256, 256]
    assert reference.get_label() == "reference batch size 256 (the sqrt rule's)"
    texts = legend_texts(figure)
    for line in (scaled, base, sizes, reference):
        assert line.get_label() in texts
    assert list(value_panels(figure)) == ["grad_clip (loop)"]
    highest = top.transData.transform(np.column_stack([scaled.get_xdata(), scaled.get_ydata()]))[
        :, 1
    ].max()
    assert highest < min(t.get_window_extent().y0 for t in phase_labels(figure))


def test_a_batch_size_rule_is_said_in_the_table_and_its_columns_in_the_csv(tmp_path):
    schedule = schedule_from_toml(RULE_TOML)
    text = preview.table(schedule, "rule")
    assert (
        "lr follows the batch size: sqrt rule, reference 256 (lr = base lr * "
        "sqrt(batch size / 256))"
    ) in text.splitlines()
    assert "base lr at start" in text.splitlines()[1]
    path = tmp_path / "rule.csv"
    preview.write_csv(schedule, path)
    with open(path) as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == [
        "step",
        "samples",
        "tokens",
        "lr",
        "wd",
        "base_lr",
        "batch_size",
        "grad_clip",
    ]
    samples = np.array([int(row["samples"]) for row in table])
    assert (np.array([float(r["base_lr"]) for r in table]) == schedule.base_lr(samples)).all()
    assert (np.array([float(r["lr"]) for r in table]) == schedule.lr(samples)).all()
    assert [int(r["batch_size"]) for r in table] == [
        schedule.run.batch_size_at(int(s)) for s in samples
    ]
    found = preview.at(schedule, "100%")
    assert (found["batch_size"], found["lr"]) == (1024, 2 * found["base_lr"])


def test_a_token_clock_is_previewed_in_tokens(tmp_path):
    schedule = schedule_from_toml(TOKEN_CLOCK_TOML)
    assert preview.step_curve(schedule) is None
    sums = preview.totals(schedule)
    assert (sums["steps"], sums["samples"], sums["tokens"], sums["lr_area"]) == (
        None,
        None,
        10**7,
        None,
    )
    text = preview.table(schedule, "tokens")
    header = text.splitlines()[1].split()
    assert (
        header[:3] == ["phase", "shape", "tokens"]
        and "steps" not in header
        and "samples" not in header
    )
    assert "total: 10M tokens (the clock counts tokens)" in text
    assert "stage  from tokens  batch size" in text
    found = preview.at(schedule, "1M tokens")
    assert (found["step"], found["samples"], found["tokens"]) == (None, None, 10**6)
    assert found["momentum"] == schedule.value("momentum", 10**6)
    with pytest.raises(
        ScheduleError, match="^--at='5 steps' is in steps, on a run whose clock counts tokens"
    ):
        preview.at(schedule, "5 steps")
    path = tmp_path / "tokens.csv"
    rows = preview.write_csv(schedule, path)
    with open(path) as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == ["tokens", "lr", "wd", "momentum"] and len(table) == rows
    tokens = [int(row["tokens"]) for row in table]  # whole tokens, the last the total
    assert tokens[0] == 0 and tokens[-1] == 10**7 and tokens == sorted(set(tokens))
    assert (np.array([float(r["lr"]) for r in table]) == schedule.lr(tokens)).all()
    assert (
        np.array([float(r["momentum"]) for r in table]) == schedule.value("momentum", tokens)
    ).all()


def test_a_short_token_clock_is_listed_token_by_token():
    schedule = PhaseSchedule.from_dict(
        {
            "run": {"clock": "tokens", "total": "50 tokens"},
            "lr": {"max_lr": 1.0, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
        }
    )
    assert preview.grid(schedule, 100_001).tolist() == list(range(51))


@pytest.mark.parametrize("x", ["steps", "samples"])
def test_a_token_clock_plot_refuses_steps_and_samples(x):
    pytest.importorskip("matplotlib")
    schedule = schedule_from_toml(TOKEN_CLOCK_TOML)
    assert preview.default_x(schedule) == "tokens"
    with pytest.raises(
        ScheduleError,
        match=f"^--x {x}: the run's clock counts tokens, which fix no {x}; expected --x tokens$",
    ):
        preview.check_plot(schedule, "t.png", x)
    with pytest.raises(ScheduleError, match=f"^--x {x}: the run's clock counts tokens"):
        preview.plot_figure(schedule, x, "t")


def test_a_token_clock_draws_its_batch_size_against_tokens(drawn):
    figure, _ = drawn("token-clock", "tokens")
    schedule = schedule_of("token-clock")
    (line,) = batch_panel(figure).get_lines()
    assert line.get_xdata().tolist() == [0, 10**6, 10**7]
    assert line.get_ydata().tolist() == [128, 256, 256]
    tokens = preview.grid(schedule, 200_001)
    sizes = line.get_ydata()[np.searchsorted(line.get_xdata(), tokens, side="right") - 1]
    assert sizes.tolist() == schedule.run.batch_sizes_at(tokens).tolist()


def test_a_linear_rule_on_a_token_clock_follows_the_stages():
    pytest.importorskip("matplotlib")
    schedule = schedule_from_toml(with_rule(TOKEN_CLOCK_TOML, "linear", 256))
    figure = preview.plot_figure(schedule, "tokens", "t")
    tokens = preview.grid(schedule, 200_001)
    scaled, base = figure.axes[0].get_lines()
    assert np.array_equal(scaled.get_ydata(), schedule.lr(tokens))
    assert np.array_equal(base.get_ydata(), schedule.base_lr(tokens))
    half = tokens < 10**6  # batches of 128 against a reference of 256 until 1M tokens
    assert (scaled.get_ydata()[half] == base.get_ydata()[half] * 0.5).all()
    assert (scaled.get_ydata()[~half] == base.get_ydata()[~half]).all()
    assert "lr follows the batch size: linear rule, reference 256" in preview.table(schedule, "t")


def test_the_timeline_lists_every_boundary_with_each_value():
    schedule = schedule_from_toml(VALUES_TOML)
    rows = preview.timeline(schedule, 4)
    assert [(row["step"], row["event"]) for row in rows] == [
        (0, "start"),
        (20, "lr phase 0 (linear) ends"),
        (100, ""),
        (200, "betas[1] phase 0 (linear) ends"),
        (300, "grad_clip phase 0 (cosine) ends"),
        (400, "end"),
    ]
    for row in rows:
        assert row["samples"] == schedule.run.samples_at_step(row["step"])
        assert row["betas[1]"] == schedule.value("betas[1]", row["samples"])
        assert row["grad_clip"] == schedule.value("grad_clip", row["samples"])
    text = preview.timeline_table(schedule, 4, "values")
    assert text.splitlines()[1].split() == [
        "step",
        "samples",
        "tokens",
        "lr",
        "weight_decay",
        "betas[1]",
        "grad_clip",
        "event",
    ]
    tokens = preview.timeline(schedule_from_toml(TOKEN_CLOCK_TOML), 2)
    assert [(row["tokens"], row["event"]) for row in tokens] == [
        (0, "start"),
        (100_000, "lr phase 0 (linear) ends"),
        (10**6, "batch size 256"),
        (5 * 10**6, ""),
        (10**7, "end"),
    ]


def test_the_comparison_plot_has_a_panel_per_value_and_refuses_a_token_clock():
    pytest.importorskip("matplotlib")
    values, rule = schedule_from_toml(VALUES_TOML), schedule_from_toml(RULE_TOML)
    wsd, _ = wsd_and_cooldown()
    figure = preview.compare_figure(
        [("values", values), ("wsd", wsd), ("rule", rule)], "samples", "t"
    )
    assert [axes.get_ylabel() for axes in figure.axes] == [
        "learning rate",
        "betas[1] (group)",
        "grad_clip (loop)",
    ]
    lr_lines = figure.axes[0].get_lines()
    assert legend_texts(figure) == ["values", "wsd", "rule"]
    clips = figure.axes[2].get_lines()
    assert [line.get_label() for line in clips] == ["values", "rule"]
    assert [line.get_color() for line in clips] == [
        lr_lines[0].get_color(),
        lr_lines[2].get_color(),
    ]
    samples, _ = preview.axes._plotted_points(rule, "samples")
    assert np.array_equal(clips[1].get_ydata(), rule.value("grad_clip", samples))
    rows = preview.comparison([("values", values), ("rule", rule)])
    assert rows[1]["peak_lr"] == float(
        np.max(rule.lr(rule.run.samples_at_step(np.arange(rows[1]["total_steps"] + 1))))
    )
    with pytest.raises(
        ScheduleError,
        match="^tokens.toml's clock counts tokens, which fix no "
        "steps; expected a run that counts optimizer steps",
    ):
        preview.comparison(
            [("values", values), ("tokens.toml", schedule_from_toml(TOKEN_CLOCK_TOML))]
        )


def four_steps() -> PhaseSchedule:
    """A warmup of four steps of four samples: the smallest schedule a plot draws."""
    return PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 4},
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "4 steps"}],
            },
        }
    )


@pytest.mark.parametrize("suffix", preview.PLOT_FORMATS)
def test_every_plot_format_is_written_by_matplotlib_alone(tmp_path, suffix):
    pytest.importorskip("matplotlib")
    schedule = four_steps()
    path = tmp_path / f"plot.{suffix}"
    preview.plot(schedule, path, "steps", "t")
    assert path.stat().st_size > 0


@pytest.mark.parametrize(
    "suffix,why",
    [
        ("pgf", "which needs more than matplotlib to write (LaTeX)"),
        ("webp", "which needs more than matplotlib to write (an image codec of Pillow)"),
        ("doc", "which matplotlib does not write"),
    ],
    ids=["latex", "codec", "unknown"],
)
def test_a_plot_format_that_needs_more_than_matplotlib_is_refused_before_any_work(suffix, why):
    pytest.importorskip("matplotlib")
    schedule = four_steps()
    with pytest.raises(ScheduleError) as info:
        preview.check_plot(schedule, f"x.{suffix}", "steps")
    assert str(info.value) == (
        f"--out='x.{suffix}' has the extension .{suffix}, {why}; expected "
        "one of .png, .pdf, .svg, .svgz, .eps, .ps"
    )
