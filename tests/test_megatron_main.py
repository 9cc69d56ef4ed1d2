"""Differential tests: Megatron's flags with a step batch-size schedule against Megatron
main, as `megatron_main` (a reference written from its published code) runs them."""

from __future__ import annotations

import argparse
import random
import warnings

import numpy as np
import pytest
from conftest import PlainOptimizer, random_groups

from paramsched import OptimizerParamScheduler, ScheduleError
from paramsched.formats.megatron import MEGATRON_DEFAULTS, read_megatron_args

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    megatron = pytest.importorskip("megatron.core.optimizer_param_scheduler")
import megatron_main  # noqa: E402 - after the skip: it needs nothing, but its oracle does

pytestmark = pytest.mark.megatron

N_CONFIGS = 300


def _written_number(rng: random.Random, value: int) -> str:
    """`value` spelled as a user might: plain, or with a suffix and a decimal rounded
    to a few places (which Megatron reads through a float)."""
    suffixes = [
        (s, scale)
        for s, scale in (("K", 10**3), ("M", 10**6), ("B", 10**9), ("k", 10**3))
        if value >= scale
    ]
    if not suffixes or rng.random() < 0.4:
        return str(value) if rng.random() < 0.9 else f"{value}.0"
    suffix, scale = rng.choice(suffixes)
    return f"{value / scale:.{rng.randint(1, 6)}f}{suffix}"


