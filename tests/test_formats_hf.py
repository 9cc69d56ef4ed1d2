"""paramsched.formats.hf: transformers' schedules, differential against transformers itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, ScheduleTypeError, from_hf, load_schedule
from paramsched.formats.hf import HF_SCHEDULES, METRIC_SCHEDULES

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from stacks import hf_call, hf_rates, optimizer_of, refused_file, run_and_resume  # noqa: E402

rates = st.floats(1e-6, 1.0)
ratios = st.floats(0.0, 1.0)
cycles = st.floats(0.05, 4.0)
types = st.sampled_from(["linear", "cosine", "1-sqrt"])


@st.composite
def hf_arguments(draw, name: str) -> dict:
    """Random arguments transformers runs for `name`, warmups and trainings of every size
    (zero, one step, equal) included."""
    lr = draw(rates)
    warmup = draw(st.integers(0, 40))
    training = warmup + draw(st.integers(0 if name != "polynomial" else 1, 120))
    kwargs: dict = {}
    if name in ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if draw(st.booleans()):
            kwargs["num_cycles"] = draw(cycles)
    if name == "cosine_with_restarts":
        kwargs["num_cycles"] = draw(st.one_of(st.integers(1, 5), cycles))
    if name == "polynomial":
        kwargs["lr_end"] = draw(st.floats(0.0, 0.99)) * lr
        kwargs["power"] = draw(st.one_of(st.just(1.0), st.floats(0.0, 4.0), st.integers(1, 3)))
    if name == "inverse_sqrt" and draw(st.booleans()):
        kwargs["timescale"] = draw(st.integers(1, 60))
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if draw(st.booleans()):
            kwargs["min_lr_rate"] = draw(ratios)
        else:
            kwargs["min_lr"] = draw(ratios) * lr
    if name == "cosine_warmup_with_min_lr" and draw(st.booleans()):
        kwargs["warmup_lr_rate"] = draw(ratios)
    if name == "warmup_stable_decay":
        decay = draw(st.integers(0, 50))
        kwargs.update(
            num_decay_steps=decay,
            warmup_type=draw(types),
            decay_type=draw(types),
            min_lr_ratio=draw(ratios),
            num_cycles=draw(cycles),
        )
        training = warmup + decay + draw(st.integers(0, 50))
        if draw(st.booleans()):  # the stable length given instead of the training length
            kwargs["num_stable_steps"] = training - warmup - decay
            training = None
    return hf_call(name, lr, warmup, training, kwargs)


@pytest.mark.parametrize("name", list(HF_SCHEDULES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_name_equals_transformers(name, data):
    """lr(n) == transformers' rate after n steps, for every n of the run and 30 past it,
    for one step and an array of them, and for a second group of another base rate."""
    arguments = data.draw(hf_arguments(name))
    schedule = from_hf(**arguments)
    steps = schedule.horizon + 30
    expected = hf_rates(steps, groups=2, **arguments)
    ns = np.arange(steps + 1)
    first = [row[0] for row in expected]
    assert [schedule.lr(n) for n in range(steps + 1)] == first
    assert schedule.lr(ns).tolist() == first
    second = arguments["lr"] * 2
    assert schedule.lr(ns, max_lr=second).tolist() == [row[1] for row in expected]


def test_hf_table_is_from_hf(tmp_path):
    path = tmp_path / "hf.toml"
    path.write_text(
        '[hf]\nname = "warmup_stable_decay"\nlr = 3e-4\nnum_warmup_steps = 10\n'
        "num_training_steps = 100\n"
        '[hf.scheduler_specific_kwargs]\nnum_decay_steps = 20\ndecay_type = "1-sqrt"\n'
    )
    schedule = load_schedule(path)
    expected = from_hf(
        "warmup_stable_decay", 3e-4, 10, 100, {"num_decay_steps": 20, "decay_type": "1-sqrt"}
    )
    assert schedule == expected
    arguments = {"num_warmup_steps": 10, "num_training_steps": 100}
    kwargs = {"num_decay_steps": 20, "decay_type": "1-sqrt"}
    rates = hf_rates(
        110, name="warmup_stable_decay", lr=3e-4, **arguments, scheduler_specific_kwargs=kwargs
    )
    assert [row[0] for row in rates] == schedule.lr(np.arange(111)).tolist()


def test_two_spellings_of_one_schedule_are_equal():
    by_training = from_hf("warmup_stable_decay", 1e-3, 5, 50, {"num_decay_steps": 10})
    by_stable = from_hf(
        "warmup_stable_decay", 1e-3, 5, None, {"num_decay_steps": 10, "num_stable_steps": 35}
    )
    assert by_training == by_stable and hash(by_training) == hash(by_stable)
    assert from_hf("inverse_sqrt", 1e-3, 0) == from_hf(
        "inverse_sqrt", 1e-3, 0, None, {"timescale": 10_000}
    )


def test_torch_scheduler_and_resume_follow_transformers():
    """ParamScheduler over two groups of different rates writes transformers' rates (each
    group's first lr is its base rate), and a checkpoint taken midway resumes them."""

    arguments = dict(
        name="cosine_with_min_lr",
        lr=1e-3,
        num_warmup_steps=7,
        num_training_steps=60,
        scheduler_specific_kwargs={"min_lr_rate": 0.1},
    )
    expected = hf_rates(60, groups=2, **arguments)
    run_and_resume(from_hf(**arguments), from_hf("linear", 5e-4, 0, 10), expected)


