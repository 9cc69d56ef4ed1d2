"""Tests for paramsched.errors: the domain every number is checked against at the door."""

from __future__ import annotations

import enum
from fractions import Fraction

import numpy as np
import pytest

from paramsched.errors import (
    LIMIT,
    ScheduleError,
    ScheduleTypeError,
    check_choice,
    check_number,
    check_rate,
)


@pytest.mark.parametrize(
    "value,expected",
    [
        (0, 0),
        (10**18, 10**18),
        (1e18, 1e18),
        (np.int64(7), 7),
        (np.float32(0.5), 0.5),
        (-3, -3),
        (2.5, 2.5),
    ],
    ids=["zero", "limit-int", "limit-float", "numpy-int", "numpy-float", "negative", "float"],
)
def test_numbers_in_the_domain_come_back_as_builtins(value, expected):
    result = check_number("x", value)
    assert result == expected and type(result) in (int, float)


@pytest.mark.parametrize(
    "value,error,message",
    [
        (10**400, ScheduleError, "x=an integer of 401 digits is beyond any run; expected at most"),
        (10**5000 - 1, ScheduleError, "x=an integer of 5000 digits is beyond any run"),
        (Fraction(10**400, 3), ScheduleError, "x is beyond any run; expected at most 1e18 in size"),
        (10**18 + 1, ScheduleError, "x=1000000000000000001 is beyond any run"),
        (1e308, ScheduleError, "x=1e\\+308 is beyond any run"),
        (-1e19, ScheduleError, "x=-1e\\+19 is beyond any run"),
        (float("inf"), ScheduleError, "x=inf is not finite"),
        (float("nan"), ScheduleError, "x=nan is not finite"),
        (True, ScheduleTypeError, "x=True is of type bool; expected a number"),
        ("0.01", ScheduleTypeError, "x='0.01' is of type str; expected a number"),
        ([1.0], ScheduleTypeError, "x=\\[1.0\\] is of type list"),
    ],
    ids=[
        "huge-int",
        "too-long-to-write",
        "huge-fraction",
        "past-limit",
        "huge-float",
        "huge-negative",
        "inf",
        "nan",
        "bool",
        "str",
        "list",
    ],
)
def test_numbers_outside_the_domain_are_refused_by_name(value, error, message):
    with pytest.raises(error, match=message):
        check_number("x", value)


def test_rates_are_floats_in_the_domain():
    assert check_rate("lr", 1) == 1.0 and type(check_rate("lr", 1)) is float
    with pytest.raises(ScheduleError, match="lr=-1.0 is negative"):
        check_rate("lr", -1.0)
    assert LIMIT == 10**18


class _Style(str, enum.Enum):
    COSINE = "cosine"


@pytest.mark.parametrize("style", [np.str_("cosine"), _Style.COSINE], ids=["numpy", "enum"])
def test_a_choice_that_is_a_str_subclass_comes_back_as_a_plain_str(style):
    chosen = check_choice("style", style, ("linear", "cosine"))
    assert chosen == "cosine" and type(chosen) is str


@pytest.mark.parametrize("style", [np.str_("cosine"), _Style.COSINE], ids=["numpy", "enum"])
def test_a_str_subclass_style_makes_a_checkpoint_torch_loads_with_weights_only(style, tmp_path):
    torch = pytest.importorskip("torch")
    from paramsched import OptimizerParamScheduler, PhaseSchedule, Schedule
    from paramsched.torch import ParamScheduler

    def optimizer():
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    schedulers = [
        ParamScheduler(
            optimizer(), Schedule(max_lr=1e-3, lr_decay_steps=100, lr_decay_style=style)
        ),
        OptimizerParamScheduler(
            optimizer(),
            init_lr=0.0,
            max_lr=1e-3,
            min_lr=0.0,
            lr_warmup_steps=0,
            lr_decay_steps=100,
            lr_decay_style=style,
            start_wd=0.0,
            end_wd=0.0,
            wd_incr_steps=100,
            wd_incr_style=np.str_("constant"),
        ),
        ParamScheduler(
            optimizer(),
            PhaseSchedule.from_dict(
                {
                    "run": {"global_batch_size": 1},
                    "lr": {
                        "max_lr": 1.0,
                        "phases": [{"shape": style, "to": "max_lr", "until": "4 steps"}],
                    },
                }
            ),
        ),
    ]
    for index, scheduler in enumerate(schedulers):
        scheduler.step()
        path = tmp_path / f"{index}.pt"
        torch.save(scheduler.state_dict(), path)
        assert torch.load(path, weights_only=True) == scheduler.state_dict()
