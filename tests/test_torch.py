"""Tests for paramsched.torch: the LRScheduler, tensor learning rates, torch.compile."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import io
import logging
import random
import re

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it
from conftest import PlainOptimizer, random_config, random_groups, written
from torch.utils._python_dispatch import TorchDispatchMode

from paramsched import (
    OptimizerParamScheduler,
    PhaseSchedule,
    Schedule,
    ScheduleError,
    ScheduleTypeError,
)
from paramsched.torch import ParamScheduler

pytestmark = pytest.mark.torch


def saved_and_loaded(optimizer, scheduler) -> dict:
    """Both states through a real ``torch.save`` and ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def adamw(groups, lr=0.0):
    torch.manual_seed(0)
    return torch.optim.AdamW(
        [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [torch.nn.Parameter(torch.randn(2))],
            }
            for g in groups
        ],
        lr=lr,
    )


@pytest.mark.parametrize("seed", range(25))
def test_writes_what_optimizer_param_scheduler_writes(seed):
    rng = random.Random(seed)
    config = random_config(rng)
    groups = random_groups(rng, config)
    schedule = Schedule(**config)
    per_step = max(1, int(config["lr_decay_steps"]) // rng.choice([50, 200, 400]))
    reference_optimizer, optimizer = adamw(groups), adamw(groups)
    reference = OptimizerParamScheduler.from_schedule(reference_optimizer, schedule)
    scheduler = ParamScheduler(optimizer, schedule, samples_per_step=per_step)
    assert written(optimizer) == written(reference_optimizer)
    for _ in range(int(config["lr_decay_steps"] * 1.2 / per_step) + 3):
        optimizer.step()
        scheduler.step()
        reference.step(per_step)
        assert written(optimizer) == written(reference_optimizer)
        assert scheduler.get_last_lr() == [g["lr"] for g in reference_optimizer.param_groups]
    assert scheduler.num_steps == reference.num_steps


def test_state_dict_is_plain_data_and_resume_is_exact():
    schedule = Schedule(
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=7.5,
        lr_decay_steps=90,
        lr_decay_style="WSD",
        wsd_decay_steps=30,
        lr_wsd_decay_style="minus_sqrt",
        start_wd=0.0,
        end_wd=0.1,
        wd_incr_steps=90,
        wd_incr_style="cosine",
    )
    groups = [{}, {"wd_mult": 0.0}, {"max_lr": 2e-3, "min_lr": 0.0}]
    straight_optimizer = adamw(groups)
    straight = ParamScheduler(straight_optimizer, schedule, samples_per_step=3)
    expected = []
    for _ in range(40):
        straight_optimizer.step()
        straight.step()
        expected.append(written(straight_optimizer))
    first_optimizer = adamw(groups)
    first = ParamScheduler(first_optimizer, schedule, samples_per_step=3)
    for _ in range(13):
        first_optimizer.step()
        first.step()
    checkpoint = saved_and_loaded(first_optimizer, first)
    optimizer = adamw(groups)
    scheduler = ParamScheduler(optimizer, schedule, samples_per_step=3)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    assert (scheduler.last_epoch, scheduler.num_steps) == (13, 39)
    resumed = []
    for _ in range(27):
        optimizer.step()
        scheduler.step()
        resumed.append(written(optimizer))
    assert resumed == expected[13:]


def test_a_phase_schedule_drives_it():
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "8 samples"},
                    {"shape": "cosine", "to": 0.0, "until": "24 samples"},
                ],
            }
        }
    )
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, schedule, samples_per_step=4)
    lrs = []
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert lrs == [schedule.lr(4 * k) for k in range(1, 7)]


@pytest.mark.parametrize(
    "value,message",
    [
        (0, "samples_per_step=0; expected a number > 0"),
        (-2, "samples_per_step=-2"),
        (float("nan"), "samples_per_step=nan is not finite"),
        ("8", "samples_per_step='8' is of type str"),
    ],
)
def test_bad_samples_per_step(value, message):
    with pytest.raises(ScheduleError, match=message):
        ParamScheduler(
            adamw([{}]),
            Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear"),
            samples_per_step=value,
        )


def test_bad_calls_and_checkpoints_change_nothing():
    optimizer = adamw([{}])
    scheduler = ParamScheduler(
        optimizer, Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear")
    )
    scheduler.step()
    with pytest.raises(ScheduleError, match="epoch=3; expected step\\(\\) without an argument"):
        scheduler.step(3)
    state = scheduler.state_dict()
    for broken, message in [
        ({**state, "samples_per_step": 0}, "samples_per_step'\\]=0"),
        ({k: v for k, v in state.items() if k != "last_epoch"}, "missing 'last_epoch'"),
        (
            {**state, "paramsched": {**state["paramsched"], "min_lr": 5.0}},
            "checkpoint rejected: min_lr=5.0",
        ),
    ]:
        with pytest.raises(ScheduleError, match=message):
            scheduler.load_state_dict(broken)
        assert scheduler.state_dict() == state and scheduler.get_last_lr() == [0.9]


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("count", [1, 512])
def test_tensor_learning_rates_take_a_fixed_number_of_ops(count):
    groups = [{"max_lr": 1e-3 * (1 + i % 3), "min_lr": 0.0} for i in range(count)]
    optimizer = adamw(groups)
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(0.0, dtype=torch.float64)
    tensors = [group["lr"] for group in optimizer.param_groups]
    schedule = Schedule(max_lr=1e-3, lr_warmup_steps=5, lr_decay_steps=50, lr_decay_style="cosine")
    scheduler = ParamScheduler(optimizer, schedule)
    reference = OptimizerParamScheduler.from_schedule(adamw(groups), schedule)
    for _ in range(10):
        reference.step()
        with CountOps() as counted:
            scheduler.step()
        assert len(counted.ops) == 3, counted.ops  # new values, their views, one foreach copy
        assert all(g["lr"] is t for g, t in zip(optimizer.param_groups, tensors))
        assert [t.item() for t in tensors] == [g["lr"] for g in reference.optimizer.param_groups]
        assert scheduler.get_last_lr() == [t.item() for t in tensors]


