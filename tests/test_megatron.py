"""Tests for paramsched.megatron: Megatron's arguments as Megatron reads them."""

from __future__ import annotations

import argparse
import logging
import re
from fractions import Fraction

import megatron_main
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import (
    LR_DECAY_STYLES,
    WD_INCR_STYLES,
    WSD_DECAY_STYLES,
    Run,
    Schedule,
    ScheduleError,
    from_megatron_args,
    load_schedule,
)
from paramsched.formats.megatron import (
    MEGATRON_DEFAULTS,
    MEGATRON_FLAGS,
    add_megatron_flags,
    read_megatron_args,
    train_iterations,
)
from paramsched.units import Quantity

FLAG_NAMES = [flag.name for flag in MEGATRON_FLAGS]

_ITERATIONS = dict(lr=1e-3, train_iters=100, global_batch_size=4)
_SAMPLES = dict(lr=1e-3, train_samples=400, global_batch_size=4)
_RISING = dict(weight_decay_incr_style="linear", start_weight_decay=0.0, end_weight_decay=0.1)

#: For each of Megatron's flags, a valid run that sets it (away from its default).
FLAG_EXAMPLES = {
    "lr": {**_ITERATIONS, "lr": 2e-3},
    "min_lr": {**_ITERATIONS, "min_lr": 1e-4},
    "lr_warmup_init": {**_ITERATIONS, "lr_warmup_init": 1e-4},
    "lr_warmup_iters": {**_ITERATIONS, "lr_warmup_iters": 10},
    "lr_warmup_samples": {**_SAMPLES, "lr_warmup_samples": 40},
    "lr_warmup_fraction": {**_ITERATIONS, "lr_warmup_fraction": 0.1},
    "lr_decay_iters": {**_ITERATIONS, "lr_decay_iters": 80},
    "lr_decay_samples": {**_SAMPLES, "lr_decay_samples": 320},
    "lr_decay_style": {**_ITERATIONS, "lr_decay_style": "cosine"},
    "lr_wsd_decay_style": {
        **_ITERATIONS,
        "lr_decay_style": "WSD",
        "lr_wsd_decay_iters": 20,
        "lr_wsd_decay_style": "minus_sqrt",
    },
    "lr_wsd_decay_iters": {**_ITERATIONS, "lr_decay_style": "WSD", "lr_wsd_decay_iters": 20},
    "lr_wsd_decay_samples": {**_SAMPLES, "lr_decay_style": "WSD", "lr_wsd_decay_samples": 80},
    "train_iters": _ITERATIONS,
    "train_samples": _SAMPLES,
    "global_batch_size": {**_ITERATIONS, "global_batch_size": 8},
    "weight_decay": {**_ITERATIONS, "weight_decay": 0.1},
    "start_weight_decay": {**_ITERATIONS, **_RISING},
    "end_weight_decay": {**_ITERATIONS, **_RISING},
    "weight_decay_incr_style": {**_ITERATIONS, **_RISING, "weight_decay_incr_style": "cosine"},
    "seq_length": {**_ITERATIONS, "seq_length": 16},
    "rampup_batch_size": {**_SAMPLES, "rampup_batch_size": [2, 2, 100]},
    "step_batch_size_schedule": {
        "lr": 1e-3,
        "train_samples": 400,
        "step_batch_size_schedule": "0:2 100:4",
    },
    "micro_batch_size": {
        "lr": 1e-3,
        "train_iters": 100,
        "step_batch_size_schedule": "0:2 40:4",
        "micro_batch_size": 2,
        "data_parallel_size": 1,
    },
    "data_parallel_size": {
        "lr": 1e-3,
        "train_iters": 100,
        "step_batch_size_schedule": "0:4 40:8",
        "micro_batch_size": 1,
        "data_parallel_size": 4,
    },
}


def args(**values):
    return argparse.Namespace(**values)


