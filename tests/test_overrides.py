"""Tests for paramsched.overrides."""

from __future__ import annotations

import re

import numpy as np
import pytest

from paramsched import (
    ParamGroupOverride,
    ScheduleError,
    ScheduleTypeError,
    combine_param_group_overrides,
    get_canonical_lr_for_logging,
    param_group_override_to_tuple,
)


def test_override_is_a_partial_typed_dict_that_allows_other_keys():
    assert ParamGroupOverride.__total__ is False
    assert set(ParamGroupOverride.__annotations__) == {
        "max_lr",
        "min_lr",
        "start_wd",
        "end_wd",
        "wd_mult",
        "optimizer",
    }
    assert ParamGroupOverride(newvar=3) == {"newvar": 3}


def test_an_override_naming_an_optimizer_works_with_every_helper_and_the_scheduler():
    # Megatron main's form: every key optional, and a per-parameter optimizer by name.
    from conftest import MEGATRON_KWARGS, PlainOptimizer

    from paramsched import OptimizerParamScheduler

    muon = ParamGroupOverride(optimizer="muon", max_lr=2.0)
    assert param_group_override_to_tuple(muon) == (("max_lr", 2.0), ("optimizer", "muon"))
    assert combine_param_group_overrides([muon, {"wd_mult": 0.0}]) == {
        "optimizer": "muon",
        "max_lr": 2.0,
        "wd_mult": 0.0,
    }
    with pytest.raises(ScheduleError, match="conflicting overrides for 'optimizer'"):
        combine_param_group_overrides([muon, ParamGroupOverride(optimizer="adam")])
    optimizer = PlainOptimizer([{"default_config": True}, {**muon, "default_config": False}])
    scheduler = OptimizerParamScheduler(optimizer, **MEGATRON_KWARGS)
    scheduler.step(10)
    assert [g["lr"] for g in optimizer.param_groups] == [1.0, 2.0]
    assert get_canonical_lr_for_logging(optimizer.param_groups) == 1.0


def test_to_tuple_ignores_key_order():
    a = param_group_override_to_tuple({"wd_mult": 0.0, "max_lr": 1e-3})
    b = param_group_override_to_tuple({"max_lr": 1e-3, "wd_mult": 0.0})
    assert a == b == (("max_lr", 1e-3), ("wd_mult", 0.0))
    assert param_group_override_to_tuple(None) is None
    assert {a: "group"}[b] == "group"


def test_combine_merges_and_skips_none():
    assert combine_param_group_overrides(
        [{"wd_mult": 0.0}, None, {"max_lr": 1e-3}, {"wd_mult": 0.0}]
    ) == {"wd_mult": 0.0, "max_lr": 1e-3}
    assert combine_param_group_overrides([]) == {}


def test_combine_refuses_conflicts_naming_key_and_values():
    with pytest.raises(ScheduleError, match=r"conflicting overrides for 'max_lr': 0.001 and 0.002"):
        combine_param_group_overrides([{"max_lr": 1e-3}, {"max_lr": 2e-3}])
    with pytest.raises(ValueError):
        combine_param_group_overrides([{"wd_mult": 0.0}, {"wd_mult": 1.0}])


def test_canonical_lr_is_the_first_default_config_group():
    groups = [{"lr": 1.0}, {"lr": 2.0, "default_config": True}, {"lr": 3.0, "default_config": True}]
    assert get_canonical_lr_for_logging(groups) == 2.0
    assert get_canonical_lr_for_logging([{"lr": 1.0}]) is None
    assert get_canonical_lr_for_logging([{"params": [], "lr": 4.0, "default_config": True}]) == 4.0


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: param_group_override_to_tuple(3), "param_group_override=3 is of type int"),
        (
            lambda: param_group_override_to_tuple([("wd_mult", 0.0)]),
            "param_group_override=[('wd_mult', 0.0)] is of type list; expected a dict",
        ),
        (
            lambda: combine_param_group_overrides(None),
            "param_group_overrides=None is of type NoneType; expected a list of overrides",
        ),
        (
            lambda: combine_param_group_overrides({"wd_mult": 0.0}),
            "param_group_overrides={'wd_mult': 0.0} is of type dict; expected a list",
        ),
        (
            lambda: combine_param_group_overrides([None, 3]),
            "param_group_overrides[1]=3 is of type int",
        ),
        (lambda: get_canonical_lr_for_logging(None), "param_groups=None is of type NoneType"),
        (
            lambda: get_canonical_lr_for_logging([{"lr": 1.0}, "group"]),
            "param_groups[1]='group' is of type str; expected a dict",
        ),
    ],
    ids=[
        "tuple-of-int",
        "tuple-of-list",
        "combine-none",
        "combine-dict",
        "combine-entry",
        "canonical-none",
        "canonical-entry",
    ],
)
def test_the_helpers_refuse_what_is_not_an_override_by_type(call, message):
    with pytest.raises(ScheduleTypeError) as info:
        call()
    assert message in str(info.value)


@pytest.mark.parametrize(
    "value", [np.array([1e-3, 2e-3]), np.array(1e-3), [1e-3]], ids=["array", "0-d-array", "list"]
)
def test_an_override_that_is_not_a_number_is_refused_naming_its_key(value):
    shown = re.escape(repr(value))
    with pytest.raises(
        ScheduleTypeError,
        match=rf"^param_group_overrides\[1\]\['max_lr'\]="
        rf"{shown} is of type \w+; expected a number$",
    ):
        combine_param_group_overrides([{"wd_mult": 0.0}, {"max_lr": value}])
    with pytest.raises(
        ScheduleTypeError,
        match=rf"^param_group_override\['max_lr'\]={shown} is "
        r"of type \w+; expected a number$",
    ):
        param_group_override_to_tuple({"max_lr": value})


def test_values_of_other_keys_that_cannot_be_compared_or_be_a_key_are_refused_by_name():
    same = np.array([1, 2])
    with pytest.raises(
        ScheduleTypeError,
        match=r"^param_group_overrides\[1\]\['layers'\]="
        r"array\(\[1, 2\]\) is of type ndarray, which "
        r"cannot be compared",
    ):
        combine_param_group_overrides([{"layers": same}, {"layers": same}])
    with pytest.raises(
        ScheduleTypeError,
        match=r"^param_group_override\['optimizer'\]=\['muon'\] "
        r"is of type list; expected a number or a string",
    ):
        param_group_override_to_tuple({"optimizer": ["muon"]})
    # NumPy scalars are numbers: taken as they are.
    assert combine_param_group_overrides([{"max_lr": np.float32(1e-3)}, None]) == {
        "max_lr": np.float32(1e-3)
    }
    assert param_group_override_to_tuple({"wd_mult": np.float64(0.0)}) == (("wd_mult", 0.0),)
