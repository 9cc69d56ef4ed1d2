"""Tests for paramsched.torch: the LRScheduler, tensor learning rates, torch.compile."""

from __future__ import annotations

import io
import random

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import random_config, random_groups, written
from paramsched import OptimizerParamScheduler, PhaseSchedule, Schedule, ScheduleError
from paramsched.torch import ParamScheduler


def adamw(groups, lr=0.0):
    torch.manual_seed(0)
    return torch.optim.AdamW([{**{k: v for k, v in g.items() if k != "params"},
                               "params": [torch.nn.Parameter(torch.randn(2))]} for g in groups],
                             lr=lr)



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
    schedule = Schedule(max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=7.5, lr_decay_steps=90,
                        lr_decay_style="WSD", wsd_decay_steps=30, lr_wsd_decay_style="minus_sqrt",
                        start_wd=0.0, end_wd=0.1, wd_incr_steps=90, wd_incr_style="cosine")
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
    buffer = io.BytesIO()
    torch.save({"optimizer": first_optimizer.state_dict(), "scheduler": first.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
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
    schedule = PhaseSchedule.from_dict({"lr": {"max_lr": 1.0, "phases": [
        {"shape": "linear", "to": "max_lr", "until": "8 samples"},
        {"shape": "cosine", "to": 0.0, "until": "24 samples"}]}})
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, schedule, samples_per_step=4)
    lrs = []
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert lrs == [schedule.lr(4 * k) for k in range(1, 7)]


@pytest.mark.parametrize("value,message", [
    (0, "samples_per_step=0; expected a number > 0"), (-2, "samples_per_step=-2"),
    (float("nan"), "samples_per_step=nan is not finite"), ("8", "samples_per_step='8' is of type str"),
])
def test_bad_samples_per_step(value, message):
    with pytest.raises(ScheduleError, match=message):
        ParamScheduler(adamw([{}]), Schedule(max_lr=1.0, lr_decay_steps=10,
                                             lr_decay_style="linear"), samples_per_step=value)


def test_bad_calls_and_checkpoints_change_nothing():
    optimizer = adamw([{}])
    scheduler = ParamScheduler(optimizer, Schedule(max_lr=1.0, lr_decay_steps=10,
                                                   lr_decay_style="linear"))
    scheduler.step()
    with pytest.raises(ScheduleError, match="epoch=3; expected step\\(\\) without an argument"):
        scheduler.step(3)
    state = scheduler.state_dict()
    for broken, message in [({**state, "samples_per_step": 0}, "samples_per_step'\\]=0"),
                            ({k: v for k, v in state.items() if k != "last_epoch"},
                             "missing 'last_epoch'"),
                            ({**state, "paramsched": {**state["paramsched"], "min_lr": 5.0}},
                             "checkpoint rejected: min_lr=5.0")]:
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
    optimizer = torch.optim.AdamW(model.parameters(), lr=torch.tensor(0.0), weight_decay=0.1,
                                  foreach=False)
    rising = wd_style != "constant"
    schedule = Schedule(max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=30, lr_decay_steps=steps,
                        lr_decay_style="cosine", start_wd=0.01 if rising else 0.1, end_wd=0.1,
                        wd_incr_steps=steps, wd_incr_style=wd_style)
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
