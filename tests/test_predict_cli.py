"""The fit, predict and optimize commands, and --law for compare and preview: output,
files, and one line with exit status 2 for each kind of bad input."""

from __future__ import annotations

import json
import math

import pytest
from predict_data import DATA, schedule_file

pytest.importorskip("scipy")

from paramsched.cli import main  # noqa: E402

COSINE = '{ shape = "cosine", to = "min_lr", until = "100%" },'
WSD = '{ shape = "constant", until = "20000 steps" },\n{ shape = "exponential", to = "min_lr", until = "100%" },'


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def law_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("law")
    cosine = schedule_file(folder, "cosine", COSINE, 24000)
    constant = schedule_file(folder, "constant", "", 24000)
    wsdcon = schedule_file(
        folder,
        "wsdcon9",
        '{ shape = "constant", until = "8000 steps" },\n{ shape = "constant", value = "min_lr", until = "100%" },',
        16000,
        min_lr=9e-5,
    )
    out = folder / "law.json"
    status = main(
        [
            "fit",
            f"{DATA / 'cosine_24000.csv'}={cosine}",
            f"{DATA / 'constant_24000.csv'}={constant}",
            f"{DATA / 'wsdcon_9.csv'}={wsdcon}",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out


def test_fit_writes_a_law_and_says_where_the_rates_came_from(capsys, tmp_path):
    cosine = schedule_file(tmp_path, "cosine", COSINE, 24000)
    status, out, err = run(
        capsys,
        "fit",
        f"{DATA / 'cosine_24000.csv'}={cosine}",
        DATA / "wsdcon_9.csv",
        "--law",
        "annealing",
    )
    assert status == 0, err
    assert "cosine_24000.csv: 171 points, rates from the schedule file" in out
    assert "wsdcon_9.csv: 95 points, rates interpolated from the logged lr" in out
    assert json.loads(out[out.index("{") :])["law"] == "annealing"


def test_fit_by_least_squares_records_its_ridge(capsys):
    """``--ridge R`` is ``fit(runs, ridge=R)``: the law file records the ridge it used."""
    fit_runs = [DATA / f"{name}.csv" for name in ("cosine_24000", "constant_24000", "wsdcon_9")]
    status, out, err = run(capsys, "fit", *fit_runs, "--ridge", "0")
    assert status == 0, err
    assert json.loads(out[out.index("{") :])["fitted"]["ridge"] == 0.0


def test_a_least_squares_fit_that_leaves_the_law_s_domain_is_refused_in_one_line(capsys):
    """Two runs whose rates are interpolated from the logged ones, by least squares without a
    ridge: every start steps to where the law is not finite, and the fit says so."""
    fit_runs = [DATA / f"{name}.csv" for name in ("cosine_24000", "constant_24000")]
    status, out, err = run(capsys, "fit", *fit_runs, "--ridge", "0")
    assert status == 2 and out == ""
    assert err == (
        "paramsched fit: error: the multi-power fit did not converge (objective inf); "
        "no law is returned\n"
    )


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "x", "1e308", "1.0000001e18"])
def test_a_bad_ridge_is_one_line_and_status_2(capsys, value):
    status, out, err = run(capsys, "fit", DATA / "wsdcon_9.csv", "--ridge", value)
    assert status == 2 and out == ""
    assert err == (
        f"paramsched fit: error: argument --ridge: {value!r}; expected a finite number >= 0 "
        "and at most 1e18, e.g. 0\n"
    )


def test_a_ridge_of_minus_zero_is_recorded_as_zero(capsys):
    fit_runs = [DATA / f"{name}.csv" for name in ("cosine_24000", "constant_24000", "wsdcon_9")]
    status, out, err = run(capsys, "fit", *fit_runs, "--ridge", "-0")
    assert status == 0, err
    ridge = json.loads(out[out.index("{") :])["fitted"]["ridge"]
    assert ridge == 0.0 and math.copysign(1.0, ridge) == 1.0


def test_predict_prints_the_loss_at_each_phase_end(capsys, law_file, tmp_path):
    wsd = schedule_file(tmp_path, "wsd", WSD, 24000)
    status, out, err = run(capsys, "predict", law_file, wsd)
    assert status == 0 and err == ""
    assert f"{wsd}:" in out
    assert [line.split()[2] for line in out.splitlines() if "after step" in line] == [
        "2,160",
        "20,000",
        "24,000",
    ]


