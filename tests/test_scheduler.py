"""Tests for paramsched.scheduler: stepping, overrides, validation, checkpoints."""

from __future__ import annotations

import copy
import inspect
import json
import logging

import pytest
from conftest import MEGATRON_KWARGS, PlainOptimizer, written

from paramsched import OptimizerParamScheduler, Schedule, ScheduleError, ScheduleTypeError
from paramsched.scheduler import FORMAT_KEY, MEGATRON_FORMAT, STATE_FORMAT


def make(groups=None, **changes):
    optimizer = PlainOptimizer(groups)
    return OptimizerParamScheduler(optimizer, **{**MEGATRON_KWARGS, **changes}), optimizer


def test_signature_is_megatrons():
    names = list(inspect.signature(OptimizerParamScheduler).parameters)
    assert names == [
        "optimizer",
        "init_lr",
        "max_lr",
        "min_lr",
        "lr_warmup_steps",
        "lr_decay_steps",
        "lr_decay_style",
        "start_wd",
        "end_wd",
        "wd_incr_steps",
        "wd_incr_style",
        "use_checkpoint_opt_param_scheduler",
        "override_opt_param_scheduler",
        "wsd_decay_steps",
        "lr_wsd_decay_style",
    ]
    parameters = inspect.signature(OptimizerParamScheduler).parameters
    assert parameters["use_checkpoint_opt_param_scheduler"].default is True
    assert parameters["override_opt_param_scheduler"].default is False
    assert inspect.signature(OptimizerParamScheduler.step).parameters["increment"].default == 1


def test_construction_writes_step_zero_into_every_group():
    scheduler, optimizer = make([{"params": []}, {}, {"wd_mult": 0.5}])
    assert scheduler.num_steps == 0
    assert written(optimizer) == [(0.0, 0.1), (0.0, 0.1), (0.0, 0.05)]


def test_public_attributes():
    scheduler, optimizer = make(wsd_decay_steps=50, lr_wsd_decay_style="cosine")
    assert scheduler.optimizer is optimizer
    expected = {
        **MEGATRON_KWARGS,
        "wsd_decay_steps": 50,
        "lr_wsd_decay_style": "cosine",
        "num_steps": 0,
        "use_checkpoint_opt_param_scheduler": True,
        "override_opt_param_scheduler": False,
    }
    for name, value in expected.items():
        assert getattr(scheduler, name) == value, name
    assert isinstance(scheduler.schedule, Schedule)


def test_step_defaults_to_one_and_accepts_large_and_float_increments():
    scheduler, optimizer = make()
    scheduler.step()
    assert scheduler.num_steps == 1 and written(optimizer)[0][0] == 0.1
    scheduler.step(4)
    assert scheduler.num_steps == 5 and written(optimizer)[0][0] == 0.5
    scheduler.step(2.5)
    assert scheduler.num_steps == 7.5 and written(optimizer)[0][0] == 0.75


@pytest.mark.parametrize(
    "increment,error,message",
    [
        (-1, ScheduleError, "increment=-1 is negative"),
        (float("nan"), ScheduleError, "increment=nan is not finite"),
        (float("inf"), ScheduleError, "increment=inf is not finite"),
        ("1", ScheduleTypeError, "increment='1' is of type str"),
        (None, ScheduleTypeError, "increment=None"),
    ],
    ids=["negative", "nan", "inf", "str", "none"],
)
def test_bad_increment_raises_and_changes_nothing(increment, error, message):
    scheduler, optimizer = make()
    scheduler.step(3)
    before = written(optimizer)
    with pytest.raises(error, match=message):
        scheduler.step(increment)
    assert scheduler.num_steps == 3 and written(optimizer) == before


def test_every_group_is_updated_including_empty_ones():
    groups = [
        {"params": []},
        {"params": [], "max_lr": 2.0, "min_lr": 0.0},
        {"params": [], "wd_mult": 0.0, "start_wd": 0.3, "end_wd": 0.3},
    ]
    scheduler, optimizer = make(groups)
    scheduler.step(60)
    assert written(optimizer) == [(0.55, 0.1), (1.0, 0.1), (0.55, 0.0)]


def test_overrides_are_reread_at_every_step():
    scheduler, optimizer = make()
    scheduler.step(60)
    optimizer.param_groups[0]["max_lr"] = 2.0
    optimizer.param_groups[0]["min_lr"] = 0.0
    scheduler.step(0)
    assert written(optimizer)[0][0] == 1.0
    optimizer.param_groups = [{"params": []}]  # torch's load_state_dict replaces the list
    scheduler.step(0)
    assert written(optimizer)[0][0] == 0.55


def test_get_lr_and_get_wd():
    scheduler, optimizer = make([{}, {"max_lr": 2.0, "min_lr": 0.0, "wd_mult": 3.0}])
    scheduler.step(60)
    assert scheduler.get_lr(optimizer.param_groups[1]) == 1.0
    assert scheduler.get_wd(optimizer.param_groups[1]) == 0.1  # wd_mult applies in step()
    assert scheduler.get_wd() == 0.1
    assert optimizer.param_groups[1]["weight_decay"] == 0.1 * 3.0