def compiled_run(wd_style, dynamic=None, steps=300):
    """Counts dynamo compilations of an AdamW step over `steps` scheduler steps."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=torch.tensor(0.0), weight_decay=0.1, foreach=False
    )
    rising = wd_style != "constant"
    schedule = Schedule(
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=30,
        lr_decay_steps=steps,
        lr_decay_style="cosine",
        start_wd=0.01 if rising else 0.1,
        end_wd=0.1,
        wd_incr_steps=steps,
        wd_incr_style=wd_style,
    )
    scheduler = ParamScheduler(optimizer, schedule)
    compilations = []

    def backend(graph, example_inputs):
        compilations.append(graph)
        return graph.forward

    @torch.compile(backend=backend, dynamic=dynamic)
    def optimizer_step():
        optimizer.step()

    lr = optimizer.param_groups[0]["lr"]
    x = torch.randn(3, 4)
    for _ in range(steps):
        model(x).sum().backward()
        optimizer_step()
        optimizer.zero_grad()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] is lr
    return len(compilations)


def test_compiled_step_with_tensor_lr_compiles_once():
    assert compiled_run("constant") == 1


def test_changing_float_weight_decay_with_dynamic_floats_compiles_once():
    assert compiled_run("linear", dynamic=True) == 1


def test_changing_float_weight_decay_recompiles_once_by_default():
    # Dynamo specializes on the first float, then marks it dynamic at the first change.
    assert compiled_run("linear") == 2


# ------------------------------------------------------------------ the clock


def run_core_by_hand(schedule, steps):
    """What OptimizerParamScheduler writes when the loop feeds Megatron's clock by hand."""
    core = OptimizerParamScheduler.from_schedule(adamw([{}]), schedule)
    seen = []
    for _ in range(steps):
        core.step(schedule.run.batch_size_at(core.num_steps))
        seen.append(written(core.optimizer))
    return seen, core.num_steps


@pytest.mark.parametrize("source", ["deepseek-v3", "minicpm-wsd", "llama2-7b"])
def test_the_clock_is_the_schedules_own_ramp_up_included(source):
    from paramsched.recipe import load_schedule, recipe_path

    schedule = load_schedule(recipe_path(source))
    expected, consumed = run_core_by_hand(schedule, 300)
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, schedule)
    seen = []
    for _ in range(300):
        optimizer.step()
        scheduler.step()
        seen.append(written(optimizer))
    assert seen == expected and scheduler.num_steps == consumed
    assert consumed == schedule.run.samples_at_step(300)


def test_megatron_arguments_in_iterations_advance_by_the_global_batch_size():
    import argparse

    from paramsched import from_megatron_args

    schedule = from_megatron_args(
        argparse.Namespace(
            lr=3e-4,
            min_lr=3e-5,
            train_iters=1000,
            lr_warmup_iters=10,
            lr_decay_style="cosine",
            global_batch_size=1024,
        )
    )
    scheduler = ParamScheduler(adamw([{}]), schedule)
    for _ in range(10):
        scheduler.step()
    assert scheduler.num_steps == 10 * 1024 and scheduler.get_last_lr() == [3e-4]


def in_samples(run):
    return PhaseSchedule.from_dict(
        {
            "run": run,
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "100 samples"}],
            },
        }
    )


@pytest.mark.parametrize(
    "run,samples_per_step,message",
    [
        (
            {},
            None,
            "its run has no global_batch_size, so how far one optimizer step goes is "
            "ambiguous; expected global_batch_size in the schedule's run, or "
            "samples_per_step=N",
        ),
        (
            {"global_batch_size": 8},
            1,
            "samples_per_step=1 contradicts the schedule's run, whose global_batch_size is 8",
        ),
        (
            {"global_batch_size": 8, "rampup_batch_size": [4, 4, 64]},
            8,
            "samples_per_step=8 with a run whose batch size changes",
        ),
    ],
)
def test_an_ambiguous_or_contradicting_clock_is_refused(run, samples_per_step, message):
    optimizer = adamw([{}])
    with pytest.raises(ScheduleError, match=message.replace("(", "\\(").replace(")", "\\)")):
        ParamScheduler(optimizer, in_samples(run), samples_per_step=samples_per_step)
    assert optimizer.param_groups[0]["lr"] == 0.0  # nothing written