def test_predict_prints_the_law_at_each_step_alone(capsys, law_file, tmp_path):
    # each printed loss is law.loss at that one step, before and after the changes the
    # law sums term by term (50,000): points asked for together give the same numbers
    from paramsched.predict.cli import read_law, schedule_rates
    from paramsched.recipe import load_schedule

    long = schedule_file(tmp_path, "long", WSD.replace("20000", "90000"), 120000)
    status, out, err = run(capsys, "predict", law_file, long)
    assert status == 0, err
    law, rates = read_law(str(law_file)), schedule_rates(load_schedule(long), "long")
    printed = [line.split() for line in out.splitlines() if "after step" in line]
    assert [row[2] for row in printed] == ["2,160", "90,000", "120,000"]
    for row in printed:
        step = int(row[2].replace(",", ""))
        assert row[4] == f"{law.loss(rates, [step - 1])[0]:.5f}"


def test_optimize_writes_a_schedule_the_other_commands_read(capsys, law_file, tmp_path):
    best = tmp_path / "best.toml"
    status, out, err = run(
        capsys,
        "optimize",
        law_file,
        "--steps",
        24000,
        "--peak-lr",
        3e-4,
        "--warmup",
        2160,
        "--out",
        best,
    )
    assert status == 0 and err == ""
    assert out.startswith("predicted final loss 3.259")
    cosine, wsd = (
        schedule_file(tmp_path, "cosine", COSINE, 24000),
        schedule_file(tmp_path, "wsd", WSD, 24000),
    )
    plot = tmp_path / "compare.png"
    status, out, err = run(capsys, "compare", cosine, wsd, best, "--law", law_file, "--out", plot)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("  predicted loss") and lines[1].endswith("  --------------")
    finals = {line.split()[0]: float(line.split()[-1]) for line in lines[2:5]}
    assert finals[str(best)] < finals[str(wsd)] < finals[str(cosine)]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    plot = tmp_path / "preview.png"
    status, out, err = run(capsys, "preview", best, "--law", law_file, "--out", plot)
    assert status == 0, err
    assert "predicted final loss (multi-power law of" in out and plot.read_bytes()[:4] == b"\x89PNG"


def bad_laws(tmp_path):
    cases = {
        "not-json": ("{", "line 1: Expecting property name"),
        "wrong-type": (
            json.dumps({"law": "multi-power", "params": [1, 2]}),
            "expected an object with the keys",
        ),
        "string-param": (
            json.dumps({"law": "annealing", "params": dict(L0="x", A=1, alpha=1, C=1, lam=0.5)}),
            "L0='x' is of type str",
        ),
        "nan": (
            '{"law": "annealing", "params": {"L0": NaN, "A": 1, "alpha": 1, "C": 1, "lam": 0.5}}',
            "L0=nan",
        ),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        yield path, message
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"law": "\xe9"}')
    yield path, "byte 9 is not UTF-8"
    yield tmp_path / "missing.json", "cannot be read"


def test_a_bad_law_file_is_one_line_and_status_2(capsys, tmp_path):
    schedule = schedule_file(tmp_path, "cosine", COSINE, 24000)
    for path, message in bad_laws(tmp_path):
        status, out, err = run(capsys, "predict", path, schedule)
        assert status == 2 and out == "" and err.count("\n") == 1, (path, err)
        assert err.startswith("paramsched predict: error: ") and str(path) in err and message in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("step,loss\n1,2.0\n", "no column 'lr'"),
        ("step,lr,loss\n10,1e-3,nan\n", "row 2, column loss: 'nan'"),
        ("step,lr,loss\n20,1e-3,3\n10,1e-3,2.9\n", "row 3, column step: 10 after 20"),
        ("step,lr,loss\n10,-1e-3,3\n", "row 2, column lr: '-1e-3'"),
        ("step,lr,loss\n10,1e-3,0\n", "row 2, column loss: '0'"),
        (
            "step,lr,loss\n10,1e-3,3\n20,1e-3,2.9\n",
            "2 logged points; the multi-power law has 7 parameters",
        ),
        ("step,lr,loss\n10,1e-3,3\n", "1 logged points"),
    ],
    ids=[
        "missing-column",
        "nan",
        "not-increasing",
        "negative-rate",
        "zero-loss",
        "few-points",
        "one-row",
    ],
)
def test_bad_runs_are_one_line_and_status_2(capsys, tmp_path, text, message):
    path = tmp_path / "run.csv"
    path.write_text(text)
    status, out, err = run(capsys, "fit", path)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("paramsched fit: error: ") and message in err