@pytest.mark.parametrize(
    "group,message",
    [
        ({"max_lr": -1.0}, r"optimizer.param_groups\[1\]\['max_lr'\]=-1.0 is negative"),
        ({"wd_mult": float("nan")}, r"optimizer.param_groups\[1\]\['wd_mult'\]=nan is not finite"),
        ({"start_wd": 0.0}, r"start_wd=0.0 and end_wd=0.1 with a constant weight decay"),
        ({"max_lr": "big"}, r"optimizer.param_groups\[1\]\['max_lr'\]='big' is of type str"),
    ],
    ids=["negative", "nan-mult", "constant-wd-differs", "str"],
)
def test_bad_group_override_is_refused_before_anything_is_written(group, message):
    optimizer = PlainOptimizer([{}, group])
    with pytest.raises(ScheduleError, match=message):
        OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    assert all("lr" not in g for g in optimizer.param_groups)

    scheduler, optimizer = make([{}, {}])
    scheduler.step(20)
    before = written(optimizer)
    optimizer.param_groups[1].update(group)
    with pytest.raises(ScheduleError, match=message):
        scheduler.step(5)
    assert scheduler.num_steps == 20
    assert written(optimizer) == before


@pytest.mark.parametrize(
    "optimizer,message",
    [
        (object(), "has no param_groups list"),
        (PlainOptimizer.__new__(PlainOptimizer), "has no param_groups list"),
        (type("Opt", (), {"param_groups": [1]})(), r"optimizer.param_groups\[0\] is of type int"),
    ],
    ids=["object", "no-attribute", "not-dicts"],
)
def test_optimizer_without_param_groups_is_refused(optimizer, message):
    with pytest.raises(ScheduleTypeError, match=message):
        OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)


def test_invalid_configuration_writes_nothing():
    optimizer = PlainOptimizer()
    with pytest.raises(ScheduleError, match="lr_decay_style='cosin'"):
        OptimizerParamScheduler(optimizer, **{**MEGATRON_KWARGS, "lr_decay_style": "cosin"})
    assert "lr" not in optimizer.param_groups[0]


def test_both_checkpoint_policies_are_refused():
    with pytest.raises(ScheduleError, match="expected at most one of the two checkpoint policies"):
        make(use_checkpoint_opt_param_scheduler=True, override_opt_param_scheduler=True)
    with pytest.raises(ScheduleTypeError, match="override_opt_param_scheduler='yes'"):
        make(override_opt_param_scheduler="yes")


def test_attribute_assignment_is_validated():
    scheduler, optimizer = make()
    scheduler.max_lr = 2.0
    assert scheduler.schedule.max_lr == 2.0
    with pytest.raises(ScheduleError, match="min_lr=0.1 is greater than max_lr=0.01"):
        scheduler.max_lr = 0.01
    assert scheduler.max_lr == 2.0
    with pytest.raises(ScheduleError, match="num_steps=-5 is negative"):
        scheduler.num_steps = -5


def test_from_schedule():
    schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="cosine")
    optimizer = PlainOptimizer()
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    assert scheduler.schedule is schedule
    scheduler.step(5)
    assert optimizer.param_groups[0]["lr"] == schedule.lr(5)
    with pytest.raises(ScheduleTypeError, match="expected a paramsched.Schedule"):
        OptimizerParamScheduler.from_schedule(optimizer, {"max_lr": 1.0})


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda o, s, p: OptimizerParamScheduler(o, s),
            "OptimizerParamScheduler was given a Schedule as init_lr; expected "
            "OptimizerParamScheduler.from_schedule(optimizer, schedule) to run a schedule",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(o, p),
            "OptimizerParamScheduler was given a PhaseSchedule as init_lr; expected "
            "OptimizerParamScheduler.from_schedule(optimizer, schedule)",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(o, lambda step: 1.0),
            "init_lr is of type function; expected OptimizerParamScheduler.from_schedule(optimizer, "
            "schedule) to run a schedule, or Megatron's arguments",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(s, o),
            "OptimizerParamScheduler was given a Schedule as optimizer; expected "
            "OptimizerParamScheduler.from_schedule(optimizer, schedule)",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(o, 0.0, s),
            "OptimizerParamScheduler was given a Schedule as max_lr",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(o),
            "OptimizerParamScheduler is missing init_lr, max_lr, min_lr, lr_warmup_steps, "
            "lr_decay_steps, lr_decay_style, start_wd, end_wd, wd_incr_steps, wd_incr_style; expected "
            "Megatron's ten arguments",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler(o, 0.0, 1.0, 0.1),
            "OptimizerParamScheduler is missing lr_warmup_steps, lr_decay_steps, lr_decay_style, "
            "start_wd, end_wd, wd_incr_steps, wd_incr_style; expected Megatron's ten arguments",
        ),
        (
            lambda o, s, p: OptimizerParamScheduler.from_schedule(s, o),
            "from_schedule was given the Schedule first; expected "
            "OptimizerParamScheduler.from_schedule(optimizer, schedule), the optimizer first",
        ),
    ],
    ids=[
        "schedule-as-init-lr",
        "phases-as-init-lr",
        "callable-as-init-lr",
        "swapped",
        "schedule-as-max-lr",
        "only-the-optimizer",
        "three-arguments",
        "from-schedule-swapped",
    ],
)
def test_a_mistaken_call_gets_a_pointer(call, message):
    from paramsched import load_schedule
    from paramsched.recipe import recipe_path

    optimizer = PlainOptimizer()
    schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="cosine")
    with pytest.raises(ScheduleTypeError) as info:
        call(optimizer, schedule, load_schedule(recipe_path("llama2-7b")))
    assert message in str(info.value)
    assert "lr" not in optimizer.param_groups[0]  # nothing written


