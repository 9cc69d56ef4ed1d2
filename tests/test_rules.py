"""Tests for paramsched.rules: parameter groups from rules."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

from paramsched import OptimizerParamScheduler, ScheduleError, ScheduleTypeError, param_groups
from paramsched.rules import attribute, decoupled_lr, no_weight_decay_on_bias_and_norm

pytestmark = pytest.mark.torch


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        OrderedDict(
            embed=torch.nn.Embedding(16, 8),
            block=torch.nn.Sequential(
                OrderedDict(
                    norm=torch.nn.LayerNorm(8),
                    attn=torch.nn.Linear(8, 8),
                    mlp=torch.nn.Linear(8, 8),
                )
            ),
            lm_head=torch.nn.Linear(8, 16, bias=False),
        )
    )


def names(net, group):
    by_id = {id(p): n for n, p in net.named_parameters()}
    return [by_id[id(p)] for p in group["params"]]


def test_groups_combine_rules_in_model_order():
    net = model()
    rules = {
        **no_weight_decay_on_bias_and_norm(),
        **decoupled_lr(net, 1e-3, 1e-4),
        "block.attn.weight": {"wd_mult": 0.5},
    }
    groups = param_groups(net, rules)
    assert [(names(net, g), {k: v for k, v in g.items() if k != "params"}) for g in groups] == [
        (
            ["embed.weight", "lm_head.weight"],
            {"max_lr": 1e-3, "min_lr": 1e-4, "default_config": False},
        ),
        (
            ["block.norm.weight", "block.norm.bias", "block.attn.bias", "block.mlp.bias"],
            {"wd_mult": 0.0, "default_config": False},
        ),
        (["block.attn.weight"], {"wd_mult": 0.5, "default_config": False}),
        (["block.mlp.weight"], {"default_config": True}),
    ]


def test_conflicts_name_the_parameter_and_both_rules():
    net = model()
    rules = {**no_weight_decay_on_bias_and_norm(), "block.attn.*": {"wd_mult": 0.5}}
    with pytest.raises(
        ScheduleError,
        match=r"parameter 'block.attn.bias': rule bias and "
        r"one-dimensional parameters sets wd_mult=0.0 and "
        r"rule 'block.attn.\*' sets wd_mult=0.5",
    ):
        param_groups(net, rules)


def test_equal_overrides_share_a_group_and_order_is_deterministic():
    net = model()
    rules = {"*.bias": {"wd_mult": 0.0}, "block.norm.weight": {"wd_mult": 0.0}}
    groups = param_groups(net, rules)
    assert [names(net, g) for g in groups] == [
        ["embed.weight", "block.attn.weight", "block.mlp.weight", "lm_head.weight"],
        ["block.norm.weight", "block.norm.bias", "block.attn.bias", "block.mlp.bias"],
    ]
    assert [g["default_config"] for g in groups] == [True, False]
    assert [names(net, g) for g in param_groups(net, rules)] == [names(net, g) for g in groups]


def test_predicates_attributes_and_frozen_parameters():
    net = model()
    net.lm_head.weight.is_output = True
    net.embed.weight.requires_grad_(False)
    rules = {
        attribute("is_output"): {"max_lr": 5e-4},
        lambda name, p: p.ndim == 2 and name.startswith("block."): {"wd_mult": 2.0},
    }
    groups = param_groups(net, rules)
    flat = [n for g in groups for n in names(net, g)]
    assert "embed.weight" not in flat and len(flat) == 7
    assert {tuple(names(net, g)): g.get("max_lr") for g in groups}[("lm_head.weight",)] == 5e-4


def test_a_rule_that_matches_nothing_is_reported():
    with pytest.warns(UserWarning, match="rule '\\*.gamma' matched no trainable parameter"):
        param_groups(model(), {"*.gamma": {"wd_mult": 0.0}})


@pytest.mark.parametrize(
    "rules,message",
    [
        ([("*.bias", {})], "rules is of type list"),
        ({3: {}}, "rule selector 3 is of type int"),
        ({"*.bias": 0.0}, "override 0.0 is of type float"),
    ],
    ids=["list", "selector", "override"],
)
def test_bad_rules(rules, message):
    with pytest.raises(ScheduleTypeError, match=message):
        param_groups(model(), rules)


@pytest.mark.parametrize(
    "override,error,message",
    [
        (
            {"wdmult": 0.0},
            ScheduleError,
            "rule '*.bias' sets 'wdmult', which is not an override; "
            "expected one of 'max_lr', 'min_lr', 'start_wd', 'end_wd', 'wd_mult', 'optimizer', "
            "'name', 'KEY.named_value' (did you mean 'wd_mult'?)",
        ),
        ({"name": 3}, ScheduleTypeError, "rule '*.bias': name=3; expected a non-empty string"),
        ({"betas[1].end": float("nan")}, ScheduleError, "rule '*.bias': betas[1].end"),
        ({"betas[1].end": "high"}, ScheduleTypeError, "rule '*.bias': betas[1].end"),
        (
            {"betas": (0.9, 0.95)},
            ScheduleError,
            "sets 'betas', which is not an override; expected one of 'max_lr'",
        ),
        ({3: 0.0}, ScheduleError, "rule '*.bias' sets 3, which is not an override"),
        (
            {"lr": 1e-3},
            ScheduleError,
            "rule '*.bias' sets 'lr': the scheduler writes lr at every "
            "step; expected max_lr and min_lr",
        ),
        (
            {"weight_decay": 0.0},
            ScheduleError,
            "sets 'weight_decay': the scheduler writes "
            "weight_decay at every step; expected wd_mult",
        ),
        ({"params": []}, ScheduleError, "sets 'params': param_groups puts the parameters"),
        ({"default_config": True}, ScheduleError, "sets 'default_config': param_groups sets it"),
        (
            {"wd_mult": [0.0]},
            ScheduleTypeError,
            "rule '*.bias': wd_mult=[0.0] is of type list; expected a number",
        ),
        (
            {"max_lr": {"value": 1.0}},
            ScheduleTypeError,
            "rule '*.bias': max_lr={'value': 1.0} is of type dict",
        ),
        (
            {"min_lr": np.array(0.0)},
            ScheduleTypeError,
            "rule '*.bias': min_lr=array(0.) is of type ndarray",
        ),
        ({"wd_mult": "0"}, ScheduleTypeError, "rule '*.bias': wd_mult='0' is of type str"),
        ({"wd_mult": None}, ScheduleTypeError, "rule '*.bias': wd_mult=None is of type NoneType"),
        ({"wd_mult": True}, ScheduleTypeError, "rule '*.bias': wd_mult=True is of type bool"),
        ({"max_lr": float("nan")}, ScheduleError, "rule '*.bias': max_lr=nan is not finite"),
        ({"wd_mult": -1.0}, ScheduleError, "rule '*.bias': wd_mult=-1.0 is negative"),
        (
            {"optimizer": 3},
            ScheduleTypeError,
            "rule '*.bias': optimizer=3; expected the name of an optimizer",
        ),
    ],
    ids=[
        "typo",
        "name-not-a-string",
        "value-override-nan",
        "value-override-str",
        "optimizer-option",
        "not-a-string",
        "lr",
        "weight-decay",
        "params",
        "default-config",
        "list",
        "dict",
        "0-d-array",
        "str",
        "none",
        "bool",
        "nan",
        "negative",
        "optimizer-not-a-name",
    ],
)
def test_overrides_are_checked_by_rule_and_key(override, error, message):
    with pytest.raises(error, match=re.escape(message)):
        param_groups(model(), {"*.bias": override})


def test_a_rule_may_name_an_optimizer_as_on_megatron_main():
    groups = param_groups(model(), {"*.bias": {"optimizer": "muon", "wd_mult": 0.0}})
    assert {k: v for k, v in groups[1].items() if k != "params"} == {
        "optimizer": "muon",
        "wd_mult": 0.0,
        "default_config": False,
    }


def test_override_values_are_normalised_to_floats():
    groups = param_groups(model(), {"*.bias": {"wd_mult": 0, "max_lr": np.float32(0.5)}})
    values = {k: v for k, v in groups[1].items() if k != "params"}
    assert values == {"wd_mult": 0.0, "max_lr": 0.5, "default_config": False}
    assert [type(v) for v in values.values()] == [float, float, bool]


class TiedModel:
    """A model that lists its tied output weight under both names, as
    ``named_parameters(remove_duplicate=False)`` does."""

    def __init__(self):
        self.net = model()
        self.net.lm_head.weight = self.net.embed.weight  # tied: (16, 8) both

    def named_parameters(self):
        return self.net.named_parameters(remove_duplicate=False)


def test_a_shared_parameter_is_put_once():
    tied = TiedModel()
    listed = [id(p) for _, p in tied.named_parameters()]
    assert len(listed) == 8 and len(set(listed)) == 7  # the tied weight twice
    groups = param_groups(tied, {"embed.*": {"max_lr": 1e-3}, "lm_head.*": {"max_lr": 1e-3}})
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 7
    assert groups[0]["params"] == [tied.net.embed.weight] and groups[0]["max_lr"] == 1e-3
    torch.optim.AdamW(groups)  # torch refuses a parameter in two groups


def test_a_shared_parameter_with_two_sets_of_overrides_is_refused_naming_both_names():
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            "parameter 'lm_head.weight' is the same tensor as 'embed.weight' (shared); the rules "
            "give 'embed.weight' {} and 'lm_head.weight' {'max_lr': 0.001}; expected rules that "
            "give both names the same overrides"
        ),
    ):
        param_groups(TiedModel(), {"lm_head.*": {"max_lr": 1e-3}})


def test_a_model_without_named_parameters_is_refused():
    with pytest.raises(
        ScheduleTypeError, match=re.escape("model is of type list, without named_parameters()")
    ):
        param_groups([torch.nn.Parameter(torch.zeros(2))], {})


def test_groups_drive_an_optimizer_and_the_scheduler():
    net = model()
    groups = param_groups(
        net, {**no_weight_decay_on_bias_and_norm(), **decoupled_lr(net, 2e-3, 0.0)}
    )
    optimizer = torch.optim.AdamW(groups, weight_decay=0.1)
    scheduler = OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=2,
        lr_decay_steps=10,
        lr_decay_style="linear",
        start_wd=0.1,
        end_wd=0.1,
        wd_incr_steps=10,
        wd_incr_style="constant",
    )
    scheduler.step(2)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (2e-3, 0.1),
        (1e-3, 0.0),
        (1e-3, 0.1),
    ]


def test_rules_name_groups_and_override_scheduled_values():
    net = model()
    groups = param_groups(
        net,
        {
            "*.bias": {"wd_mult": 0.0, "name": "bias", "betas[1].end": 0.999},
            "*norm*": {"wd_mult": 0.0},
        },
    )
    bias = [g for g in groups if g.get("name") == "bias"]
    assert len(bias) == 1 and bias[0]["betas[1].end"] == 0.999
    assert names(net, bias[0]) == ["block.norm.bias", "block.attn.bias", "block.mlp.bias"]
    assert bias[0]["default_config"] is False
    named_only = param_groups(net, {"embed.*": {"name": "embedding"}})
    assert named_only[0]["name"] == "embedding" and named_only[0]["default_config"] is True
    with pytest.raises(ScheduleError, match="two groups are named 'x' with different overrides"):
        param_groups(net, {"*.bias": {"name": "x", "wd_mult": 0.0}, "embed.*": {"name": "x"}})
