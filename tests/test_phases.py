"""Tests for paramsched.phases: golden values, Megatron equivalence, validation, arrays."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from conftest import PlainOptimizer, random_config
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import PhaseSchedule, Schedule, ScheduleError


def schedule(phases, wd=None, run=None, **names):
    lr = {"init_lr": 0.0, "max_lr": 1.0, "min_lr": 0.25, **names, "phases": phases}
    data = {"lr": lr, "run": run or {}}
    if wd is not None:
        data["wd"] = wd
    return PhaseSchedule.from_dict(data)


def samples(n):
    return f"{n!r} samples"


def test_golden_warmup_hold_decay_hold_step_down():
    s = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "4 samples"},
            {"shape": "constant", "until": "8 samples"},
            {"shape": "linear", "to": "min_lr", "until": "16 samples"},
            {"shape": "constant", "until": "20 samples"},
            {"shape": "constant", "value": 0.125, "until": "24 samples"},
        ],
        init_lr=0.5,
    )
    expected = {
        0: 0.5,
        2: 0.75,
        4: 1.0,
        6: 1.0,
        8: 1.0,
        12: 0.625,
        16: 0.25,
        18: 0.25,
        20: 0.25,
        21: 0.125,
        24: 0.125,
        1000: 0.125,
    }
    assert {n: s.lr(n) for n in expected} == expected
    assert s.lr(np.array(list(expected))).tolist() == list(expected.values())


@pytest.mark.parametrize(
    "shape,middle",
    [
        ("cosine", 0.625),
        ("minus_sqrt", None),
        ("exponential", None),
        ("polynomial", 0.4375),
    ],
)
def test_golden_decays(shape, middle):
    phase = {"shape": shape, "to": "min_lr", "until": "8 samples", "from": "max_lr"}
    if shape == "polynomial":
        phase["power"] = 2.0
    s = schedule([phase])
    assert s.lr(0) == 1.0 and s.lr(8) == 0.25 and s.lr(9) == 0.25
    if middle is not None:  # cosine: (cos(pi/2) + 1) / 2; polynomial: 0.25 + 0.75 * 0.5**2
        assert s.lr(4) == middle
    assert s.lr(2) == pytest.approx(
        {
            "cosine": 0.25 + 0.75 * (2 + math.sqrt(2)) / 4,
            "minus_sqrt": 0.25 + 0.75 * 0.5,
            "exponential": 0.25 + 0.75 * (2 * 0.5**0.25 - 1),
            "polynomial": 0.25 + 0.75 * 0.75**2,
        }[shape],
        rel=1e-15,
    )


def test_rising_shapes_and_from():
    s = schedule(
        [
            {"shape": "cosine", "to": "max_lr", "until": "8 samples"},
            {"shape": "linear", "to": "min_lr", "until": "16 samples", "from": 0.5},
        ]
    )
    assert s.lr(0) == 0.0 and s.lr(4) == 0.5 and s.lr(8) == 1.0
    assert s.lr(9) == 0.46875  # jumps to its own start, 0.5, and falls to 0.25
    assert s.lr(16) == 0.25


def test_inverse_square_root_phase_is_floored_and_ends_at_its_target():
    s = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "4 samples"},
            {"shape": "inverse-square-root", "to": "min_lr", "until": "100 samples"},
        ]
    )
    assert s.lr(16) == 0.5 and s.lr(64) == 0.25 and s.lr(81) == 0.25 and s.lr(101) == 0.25


def test_values_are_named_so_group_overrides_apply():
    s = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "4 samples"},
            {"shape": "linear", "to": "min_lr", "until": "12 samples"},
        ]
    )
    assert s.lr(8) == 0.625
    assert s.lr(8, max_lr=2.0, min_lr=0.0) == 1.0
    assert s.lr_at(2, 2.0, 0.0) == 1.0


def test_units_resolve_through_the_run():
    run = {"global_batch_size": 4, "seq_length": 2, "total": "40 samples"}
    s = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "2 steps"},
            {"shape": "constant", "until": "32 tokens"},
            {"shape": "linear", "to": "min_lr", "until": "100%"},
        ],
        run=run,
    )
    assert s.lr_curve.ends == (8, 16, 40)


def test_weight_decay_phases_and_megatron_triple():
    phases = schedule(
        [{"shape": "constant", "until": "1 samples"}],
        wd={
            "start_wd": 0.0,
            "end_wd": 0.2,
            "phases": [{"shape": "linear", "to": "end_wd", "until": "10 samples"}],
        },
    )
    assert phases.wd(5) == 0.1 and phases.wd(50) == 0.2 and phases.wd(5, end_wd=0.4) == 0.2
    triple = schedule(
        [{"shape": "constant", "until": "1 samples"}],
        run={"total": "8 samples"},
        wd={"start_wd": 0.0, "end_wd": 0.5, "style": "cosine"},
    )
    reference = Schedule(
        max_lr=1.0,
        lr_decay_steps=8,
        lr_decay_style="constant",
        start_wd=0.0,
        end_wd=0.5,
        wd_incr_steps=8,
        wd_incr_style="cosine",
    )
    assert [triple.wd(n) for n in range(10)] == [reference.wd(n) for n in range(10)]
    assert triple.to_dict()["wd"]["style"] == "cosine"


def megatron_as_phases(config):
    """Megatron's linear or cosine schedule written as phases, in samples."""
    w, d = config["lr_warmup_steps"], config["lr_decay_steps"]
    decay = {"shape": config["lr_decay_style"], "to": "min_lr", "until": samples(d)}
    phases = (
        [{"shape": "linear", "to": "max_lr", "until": samples(w)}, decay]
        if w > 0
        else [{**decay, "from": "max_lr"}]
    )
    return PhaseSchedule.from_dict(
        {
            "lr": {
                "init_lr": config["init_lr"],
                "max_lr": config["max_lr"],
                "min_lr": config["min_lr"],
                "phases": phases,
            }
        }
    )


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(["linear", "cosine"]))
def test_warmup_then_decay_phases_are_megatrons_schedule_to_the_bit(rng, style):
    config = {**random_config(rng), "lr_decay_style": style}
    config.pop("wsd_decay_steps", None), config.pop("lr_wsd_decay_style", None)
    megatron = Schedule(**config)
    phases = megatron_as_phases(config)
    d = config["lr_decay_steps"]
    points = sorted(
        {
            0,
            1,
            d,
            d + 1,
            int(config["lr_warmup_steps"]),
            *(rng.randint(0, int(d * 1.2) + 2) for _ in range(60)),
        }
    )
    overrides = (config["max_lr"], config["min_lr"]), (2 * config["max_lr"], 0.0)
    for max_lr, min_lr in overrides:
        assert [phases.lr_at(n, max_lr, min_lr) for n in points] == [
            megatron.lr_at(n, max_lr, min_lr) for n in points
        ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "linear",
                "cosine",
                "exponential",
                "minus_sqrt",
                "polynomial",
                "constant",
                "inverse-square-root",
            ]
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.floats(0, 1e-3), min_size=8, max_size=8),
    st.lists(st.integers(1, 50), min_size=8, max_size=8),
)
def test_array_path_equals_scalar_path(shapes, targets, lengths):
    phases, end = [], 0
    for shape, target, length in zip(shapes, targets, lengths):
        end += length
        phase = {"shape": shape, "until": samples(end)}
        if shape == "constant":
            phase["value"] = target
        else:
            phase["to"] = target
        if shape == "polynomial":
            phase["power"] = 1.5
        phases.append(phase)
    s = schedule(phases, max_lr=1e-3, min_lr=0.0)
    grid = np.concatenate([np.linspace(0, end + 5, 997), np.arange(end + 6)])
    scalar = [s.lr(float(n)) for n in grid]
    assert s.lr(grid).tolist() == scalar  # every shape, the inverse square root too
    order = np.random.default_rng(0).permutation(grid.size)  # unsorted input: another path
    np.testing.assert_array_equal(s.lr(grid[order]), s.lr(grid)[order])