def test_an_explicit_step_size_that_agrees_is_accepted():
    assert ParamScheduler(adamw([{}]), in_samples({}), samples_per_step=4).clock.per_step == 4
    assert (
        ParamScheduler(
            adamw([{}]), in_samples({"global_batch_size": 4}), samples_per_step=4
        ).clock.per_step
        == 4
    )


def test_step_to_goes_where_that_many_steps_go():
    from paramsched.recipe import load_schedule, recipe_path

    schedule = load_schedule(recipe_path("deepseek-v3"))
    stepped, jumped = ParamScheduler(adamw([{}]), schedule), ParamScheduler(adamw([{}]), schedule)
    for _ in range(57):
        stepped.step()
    jumped.step_to(57)
    assert jumped.state_dict() == stepped.state_dict()
    assert written(jumped.optimizer) == written(stepped.optimizer)
    jumped.step_to(3)  # backwards too: the position is absolute
    assert jumped.num_steps == schedule.run.samples_at_step(3) and jumped.last_epoch == 3
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ScheduleError, match="expected a whole number of steps >= 0"):
            jumped.step_to(bad)
        assert jumped.last_epoch == 3


def test_a_schedule_without_weight_decay_keeps_adamws():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.05)
    scheduler = ParamScheduler(
        optimizer, Schedule(max_lr=1e-3, lr_decay_steps=10, lr_decay_style="linear")
    )
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["weight_decay"] == 0.05


@pytest.mark.parametrize("policy", ["checkpoint", "override", "strict"])
def test_the_three_policies(policy, caplog):
    import logging

    def build(max_lr):
        return ParamScheduler(
            adamw([{}]),
            Schedule(max_lr=max_lr, lr_decay_steps=100, lr_decay_style="linear"),
            checkpoint_policy=policy,
        )

    source, target = build(1.0), build(2.0)
    source.step()
    state = target.state_dict()
    if policy == "strict":
        with pytest.raises(ScheduleError, match="max_lr: scheduler 2.0, checkpoint 1.0"):
            target.load_state_dict(source.state_dict())
        assert target.state_dict() == state
        return
    with caplog.at_level(logging.WARNING):
        target.load_state_dict(source.state_dict())
    assert target.schedule.max_lr == {"checkpoint": 1.0, "override": 2.0}[policy]
    assert ("max_lr: scheduler 2.0, checkpoint 1.0" in caplog.text) == (policy == "checkpoint")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"last_epoch": -2}, "state_dict\\['last_epoch'\\]=-2; expected a whole number >= -1"),
        ({"last_epoch": -1}, "'last_epoch'\\]=-1; expected _step_count = last_epoch \\+ 1"),
        ({"last_epoch": True}, "state_dict\\['last_epoch'\\]=True"),
        ({"_step_count": 9}, "expected _step_count = last_epoch \\+ 1"),
        ({"samples_per_step": "8"}, None),  # a clock written as text: another run's, warned
        ({"paramsched_format": 7}, "state_dict\\['paramsched_format'\\]=7; expected 1 or 2"),
    ],
)
def test_counters_are_checked_before_anything_changes(change, message):
    scheduler = ParamScheduler(
        adamw([{}]), Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    )
    scheduler.step()
    state = scheduler.state_dict()
    other = ParamScheduler(
        adamw([{}]), Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    )
    if message is None:
        other.load_state_dict({**state, **change})
        assert other.num_steps == 1
        return
    with pytest.raises(ScheduleError, match=message):
        other.load_state_dict({**state, **change})
    assert other.num_steps == 0 and other.last_epoch == 0


def test_an_object_that_is_not_a_torch_optimizer_is_refused_before_anything_is_written():
    optimizer = PlainOptimizer([{"lr": 7.0}])
    with pytest.raises(
        ScheduleTypeError,
        match="optimizer=.* is of type PlainOptimizer; expected a torch.optim.Optimizer",
    ):
        ParamScheduler(optimizer, Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear"))
    assert optimizer.param_groups == [{"lr": 7.0}]


def test_something_that_is_not_a_schedule_is_refused_as_a_type():
    with pytest.raises(
        ScheduleTypeError, match="schedule=.* is of type dict; expected a paramsched.Schedule"
    ):
        ParamScheduler(adamw([{}]), {"max_lr": 1.0})


def test_step_to_takes_a_numpy_integer_as_the_int_it_is():
    import numpy as np

    schedule = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    scheduler, reference = (
        ParamScheduler(adamw([{}]), schedule),
        ParamScheduler(adamw([{}]), schedule),
    )
    scheduler.step_to(np.int64(7))
    reference.step_to(7)
    assert scheduler.state_dict() == reference.state_dict()
    assert type(scheduler.last_epoch) is int
    with pytest.raises(ScheduleTypeError, match="step='3' is of type str"):
        scheduler.step_to("3")


def test_a_schedule_assigned_mid_run_runs_on_its_own_clock():
    scheduler = ParamScheduler(
        adamw([{}]), Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    )
    scheduler.step()
    scheduler.core.schedule = PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 8},
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "800 samples"}],
            },
        }
    )
    scheduler.step()
    assert scheduler.num_steps == 1 + 8
    scheduler.schedule = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    scheduler.step()
    assert scheduler.num_steps == 1 + 8 + 1
    with pytest.raises(ScheduleError, match="its run has no global_batch_size"):
        scheduler.schedule = PhaseSchedule.from_dict(
            {
                "lr": {
                    "max_lr": 1.0,
                    "phases": [{"shape": "linear", "to": "max_lr", "until": "800 samples"}],
                }
            }
        )
    assert scheduler.schedule == Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")


