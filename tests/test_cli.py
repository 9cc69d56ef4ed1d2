"""Tests for the paramsched command line."""

from __future__ import annotations

import json
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


def test_recipes_lists_every_recipe_with_its_source(capsys):
    status, out, _ = run(capsys, "recipes")
    assert status == 0
    for name in ("llama2-7b", "minicpm-wsd", "deepseek-v3"):
        assert f"{name}: " in out
    assert out.count("source: ") >= 3


def test_preview_of_a_recipe_with_points_csv_and_plot(capsys, tmp_path):
    png, table = tmp_path / "s.png", tmp_path / "s.csv"
    status, out, err = run(capsys, "preview", "--recipe", "deepseek-v3", "--at", "2000 steps",
                           "--at", "10T tokens", "--out", str(png), "--x", "tokens",
                           "--csv", str(table))
    assert status == 0, err
    assert "constant" in out and "cosine" in out and "area under the lr curve" in out
    assert png.read_bytes()[:4] == b"\x89PNG" and table.read_text().startswith("step,samples")


def test_preview_json_points(capsys):
    from paramsched import load_schedule
    from paramsched.recipe import recipe_path

    status, out, _ = run(capsys, "preview", "--recipe", "llama2-7b", "--json", "--at",
                         "2000 steps", "--at", "50%")
    points = json.loads(out)
    schedule = load_schedule(recipe_path("llama2-7b"))
    assert [sorted(p) for p in points] == [["lr", "samples", "step", "tokens", "wd"]] * 2
    assert points[0] == {"step": 2000, "samples": 2000 * 1024, "tokens": 2000 * 1024 * 4096,
                         "lr": 3e-4, "wd": 0.1}
    assert points[1]["lr"] == schedule.lr(points[1]["samples"])


def test_preview_from_megatron_flags_and_a_file(capsys, tmp_path):
    status, out, _ = run(capsys, "preview", "--lr", "1e-3", "--train-samples", "100000",
                         "--rampup-batch-size", "32", "32", "10000", "--global-batch-size",
                         "128", "--lr-decay-style", "cosine", "--lr-warmup-samples", "1000",
                         "--seq-length", "512")
    assert status == 0 and "warmup" in out and "cosine" in out
    path = tmp_path / "s.toml"
    path.write_text("[lr]\nmax_lr = 1.0\nphases = [{ shape = 'linear', to = 0.0, "
                    "until = '10 samples', from = 'max_lr' }]\n")
    status, out, _ = run(capsys, "preview", str(path), "--at", "5 samples")
    assert status == 0 and "5.000000e-01" in out


@pytest.mark.parametrize("argv,message", [
    (["preview"], "expected one schedule"),
    (["preview", "--recipe", "x", "--lr", "1"], "expected one schedule"),
    (["preview", "--recipe", "nope"], "recipe 'nope' is not one of"),
    (["preview", "missing.toml"], "missing.toml: no such file"),
    (["preview", "--recipe", "llama2-7b", "--at", "5 apples"], "--at='5 apples' is not a quantity"),
    (["preview", "--recipe", "llama2-7b", "--x", "epochs"], "invalid choice: 'epochs'"),
    (["preview", "--lr", "1", "--train-iters", "10", "--global-batch-size", "4",
      "--rampup-batch-size", "1", "1", "8"], "with --train-iters; expected --train-samples"),
    (["preview", "--recipe", "llama2-7b", "--csv", "/nonexistent/dir/x.csv"], "No such file"),
    (["preview", "--recipe", "llama2-7b", "--at", "1e400 steps"], "is beyond any run"),
    (["preview", "--lr", "1", "--train-iters", "0", "--global-batch-size", "4"],
     "--train-iters=0; expected a number > 0"),
], ids=["none", "two", "recipe", "file", "at", "x", "ramp-iters", "csv-path", "huge", "zero"])
def test_preview_errors_are_one_line(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