BAD = [
    (
        "unknown-shape",
        [{"shape": "cosin", "to": 0.0, "until": "5 samples"}],
        "lr.phases[0].shape='cosin' is not one of",
    ),
    ("no-until", [{"shape": "linear", "to": 0.0}], "lr.phases[0] has no 'until'"),
    ("no-to", [{"shape": "linear", "until": "5 samples"}], "lr.phases[0] (linear) has no 'to'"),
    (
        "not-increasing",
        [
            {"shape": "linear", "to": 1.0, "until": "5 samples"},
            {"shape": "constant", "until": "5 samples"},
        ],
        "lr.phases[1].until='5 samples' (5 samples) does not come after the previous end",
    ),
    (
        "bare-number",
        [{"shape": "linear", "to": 1.0, "until": "500"}],
        "lr.phases[0].until='500' is not a quantity",
    ),
    (
        "unknown-name",
        [{"shape": "linear", "to": "peak_lr", "until": "5 samples"}],
        "lr.phases[0].to='peak_lr' is not one of 'init_lr', 'max_lr', 'min_lr'",
    ),
    (
        "negative",
        [{"shape": "linear", "to": -1.0, "until": "5 samples"}],
        "lr.phases[0].to=-1.0 is negative",
    ),
    (
        "power-missing",
        [{"shape": "polynomial", "to": 0.0, "until": "5 samples"}],
        "lr.phases[0].power=None; expected a number > 0",
    ),
    (
        "power-elsewhere",
        [{"shape": "linear", "to": 0.0, "until": "5 samples", "power": 2}],
        "only a polynomial phase has a power",
    ),
    (
        "value-elsewhere",
        [{"shape": "linear", "to": 0.0, "value": 1.0, "until": "5 samples"}],
        "only a constant phase holds a value",
    ),
    (
        "to-on-constant",
        [{"shape": "constant", "to": 0.0, "until": "5 samples"}],
        "expected 'value' for a constant phase",
    ),
    (
        "unknown-key",
        [{"shape": "linear", "to": 0.0, "until": "5 samples", "form": 1}],
        "lr.phases[0] has an unknown key 'form'",
    ),
    ("empty", [], "lr.phases=[]; expected a non-empty list of phases"),
    (
        "percent-without-total",
        [{"shape": "linear", "to": 1.0, "until": "50%"}],
        "is a percentage; expected total",
    ),
    (
        "tokens-without-seq",
        [{"shape": "linear", "to": 1.0, "until": "5 tokens"}],
        "is in tokens; expected seq_length",
    ),
]


@pytest.mark.parametrize("phases,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_phases_name_the_key(phases, message):
    with pytest.raises(ScheduleError) as info:
        schedule(phases)
    assert message in str(info.value)


def test_bad_tables_name_the_key():
    with pytest.raises(ScheduleError, match="lr has no 'max_lr'"):
        PhaseSchedule.from_dict({"lr": {"phases": []}})
    with pytest.raises(ScheduleError, match="schedule has an unknown key 'lrs'"):
        PhaseSchedule.from_dict({"lrs": {}})
    with pytest.raises(ScheduleError, match="the schedule has no \\[lr\\] table"):
        PhaseSchedule.from_dict({"run": {}})
    with pytest.raises(ScheduleError, match="wd has both phases and 'style'"):
        schedule(
            [{"shape": "constant", "until": "1 samples"}], wd={"style": "linear", "phases": []}
        )
    with pytest.raises(ScheduleError, match="lr.min_lr=2.0 is greater than lr.max_lr=1.0"):
        schedule([{"shape": "constant", "until": "1 samples"}], min_lr=2.0)


def test_equality_and_round_trip_through_data():
    phases = [{"shape": "linear", "to": "max_lr", "until": "4 samples"}]
    a, b = schedule(phases), schedule(phases)
    assert a == b and a.to_dict() == b.to_dict()
    assert PhaseSchedule.from_dict(a.to_dict()) == a
    assert a != schedule(phases, max_lr=2.0)


@pytest.mark.parametrize(
    "wd",
    [
        {
            "start_wd": 0.0,
            "end_wd": 0.2,
            "phases": [
                {"shape": "cosine", "to": "end_wd", "until": "7 samples"},
                {"shape": "constant", "value": 0.05, "until": "9 samples"},
                {"shape": "exponential", "to": 0.0, "until": "40 samples"},
            ],
        },
        {"start_wd": 0.0, "end_wd": 0.3, "style": "cosine", "until": "23 samples"},
        {"start_wd": 0.1, "end_wd": 0.3, "style": "linear", "until": "17 samples"},
    ],
    ids=["phases", "triple-cosine", "triple-linear"],
)
def test_weight_decay_array_path_equals_scalar_path(wd):
    s = schedule([{"shape": "constant", "until": "1 samples"}], wd=wd)
    grid = np.concatenate([np.linspace(0, 50, 1001), np.arange(51)])
    for overrides in ({}, {"start_wd": 0.05, "end_wd": 0.4}):
        assert s.wd(grid, **overrides).tolist() == [s.wd(float(n), **overrides) for n in grid]


def test_a_ramp_length_as_a_whole_float_is_the_same_schedule():
    def spelled(length):
        return PhaseSchedule.from_dict(
            {
                "run": {"global_batch_size": 4, "rampup_batch_size": [2, 2, length]},
                "lr": {
                    "max_lr": 1.0,
                    "phases": [{"shape": "linear", "to": "max_lr", "until": "3 steps"}],
                },
            }
        )

    schedules = [spelled(1000), spelled(1000.0), spelled("1000 samples"), spelled("1K samples")]
    for schedule in schedules[1:]:
        assert schedule == schedules[0]
        assert hash(schedule) == hash(schedules[0])
        assert schedule.to_state() == schedules[0].to_state()


def test_a_run_with_batch_size_stages_drives_phases_in_tokens(tmp_path):
    from paramsched import OptimizerParamScheduler, load_schedule

    path = tmp_path / "stages.toml"
    path.write_text(
        '[run]\nseq_length = 1000\ntotal = "60K tokens"\n'
        'batch_size_schedule = [["0 tokens", 4], ["10K tokens", 8], ["30K tokens", 16]]\n'
        "[lr]\nmax_lr = 1.0\nmin_lr = 0.0\n"
        '[[lr.phases]]\nshape = "linear"\nto = "max_lr"\nuntil = "8K tokens"\n'
        '[[lr.phases]]\nshape = "cosine"\nto = "min_lr"\nuntil = "100%"\n'
    )
    schedule = load_schedule(path)
    run = schedule.run
    assert run.batch_size_schedule == ((0, 4), (10, 8), (30, 16))
    same = PhaseSchedule.from_dict({**schedule.to_dict(), "run": run.to_dict()})
    assert same == schedule and same.to_state() == schedule.to_state()
    optimizer = type("Optimizer", (), {"param_groups": [{}]})()
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    for step in range(1, 8):
        scheduler.step(increment=run.batch_size_at(scheduler.num_steps))
        assert scheduler.num_steps == run.samples_at_step(step)
        assert optimizer.param_groups[0]["lr"] == schedule.lr(run.samples_at_step(step))
    assert [run.samples_at_step(k) for k in range(6)] == [0, 4, 8, 12, 20, 28]


def test_a_falling_weight_decay_runs_without_a_warning(caplog):
    import logging

    from paramsched import OptimizerParamScheduler

    falling = schedule(
        [{"shape": "constant", "until": "1 samples"}],
        wd={
            "start_wd": 0.1,
            "end_wd": 0.0,
            "phases": [
                {"shape": "cosine", "from": "start_wd", "to": "end_wd", "until": "10 samples"}
            ],
        },
    )
    optimizer = type("Optimizer", (), {"param_groups": [{}, {"wd_mult": 0.5}]})()
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler = OptimizerParamScheduler.from_schedule(optimizer, falling)
        scheduler.step(5)
    assert caplog.records == []  # falling is what the schedule says: nothing unusual
    assert [g["weight_decay"] for g in optimizer.param_groups] == [
        falling.wd(5),
        falling.wd(5) * 0.5,
    ]
    assert falling.wd(0) == 0.1 and falling.wd(10) == 0.0


# ------------------------------------------------------------------------- branches

COOLDOWN = [{"shape": "minus_sqrt", "to": "min_lr", "until": "100%"}]


def wsd_megatron(decay=100_000):
    return Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=2000,
        lr_decay_steps=decay,
        lr_decay_style="WSD",
        wsd_decay_steps=decay // 10,
        lr_wsd_decay_style="exponential",
        start_wd=0.1,
        end_wd=0.1,
        wd_incr_steps=decay,
        wd_incr_style="constant",
    )