# ------------------------------------------- per-group overrides under the override policy


def _resumed_run(policy, order):
    """A run whose decoupled group had max_lr 1e-3, resumed by one whose group has 2e-3,
    the optimizer and the scheduler loaded in `order`; returns what each group holds
    after both loads, before any step, and the new scheduler."""

    def run(decoupled_lr):
        model = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
        optimizer = torch.optim.AdamW(
            [{"params": [model[0]]}, {"params": [model[1]], "max_lr": decoupled_lr, "min_lr": 0.0}],
            lr=0.0,
        )
        schedule = Schedule(
            max_lr=1e-2,
            min_lr=1e-3,
            lr_warmup_steps=10,
            lr_decay_steps=100,
            lr_decay_style="cosine",
        )
        return optimizer, ParamScheduler(optimizer, schedule, checkpoint_policy=policy)

    old_optimizer, old = run(1e-3)
    for _ in range(30):
        old_optimizer.step()
        old.step()
    checkpoint = saved_and_loaded(old_optimizer, old)
    optimizer, scheduler = run(2e-3)
    loads = {
        "optimizer": lambda: optimizer.load_state_dict(checkpoint["optimizer"]),
        "scheduler": lambda: scheduler.load_state_dict(checkpoint["scheduler"]),
    }
    for name in order:
        loads[name]()
    return optimizer, scheduler


@pytest.mark.parametrize(
    "order",
    [("optimizer", "scheduler"), ("scheduler", "optimizer")],
    ids=["optimizer-first", "scheduler-first"],
)
def test_the_override_policy_keeps_this_runs_per_group_overrides_in_either_order(order, caplog):
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        optimizer, scheduler = _resumed_run("override", order)
    assert (
        "max_lr=0.002 (not 0.001) replaced what the optimizer's checkpoint put back" in caplog.text
    )
    decoupled = optimizer.param_groups[1]
    assert decoupled["max_lr"] == 2e-3
    schedule = scheduler.schedule
    # Before any step: what the optimizer's next step uses is already this run's.
    assert decoupled["lr"] == schedule.lr(30, 2e-3, 0.0)
    for step in range(31, 40):
        optimizer.step()
        scheduler.step()
        assert decoupled["lr"] == schedule.lr(step, 2e-3, 0.0)
        assert optimizer.param_groups[0]["lr"] == schedule.lr(step)


@pytest.mark.parametrize(
    "order",
    [("optimizer", "scheduler"), ("scheduler", "optimizer")],
    ids=["optimizer-first", "scheduler-first"],
)
def test_the_checkpoint_policy_takes_the_checkpoints_group_values(order):
    optimizer, scheduler = _resumed_run("checkpoint", order)
    decoupled = optimizer.param_groups[1]
    assert decoupled["max_lr"] == 1e-3 and decoupled["lr"] == scheduler.schedule.lr(30, 1e-3, 0.0)
    optimizer.step()
    scheduler.step()
    assert decoupled["lr"] == scheduler.schedule.lr(31, 1e-3, 0.0)


def test_under_the_override_policy_a_change_made_in_place_is_the_users(caplog):
    optimizer = adamw([{}, {"max_lr": 1.0}])
    scheduler = ParamScheduler(
        optimizer,
        Schedule(max_lr=2.0, lr_decay_steps=10, lr_decay_style="linear"),
        checkpoint_policy="override",
    )
    optimizer.param_groups[1]["max_lr"] = 3.0  # the same dict: a deliberate change
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.step()
    assert caplog.records == [] and optimizer.param_groups[1]["lr"] == scheduler.schedule.lr(1, 3.0)


def test_an_optimizer_with_the_schedulers_hook_still_copies_and_saves():
    import copy
    import pickle

    optimizer = adamw([{}])
    scheduler = ParamScheduler(
        optimizer, Schedule(max_lr=2.0, lr_decay_steps=10, lr_decay_style="linear")
    )
    for copied in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        copied.load_state_dict(optimizer.state_dict())  # the copy's hook does nothing
    buffer = io.BytesIO()
    torch.save(optimizer, buffer)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == scheduler.schedule.lr(1)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