def test_optimize_refuses_bad_flags_in_one_line(capsys, law_file, tmp_path):
    out = tmp_path / "best.toml"
    for flags, message in [
        (
            ["--steps", "10", "--peak-lr", "3e-4", "--warmup", "20"],
            "warmup=20; expected 0 <= warmup < steps",
        ),
        (
            ["--steps", "100", "--peak-lr", "-1", "--warmup", "10"],
            "peak_lr=-1.0; expected a rate > 0",
        ),
        (
            ["--steps", "1e3", "--peak-lr", "3e-4", "--warmup", "10"],
            "argument --steps: invalid int value",
        ),
    ]:
        status, _, err = run(capsys, "optimize", law_file, *flags, "--out", out)
        assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_law_with_json_or_another_x_axis_is_refused(capsys, law_file, tmp_path):
    cosine = schedule_file(tmp_path, "cosine", COSINE, 24000)
    status, _, err = run(capsys, "preview", cosine, "--law", law_file, "--json")
    assert status == 2 and "--json with --law" in err
    status, _, err = run(capsys, "compare", cosine, cosine, "--law", law_file, "--x", "tokens")
    assert status == 2 and "--x tokens with --law" in err


def test_a_prediction_beyond_the_fitted_range_warns_in_one_line(capsys, law_file, tmp_path):
    long = schedule_file(tmp_path, "long", "", 300000)
    status, out, err = run(capsys, "predict", law_file, long)
    assert status == 0
    assert err.strip() == (
        "paramsched predict: note: predicting at step 299999, beyond 10x the last step fitted "
        "(23936): it extrapolates"
    )


def test_an_output_that_cannot_be_written_is_refused_before_any_work(capsys, law_file, tmp_path):
    flags = ["--steps", "1000", "--peak-lr", "3e-4", "--warmup", "10", "--out"]
    status, _, err = run(capsys, "optimize", law_file, *flags, tmp_path / "none" / "best.toml")
    assert status == 2 and "--out=" in err and "cannot be written" in err
    before = law_file.read_bytes()
    status, _, err = run(capsys, "optimize", law_file, *flags, law_file)
    assert status == 2 and "is also the LAW.json" in err and law_file.read_bytes() == before
    csv = tmp_path / "run.csv"
    csv.write_text("step,lr,loss\n10,1e-3,3\n")
    status, _, err = run(capsys, "fit", csv, "--out", csv)
    assert (
        status == 2 and "is also the run" in err and csv.read_text() == "step,lr,loss\n10,1e-3,3\n"
    )


def test_an_endless_or_deeply_nested_file_is_refused(capsys, tmp_path):
    schedule = schedule_file(tmp_path, "cosine", COSINE, 24000)
    status, _, err = run(capsys, "predict", "/dev/zero", schedule)
    assert status == 2 and "/dev/zero is larger than 1,048,576 bytes; expected a JSON law" in err
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    status, _, err = run(capsys, "predict", deep, schedule)
    assert status == 2 and err.count("\n") == 1 and str(deep) in err
    status, _, err = run(capsys, "fit", "/dev/zero")
    assert status == 2 and "/dev/zero is larger than 268,435,456 bytes" in err


def test_a_schedule_of_too_many_steps_is_refused(capsys, law_file, tmp_path):
    huge = tmp_path / "huge.toml"
    huge.write_text(
        '[run]\nglobal_batch_size = 1\ntotal = "1T steps"\n[lr]\nmax_lr = 3e-4\n'
        'phases = [{ shape = "linear", to = "max_lr", until = "10 steps" }]\n'
    )
    status, _, err = run(capsys, "predict", law_file, huge)
    assert status == 2
    assert (
        err
        == f"paramsched predict: error: {huge}: 1,000,000,000,000 steps; expected at most 10,000,000\n"
    )


def test_preview_with_a_plot_warns_once(capsys, law_file, tmp_path):
    long = schedule_file(tmp_path, "long", "", 300000)
    status, out, err = run(
        capsys, "preview", long, "--law", law_file, "--out", tmp_path / "long.png"
    )
    assert status == 0 and err.count("\n") == 1 and "beyond 10x the last step fitted" in err