@pytest.mark.parametrize("seed", range(60))
def test_a_branch_equals_its_parent_to_the_bit_up_to_the_branch_point(seed):
    rng = np.random.default_rng(seed)
    parent = Schedule(**random_config(__import__("random").Random(seed)))
    end = float(max(parent.lr_decay_steps, parent.wd_incr_steps)) * 1.3 + 10
    at = float(
        rng.choice([0, rng.uniform(0, end), parent.lr_warmup_steps, parent.lr_decay_steps, end])
    )
    if rng.random() < 0.5:
        at = float(int(at))
    target = float(rng.choice([parent.min_lr, 0.0, parent.max_lr * rng.random()]))
    # Without a run the schedule counts optimizer steps: the point lands on a whole step.
    at = math.ceil(at)
    ends = sorted({at + int(d) for d in rng.uniform(1, end, size=rng.integers(1, 4))})
    phases = [
        {
            "shape": str(rng.choice(["linear", "cosine", "minus_sqrt", "exponential"])),
            "to": target if k else "min_lr",
            "until": f"{e} steps",
        }
        for k, e in enumerate(ends)
    ]
    branch = parent.branch(at, phases)
    assert branch.branch_point == at
    before = np.concatenate([np.linspace(0, at, 513), np.arange(0, int(at) + 1)])
    for overrides in (
        {},
        {"max_lr": parent.max_lr * 2, "min_lr": parent.min_lr / 2},
        {"max_lr": parent.min_lr / 2},
    ):  # the last: min_lr above max_lr
        assert branch.lr(before, **overrides).tolist() == parent.lr(before, **overrides).tolist()
        assert [branch.lr(float(n), **overrides) for n in before[:40]] == [
            parent.lr(float(n), **overrides) for n in before[:40]
        ]
        assert branch.lr(at, **overrides) == parent.lr(at, **overrides)
        # A falling phase reaches its target exactly at its end; a rising one keeps
        # Megatron's warmup arithmetic there, and holds its target exactly after the last.
        start, first = parent.lr(at, **overrides), overrides.get("min_lr", parent.min_lr)
        if first < start:
            assert branch.lr(ends[0], **overrides) == first
    values = [branch.lr(e) for e in ends]
    for (k, e), value in zip(enumerate(ends), values):
        goal = target if k else parent.min_lr
        if goal < (parent.lr(at) if k == 0 else values[k - 1]):
            assert value == goal
    assert branch.lr(ends[-1] + 1) == (target if len(ends) > 1 else parent.min_lr)
    assert branch.wd(before).tolist() == parent.wd(before).tolist()


def test_a_cooldown_branched_from_a_wsd_run_at_a_chosen_step():
    parent = wsd_megatron()
    run_parent = Schedule(**{**parent.to_dict()}, run=None)
    from paramsched import Run

    parent = Schedule(**parent.to_dict(), run=Run(global_batch_size=1, total="100000 samples"))
    cooldown = parent.branch(
        "60000 samples", [{"shape": "minus_sqrt", "to": "min_lr", "until": "70000 samples"}]
    )
    assert cooldown.lr(60_000) == parent.lr(60_000) == 3e-4
    assert cooldown.lr(70_000) == 3e-5 and cooldown.lr(90_000) == 3e-5
    assert 3e-5 < cooldown.lr(65_000) < 3e-4
    assert run_parent == parent  # the run is not part of a Megatron schedule's identity
    resumed = PhaseSchedule.from_dict(cooldown.to_dict())
    assert resumed == cooldown and hash(resumed) == hash(cooldown)
    grid = np.arange(0, 100_001, 7, dtype=np.float64)
    assert resumed.lr(grid).tolist() == cooldown.lr(grid).tolist()
    assert cooldown.to_dict()["branch"]["at"] == "60000 samples"


def test_a_branch_of_a_phase_schedule_and_a_branch_of_a_branch():
    from paramsched import load_schedule
    from paramsched.recipe import recipe_path

    parent = load_schedule(recipe_path("deepseek-v3"))
    extended = parent.branch("80%", [{"shape": "cosine", "to": 1e-5, "until": "120%"}])
    again = extended.branch(
        "90%", [{"shape": "linear", "to": 0.0, "until": "100%"}], total="15T tokens"
    )
    at80, at90 = parent.run.position("80%"), parent.run.position("90%")
    grid = np.linspace(0, at80, 4001)
    assert extended.lr(grid).tolist() == parent.lr(grid).tolist()
    assert (
        again.lr(np.linspace(0, at90, 4001)).tolist()
        == extended.lr(np.linspace(0, at90, 4001)).tolist()
    )
    # "100%" of 15T tokens falls inside a step: the phase reaches 0 at that step's end.
    end = again.run.total_samples
    assert again.lr(again.run.position("100%")) == 0.0 < again.lr(end)
    assert again.run.position("100%") == again.run.samples_at_step(again.run.step_at_samples(end))
    assert PhaseSchedule.from_dict(again.to_dict()) == again
    assert again.agrees_with(parent, at80) and not again.agrees_with(parent, at80 + 1)
    assert again.departs_from(parent) == at80 and again.departs_from(extended) == at90


def test_group_overrides_start_a_branch_from_their_own_value():
    parent = wsd_megatron()
    branch = parent.branch(50_000, [{"shape": "linear", "to": "min_lr", "until": "60000 steps"}])
    # A group with its own max_lr starts the cooldown from its own plateau.
    assert branch.lr(50_000, max_lr=1e-3) == 1e-3
    assert branch.lr(55_000, max_lr=1e-3) == 3e-5 + (1.0 - 5000 / 10_000) * (1e-3 - 3e-5)
    assert branch.lr(60_000, max_lr=1e-3, min_lr=1e-6) == 1e-6


@pytest.mark.parametrize(
    "at,phases,message",
    [
        (
            500,
            [{"shape": "linear", "to": "min_lr", "until": "400 steps"}],
            r"lr.phases\[0\].until='400 steps' \(400 steps\) does not come after the previous end",
        ),
        (-1, COOLDOWN, r"branch.at=-1; expected a point >= 0"),
        (
            "50 samples",
            COOLDOWN,
            r"branch.at='50 samples' is in samples, on a schedule that counts "
            r"optimizer steps \(it has no run",
        ),
        ("50 tokens", COOLDOWN, r"is in tokens, on a schedule that counts optimizer steps"),
        (
            "50 steps",
            COOLDOWN,
            r"lr.phases\[0\].until='100%' is a percentage, on a schedule "
            r"that counts optimizer steps; expected steps, or total='N steps'",
        ),
        (500, [], r"expected a non-empty list of phases"),
    ],
    ids=[
        "before-the-branch-point",
        "negative",
        "samples-without-a-run",
        "tokens-without-a-run",
        "percent-without-a-total",
        "no-phases",
    ],
)
def test_a_branch_that_cannot_be_is_refused(at, phases, message):
    with pytest.raises(ScheduleError, match=message):
        wsd_megatron().branch(at, phases)


