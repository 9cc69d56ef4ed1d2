"""Differential tests: paramsched against megatron-core 0.16.1, float for float."""

from __future__ import annotations

import random
import warnings

import pytest
from conftest import PlainOptimizer, increments, random_config, random_groups, step_counts, written

from paramsched import OptimizerParamScheduler, ScheduleError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    megatron = pytest.importorskip("megatron.core.optimizer_param_scheduler")

pytestmark = pytest.mark.megatron

N_CONFIGS = 400


def pair(config, groups):
    ours, theirs = PlainOptimizer(groups), PlainOptimizer(groups)
    return (
        OptimizerParamScheduler(ours, **config),
        ours,
        megatron.OptimizerParamScheduler(theirs, **config),
        theirs,
    )


@pytest.mark.parametrize("seed", range(N_CONFIGS), ids=lambda s: f"config{s}")
def test_every_written_value_equals_megatron(seed):
    rng = random.Random(seed)
    config = random_config(rng)
    scheduler, ours, reference, theirs = pair(config, random_groups(rng, config))
    assert written(ours) == written(theirs), "after construction"
    for increment in increments(step_counts(rng, config)):
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs), (config, reference.num_steps)
    for group in ours.param_groups:
        assert scheduler.get_lr(group) == reference.get_lr(group)
        assert scheduler.get_wd(group) == reference.get_wd(group)
    assert scheduler.get_wd() == reference.get_wd()


def test_written_values_are_floats_where_megatron_writes_ints():
    # An int min_lr comes back from Megatron as an int; paramsched writes floats of equal value.
    config = dict(
        init_lr=0,
        max_lr=1,
        min_lr=0,
        lr_warmup_steps=0,
        lr_decay_steps=4,
        lr_decay_style="linear",
        start_wd=0,
        end_wd=0,
        wd_incr_steps=0,
        wd_incr_style="constant",
    )
    scheduler, ours, reference, theirs = pair(config, [{}])
    for _ in range(6):
        scheduler.step(1)
        reference.step(1)
        assert written(ours) == written(theirs)
        assert all(type(v) is float for v in written(ours)[0])


@pytest.mark.parametrize("seed", range(40), ids=lambda s: f"config{s}")
def test_our_checkpoint_loads_into_megatron(seed):
    rng = random.Random(1000 + seed)
    config = random_config(rng)
    groups = random_groups(rng, config)
    scheduler, ours, _, _ = pair(config, groups)
    counts = step_counts(rng, config, points=50)
    for increment in increments(counts[: len(counts) // 2]):
        scheduler.step(increment)
    _, _, reference, theirs = pair(config, groups)
    reference.load_state_dict(scheduler.state_dict())
    assert reference.num_steps == scheduler.num_steps
    assert written(theirs) == written(ours)


@pytest.mark.parametrize("legacy", [False, True], ids=["current-keys", "legacy-keys"])
@pytest.mark.parametrize("seed", range(40), ids=lambda s: f"config{s}")
def test_megatron_checkpoint_resumes_exactly(seed, legacy):
    rng = random.Random(2000 + seed)
    config = random_config(rng)
    groups = random_groups(rng, config)
    _, _, reference, theirs = pair(config, groups)
    counts = step_counts(rng, config, points=60)
    split = rng.randrange(len(counts))
    steps = increments(counts)
    for increment in steps[:split]:
        reference.step(increment)
    state = reference.state_dict()
    if legacy:
        renames = {
            "max_lr": "start_lr",
            "lr_warmup_steps": "warmup_iter",
            "lr_decay_steps": "end_iter",
            "lr_decay_style": "decay_style",
            "num_steps": "num_iters",
        }
        state = {renames.get(k, k): v for k, v in state.items()}
    scheduler, ours, _, _ = pair(config, groups)
    scheduler.step(7)  # loading sets the step; it never adds to it
    scheduler.load_state_dict(state)
    assert scheduler.num_steps == reference.num_steps
    assert written(ours) == written(theirs)
    for increment in steps[split:]:
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs)


def test_override_helpers_match_megatron():
    overrides = [{"wd_mult": 0.0, "max_lr": 1e-3}, None, {"min_lr": 1e-5, "wd_mult": 0.0}]
    from paramsched import combine_param_group_overrides, param_group_override_to_tuple

    assert combine_param_group_overrides(overrides) == megatron.combine_param_group_overrides(
        overrides
    )
    for override in overrides:
        assert param_group_override_to_tuple(override) == (
            megatron.param_group_override_to_tuple(override)
        )


@pytest.mark.parametrize(
    "warmup",
    [3.3376107877608e-309, 5e-324, 1e-300, 0.5],
    ids=["subnormal", "smallest", "tiny", "half"],
)
def test_degenerate_warmups_match_megatron(warmup):
    # Hypothesis found that a subnormal warmup overshoots max_lr; Megatron's does too.
    config = dict(
        init_lr=0.0,
        max_lr=3e-4,
        min_lr=0.0,
        lr_warmup_steps=warmup,
        lr_decay_steps=1,
        lr_decay_style="constant",
        start_wd=0.0,
        end_wd=0.0,
        wd_incr_steps=0,
        wd_incr_style="constant",
    )
    scheduler, ours, reference, theirs = pair(config, [{}])
    for increment in (0, warmup, 0.5, 1):
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs)


