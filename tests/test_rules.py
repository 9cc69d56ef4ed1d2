"""Tests for paramsched.rules: parameter groups from rules."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

from paramsched import OptimizerParamScheduler, ScheduleError, ScheduleTypeError, param_groups
from paramsched.rules import attribute, decoupled_lr, no_weight_decay_on_bias_and_norm

pytestmark = pytest.mark.torch


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(OrderedDict(
        embed=torch.nn.Embedding(16, 8),
        block=torch.nn.Sequential(OrderedDict(norm=torch.nn.LayerNorm(8),
                                              attn=torch.nn.Linear(8, 8),
                                              mlp=torch.nn.Linear(8, 8))),
        lm_head=torch.nn.Linear(8, 16, bias=False),
    ))


def names(net, group):
    by_id = {id(p): n for n, p in net.named_parameters()}
    return [by_id[id(p)] for p in group["params"]]


def test_groups_combine_rules_in_model_order():
    net = model()
    rules = {**no_weight_decay_on_bias_and_norm(), **decoupled_lr(net, 1e-3, 1e-4),
             "block.attn.weight": {"wd_mult": 0.5}}
    groups = param_groups(net, rules)
    assert [(names(net, g), {k: v for k, v in g.items() if k != "params"}) for g in groups] == [
        (["embed.weight", "lm_head.weight"], {"max_lr": 1e-3, "min_lr": 1e-4,
                                              "default_config": False}),
        (["block.norm.weight", "block.norm.bias", "block.attn.bias", "block.mlp.bias"],
         {"wd_mult": 0.0, "default_config": False}),
        (["block.attn.weight"], {"wd_mult": 0.5, "default_config": False}),
        (["block.mlp.weight"], {"default_config": True}),
    ]


def test_conflicts_name_the_parameter_and_both_rules():
    net = model()
    rules = {**no_weight_decay_on_bias_and_norm(), "block.attn.*": {"wd_mult": 0.5}}
    with pytest.raises(ScheduleError, match=r"parameter 'block.attn.bias': rule bias and "
                                            r"one-dimensional parameters sets wd_mult=0.0 and "
                                            r"rule 'block.attn.\*' sets wd_mult=0.5"):
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
    rules = {attribute("is_output"): {"max_lr": 5e-4},
             lambda name, p: p.ndim == 2 and name.startswith("block."): {"wd_mult": 2.0}}
    groups = param_groups(net, rules)
    flat = [n for g in groups for n in names(net, g)]
    assert "embed.weight" not in flat and len(flat) == 7
    assert {tuple(names(net, g)): g.get("max_lr") for g in groups}[("lm_head.weight",)] == 5e-4


def test_a_rule_that_matches_nothing_is_reported():
    with pytest.warns(UserWarning, match="rule '\\*.gamma' matched no trainable parameter"):
        param_groups(model(), {"*.gamma": {"wd_mult": 0.0}})


@pytest.mark.parametrize("rules,message", [
    ([("*.bias", {})], "rules is of type list"),
    ({3: {}}, "rule selector 3 is of type int"),
    ({"*.bias": 0.0}, "override 0.0 is of type float"),
], ids=["list", "selector", "override"])
def test_bad_rules(rules, message):
    with pytest.raises(ScheduleTypeError, match=message):
        param_groups(model(), rules)


def test_groups_drive_an_optimizer_and_the_scheduler():
    net = model()
    groups = param_groups(net, {**no_weight_decay_on_bias_and_norm(),
                                **decoupled_lr(net, 2e-3, 0.0)})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.1)
    scheduler = OptimizerParamScheduler(optimizer, init_lr=0.0, max_lr=1e-3, min_lr=1e-4,
                                        lr_warmup_steps=2, lr_decay_steps=10,
                                        lr_decay_style="linear", start_wd=0.1, end_wd=0.1,
                                        wd_incr_steps=10, wd_incr_style="constant")
    scheduler.step(2)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (2e-3, 0.1), (1e-3, 0.0), (1e-3, 0.1)]