def test_megatrons_arguments_still_go_by_position():
    optimizer = PlainOptimizer()
    scheduler = OptimizerParamScheduler(optimizer, *MEGATRON_KWARGS.values())
    assert scheduler.schedule == Schedule(**MEGATRON_KWARGS)
    parameters = inspect.signature(OptimizerParamScheduler).parameters
    assert repr(parameters["init_lr"].default) == "<required>"


# ----------------------------------------------------------------- checkpoints


def test_state_dict_holds_every_field_as_builtins():
    scheduler, _ = make(lr_decay_style="WSD", wsd_decay_steps=40, lr_wsd_decay_style="minus_sqrt")
    scheduler.step(33)
    state = scheduler.state_dict()
    assert state == {
        "max_lr": 1.0,
        "lr_warmup_steps": 10,
        "num_steps": 33,
        "lr_decay_style": "WSD",
        "lr_decay_steps": 110,
        "min_lr": 0.1,
        "start_wd": 0.1,
        "end_wd": 0.1,
        "wd_incr_style": "constant",
        "wd_incr_steps": 110,
        "init_lr": 0.0,
        "wsd_decay_steps": 40,
        "lr_wsd_decay_style": "minus_sqrt",
        FORMAT_KEY: MEGATRON_FORMAT,
    }
    assert json.loads(json.dumps(state)) == state
    assert all(type(v) in (int, float, str, type(None)) for v in state.values())


def test_load_sets_the_step_and_is_idempotent():
    source, source_optimizer = make()
    source.step(42)
    state = source.state_dict()
    scheduler, optimizer = make()
    scheduler.step(17)
    scheduler.load_state_dict(state)
    scheduler.load_state_dict(state)
    assert scheduler.num_steps == 42
    assert written(optimizer) == written(source_optimizer)


def test_load_restores_weight_decay_before_writing_the_groups():
    source, source_optimizer = make(
        start_wd=0.0, end_wd=0.5, wd_incr_style="linear", wd_incr_steps=100
    )
    source.step(50)
    scheduler, optimizer = make()  # constant weight decay 0.1
    scheduler.load_state_dict(source.state_dict())
    assert written(optimizer) == written(source_optimizer) == [(0.64, 0.25)]


def test_wsd_settings_survive_a_checkpoint():
    source, source_optimizer = make(
        lr_decay_style="WSD", wsd_decay_steps=40, lr_wsd_decay_style="exponential", init_lr=0.5
    )
    source.step(90)
    scheduler, optimizer = make()  # built without WSD
    scheduler.load_state_dict(source.state_dict())
    assert scheduler.lr_decay_style == "WSD" and scheduler.wsd_decay_steps == 40
    assert scheduler.init_lr == 0.5
    assert written(optimizer) == written(source_optimizer)


BROKEN = [
    ("missing-key", lambda s: s.pop("min_lr"), "state_dict is missing 'min_lr'"),
    ("missing-wd", lambda s: s.pop("wd_incr_style"), "state_dict is missing 'wd_incr_style'"),
    (
        "bad-style",
        lambda s: s.update(lr_decay_style="cosin"),
        "state_dict['lr_decay_style']='cosin' is not one of",
    ),
    (
        "legacy-bad-style",
        lambda s: s.update(decay_style=s.pop("lr_decay_style") + "x"),
        "state_dict['decay_style']='linearx' is not one of",
    ),
    (
        "nan-step",
        lambda s: s.update(num_steps=float("nan")),
        "state_dict['num_steps']=nan is not finite",
    ),
    ("negative-step", lambda s: s.update(num_steps=-3), "state_dict['num_steps']=-3 is negative"),
    ("str-lr", lambda s: s.update(max_lr="1"), "state_dict['max_lr']='1' is of type str"),
    (
        "newer-format",
        lambda s: s.update({FORMAT_KEY: STATE_FORMAT + 1}),
        "written by a newer paramsched",
    ),
    (
        "conflicting-legacy",
        lambda s: s.update(num_iters=5),
        "state_dict['num_steps']=30 and state_dict['num_iters']=5 both give num_steps",
    ),
    (
        "invalid-together",
        lambda s: s.update(min_lr=2.0),
        "checkpoint rejected: min_lr=2.0 is greater than max_lr=1.0",
    ),
    (
        "wsd-without-steps",
        lambda s: s.update(lr_decay_style="WSD", wsd_decay_steps=None),
        "checkpoint rejected: wsd_decay_steps=None with lr_decay_style='WSD'",
    ),
]