@pytest.mark.parametrize("seed", range(60), ids=lambda s: f"run{s}")
def test_groups_changed_between_steps_match_megatron(seed):
    """Overrides changed, groups added, removed and replaced between steps, as users and
    torch's load_state_dict do: megatron-core re-reads them at every step, and so must we."""
    rng = random.Random(5000 + seed)
    config = random_config(rng)
    groups = random_groups(rng, config)
    scheduler, ours, reference, theirs = pair(config, groups)
    for increment in increments(step_counts(rng, config, points=150)):
        change = rng.random()
        if change < 0.1:
            index = rng.randrange(len(ours.param_groups))
            key = rng.choice(["max_lr", "min_lr", "wd_mult"])
            value = {
                "max_lr": config["max_lr"] * rng.choice([1, 2, 3]),
                "min_lr": config["min_lr"] * rng.random(),
                "wd_mult": rng.random(),
            }[key]
            if key == "max_lr":
                value = max(value, ours.param_groups[index].get("min_lr", config["min_lr"]))
            if key == "min_lr":
                value = min(value, ours.param_groups[index].get("max_lr", config["max_lr"]))
            for optimizer in (ours, theirs):
                optimizer.param_groups[index][key] = value
        elif change < 0.15:
            extra = random_groups(rng, config)[-1]
            ours.param_groups.append(dict(extra))
            theirs.param_groups.append(dict(extra))
        elif change < 0.2 and len(ours.param_groups) > 1:
            index = rng.randrange(len(ours.param_groups))
            del ours.param_groups[index], theirs.param_groups[index]
        elif change < 0.25:  # new dicts with the same contents, as load_state_dict makes
            ours.param_groups = [dict(g) for g in ours.param_groups]
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs), (config, reference.num_steps)


