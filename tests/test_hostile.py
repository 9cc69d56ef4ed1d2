"""Hostile inputs for where quantities land, branches, WARNINGs, WSD and the array path:
one test per class of input that once gave a wrong or unclear result."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import MAX_WARNING, PlainOptimizer

from paramsched import (
    OptimizerParamScheduler,
    PhaseSchedule,
    Run,
    Schedule,
    ScheduleError,
    from_megatron_args,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _warnings_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ----------------------------------------------- two phase ends landing on one step


@pytest.mark.parametrize(
    "data,written,step",
    [
        # "10 tokens" is 2.5 samples and "60 tokens" 15: both land on step 1 (16 samples).
        (
            {
                "run": {"global_batch_size": 16, "seq_length": 4},
                "lr": {
                    "max_lr": 1.0,
                    "phases": [
                        {"shape": "linear", "to": "max_lr", "until": "10 tokens"},
                        {"shape": "constant", "until": "60 tokens"},
                    ],
                },
            },
            "'60 tokens'",
            "step 1",
        ),
        # A repeated block of a 20-sample period on 16-sample steps: 10% and 50% of the first
        # period (18 and 26 samples) both land on step 2 (32 samples).
        (
            {
                "run": {"global_batch_size": 16},
                "lr": {
                    "max_lr": 1.0,
                    "min_lr": 0.1,
                    "phases": [
                        {"shape": "linear", "to": "max_lr", "until": "16 samples"},
                        {
                            "repeat": 3,
                            "period": "20 samples",
                            "phases": [
                                {"shape": "cosine", "to": "min_lr", "until": "10%"},
                                {"shape": "linear", "to": "max_lr", "until": "50%"},
                            ],
                        },
                    ],
                },
            },
            "'50%'",
            "step 2",
        ),
    ],
    ids=["tokens", "repeated-block"],
)
def test_two_ends_landing_on_one_step_are_refused_naming_what_was_written(data, written, step):
    with pytest.raises(ScheduleError) as info:
        PhaseSchedule.from_dict(data)
    message = str(info.value)
    assert written in message, message
    assert step in message, message


# ------------------------------- a landing past the clock's limit names the field


def test_an_end_landing_past_1e18_is_refused_naming_the_field():
    # "100%" of 1e18 samples lands on the end of step 333,333,333,333,333,334.
    data = {
        "run": {"global_batch_size": 3, "total": "1e18 samples"},
        "lr": {"max_lr": 1.0, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
    }
    with pytest.raises(ScheduleError) as info:
        PhaseSchedule.from_dict(data)
    assert "lr.phases[0].until" in str(info.value), str(info.value)


@pytest.mark.slow
def test_the_command_line_tables_a_run_of_1e18_samples():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "paramsched",
            "table",
            "--train-samples",
            "1000000000000000000",
            "--lr",
            "1e-3",
            "--global-batch-size",
            "3",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
    )
    # A run of 1e18 samples is within the clock: Megatron's 333,333,333,333,333,333
    # iterations, its decay ending past them (it was refused as beyond any run).
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines()[-1].split() == [
        "333333333333333333",
        "999999999999999999",
        "0.000000e+00",
        "1.000000e-02",
        "training",
        "ends",
    ]


# --------------------------------------------- array path equals the scalar path


def test_run_step_at_samples_of_an_int64_array_equals_the_scalar_path():
    run = Run(global_batch_size=3)
    samples = [10**18 - 1, 999_999_999_999_999_997, 3 * 2**55 + 1, 2**53 + 1]
    array = run.step_at_samples(np.array(samples, dtype=np.int64))
    assert array.tolist() == [run.step_at_samples(n) for n in samples]


def test_float_arrays_of_whole_positions_above_2_53_equal_the_scalar_path():
    # A Megatron WSD without an anneal: its plateau ends at lr_decay_steps = 2**53 + 3,
    # which float64 rounds up to 2**53 + 4.
    wsd = Schedule(
        max_lr=1e-3,
        min_lr=1e-5,
        lr_warmup_steps=0,
        lr_decay_steps=2**53 + 3,
        lr_decay_style="WSD",
        wsd_decay_steps=0,
        lr_wsd_decay_style="cosine",
    )
    positions = np.array([2.0**53 + 4], dtype=np.float64)
    assert wsd.lr(positions).tolist() == [wsd.lr(float(n)) for n in positions]
    # A batch-size rule with a stage threshold float64 cannot hold (10**17 + 1).
    staged = PhaseSchedule.from_dict(
        {
            "run": {"batch_size_schedule": [[0, 7], [10**17 + 1, 13]], "total": "9e17 samples"},
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.1,
                "batch_size_rule": "sqrt",
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "1000 steps"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
        }
    )
    positions = np.array([1e17], dtype=np.float64)
    assert staged.lr(positions).tolist() == [staged.lr(float(n)) for n in positions]


# -------------------------------------------- WSD whose anneal start rounds past d


def test_wsd_whose_anneal_start_rounds_past_the_decay_equals_megatron_core():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        megatron = pytest.importorskip("megatron.core.optimizer_param_scheduler")
    # lr_decay_steps - wsd_decay_steps = 2**53 + 2.5, which float64 rounds to 2**53 + 4,
    # past lr_decay_steps: Megatron-Core is at min_lr after lr_decay_steps.
    decay = 2**53 + 3
    config = dict(
        init_lr=0.0,
        max_lr=1e-3,
        min_lr=1e-5,
        lr_warmup_steps=10,
        lr_decay_steps=decay,
        lr_decay_style="WSD",
        wsd_decay_steps=0.5,
        lr_wsd_decay_style="linear",
        start_wd=0.1,
        end_wd=0.1,
        wd_incr_steps=1,
        wd_incr_style="constant",
    )
    reference = megatron.OptimizerParamScheduler(PlainOptimizer([{}]), **config)
    ours = OptimizerParamScheduler(PlainOptimizer([{}]), **config)
    reference.step(decay + 1)
    ours.step(decay + 1)
    expected = reference.optimizer.param_groups[0]["lr"]
    assert expected == 1e-5
    assert ours.optimizer.param_groups[0]["lr"] == expected  # observed: 0.001
    schedule = Schedule(**config)
    assert schedule.lr(decay + 1) == expected
    assert schedule.lr(np.array([decay + 1], dtype=np.int64)).tolist() == [expected]


# ------------------------------------------------- every WARNING is one short line


def _long_warning_paths():
    """Each path that logs a WARNING of more than MAX_WARNING characters."""

    def wsd():  # long numbers in the longest reason
        Schedule(
            max_lr=1.0,
            min_lr=0.1,
            lr_warmup_steps=1000.0,
            lr_decay_steps=1.2345678901234567e17,
            lr_decay_style="WSD",
            wsd_decay_steps=1.2345678901234589e17,
            lr_wsd_decay_style="cosine",
        )

    def stray_overrides():  # 209 characters
        schedule = Schedule(
            max_lr=1.0, min_lr=0.1, lr_warmup_steps=10, lr_decay_steps=100, lr_decay_style="cosine"
        )
        groups = [{"params": [], "betas[1].end": 0.99} for _ in range(1000)]
        OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), schedule)

    def ignored_rampup():  # 209 characters
        from_megatron_args(
            argparse.Namespace(
                lr=1e-3,
                train_samples=1000,
                step_batch_size_schedule="0:16 100:32",
                rampup_batch_size=["1" * 100, "2", "3"],
            )
        )

    def threshold_through_a_float():  # 219 characters
        from_megatron_args(
            argparse.Namespace(
                lr=1e-3,
                train_samples=1000,
                seq_length=3,
                step_batch_size_schedule="0:16 1." + "0" * 96 + "1e15:32",
            )
        )

    return [wsd, stray_overrides, ignored_rampup, threshold_through_a_float]


@pytest.mark.parametrize("path", _long_warning_paths(), ids=lambda f: f.__name__)
def test_every_warning_is_one_line_of_at_most_200_characters(path, caplog):
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        path()
    logged = _warnings_logged(caplog)
    assert logged, "expected a WARNING on this path"
    too_long = [m for m in logged if "\n" in m or len(m) > MAX_WARNING]
    assert not too_long, [(len(m), m) for m in too_long]
