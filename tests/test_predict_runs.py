"""Runs from CSV files and schedules: each kind of bad input named by file, row and column."""

from __future__ import annotations

import numpy as np
import pytest
from predict_data import DATA, schedule_file

from paramsched.predict import LossRun, PredictError, rates_of, read_csv
from paramsched.recipe import load_schedule


def write(tmp_path, text, name="run.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


GOOD = "step,lr,loss\n10,1e-3,3.0\n20,1e-3,2.9\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("step,loss\n1,2.0\n", "no column 'lr' in the header 'step,loss'"),
        ("step,lr,loss\n10,1e-3,nan\n", "row 2, column loss: 'nan'; expected a finite number"),
        (
            "step,lr,loss\n10,1e-3,3\n10,1e-3,2.9\n",
            "row 3, column step: 10 after 10; expected increasing",
        ),
        ("step,lr,loss\n10,-1e-3,3\n", "row 2, column lr: '-1e-3'; expected a rate >= 0"),
        ("step,lr,loss\n10,1e-3,0\n", "row 2, column loss: '0'; expected a loss > 0"),
        ("step,lr,loss\n10,1e-3,-2\n", "row 2, column loss: '-2'; expected a loss > 0"),
        ("", "is empty; expected a header"),
        ("step,lr,loss\n", "has a header but no rows"),
        ("step,lr,loss\n10,1e-3,abc\n", "row 2, column loss: 'abc' is not a number"),
        ("step,lr,loss\n10.5,1e-3,3\n", "row 2, column step: '10.5'; expected a whole step"),
        ("step,lr,loss\n1e300,1e-3,3\n", "row 2, column step: '1e300'; expected a whole step"),
        ("step,lr,loss\n10,1e-3\n", "row 2, column loss: '' is not a number"),
        ("step,lr,loss\n10,inf,3\n", "row 2, column lr: 'inf'; expected a finite number"),
    ],
    ids=[
        "missing-column",
        "nan",
        "not-increasing",
        "negative-rate",
        "zero-loss",
        "negative-loss",
        "empty",
        "header-only",
        "text",
        "fraction",
        "huge-step",
        "short-row",
        "infinite",
    ],
)
def test_bad_csv_is_refused_naming_file_row_and_column(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PredictError) as error:
        read_csv(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = write(tmp_path, b"step,lr,loss\n10,1e-3,\xff\n", mode="wb")
    with pytest.raises(PredictError, match="byte 21 is not UTF-8"):
        read_csv(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(PredictError, match="cannot be read"):
        read_csv(tmp_path / "none.csv")


def test_logged_rates_are_interpolated_and_held_before_the_first(tmp_path):
    run = read_csv(write(tmp_path, "step,lr,loss\n10,1e-3,3.0\n20,2e-3,2.9\n"))
    assert run.rates_from == "interpolated"
    assert (
        run.lrs[0] == 1e-3 and run.lrs[15] == 1.5e-3 and run.lrs[20] == 2e-3 and run.lrs.size == 21
    )


def test_a_schedule_gives_each_steps_rate(tmp_path):
    path = schedule_file(
        tmp_path, "cosine", '{ shape = "cosine", to = "min_lr", until = "100%" },', 24000
    )
    schedule = load_schedule(path)
    run = read_csv(DATA / "cosine_24000.csv", schedule)
    assert run.rates_from == "schedule" and run.lrs.size == 23921
    steps = np.arange(23921)
    assert np.array_equal(run.lrs, schedule.lr(steps.astype(float)))
    assert np.array_equal(rates_of(schedule, 10), schedule.lr(np.arange(10.0)))


def test_a_schedule_without_steps_is_refused(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text(
        '[lr]\nmax_lr = 1e-3\nphases = [{ shape = "constant", until = "10 samples" }]\n'
    )
    with pytest.raises(PredictError, match="has no global_batch_size"):
        rates_of(load_schedule(path), 10)


@pytest.mark.parametrize(
    "steps, losses, message",
    [
        ([5, 3], [2.0, 1.0], "steps[1]=3 after 5; expected increasing steps"),
        ([5], [2.0, 1.0], "2 losses for 1 steps"),
        ([5], [float("nan")], "losses[0]=nan; expected a finite loss > 0"),
        ([10**9], [1.0], "expected fewer than 10,000,000 steps"),
    ],
    ids=["order", "count", "nan", "huge"],
)
def test_a_run_in_python_is_checked_too(steps, losses, message):
    with pytest.raises(PredictError) as error:
        LossRun.of(np.full(10, 1e-3), steps, losses, name="mine")
    assert message in str(error.value) and "mine" in str(error.value)