def _scheduler(schedule, policy="checkpoint"):
    from conftest import PlainOptimizer

    from paramsched import OptimizerParamScheduler

    optimizer = PlainOptimizer([{}, {"max_lr": 1e-3}])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    scheduler.checkpoint_policy = policy
    return scheduler, optimizer


@pytest.mark.parametrize("policy", ["checkpoint", "override", "strict"])
@pytest.mark.parametrize("position", [0, 30_000, 50_000], ids=["start", "before", "at"])
def test_a_parents_checkpoint_up_to_the_branch_point_continues_on_the_branch(
    policy, position, caplog
):
    import logging

    from conftest import written

    parent = wsd_megatron()
    branch = parent.branch(50_000, COOLDOWN, total="60000 steps")
    old, _ = _scheduler(parent)
    old.step(position)
    scheduler, optimizer = _scheduler(branch, policy)
    with caplog.at_level(logging.INFO, logger="paramsched"):
        scheduler.load_state_dict(old.state_dict())
    assert "continuing on the branch" in caplog.text
    assert scheduler.schedule is branch and scheduler.num_steps == position
    scheduler.step(55_000 - position)
    assert written(optimizer)[0][0] == branch.lr(55_000) < parent.lr(55_000)
    assert written(optimizer)[1][0] == branch.lr(55_000, max_lr=1e-3)


def test_a_parents_checkpoint_past_the_branch_point_follows_the_policies(caplog):
    parent = wsd_megatron()
    branch = parent.branch(50_000, COOLDOWN, total="60000 steps")
    old, _ = _scheduler(parent)
    old.step(50_001)
    state = old.state_dict()
    # Never continued on the parent silently: refused under the strict and the default
    # policy, in one line naming both positions; the override policy keeps the branch.
    for policy in ("strict", "checkpoint"):
        scheduler, _ = _scheduler(branch, policy)
        with pytest.raises(
            ScheduleError,
            match=r"^the checkpoint is at 50001 steps, past this "
            r"branch's point at 50000 steps: .*expected a "
            r"branch at 50001 steps or later",
        ) as error:
            scheduler.load_state_dict(state)
        assert "\n" not in str(error.value)
        assert scheduler.schedule is branch and scheduler.num_steps == 0
    kept, _ = _scheduler(branch, "override")
    kept.load_state_dict(state)
    assert kept.schedule is branch


def test_a_branchs_checkpoint_resumes_the_same_branch():
    import pickle

    parent = wsd_megatron()
    branch = parent.branch(50_000, COOLDOWN, total="60000 steps")
    scheduler, _ = _scheduler(branch)
    scheduler.step(52_000)
    resumed, optimizer = _scheduler(parent)  # built with the parent, as a restarted job might
    resumed.load_state_dict(json.loads(json.dumps(scheduler.state_dict())))
    assert resumed.schedule == branch and resumed.schedule.branch_point == 50_000
    assert resumed.schedule.lr(55_000) == branch.lr(55_000)
    assert pickle.loads(pickle.dumps(branch)) == branch


# ------------------------------------------------------------ repeated blocks, scaled names


def test_a_repeated_block_is_its_phases_written_out():
    warm = {"shape": "linear", "to": "max_lr", "until": "100 samples"}
    block = {
        "repeat": 3,
        "period": "1000 samples",
        "factor": 0.5,
        "phases": [
            {"shape": "constant", "value": "max_lr", "until": "80%"},
            {"shape": "cosine", "to": "min_lr", "until": "1000 samples"},
        ],
    }
    repeated = schedule([warm, block], max_lr=1.0, min_lr=0.1)
    written = schedule(
        [warm]
        + [
            phase
            for k, peak in enumerate(["max_lr", "0.5 * max_lr", "0.25 * max_lr"])
            for phase in (
                {"shape": "constant", "value": peak, "until": f"{900 + 1000 * k} samples"},
                {"shape": "cosine", "to": "min_lr", "until": f"{1100 + 1000 * k} samples"},
            )
        ],
        max_lr=1.0,
        min_lr=0.1,
    )
    assert repeated == written and repeated.to_dict() == written.to_dict()
    assert [repeated.lr(n) for n in (100, 900, 1100, 1500, 1900, 2100, 2900, 3100, 5000)] == [
        1.0,
        1.0,
        0.1,
        0.5,
        0.5,
        0.1,
        0.25,
        0.1,
        0.1,
    ]
    # A group's own max_lr is scaled the same way, each repetition.
    assert repeated.lr(1500, max_lr=2.0) == 0.5 * 2.0 and repeated.lr(2500, max_lr=2.0) == 0.5
    grid = np.linspace(0, 3200, 6401)
    assert repeated.lr(grid).tolist() == [repeated.lr(float(n)) for n in grid]
    assert PhaseSchedule.from_dict(repeated.to_dict()) == repeated


def test_a_block_without_a_period_repeats_its_phases_back_to_back_and_holds_what_is_left():
    cyclic = schedule(
        [
            {
                "repeat": 2,
                "phases": [
                    {"shape": "cosine", "to": "min_lr", "until": "10 samples", "from": "max_lr"}
                ],
            }
        ],
        max_lr=1.0,
        min_lr=0.0,
    )
    assert [cyclic.lr(n) for n in (0, 10, 11, 20)] == [1.0, 0.0, cyclic.lr(1), 0.0]
    held = schedule(
        [
            {
                "repeat": 2,
                "period": "20 samples",
                "phases": [
                    {"shape": "linear", "to": "min_lr", "until": "10 samples", "from": "max_lr"}
                ],
            }
        ],
        max_lr=1.0,
        min_lr=0.0,
    )
    assert [held.lr(n) for n in (10, 15, 20, 25, 30)] == [0.0, 0.0, 0.0, 0.5, 0.0]


@pytest.mark.parametrize(
    "block,message",
    [
        (
            {"repeat": 0, "phases": [{"shape": "constant", "until": "1 samples"}]},
            r"lr.phases\[0\].repeat=0; expected a whole number >= 1",
        ),
        ({"repeat": True, "phases": [{"shape": "constant", "until": "1 samples"}]}, "repeat=True"),
        (
            {"repeat": 10**6, "phases": [{"shape": "constant", "until": "1 samples"}]},
            "repeats 1 phases 1,000,000 times; expected at most 10,000 phases",
        ),
        ({"repeat": 2, "phases": []}, r"lr.phases\[0\].phases=\[\]; expected a non-empty list"),
        (
            {
                "repeat": 2,
                "period": "5 samples",
                "phases": [{"shape": "constant", "until": "10 samples"}],
            },
            "its phases end at 10 samples, after the period of 5 samples",
        ),
        (
            {"repeat": 2, "phases": [{"shape": "constant", "until": "50%"}]},
            "is a percentage; expected a 'period' in the block",
        ),
        (
            {"repeat": 2, "factor": -1.0, "phases": [{"shape": "constant", "until": "1 samples"}]},
            r"lr.phases\[0\].factor=-1.0 is negative",
        ),
        (
            {"repeat": 2, "every": 3, "phases": [{"shape": "constant", "until": "1 samples"}]},
            "has an unknown key 'every'",
        ),
    ],
    ids=[
        "zero",
        "bool",
        "too-many",
        "empty",
        "past-the-period",
        "percent-without-period",
        "negative-factor",
        "unknown-key",
    ],
)
def test_a_block_that_cannot_repeat_is_refused(block, message):
    with pytest.raises(ScheduleError, match=message):
        schedule([block], max_lr=1.0)