def test_a_group_min_lr_is_refused():
    from paramsched.torch import ParamScheduler

    optimizer = optimizer_of(1e-3)
    optimizer.param_groups[0]["min_lr"] = 1e-5
    with pytest.raises(ScheduleError, match="has min_lr=1e-05; a hf schedule's floor follows"):
        ParamScheduler(optimizer, from_hf("linear", 1e-3, 0, 10))


def test_branch_of_an_hf_file_keeps_its_rates(tmp_path):
    (tmp_path / "hf.toml").write_text(
        '[hf]\nname = "cosine"\nlr = 1e-3\nnum_warmup_steps = 10\nnum_training_steps = 100\n'
    )
    (tmp_path / "branch.toml").write_text(
        '[branch]\nfrom = "hf.toml"\nat = "60 steps"\n'
        '[lr]\nphases = [{shape = "linear", to = 0.0, until = "70 steps"}]\n'
    )
    parent, branch = load_schedule(tmp_path / "hf.toml"), load_schedule(tmp_path / "branch.toml")
    assert branch.lr(np.arange(61)).tolist() == parent.lr(np.arange(61)).tolist()
    assert branch.lr(70) == 0.0 and branch.lr(65) < parent.lr(65)


HOSTILE = [
    ({"name": "cosin"}, ScheduleError, "name='cosin' is not one of .*did you mean 'cosine'"),
    ({"name": 3}, ScheduleError, "name=3 is not one of"),
    ({"lr": "1e-3"}, ScheduleTypeError, "lr='1e-3' is of type str; expected a number"),
    ({"lr": -1.0}, ScheduleError, "lr=-1.0 is negative"),
    ({"lr": float("nan")}, ScheduleError, "lr=nan is not finite"),
    ({"num_warmup_steps": -1}, ScheduleError, "num_warmup_steps=-1; expected a whole number >= 0"),
    ({"num_warmup_steps": 2.5}, ScheduleTypeError, "num_warmup_steps=2.5 is of type float"),
    ({"num_warmup_steps": True}, ScheduleTypeError, "num_warmup_steps=True is of type bool"),
    ({"num_training_steps": 5}, ScheduleError, "num_warmup_steps=10 is greater than"),
    ({"num_training_steps": None}, ScheduleError, "num_training_steps is missing; 'cosine'"),
    ({"num_warmup_steps": None}, ScheduleError, "num_warmup_steps is missing; 'cosine'"),
    (
        {"scheduler_specific_kwargs": {"num_cycle": 2}},
        ScheduleError,
        "scheduler_specific_kwargs.num_cycle is not an argument of 'cosine'.*did you mean 'num_cycles'",
    ),
    (
        {"scheduler_specific_kwargs": {"num_cycles": "2"}},
        ScheduleTypeError,
        "scheduler_specific_kwargs.num_cycles='2' is of type str",
    ),
    ({"scheduler_specific_kwargs": [1]}, ScheduleTypeError, "scheduler_specific_kwargs=\\[1\\]"),
    (
        {"name": "linear", "scheduler_specific_kwargs": {"num_cycles": 2}},
        ScheduleError,
        "for 'linear', which get_scheduler gives no keywords",
    ),
    (
        {"name": "constant"},
        ScheduleError,
        "num_warmup_steps=10 with name='constant', which transformers runs without a warmup",
    ),
    (
        {"name": "polynomial", "scheduler_specific_kwargs": {"lr_end": 1e-3}},
        ScheduleError,
        "lr_end=0.001 with lr=0.001; transformers requires lr_end < lr",
    ),
    (
        {"name": "polynomial", "num_training_steps": 10},
        ScheduleError,
        "num_training_steps=10 equals num_warmup_steps; transformers' polynomial divides by zero",
    ),
    (
        {"name": "polynomial", "scheduler_specific_kwargs": {"power": -1}},
        ScheduleError,
        "power=-1.0 is negative",
    ),
    (
        {"name": "cosine_with_min_lr"},
        ScheduleError,
        "neither min_lr nor min_lr_rate for 'cosine_with_min_lr'",
    ),
    (
        {
            "name": "cosine_with_min_lr",
            "scheduler_specific_kwargs": {"min_lr": 0, "min_lr_rate": 0},
        },
        ScheduleError,
        "both min_lr and min_lr_rate",
    ),
    (
        {"name": "cosine_with_min_lr", "lr": 0.0, "scheduler_specific_kwargs": {"min_lr": 0.0}},
        ScheduleError,
        "min_lr=0.0 with lr=0.0; expected 0 <= min_lr <= lr and lr > 0",
    ),
    (
        {"name": "cosine_with_min_lr", "scheduler_specific_kwargs": {"min_lr": 0.5}},
        ScheduleError,
        "min_lr=0.5 with lr=0.001",
    ),
    (
        {"name": "cosine_warmup_with_min_lr", "scheduler_specific_kwargs": {"min_lr_rate": 1.5}},
        ScheduleError,
        "min_lr_rate=1.5; expected a ratio in \\[0, 1\\]",
    ),
    (
        {"name": "inverse_sqrt", "scheduler_specific_kwargs": {"timescale": 0}},
        ScheduleError,
        "timescale=0; expected a whole number >= 1",
    ),
    (
        {"name": "warmup_stable_decay"},
        ScheduleError,
        "scheduler_specific_kwargs.num_decay_steps is missing",
    ),
    (
        {"name": "warmup_stable_decay", "scheduler_specific_kwargs": {"num_decay_steps": 95}},
        ScheduleError,
        "num_training_steps=100 is less than num_warmup_steps \\+ num_decay_steps",
    ),
    (
        {
            "name": "warmup_stable_decay",
            "scheduler_specific_kwargs": {"num_decay_steps": 5, "num_stable_steps": 5},
        },
        ScheduleError,
        "num_training_steps=100 but num_warmup_steps \\+ num_stable_steps \\+ num_decay_steps is 20",
    ),
    (
        {
            "name": "warmup_stable_decay",
            "num_training_steps": None,
            "scheduler_specific_kwargs": {"num_decay_steps": 5},
        },
        ScheduleError,
        "num_training_steps is missing, and so is scheduler_specific_kwargs.num_stable_steps",
    ),
    (
        {
            "name": "warmup_stable_decay",
            "scheduler_specific_kwargs": {"num_decay_steps": 5, "decay_type": "sqrt"},
        },
        ScheduleError,
        "decay_type='sqrt' is not one of 'linear', 'cosine', '1-sqrt'",
    ),
]


