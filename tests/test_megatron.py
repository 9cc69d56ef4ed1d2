"""Tests for paramsched.megatron: Megatron's arguments as Megatron reads them."""

from __future__ import annotations

import argparse

import pytest

from paramsched import Schedule, ScheduleError, from_megatron_args


def args(**values):
    return argparse.Namespace(**values)


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
], ids=["no-lr", "no-length", "two-lengths", "no-batch", "two-warmups", "wsd-no-length",
        "constant-with-start", "cosine-without-end", "negative", "min-above-max"])
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
