"""Tests for paramsched.runtime._checkpoint: formats old and new, policies, and every checkpoint
path (a plain dict, torch.save, torch.distributed.checkpoint, pickle, deepcopy)."""

from __future__ import annotations

import copy
import io
import json
import logging
import pathlib
import pickle

import pytest
from conftest import MEGATRON_KWARGS, PlainOptimizer, written

from paramsched import OptimizerParamScheduler, PhaseSchedule, Schedule, ScheduleError
from paramsched.recipe import load_schedule, recipe_path, recipes
from paramsched.runtime._checkpoint import Policy

DATA = pathlib.Path(__file__).parent / "data"
OLD = json.loads((DATA / "checkpoints-0.1.0.json").read_text())
GROUPS = [{"params": []}, {"params": [], "wd_mult": 0.0, "max_lr": 2.0, "min_lr": 0.0}]


def phases(count=3, max_lr=1.0):
    """A schedule of `count` learning-rate phases over 400 samples, batch 4."""
    ends = [40 + 360 * k // count for k in range(1, count + 1)]
    lr = [{"shape": "linear", "to": "max_lr", "until": "40 samples"}]
    lr += [
        {
            "shape": "cosine" if k % 2 == 0 else "linear",
            "to": 0.1 * max_lr / (k + 1),
            "until": f"{end} samples",
        }
        for k, end in enumerate(ends[:-1])
    ]
    lr.append({"shape": "constant", "value": 0.01, "until": f"{ends[-1]} samples"})
    return PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 4, "total": "400 samples"},
            "lr": {"max_lr": max_lr, "min_lr": 0.0, "phases": lr},
            "wd": {"start_wd": 0.1},
        }
    )


def scheduler_for(schedule, **policy):
    return OptimizerParamScheduler.from_schedule(PlainOptimizer(GROUPS), schedule, **policy)


# ------------------------------------------------------------- old formats


def test_a_format_2_checkpoint_of_0_1_0_loads_and_continues():
    old = OLD["phases_format2"]
    scheduler = scheduler_for(phases())  # another schedule: the checkpoint's is taken
    scheduler.load_state_dict(old["state"])
    assert written(scheduler.optimizer) == [tuple(g) for g in old["groups"]]
    assert scheduler.schedule == PhaseSchedule.from_dict(old["state"]["schedule"])
    assert scheduler.state_dict()["paramsched_format"] == 3


def test_a_format_1_checkpoint_of_0_1_0_loads():
    old = OLD["megatron_format1"]
    scheduler = OptimizerParamScheduler(PlainOptimizer(GROUPS), **MEGATRON_KWARGS)
    scheduler.load_state_dict(old["state"])
    assert written(scheduler.optimizer) == [tuple(g) for g in old["groups"]]
    assert scheduler.state_dict() == old["state"]  # format 1 is still what it writes


def scheduler_of_0_1_0(torch, param_scheduler) -> tuple:
    """The schedule and scheduler paramsched 0.1.0's torch checkpoints were written with."""
    schedule = Schedule(
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=20,
        lr_decay_steps=200,
        lr_decay_style="cosine",
        start_wd=0.1,
        wd_incr_steps=200,
    )
    optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    return schedule, param_scheduler(optimizer, schedule, samples_per_step=2)


def test_a_torch_checkpoint_of_0_1_0_loads_with_a_warning_about_its_clock(caplog):
    torch = pytest.importorskip("torch")
    from paramsched.torch import ParamScheduler

    old = OLD["torch_format1"]
    schedule, scheduler = scheduler_of_0_1_0(torch, ParamScheduler)
    with caplog.at_level(logging.WARNING):
        scheduler.load_state_dict(old["state"])
    assert not caplog.records  # same clock, same schedule
    assert scheduler.get_last_lr() == old["lrs"] and scheduler.num_steps == 26
    stepping = ParamScheduler(torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()), schedule)
    with caplog.at_level(logging.DEBUG, logger="paramsched"):
        stepping.load_state_dict(old["state"])
    assert "the checkpoint's clock advanced by another amount per step" in caplog.text
    assert "the checkpoint's clock: 2; this scheduler's: 1" in caplog.text  # at DEBUG


def test_a_dcp_checkpoint_of_0_1_0_loads():
    torch = pytest.importorskip("torch")
    import torch.distributed.checkpoint as dcp

    from paramsched.torch import ParamScheduler

    schedule, scheduler = scheduler_of_0_1_0(torch, ParamScheduler)
    dcp.load({"scheduler": scheduler}, checkpoint_id=str(DATA / "dcp-0.1.0"))
    assert scheduler.get_last_lr() == OLD["torch_format1"]["lrs"] and scheduler.num_steps == 26


# ------------------------------------------------------------ the new format


def test_a_phase_checkpoint_is_one_json_text_of_builtins():
    scheduler = scheduler_for(phases())
    scheduler.step(12)
    state = scheduler.state_dict()
    assert set(state) == {"schedule", "num_steps", "paramsched_format"}
    assert isinstance(state["schedule"], str) and state["paramsched_format"] == 3
    assert json.loads(state["schedule"])["kind"] == "phases"


