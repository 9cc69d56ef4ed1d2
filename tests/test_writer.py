"""Tests for paramsched.runtime._writer: what happens when a group's lr or weight_decay object is
replaced between steps, and schedules without a weight-decay part."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import re

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
    with pytest.raises(
        ScheduleError,
        match=rf"param_groups\[1\] has {key}=0.0 but the schedule "
        "has no weight-decay part",
    ):
        OptimizerParamScheduler.from_schedule(optimizer, schedule)
    assert "lr" not in optimizer.param_groups[0]  # nothing written


def test_a_refused_step_keeps_a_tensor_the_user_put_in_another_group():
    s = scheduler([{}, {}, {}])
    s.step(3)
    tensor = torch.tensor(0.5, dtype=torch.float64)
    s.optimizer.param_groups[1]["lr"] = tensor
    s.optimizer.param_groups[2]["max_lr"] = -1.0
    with pytest.raises(ScheduleError, match=r"param_groups\[2\]\['max_lr'\]=-1.0"):
        s.step(1)
    assert s.optimizer.param_groups[1]["lr"] is tensor and tensor.item() == 0.5
    assert s.num_steps == 3 and written(s.optimizer)[0] == reference(3)


@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.bool, torch.complex64], ids=["int64", "bool", "complex64"]
)
def test_a_tensor_that_cannot_hold_the_value_is_refused(dtype):
    tensor = torch.tensor(0, dtype=dtype)
    with pytest.raises(
        ScheduleError,
        match=rf"param_groups\[0\]\['lr'\] is a tensor of "
        rf"dtype {dtype}; expected a floating-point",
    ):
        scheduler([{"lr": tensor}])
    assert tensor.item() == 0


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["float32", "bfloat16", "float16"]
)
def test_a_narrower_float_tensor_gets_the_value_rounded_to_its_dtype(dtype):
    s = scheduler([{"lr": torch.tensor(0.0, dtype=dtype)}])
    s.step(5)
    lr = s.optimizer.param_groups[0]["lr"]
    assert lr.dtype == dtype and lr == torch.tensor(reference(5)[0], dtype=dtype)


def test_a_tensor_that_requires_grad_is_refused_and_nothing_changes():
    s = scheduler([{}])
    s.step(5)
    tensor = torch.tensor(0.5, requires_grad=True)
    s.optimizer.param_groups[0]["lr"] = tensor
    with pytest.raises(ScheduleError, match=r"\['lr'\] is a tensor that requires grad"):
        s.step(1)
    assert s.num_steps == 5 and tensor.item() == 0.5


@pytest.mark.parametrize("same_group", [True, False], ids=["one group", "two groups"])
def test_one_tensor_as_lr_and_weight_decay_is_refused(same_group):
    tensor = torch.tensor(0.0, dtype=torch.float64)
    groups = (
        [{"lr": tensor, "weight_decay": tensor}]
        if same_group
        else [{"lr": tensor}, {"weight_decay": tensor}]
    )
    with pytest.raises(
        ScheduleError,
        match=r"\['lr'\] and optimizer.param_groups\[\d\]"
        r"\['weight_decay'\] are one tensor",
    ):
        scheduler(groups)
    assert tensor.item() == 0.0


def test_last_values_are_what_was_written_until_a_new_schedule_steps():
    optimizer = PlainOptimizer([{"weight_decay": 0.05}])
    s = OptimizerParamScheduler.from_schedule(
        optimizer, Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear")
    )
    s.step(2)
    s.schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear", start_wd=0.3)
    assert s.last_values() == [(0.8, None)] and written(optimizer) == [(0.8, 0.05)]
    s.step(1)
    assert s.last_values() == [(0.7, 0.3)] == written(optimizer)


@pytest.mark.parametrize("value", [[1.0], {"x": 1}], ids=["list", "dict"])
def test_an_override_that_is_not_a_number_is_refused_and_nothing_changes(value):
    s = scheduler([{}, {}, {}])
    s.step(5)
    before = written(s.optimizer)
    s.optimizer.param_groups[2]["max_lr"] = value
    with pytest.raises(ScheduleError, match=r"param_groups\[2\]\['max_lr'\]=.* is of type "):
        s.step(10)
    assert written(s.optimizer) == before and s.num_steps == 5


def test_a_zero_dimensional_array_override_is_refused_by_name():
    import numpy as np

    with pytest.raises(
        ScheduleError,
        match=r"param_groups\[1\]\['wd_mult'\]=array\(0.5\) is "
        "of type ndarray; expected a number",
    ):
        scheduler([{}, {"wd_mult": np.array(0.5)}])


# ------------------------------------------------ scheduled group values in tensors


def value_schedule():
    from paramsched import PhaseSchedule

    return PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "10 samples"}],
            },
            "group": {
                "betas[1]": {
                    "start": 0.9,
                    "end": 0.99,
                    "phases": [{"shape": "linear", "to": "end", "until": "10 samples"}],
                }
            },
        }
    )


@pytest.mark.parametrize(
    "make,message",
    [
        # The optimizer's lr became the value of betas[1], silently.
        (
            lambda t: [{"lr": t, "betas": (0.9, t)}],
            "optimizer.param_groups[0]['betas[1]'] and optimizer.param_groups[0]['lr'] are one tensor",
        ),
        (
            lambda t: [{"betas": (0.9, 0.5)}, {"weight_decay": t, "betas": (0.9, t)}],
            "optimizer.param_groups[1]['betas[1]'] and optimizer.param_groups[1]['weight_decay']",
        ),
        # betas[0] changed with betas[1]: the schedule leaves it untouched.
        (
            lambda t: [{"betas": (t, t)}],
            "optimizer.param_groups[0]['betas[1]'] and optimizer.param_groups[0]['betas[0]']",
        ),
        (
            lambda t: [{"betas": (0.9, t)}, {"betas": (t, 0.5)}],
            "optimizer.param_groups[0]['betas[1]'] and optimizer.param_groups[1]['betas[0]']",
        ),
    ],
    ids=["lr", "weight_decay", "betas[0]", "another group's betas[0]"],
)
def test_a_value_tensor_held_as_something_else_is_refused_and_nothing_is_written(make, message):
    tensor = torch.tensor(0.5, dtype=torch.float64)
    groups = make(tensor)
    with pytest.raises(ScheduleError, match=re.escape(message)):
        OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), value_schedule())
    assert tensor.item() == 0.5


def test_one_tensor_for_two_scheduled_components_names_both():
    from paramsched import PhaseSchedule

    data = value_schedule().to_dict()
    data["group"]["betas[0]"] = {
        "start": 0.8,
        "phases": [{"shape": "constant", "until": "1 samples"}],
    }
    tensor = torch.tensor(0.5, dtype=torch.float64)
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            "optimizer.param_groups[0]['betas[0]'] and optimizer.param_groups[0]['betas[1]'] "
            "are one tensor"
        ),
    ):  # it said "param_groups[0] and [0] share one tensor"
        OptimizerParamScheduler.from_schedule(
            PlainOptimizer([{"betas": (tensor, tensor)}]), PhaseSchedule.from_dict(data)
        )


def test_a_misspelt_override_of_a_value_is_refused_not_ignored():
    groups = [{"betas": (0.9, 0.5)}, {"betas": (0.9, 0.5), "betas[1].ned": 0.999}]
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            "optimizer.param_groups[1] has 'betas[1].ned', which names no value of "
            "[group.betas[1]]; expected one of 'betas[1].start', 'betas[1].end'"
        ),
    ):
        OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), value_schedule())
    groups[1]["betas[1].end"] = groups[1].pop("betas[1].ned")
    scheduler = OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), value_schedule())
    scheduler.step(5)
    assert scheduler.optimizer.param_groups[1]["betas"][1] == scheduler.schedule.value(
        "betas[1]", 5, end=0.999
    )


def test_an_override_of_a_value_not_scheduled_is_said_at_warning(caplog):
    groups = [
        {"betas": (0.9, 0.5), "betas[0].end": 0.8},
        {"betas": (0.9, 0.5), "momentum.start": 0.9},
    ]
    with caplog.at_level("WARNING", logger="paramsched"):
        scheduler = OptimizerParamScheduler.from_schedule(PlainOptimizer(groups), value_schedule())
        scheduler.step(3)
        scheduler.step(3)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "optimizer.param_groups[0]['betas[0].end'], optimizer.param_groups[1]"
        "['momentum.start']: overrides of values not scheduled do nothing; "
        "expected its [group] values ('betas[1]')"
    ]


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["float32", "bfloat16", "float16"]
)
def test_metrics_report_what_a_narrower_tensor_held_for_the_step(dtype):
    # metrics() reported the float64 value the schedule computed, while the optimizer
    # stepped with its float32 (bfloat16, float16) rounding held in the tensor.
    from paramsched import PhaseSchedule

    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 3e-4,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "7 samples"}],
            },
            "wd": {"start_wd": 0.01, "end_wd": 0.1, "style": "cosine", "until": "9 samples"},
            "group": {
                "betas[1]": {
                    "start": 0.95,
                    "end": 0.99,
                    "phases": [{"shape": "linear", "to": "end", "until": "11 samples"}],
                }
            },
        }
    )
    group = {
        "lr": torch.tensor(0.0, dtype=dtype),
        "weight_decay": torch.tensor(0.0, dtype=dtype),
        "betas": (0.9, torch.tensor(0.0, dtype=dtype)),
    }
    optimizer = PlainOptimizer([group])
    s = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    for _ in range(12):
        held = optimizer.param_groups[0]
        used = {
            "lr/0": held["lr"].item(),
            "weight_decay/0": held["weight_decay"].item(),
            "betas[1]/0": held["betas"][1].item(),
        }
        s.step(1)
        assert s.metrics() == used, s.num_steps