def _toml(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f'"{value}"' if isinstance(value, str) else repr(value)


# ------------------------------------------------------------------ the table of flags


def test_every_flag_has_an_example():
    assert sorted(FLAG_EXAMPLES) == sorted(FLAG_NAMES)
    assert len(set(FLAG_NAMES)) == len(FLAG_NAMES)


def test_the_defaults_are_the_tables():
    assert MEGATRON_DEFAULTS == {flag.name: flag.default for flag in MEGATRON_FLAGS}
    schedule = from_megatron_args(args(lr=1.0, train_samples=10))
    assert (schedule.init_lr, schedule.min_lr, schedule.start_wd, schedule.end_wd) == (
        MEGATRON_DEFAULTS["lr_warmup_init"],
        MEGATRON_DEFAULTS["min_lr"],
        MEGATRON_DEFAULTS["weight_decay"],
        MEGATRON_DEFAULTS["weight_decay"],
    )
    assert (schedule.lr_decay_style, schedule.lr_wsd_decay_style, schedule.wd_incr_style) == (
        MEGATRON_DEFAULTS["lr_decay_style"],
        MEGATRON_DEFAULTS["lr_wsd_decay_style"],
        MEGATRON_DEFAULTS["weight_decay_incr_style"],
    )


@pytest.mark.parametrize("flag", MEGATRON_FLAGS, ids=FLAG_NAMES)
def test_each_flag_has_one_line_of_help_stating_its_default(flag):
    assert "\n" not in flag.help and len(flag.help) <= 100
    if flag.default is None:
        assert "(default none" in flag.help or "(default --" in flag.help
    else:
        assert f"(default {flag.default})" in flag.help
    if isinstance(flag.kind, tuple):
        assert flag.default in flag.kind
    assert flag.option == "--" + flag.name.replace("_", "-")


def test_styles_are_the_schedules():
    kinds = {flag.name: flag.kind for flag in MEGATRON_FLAGS}
    assert kinds["lr_decay_style"] == LR_DECAY_STYLES
    assert kinds["lr_wsd_decay_style"] == WSD_DECAY_STYLES
    assert kinds["weight_decay_incr_style"] == WD_INCR_STYLES


def test_add_megatron_flags_leaves_unset_flags_none():
    parser = argparse.ArgumentParser()
    add_megatron_flags(parser)
    assert vars(parser.parse_args([])) == dict.fromkeys(FLAG_NAMES)
    ramp = parser.parse_args(["--rampup-batch-size", "16", "16", "20B tokens"])
    assert ramp.rampup_batch_size == ["16", "16", "20B tokens"]


@pytest.mark.parametrize("name", FLAG_NAMES, ids=FLAG_NAMES)
def test_a_megatron_table_in_a_file_takes_every_flag(tmp_path, name):
    values = FLAG_EXAMPLES[name]
    path = tmp_path / "run.toml"
    path.write_text("[megatron]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    schedule = load_schedule(path)
    expected = from_megatron_args(args(**values))
    assert schedule == expected and schedule.run == expected.run


# ------------------------------------------------------------------ from_megatron_args


def test_iterations_are_counted_in_samples():
    schedule = from_megatron_args(
        args(
            lr=3e-4,
            min_lr=3e-5,
            train_iters=1000,
            lr_warmup_iters=10,
            lr_decay_style="cosine",
            global_batch_size=256,
        )
    )
    assert schedule == Schedule(
        init_lr=0.0,
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=2560,
        lr_decay_steps=256_000,
        lr_decay_style="cosine",
        start_wd=0.01,
        end_wd=0.01,
        wd_incr_steps=256_000,
        wd_incr_style="constant",
        lr_wsd_decay_style="exponential",
    )


def test_decay_iters_and_warmup_fraction():
    schedule = from_megatron_args(
        args(
            lr=1.0,
            train_iters=1000,
            lr_decay_iters=800,
            lr_warmup_fraction=0.01,
            global_batch_size=3,
        )
    )
    assert schedule.lr_decay_steps == 2400
    assert schedule.lr_warmup_steps == 0.01 * 2400  # a float, as Megatron computes it
    assert schedule.wd_incr_steps == 3000


def test_samples_are_used_as_they_are():
    schedule = from_megatron_args(
        args(
            lr=1.0,
            train_samples=10_000,
            lr_warmup_samples=100,
            lr_decay_style="WSD",
            lr_wsd_decay_samples=2000,
            lr_wsd_decay_style="minus_sqrt",
        )
    )
    assert (schedule.lr_warmup_steps, schedule.lr_decay_steps, schedule.wsd_decay_steps) == (
        100,
        10_000,
        2000,
    )
    assert schedule.lr_wsd_decay_style == "minus_sqrt"


def test_weight_decay_styles():
    constant = from_megatron_args(args(lr=1.0, train_samples=10, weight_decay=0.1))
    assert (constant.start_wd, constant.end_wd) == (0.1, 0.1)
    rising = from_megatron_args(
        args(
            lr=1.0,
            train_samples=10,
            weight_decay_incr_style="linear",
            start_weight_decay=0.0,
            end_weight_decay=0.1,
        )
    )
    assert (rising.start_wd, rising.end_wd, rising.wd_incr_steps) == (0.0, 0.1, 10)


@pytest.mark.parametrize(
    "values,message",
    [
        (dict(train_iters=10), "--lr is not set"),
        (dict(lr=1.0), "neither --train-iters nor --train-samples is set"),
        (
            dict(lr=1.0, train_iters=10, train_samples=100),
            "--train-iters=10 with --train-samples=100; expected iteration-based",
        ),
        (dict(lr=1.0, train_iters=10), "--global-batch-size is not set"),
        (
            dict(lr=1.0, train_samples=10, lr_warmup_fraction=0.1, lr_warmup_samples=5),
            "--lr-warmup-fraction=0.1 with --lr-warmup-samples=5; expected one of the two",
        ),
        (
            dict(lr=1.0, train_samples=10, lr_decay_style="WSD"),
            "--lr-wsd-decay-samples is not set with --lr-decay-style=WSD",
        ),
        (
            dict(lr=1.0, train_samples=10, start_weight_decay=0.1),
            "--start-weight-decay=0.1 with --weight-decay-incr-style=constant",
        ),
        (
            dict(
                lr=1.0, train_samples=10, weight_decay_incr_style="cosine", start_weight_decay=0.0
            ),
            "--end-weight-decay is not set with --weight-decay-incr-style=cosine",
        ),
        (dict(lr=1.0, train_samples=-10), "--train-samples=-10; expected a number > 0"),
        (
            dict(lr=1.0, min_lr=2.0, train_samples=10),
            "--min-lr 2.0 is greater than --lr 1.0; expected --min-lr <= --lr",
        ),
        (
            dict(lr=1.0, lr_warmup_init=2.0, train_samples=10),
            "--lr-warmup-init 2.0 is greater than --lr 1.0",
        ),
        (
            dict(lr=1.0, train_iters=1000, lr_warmup_iters=2000, global_batch_size=8),
            "--lr-warmup-iters 2000 is not below --train-iters 1000",
        ),
        (
            dict(
                lr=1.0,
                train_iters=1000,
                lr_decay_iters=500,
                lr_warmup_iters=500,
                global_batch_size=8,
            ),
            "--lr-warmup-iters 500 is not below --lr-decay-iters 500",
        ),
        (
            dict(lr=1.0, train_samples=1000, lr_warmup_samples=1000, global_batch_size=8),
            "--lr-warmup-samples 1000 is not below --train-samples 1000",
        ),
        (
            dict(lr=1.0, train_iters=1000, lr_warmup_fraction=1.0, global_batch_size=8),
            "--lr-warmup-fraction 1.0 makes the warmup no shorter than the decay (--train-iters "
            "1000); expected a fraction below 1",
        ),
        (
            dict(lr=1.0, train_iters=1000, lr_decay_iters=0, global_batch_size=8),
            "--lr-decay-iters=0; expected a number > 0",
        ),
        (
            dict(
                lr=1.0,
                train_samples=10,
                weight_decay_incr_style="linear",
                start_weight_decay=0.2,
                end_weight_decay=0.1,
            ),
            "--end-weight-decay 0.1 is below --start-weight-decay 0.2",
        ),
        (
            dict(lr=1.0, train_iters=10, global_batch_size=0),
            "--global-batch-size=0; expected a whole number > 0",
        ),
        (
            dict(lr=1.0, train_iters=10, global_batch_size=8, seq_length=0),
            "--seq-length=0; expected a whole number > 0",
        ),
        (
            dict(lr=1.0, train_iters=10.5, global_batch_size=8),
            "--train-iters=10.5; expected a whole number of iterations",
        ),
        (
            dict(
                lr=1.0, train_samples=10, global_batch_size=8, rampup_batch_size=[2, 2, "5 steps"]
            ),
            "--rampup-batch-size",
        ),
        (dict(lr=-3e-4, train_samples=10), "--lr=-0.0003 is negative; expected a number >= 0"),
        (dict(lr=1.0, min_lr="0", train_samples=10), "--min-lr='0' is of type str"),
        (dict(lr=1.0, lr_warmup_init=float("nan"), train_samples=10), "--lr-warmup-init=nan"),
        (dict(lr=1.0, weight_decay=-0.1, train_samples=10), "--weight-decay=-0.1 is negative"),
        (
            dict(
                lr=1.0,
                train_samples=10,
                weight_decay_incr_style="linear",
                start_weight_decay=0.0,
                end_weight_decay=-1.0,
            ),
            "--end-weight-decay=-1.0 is negative",
        ),
        (
            dict(lr=1.0, train_samples=10, lr_warmup_fraction=-0.01),
            "--lr-warmup-fraction=-0.01 is negative",
        ),
    ],
    ids=[
        "no-lr",
        "no-length",
        "two-lengths",
        "no-batch",
        "two-warmups",
        "wsd-no-length",
        "constant-with-start",
        "cosine-without-end",
        "negative",
        "min-above-max",
        "init-above-max",
        "warmup-past-train",
        "warmup-past-decay",
        "warmup-past-samples",
        "whole-fraction",
        "no-decay",
        "falling-wd",
        "batch-0",
        "seq-0",
        "fractional-iters",
        "ramp-in-steps",
        "negative-lr",
        "min-lr-text",
        "warmup-init-nan",
        "negative-wd",
        "negative-end-wd",
        "negative-fraction",
    ],
)
def test_bad_arguments_name_the_flag(values, message):
    with pytest.raises(ScheduleError) as info:
        from_megatron_args(args(**values))
    assert message in str(info.value)


def test_the_run_is_described_for_previews():
    schedule = from_megatron_args(
        args(
            lr=1.0,
            train_samples=100_000,
            global_batch_size=64,
            seq_length=2048,
            rampup_batch_size=["16", "16", "5000"],
        )
    )
    run = schedule.run
    # The run ends where Megatron stops: after its iterations, a partial last batch dropped.
    assert (run.global_batch_size, run.seq_length, run.total) == (
        64,
        2048,
        Quantity(1_676, "steps"),
    )
    assert run.total_samples == 100_000  # 192 iterations of the ramp take 5,024
    assert run.batch_size_at(0) == 16 and run.batch_size_at(5001) == 64
    ramped = from_megatron_args(
        args(
            lr=1.0,
            train_samples=10**7,
            global_batch_size=1024,
            seq_length=4096,
            rampup_batch_size=[256, 128, "20B tokens"],
        )
    )
    assert ramped.run.batch_size_at(0) == 256


@pytest.mark.parametrize(
    "values,message",
    [
        (
            dict(lr=1.0, train_iters=10, global_batch_size=8, rampup_batch_size=[1, 1, 8]),
            "--rampup-batch-size=[1, 1, 8] with --train-iters; expected --train-samples",
        ),
        (
            dict(lr=1.0, train_samples=10, global_batch_size=8, rampup_batch_size=["a", 1, 8]),
            "--rampup-batch-size[0]='a'; expected a whole number",
        ),
        (
            dict(lr=1.0, train_samples=10, global_batch_size=8, rampup_batch_size=[3, 2, 8]),
            "expected a multiple >= 0 of the increment 2",
        ),
    ],
    ids=["iters", "not-a-number", "not-dividing"],
)
def test_bad_ramps(values, message):
    with pytest.raises(ScheduleError) as info:
        from_megatron_args(args(**values))
    assert message in str(info.value)


# ------------------------------------------------------- Megatron main: step schedules

#: Megatron's own GPT-3 175B example (examples/gpt3/train_gpt3_175b_distributed.sh on
#: Megatron-LM main), without --global-batch-size, which Megatron refuses beside a step
#: schedule, and with the data-parallel size it would derive from 16 ranks.
EXAMPLE_175B = dict(
    lr=6.0e-5,
    min_lr=6.0e-6,
    lr_decay_style="cosine",
    lr_warmup_fraction=0.001,
    lr_decay_iters=430_000,
    train_iters=500_000,
    seq_length=2048,
    micro_batch_size=1,
    data_parallel_size=16,
    step_batch_size_schedule="0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536",
)


def test_a_step_schedule_is_megatrons_calculator():
    schedule, notes = read_megatron_args(args(**EXAMPLE_175B))
    run = schedule.run
    # Thresholds in tokens, floor-divided by --seq-length, as Megatron's parser does.
    assert run.batch_size_schedule == (
        (0, 16),
        (1_171_875, 320),
        (2_343_750, 624),
        (3_515_625, 928),
        (4_687_500, 1232),
        (5_859_375, 1536),
    )
    assert run.global_batch_size == 1536 and run.total == Quantity(500_000, "steps")
    # Lengths in samples of micro-batch x data-parallel size, 16 (its --global-batch-size).
    assert (schedule.lr_decay_steps, schedule.wd_incr_steps) == (430_000 * 16, 500_000 * 16)
    assert schedule.lr_warmup_steps == 0.001 * 430_000 * 16
    consumed, decay_ends = 0, None
    for iteration in range(500_000):  # Megatron main's loop, batch sizes only
        consumed += megatron_main.batch_size(run.batch_size_schedule, consumed)
        if decay_ends is None and consumed >= schedule.lr_decay_steps:
            decay_ends = iteration + 1
    assert consumed == run.samples_at_step(500_000)
    assert notes == [
        "--step-batch-size-schedule with --train-iters counts samples of micro-batch x "
        "data-parallel (16): the learning rate reaches --min-lr at iteration "
        f"{decay_ends:,}, not 430,000 (of 500,000)"
    ]
    assert decay_ends == 81_663 and schedule.lr(run.samples_at_step(decay_ends)) == 6.0e-6


def test_a_sample_based_step_schedule_counts_megatrons_iterations():
    schedule, notes = read_megatron_args(
        args(lr=1.0, train_samples=1000, step_batch_size_schedule="0:8,100:16, 500:32")
    )
    assert notes == [] and schedule.run.total == Quantity(54, "steps")
    # Megatron main counts iterations until the samples reach --train-samples: 13 of 8,
    # (104 samples), then 25 of 16 (504), then 16 of 32 (1016): a last partial batch counts.
    assert train_iterations(schedule.run, None, 1000) == 13 + 25 + 16
    assert schedule.run.samples_at_step(54) == 1016


@pytest.mark.parametrize(
    "text,value",
    [
        ("2.01M", 2_009_999),
        ("4.1B", 4_099_999_999),
        ("1.5", 1),
        ("0.3K", 300),
        ("7e2", 700),
        ("2.5k", 2500),
        ("12B", 12 * 10**9),
        ("1_000", 1000),
    ],
    ids=["2.01M", "4.1B", "fraction", "0.3K", "exponent", "lowercase", "whole", "underscore"],
)
def test_a_threshold_means_what_megatrons_float_parser_makes_of_it(text, value):
    schedule, notes = read_megatron_args(
        args(lr=1.0, train_samples=10**12, step_batch_size_schedule=f"0:4 {text}:8")
    )
    assert schedule.run.batch_size_schedule[1] == (value, 8)
    upper = text.upper()
    scale = {"M": 10**6, "B": 10**9, "K": 10**3}.get(upper[-1], 1)
    written = Fraction(upper[:-1] if scale != 1 else upper) * scale
    exact = f"{written.numerator:,}" if written.denominator == 1 else f"{float(written):,}"
    assert notes == (
        []
        if written == value
        else [
            f"--step-batch-size-schedule: Megatron reads {upper!r} as {value:,} (through a float), "
            f"not {exact}"
        ]
    )


@pytest.mark.parametrize(
    "values,message",
    [
        (
            dict(step_batch_size_schedule="0:8 100:16", global_batch_size=16),
            "--step-batch-size-schedule='0:8 100:16' with --global-batch-size=16; expected one of the "
            "two",
        ),
        (
            dict(step_batch_size_schedule="10:8 100:16"),
            "begins at 10 samples; expected a first threshold of 0",
        ),
        (
            dict(step_batch_size_schedule="0:8 100:16", seq_length=4096),
            "has two thresholds at 0 samples (tokens // --seq-length 4096)",
        ),
        (dict(step_batch_size_schedule="0:8 100:0"), "has batch size 0; expected batch sizes > 0"),
        (dict(step_batch_size_schedule="0:8 100"), "entry '100' has no ':'"),
        (dict(step_batch_size_schedule="0:8 1x:16"), "threshold='1X'; expected a number"),
        (dict(step_batch_size_schedule="0:8 inf:16"), "threshold='INF'; expected a number"),
        (dict(step_batch_size_schedule="0:8 1e30:16"), "threshold='1E30' is beyond any run"),
        (dict(step_batch_size_schedule=""), "is empty"),
        (
            dict(step_batch_size_schedule="0:8", micro_batch_size=1.5, data_parallel_size=2),
            "--micro-batch-size=1.5; expected a whole number > 0",
        ),
        (
            dict(step_batch_size_schedule="0:16 100:8"),
            "falls from batch size 16 to 8 at iteration 7; expected no fall within the run",
        ),
        (
            dict(step_batch_size_schedule="0:16 100:24", micro_batch_size=4, data_parallel_size=4),
            "reaches batch size 24 at iteration 7, not a multiple of --micro-batch-size x "
            "--data-parallel-size = 16",
        ),
    ],
    ids=[
        "with-global-batch",
        "first-not-zero",
        "collide-in-samples",
        "zero-batch",
        "no-colon",
        "not-a-number",
        "infinite",
        "beyond-any-run",
        "empty",
        "fractional-micro-batch",
        "falls",
        "not-divisible",
    ],
)
def test_a_step_schedule_megatron_refuses_is_refused(values, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        read_megatron_args(args(lr=1.0, train_samples=1000, **values))


def test_a_threshold_in_tokens_is_bounded_in_samples_not_in_tokens():
    # 1e19 tokens of 4096 are 2,441,406,250,000,000 samples, within any clock: Megatron
    # runs it, and so must paramsched.
    schedule, _ = read_megatron_args(
        args(lr=1.0, train_samples=1000, seq_length=4096, step_batch_size_schedule="0:8 1e19:16")
    )
    assert schedule.run.batch_size_schedule == ((0, 8), (10**19 // 4096, 16))
    with pytest.raises(ScheduleError, match=re.escape("threshold='1E23' is beyond any run")):
        read_megatron_args(
            args(lr=1.0, train_samples=1000, seq_length=4, step_batch_size_schedule="0:8 1e23:16")
        )


def test_a_fractional_train_iters_with_a_step_schedule_names_the_flag():
    with pytest.raises(
        ScheduleError, match=re.escape("--train-iters=100.5; expected a whole number of iterations")
    ):
        read_megatron_args(
            args(
                lr=1.0,
                train_iters=100.5,
                micro_batch_size=1,
                data_parallel_size=2,
                step_batch_size_schedule="0:2 10:8",
            )
        )


def test_a_fall_or_an_indivisible_size_past_the_end_of_training_runs():
    # Megatron stops only where its loop reaches such a stage.
    for stages in ("0:16 10000:8", "0:16 10000:24"):
        read_megatron_args(
            args(
                lr=1.0,
                train_samples=1000,
                step_batch_size_schedule=stages,
                micro_batch_size=4,
                data_parallel_size=4,
            )
        )


def test_the_iteration_based_form_needs_the_micro_batch_and_data_parallel_sizes():
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            "--data-parallel-size is not set with --step-batch-size-schedule and --train-iters; "
            "expected it, since Megatron then measures every length in samples of "
            "--micro-batch-size x --data-parallel-size"
        ),
    ):
        read_megatron_args(args(**{**EXAMPLE_175B, "data_parallel_size": None}))


@pytest.mark.parametrize(
    "values,message",
    [
        (
            dict(train_iters=10, global_batch_size=4, lr_decay_samples=100),
            "--train-iters=10 with --lr-decay-samples=100; expected iteration-based lengths",
        ),
        (
            dict(train_iters=10, global_batch_size=4, lr_warmup_samples=5),
            "--train-iters=10 with --lr-warmup-samples=5; expected --lr-warmup-iters",
        ),
        (
            dict(train_iters=10, global_batch_size=4, lr_warmup_fraction=0.1, lr_warmup_iters=2),
            "--lr-warmup-fraction=0.1 with --lr-warmup-iters=2; expected one of the two",
        ),
        (
            dict(train_samples=100, lr_decay_iters=10),
            "--train-samples=100 with --lr-decay-iters=10; expected sample-based lengths",
        ),
        (
            dict(train_samples=100, lr_warmup_iters=2),
            "--train-samples=100 with --lr-warmup-iters=2; expected --lr-warmup-samples",
        ),
    ],
    ids=[
        "iters-decay-samples",
        "iters-warmup-samples",
        "fraction-and-iters",
        "samples-decay-iters",
        "samples-warmup-iters",
    ],
)
def test_flags_that_contradict_each_other_are_refused_as_megatron_refuses_them(values, message):
    with pytest.raises(ScheduleError) as info:
        read_megatron_args(args(lr=1.0, **values))
    assert message in str(info.value) and "as Megatron requires" in str(info.value)


@pytest.mark.parametrize(
    "values,note",
    [
        (
            dict(
                train_iters=10,
                global_batch_size=4,
                lr_decay_style="WSD",
                lr_wsd_decay_iters=2,
                lr_wsd_decay_samples=8,
            ),
            "--lr-wsd-decay-samples=8 is ignored with --train-iters",
        ),
        (
            dict(
                train_samples=100,
                lr_decay_style="WSD",
                lr_wsd_decay_samples=20,
                lr_wsd_decay_iters=2,
            ),
            "--lr-wsd-decay-iters=2 is ignored with --train-samples",
        ),
        (
            dict(train_samples=100, global_batch_size=4, rampup_batch_size=[2, 2, 20]),
            "--rampup-batch-size follows Megatron-Core 0.16 and 0.17; from 0.18 Megatron ignores it",
        ),
        (
            dict(train_samples=100, step_batch_size_schedule="0:4", rampup_batch_size=[2, 2, 20]),
            "--rampup-batch-size=[2, 2, 20] is ignored: with --step-batch-size-schedule",
        ),
    ],
    ids=["wsd-samples-with-iters", "wsd-iters-with-samples", "rampup", "rampup-and-steps"],
)
def test_flags_megatron_ignores_are_noted_and_logged_at_warning(caplog, values, note):
    _, notes = read_megatron_args(args(lr=1.0, **values))
    assert len(notes) == 1 and notes[0].startswith(note)
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        from_megatron_args(args(lr=1.0, **values))
    assert [r.getMessage() for r in caplog.records] == notes
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_the_note_says_where_the_warmup_ends_when_the_stages_move_it():
    schedule, notes = read_megatron_args(
        args(
            lr=1.0,
            train_iters=100,
            lr_warmup_iters=10,
            lr_decay_style="inverse-square-root",
            micro_batch_size=1,
            data_parallel_size=2,
            step_batch_size_schedule="0:2 10:8",
        )
    )
    # 5 iterations of 2 reach 10 samples, then 8 a step: 20 samples (10 x 2) at iteration 7.
    assert schedule.run.step_at_samples(20) == 7
    # The inverse square root drops to --min-lr once the samples pass the decay length
    # (200 = 100 x 2): at iteration 29 (10 + 24 x 8 = 202), not after iteration 100.
    assert schedule.run.samples_at_step(28) == 194 and schedule.run.samples_at_step(29) == 202
    assert schedule.lr(194) > 0.3 and schedule.lr(202) == 0.0
    assert [note.split(": ", 1)[1] for note in notes] == [
        "the warmup ends at iteration 7, not 10 (of 100)",
        "the learning rate drops to --min-lr at iteration 29, not 101 (of 100)",
    ]


def megatron_016_iterations(
    start: int, increment: int, ramp: int, global_batch_size: int, train_samples: int
) -> int:
    """Megatron-Core 0.16's ``update_train_iters`` for a ramp-up, stepping megatron-core's
    own batch-size calculator: the ramp's iterations while the consumed samples are within
    the ramp (and the run), then whole batches of the global batch size."""
    calculators = pytest.importorskip("megatron.core.num_microbatches_calculator")
    calculator = calculators.RampupBatchsizeNumMicroBatchesCalculator(
        global_batch_size, 1, 1, False, 0, start, increment, ramp
    )
    iterations = consumed = 0
    while consumed <= ramp and consumed <= train_samples:
        calculator.update(consumed, False)
        consumed += calculator.get_current_global_batch_size()
        iterations += 1
    if train_samples > consumed:
        iterations += (train_samples - consumed) // global_batch_size
    return iterations


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(1, 64),
    increment=st.integers(1, 32),
    increments=st.integers(1, 8),
    ramp=st.integers(1, 5_000),
    train_samples=st.integers(1, 100_000),
)
def test_a_ramped_run_trains_megatrons_iterations(
    start, increment, increments, ramp, train_samples
):
    global_batch_size = start + increment * increments
    expected = megatron_016_iterations(start, increment, ramp, global_batch_size, train_samples)
    values = args(
        lr=1.0,
        train_samples=train_samples,
        global_batch_size=global_batch_size,
        rampup_batch_size=[start, increment, ramp],
    )
    try:
        schedule, _ = read_megatron_args(values)
    except ScheduleError as error:  # refused: the run ends within the ramp-up
        assert "ends within the batch-size ramp-up" in str(error)
        run = Run(global_batch_size=global_batch_size, rampup_batch_size=(start, increment, ramp))
        assert train_samples < run.samples_at_step(run.step_past_samples(ramp))
        return
    assert schedule.run.total == Quantity(expected, "steps")


def test_gpt3s_sample_based_flags_train_megatrons_iterations():
    schedule, _ = read_megatron_args(
        args(
            lr=6e-5,
            min_lr=6e-6,
            lr_decay_style="cosine",
            train_samples=146_484_375,
            global_batch_size=1536,
            rampup_batch_size=[16, 16, 5_859_375],
            lr_decay_samples=126_953_125,
            lr_warmup_samples=183_105,
            seq_length=2048,
        )
    )
    expected = megatron_016_iterations(16, 16, 5_859_375, 1536, 146_484_375)
    assert schedule.run.total == Quantity(expected, "steps")
    assert train_iterations(schedule.run, None, 146_484_375) == expected
