"""Exact resume through real torch.save / torch.load round trips, in and across processes."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it
from conftest import increments, random_config, random_groups, step_counts, written
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import OptimizerParamScheduler

pytestmark = pytest.mark.torch


def torch_optimizer(groups):
    """A real AdamW whose groups carry `groups`' overrides, one tiny parameter each."""
    torch.manual_seed(0)
    param_groups = []
    for group in groups:
        entry = {k: v for k, v in group.items() if k != "params"}
        entry["params"] = [torch.nn.Parameter(torch.randn(3))]
        param_groups.append(entry)
    return torch.optim.AdamW(param_groups, lr=0.0)


def train(optimizer, scheduler, steps):
    """Real optimizer steps, recording what every group holds after each scheduler step."""
    trace = []
    for increment in steps:
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = torch.ones_like(p)
        optimizer.step()
        scheduler.step(increment)
        trace.append(written(optimizer))
    return trace


def roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.floats(0.0, 1.0))
def test_resume_at_any_split_is_exact(rng, where):
    config = random_config(rng)
    groups = random_groups(rng, config)
    steps = increments(step_counts(rng, config, points=200))
    split = int(where * len(steps))

    straight_optimizer = torch_optimizer(groups)
    straight = OptimizerParamScheduler(straight_optimizer, **config)
    expected = train(straight_optimizer, straight, steps)

    first_optimizer = torch_optimizer(groups)
    first = OptimizerParamScheduler(first_optimizer, **config)
    train(first_optimizer, first, steps[:split])
    checkpoint = roundtrip(
        {"optimizer": first_optimizer.state_dict(), "scheduler": first.state_dict()}
    )

    optimizer = torch_optimizer(groups)
    scheduler = OptimizerParamScheduler(optimizer, **config)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    assert scheduler.num_steps == first.num_steps
    assert written(optimizer) == written(first_optimizer)
    assert train(optimizer, scheduler, steps[split:]) == expected[split:]


RESUME_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, {tests!r})
    from test_resume import torch_optimizer, train
    from paramsched import OptimizerParamScheduler
    config, groups, steps, path = json.loads(sys.argv[1])
    optimizer = torch_optimizer(groups)
    scheduler = OptimizerParamScheduler(optimizer, **config)
    checkpoint = torch.load(path, weights_only=True)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    print(json.dumps(train(optimizer, scheduler, steps)))
""")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_resume_in_a_new_process_is_exact(seed, tmp_path):
    rng = random.Random(seed)
    config = dict(
        init_lr=1e-5,
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=37.5,
        lr_decay_steps=900,
        lr_decay_style="WSD",
        start_wd=0.0,
        end_wd=0.1,
        wd_incr_steps=800,
        wd_incr_style="cosine",
        wsd_decay_steps=300,
        lr_wsd_decay_style=rng.choice(["exponential", "minus_sqrt", "cosine"]),
    )
    groups = random_groups(rng, config)
    steps = increments(step_counts(rng, config, points=300))
    split = rng.randrange(1, len(steps))

    straight_optimizer = torch_optimizer(groups)
    expected = train(
        straight_optimizer, OptimizerParamScheduler(straight_optimizer, **config), steps
    )
    optimizer = torch_optimizer(groups)
    scheduler = OptimizerParamScheduler(optimizer, **config)
    train(optimizer, scheduler, steps[:split])
    path = tmp_path / "checkpoint.pt"
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, path)

    script = RESUME_SCRIPT.format(tests=str(__import__("pathlib").Path(__file__).parent))
    argument = json.dumps([config, groups, steps[split:], str(path)])
    result = subprocess.run(
        [sys.executable, "-c", script, argument], capture_output=True, text=True, check=True
    )
    resumed = [[tuple(pair) for pair in groups] for groups in json.loads(result.stdout)]
    assert resumed == expected[split:]
