"""Tests for the paramsched command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paramsched import from_megatron_args
from paramsched.cli import EXAMPLE, main
import argparse


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_table_with_no_flags_shows_the_example(capsys):
    status, out, err = run(capsys, "table")
    assert status == 0 and err == ""
    assert out.startswith("example run: --lr 0.0003")
    assert "warmup ends" in out and "anneal starts" in out and "decay ends" in out


def test_table_values_are_the_schedules(capsys):
    status, out, _ = run(capsys, "table", "--lr", "1e-3", "--min-lr", "1e-4", "--train-iters",
                         "100", "--lr-warmup-iters", "10", "--lr-decay-style", "cosine",
                         "--global-batch-size", "8", "--points", "4")
    assert status == 0
    schedule = from_megatron_args(argparse.Namespace(
        lr=1e-3, min_lr=1e-4, train_iters=100, lr_warmup_iters=10, lr_decay_style="cosine",
        global_batch_size=8))
    rows = [line.split() for line in out.splitlines()[2:]]
    iterations = [int(r[0]) for r in rows]
    assert iterations == [0, 10, 25, 50, 75, 100]
    for row in rows:
        samples = int(row[1])
        assert samples == int(row[0]) * 8
        assert row[2] == f"{schedule.lr(samples):.6e}"
        assert row[3] == f"{schedule.wd(samples):.6e}"


@pytest.mark.parametrize("argv,message", [
    (["table", "--lr-decay-style", "cosin"], "invalid choice: 'cosin'"),
    (["table", "--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["table", "--lr", "1e-3"], "neither --train-iters nor --train-samples is set"),
    (["table", "--lr", "1e-3", "--train-iters", "10", "--min-lr", "1"],
     "min_lr=1.0 is greater than max_lr=0.001"),
    (["table", "--points", "-1"], "--points=-1; expected a number >= 0"),
    (["tabel"], "invalid choice: 'tabel'"),
    (["table", "--bogus"], "unrecognized arguments: --bogus"),
], ids=["style", "not-a-number", "no-length", "min-above-max", "points", "command", "flag"])
def test_bad_flags_give_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_runs_as_a_module_and_as_a_command():
    for command in ([sys.executable, "-m", "paramsched", "table"], ["paramsched", "table"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "decay ends" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "paramsched", "table", "--lr", "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_example_is_a_valid_megatron_configuration():
    assert from_megatron_args(argparse.Namespace(**EXAMPLE)).lr_decay_style == "WSD"