@pytest.mark.parametrize("corrupt,message", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_rejected_checkpoint_changes_nothing(corrupt, message):
    source, _ = make(groups=[{}, {"wd_mult": 0.0}])
    source.step(30)
    state = source.state_dict()
    corrupt(state)
    scheduler, optimizer = make(groups=[{}, {"wd_mult": 0.0}])
    scheduler.step(12)
    before_state, before_groups = scheduler.state_dict(), copy.deepcopy(optimizer.param_groups)
    with pytest.raises(ScheduleError) as info:
        scheduler.load_state_dict(state)
    assert message in str(info.value)
    assert scheduler.state_dict() == before_state
    assert optimizer.param_groups == before_groups


def test_non_dict_checkpoint_is_refused():
    scheduler, _ = make()
    with pytest.raises(ScheduleTypeError, match="state_dict is of type list"):
        scheduler.load_state_dict([1, 2])


def test_strict_policy_lists_every_differing_field():
    source, _ = make(max_lr=2.0, min_lr=0.2, lr_decay_style="cosine")
    source.step(5)
    scheduler, optimizer = make(use_checkpoint_opt_param_scheduler=False)
    before = written(optimizer)
    with pytest.raises(ScheduleError) as info:
        scheduler.load_state_dict(source.state_dict())
    message = str(info.value)
    for fragment in (
        "max_lr: scheduler 1.0, checkpoint 2.0",
        "min_lr: scheduler 0.1, checkpoint 0.2",
        "lr_decay_style: scheduler 'linear', checkpoint 'cosine'",
    ):
        assert fragment in message
    assert scheduler.num_steps == 0 and written(optimizer) == before
    matching, _ = make()
    matching.step(5)
    scheduler.load_state_dict(matching.state_dict())
    assert scheduler.num_steps == 5


def test_override_policy_keeps_the_schedulers_values():
    source, _ = make(max_lr=2.0, min_lr=0.2)
    source.step(60)
    scheduler, optimizer = make(
        use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=True
    )
    scheduler.load_state_dict(source.state_dict())
    assert scheduler.max_lr == 1.0 and scheduler.num_steps == 60
    assert written(optimizer)[0][0] == 0.55


def test_check_and_set_follows_the_policies():
    scheduler, _ = make()
    assert scheduler._check_and_set(1.0, 2.0, "max_lr") == 2.0
    scheduler.use_checkpoint_opt_param_scheduler = False
    assert scheduler._check_and_set(1.0, 1.0, "max_lr") == 1.0
    with pytest.raises(ScheduleError, match="max_lr: scheduler 1.0, checkpoint 2.0"):
        scheduler._check_and_set(1.0, 2.0, "max_lr")
    scheduler.override_opt_param_scheduler = True
    assert scheduler._check_and_set(1.0, 2.0, "max_lr") == 1.0


def test_megatron_checkpoint_without_new_keys_keeps_constructor_values():
    scheduler, optimizer = make(
        lr_decay_style="WSD", wsd_decay_steps=40, lr_wsd_decay_style="linear", init_lr=0.2
    )
    state = {
        "max_lr": 1.0,
        "lr_warmup_steps": 10,
        "num_steps": 100,
        "lr_decay_style": "WSD",
        "lr_decay_steps": 110,
        "min_lr": 0.1,
    }  # an old Megatron checkpoint: no weight decay
    scheduler.load_state_dict(state)
    assert (scheduler.init_lr, scheduler.wsd_decay_steps) == (0.2, 40)
    assert scheduler.start_wd == 0.1 and scheduler.num_steps == 100
    assert written(optimizer)[0][0] == scheduler.schedule.lr(100)


def test_load_logs_what_it_did(caplog):
    source, _ = make()
    source.step(3)
    scheduler, _ = make()
    with caplog.at_level(logging.INFO, logger="paramsched"):
        scheduler.load_state_dict(source.state_dict())
    assert "num_steps=3" in caplog.text


def test_a_group_that_is_not_a_dict_is_refused_mid_run_and_nothing_changes():
    scheduler, optimizer = make([{}, {}, {}])
    scheduler.step(20)
    before = written(optimizer)
    optimizer.param_groups[2] = ["not", "a", "dict"]
    with pytest.raises(ScheduleTypeError, match=r"optimizer.param_groups\[2\] is of type list"):
        scheduler.step(5)
    assert scheduler.num_steps == 20
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups[:2]] == before[:2]


