"""Tests for paramsched.formats.megatron_check: Megatron's command line as findings, each
rule on arguments that trigger it and on arguments that do not."""

from __future__ import annotations

import pytest
from test_check import check, codes

BASE = ["--lr", "3e-4", "--min-lr", "3e-5", "--train-iters", "1000", "--global-batch-size", "64"]
SAMPLES = ["--lr", "3e-4", "--min-lr", "3e-5", "--train-samples", "64000"]
STEPS = "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536"

# (rule, triggering arguments, arguments that do not trigger it); each after --megatron,
# with the options before it in "options".
CASES = [
    ("M100", [*BASE, "--lr-decay-style", "cosin"], [*BASE, "--lr-decay-style", "cosine"]),
    ("M100", ["--lr", "abc", *BASE[2:]], BASE),
    ("M101", [*BASE, "--warmup", "0.01"], [*BASE, "--lr-warmup-fraction", "0.01"]),
    ("M101", [*BASE, "--lr-warmup-steps", "10"], [*BASE, "--lr-warmup-iters", "10"]),
    (
        "M111",
        [*BASE, "--lr-decay-style", "WSD", "--lr-wsd-decay-iters", "100",
         "--lr-wsd-decay-samples", "99"],
        [*BASE, "--lr-decay-style", "WSD", "--lr-wsd-decay-iters", "100"],
    ),
    (
        "M112",
        [*SAMPLES, "--global-batch-size", "64", "--rampup-batch-size", "16", "16", "6400"],
        [*SAMPLES, "--global-batch-size", "64"],
    ),
    ("M120", [*BASE, "--lr-decay-samples", "5000"], [*BASE, "--lr-decay-iters", "500"]),
    (
        "M121",
        [*BASE, "--lr-warmup-fraction", "0.01", "--lr-warmup-iters", "10"],
        [*BASE, "--lr-warmup-fraction", "0.01"],
    ),
    (
        "M122",
        [*SAMPLES, "--global-batch-size", "64", "--step-batch-size-schedule", "0:16 1000:64"],
        [*SAMPLES, "--step-batch-size-schedule", "0:16 1000:64"],
    ),
    (
        "M123",
        [*BASE, "--rampup-batch-size", "16", "16", "6400"],
        [*SAMPLES, "--global-batch-size", "64", "--rampup-batch-size", "16", "16", "6400"],
    ),
    (
        "M130",
        [*BASE[:-1], "96", "--micro-batch-size", "4", "--data-parallel-size", "16"],
        [*BASE[:-1], "128", "--micro-batch-size", "4", "--data-parallel-size", "16"],
    ),
    (
        "M130",
        [*SAMPLES, "--global-batch-size", "64", "--rampup-batch-size", "16", "8", "6400",
         "--micro-batch-size", "16", "--data-parallel-size", "1"],
        [*SAMPLES, "--global-batch-size", "64", "--rampup-batch-size", "16", "16", "6400",
         "--micro-batch-size", "16", "--data-parallel-size", "1"],
    ),
    (
        "M131",
        [*SAMPLES, "--step-batch-size-schedule", "0:64 1000:32"],
        [*SAMPLES, "--step-batch-size-schedule", "0:32 1000:64"],
    ),
    (
        "M140",
        [*BASE, "--decoupled-lr", "1e-5"],
        [*BASE, "--decoupled-lr", "1e-5", "--decoupled-min-lr", "1e-6"],
    ),
    (
        "M150",
        [*SAMPLES, "--step-batch-size-schedule", "0:16 2.01M:64"],
        [*SAMPLES, "--step-batch-size-schedule", "0:16 2.5M:64"],
    ),
    ("M151", [*BASE, "--num-layers", "24", "--bf16"], BASE),
    ("M152", ["--lr", "3e-4", "--train-iters", "100"], BASE),
    ("M152", [*BASE, "--micro-batch-size", "4"], [*BASE, "--micro-batch-size", "4",
                                                   "--data-parallel-size", "2"]),
]  # fmt: skip


@pytest.mark.parametrize(
    "code, given, other", CASES, ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)]
)
def test_each_rule_on_arguments_that_trigger_it_and_on_arguments_that_do_not(
    capsys, code, given, other
):
    status, report = check(capsys, "--megatron", *given)
    assert code in codes(report)
    assert status == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)
    status, report = check(capsys, "--megatron", *other)
    assert code not in codes(report)