def test_a_scaled_name_is_a_named_value_times_a_factor():
    s = schedule([{"shape": "linear", "to": "0.5 * max_lr", "until": "10 samples"}], max_lr=2.0)
    assert s.lr(10) == 1.0 and s.lr(10, max_lr=4.0) == 2.0
    assert s.to_dict()["lr"]["phases"][0]["to"] == "0.5 * max_lr"
    for bad, message in (
        ("0.5 * peak_lr", "is not one of"),
        ("half * max_lr", "is not one of"),
        ("nan * max_lr", "is not finite"),
        ("-1 * max_lr", "is negative"),
    ):
        with pytest.raises(ScheduleError, match=message):
            schedule([{"shape": "linear", "to": bad, "until": "10 samples"}], max_lr=1.0)


def test_a_branch_of_a_branch_without_wd_phases_keeps_its_parents_weight_decay():
    # The grandchild has no [wd] phases: its weight decay is its parent's, whose phases
    # start from the parent's own branch point (not from the grandchild's).
    parent = Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=200,
        lr_decay_steps=1000,
        lr_decay_style="cosine",
        start_wd=0.0,
        end_wd=0.1,
        wd_incr_steps=1000,
        wd_incr_style="cosine",
    )
    hold = [{"shape": "constant", "until": "1000 steps"}]
    child = parent.branch(300, hold, wd=[{"shape": "linear", "to": "end_wd", "until": "600 steps"}])
    grandchild = child.branch(400, hold)
    grid = np.arange(0, 801, dtype=np.float64)
    assert grandchild.wd(grid).tolist() == child.wd(grid).tolist()
    assert [grandchild.wd(n) for n in (350, 400, 500)] == [child.wd(n) for n in (350, 400, 500)]
    overrides = {"start_wd": 0.05, "end_wd": 0.2}
    assert grandchild.wd(grid, **overrides).tolist() == child.wd(grid, **overrides).tolist()
    deeper = grandchild.branch(450, hold).branch(470, hold)
    assert deeper.wd(grid).tolist() == child.wd(grid).tolist()
    assert PhaseSchedule.from_dict(deeper.to_dict()).wd(grid).tolist() == child.wd(grid).tolist()


def test_a_branch_point_in_percent_is_of_the_parents_run_whatever_the_new_total():
    from paramsched import Run

    run = dict(global_batch_size=1, total="1000 samples")
    megatron = Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=200,
        lr_decay_steps=1000,
        lr_decay_style="cosine",
        run=Run(**run),
    )
    phases = PhaseSchedule.from_dict(
        {
            "run": run,
            "lr": {
                "max_lr": 3e-4,
                "min_lr": 3e-5,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "200 samples"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
        }
    )
    tail = [{"shape": "cosine", "to": "min_lr", "until": "100%"}]
    for parent in (megatron, phases):
        extended = parent.branch("50%", tail, total="2000 samples")
        assert extended.branch_point == 500, type(parent).__name__
        assert extended.lr(2000) == 3e-5 and extended.lr(500) == parent.lr(500)


def test_two_spellings_of_one_branch_point_are_one_branch():
    from paramsched import Run

    parent = Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=200,
        lr_decay_steps=1000,
        lr_decay_style="cosine",
        run=Run(global_batch_size=1),
    )
    tail = [{"shape": "linear", "to": "min_lr", "until": "900 samples"}]
    spellings = [
        parent.branch(at, tail) for at in (500, 500.0, np.float64(500), "500 steps", "5e2 samples")
    ]
    assert all(s == spellings[0] for s in spellings)
    assert len({hash(s) for s in spellings}) == 1
    assert {s.to_dict()["branch"]["at"] for s in spellings} == {"500 samples"}


def test_weight_decay_phases_of_numbers_alone_run_with_their_own_groups():
    # The phases use neither start_wd nor end_wd by name: the schedule is not Megatron's
    # constant weight decay, and its default group (start_wd != end_wd) runs.
    from conftest import PlainOptimizer, written

    from paramsched import OptimizerParamScheduler

    schedule = PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 1},
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "10 steps"}],
            },
            "wd": {
                "start_wd": 0.01,
                "end_wd": 0.1,
                "phases": [{"shape": "constant", "from": 0.02, "value": 0.02, "until": "10 steps"}],
            },
        }
    )
    for start in (schedule, schedule.branch(5, [{"shape": "constant", "until": "10 steps"}])):
        optimizer = PlainOptimizer([{}])
        scheduler = OptimizerParamScheduler.from_schedule(optimizer, start)
        scheduler.step(3)
        assert written(optimizer) == [(0.3, 0.02)]


def test_equal_schedules_hash_alike_whatever_the_spelling_of_their_numbers():
    # Branches of two equal Megatron schedules (10 and 10.0 steps) are equal, and a
    # minimum of -0.0 is 0.0: equal schedules must hash alike (sets, dict keys).
    ten = Schedule(max_lr=1.0, lr_warmup_steps=10, lr_decay_steps=100, lr_decay_style="cosine")
    ten_point_zero = Schedule(
        max_lr=1.0, lr_warmup_steps=10.0, lr_decay_steps=100.0, lr_decay_style="cosine"
    )
    tail = [{"shape": "linear", "to": "min_lr", "until": "60 steps"}]
    pairs = [(ten.branch(50, tail), ten_point_zero.branch(50, tail))]
    zero = {
        "lr": {
            "max_lr": 1.0,
            "min_lr": 0.0,
            "phases": [{"shape": "linear", "to": "max_lr", "until": "5 samples"}],
        }
    }
    minus_zero = {"lr": {**zero["lr"], "min_lr": -0.0}}
    pairs.append((PhaseSchedule.from_dict(zero), PhaseSchedule.from_dict(minus_zero)))
    for a, b in pairs:
        assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda parent: parent.update(bogus=1),
            r"branch.parent: 'bogus' is not one of Megatron's schedule fields",
        ),
        (
            lambda parent: parent.pop("max_lr"),
            r"branch.parent: Megatron's schedule is missing 'max_lr'",
        ),
        (lambda parent: parent.update(run={}), r"branch.parent: 'run' is not one of Megatron's"),
        (lambda parent: parent.update(kind=["megatron"]), r"branch.parent.kind=\['megatron'\]"),
        (lambda parent: parent.update(max_lr="x"), r"branch.parent: max_lr='x' is of type str"),
    ],
    ids=["unknown-field", "missing-field", "run", "kind-a-list", "str"],
)
def test_a_malformed_parent_in_a_branchs_data_is_one_schedule_error(change, message):
    # What a hand-edited or hostile checkpoint may hold: never a bare TypeError.
    import copy

    branch = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="cosine").branch(
        50, [{"shape": "linear", "to": "min_lr", "until": "60 steps"}]
    )
    deeper = branch.branch(55, [{"shape": "linear", "to": "min_lr", "until": "60 steps"}])
    data = branch.to_dict()
    change(data["branch"]["parent"])
    with pytest.raises(ScheduleError, match=message):
        PhaseSchedule.from_dict(data)
    data = copy.deepcopy(deeper.to_dict())
    change(data["branch"]["parent"]["branch"]["parent"])
    with pytest.raises(
        ScheduleError, match=message.replace("branch.parent", "branch.parent.branch.parent", 1)
    ):
        PhaseSchedule.from_dict(data)


def test_a_branch_at_minus_zero_is_the_branch_at_zero_and_resumes():
    # Its meaning read "-0.0 steps", which no quantity is: its checkpoint could not load.
    parent = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="cosine")
    tail = [{"shape": "linear", "to": "min_lr", "until": "5 steps"}]
    branch = parent.branch(-0.0, tail)
    assert branch == parent.branch(0, tail) and branch.to_dict()["branch"]["at"] == "0 steps"
    assert PhaseSchedule.from_dict(branch.to_dict()) == branch