@pytest.mark.parametrize(
    "wsd,warmup",
    [(0, 10), (0, 0), (150, 10), (100, 0), (95, 10), (20.5, 10), (0.25, 0), (1e-9, 10)],
    ids=[
        "none",
        "none-no-warmup",
        "above-decay",
        "decay-no-warmup",
        "into-warmup",
        "fractional",
        "quarter",
        "tiny",
    ],
)
@pytest.mark.parametrize("style", ["linear", "cosine", "exponential", "minus_sqrt"])
def test_every_wsd_anneal_megatron_runs_is_run_bit_exact_with_one_warning(
    wsd, warmup, style, caplog
):
    # An anneal of none, one longer than the decay (or than what the warmup leaves), or a
    # fractional one: megatron-core runs them all; paramsched runs them as it does, saying so.
    import logging

    config = dict(
        init_lr=0.0,
        max_lr=1e-3,
        min_lr=1e-5,
        lr_warmup_steps=warmup,
        lr_decay_steps=100,
        lr_decay_style="WSD",
        start_wd=0.1,
        end_wd=0.1,
        wd_incr_steps=100,
        wd_incr_style="constant",
        wsd_decay_steps=wsd,
        lr_wsd_decay_style=style,
    )
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler, ours, reference, theirs = pair(config, [{}, {"max_lr": 2e-3, "min_lr": 0.0}])
    warned = [r.getMessage() for r in caplog.records]
    unusual = wsd == 0 or wsd > 100 or not float(wsd).is_integer()
    assert len(warned) == (1 if unusual else 0)
    if unusual:
        assert warned[0].startswith(f"wsd_decay_steps={wsd!r} with lr_decay_steps=100: ")
    for increment in [1] * 120 + [0.5, 0.25, 3]:
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs), reference.num_steps
    import numpy as np

    grid = np.arange(0, 121, 0.25)
    assert scheduler.schedule.lr(grid).tolist() == [scheduler.schedule.lr(float(n)) for n in grid]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("seed", range(25), ids=lambda s: f"config{s}")
def test_numpy_float_overrides_compute_in_numpys_type_as_megatron_does(dtype, seed):
    # A group's max_lr as numpy.float32 makes megatron-core compute in float32 (NumPy's
    # promotion): the same floats, not float64 ones.
    import numpy as np

    rng = random.Random(seed)
    config = random_config(rng)
    narrow = getattr(np, dtype)
    groups = [
        {},
        {"max_lr": narrow(config["max_lr"] * 1.5), "min_lr": narrow(config["min_lr"])},
        {"max_lr": narrow(config["max_lr"]), "wd_mult": narrow(0.5)},
        {"start_wd": narrow(config["start_wd"]), "end_wd": narrow(config["end_wd"])},
    ]
    if config["wd_incr_style"] == "constant":
        groups[3] = {"end_wd": narrow(config["end_wd"]), "start_wd": narrow(config["end_wd"])}
    try:
        scheduler, ours, reference, theirs = pair(config, groups)
    except ScheduleError as error:  # float16 overflows in a long warmup: nan, refused
        position = int(str(error).split("at num_steps=")[1].split()[0])
        assert dtype == "float16" and "reaches nan" in str(error)
        megatron_core = megatron.OptimizerParamScheduler(PlainOptimizer(groups), **config)
        megatron_core.step(position)
        assert any(np.isnan(g["lr"]) for g in megatron_core.optimizer.param_groups)
        return
    assert written(ours) == written(theirs), "after construction"
    for increment in increments(step_counts(rng, config)):
        scheduler.step(increment)
        reference.step(increment)
        assert written(ours) == written(theirs), (config, reference.num_steps)
        assert all(type(v) is float for row in written(ours) for v in row)


def test_a_float32_override_and_a_float_of_the_same_value_compute_apart():
    import numpy as np

    config = dict(
        init_lr=0.0,
        max_lr=0.5,
        min_lr=0.1,
        lr_warmup_steps=3,
        lr_decay_steps=100,
        lr_decay_style="cosine",
        start_wd=0.0,
        end_wd=0.0,
        wd_incr_steps=100,
        wd_incr_style="constant",
    )
    groups = [{"max_lr": 0.5}, {"max_lr": np.float32(0.5)}]  # equal, and hash alike
    scheduler, ours, reference, theirs = pair(config, groups)
    for _ in range(40):
        scheduler.step(1)
        reference.step(1)
        assert written(ours) == written(theirs)
    assert written(ours)[0] != written(ours)[1]  # float64 and float32 arithmetic differ