@pytest.mark.parametrize(
    "order",
    [("optimizer", "scheduler"), ("scheduler", "optimizer")],
    ids=["optimizer-first", "scheduler-first"],
)
def test_a_copied_scheduler_keeps_this_runs_per_group_overrides_under_the_override_policy(
    copier, order, caplog
):
    # A scheduler carried with its optimizer (mp.spawn, torch.save(scheduler), deepcopy)
    # still knows the overrides this run was built with, and still hooks the optimizer.
    import copy
    import pickle

    def run(decoupled_lr):
        optimizer = adamw([{}, {"max_lr": decoupled_lr, "min_lr": 0.0}])
        schedule = Schedule(
            max_lr=1e-2,
            min_lr=1e-3,
            lr_warmup_steps=10,
            lr_decay_steps=100,
            lr_decay_style="cosine",
        )
        return optimizer, ParamScheduler(optimizer, schedule, checkpoint_policy="override")

    old_optimizer, old = run(1e-3)
    for _ in range(30):
        old_optimizer.step()
        old.step()
    checkpoint = {"optimizer": old_optimizer.state_dict(), "scheduler": old.state_dict()}
    _, original = run(2e-3)
    scheduler = (
        copy.deepcopy(original) if copier == "deepcopy" else pickle.loads(pickle.dumps(original))
    )
    optimizer = scheduler.optimizer
    loads = {
        "optimizer": lambda: optimizer.load_state_dict(checkpoint["optimizer"]),
        "scheduler": lambda: scheduler.load_state_dict(checkpoint["scheduler"]),
    }
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        for name in order:
            loads[name]()
    assert "max_lr=0.002 (not 0.001)" in caplog.text
    decoupled = optimizer.param_groups[1]
    assert decoupled["max_lr"] == 2e-3
    assert decoupled["lr"] == scheduler.schedule.lr(30, 2e-3, 0.0)  # before any step
    optimizer.step()
    scheduler.step()
    assert decoupled["lr"] == scheduler.schedule.lr(31, 2e-3, 0.0)


def test_a_parents_checkpoint_loads_into_a_longer_branch_without_a_clock_warning(caplog):
    # A branch that extends the run (total=) steps by the same batch sizes: its clock is
    # the parent's, and no WARNING says otherwise.
    from paramsched import Run

    parent = Schedule(
        max_lr=1.0,
        min_lr=0.1,
        lr_warmup_steps=80,
        lr_decay_steps=800,
        lr_decay_style="cosine",
        run=Run(global_batch_size=8, rampup_batch_size=[2, 2, 64], total="800 samples"),
    )
    branch = parent.branch(
        "50 steps", [{"shape": "linear", "to": "min_lr", "until": "100%"}], total="1200 samples"
    )
    source = ParamScheduler(adamw([{}]), parent)
    for _ in range(30):
        source.step()
    target, reference = ParamScheduler(adamw([{}]), branch), ParamScheduler(adamw([{}]), branch)
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        target.load_state_dict(source.state_dict())
    assert "clock" not in caplog.text
    for _ in range(30):
        reference.step()
    for _ in range(40):
        target.step()
        reference.step()
        assert written(target.optimizer) == written(reference.optimizer)
    other = ParamScheduler(
        adamw([{}]),
        parent.branch("50 steps", [{"shape": "linear", "to": "min_lr", "until": "100%"}]),
    )
    state = {**source.state_dict(), "samples_per_step": '{"run": {"global_batch_size": 4}}'}
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        other.load_state_dict(state)
    assert "the checkpoint's clock advanced by another" in caplog.text  # still warned


def test_a_branch_of_a_schedule_without_a_run_counts_optimizer_steps_as_its_parent():
    parent = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="linear")
    branch = parent.branch(50, [{"shape": "linear", "to": 0.25, "until": "60 steps"}])
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, branch)
    for step in range(1, 70):
        optimizer.step()
        scheduler.step()
        assert scheduler.num_steps == step
        assert optimizer.param_groups[0]["lr"] == branch.lr(step)
    assert branch.lr(50) == parent.lr(50) and branch.lr(60) == 0.25


TOKEN_RUN = PhaseSchedule.from_dict(
    {
        "run": {"clock": "tokens", "total": "100 tokens"},
        "lr": {"max_lr": 1.0, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
    }
)


@pytest.mark.parametrize(
    "recorded",
    [[], [0], [0, 0], [3], [0, 5]],
    ids=["none", "zero", "zeros", "some", "zero-then-some"],
)
def test_tokens_recorded_for_the_coming_step_survive_a_checkpoint(recorded):
    # A checkpoint taken between add_tokens and the framework's step() (a micro-batch of
    # padding only, under gradient accumulation) resumes to the same step: zero tokens
    # recorded is a step of zero tokens, and nothing recorded is still refused.
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, TOKEN_RUN)
    scheduler.add_tokens(7)
    scheduler.step()
    for tokens in recorded:
        scheduler.add_tokens(tokens)
    state = saved_and_loaded(optimizer, scheduler)["scheduler"]
    resumed = ParamScheduler(adamw([{}]), TOKEN_RUN)
    resumed.load_state_dict(state)
    assert resumed.pending_tokens == scheduler.pending_tokens == sum(recorded)
    for run in (scheduler, resumed):
        if recorded:
            run.step()
            assert run.num_steps == 7 + sum(recorded)
        else:
            with pytest.raises(ScheduleError, match="add_tokens"):
                run.step()


def test_a_checkpoint_saying_no_tokens_were_recorded_but_holding_some_is_refused():
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, TOKEN_RUN)
    state = {**scheduler.state_dict(), "pending_tokens": 4, "tokens_recorded": False}
    with pytest.raises(ScheduleError, match="tokens_recorded"):
        ParamScheduler(adamw([{}]), TOKEN_RUN).load_state_dict(state)