def test_a_repeated_block_that_opens_a_branch_begins_at_the_branch_point():
    parent = wsd_megatron()
    cycles = parent.branch(
        50_000,
        [
            {
                "repeat": 3,
                "factor": 0.5,
                "phases": [
                    {"shape": "cosine", "to": "min_lr", "until": "1000 steps", "from": "max_lr"}
                ],
            }
        ],
    )
    written = parent.branch(
        50_000,
        [
            {"shape": "cosine", "from": peak, "to": "min_lr", "until": f"{end} steps"}
            for peak, end in (
                ("max_lr", 51_000),
                ("0.5 * max_lr", 52_000),
                ("0.25 * max_lr", 53_000),
            )
        ],
    )
    assert cycles == written
    assert cycles.lr(50_000) == parent.lr(50_000) and cycles.lr(51_000) == 3e-5
    assert cycles.lr(51_000.5) < 0.5 * 3e-4 and cycles.lr(53_000) == 3e-5


def test_a_new_total_before_the_branch_point_is_refused():
    with pytest.raises(
        ScheduleError,
        match=r"total='1000 steps' is 1000 steps, before the "
        r"branch point at 50000 steps",
    ):
        wsd_megatron().branch(50_000, COOLDOWN, total="1000 steps")


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {
                "lr": {
                    "max_lr": 1.0,
                    "phases": [
                        {"shape": "linear", "to": "max_lr", "until": "50 tokens"},
                        {"shape": "linear", "to": 0.0, "until": "40 tokens"},
                    ],
                }
            },
            "lr.phases[1].until='40 tokens' (40 tokens) does not come after the previous end (50 tokens)",
        ),
        (
            {
                "run": {
                    "clock": "tokens",
                    "total": "100 tokens",
                    "batch_size_schedule": [[0, 1], ["5 tokens", 2], ["4 tokens", 3]],
                }
            },
            "batch_size_schedule[2][0]='4 tokens' is 4 tokens, not after the stage before it "
            "(5 tokens)",
        ),
        (
            {
                "lr": {
                    "max_lr": 1.0,
                    "phases": [{"shape": "linear", "to": "max_lr", "until": "50 samples"}],
                }
            },
            "lr.phases[0].until='50 samples' is in samples, on a run whose clock counts tokens",
        ),
        (
            {"wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear", "until": "0%"}},
            "wd.until='0%' is 0 tokens; expected a length > 0",
        ),
    ],
    ids=["phase-ends", "stages", "samples", "wd-until"],
)
def test_a_token_clock_speaks_of_tokens(data, message):
    base = {
        "run": {"clock": "tokens", "total": "100 tokens"},
        "lr": {
            "max_lr": 1.0,
            "phases": [{"shape": "linear", "to": "max_lr", "until": "50 tokens"}],
        },
    }
    with pytest.raises(ScheduleError, match=re.escape(message)):
        PhaseSchedule.from_dict({**base, **data})


RULED = {
    "run": {"total": "4000 samples", "batch_size_schedule": [[0, 8], [400, 16]]},
    "lr": {
        "max_lr": 2e-3,
        "min_lr": 2e-4,
        "batch_size_rule": "sqrt",
        "phases": [
            {"shape": "linear", "to": "max_lr", "until": "200 samples"},
            {"shape": "cosine", "to": "min_lr", "until": "100%"},
        ],
    },
}
TAIL = [{"shape": "linear", "to": "min_lr", "until": "3000 samples"}]


@pytest.mark.parametrize(
    "run,message",
    [
        (
            {"clock": "tokens", "total": "4000 tokens"},
            "run.clock='tokens' with a parent whose clock counts samples; expected the parent's",
        ),
        (
            {"total": "4000 samples", "batch_size_schedule": [[0, 8], [400, 64]]},
            "the branch's run (batch_size_schedule 8 from 0 samples, 64 from 400 samples) gives "
            "other batch sizes than its parent's (batch_size_schedule 8 from 0 samples, 16 from 400 "
            "samples) before the branch point at 2512 samples",
        ),
        (
            {"total": "4000 samples"},
            "the branch's run (no batch size) gives other batch sizes than its parent's",
        ),
    ],
    ids=["clock", "batch-sizes-under-a-rule", "no-batch-size-under-a-rule"],
)
def test_a_branch_whose_run_breaks_its_parents_history_is_refused(run, message):
    # Accepted, they gave other values than the parent's before the branch point: a
    # position in samples read as tokens, or the parent's rate scaled by other batch sizes.
    parent = PhaseSchedule.from_dict(RULED)
    data = {
        "branch": {"parent": {"kind": "phases", **parent.to_dict()}, "at": "2500 samples"},
        "run": run,
        "lr": {
            "phases": [{"shape": "linear", "to": 0.0, "until": "3000 " + run["total"].split()[1]}]
        },
    }
    with pytest.raises(ScheduleError, match=re.escape(message)):
        PhaseSchedule.from_dict(data)


def test_a_branch_may_change_the_batch_size_after_its_branch_point():
    parent = PhaseSchedule.from_dict(RULED)
    data = {
        "branch": {"parent": {"kind": "phases", **parent.to_dict()}, "at": "2500 samples"},
        "run": {"total": "4000 samples", "batch_size_schedule": [[0, 8], [400, 16], [2600, 32]]},
        "lr": {"phases": TAIL},
    }
    branch = PhaseSchedule.from_dict(data)
    assert [branch.lr(n) for n in range(0, 2501, 50)] == [parent.lr(n) for n in range(0, 2501, 50)]
    assert branch.lr(2600) == branch.base_lr(2600) * 2.0


def test_a_bad_factor_of_a_scaled_name_is_named_as_written():
    # The message named the factor alone as the field's value: "to=-0.5 is negative".
    for table in (
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "-0.5 * max_lr", "until": "10 samples"}],
            }
        },
        {
            "lr": {"max_lr": 1.0, "phases": [{"shape": "constant", "until": "10 samples"}]},
            "loop": {
                "clip": {
                    "start": 1.0,
                    "phases": [{"shape": "linear", "to": "-0.5 * start", "until": "10 samples"}],
                }
            },
        },
    ):
        place = "lr" if "loop" not in table else "loop.clip"
        name = "max_lr" if "loop" not in table else "start"
        with pytest.raises(
            ScheduleError,
            match=re.escape(
                f"{place}.phases[0].to='-0.5 * {name}': its factor -0.5 is negative; "
                "expected a factor >= 0"
            ),
        ):
            PhaseSchedule.from_dict(table)


# ------------------------------------------------- where a quantity lands: one rule


def _eighty_percent_run():
    # 80% of 7812.5 samples is 6250, inside step 391 (6240 to 6256 samples).
    from paramsched import Run

    return Run(global_batch_size=16, seq_length=16, total="125000 tokens")


