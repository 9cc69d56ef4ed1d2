"""Tests for paramsched.preview: phases, points, totals, CSV and plot."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest

from paramsched import PhaseSchedule, ScheduleTypeError, from_megatron_args
from paramsched import preview

RUN = {"global_batch_size": 4, "seq_length": 10, "rampup_batch_size": [2, 2, 8],
       "total": "100 samples"}


def ramped():
    return PhaseSchedule.from_dict({"run": RUN, "lr": {"max_lr": 1.0, "min_lr": 0.0, "phases": [
        {"shape": "linear", "to": "max_lr", "until": "3 steps"},
        {"shape": "linear", "to": "min_lr", "until": "100%"}]}})


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
        ("linear", 0, 6, 0.0, 1.0), ("linear", 6, 100, 1.0, 0.0)]
    sums = preview.totals(s)
    steps = s.run.step_at_samples(100)
    manual = math.fsum(s.lr(s.run.samples_at_step(k)) for k in range(steps))
    assert sums == {"steps": steps, "samples": 100, "tokens": 1000, "peak_lr": 1.0,
                    "final_lr": 0.0, "lr_area": manual}


def test_megatron_pieces():
    s = from_megatron_args(argparse.Namespace(
        lr=1.0, min_lr=0.1, train_iters=100, lr_warmup_iters=10, lr_decay_iters=80,
        lr_decay_style="WSD", lr_wsd_decay_iters=20, lr_wsd_decay_style="cosine",
        global_batch_size=2))
    names = [(p.name, p.start, p.end) for p in preview.pieces(s, 200)]
    assert names == [("warmup", 0, 20), ("stable", 20, 120), ("WSD cosine", 120, 160),
                     ("hold", 160, 200)]
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
    phases = PhaseSchedule.from_dict({"run": {"total": "30 samples"}, "lr": {
        "max_lr": 1.0, "min_lr": 0.25, "phases": [
            {"shape": "linear", "to": "max_lr", "until": "10 samples"},
            {"shape": "linear", "to": "min_lr", "until": "20 samples"}]}})
    assert [(p.name, p.start, p.end, p.lr_start, p.lr_end)
            for p in preview.pieces(phases, 30)] == [
        ("linear", 0, 10, 0.0, 1.0), ("linear", 10, 20, 1.0, 0.25), ("hold", 20, 30, 0.25, 0.25)]
    assert [p.name for p in preview.pieces(phases, 20)] == ["linear", "linear"]  # no hold
    megatron = from_megatron_args(argparse.Namespace(
        lr=1.0, min_lr=0.5, train_iters=10, lr_decay_iters=8, global_batch_size=1,
        lr_decay_style="linear"))
    last = preview.pieces(megatron, 10)[-1]
    assert (last.name, last.start, last.end, last.lr_start, last.lr_end) == \
        ("hold", 8, 10, 0.5, 0.5)
    constant = from_megatron_args(argparse.Namespace(
        lr=1.0, train_iters=10, lr_warmup_iters=2, global_batch_size=1, lr_decay_style="constant"))
    assert [(p.name, p.start, p.end) for p in preview.pieces(constant, 10)] == [
        ("warmup", 0, 2), ("constant", 2, 10)]


@pytest.mark.parametrize("call", [
    lambda s: preview.at("2000 steps", s), lambda s: preview.table("title", s),
    lambda s: preview.totals(None), lambda s: preview.step_curve({"lr": 1.0}),
], ids=["at-swapped", "table-swapped", "totals-none", "curve-dict"])
def test_a_preview_of_what_is_not_a_schedule_is_refused_by_type(call):
    schedule = from_megatron_args(argparse.Namespace(lr=1e-3, train_iters=10,
                                                     global_batch_size=4))
    with pytest.raises(ScheduleTypeError, match="is of type .*; expected a paramsched.Schedule "
                                                "or PhaseSchedule"):
        call(schedule)


def test_a_run_too_long_to_list_step_by_step_is_previewed_on_a_grid():
    schedule = from_megatron_args(argparse.Namespace(lr=1e-3, train_iters=10**9,
                                                     global_batch_size=4))
    assert preview.step_curve(schedule) is None  # 10**9 steps: not listed one by one
    sums = preview.totals(schedule)
    assert (sums["steps"], sums["samples"], sums["lr_area"]) == (10**9, 4 * 10**9, None)
