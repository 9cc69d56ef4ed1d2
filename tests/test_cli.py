"""Tests for the paramsched command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from paramsched import from_megatron_args
from paramsched.cli import EXAMPLE, _build_parser, main
from paramsched.megatron import MEGATRON_FLAGS
import argparse

from test_megatron import FLAG_EXAMPLES, FLAG_NAMES


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
    (["table", "--lr", "1", "--train-samples", "4", "--global-batch-size", "8"],
     "--train-samples=4 is less than one iteration of 8 samples"),
    (["table", "--lr", "1", "--train-samples", "100", "--global-batch-size", "8",
      "--rampup-batch-size", "4", "4", "100"],
     "--train-samples=100 ends within the batch-size ramp-up, which takes 108 samples"),
    (["table", "--lr", "1", "--train-samples", "100", "--rampup-batch-size", "4", "x", "100"],
     "--rampup-batch-size[1]='x'; expected a whole number"),
    (["table", "--rampup-batch-size", "4", "4"], "expected 3 arguments"),
], ids=["style", "not-a-number", "no-length", "min-above-max", "points", "command", "flag",
        "samples-short", "samples-in-ramp", "ramp-not-a-number", "ramp-two-values"])
def test_bad_flags_give_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def flag_words(values: dict) -> list[str]:
    """Megatron's arguments as command-line words."""
    words = []
    for name, value in values.items():
        words.append("--" + name.replace("_", "-"))
        words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return words


@pytest.mark.parametrize("command", ["table", "preview"])
@pytest.mark.parametrize("name", FLAG_NAMES, ids=FLAG_NAMES)
def test_table_and_preview_take_every_megatron_flag(capsys, command, name):
    values = FLAG_EXAMPLES[name]
    options = _build_parser().parse_args([command, *flag_words(values)])
    expected = values[name]
    assert getattr(options, name) == ([str(v) for v in expected] if isinstance(expected, list)
                                      else expected)
    status, out, err = run(capsys, command, *flag_words(values))
    assert status == 0 and out
    assert all(line.startswith(f"paramsched {command}: note: ") for line in err.splitlines())
    assert ("--rampup-batch-size follows Megatron-Core 0.16" in err) == (name == "rampup_batch_size")


