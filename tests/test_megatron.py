"""Tests for paramsched.megatron: Megatron's arguments as Megatron reads them."""

from __future__ import annotations

import argparse

import pytest

from paramsched import (
    LR_DECAY_STYLES,
    WD_INCR_STYLES,
    WSD_DECAY_STYLES,
    Schedule,
    ScheduleError,
    from_megatron_args,
    load_schedule,
)
from paramsched.megatron import MEGATRON_DEFAULTS, MEGATRON_FLAGS, add_megatron_flags

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
    "lr_wsd_decay_style": {**_ITERATIONS, "lr_decay_style": "WSD", "lr_wsd_decay_iters": 20,
                           "lr_wsd_decay_style": "minus_sqrt"},
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
        MEGATRON_DEFAULTS["lr_warmup_init"], MEGATRON_DEFAULTS["min_lr"],
        MEGATRON_DEFAULTS["weight_decay"], MEGATRON_DEFAULTS["weight_decay"])
    assert (schedule.lr_decay_style, schedule.lr_wsd_decay_style, schedule.wd_incr_style) == (
        MEGATRON_DEFAULTS["lr_decay_style"], MEGATRON_DEFAULTS["lr_wsd_decay_style"],
        MEGATRON_DEFAULTS["weight_decay_incr_style"])


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
    schedule = from_megatron_args(args(lr=3e-4, min_lr=3e-5, train_iters=1000, lr_warmup_iters=10,
                                       lr_decay_style="cosine", global_batch_size=256))
    assert schedule == Schedule(
        init_lr=0.0, max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=2560, lr_decay_steps=256_000,
        lr_decay_style="cosine", start_wd=0.01, end_wd=0.01, wd_incr_steps=256_000,
        wd_incr_style="constant", lr_wsd_decay_style="exponential")


def test_decay_iters_and_warmup_fraction():
    schedule = from_megatron_args(args(lr=1.0, train_iters=1000, lr_decay_iters=800,
                                       lr_warmup_fraction=0.01, global_batch_size=3))
    assert schedule.lr_decay_steps == 2400
    assert schedule.lr_warmup_steps == 0.01 * 2400  # a float, as Megatron computes it
    assert schedule.wd_incr_steps == 3000


def test_samples_are_used_as_they_are():
    schedule = from_megatron_args(args(lr=1.0, train_samples=10_000, lr_warmup_samples=100,
                                       lr_decay_style="WSD", lr_wsd_decay_samples=2000,
                                       lr_wsd_decay_style="minus_sqrt"))
    assert (schedule.lr_warmup_steps, schedule.lr_decay_steps, schedule.wsd_decay_steps) == (
        100, 10_000, 2000)
    assert schedule.lr_wsd_decay_style == "minus_sqrt"


def test_weight_decay_styles():
    constant = from_megatron_args(args(lr=1.0, train_samples=10, weight_decay=0.1))
    assert (constant.start_wd, constant.end_wd) == (0.1, 0.1)
    rising = from_megatron_args(args(lr=1.0, train_samples=10, weight_decay_incr_style="linear",
                                     start_weight_decay=0.0, end_weight_decay=0.1))
    assert (rising.start_wd, rising.end_wd, rising.wd_incr_steps) == (0.0, 0.1, 10)


@pytest.mark.parametrize("values,message", [
    (dict(train_iters=10), "--lr is not set"),
    (dict(lr=1.0), "neither --train-iters nor --train-samples is set"),
    (dict(lr=1.0, train_iters=10, train_samples=100), "are both set"),
    (dict(lr=1.0, train_iters=10), "--global-batch-size is not set"),
    (dict(lr=1.0, train_samples=10, lr_warmup_fraction=0.1, lr_warmup_samples=5),
     "--lr-warmup-fraction=0.1 and --lr-warmup-samples=5 are both set"),
    (dict(lr=1.0, train_samples=10, lr_decay_style="WSD"),
     "--lr-wsd-decay-samples is not set with --lr-decay-style=WSD"),
    (dict(lr=1.0, train_samples=10, start_weight_decay=0.1),
     "--start-weight-decay=0.1 with --weight-decay-incr-style=constant"),
    (dict(lr=1.0, train_samples=10, weight_decay_incr_style="cosine", start_weight_decay=0.0),
     "--end-weight-decay is not set with --weight-decay-incr-style=cosine"),
    (dict(lr=1.0, train_samples=-10), "--train-samples=-10; expected a number > 0"),
    (dict(lr=1.0, min_lr=2.0, train_samples=10),
     "from Megatron's arguments: min_lr=2.0 is greater than max_lr=1.0"),
    (dict(lr=-3e-4, train_samples=10), "--lr=-0.0003 is negative; expected a number >= 0"),
    (dict(lr=1.0, min_lr="0", train_samples=10), "--min-lr='0' is of type str"),
    (dict(lr=1.0, lr_warmup_init=float("nan"), train_samples=10), "--lr-warmup-init=nan"),
    (dict(lr=1.0, weight_decay=-0.1, train_samples=10), "--weight-decay=-0.1 is negative"),
    (dict(lr=1.0, train_samples=10, weight_decay_incr_style="linear", start_weight_decay=0.0,
          end_weight_decay=-1.0), "--end-weight-decay=-1.0 is negative"),
    (dict(lr=1.0, train_samples=10, lr_warmup_fraction=-0.01),
     "--lr-warmup-fraction=-0.01 is negative"),
], ids=["no-lr", "no-length", "two-lengths", "no-batch", "two-warmups", "wsd-no-length",
        "constant-with-start", "cosine-without-end", "negative", "min-above-max", "negative-lr",
        "min-lr-text", "warmup-init-nan", "negative-wd", "negative-end-wd",
        "negative-fraction"])
def test_bad_arguments_name_the_flag(values, message):
    with pytest.raises(ScheduleError) as info:
        from_megatron_args(args(**values))
    assert message in str(info.value)


def test_the_run_is_described_for_previews():
    schedule = from_megatron_args(args(lr=1.0, train_samples=100_000, global_batch_size=64,
                                       seq_length=2048, rampup_batch_size=["16", "16", "5000"]))
    run = schedule.run
    assert (run.global_batch_size, run.seq_length, run.total_samples) == (64, 2048, 100_000)
    assert run.batch_size_at(0) == 16 and run.batch_size_at(5001) == 64
    ramped = from_megatron_args(args(lr=1.0, train_samples=10**6, global_batch_size=1024,
                                     seq_length=4096, rampup_batch_size=[256, 128, "20B tokens"]))
    assert ramped.run.batch_size_at(0) == 256


@pytest.mark.parametrize("values,message", [
    (dict(lr=1.0, train_iters=10, global_batch_size=8, rampup_batch_size=[1, 1, 8]),
     "--rampup-batch-size=[1, 1, 8] with --train-iters; expected --train-samples"),
    (dict(lr=1.0, train_samples=10, global_batch_size=8, rampup_batch_size=["a", 1, 8]),
     "--rampup-batch-size[0]='a'; expected a whole number"),
    (dict(lr=1.0, train_samples=10, global_batch_size=8, rampup_batch_size=[3, 2, 8]),
     "expected a multiple >= 0 of the increment 2"),
], ids=["iters", "not-a-number", "not-dividing"])
def test_bad_ramps(values, message):
    with pytest.raises(ScheduleError) as info:
        from_megatron_args(args(**values))
    assert message in str(info.value)