def test_groups_added_or_replaced_between_steps_are_planned_afresh():
    scheduler, optimizer = make([{}])
    scheduler.step(60)
    optimizer.param_groups.append({"max_lr": 2.0, "min_lr": 0.0})
    scheduler.step(0)
    assert written(optimizer) == [(0.55, 0.1), (1.0, 0.1)]
    optimizer.param_groups = [{"wd_mult": 2.0}, {}]
    scheduler.step(0)
    assert written(optimizer) == [(0.55, 0.2), (0.55, 0.1)]


def test_tensor_learning_rates_are_updated_in_place():
    torch = pytest.importorskip("torch")
    weight, bias = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    lr = torch.tensor(0.0, dtype=torch.float64)  # float64: the values compare exactly
    optimizer = torch.optim.AdamW(
        [
            {"params": [weight], "lr": lr.clone()},
            {"params": [bias], "lr": lr.clone(), "max_lr": 2.0},
        ]
    )
    tensors = [g["lr"] for g in optimizer.param_groups]
    scheduler = OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    for increment in (5, 55, 100):
        scheduler.step(increment)
        assert [g["lr"] is t for g, t in zip(optimizer.param_groups, tensors)] == [True, True]
        assert [g["lr"].item() for g in optimizer.param_groups] == [
            scheduler.get_lr(g) for g in optimizer.param_groups
        ]


def test_one_lr_tensor_shared_by_differently_scheduled_groups_is_refused():
    torch = pytest.importorskip("torch")
    weight, bias = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW(
        [{"params": [weight]}, {"params": [bias], "max_lr": 2.0}], lr=torch.tensor(0.01)
    )  # torch shares the default tensor
    with pytest.raises(ScheduleError, match=r"param_groups\[0\] and \[1\] share one lr tensor"):
        OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    assert optimizer.param_groups[0]["lr"].item() == pytest.approx(0.01)


# ------------------------------------------------------------ phase schedules


def phase_schedule(max_lr=1.0):
    from paramsched import PhaseSchedule

    return PhaseSchedule.from_dict(
        {
            "run": {
                "global_batch_size": 8,
                "rampup_batch_size": [2, 2, 40],
                "total": "400 samples",
            },
            "lr": {
                "max_lr": max_lr,
                "min_lr": 0.1,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "5 steps"},
                    {"shape": "constant", "until": "50%"},
                    {"shape": "cosine", "to": "min_lr", "until": "90%"},
                    {"shape": "constant", "value": 0.05, "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear"},
        }
    )


def run_phases(scheduler, run, steps, consumed=0):
    trace = []
    for _ in range(steps):
        batch = run.batch_size_at(consumed)
        scheduler.step(batch)
        consumed += batch
        trace.append(written(scheduler.optimizer))
    return trace, consumed


def test_a_phase_schedule_resumes_exactly_through_torch_save():
    torch = pytest.importorskip("torch")
    import io

    schedule = phase_schedule()
    groups = [{}, {"max_lr": 2.0, "min_lr": 0.0, "wd_mult": 0.0}]
    straight = OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), schedule)
    expected, _ = run_phases(straight, schedule.run, 60)
    first = OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), schedule)
    _, consumed = run_phases(first, schedule.run, 23)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["paramsched_format"] == 3
    assert json.loads(state["schedule"]) == {"kind": "phases", **schedule.to_dict()}
    resumed = OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), phase_schedule())
    resumed.load_state_dict(state)
    assert resumed.num_steps == consumed
    trace, _ = run_phases(resumed, schedule.run, 37, consumed)
    assert trace == expected[23:]


def test_a_changed_phase_schedule_is_detected_under_the_strict_policy():
    source = OptimizerParamScheduler.from_schedule(PlainOptimizer(), phase_schedule(max_lr=1.0))
    strict = OptimizerParamScheduler.from_schedule(
        PlainOptimizer(), phase_schedule(max_lr=2.0), use_checkpoint_opt_param_scheduler=False
    )
    with pytest.raises(ScheduleError, match=r"schedule.lr.max_lr: scheduler 2.0, checkpoint 1.0"):
        strict.load_state_dict(source.state_dict())
    taking = OptimizerParamScheduler.from_schedule(PlainOptimizer(), phase_schedule(max_lr=2.0))
    taking.load_state_dict(source.state_dict())
    assert taking.schedule == phase_schedule(max_lr=1.0)
    keeping = OptimizerParamScheduler.from_schedule(
        PlainOptimizer(),
        phase_schedule(max_lr=2.0),
        use_checkpoint_opt_param_scheduler=False,
        override_opt_param_scheduler=True,
    )
    keeping.load_state_dict(source.state_dict())
    assert keeping.schedule == phase_schedule(max_lr=2.0)