@pytest.mark.parametrize(
    "change, error, message", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))]
)
def test_hostile_arguments_are_refused_naming_the_key(change, error, message):
    arguments = {"name": "cosine", "lr": 1e-3, "num_warmup_steps": 10, "num_training_steps": 100}
    arguments.update(change)
    with pytest.raises(error, match=message):
        from_hf(**arguments)


def test_a_scheduler_type_member_and_numpy_numbers_are_taken():
    from transformers import SchedulerType

    plain = from_hf("cosine", 1e-3, 10, 100)
    assert from_hf(SchedulerType.COSINE, np.float64(1e-3), np.int64(10), np.int32(100)) == plain
    assert type(plain.meaning()["name"]) is str


def test_a_tampered_checkpoint_names_the_key():
    from paramsched.torch import ParamScheduler

    scheduler = ParamScheduler(optimizer_of(1e-3), from_hf("linear", 1e-3, 0, 10))
    state = scheduler.state_dict()
    state["paramsched"]["schedule"] = state["paramsched"]["schedule"].replace(
        '"num_warmup_steps": 0', '"num_warmup_steps": "0"'
    )
    with pytest.raises(ScheduleTypeError, match="num_warmup_steps='0' is of type str"):
        scheduler.load_state_dict(state)


@pytest.mark.parametrize("name", list(METRIC_SCHEDULES))
def test_metric_schedules_are_refused_with_the_reason(name):
    with pytest.raises(
        ScheduleError, match=f"name='{name}' is not a schedule of steps: .*metric|loss"
    ):
        from_hf(name, 1e-3)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[hf]\nname = "cosine"\nlr = 1e-3\nwarmup_steps = 3\n',
            "hf.warmup_steps is not an argument of get_scheduler.*did you mean 'num_warmup_steps'",
        ),
        (
            '[hf]\nname = "linear"\nlr = 1e-3\nnum_warmup_steps = -3\nnum_training_steps = 9\n',
            "hf.num_warmup_steps=-3",
        ),
        (
            '[hf]\nname = "cosine"\nlr = 1e-3\nnum_warmup_steps = 3\n',
            "hf.num_training_steps is missing",
        ),
        (
            '[hf]\nname = "polynomial"\nlr = 1e-3\nnum_warmup_steps = 3\nnum_training_steps = 3\n',
            "hf.num_training_steps=3 equals num_warmup_steps",
        ),
        (
            '[hf]\nname = "cosine"\nlr = 1e-3\nnum_warmup_steps = 3\nnum_training_steps = 9\n'
            '[hf.scheduler_specific_kwargs]\nnum_cycles = "x"\n',
            "hf.scheduler_specific_kwargs.num_cycles='x'",
        ),
        ("hf = 3\n", "hf is of type int"),
        (
            '[hf]\nname = "linear"\nlr = 1e-3\n[lr]\nmax_lr = 1.0\n',
            "a \\[hf\\] table comes alone; found also lr",
        ),
        (
            '[hf]\nname = "reduce_lr_on_plateau"\nlr = 1e-3\n',
            "hf.name='reduce_lr_on_plateau' is not a schedule of steps",
        ),
    ],
)
def test_hostile_files_name_the_key_as_written(tmp_path, text, message):
    refused_file(tmp_path / "hf.toml", text, message)