@pytest.mark.parametrize(
    "text,message",
    [
        ("not json", "state_dict\\['schedule'\\]: is not valid JSON"),
        ("[1, 2]", "holds a list; expected a JSON object"),
        ('{"kind": "branch"}', "kind='branch' is not one of 'phases'"),
        ('{"kind": "phases", "lr": {"max_lr": 1.0, "phases": []}}', "lr.phases=\\[\\]"),
    ],
)
def test_a_broken_json_schedule_is_refused_and_changes_nothing(text, message):
    scheduler = scheduler_for(phases())
    before = scheduler.state_dict()
    with pytest.raises(ScheduleError, match=message):
        scheduler.load_state_dict({"schedule": text, "num_steps": 3, "paramsched_format": 3})
    assert scheduler.state_dict() == before


def test_a_newer_format_is_refused():
    with pytest.raises(ScheduleError, match="was written by a newer paramsched"):
        scheduler_for(phases()).load_state_dict(
            {"schedule": "{}", "num_steps": 1, "paramsched_format": 4}
        )


# ------------------------------------------------------------------ policies


def test_the_default_policy_takes_a_differing_schedule_and_says_so_at_warning(caplog):
    source = scheduler_for(phases(max_lr=2.0))
    source.step(100)
    taking = scheduler_for(phases())
    with caplog.at_level(logging.DEBUG, logger="paramsched"):
        taking.load_state_dict(source.state_dict())
    assert taking.schedule == source.schedule
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    # One line of at most ~200 characters naming the fields; each difference at DEBUG.
    line = warnings[0].getMessage()
    assert "\n" not in line and len(line) <= 200
    assert line.startswith(
        "the checkpoint's schedule replaces the scheduler's (4 fields differ: schedule.lr.max_lr, "
    )
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("schedule.lr.max_lr: scheduler 1.0, checkpoint 2.0" in m for m in debug)


def test_an_equal_schedule_loads_without_a_warning(caplog):
    source = scheduler_for(phases())
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler_for(phases()).load_state_dict(source.state_dict())
    assert not caplog.records


def test_policies_as_one_value():
    assert Policy.from_flags(True, False) is Policy.CHECKPOINT
    assert Policy.from_flags(False, True) is Policy.OVERRIDE
    assert Policy.from_flags(False, False) is Policy.STRICT
    assert Policy.from_flags(None, None) is Policy.STRICT
    with pytest.raises(ScheduleError, match="expected at most one"):
        Policy.from_flags(True, True)
    with pytest.raises(ScheduleError, match="checkpoint_policy='strikt' is not one of"):
        Policy.parse("strikt")
    scheduler = scheduler_for(phases(), use_checkpoint_opt_param_scheduler=False)
    assert scheduler.checkpoint_policy is Policy.STRICT
    scheduler.override_opt_param_scheduler = True
    assert scheduler.checkpoint_policy is Policy.OVERRIDE
    scheduler.override_opt_param_scheduler = False
    assert scheduler.checkpoint_policy is Policy.STRICT
    scheduler.checkpoint_policy = "checkpoint"
    assert (
        scheduler.use_checkpoint_opt_param_scheduler and not scheduler.override_opt_param_scheduler
    )
    with pytest.raises(ScheduleError, match="override_opt_param_scheduler='yes' is of type"):
        scheduler.override_opt_param_scheduler = "yes"


# ---------------------------------------------------- a schedule is its meaning


def test_two_spellings_of_one_schedule_are_equal_and_checkpoint_the_same():
    def spelled(until, extra):
        return PhaseSchedule.from_dict(
            {
                "run": {"global_batch_size": 1000, "seq_length": 4, "total": "8K samples"},
                "lr": {
                    "max_lr": 1.0,
                    **extra,
                    "phases": [
                        {"shape": "linear", "to": "max_lr", "until": until},
                        {"shape": "cosine", "to": "min_lr", "until": "100%"},
                    ],
                },
            }
        )

    a = spelled("2000 samples", {})
    b = spelled("2K samples", {"init_lr": 0.0, "min_lr": 0})
    c = spelled("2 steps", {})
    d = spelled("8000 tokens", {})
    assert a == b == c == d and hash(a) == hash(d)

    def scheduler(schedule, **policy):
        return OptimizerParamScheduler.from_schedule(PlainOptimizer(), schedule, **policy)

    assert scheduler(a).state_dict() == scheduler(d).state_dict()
    strict = scheduler(b, use_checkpoint_opt_param_scheduler=False)
    strict.load_state_dict(scheduler(a).state_dict())  # passes the strict policy
    assert Schedule(
        max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear", start_wd=0.1
    ) == Schedule(
        max_lr=1.0,
        lr_decay_steps=10,
        lr_decay_style="linear",
        start_wd=0.1,
        end_wd=0.1,
        init_lr=0,
        min_lr=0.0,
    )


# ------------------------------------------- torch.distributed.checkpoint paths


