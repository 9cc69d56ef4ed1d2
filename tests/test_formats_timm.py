"""paramsched.formats.timm: timm's schedules, differential against timm's own scheduler code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, ScheduleTypeError, from_timm, load_schedule
from paramsched.formats.timm import TIMM_SCHEDULES

torch = pytest.importorskip("torch")

from stacks import optimizer_of, refused_file, timm_rates, timm_scheduler  # noqa: E402

timm_scheduler()  # skips the module when timm is not installed


@st.composite
def timm_arguments(draw, sched: str) -> dict:
    """Random arguments timm runs for `sched`: every clock (per epoch with and without
    updates per epoch, per update), warmups with and without prefix, cycles, k-decay."""
    on_epochs = draw(st.booleans())
    arguments = {
        "sched": sched,
        "lr": draw(st.floats(1e-5, 1.0)),
        "num_epochs": draw(st.integers(1, 12)),
        "warmup_epochs": draw(st.sampled_from([0, 0, 1, 2, 3])),
        "warmup_prefix": draw(st.booleans()),
        "warmup_lr": draw(st.sampled_from([1e-5, 0.0, 3e-4])),
        "step_on_epochs": on_epochs,
        "updates_per_epoch": draw(st.integers(1 if not on_epochs else 0, 4)),
    }
    if sched in ("cosine", "tanh", "poly"):
        arguments.update(
            min_lr=draw(st.sampled_from([0.0, 1e-6])),
            cycle_limit=draw(st.integers(1, 3)),
            cycle_mul=draw(st.sampled_from([1.0, 1, 1.5, 2.0, 3])),
            cycle_decay=draw(st.sampled_from([0.1, 0.5, 1.0])),
            cooldown_epochs=draw(st.integers(0, 2)),
        )
    if sched in ("cosine", "poly"):
        arguments["k_decay"] = draw(st.sampled_from([1.0, 0.5, 2.0, 1.7]))
    if sched == "poly":
        arguments["decay_rate"] = draw(st.sampled_from([0.5, 1.0, 2.0, 1]))
    if sched == "step":
        arguments.update(
            decay_epochs=draw(st.sampled_from([1, 2, 3, 2.5])),
            decay_rate=draw(st.sampled_from([0.1, 0.5])),
        )
    if sched in ("wsd", "rsqrt"):
        arguments.update(
            min_lr=draw(st.sampled_from([0.0, 1e-6])),
            cooldown_epochs=draw(st.integers(0, 2)),
            decay_fn=draw(st.sampled_from([None, "linear", "1-sqrt", "cosine", "power", "exp"])),
            decay_epochs=draw(st.sampled_from([0.2, 0.5, 1, 2, 3])),
        )
        if sched == "rsqrt" and draw(st.booleans()):
            arguments["stable_timescale"] = draw(st.sampled_from([1, 2, 0.5]))
    if sched == "multistep":
        milestones = draw(st.lists(st.integers(1, 14), min_size=1, max_size=4, unique=True))
        arguments.update(
            decay_milestones=sorted(milestones), decay_rate=draw(st.sampled_from([0.1, 0.5]))
        )
    return arguments


@pytest.mark.parametrize("sched", list(TIMM_SCHEDULES))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_scheduler_equals_timm(sched, data):
    """lr(n) == the rate timm has set after n updates (its loop calling step_update and
    step), for the whole run and a few epochs past it, one step and an array, and a second
    group of another base rate."""
    arguments = data.draw(timm_arguments(sched))
    try:
        schedule = from_timm(**arguments)
    except ScheduleError as error:  # refused where timm refuses: no decay, no timescale
        assert sched in ("wsd", "rsqrt") and "timm requires" in str(error)
        with pytest.raises(ValueError):
            timm_rates(0, **arguments)
        return
    per_epoch = arguments["updates_per_epoch"] or 1
    updates = schedule.horizon + 3 * per_epoch
    expected = timm_rates(updates, groups=2, **arguments)
    ns = np.arange(updates + 1)
    assert [schedule.lr(n) for n in range(updates + 1)] == [row[0] for row in expected]
    assert schedule.lr(ns).tolist() == [row[0] for row in expected]
    second = schedule.lr(ns, max_lr=arguments["lr"] * 2).tolist()
    assert second == [row[1] for row in expected]


def test_timm_table_is_from_timm(tmp_path):
    path = tmp_path / "timm.toml"
    path.write_text(
        '[timm]\nsched = "cosine"\nlr = 5e-4\nnum_epochs = 10\nwarmup_epochs = 2\n'
        "cycle_limit = 2\ncycle_mul = 2.0\nstep_on_epochs = false\nupdates_per_epoch = 5\n"
    )
    schedule = load_schedule(path)
    arguments = dict(
        sched="cosine",
        num_epochs=10,
        warmup_epochs=2,
        cycle_limit=2,
        cycle_mul=2.0,
        step_on_epochs=False,
        updates_per_epoch=5,
    )
    assert schedule == from_timm(5e-4, **arguments)
    expected = timm_rates(schedule.horizon, lr=5e-4, **arguments)
    assert schedule.lr(np.arange(schedule.horizon + 1)).tolist() == [row[0] for row in expected]


def test_meaning_round_trips_and_defaults_are_one_spelling():
    plain = from_timm(0.1, "step", num_epochs=10)
    spelled = from_timm(0.1, "step", num_epochs=10, decay_epochs=90, decay_rate=0.1, min_lr=0.0)
    assert plain == spelled and hash(plain) == hash(spelled)
    assert from_timm(**plain.meaning()) == plain
    assert "min_lr" not in plain.meaning()  # step does not use it


def test_torch_scheduler_resumes_timm_s_rates():
    from paramsched.torch import ParamScheduler

    arguments = dict(
        lr=1e-3,
        sched="tanh",
        num_epochs=6,
        warmup_epochs=1,
        updates_per_epoch=4,
        cycle_limit=2,
        cycle_decay=0.5,
    )
    expected = timm_rates(40, groups=2, **arguments)
    optimizer = optimizer_of(1e-3, groups=2)
    scheduler = ParamScheduler(optimizer, from_timm(**arguments))
    seen = [[g["lr"] for g in optimizer.param_groups]]
    for n in range(1, 41):
        optimizer.step()
        scheduler.step()
        seen.append([g["lr"] for g in optimizer.param_groups])
        if n == 17:
            state, groups = scheduler.state_dict(), optimizer.state_dict()
    assert seen == expected
    resumed = optimizer_of(1e-3, groups=2)
    other = ParamScheduler(resumed, from_timm(1e-3, "constant", num_epochs=1))
    resumed.load_state_dict(groups)
    other.load_state_dict(state)
    for n in range(18, 41):
        resumed.step()
        other.step()
        assert [g["lr"] for g in resumed.param_groups] == expected[n]


HOSTILE = [
    (
        {"sched": "plateau"},
        ScheduleError,
        "sched='plateau' is refused: it lowers the rate when a metric",
    ),
    ({"sched": "none"}, ScheduleError, "sched='none' is refused: timm makes no scheduler"),
    ({"sched": "cosin"}, ScheduleError, "sched='cosin' is not one of .*did you mean 'cosine'"),
    (
        {"noise": [0.5, 0.9]},
        ScheduleError,
        "noise=\\[0.5, 0.9\\] is refused: timm draws the noise from torch's",
    ),
    ({"cycle_mul": 0.5}, ScheduleError, "cycle_mul=0.5 is below 1: timm takes log"),
    ({"cycle_mul": 0}, ScheduleError, "cycle_mul=0; expected a number > 0"),
    ({"num_epochs": 0}, ScheduleError, "num_epochs=0; expected a whole number >= 1"),
    (
        {"num_epochs": 10**17, "updates_per_epoch": 100},
        ScheduleError,
        "num_epochs=100000000000000000 comes to 1e\\+19 updates .*beyond any run",
    ),
    ({"num_epochs": 10.5}, ScheduleTypeError, "num_epochs=10.5 is of type float"),
    ({"warmup_epochs": -1}, ScheduleError, "warmup_epochs=-1; expected a whole number >= 0"),
    ({"lr": "0.1"}, ScheduleTypeError, "lr='0.1' is of type str"),
    ({"lr": -0.1}, ScheduleError, "lr=-0.1; expected a number >= 0"),
    ({"min_lr": float("nan")}, ScheduleError, "min_lr=nan is not finite"),
    (
        {"warmup_prefix": 1},
        ScheduleTypeError,
        "warmup_prefix=1 is of type int; expected true or false",
    ),
    ({"step_on_epochs": False}, ScheduleError, "step_on_epochs=false needs updates_per_epoch"),
    (
        {"decay_rate": 0.5},
        ScheduleError,
        "decay_rate=0.5 has no effect on sched='cosine' in timm; expected it only with poly, step, multistep",
    ),
    (
        {"decay_fn": "linear"},
        ScheduleError,
        "decay_fn='linear' has no effect on sched='cosine' in timm; expected it only with wsd, rsqrt",
    ),
    (
        {"plateau_mode": "min"},
        ScheduleError,
        "plateau_mode='min' has no effect on sched='cosine' in timm; expected its default",
    ),
    (
        {"sched": "wsd", "decay_fn": "sqrt"},
        ScheduleError,
        "decay_fn='sqrt' is not one of 'linear', '1-sqrt'.*did you mean '1-sqrt'",
    ),
    (
        {"sched": "wsd", "num_epochs": 2},
        ScheduleError,
        "decay_epochs=0.2 gives a decay of 0 for a stable and decay length of 2; timm requires",
    ),
    (
        {"sched": "rsqrt"},
        ScheduleError,
        "stable_timescale is 0 \\(its default is warmup_epochs\\); timm requires a positive",
    ),
    ({"num_cycles": 2}, ScheduleError, "num_cycles is not an argument of create_scheduler_v2"),
    ({"sched": "step", "decay_epochs": 0}, ScheduleError, "decay_epochs=0; expected a length > 0"),
    (
        {"sched": "multistep", "decay_milestones": [30, 10]},
        ScheduleError,
        "decay_milestones=\\[30, 10\\]; expected increasing epochs",
    ),
    (
        {"sched": "multistep", "decay_milestones": 30},
        ScheduleTypeError,
        "decay_milestones=30; expected a list of epochs",
    ),
    (
        {"sched": "multistep", "decay_milestones": [0, 10]},
        ScheduleError,
        "decay_milestones\\[0\\]=0; expected a whole number >= 1",
    ),
]


@pytest.mark.parametrize(
    "change, error, message", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))]
)
def test_hostile_arguments_are_refused_naming_the_key(change, error, message):
    arguments = {"lr": 0.1, "sched": "cosine", "num_epochs": 10, **change}
    with pytest.raises(error, match=message):
        from_timm(**arguments)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[timm]\nlr = 0.1\nepochs = 3\n",
            "timm.epochs is not an argument of create_scheduler_v2.*did you mean 'num_epochs'",
        ),
        ('[timm]\nlr = 0.1\nsched = "plateau"\n', "timm.sched='plateau' is refused"),
        ('[timm]\nsched = "cosine"\n', "timm.lr is missing"),
        ('timm = "cosine"\n', "timm is of type str"),
        (
            '[timm]\nlr = 0.1\n[hf]\nname = "linear"\n',
            "a \\[hf\\] table comes alone|a \\[timm\\] table comes alone",
        ),
    ],
)
def test_hostile_files_name_the_key_as_written(tmp_path, text, message):
    refused_file(tmp_path / "timm.toml", text, message)


def test_a_group_with_timm_s_lr_scale_is_refused():
    from paramsched.torch import ParamScheduler

    optimizer = optimizer_of(1e-3, groups=2)
    optimizer.param_groups[1]["lr_scale"] = 0.5
    with pytest.raises(ScheduleError, match=r"param_groups\[1\] has lr_scale=0.5; timm multiplies"):
        ParamScheduler(optimizer, from_timm(1e-3, "cosine", num_epochs=5))


def test_schedules_of_other_stacks_pickle_and_deep_copy():
    import copy
    import pickle

    from paramsched import from_hf

    for schedule in (
        from_timm(1e-3, "cosine", num_epochs=5, updates_per_epoch=3, warmup_epochs=1),
        from_hf("cosine_with_restarts", 1e-3, 5, 50, {"num_cycles": 3}),
    ):
        for copied in (pickle.loads(pickle.dumps(schedule)), copy.deepcopy(schedule)):
            assert copied == schedule
            assert copied.lr(np.arange(60)).tolist() == schedule.lr(np.arange(60)).tolist()