def test_switching_between_megatron_and_phase_checkpoints():
    megatron, _ = make()
    megatron.step(30)
    phases = OptimizerParamScheduler.from_schedule(PlainOptimizer(), phase_schedule())
    phases.load_state_dict(megatron.state_dict())  # the default policy takes the checkpoint's
    assert phases.schedule == megatron.schedule and phases.num_steps == 30
    strict = OptimizerParamScheduler.from_schedule(
        PlainOptimizer(), phase_schedule(), use_checkpoint_opt_param_scheduler=False
    )
    with pytest.raises(
        ScheduleError,
        match="schedule: scheduler 'phases \\(4 for lr\\)', checkpoint \"Megatron's linear\"",
    ):
        strict.load_state_dict(megatron.state_dict())
    broken = {"schedule": {"lr": {"max_lr": 1.0, "phases": []}}, "num_steps": 3, FORMAT_KEY: 2}
    with pytest.raises(ScheduleError, match=r"state_dict\['schedule'\]: lr.phases=\[\]"):
        phases.load_state_dict(broken)


def test_megatron_fields_are_not_attributes_of_a_phase_scheduler():
    scheduler = OptimizerParamScheduler.from_schedule(PlainOptimizer(), phase_schedule())
    assert scheduler.max_lr == 1.0 and scheduler.min_lr == 0.1
    with pytest.raises(AttributeError, match="lr_decay_style is a field of Megatron-style"):
        scheduler.lr_decay_style
    with pytest.raises(ScheduleTypeError, match="max_lr cannot be set on a PhaseSchedule"):
        scheduler.max_lr = 3.0


def test_last_values_are_what_was_written():
    scheduler, optimizer = make([{}, {"wd_mult": 0.0, "max_lr": 2.0, "min_lr": 0.0}])
    scheduler.step(60)
    assert scheduler.last_values() == written(optimizer) == [(0.55, 0.1), (1.0, 0.0)]


def test_a_schedule_or_field_assigned_is_checked_against_the_groups(caplog):
    rising = dict(wd_incr_style="linear", start_wd=0.0, end_wd=0.3)
    scheduler, optimizer = make([{}, {"start_wd": 0.2}], **rising)
    scheduler.step(20)
    before = (scheduler.schedule, written(optimizer))
    with pytest.raises(
        ScheduleError,
        match=r"param_groups\[1\] has start_wd=0.2 and end_wd=0.3 "
        "with a constant weight decay",
    ):
        scheduler.schedule = scheduler.schedule.replace(wd_incr_style="constant", start_wd=0.3)
    with pytest.raises(
        ScheduleError,
        match=r"param_groups\[1\] has start_wd=0.2 but the "
        "schedule has no weight-decay part",
    ):
        scheduler.schedule = scheduler.schedule.replace(start_wd=None, end_wd=None)
    assert (scheduler.schedule, written(optimizer)) == before
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.end_wd = 0.1  # the group's weight decay now falls: run, and said once
        scheduler.step(1)
    assert "optimizer.param_groups[1] has start_wd=0.2 and end_wd=0.1" in caplog.text


@pytest.mark.parametrize(
    "group,inverted",
    [
        ({"min_lr": 5.0}, "min_lr=5.0 and max_lr=1.0"),
        ({"max_lr": 0.05}, "min_lr=0.1 and max_lr=0.05"),
        ({"start_wd": 0.3, "end_wd": 0.05}, "start_wd=0.3 and end_wd=0.05"),
    ],
    ids=["min-above-max", "decoupled-below-min", "wd-falls"],
)
def test_a_group_in_the_opposite_order_runs_with_one_warning(caplog, group, inverted):
    rising = dict(wd_incr_style="linear", start_wd=0.0, end_wd=0.1)
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler, optimizer = make([{}, group, dict(group)], **rising)
        for _ in range(30):
            scheduler.step(5)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, not at every step
    message = warnings[0].getMessage()
    assert f"optimizer.param_groups[1, 2] have {inverted}, in the opposite order" in message
    lr, wd = optimizer.param_groups[1]["lr"], optimizer.param_groups[1]["weight_decay"]
    assert lr == scheduler.get_lr(optimizer.param_groups[1])
    assert wd == scheduler.get_wd(optimizer.param_groups[1])
    caplog.clear()
    optimizer.param_groups[2].pop(next(iter(group)))  # what is unusual changed: warned again
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.step(1)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert f"optimizer.param_groups[1] has {inverted}" in caplog.records[0].getMessage()


def test_a_position_beyond_the_domain_is_refused_and_every_reachable_one_checkpoints():
    scheduler, optimizer = make()
    scheduler.step(10**18 - 5)
    state, before = scheduler.state_dict(), written(optimizer)
    for increment in (6, 10**400, 1e308):
        with pytest.raises(ScheduleError, match="beyond any run|expected a position of at most"):
            scheduler.step(increment)
        assert scheduler.state_dict() == state and written(optimizer) == before
    scheduler.step(5)  # exactly the limit
    resumed, _ = make()
    resumed.load_state_dict(scheduler.state_dict())
    assert resumed.num_steps == 10**18