@pytest.mark.parametrize("before", [None, 3], ids=["nothing-recorded", "three-recorded"])
def test_tokens_refused_for_taking_the_clock_past_its_end_leave_the_recorded_ones(before):
    # add_tokens(10**18) was accepted, and every step() after it was refused, with nothing
    # to clear it: the run could not go on. It is refused, and what was recorded is kept.
    scheduler = ParamScheduler(adamw([{}]), TOKEN_RUN)
    scheduler.step(tokens=100)
    if before is not None:
        scheduler.add_tokens(before)
    with pytest.raises(ScheduleError) as refused:
        scheduler.add_tokens(10**18)
    room = 10**18 - 100 - (before or 0)
    assert str(refused.value) == (
        f"add_tokens({10**18}) takes the coming step from 100 to {10**18 + 100 + (before or 0)} "
        f"tokens; expected at most {room} more tokens for it (a position of at most 1e18, "
        "beyond any run)"
    )
    assert scheduler.pending_tokens == (before or 0)
    assert scheduler.state_dict()["tokens_recorded"] is (before is not None)
    scheduler.add_tokens(room)  # exactly to the end is a position like any other
    scheduler.step()
    assert scheduler.num_steps == 10**18
    assert scheduler.get_last_lr() == [TOKEN_RUN.lr(10**18)]


# ------------------------------------------------ torch's schedulers: initial_lr, SequentialLR

FROM_ZERO = Schedule(
    init_lr=0.0,
    max_lr=1.0,
    min_lr=0.1,
    lr_warmup_steps=4,
    lr_decay_steps=20,
    lr_decay_style="cosine",
    start_wd=0.01,
    end_wd=0.1,
    wd_incr_steps=20,
    wd_incr_style="linear",
)
OWN_LRS = (0.5, 0.2)  # what each group of `two_groups` holds before any scheduler


def TENSOR(value):
    return torch.tensor(value, dtype=torch.float64)


def two_groups(lr=float):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return torch.optim.AdamW(
        [
            {"params": [model.weight], "lr": lr(OWN_LRS[0])},
            {"params": [model.bias], "lr": lr(OWN_LRS[1]), "max_lr": 2.0, "wd_mult": 0.5},
        ],
        foreach=False,
    )


def with_warmup(optimizer, milestone=5):
    """The order docs/reference/api.md gives: ParamScheduler first, torch's LinearLR warmup after it, then
    ParamScheduler from the milestone on."""
    ours = ParamScheduler(optimizer, FROM_ZERO)
    warm = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=milestone)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, ours], [milestone])


def stepped_values(optimizer, scheduler, steps) -> list:
    """Each group's (lr, weight_decay) as each optimizer step used them."""
    used = []
    for _ in range(steps):
        used.append([(float(g["lr"]), g["weight_decay"]) for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return used


@pytest.mark.parametrize("lr", [float, TENSOR], ids=["float", "tensor"])
def test_a_warmup_in_a_sequential_lr_starts_from_the_optimizers_lr(lr):
    # ParamScheduler recorded initial_lr after writing step 0, so a LinearLR built after
    # it warmed up from the schedule's first value, 0: the run trained at lr 0.
    optimizer = two_groups(lr)
    assert [float(g["lr"]) for g in optimizer.param_groups] == list(OWN_LRS)
    used = stepped_values(optimizer, with_warmup(optimizer), 12)
    alone = two_groups(lr)  # the warmup on its own, on the optimizer's rates
    warm = torch.optim.lr_scheduler.LinearLR(alone, start_factor=0.1, total_iters=5)
    warmup = []
    for _ in range(5):
        warmup.append([float(g["lr"]) for g in alone.param_groups])
        alone.step()
        warm.step()
    assert [[lr for lr, _ in step] for step in used[:5]] == warmup
    assert warmup[0] == [own * 0.1 for own in OWN_LRS]
    # then the schedule from its first position, each group with its overrides; its weight
    # decay from the start (written at construction, which LinearLR leaves alone)
    for k, step in enumerate(used):
        position = max(0, k - 5)
        lrs = [FROM_ZERO.lr(position), FROM_ZERO.lr(position, max_lr=2.0)]
        if k >= 5:
            assert [lr for lr, _ in step] == lrs, k
        assert [wd for _, wd in step] == [FROM_ZERO.wd(position), FROM_ZERO.wd(position) * 0.5], k


@pytest.mark.parametrize("lr", [float, TENSOR], ids=["float", "tensor"])
def test_initial_lr_is_what_the_group_held_before_any_scheduler(lr):
    optimizer = two_groups(lr)
    scheduler = ParamScheduler(optimizer, FROM_ZERO)
    assert [float(g["lr"]) for g in optimizer.param_groups] == [0.0, 0.0]  # step 0 written
    assert [float(g["initial_lr"]) for g in optimizer.param_groups] == list(OWN_LRS)
    if lr is TENSOR:  # a copy, not the tensor the schedule writes into
        assert all(g["initial_lr"] is not g["lr"] for g in optimizer.param_groups)
    assert scheduler.base_lrs == [g["initial_lr"] for g in optimizer.param_groups]
    # A scheduler built after it takes its base from the optimizer's rates, as after any
    # other torch scheduler; in a ChainedScheduler it then writes over ParamScheduler's.
    later = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5**epoch)
    assert [float(b) for b in later.base_lrs] == list(OWN_LRS)
    chained = torch.optim.lr_scheduler.ChainedScheduler([scheduler, later])
    used = stepped_values(optimizer, chained, 4)
    assert [[lr for lr, _ in step] for step in used[1:]] == [
        [own * 0.5**k for own in OWN_LRS] for k in range(1, 4)
    ]
    # A scheduler built before it set initial_lr; ParamScheduler leaves it as it is.
    optimizer = two_groups(lr)
    first = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=0.5, total_iters=2)
    ParamScheduler(optimizer, FROM_ZERO)
    assert [float(g["initial_lr"]) for g in optimizer.param_groups] == list(OWN_LRS)
    assert [float(b) for b in first.base_lrs] == list(OWN_LRS)