def test_preview_pieces_are_the_rates_at_their_ends_within_the_run():
    schedule = from_hf("inverse_sqrt", 1e-3, 10, 20)
    pieces = schedule.pieces(20)
    assert [(p.name, p.start, p.end) for p in pieces] == [
        ("warmup", 0, 9),
        ("inverse_sqrt", 9, 20),
    ]
    assert [(p.lr_start, p.lr_end) for p in pieces] == [
        (0.0, schedule.lr(9)),
        (schedule.lr(9), schedule.lr(20)),
    ]


def test_command_line_errors_of_an_hf_file_are_one_line(tmp_path, capsys):
    from paramsched.cli import main

    path = tmp_path / "hf.toml"
    path.write_text(
        '[hf]\nname = "linear"\nlr = 1e-3\nnum_warmup_steps = 9\nnum_training_steps = 5\n'
    )
    assert main(["table", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hf.num_warmup_steps=9 is greater than" in err
    path.write_text(
        '[hf]\nname = "linear"\nlr = 1e-3\nnum_warmup_steps = 2\nnum_training_steps = 5\n'
    )
    assert main(["table", str(path)]) in (0, None)
    out = capsys.readouterr().out
    assert "after each listed step" in out and f"{from_hf('linear', 1e-3, 2, 5).lr(3):e}" in out


def test_transformers_and_megatron_cosines_part_where_their_warmups_round_apart():
    from paramsched import Schedule

    hf = from_hf("cosine", 3e-4, 100, 1000)
    megatron = Schedule(
        max_lr=3e-4, lr_warmup_steps=100, lr_decay_steps=1000, lr_decay_style="cosine"
    )
    parts = [n for n in range(1001) if hf.lr(n) != megatron.lr(n)]
    assert parts[0] == 3  # lr * (3 / 100) is not lr * 3 / 100
    assert max(abs(hf.lr(n) - megatron.lr(n)) / megatron.lr(n) for n in parts) < 1e-15