def test_override_opt_param_scheduler_keeps_this_runs_group_overrides_after_a_load(caplog):
    # Megatron's flag: the new run's settings win, per-group overrides included, though
    # the optimizer's load puts the checkpoint's group dicts back.
    old, old_optimizer = make([{}, {"max_lr": 0.5, "wd_mult": 0.0}])
    old.step(40)
    saved_groups = [dict(g) for g in old_optimizer.param_groups]
    scheduler, optimizer = make(
        [{}, {"max_lr": 2.0}],
        override_opt_param_scheduler=True,
        use_checkpoint_opt_param_scheduler=False,
    )
    scheduler.load_state_dict(old.state_dict())
    optimizer.param_groups = [dict(g) for g in saved_groups]  # the optimizer loads second
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.step(1)
    assert "max_lr=2.0 (not 0.5), wd_mult=None (not 0.0)" in caplog.text
    group = optimizer.param_groups[1]
    assert "wd_mult" not in group and group["max_lr"] == 2.0
    assert written(optimizer)[1] == (scheduler.get_lr(group), scheduler.get_wd(group))
    reference, reference_optimizer = make([{}, {"max_lr": 2.0}])
    reference.step(41)
    assert written(optimizer) == written(reference_optimizer)

    # Under the default policy the checkpoint's group values are used.
    default, default_optimizer = make([{}, {"max_lr": 2.0}])
    default.load_state_dict(old.state_dict())
    default_optimizer.param_groups = [dict(g) for g in saved_groups]
    default.step(1)
    assert default_optimizer.param_groups[1]["max_lr"] == 0.5


@pytest.mark.parametrize("copier", ["deepcopy", "pickle", "copy"])
def test_a_copied_scheduler_still_knows_this_runs_overrides(copier, caplog):
    # A Megatron-like optimizer (no load hooks) whose load replaces the group dicts, after
    # the scheduler was copied: the override policy puts this run's overrides back at the
    # next step, and a shallow copy does not share the original's writer.
    import pickle

    optimizer = PlainOptimizer([{"params": []}, {"params": [], "max_lr": 0.5}])
    original = OptimizerParamScheduler(
        optimizer,
        **MEGATRON_KWARGS,
        use_checkpoint_opt_param_scheduler=False,
        override_opt_param_scheduler=True,
    )
    scheduler = {
        "deepcopy": copy.deepcopy,
        "copy": copy.copy,
        "pickle": lambda s: pickle.loads(pickle.dumps(s)),
    }[copier](original)
    assert scheduler._writer is not original._writer
    groups = scheduler.optimizer.param_groups
    groups[:] = [{**group, "max_lr": 0.25} for group in groups]  # the checkpoint's groups
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.step(20)
    assert "max_lr=0.5 (not 0.25)" in caplog.text
    assert [g.get("max_lr") for g in groups] == [None, 0.5]
    assert groups[1]["lr"] == scheduler.schedule.lr(20, 0.5)


def test_under_the_override_policy_a_changed_number_of_groups_is_said_at_warning(caplog):
    scheduler, optimizer = make(
        [{}, {"max_lr": 2.0}],
        override_opt_param_scheduler=True,
        use_checkpoint_opt_param_scheduler=False,
    )
    scheduler.step(5)
    optimizer.param_groups = [{}, {"max_lr": 0.5}, {}]  # a load into a grown optimizer
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.step(1)
    assert "the optimizer has 3 parameter groups where this scheduler last wrote 2" in caplog.text


def test_under_the_override_policy_an_array_in_a_replaced_group_gives_way_to_this_runs():
    import numpy as np

    scheduler, optimizer = make(
        [{}, {"max_lr": 2.0}],
        override_opt_param_scheduler=True,
        use_checkpoint_opt_param_scheduler=False,
    )
    scheduler.step(5)
    optimizer.param_groups = [{}, {"max_lr": 2.0, "min_lr": np.array([0.1, 0.2])}]
    scheduler.step(1)  # a replaced dict: this run's min_lr (none) is put back
    assert "min_lr" not in optimizer.param_groups[1]


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
@pytest.mark.parametrize("how", ["step", "step_to"])
def test_a_copied_scheduler_reports_the_metrics_of_its_first_step(copier, how):
    # The plan is a cache, not pickled: the copy's first step reported that no step had
    # been taken. It reports the values the groups held for that step.
    import pickle

    scheduler, _ = make([{}, {"max_lr": 2.0, "name": "head"}])
    scheduler.step(7)
    clone = {"deepcopy": copy.deepcopy, "pickle": lambda s: pickle.loads(pickle.dumps(s))}[copier](
        scheduler
    )
    for s in (scheduler, clone):
        s.step(3) if how == "step" else s.step_to(10)
    assert clone.metrics() == scheduler.metrics()
    assert clone.metrics()["lr/head"] == scheduler.schedule.lr(7, max_lr=2.0)