@pytest.mark.parametrize("saved,given", [(3, 2), (2, 3), (2, "megatron"), ("megatron", 3)])
def test_dcp_loads_the_saved_schedule_whole_never_a_mixture(tmp_path, saved, given):
    torch = pytest.importorskip("torch")
    import torch.distributed.checkpoint as dcp

    from paramsched.distributed import read_checkpoint
    from paramsched.torch import ParamScheduler

    def build(kind):
        optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
        schedule = (
            Schedule(max_lr=1.0, lr_decay_steps=400, lr_decay_style="linear", start_wd=0.1)
            if kind == "megatron"
            else phases(kind)
        )
        return ParamScheduler(optimizer, schedule, samples_per_step=4)

    source = build(saved)
    for _ in range(37):
        source.step()
    dcp.save({"scheduler": source}, checkpoint_id=str(tmp_path))
    target = build(given)
    if (saved == "megatron") != (given == "megatron"):
        # The two kinds have different keys: DCP refuses loudly, never half-loads.
        with pytest.raises(BaseException) as info:  # DCP's CheckpointException
            dcp.load({"scheduler": target}, checkpoint_id=str(tmp_path))
        assert "Missing key in checkpoint state_dict: scheduler.paramsched" in str(info.value)
        assert target.num_steps == 0 and target.schedule != source.schedule
        # read_checkpoint reads it as written, and the policy takes it.
        target.load_state_dict(read_checkpoint(tmp_path))
    else:
        dcp.load({"scheduler": target}, checkpoint_id=str(tmp_path))
    assert target.schedule == source.schedule
    assert target.get_last_lr() == source.get_last_lr()
    for _ in range(20):
        source.step()
        target.step()
        assert written(target.optimizer) == written(source.optimizer)


# ------------------------------------------------------- pickle and deepcopy


def schedules():
    return [
        Schedule(**{k: v for k, v in MEGATRON_KWARGS.items()}),
        phases(),
        PhaseSchedule.from_dict(
            {
                "lr": {
                    "max_lr": 1.0,
                    "phases": [
                        {
                            "shape": "polynomial",
                            "power": 2.0,
                            "to": 0.0,
                            "from": "max_lr",
                            "until": "9 samples",
                        }
                    ],
                }
            }
        ),
        *(load_schedule(r.path) for r in recipes()),
    ]


@pytest.mark.parametrize("index", range(6))
def test_schedules_pickle_and_deepcopy_to_equal_values(index):
    schedule = schedules()[index]
    for clone in (pickle.loads(pickle.dumps(schedule)), copy.deepcopy(schedule)):
        assert clone == schedule
        assert clone.lr(123) == schedule.lr(123)


def test_recipes_pickle():
    recipe = recipes()[0]
    assert pickle.loads(pickle.dumps(recipe)) == recipe
    assert recipe_path(recipe.name) == recipe.path


def test_schedulers_pickle_deepcopy_and_torch_save():
    torch = pytest.importorskip("torch")
    from paramsched.torch import ParamScheduler

    core = scheduler_for(phases())
    core.step(40)
    for clone in (pickle.loads(pickle.dumps(core)), copy.deepcopy(core)):
        assert clone.state_dict() == core.state_dict()
        clone.step(4)
        core_next = copy.deepcopy(core)
        core_next.step(4)
        assert written(clone.optimizer) == written(core_next.optimizer)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = ParamScheduler(optimizer, phases())
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save(scheduler, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False)
    assert restored.state_dict() == scheduler.state_dict()
    assert restored.get_last_lr() == scheduler.get_last_lr()
    restored.step()
    scheduler.step()
    assert restored.get_last_lr() == scheduler.get_last_lr()


@pytest.mark.parametrize("policy", ["checkpoint", "override", "strict"])
@pytest.mark.parametrize("style", ["WSD", "cosine"])
def test_a_megatron_core_checkpoint_of_the_parent_continues_on_a_branch(style, policy):
    # Megatron-Core's own checkpoints lack init_lr and the WSD fields: a branch of a
    # Megatron schedule takes them from that schedule, not from nothing, so a
    # checkpoint written before the branch point continues on the branch.
    config = dict(MEGATRON_KWARGS, init_lr=0.05, lr_decay_style=style)
    if style == "WSD":
        config.update(wsd_decay_steps=50, lr_wsd_decay_style="exponential")
    parent = Schedule(**config)
    branch = parent.branch(60, [{"shape": "linear", "to": "min_lr", "until": "80 steps"}])
    state = {
        key: config[key]
        for key in (
            "max_lr",
            "lr_warmup_steps",
            "lr_decay_style",
            "lr_decay_steps",
            "min_lr",
            "start_wd",
            "end_wd",
            "wd_incr_style",
            "wd_incr_steps",
        )
    }
    state["num_steps"] = 30  # as megatron-core 0.16 writes it: no init_lr, no WSD fields
    optimizer = PlainOptimizer([{}])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, branch)
    scheduler.checkpoint_policy = policy
    scheduler.load_state_dict(state)
    assert scheduler.schedule is branch and scheduler.num_steps == 30
    scheduler.step(40)
    assert written(optimizer)[0][0] == branch.lr(70) != parent.lr(70)
