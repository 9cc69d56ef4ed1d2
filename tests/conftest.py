"""Shared helpers for the tests."""

from __future__ import annotations

import logging
import math
import os
import random

import pytest
from hypothesis import settings

# CI runs are reproducible: the same examples every time. Locally, hypothesis explores.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


class PlainOptimizer:
    """The least an optimizer must be: an object with a list of dict param groups."""

    def __init__(self, groups=None):
        self.param_groups = [dict(g) for g in (groups or [{"params": []}])]


def written(optimizer) -> list[tuple]:
    """Each group's ``(lr, weight_decay)`` as Python numbers (tensors read back)."""
    return [
        tuple(float(v) if hasattr(v, "item") else v for v in (g.get("lr"), g.get("weight_decay")))
        for g in optimizer.param_groups
    ]


MEGATRON_KWARGS = dict(
    init_lr=0.0,
    max_lr=1.0,
    min_lr=0.1,
    lr_warmup_steps=10,
    lr_decay_steps=110,
    lr_decay_style="linear",
    start_wd=0.1,
    end_wd=0.1,
    wd_incr_steps=110,
    wd_incr_style="constant",
)


@pytest.fixture
def plain_optimizer():
    return PlainOptimizer([{"params": []}, {"params": [], "wd_mult": 0.0}])


def random_config(rng: random.Random) -> dict:
    """A valid OptimizerParamScheduler configuration, drawn to hit every style and edge."""
    decay = rng.choice([rng.randint(1, 40), rng.randint(1, 3000), rng.randint(1, 3000) * 256])
    style = rng.choice(["constant", "linear", "cosine", "inverse-square-root", "WSD"])
    warmup = rng.choice(
        [0, rng.randrange(0, decay), rng.random() * 0.3 * decay, decay - 1 if decay > 1 else 0]
    )
    max_lr = rng.choice([1.0, 3e-4, rng.uniform(1e-6, 1e-2), 6e-4 * rng.random()])
    min_lr = max_lr * rng.choice([0.0, 0.1, rng.random(), 1.0])
    init_lr = max_lr * rng.choice([0.0, 0.0, rng.random(), 1.0])
    wd_style = rng.choice(["constant", "linear", "cosine"])
    start_wd = rng.choice([0.0, 0.1, rng.random() * 0.2])
    end_wd = start_wd if wd_style == "constant" else start_wd + rng.random() * 0.2
    config = dict(
        init_lr=init_lr,
        max_lr=max_lr,
        min_lr=min_lr,
        lr_warmup_steps=warmup,
        lr_decay_steps=decay,
        lr_decay_style=style,
        start_wd=start_wd,
        end_wd=end_wd,
        wd_incr_steps=rng.choice([rng.randint(1, 2 * decay), decay])
        if wd_style != "constant"
        else rng.choice([0, decay]),
        wd_incr_style=wd_style,
    )
    if style == "WSD":
        config["wsd_decay_steps"] = rng.choice([rng.randint(1, decay), decay])
        config["lr_wsd_decay_style"] = rng.choice(["linear", "cosine", "exponential", "minus_sqrt"])
    return config


def random_groups(rng: random.Random, config: dict) -> list[dict]:
    """Parameter groups with every kind of override Megatron runs with `config`, some
    in the opposite order to it (``min_lr`` above ``max_lr``, a falling weight decay)."""
    groups = [{"params": [], "default_config": True}]
    for _ in range(rng.randint(0, 5)):
        group = {"params": []}
        if rng.random() < 0.5:
            group["max_lr"] = rng.uniform(config["max_lr"], 2 * config["max_lr"] + 1e-3)
        if rng.random() < 0.5:
            group["min_lr"] = rng.uniform(0, group.get("max_lr", config["max_lr"]))
        if (
            rng.random() < 0.2
        ):  # above max_lr, as a decoupled lr below min_lr gives: Megatron runs it
            group["max_lr"] = config["min_lr"] * rng.choice([0.0, 0.5, rng.random()])
            group["min_lr"] = rng.choice([config["min_lr"], group["max_lr"] + rng.random()])
        if rng.random() < 0.5:
            group["wd_mult"] = rng.choice([0.0, 0.5, 2.0, rng.random()])
        if rng.random() < 0.4:
            start = rng.random() * 0.2
            group["start_wd"] = start
            rise = rng.random() * rng.choice([1, -1])  # a falling weight decay runs too
            group["end_wd"] = (
                start if config["wd_incr_style"] == "constant" else max(0.0, start + rise)
            )
        groups.append(group)
    return groups