@pytest.mark.parametrize("how", ["step", "step_to"])
def test_metrics_after_num_steps_is_assigned_report_what_the_groups_held(how):
    # Assigning num_steps does not write the groups, so the next step still uses the
    # values written before; metrics() computed them at the assigned position instead.
    scheduler, optimizer = make([{}, {"max_lr": 2.0, "wd_mult": 0.5}])
    scheduler.step(5)
    used = written(optimizer)
    scheduler.num_steps = 50
    scheduler.step(1) if how == "step" else scheduler.step_to(80)
    metrics = scheduler.metrics()
    assert [(metrics[f"lr/{g}"], metrics[f"weight_decay/{g}"]) for g in (0, 1)] == used


def test_metrics_say_at_warning_that_a_group_added_since_is_not_reported(caplog):
    scheduler, optimizer = make([{}])
    scheduler.step(5)
    optimizer.param_groups.append({"lr": 0.5, "weight_decay": 0.0})  # add_param_group
    scheduler.step(1)
    with caplog.at_level("WARNING", logger="paramsched"):
        metrics = scheduler.metrics()
    assert set(metrics) == {"lr/0", "weight_decay/0"}
    assert [r.getMessage() for r in caplog.records] == [
        "metrics(): optimizer.param_groups[1:] were added since the step before this one, "
        "which used their own values; they are reported from the next step on"
    ]
    scheduler.step(1)
    assert set(scheduler.metrics()) == {"lr/0", "weight_decay/0", "lr/1", "weight_decay/1"}


class MegatronLikeOptimizer:
    """Megatron's optimizers are no torch optimizers: their param_groups are the wrapped
    optimizer's, through a property, and the scheduler never sees them step."""

    def __init__(self, groups):
        self.optimizer = PlainOptimizer(groups)

    @property
    def param_groups(self):
        return self.optimizer.param_groups


@pytest.mark.parametrize("kind", [PlainOptimizer, MegatronLikeOptimizer])
def test_metrics_report_what_the_groups_held_whoever_set_them(kind):
    # metrics() computed the scheduled values; an optimizer whose steps the scheduler does
    # not see used what its groups held when the scheduler's step began.
    optimizer = kind([{}, {"max_lr": 2.0, "wd_mult": 0.5, "name": "head"}])
    scheduler = OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    scheduler.step(5)
    for changes in ({"lr": 0.25}, {"weight_decay": 0.0}, {}, {"lr": 0.0625, "weight_decay": 3.0}):
        optimizer.param_groups[1].update(changes)
        used = written(optimizer)
        scheduler.step(3)
        metrics = scheduler.metrics()
        assert [(metrics[f"lr/{g}"], metrics[f"weight_decay/{g}"]) for g in ("0", "head")] == used


def test_metrics_report_what_a_tensor_held_before_the_step_wrote_into_it():
    # A tensor is written in place: what it held is copied before the write, not read after.
    torch = pytest.importorskip("torch")
    lr = torch.tensor(0.0, dtype=torch.float32)
    optimizer = PlainOptimizer([{"lr": lr, "weight_decay": 0.0}])
    scheduler = OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    scheduler.step(5)
    lr.fill_(1 / 3)  # the user's, in place
    scheduler.step(1)
    assert optimizer.param_groups[0]["lr"] is lr and lr.item() != 1 / 3  # written since
    assert scheduler.metrics()["lr/0"] == torch.tensor(1 / 3, dtype=torch.float32).item()
    scheduler.step(1)
    assert scheduler.metrics()["lr/0"] == torch.tensor(0.6, dtype=torch.float32).item()


def test_metrics_report_what_the_groups_held_on_the_compiled_step_too():
    # Past the first steps of a segment the plan's step function writes the groups; it
    # also gives what they held before it wrote, which a hand-made change shows.
    optimizer = PlainOptimizer([{}, {"wd_mult": 0.0}])
    scheduler = OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=1.0,
        min_lr=0.1,
        lr_warmup_steps=2,
        lr_decay_steps=1000,
        lr_decay_style="cosine",
        start_wd=0.1,
        end_wd=0.1,
        wd_incr_steps=1000,
        wd_incr_style="constant",
    )
    for _ in range(40):
        scheduler.step(1)
    assert any(callable(built) for built in scheduler._writer.compiled.values())
    for step in range(5):
        optimizer.param_groups[1]["lr"] = 0.125 * step  # set by hand before the step
        scheduler.step(1)
        metrics = scheduler.metrics()
        assert metrics["lr/1"] == 0.125 * step
        assert metrics["lr/0"] == scheduler.schedule.lr(scheduler.num_steps - 1)
        assert metrics["weight_decay/1"] == 0.0 and metrics["weight_decay/0"] == 0.1