def test_following_previews_step_for_a_branch_point_continues_on_the_branch(caplog):
    import logging

    from paramsched import OptimizerParamScheduler, preview

    parent = PhaseSchedule.from_dict(
        {
            "run": _eighty_percent_run().to_dict(),
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.1,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "100 steps"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
        }
    )
    shown = preview.at(parent, "80%")
    assert shown["step"] == 391 and shown["samples"] == 6256  # where the branch lands
    cooldown = parent.branch("80%", [{"shape": "linear", "to": 0.0, "until": "90%"}])
    assert cooldown.branch_point == 6256 == parent.run.samples_at_step(391)
    # The step preview reported is the parent's last: the branch's first value is the next.
    assert cooldown.lr(6256) == parent.lr(6256) and cooldown.lr(6272) < parent.lr(6272)
    for saved_at in (390, 391):  # a checkpoint saved at the reported step, or before
        old = OptimizerParamScheduler.from_schedule(PlainOptimizer([{}]), parent)
        old.step_to(parent.run.samples_at_step(saved_at))
        new = OptimizerParamScheduler.from_schedule(PlainOptimizer([{}]), cooldown)
        with caplog.at_level(logging.INFO, logger="paramsched"):
            new.load_state_dict(old.state_dict())
        assert new.schedule is cooldown and "continuing on the branch" in caplog.text
    # One step later the checkpoint's history is the parent's: refused, and what the
    # message says to do works.
    old = OptimizerParamScheduler.from_schedule(PlainOptimizer([{}]), parent)
    old.step_to(parent.run.samples_at_step(392))
    for policy in ("checkpoint", "strict"):
        new = OptimizerParamScheduler.from_schedule(
            PlainOptimizer([{}]), cooldown, policy == "checkpoint", False
        )
        with pytest.raises(
            ScheduleError,
            match=r"^the checkpoint is at step 392 \(6,272 "
            r"samples\), past this branch's point at step "
            r"391 \(6,256 samples\).*expected a branch at "
            r"'392 steps' or later",
        ):
            new.load_state_dict(old.state_dict())
    later = parent.branch("392 steps", [{"shape": "linear", "to": 0.0, "until": "90%"}])
    new = OptimizerParamScheduler.from_schedule(PlainOptimizer([{}]), later)
    new.load_state_dict(old.state_dict())
    assert new.schedule is later


@pytest.mark.parametrize("quantity", ["6250 samples", "100000 tokens", "80%", "6241 samples"])
def test_every_quantity_inside_a_step_lands_at_that_steps_end(quantity):
    run = _eighty_percent_run()
    schedule = PhaseSchedule.from_dict(
        {
            "run": run.to_dict(),
            "lr": {
                "max_lr": 1.0,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": quantity},
                    {"shape": "cosine", "to": 0.0, "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear", "until": quantity},
        }
    )
    assert schedule.lr_curve.ends == (6256, 7824) and schedule.wd_curve.ends == (6256,)
    assert schedule.lr(6256) == 1.0 > schedule.lr(6240)  # the target at the reported step
    assert schedule.branch(quantity, [{"shape": "constant", "until": "100%"}]).branch_point == 6256
    from paramsched import preview

    assert preview.at(schedule, quantity)["step"] == 391
    assert [p["step"] for p in preview.phase_ends(schedule)][:2] == [391, 489]


def test_a_checkpoint_of_a_branch_written_before_landing_keeps_its_positions():
    # A meaning read back (a checkpoint) keeps its positions as written, even inside a step.
    from paramsched.units import positions_as_written

    run = _eighty_percent_run()
    data = {
        "run": run.to_dict(),
        "lr": {
            "max_lr": 1.0,
            "phases": [{"shape": "linear", "to": "max_lr", "until": "6250 samples"}],
        },
    }
    with positions_as_written():
        old = PhaseSchedule.from_dict(data)
    assert old.lr_curve.ends == (6250,)
    assert PhaseSchedule.from_dict(data).lr_curve.ends == (6256,)


def test_a_schedule_without_a_run_branches_in_optimizer_steps():
    parent = Schedule(
        max_lr=1.0, min_lr=0.0, lr_warmup_steps=100, lr_decay_steps=10_000, lr_decay_style="cosine"
    )
    branch = parent.branch("5000 steps", [{"shape": "linear", "to": 0.0, "until": "6000 steps"}])
    assert branch.branch_point == 5000 and branch.lr(6000) == 0.0
    assert branch.lr(5000) == parent.lr(5000) and branch.lr(5500) < parent.lr(5500)
    assert (
        parent.branch(4999.5, [{"shape": "linear", "to": 0.0, "until": "6000 steps"}]).branch_point
        == 5000
    )
    for words in ("5000 samples", "5000 tokens"):
        with pytest.raises(
            ScheduleError,
            match=rf"branch.at='{words}' is in \w+, on a schedule "
            r"that counts optimizer steps \(it has no run",
        ):
            parent.branch(words, [{"shape": "linear", "to": 0.0, "until": "6000 steps"}])
    with pytest.raises(
        ScheduleError,
        match=r"until='6K samples' is in samples, on a schedule "
        r"that counts optimizer steps.*expected steps "
        r"\('6K steps'\)",
    ):
        parent.branch("5000 steps", [{"shape": "linear", "to": 0.0, "until": "6K samples"}])
    extended = parent.branch(
        "5000 steps", [{"shape": "constant", "until": "100%"}], total="12000 steps"
    )
    assert extended.lr(11_999) == parent.lr(5000)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [2**53 - 5, 2**53, 2**55 + 3, 10**17, 9 * 10**17, 10**18 - 10**6, 1000.5, 39.2]
    ),
    st.lists(st.integers(1, 10**5), min_size=1, max_size=3),
    st.lists(
        st.sampled_from(
            ["linear", "cosine", "exponential", "minus_sqrt", "inverse-square-root", "constant"]
        ),
        min_size=3,
        max_size=3,
    ),
    st.integers(0, 2**31),
)
def test_the_array_path_equals_the_scalar_path_up_to_1e18(base, gaps, shapes, seed):
    # Above 2**53 whole positions are not all floats: the array path keeps them whole.
    ends = [base + sum(gaps[: k + 1]) for k in range(len(gaps))]
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "min_lr": 0.1,
                "phases": [
                    {
                        "shape": shape,
                        "until": f"{end} samples",
                        **({} if shape == "constant" else {"to": "min_lr" if k else "max_lr"}),
                    }
                    for k, (shape, end) in enumerate(zip(shapes, ends))
                ],
            }
        }
    )
    rng = np.random.default_rng(seed)
    points = [p for end in ends for p in range(math.floor(end) - 3, math.floor(end) + 4)]
    points += rng.integers(0, math.floor(ends[-1]) + 10, size=20).tolist()
    array = np.array(points, dtype=np.int64)
    assert schedule.lr(array).tolist() == [schedule.lr(p) for p in points]
    megatron = Schedule(
        max_lr=1.0,
        min_lr=0.1,
        lr_warmup_steps=ends[0],
        lr_decay_steps=ends[-1] + 7,
        lr_decay_style="cosine",
    )
    assert megatron.lr(array).tolist() == [megatron.lr(p) for p in points]


# ---------------------------------------------------------------- level shapes and options


def test_golden_step_and_multistep():
    # timm's step (base * rate ** (t // every)) and torch's multistep closed form
    # (base * gamma ** bisect_right(milestones, t)), from the phase's start at 4.
    step = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "4 samples"},
            {"shape": "step", "every": "5 samples", "factor": 0.5, "until": "30 samples"},
        ]
    )
    multistep = schedule(
        [
            {"shape": "linear", "to": "max_lr", "until": "4 samples"},
            {
                "shape": "multistep",
                "milestones": ["5 samples", "12 samples"],
                "factor": 0.1,
                "until": "30 samples",
            },
        ]
    )
    ns = list(range(5, 30, 3))
    assert [step.lr(n) for n in ns] == [1.0, 1.0, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.03125]
    assert [multistep.lr(n) for n in ns] == [1.0, 1.0, 0.1, 0.1] + [0.010000000000000002] * 5
    for s in (step, multistep):
        assert s.lr(np.arange(40)).tolist() == [s.lr(n) for n in range(40)]
        assert PhaseSchedule.from_dict(s.to_dict()) == s
    assert step.lr(100) == 0.03125  # its last level holds
    assert step.to_dict()["lr"]["phases"][1]["every"] == "5 samples"


