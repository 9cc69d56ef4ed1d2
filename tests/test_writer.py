"""Tests for paramsched._writer: what happens when a group's lr or weight_decay object is
replaced between steps, and schedules without a weight-decay part."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

from conftest import MEGATRON_KWARGS, PlainOptimizer, written
from paramsched import OptimizerParamScheduler, Schedule, ScheduleError

pytestmark = pytest.mark.torch


def scheduler(groups):
    return OptimizerParamScheduler(PlainOptimizer(groups), **MEGATRON_KWARGS)


def reference(steps):
    """What a group without overrides holds after `steps` steps."""
    s = scheduler([{}])
    s.step(steps)
    return written(s.optimizer)[0]


def test_a_replaced_lr_tensor_is_updated_in_place_from_then_on():
    s = scheduler([{"lr": torch.tensor(0.0, dtype=torch.float64)}])
    s.step(5)
    new = torch.tensor(123.0, dtype=torch.float64)
    s.optimizer.param_groups[0]["lr"] = new
    s.step(10)
    assert s.optimizer.param_groups[0]["lr"] is new and new.item() == reference(15)[0]
    s.step(20)
    assert s.optimizer.param_groups[0]["lr"] is new and new.item() == reference(35)[0]


def test_a_float_replacing_a_tensor_gets_floats():
    s = scheduler([{"lr": torch.tensor(0.0, dtype=torch.float64)}])
    s.step(5)
    s.optimizer.param_groups[0]["lr"] = 7.0
    s.step(10)
    assert type(s.optimizer.param_groups[0]["lr"]) is float
    assert written(s.optimizer) == [reference(15)]


@pytest.mark.parametrize("key", ["lr", "weight_decay"])
def test_a_tensor_replacing_a_float_is_kept_and_updated_in_place(key):
    s = scheduler([{}, {"wd_mult": 0.0}])
    s.step(5)
    tensor = torch.tensor(9.0, dtype=torch.float64)
    s.optimizer.param_groups[0][key] = tensor
    for more in (10, 20):
        s.step(more)
        assert s.optimizer.param_groups[0][key] is tensor
    assert written(s.optimizer)[0] == reference(35)
    assert type(s.optimizer.param_groups[1]["lr"]) is float


def test_a_removed_key_is_written_again():
    s = scheduler([{}])
    s.step(5)
    del s.optimizer.param_groups[0]["lr"]
    s.step(1)
    assert written(s.optimizer) == [reference(6)]


def test_a_schedule_without_weight_decay_leaves_the_optimizers():
    schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear")
    optimizer = PlainOptimizer([{"weight_decay": 0.05}, {"weight_decay": 0.0}])
    s = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    s.step(4)
    assert written(optimizer) == [(0.6, 0.05), (0.6, 0.0)]
    assert s.last_values() == [(0.6, None), (0.6, None)]
    with pytest.raises(ScheduleError, match="has no weight-decay part"):
        s.get_wd()


@pytest.mark.parametrize("key", ["wd_mult", "start_wd", "end_wd"])
def test_a_weight_decay_override_without_weight_decay_is_refused(key):
    schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear")
    optimizer = PlainOptimizer([{}, {key: 0.0}])
    with pytest.raises(ScheduleError, match=rf"param_groups\[1\] has {key}=0.0 but the schedule "
                                            "has no weight-decay part"):
        OptimizerParamScheduler.from_schedule(optimizer, schedule)
    assert "lr" not in optimizer.param_groups[0]  # nothing written