@pytest.mark.parametrize("order", ["optimizer-first", "scheduler-first"])
@pytest.mark.parametrize("saved_at", [0, 3, 5, 8], ids=lambda n: f"after-{n}")
def test_a_sequential_lr_resumes_exactly_before_and_after_the_milestone(saved_at, order):
    # ParamScheduler's state inside SequentialLR's before the milestone (last_epoch -1,
    # its first step undone) was refused: the run was lost. It loads, and loading keeps
    # the warmup's lr in the groups (ParamScheduler's write of its own, from the load or
    # from the optimizer's load hook, would replace it).
    optimizer = two_groups()
    scheduler = with_warmup(optimizer)
    whole = stepped_values(optimizer, scheduler, 14)
    optimizer = two_groups()
    scheduler = with_warmup(optimizer)
    stepped_values(optimizer, scheduler, saved_at)
    state = saved_and_loaded(optimizer, scheduler)
    assert state["scheduler"]["_schedulers"][1]["last_epoch"] == max(saved_at - 5, -1)
    resumed_optimizer = two_groups()
    resumed = with_warmup(resumed_optimizer)
    loads = [
        lambda: resumed_optimizer.load_state_dict(state["optimizer"]),
        lambda: resumed.load_state_dict(state["scheduler"]),
    ]
    for load in loads if order == "optimizer-first" else loads[::-1]:
        load()
    assert stepped_values(resumed_optimizer, resumed, 14 - saved_at) == whole[saved_at:]


def test_a_not_started_state_must_have_taken_its_first_step_only():
    optimizer = two_groups()
    state = {**ParamScheduler(optimizer, FROM_ZERO).state_dict(), "last_epoch": -1}
    assert state["_step_count"] == 1
    ParamScheduler(two_groups(), FROM_ZERO).load_state_dict(state)  # SequentialLR's undo
    for last_epoch, step_count, message in [
        (-1, 0, "'_step_count']=0 with state_dict['last_epoch']=-1; expected _step_count"),
        (-1, 2, "'_step_count']=2 with state_dict['last_epoch']=-1; expected _step_count"),
        (-2, 1, "'last_epoch']=-2; expected a whole number >= -1"),
    ]:
        bad = {**state, "last_epoch": last_epoch, "_step_count": step_count}
        with pytest.raises(ScheduleError, match=re.escape(message)):
            ParamScheduler(two_groups(), FROM_ZERO).load_state_dict(bad)


def test_an_old_pickle_with_last_epoch_in_its_dict_loads():
    import pickle

    optimizer = two_groups()
    scheduler = ParamScheduler(optimizer, FROM_ZERO)
    optimizer.step()
    scheduler.step()
    state = dict(scheduler.__dict__)
    state["last_epoch"] = state.pop("_last_epoch")
    old = ParamScheduler.__new__(ParamScheduler)
    old.__setstate__(state)
    copy = pickle.loads(pickle.dumps(old))
    assert copy.last_epoch == 1 and copy.core._keeps_lr is False
    copy.step()
    assert copy.last_epoch == 2 and copy.num_steps == 2


# ------------------------------------------------ metrics(): what the optimizer used

WITH_VALUES = PhaseSchedule.from_dict(
    {
        "run": {"global_batch_size": 1},  # a step is a sample
        "lr": {
            "max_lr": 1.0,
            "min_lr": 0.1,
            "phases": [
                {"shape": "linear", "to": "max_lr", "until": "4 samples"},
                {"shape": "cosine", "to": "min_lr", "until": "40 samples"},
            ],
        },
        "wd": {"start_wd": 0.01, "end_wd": 0.1, "style": "linear", "until": "40 samples"},
        "group": {
            "betas[1]": {
                "start": 0.95,
                "end": 0.99,
                "phases": [{"shape": "linear", "to": "end", "until": "40 samples"}],
            },
            "eps": {
                "start": 1e-8,
                "end": 1e-6,
                "phases": [{"shape": "linear", "to": "end", "until": "40 samples"}],
            },
        },
        "loop": {
            "grad_clip": {
                "start": 0.5,
                "end": 1.0,
                "phases": [{"shape": "linear", "to": "end", "until": "40 samples"}],
            }
        },
    }
)


def as_used(optimizer) -> dict:
    """What each group holds, named as metrics() names it (tensors read as floats)."""
    found = {}
    for number, group in enumerate(optimizer.param_groups):
        name = group.get("name", number)
        found[f"lr/{name}"] = float(group["lr"])
        found[f"weight_decay/{name}"] = float(group["weight_decay"])
        if "eps" in group:
            found[f"betas[1]/{name}"] = float(group["betas"][1])
            found[f"eps/{name}"] = float(group["eps"])
    return found