def test_golden_power_follows_tokens_and_the_ramping_batch_size():
    # min(max_lr, a * B * T**b): B the batch size of the ramp at the position, T its tokens.
    run = {"seq_length": 100, "global_batch_size": 16, "rampup_batch_size": [4, 4, "200 samples"]}
    s = PhaseSchedule.from_dict(
        {
            "run": run,
            "lr": {
                "max_lr": 1e-2,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "2 steps"},
                    {"shape": "power", "a": 0.1, "b": -0.51, "until": "60 steps"},
                    {"shape": "linear", "from": 0.005, "to": 0.0, "until": "70 steps"},
                ],
            },
        }
    )
    positions = [12, 20, 40, 92, 344, 664]  # steps 3, 5, 10, 20, 40, 60
    golden = [
        0.01,
        0.008289621351244605,
        0.005821158114281889,
        0.00761304146199479,
        0.007770969008431073,
        0.005556665605601107,
    ]
    assert [s.lr(n) for n in positions] == golden
    assert s.lr(np.array(positions)).tolist() == golden
    assert s.lr(np.arange(900)).tolist() == [s.lr(n) for n in range(900)]
    assert PhaseSchedule.from_dict(s.to_dict()) == s
    branch = s.branch("30 steps", [{"shape": "linear", "to": 0.0, "until": "40 steps"}])
    upto = np.arange(branch.branch_point + 1)
    assert branch.lr(upto).tolist() == s.lr(upto).tolist()
    assert branch.lr(branch.branch_point + 8) != s.lr(branch.branch_point + 8)


def test_k_decay_cosine_and_tanh_options_round_trip():
    plain = schedule([{"shape": "cosine", "from": "max_lr", "to": "min_lr", "until": "8 samples"}])
    k_one = schedule(
        [{"shape": "cosine", "from": "max_lr", "to": "min_lr", "until": "8 samples", "k": 1}]
    )
    assert plain == k_one  # k = 1 is the cosine, one meaning
    tanh = schedule(
        [{"shape": "tanh", "from": "max_lr", "to": "min_lr", "until": "8 samples"}],
    )
    spelled = schedule(
        [
            {
                "shape": "tanh",
                "from": "max_lr",
                "to": "min_lr",
                "until": "8 samples",
                "lower": -7,
                "upper": 3,
            }
        ],
    )
    assert tanh == spelled and tanh.to_dict() == spelled.to_dict()
    k_two = schedule(
        [{"shape": "cosine", "from": "max_lr", "to": "min_lr", "until": "8 samples", "k": 2}]
    )
    assert k_two.to_dict()["lr"]["phases"][0]["k"] == 2.0
    assert k_two.lr(4) != plain.lr(4) and k_two.lr(8) == plain.lr(8) == 0.25


LEVEL_BAD = [
    ("no every", [{"shape": "step", "factor": 0.5, "until": "9 samples"}], "has no 'every'"),
    ("no factor", [{"shape": "step", "every": "3 samples", "until": "9 samples"}], "no 'factor'"),
    (
        "factor 0",
        [{"shape": "step", "every": "3 samples", "factor": 0, "until": "9 samples"}],
        r"factor=0; expected a number > 0",
    ),
    (
        "every in %",
        [{"shape": "step", "every": "5%", "factor": 0.5, "until": "9 samples"}],
        r"lr.phases\[0\].every='5%' is a percentage",
    ),
    (
        "to on step",
        [{"shape": "step", "every": "3 samples", "factor": 0.5, "to": 0.1, "until": "9 samples"}],
        "is a step phase and has to=0.1; expected none",
    ),
    (
        "milestones unordered",
        [
            {
                "shape": "multistep",
                "milestones": ["5 samples", "2 samples"],
                "factor": 0.5,
                "until": "9 samples",
            }
        ],
        r"milestones=\[5, 2\] \(samples\); expected increasing lengths > 0",
    ),
    (
        "milestones not a list",
        [{"shape": "multistep", "milestones": "5 samples", "factor": 0.5, "until": "9 samples"}],
        "milestones='5 samples'; expected a list of lengths",
    ),
    (
        "k on linear",
        [{"shape": "linear", "to": "max_lr", "k": 2, "until": "9 samples"}],
        r"lr.phases\[0\] \(linear\) has k=2; only a cosine phase has k",
    ),
    (
        "factor on cosine",
        [{"shape": "cosine", "to": "min_lr", "factor": 2, "until": "9 samples"}],
        "has factor=2; only a step or multistep phase has factor",
    ),
    (
        "power without a batch size",
        [
            {"shape": "linear", "to": "max_lr", "until": "3 samples"},
            {"shape": "power", "a": 1.0, "b": -0.5, "until": "9 samples"},
            {"shape": "constant", "value": 0.1, "until": "10 samples"},
        ],
        "is a power phase on a run without a batch size",
    ),
]


@pytest.mark.parametrize(
    "phases, message", [b[1:] for b in LEVEL_BAD], ids=[b[0] for b in LEVEL_BAD]
)
def test_bad_level_phases_name_the_key(phases, message):
    with pytest.raises(ScheduleError, match=message):
        schedule(phases)


@pytest.mark.parametrize(
    "phases, message",
    [
        (
            [{"shape": "power", "a": 1.0, "b": -0.5, "until": "9 steps"}],
            "a power phase that begins at 0, where no token has been seen",
        ),
        (
            [
                {"shape": "linear", "to": "max_lr", "until": "3 steps"},
                {"shape": "power", "a": 1.0, "b": -0.5, "until": "9 steps"},
            ],
            "ends with a power phase, whose end depends on the batch size",
        ),
        (
            [
                {"shape": "linear", "to": "max_lr", "until": "3 steps"},
                {"shape": "power", "a": 1.0, "b": -0.5, "until": "9 steps"},
                {"shape": "linear", "to": 0.0, "until": "12 steps"},
            ],
            r"lr.phases\[2\] follows a power phase, whose end depends on the batch size; "
            "expected its own 'from'",
        ),
        (
            [
                {"shape": "linear", "to": "max_lr", "until": "3 steps"},
                {"shape": "power", "a": 0.0, "b": -0.5, "until": "9 steps"},
                {"shape": "constant", "value": 0.0, "until": "12 steps"},
            ],
            r"a=0.0; expected a number > 0",
        ),
    ],
)
def test_bad_power_phases_say_why(phases, message):
    with pytest.raises(ScheduleError, match=message):
        schedule(phases, run={"global_batch_size": 4, "seq_length": 8})


def test_power_on_the_token_clock_reads_tokens_from_the_clock():
    # On a token clock T is the position itself and B the batch-size stage it is in.
    run = {"clock": "tokens", "batch_size_schedule": [["0 tokens", 4], ["5000 tokens", 8]]}
    s = PhaseSchedule.from_dict(
        {
            "run": run,
            "lr": {
                "max_lr": 1e-2,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "1000 tokens"},
                    {"shape": "power", "a": 0.1, "b": -0.5, "until": "20000 tokens"},
                    {"shape": "constant", "value": 0.001, "until": "30000 tokens"},
                ],
            },
        }
    )
    positions = [1500, 4999, 5000, 12000]
    golden = [0.01, 0.005657420019784289, 0.01, 0.007302967433402215]  # capped at max_lr
    assert [s.lr(n) for n in positions] == golden
    assert s.lr(np.array(positions)).tolist() == golden
    assert PhaseSchedule.from_dict(s.to_dict()) == s and s.lr(25000) == 0.001


def test_power_needs_a_sequence_length():
    phases = [
        {"shape": "linear", "to": "max_lr", "until": "3 steps"},
        {"shape": "power", "a": 1.0, "b": -0.5, "until": "9 steps"},
        {"shape": "constant", "value": 0.1, "until": "12 steps"},
    ]
    with pytest.raises(ScheduleError, match="on a run without a sequence length"):
        schedule(phases, run={"global_batch_size": 4})