@pytest.mark.parametrize("command", ["table", "preview"])
def test_help_lists_every_megatron_flag(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in MEGATRON_FLAGS:
        assert f"  {flag.option} " in out and f"  {flag.help}\n" in out
    assert ("--points" in out) == (command == "table")


SAMPLE_BASED_TABLE = """\
decay style linear, 12 iterations of 8 samples (Megatron's count for --train-samples 100); \
values the scheduler holds after each iteration
 iteration      samples             lr   weight_decay  event
         0            0   0.000000e+00   1.000000e-02  start
         3           24   9.550000e-04   1.000000e-02  warmup ends
         6           48   6.850000e-04   1.000000e-02
        12           96   1.450000e-04   1.000000e-02  training ends
        13          104   1.000000e-04   1.000000e-02  decay ends
"""


def test_table_of_a_sample_based_run(capsys):
    flags = dict(lr=1e-3, min_lr=1e-4, train_samples=100, global_batch_size=8,
                 lr_warmup_samples=20)
    status, out, err = run(capsys, "table", *flag_words(flags), "--points", "2")
    assert status == 0 and err == ""
    assert out == SAMPLE_BASED_TABLE
    schedule = from_megatron_args(argparse.Namespace(**flags))
    for row in [line.split() for line in out.splitlines()[2:]]:
        samples = int(row[1])
        assert samples == int(row[0]) * 8
        assert (row[2], row[3]) == (f"{schedule.lr(samples):.6e}", f"{schedule.wd(samples):.6e}")


def test_table_of_a_sample_based_run_with_a_ramp(capsys):
    flags = dict(lr=1e-3, train_samples=1000, global_batch_size=8, rampup_batch_size=[4, 4, 100],
                 lr_decay_style="cosine")
    status, out, err = run(capsys, "table", *flag_words(flags), "--points", "2")
    assert status == 0 and err == ("paramsched table: note: --rampup-batch-size follows "
                                   "Megatron-Core 0.16 and 0.17; from 0.18 Megatron ignores it "
                                   "(use --step-batch-size-schedule)\n")
    # 25 iterations of 4 samples, one of 8 that ends the ramp at 108, then 111 whole batches.
    assert out.startswith("decay style cosine, 137 iterations of 4 rising to 8 samples")
    schedule = from_megatron_args(argparse.Namespace(**flags))
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [int(r[0]) for r in rows] == [0, 68, 137, 138]
    assert rows[2][4:] == ["training", "ends"] and rows[3][4:] == ["decay", "ends"]
    for row in rows:
        samples = int(row[1])
        assert samples == schedule.run.samples_at_step(int(row[0]))
        assert row[2] == f"{schedule.lr(samples):.6e}"
    assert int(rows[2][1]) == 996


@pytest.mark.parametrize("command", ["table", "preview"])
@pytest.mark.parametrize("argv,message", [
    (["--lr", "-3e-4"], "--lr=-0.0003 is negative; expected a number >= 0"),
    (["--lr", "-0.0003"], "--lr=-0.0003 is negative; expected a number >= 0"),
    (["--lr", "1e-3", "--min-lr", "-1E-5"], "--min-lr=-1e-05 is negative"),
    (["--lr", "1e-3", "--lr-warmup-fraction", "-1e-2"], "--lr-warmup-fraction=-0.01 is negative"),
    (["--lr", "1e-3", "--weight-decay", "-inf"], "--weight-decay=-inf is not finite"),
], ids=["exponent", "decimal", "min-lr", "fraction", "infinite"])
def test_negative_values_reach_the_check(capsys, command, argv, message):
    status, out, err = run(capsys, command, *argv, "--train-iters", "10",
                           "--global-batch-size", "4")
    assert status == 2 and out == ""
    assert message in err and "expected one argument" not in err
    assert err.startswith(f"paramsched {command}: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
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
    pytest.importorskip("matplotlib")
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


@pytest.mark.parametrize("out,message", [
    ("plot", "--out='.*plot' has no file extension; expected one of"),
    ("plot.xyz", "--out='.*plot.xyz' has the extension .xyz, which matplotlib does not write"),
], ids=["no-extension", "unknown-format"])
def test_a_plot_that_cannot_be_written_is_refused_before_anything_is_written(
        capsys, tmp_path, out, message):
    pytest.importorskip("matplotlib")
    table = tmp_path / "s.csv"
    status, stdout, err = run(capsys, "preview", "--recipe", "llama2-7b", "--csv", str(table),
                              "--out", str(tmp_path / out))
    assert status == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert re.search(message, err) and not table.exists() and list(tmp_path.iterdir()) == []


def test_a_plot_that_fails_leaves_no_csv_behind(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    table = tmp_path / "s.csv"
    status, _, err = run(capsys, "preview", "--recipe", "llama2-7b", "--csv", str(table),
                         "--out", str(tmp_path / "missing" / "plot.png"))
    assert status == 2 and "No such file or directory" in err and not table.exists()


def test_a_file_that_is_not_utf8_gets_one_line_naming_it(capsys, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[lr]\nmax_lr = 1.0  # \xff\xfe\n")
    status, out, err = run(capsys, "preview", str(path))
    assert status == 2 and out == ""
    assert err.strip() == (f"paramsched preview: error: {path}: not UTF-8 text (byte 0xff at "
                           "offset 21); expected a TOML file in UTF-8")


def test_points_are_bounded_before_any_work(capsys):
    status, out, err = run(capsys, "table", "--points", str(10**8), "--lr", "1e-3",
                           "--train-iters", "10")
    assert status == 2 and out == "" and "--points=100000000; expected at most 10,000" in err


STEP_FLAGS = ["--lr", "6e-5", "--min-lr", "6e-6", "--lr-decay-style", "cosine",
              "--lr-warmup-fraction", ".001", "--lr-decay-iters", "430000", "--train-iters",
              "500000", "--seq-length", "2048", "--micro-batch-size", "1",
              "--data-parallel-size", "16", "--step-batch-size-schedule",
              "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536"]


def test_preview_of_a_step_schedule_shows_its_stages_and_where_the_decay_really_ends(capsys):
    status, out, err = run(capsys, "preview", *STEP_FLAGS)
    assert status == 0
    assert err == ("paramsched preview: note: with --step-batch-size-schedule and --train-iters, "
                   "Megatron measures the schedule in samples of --micro-batch-size x "
                   "--data-parallel-size = 16 (its --global-batch-size default) while each "
                   "iteration consumes the schedule's batch size: the learning rate reaches "
                   "--min-lr at iteration 81,663, not 430,000, of --train-iters 500,000\n")
    stages = out[out.index("batch size by stages"):].splitlines()
    assert stages[1].split() == ["stage", "from", "samples", "from", "tokens", "batch", "size",
                                 "first", "step"]
    assert [row.split() for row in stages[3:]] == [
        ["0", "0", "0", "16", "0"], ["1", "1.1719M", "2.4B", "320", "73,243"],
        ["2", "2.3438M", "4.8B", "624", "76,906"], ["3", "3.5156M", "7.2B", "928", "78,784"],
        ["4", "4.6875M", "9.6B", "1232", "80,047"], ["5", "5.8594M", "12B", "1536", "80,998"]]
    assert "total: 500,000 steps" in out


def test_table_of_a_step_schedule_runs_megatrons_iterations(capsys):
    flags = ["--lr", "1e-3", "--train-samples", "1000", "--step-batch-size-schedule",
             "0:8 100:16 500:32", "--points", "0"]
    status, out, err = run(capsys, "table", *flags)
    assert status == 0 and err == ""
    schedule = from_megatron_args(argparse.Namespace(
        lr=1e-3, train_samples=1000, step_batch_size_schedule="0:8 100:16 500:32"))
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows[-1][:2] == ["54", "1016"] and "training" in rows[-1]
    for row in rows:
        assert int(row[1]) == schedule.run.samples_at_step(int(row[0]))
        assert float(row[2]) == float(f"{schedule.lr(int(row[1])):.6e}")


def test_a_megatron_table_in_a_file_gives_the_same_notes(capsys, tmp_path):
    path = tmp_path / "megatron.toml"
    path.write_text('[megatron]\nlr = 1e-3\ntrain_samples = 1000\nglobal_batch_size = 8\n'
                    'rampup_batch_size = [4, 4, 100]\n')
    status, out, err = run(capsys, "preview", str(path))
    assert status == 0 and out
    assert err == ("paramsched preview: note: --rampup-batch-size follows Megatron-Core 0.16 and "
                   "0.17; from 0.18 Megatron ignores it (use --step-batch-size-schedule)\n")


@pytest.mark.parametrize("extra,message", [
    ([], None),
    (["--x", "samples", "--out", "never.png"], None),
    (["--csv", "never.csv"], "--csv: the run has 1,000,000,000,000,000,000 steps"),
], ids=["table", "plot-against-samples", "csv"])
def test_a_preview_of_more_steps_than_it_can_hold_is_one_line_or_no_area(
        capsys, tmp_path, monkeypatch, extra, message):
    # 1e18 steps of one sample (a step schedule of batch size 1): the table gives the
    # totals without the area (a sum over every step), a plot against samples draws its
    # grid, and a CSV of every step is refused before anything is written; no traceback.
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "preview", "--lr", "1e-3", "--train-samples",
                           str(10**18), "--step-batch-size-schedule", "0:1", *extra)
    if message is None:
        assert status == 0 and err == ""
        assert "total: 1e+06T steps, 1e+06T samples" in out
        assert "area under the lr curve - " in out
    else:
        assert status == 2 and err.count("\n") == 1 and message in err
        assert list(tmp_path.iterdir()) == []