def test_metrics_report_the_rate_a_chained_step_lr_left_for_the_step():
    # docs/reference/api.md's ChainedScheduler([ParamScheduler, StepLR]): the optimizer stepped at 0.5
    # and metrics() said 1.0, the scheduled rate.
    optimizer = torch.optim.SGD(torch.nn.Linear(4, 4).parameters(), lr=1.0)
    flat = Schedule(max_lr=1.0, lr_decay_steps=1000, lr_decay_style="constant")
    ours = ParamScheduler(optimizer, flat)
    chained = torch.optim.lr_scheduler.ChainedScheduler(
        [ours, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]
    )
    reported, used = [], []
    for _ in range(4):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        chained.step()
        reported.append(ours.metrics()["lr/0"])
    assert used == [1.0, 0.5, 0.5, 0.5] and reported == used


@pytest.mark.parametrize(
    "lr", [float, lambda v: torch.tensor(v, dtype=torch.float32)], ids=["float", "float32-tensor"]
)
def test_metrics_report_every_value_the_optimizer_held_as_it_stepped(lr):
    # Whoever set them: ReduceLROnPlateau, a hand-written change of any value, after the
    # scheduler's step and before the optimizer's (a float32 tensor: its rounding).
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(
        [
            {"params": [model.weight], "name": "w", "lr": lr(0.0)},
            {"params": [model.bias], "max_lr": 2.0, "wd_mult": 0.5, "lr": lr(0.0)},
        ],
        foreach=False,
    )
    scheduler = ParamScheduler(optimizer, WITH_VALUES)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.25, patience=0)
    history = []
    for step in range(12):
        if step == 3:
            optimizer.param_groups[1]["lr"] = lr(0.375)  # replaced: the group's own
        if step == 5:
            group = optimizer.param_groups[0]
            group["betas"] = (group["betas"][0], 0.5)
            group["eps"], group["weight_decay"] = 0.25, 0.125
        if step in (7, 8):
            plateau.step(1.0)  # no improvement from 8 on: every lr times 0.25
        history.append(used := as_used(optimizer))
        model(torch.ones(2)).sum().backward()
        optimizer.step()
        scheduler.step()
        metrics = scheduler.metrics()
        assert {k: metrics[k] for k in used} == used, step
        assert metrics["grad_clip"] == WITH_VALUES.value("grad_clip", step)
        assert metrics["batch_size"] == 1
    assert (history[3]["lr/1"], history[5]["betas[1]/w"], history[5]["eps/w"]) == (0.375, 0.5, 0.25)
    if lr is float:  # the plateau's rate at step 8 (no improvement since 7), not the schedule's
        assert history[8]["lr/w"] == WITH_VALUES.lr(8) * 0.25


def test_metrics_of_a_step_the_optimizer_skipped_are_the_scheduled_ones_said_once(caplog):
    # Gradient scaling skips the optimizer's step when a gradient is not finite; the
    # scheduler still steps. Nothing was used: the scheduled values, and one WARNING.
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), foreach=False)
    scheduler = ParamScheduler(optimizer, WITH_VALUES)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    scheduled = []
    for step in range(6):
        scheduled.append(as_used(optimizer))
        optimizer.param_groups[0]["lr"] = 0.5  # what a step would use, had it stepped
        finite = step % 2 == 1
        loss = model(torch.ones(2)).sum() * (1.0 if finite else float("inf"))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        with caplog.at_level(logging.WARNING, logger="paramsched"):
            scheduler.step()
            metrics = scheduler.metrics()
        assert metrics["lr/0"] == (0.5 if finite else WITH_VALUES.lr(step)), step
        assert metrics["betas[1]/0"] == scheduled[step]["betas[1]/0"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "metrics(): the optimizer did not step since the scheduler's step before this one (an "
        "accumulated or skipped step); reporting the values scheduled for it (said once)"
    ]


def test_metrics_report_what_a_compiled_optimizer_step_used():
    # The hook that records what each step holds runs outside the compiled graph.
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=torch.tensor(0.0), foreach=False)
    scheduler = ParamScheduler(optimizer, WITH_VALUES)

    @torch.compile(backend="eager")
    def optimizer_step():
        optimizer.step()

    for step in range(6):
        optimizer.param_groups[0]["weight_decay"] = 0.25 * step
        used = as_used(optimizer)
        model(torch.ones(2)).sum().backward()
        optimizer_step()
        scheduler.step()
        assert {k: scheduler.metrics()[k] for k in used} == used, step


@pytest.mark.parametrize("how", ["pickle", "state_dict"])
def test_metrics_after_a_copy_or_a_resume_report_what_the_optimizer_used(how):
    import pickle

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), foreach=False)
    scheduler = ParamScheduler(optimizer, WITH_VALUES)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    if how == "pickle":
        optimizer, scheduler = pickle.loads(pickle.dumps((optimizer, scheduler)))
    else:
        state = saved_and_loaded(optimizer, scheduler)
        optimizer = torch.optim.Adam(model.parameters(), foreach=False)
        scheduler = ParamScheduler(optimizer, WITH_VALUES)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    with pytest.raises(ScheduleError, match="no step has been taken"):
        scheduler.metrics()
    optimizer.param_groups[0]["lr"] = 0.625  # not the scheduled 0.75
    optimizer.step()
    scheduler.step()
    assert scheduler.metrics()["lr/0"] == 0.625
    assert scheduler.metrics()["betas[1]/0"] == WITH_VALUES.value("betas[1]", 3)