def random_args(rng: random.Random) -> argparse.Namespace:
    """Megatron's flags for a small run with a step batch-size schedule, mostly valid."""
    micro, parallel = rng.choice([1, 2, 4]), rng.choice([1, 2, 8])
    unit = micro * parallel
    seq_length = rng.choice([None, None, 1, 7, 4096])
    stages = rng.randint(1, 5)
    sizes = sorted(unit * rng.randint(1, 32) for _ in range(stages))
    if rng.random() < 0.1:
        rng.shuffle(sizes)  # may fall: Megatron stops where it does
    if rng.random() < 0.05:
        sizes[-1] += 1  # not divisible: Megatron stops if it is reached
    iterations = rng.randint(10, 200)
    reach = iterations * sizes[-1]
    thresholds = [0] + sorted(rng.sample(range(1, reach), stages - 1))
    entries = []
    for threshold, size in zip(thresholds, sizes):
        tokens = (
            threshold if seq_length is None else threshold * seq_length + rng.randrange(seq_length)
        )
        batch = str(size) if rng.random() < 0.9 else _written_number(rng, size)
        entries.append(f"{_written_number(rng, tokens)}:{batch}")
    if rng.random() < 0.3:
        rng.shuffle(entries)  # Megatron sorts them
    args = dict(MEGATRON_DEFAULTS)
    args.update(
        step_batch_size_schedule=rng.choice([" ", ", "]).join(entries),
        seq_length=seq_length,
        micro_batch_size=micro,
        data_parallel_size=parallel,
        lr=rng.choice([3e-4, 1.0, rng.uniform(1e-5, 1e-2)]),
        lr_decay_style=rng.choice(["constant", "linear", "cosine", "inverse-square-root", "WSD"]),
        lr_wsd_decay_style=rng.choice(["linear", "cosine", "exponential", "minus_sqrt"]),
        weight_decay=rng.choice([0.0, 0.1]),
    )
    args["min_lr"] = args["lr"] * rng.choice([0.0, 0.1, rng.random()])
    args["lr_warmup_init"] = args["lr"] * rng.choice([0.0, 0.0, rng.random()])
    if rng.random() < 0.3:
        args.update(
            weight_decay_incr_style=rng.choice(["linear", "cosine"]),
            start_weight_decay=0.01,
            end_weight_decay=rng.choice([0.01, 0.1]),
        )
    if rng.random() < 0.5:  # iteration-based: lengths in samples of micro x data-parallel
        length = args["train_iters"] = iterations
        prefix = "iters"
    else:
        length = args["train_samples"] = rng.randint(1, reach)
        prefix = "samples"
    decay = args[f"lr_decay_{prefix}"] = rng.choice(
        [None, rng.randint(max(1, length // 4), length)]
    )
    decay = length if decay is None else decay
    if rng.random() < 0.3:
        args["lr_warmup_fraction"] = rng.choice([0.0, 0.01, 0.2])
    else:
        args[f"lr_warmup_{prefix}"] = rng.choice([0, rng.randrange(0, decay)])
    args[f"lr_wsd_decay_{prefix}"] = rng.randint(1, decay)
    return argparse.Namespace(**args)


def groups_for(rng: random.Random, args) -> list[dict]:
    config = dict(max_lr=args.lr, min_lr=args.min_lr, wd_incr_style=args.weight_decay_incr_style)
    groups = random_groups(rng, config)
    for group in groups:  # the weight decay is not what these tests are about
        group.pop("start_wd", None), group.pop("end_wd", None)
    return groups


def expected_learning_rates(args, groups):
    try:
        return megatron_main.train(args, megatron.OptimizerParamScheduler, PlainOptimizer(groups))
    except megatron_main.Refused:
        return None


@pytest.mark.parametrize("seed", range(N_CONFIGS), ids=lambda s: f"config{s}")
def test_every_learning_rate_is_megatron_mains(seed):
    rng = random.Random(seed)
    args = random_args(rng)
    groups = groups_for(rng, args)
    expected = expected_learning_rates(args, groups)
    if expected is None:
        with pytest.raises(ScheduleError):
            read_megatron_args(args)
        return
    schedule, _ = read_megatron_args(args)
    run = schedule.run
    iterations = len(expected) - 1

    optimizer = PlainOptimizer(groups)  # the scheduler, stepped as Megatron steps it
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    ours = [[group["lr"] for group in optimizer.param_groups]]
    for _ in range(iterations):
        scheduler.step(increment=run.batch_size_at(scheduler.num_steps))
        ours.append([group["lr"] for group in optimizer.param_groups])
    assert ours == expected, (args, groups)

    positions = run.samples_at_step(np.arange(iterations + 1))  # the preview's array path
    for index, group in enumerate(optimizer.param_groups):
        column = schedule.lr(positions, group.get("max_lr"), group.get("min_lr"))
        assert column.tolist() == [row[index] for row in expected]


@pytest.mark.parametrize("seed", range(100), ids=lambda s: f"config{s}")
def test_the_torch_scheduler_follows_the_schedules_clock(seed):
    torch = pytest.importorskip("torch")
    from paramsched.torch import ParamScheduler

    rng = random.Random(seed)
    args = random_args(rng)
    expected = expected_learning_rates(args, [{}])
    if expected is None:
        return  # refusals: the test above
    schedule, _ = read_megatron_args(args)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    scheduler = ParamScheduler(optimizer, schedule)
    ours = [[optimizer.param_groups[0]["lr"]]]
    for _ in range(len(expected) - 1):
        optimizer.step()
        scheduler.step()
        ours.append([optimizer.param_groups[0]["lr"]])
    assert ours == expected


#: Megatron main's GPT-3 175B example (examples/gpt3/train_gpt3_175b_distributed.sh)
#: without --global-batch-size (main refuses it beside a step schedule), on 16 ranks.
EXAMPLE = [
    "--lr",
    "6.0e-5",
    "--min-lr",
    "6.0e-6",
    "--lr-decay-style",
    "cosine",
    "--lr-warmup-fraction",
    ".001",
    "--seq-length",
    "2048",
    "--micro-batch-size",
    "1",
    "--data-parallel-size",
    "16",
    "--step-batch-size-schedule",
    "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536",
]
FORMS = {
    "iteration-based": ["--train-iters", "500000", "--lr-decay-iters", "430000"],
    "sample-based": ["--train-samples", "146484375", "--lr-decay-samples", "126953125"],
}


@pytest.mark.slow
@pytest.mark.parametrize("form", FORMS)
def test_megatrons_own_example_previews_megatrons_rates_at_every_step(form, tmp_path):
    import csv

    from paramsched.cli import _build_parser, main

    argv = [*EXAMPLE, *FORMS[form]]
    options = _build_parser().parse_args(["preview", *argv])
    args = argparse.Namespace(
        **{
            **MEGATRON_DEFAULTS,
            **{
                name: getattr(options, name)
                for name in MEGATRON_DEFAULTS
                if getattr(options, name) is not None
            },
        }
    )
    expected = expected_learning_rates(args, [{}])
    path = tmp_path / "every-step.csv"
    assert main(["preview", *argv, "--csv", str(path)]) == 0
    with open(path) as rows:
        table = list(csv.DictReader(rows))
    iterations = len(expected) - 1
    assert len(table) >= iterations + 1
    pairs = megatron_main.parse(args.step_batch_size_schedule, args.seq_length)
    consumed = 0
    for step in range(iterations + 1):
        row = table[step]
        assert int(row["step"]) == step and int(row["samples"]) == consumed
        assert float(row["lr"]) == expected[step][0]
        consumed += megatron_main.batch_size(pairs, consumed)