def test_m110_a_step_schedule_on_megatron_016(capsys):
    flags = [*SAMPLES, "--step-batch-size-schedule", "0:16 1000:64"]
    status, report = check(capsys, "--megatron-version", "0.16", "--megatron", *flags)
    assert status == 1 and codes(report) == ["M110"] and report["summary"] is None
    status, report = check(capsys, "--megatron-version", "main", "--megatron", *flags)
    assert status == 0 and "M110" not in codes(report) and "M112" not in codes(report)


def test_m111_a_ramp_up_on_main_is_ignored_and_checked_without_it(capsys):
    flags = [*SAMPLES, "--global-batch-size", "64", "--rampup-batch-size", "16", "16", "6400"]
    status, report = check(capsys, "--megatron-version", "main", "--megatron", *flags)
    assert "M111" in codes(report) and report["summary"]["batch_size_stages"] == []
    assert report["summary"]["steps"] == 1000  # 64,000 samples of 64
    status, report = check(capsys, "--megatron-version", "0.16", "--megatron", *flags)
    assert codes(report) == [] and report["summary"]["steps"] == 1145  # smaller batches first


def test_m130_names_the_iteration_where_megatron_stops(capsys):
    flags = [*SAMPLES, "--step-batch-size-schedule", "0:16 1000:40", "--micro-batch-size",
             "16", "--data-parallel-size", "1"]  # fmt: skip
    status, report = check(capsys, "--megatron", *flags)
    found = [f for f in report["findings"] if f["code"] == "M130"]
    assert found[0]["step"] == 63 and "at iteration 63" in found[0]["message"]


def test_megatron_gpt3_175b_on_main(capsys):
    """Megatron's GPT-3 175B example's scheduling flags at 16 data-parallel ranks: main
    refuses --global-batch-size beside the step schedule, and without it the cosine
    decay meant to last 430,000 iterations ends at iteration 81,663."""
    flags = [
        "--micro-batch-size", "1", "--global-batch-size", "1536", "--lr", "6.0e-5",
        "--min-lr", "6.0e-6", "--lr-decay-style", "cosine", "--lr-decay-iters", "430000",
        "--lr-warmup-fraction", ".001", "--train-iters", "500000", "--seq-length", "2048",
        "--step-batch-size-schedule", STEPS, "--num-layers", "96", "--hidden-size", "12288",
        "--bf16", "--clip-grad", "1.0", "--weight-decay", "0.1",
    ]  # fmt: skip
    status, report = check(capsys, "--data-parallel-size", "16", "--megatron", *flags)
    assert status == 1
    assert codes(report) == ["M122", "S108", "M151", "M112"]
    summary = report["summary"]
    assert summary["decay_end_step"] == 81_663 and summary["steps"] == 500_000
    assert [stage["batch_size"] for stage in summary["batch_size_stages"]] == [
        16, 320, 624, 928, 1232, 1536
    ]  # fmt: skip


def test_the_data_parallel_size_is_asked_for_where_a_length_needs_it(capsys):
    flags = [*BASE[:-2], "--micro-batch-size", "1", "--step-batch-size-schedule", "0:16 1000:64"]
    assert main_status(["check", "--megatron", *flags]) == 2
    assert "pass --data-parallel-size" in capsys.readouterr().err
    assert main_status(["check", "--data-parallel-size", "2", "--megatron", *flags]) == 0


def main_status(argv) -> int:
    from paramsched.cli import main

    return main(argv)


@pytest.mark.parametrize(
    "length, meant",
    [("--train-samples", "--lr-warmup-samples"), ("--train-iters", "--lr-warmup-iters")],
)
def test_a_near_miss_is_suggested_in_the_runs_own_unit(capsys, length, meant):
    """Taking the suggestion does not mix iteration and sample flags, in table as in check."""
    words = ["--lr", "1e-3", length, "100", "--global-batch-size", "1", "--lr-warmup-steps", "3"]
    assert main_status(["table", *words]) == 2
    assert capsys.readouterr().err.rstrip().endswith(f"did you mean {meant}?")
    status, report = check(capsys, "--megatron", *words)
    assert [f["message"] for f in report["findings"] if f["code"] == "M101"] == [
        f"unrecognized argument --lr-warmup-steps; did you mean {meant}?"
    ]
    words[-2] = meant
    assert main_status(["table", *words]) == 0