def boundaries(config: dict) -> list[float]:
    """The step counts where `config`'s schedule changes piece."""
    points = [config["lr_warmup_steps"], config["lr_decay_steps"], config["wd_incr_steps"]]
    if config.get("wsd_decay_steps") is not None:
        points.append(config["lr_decay_steps"] - config["wsd_decay_steps"])
    return points


def step_counts(rng: random.Random, config: dict, points: int = 2000) -> list[int]:
    """Increasing step counts past the end of `config`'s schedule, landing on, just
    before and just after every boundary, and in between either every step, at random
    or along a ramp of batch sizes."""
    total = int(max(boundaries(config)) * 1.25) + 3
    must = set()
    for point in boundaries(config):
        for near in (
            math.floor(point) - 1,
            math.floor(point),
            math.ceil(point),
            math.ceil(point) + 1,
        ):
            if 0 < near <= total:
                must.add(near)
    mode = rng.choice(["ones", "random", "ramp"])
    if mode == "ones" and total <= 4 * points:
        counts = set(range(1, total + 1))
    elif mode == "ramp":
        counts, done, batch = set(), 0, rng.choice([1, 2, 8])
        stride = max(1, total // points)
        while done < total:
            batch = min(batch + rng.choice([0, 0, 0, stride]), 16 * stride)
            done += batch
            counts.add(done)
    else:
        counts = {rng.randint(1, total) for _ in range(points)}
    return sorted(counts | must)


def check_branch_rates(record, branch, parent, branch_point) -> list[int]:
    """Checks that every learning rate a resumed run used is the branch's, and the
    parent's up to `branch_point`; returns the steps where the two differ for every
    group. `record` holds, by step, the ``(lr, weight_decay)`` of each group used
    (``seen``), the scheduler's clock position (``positions``) and each group's lr
    overrides (``overrides``), as the framework tests' ``Record`` callbacks keep them."""
    for step, used in record.seen.items():
        position = record.positions[step]
        assert [lr for lr, _ in used] == [
            branch.lr(position, **overrides) for overrides in record.overrides
        ], step
        if position <= branch_point:
            assert [lr for lr, _ in used] == [
                parent.lr(position, **overrides) for overrides in record.overrides
            ], step
    return [
        step
        for step in record.seen
        if all(
            branch.lr(record.positions[step], **o) != parent.lr(record.positions[step], **o)
            for o in record.overrides
        )
    ]


def increments(counts: list[int]) -> list[int]:
    """The increments that take a scheduler from 0 through `counts`."""
    return [b - a for a, b in zip([0] + counts[:-1], counts)]


# Schedules with values besides lr and wd, as schedule files (the cli tests write them,
# the preview tests read them with `schedule_from_toml`).
VALUES_TOML = """\
[run]
global_batch_size = 8
seq_length = 16
total = "400 steps"

[lr]
max_lr = 3e-4
min_lr = 3e-5
phases = [
  { shape = "linear", to = "max_lr", until = "20 steps" },
  { shape = "cosine", to = "min_lr", until = "100%" },
]

[wd]
start_wd = 0.1
end_wd = 0.1
style = "constant"

[group."betas[1]"]
start = 0.95
end = 0.99
phases = [{ shape = "linear", to = "end", until = "50%" }]

[loop.grad_clip]
start = 1.0
phases = [{ shape = "cosine", to = 0.25, until = "300 steps" }]
"""

#: A sqrt batch-size rule over a batch-size ramp, reference 256 (the full size is 1024).
RULE_TOML = """\
[run]
global_batch_size = 1024
rampup_batch_size = [256, 256, "60000 samples"]
total = "300000 samples"

[lr]
max_lr = 1e-3
min_lr = 1e-4
batch_size_rule = "sqrt"
reference_batch_size = 256
phases = [
  { shape = "linear", to = "max_lr", until = "20000 samples" },
  { shape = "cosine", to = "min_lr", until = "100%" },
]

[loop.grad_clip]
start = 1.0
phases = [{ shape = "linear", to = 0.5, until = "100%" }]
"""

#: A live token clock: stages in tokens, a group value, no steps or samples.
TOKEN_CLOCK_TOML = """\
[run]
clock = "tokens"
total = "10M tokens"
batch_size_schedule = [["0 tokens", 128], ["1M tokens", 256]]

[lr]
max_lr = 3e-4
min_lr = 3e-5
phases = [
  { shape = "linear", to = "max_lr", until = "100K tokens" },
  { shape = "cosine", to = "min_lr", until = "100%" },
]

[group.momentum]
start = 0.85
end = 0.95
phases = [{ shape = "cosine", to = "end", until = "100%" }]
"""


def schedule_from_toml(text: str):
    """The schedule a schedule file's text describes."""
    import tomllib

    from paramsched import PhaseSchedule

    return PhaseSchedule.from_dict(tomllib.loads(text))


def with_rule(text: str, rule: str, reference: int) -> str:
    """A schedule file's text with a batch-size rule added to its [lr] table."""
    return text.replace(
        "[lr]\n", f"[lr]\nbatch_size_rule = {rule!r}\nreference_batch_size = {reference}\n", 1
    )


# ------------------------------------------------ a reference written from the rules
# Plain Python, from the rules in the docstrings of paramsched.core._curve, phases and shapes
# (Megatron-Core's operations in their order), not from paramsched's code paths.


def reference_decay(shape: str, ratio: float, power: float | None = None) -> float:
    """A shape's decay coefficient at `ratio`, from 1 at 0 down to 0 at 1."""
    if shape == "linear":
        return 1.0 - ratio
    if shape == "cosine":
        return 0.5 * (math.cos(math.pi * ratio) + 1.0)
    if shape == "exponential":
        return 2.0 * math.pow(0.5, ratio) - 1.0
    if shape == "minus_sqrt":
        return 1.0 - math.sqrt(ratio)
    if shape == "polynomial":
        return math.pow(1.0 - ratio, power)
    raise AssertionError(shape)


def reference_phases(pieces, n) -> float:
    """The value at clock position `n` of phases ``(shape, end, a, b[, power])`` from 0,
    each going from `a` to `b` (a constant phase holds `b`), then the last `b`."""
    start = 0
    for shape, end, a, b, *power in pieces:
        if n <= end:
            if shape == "constant":
                return b
            if shape == "inverse-square-root":
                return max(b, a * max(start, 1) ** 0.5 / max(n, 1) ** 0.5)
            ratio = float(n - start) / float(end - start)
            if b >= a:
                if shape == "linear":  # Megatron's warmup: the product before the division
                    return a + (b - a) * float(n - start) / float(end - start)
                return a + reference_decay(shape, 1.0 - ratio, *power) * (b - a)
            return b + reference_decay(shape, ratio, *power) * (a - b)
        start = end
    return pieces[-1][3]


def reference_wd(style: str, until, start_wd: float, end_wd: float, n) -> float:
    """Megatron-Core's weight decay: ``start_wd + coeff * (end_wd - start_wd)`` with
    ``coeff`` the increment ratio (linear) or the cosine of its complement."""
    if n > until:
        return end_wd
    ratio = float(n) / float(until)
    coeff = {
        "constant": 0.0,
        "linear": ratio,
        "cosine": 0.5 * (math.cos(math.pi * (1 - ratio)) + 1.0),
    }[style]
    return start_wd + coeff * (end_wd - start_wd)


def reference_batch_size(stages, n) -> int:
    """The batch size at position `n` of stages ``[(first position, size), ...]``."""
    return [size for threshold, size in stages if threshold <= n][-1]


def reference_landing(stages, position) -> int:
    """Where `position` lands on a run of these stages: the end of the first step whose
    position reaches it, found by stepping the clock from 0."""
    n = 0
    while n < position:
        n += reference_batch_size(stages, n)
    return n


def reference_batch_factor(rule: str, batch_size: int, reference: int) -> float:
    return math.sqrt(batch_size / reference) if rule == "sqrt" else batch_size / reference


#: A WARNING is one line a person reads in a log: longer detail goes to DEBUG or into
#: an exception. Every test holds every WARNING paramsched logs to this.
MAX_WARNING = 200


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "\n" in message or len(message) > MAX_WARNING:
            self.found.append(message)


@pytest.fixture(autouse=True)
def warnings_are_one_short_line():
    handler = _Warnings()
    logger = logging.getLogger("paramsched")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.found, (
        f"a WARNING of more than one line or {MAX_WARNING} characters: {handler.found[0][:400]!r}"
    )
