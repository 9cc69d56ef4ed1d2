"""Tests for paramsched.schedule: golden values, validation, properties."""

from __future__ import annotations

import math
import random
import sys

import numpy as np
import pytest
from conftest import boundaries, random_config
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paramsched import Schedule, ScheduleError, ScheduleTypeError

# Boundaries chosen so the arithmetic is exact in binary: warmup 4 steps from 0.5
# to 1.0, decay over the 16 steps from 4 to 20 down to 0.25, WSD anneal over 8
# steps from 12 to 20. Each value below is worked out by hand from the formulas.
BASE = dict(init_lr=0.5, max_lr=1.0, min_lr=0.25, lr_warmup_steps=4, lr_decay_steps=20)
GOLDEN_LR = {
    "linear": dict(lr_decay_style="linear"),
    "cosine": dict(lr_decay_style="cosine"),
    "constant": dict(lr_decay_style="constant"),
    "inverse-square-root": dict(lr_decay_style="inverse-square-root"),
    "WSD-linear": dict(lr_decay_style="WSD", wsd_decay_steps=8, lr_wsd_decay_style="linear"),
    "WSD-cosine": dict(lr_decay_style="WSD", wsd_decay_steps=8, lr_wsd_decay_style="cosine"),
    "WSD-exponential": dict(
        lr_decay_style="WSD", wsd_decay_steps=8, lr_wsd_decay_style="exponential"
    ),
    "WSD-minus_sqrt": dict(
        lr_decay_style="WSD", wsd_decay_steps=8, lr_wsd_decay_style="minus_sqrt"
    ),
}
WARMUP = [(0, 0.5), (1, 0.625), (2, 0.75), (4, 1.0)]
GOLDEN_POINTS = {
    "linear": WARMUP + [(8, 0.8125), (12, 0.625), (20, 0.25), (21, 0.25), (10**9, 0.25)],
    "cosine": WARMUP + [(12, 0.625), (20, 0.25), (21, 0.25)],
    "constant": WARMUP + [(5, 1.0), (20, 1.0), (10**6, 1.0)],
    # max_lr * sqrt(4) / sqrt(n); above min_lr everywhere up to step 20.
    "inverse-square-root": WARMUP + [(9, 2.0 / 3.0), (16, 0.5), (20, 2.0 / 20**0.5), (21, 0.25)],
    "WSD-linear": WARMUP + [(5, 1.0), (12, 1.0), (14, 0.8125), (16, 0.625), (20, 0.25)],
    "WSD-cosine": WARMUP + [(12, 1.0), (16, 0.625), (20, 0.25)],
    "WSD-exponential": WARMUP + [(12, 1.0), (20, 0.25), (21, 0.25)],
    "WSD-minus_sqrt": WARMUP + [(12, 1.0), (14, 0.625), (20, 0.25)],
}
CASES = [(name, step, value) for name, points in GOLDEN_POINTS.items() for step, value in points]


@pytest.mark.parametrize("name,step,expected", CASES, ids=[f"{n}@{s}" for n, s, _ in CASES])
def test_lr_golden(name, step, expected):
    schedule = Schedule(**BASE, **GOLDEN_LR[name])
    assert schedule.lr(step) == expected
    assert schedule.lr(np.array([step]))[0] == expected


def test_lr_golden_irrational():
    # WSD exponential at half the anneal: 0.25 + 0.75 * (2 * 0.5**0.5 - 1).
    exponential = Schedule(**BASE, **GOLDEN_LR["WSD-exponential"])
    assert exponential.lr(16) == pytest.approx(0.25 + 0.75 * (math.sqrt(2) - 1), rel=2**-52)
    cosine = Schedule(**BASE, **GOLDEN_LR["cosine"])
    assert cosine.lr(8) == pytest.approx(0.25 + 0.75 * (2 + math.sqrt(2)) / 4, rel=2**-52)


def test_inverse_square_root_floors_at_min_lr():
    schedule = Schedule(
        max_lr=1.0,
        min_lr=0.25,
        lr_warmup_steps=4,
        lr_decay_steps=100,
        lr_decay_style="inverse-square-root",
    )
    assert schedule.lr(64) == 0.25  # 2 / 8
    assert schedule.lr(81) == 0.25  # 2 / 9 is below min_lr
    assert schedule.lr(36) == 1.0 / 3.0


def test_inverse_square_root_without_warmup_starts_at_max_lr():
    schedule = Schedule(max_lr=1.0, lr_decay_steps=100, lr_decay_style="inverse-square-root")
    assert schedule.lr(0) == 1.0
    assert schedule.lr(1) == 1.0
    assert schedule.lr(4) == 0.5


def test_fractional_warmup_end_is_inclusive():
    schedule = Schedule(
        max_lr=1.0, lr_warmup_steps=2.5, lr_decay_steps=10.5, lr_decay_style="linear"
    )
    assert schedule.lr(2) == 0.8
    assert schedule.lr(2.5) == 1.0
    assert schedule.lr(6.5) == 0.5


WD_BASE = dict(
    max_lr=1.0,
    lr_decay_steps=10,
    lr_decay_style="constant",
    start_wd=0.0,
    end_wd=0.5,
    wd_incr_steps=8,
)


@pytest.mark.parametrize(
    "style,step,expected",
    [
        ("linear", 0, 0.0),
        ("linear", 2, 0.125),
        ("linear", 8, 0.5),
        ("linear", 9, 0.5),
        ("cosine", 0, 0.0),
        ("cosine", 4, 0.25),
        ("cosine", 8, 0.5),
        ("cosine", 100, 0.5),
    ],
    ids=lambda v: str(v),
)
def test_wd_golden(style, step, expected):
    schedule = Schedule(**WD_BASE, wd_incr_style=style)
    assert schedule.wd(step) == expected
    assert schedule.wd(np.array([step]))[0] == expected


def test_wd_constant_and_overrides():
    schedule = Schedule(
        max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear", start_wd=0.1, end_wd=0.1
    )
    assert schedule.wd(0) == schedule.wd(5) == 0.1
    assert schedule.wd(5, start_wd=0.3, end_wd=0.3) == 0.3
    linear = Schedule(**WD_BASE, wd_incr_style="linear")
    assert linear.wd(4, start_wd=0.5, end_wd=1.5) == 1.0


def test_lr_overrides_take_the_groups_values():
    schedule = Schedule(**BASE, lr_decay_style="linear")
    assert schedule.lr(12, max_lr=2.0, min_lr=0.0) == 1.0
    assert schedule.lr(2, max_lr=1.5) == 1.0  # 0.5 + (1.5 - 0.5) * 2 / 4


def test_array_keeps_shape_and_accepts_lists():
    schedule = Schedule(**BASE, lr_decay_style="linear", start_wd=0.1)
    grid = np.array([[0, 2], [12, 20]])
    assert schedule.lr(grid).shape == (2, 2)
    assert schedule.lr(grid).tolist() == [[0.5, 0.75], [0.625, 0.25]]
    assert schedule.lr([0, 2]).tolist() == [0.5, 0.75]
    assert schedule.wd(np.arange(3)).dtype == np.float64


def test_schedule_is_frozen_and_replace_validates():
    schedule = Schedule(**BASE, lr_decay_style="linear")
    with pytest.raises(AttributeError):
        schedule.max_lr = 2.0
    assert schedule.replace(max_lr=2.0).max_lr == 2.0
    with pytest.raises(ScheduleError, match="min_lr=0.25 is greater than max_lr=0.1"):
        schedule.replace(max_lr=0.1)


def test_integer_rates_become_floats():
    schedule = Schedule(max_lr=1, min_lr=0, lr_decay_steps=10, lr_decay_style="linear")
    assert type(schedule.max_lr) is float and type(schedule.min_lr) is float
    assert type(schedule.lr(100)) is float
    assert type(schedule.lr_decay_steps) is int


def test_numpy_scalars_are_accepted():
    schedule = Schedule(
        max_lr=np.float32(0.5), lr_decay_steps=np.int64(10), lr_decay_style="linear"
    )
    assert type(schedule.lr_decay_steps) is int
    assert schedule.lr(np.int64(5)) == 0.25


# ------------------------------------------------------------------ bad input

GOOD = dict(
    init_lr=0.0,
    max_lr=1e-3,
    min_lr=1e-4,
    lr_warmup_steps=10,
    lr_decay_steps=100,
    lr_decay_style="cosine",
    start_wd=0.1,
    end_wd=0.1,
    wd_incr_steps=100,
    wd_incr_style="constant",
)
BAD = [
    (
        "unknown-style",
        dict(lr_decay_style="cosin"),
        ScheduleError,
        "lr_decay_style='cosin' is not one of 'constant', 'linear', 'cosine', "
        "'inverse-square-root', 'WSD' (did you mean 'cosine'?)",
    ),
    ("style-case", dict(lr_decay_style="wsd"), ScheduleError, "did you mean 'WSD'"),
    ("wd-style", dict(wd_incr_style="exp"), ScheduleError, "wd_incr_style='exp' is not one of"),
    (
        "wsd-no-steps",
        dict(lr_decay_style="WSD", lr_wsd_decay_style="linear"),
        ScheduleError,
        "wsd_decay_steps=None with lr_decay_style='WSD'",
    ),
    (
        "wsd-no-style",
        dict(lr_decay_style="WSD", wsd_decay_steps=10),
        ScheduleError,
        "lr_wsd_decay_style=None with lr_decay_style='WSD'",
    ),
    (
        "wsd-bad-style",
        dict(lr_decay_style="WSD", wsd_decay_steps=10, lr_wsd_decay_style="sqrt"),
        ScheduleError,
        "lr_wsd_decay_style='sqrt' is not one of",
    ),
    (
        "wsd-negative",
        dict(lr_decay_style="WSD", wsd_decay_steps=-1, lr_wsd_decay_style="linear"),
        ScheduleError,
        "wsd_decay_steps=-1 is negative",
    ),
    (
        "wd-steps-zero",
        dict(wd_incr_style="linear", end_wd=0.2, wd_incr_steps=0),
        ScheduleError,
        "wd_incr_steps=0 with wd_incr_style='linear'; expected a number > 0",
    ),
    (
        "constant-wd-differs",
        dict(end_wd=0.2),
        ScheduleError,
        "start_wd=0.1 and end_wd=0.2 differ with wd_incr_style='constant'",
    ),
    ("negative-lr", dict(max_lr=-1e-3), ScheduleError, "max_lr=-0.001 is negative"),
    ("negative-min", dict(min_lr=-1.0), ScheduleError, "min_lr=-1.0 is negative"),
    ("nan-lr", dict(max_lr=float("nan")), ScheduleError, "max_lr=nan is not finite"),
    (
        "inf-decay",
        dict(lr_decay_steps=float("inf")),
        ScheduleError,
        "lr_decay_steps=inf is not finite",
    ),
    ("negative-warmup", dict(lr_warmup_steps=-1), ScheduleError, "lr_warmup_steps=-1 is negative"),
    ("min-above-max", dict(min_lr=1e-2), ScheduleError, "min_lr=0.01 is greater than max_lr=0.001"),
    (
        "init-above-max",
        dict(init_lr=1e-2),
        ScheduleError,
        "init_lr=0.01 is greater than max_lr=0.001; expected 0 <= init_lr <= max_lr",
    ),
    (
        "warmup-too-long",
        dict(lr_warmup_steps=100),
        ScheduleError,
        "lr_warmup_steps=100 is not below lr_decay_steps=100",
    ),
    (
        "decay-zero",
        dict(lr_decay_steps=0, lr_warmup_steps=0),
        ScheduleError,
        "lr_decay_steps=0; expected a number > 0",
    ),
    (
        "end-below-start",
        dict(wd_incr_style="linear", start_wd=0.2, end_wd=0.1),
        ScheduleError,
        "end_wd=0.1 is below start_wd=0.2",
    ),
    ("negative-wd", dict(start_wd=-0.1, end_wd=-0.1), ScheduleError, "start_wd=-0.1 is negative"),
    (
        "string-lr",
        dict(max_lr="3e-4"),
        ScheduleTypeError,
        "max_lr='3e-4' is of type str; expected a number",
    ),
    (
        "bool-steps",
        dict(lr_decay_steps=True),
        ScheduleTypeError,
        "lr_decay_steps=True is of type bool",
    ),
    ("none-lr", dict(max_lr=None), ScheduleTypeError, "max_lr=None is of type NoneType"),
    ("style-not-str", dict(lr_decay_style=1), ScheduleError, "lr_decay_style=1 is not one of"),
]


@pytest.mark.parametrize("changes,error,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_configuration_is_refused(changes, error, message):
    with pytest.raises(error) as info:
        Schedule(**{**GOOD, **changes})
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_type_errors_are_also_type_errors():
    with pytest.raises(TypeError):
        Schedule(**{**GOOD, "max_lr": "x"})


@pytest.mark.parametrize(
    "step,message",
    [
        (-1, "step=-1 is negative"),
        (float("nan"), "step=nan is not finite"),
        ("3", "step='3' is of type str"),
        (np.array([1.0, -2.0]), "step[1]=-2.0 is negative or not finite"),
        (np.array([[1, 2], [3, np.inf]]), "step[(1, 1)]=inf is negative or not finite"),
        (np.array(["a"]), "step has dtype <U1"),
    ],
    ids=["negative", "nan", "str", "array-negative", "array-inf", "array-str"],
)
def test_bad_steps_are_refused(step, message):
    schedule = Schedule(**GOOD)
    with pytest.raises(ScheduleError) as info:
        schedule.lr(step)
    assert message in str(info.value)


def test_wsd_fields_are_checked_even_when_unused():
    Schedule(**GOOD, lr_wsd_decay_style="exponential", wsd_decay_steps=10**9)  # Megatron's default
    with pytest.raises(ScheduleError, match="lr_wsd_decay_style='expo' is not one of"):
        Schedule(**GOOD, lr_wsd_decay_style="expo")


# ------------------------------------------------------------------ properties

configs = st.randoms(use_true_random=False).map(lambda rng: (random_config(rng), rng))


def _ulps(x: float, n: int = 2):
    return n * math.ulp(max(abs(x), 1e-300))


@settings(max_examples=300, deadline=None)
@given(configs)
def test_array_path_equals_scalar_path(drawn):
    config, rng = drawn
    schedule = Schedule(**config)
    points = [p for b in boundaries(config) for p in (b - 1, b, b + 0.5, b + 1) if p >= 0]
    points += [rng.uniform(0, 1.5 * config["lr_decay_steps"]) for _ in range(50)]
    points += [rng.randint(0, 2 * config["lr_decay_steps"]) for _ in range(50)]
    steps = np.array(points)
    scalar = [schedule.lr(s) for s in points]
    assert schedule.lr(steps).tolist() == scalar  # every style, the inverse square root too
    assert schedule.wd(steps).tolist() == [schedule.wd(s) for s in points]


@settings(max_examples=300, deadline=None)
@given(configs)
def test_lr_stays_within_bounds_and_is_monotone(drawn):
    config, _ = drawn
    schedule = Schedule(**config)
    w, d = schedule.lr_warmup_steps, schedule.lr_decay_steps
    # A subnormal (max_lr - init_lr) * step loses bits, and the warmup (Megatron's
    # formula, which paramsched keeps) can then overshoot max_lr: e.g. a warmup of
    # 3e-309 steps. The bounds below are for warmups whose product is a normal float.
    assume(
        w == 0
        or (schedule.max_lr - schedule.init_lr) * w == 0
        or (schedule.max_lr - schedule.init_lr) * w >= sys.float_info.min
    )
    steps = np.unique(np.concatenate([np.linspace(0, 1.3 * d, 3001), boundaries(config)]))
    lr = schedule.lr(steps)
    warm = steps <= w if w > 0 else np.zeros(steps.shape, bool)
    low = min(schedule.init_lr, schedule.min_lr)
    # Rounding may put a value one or two ulps past an end point; the exact values are
    # Megatron's (see the differential tests), these are the real-number bounds.
    assert np.all(lr >= low - _ulps(low)) and np.all(lr <= schedule.max_lr + _ulps(schedule.max_lr))
    assert np.all(np.diff(lr[warm]) >= 0), "warmup rises"
    after = lr[~warm]
    assert np.all(after >= schedule.min_lr - _ulps(schedule.min_lr))
    if schedule.lr_decay_style != "constant":
        assert np.all(np.diff(after) <= 0), "decay never rises"
        assert schedule.lr(d) == schedule.min_lr or schedule.lr_decay_style == "inverse-square-root"
        assert schedule.lr(d + 1e-9) == schedule.min_lr


@settings(max_examples=300, deadline=None)
@given(configs)
def test_lr_is_continuous_at_phase_boundaries(drawn):
    config, _ = drawn
    schedule = Schedule(**config)
    # Subnormal rates and products lose their low bits (Megatron's formula, kept as it is);
    # continuity is a property of normal ones.
    assume(schedule.max_lr == 0 or schedule.max_lr >= sys.float_info.min * 2**52)
    rise = (schedule.max_lr - schedule.init_lr) * schedule.lr_warmup_steps
    assume(
        schedule.max_lr == schedule.init_lr
        or schedule.lr_warmup_steps == 0
        or rise >= sys.float_info.min * 2**52
    )
    # An anneal that starts inside the warmup jumps at the warmup's end, by design.
    assume(
        schedule.lr_decay_style != "WSD"
        or schedule.lr_decay_steps - schedule.wsd_decay_steps >= schedule.lr_warmup_steps
    )
    scale = schedule.max_lr
    lengths = [
        schedule.lr_warmup_steps,
        schedule.lr_decay_steps - schedule.lr_warmup_steps,
        schedule.wsd_decay_steps or 0,
    ]
    shortest = min(length for length in lengths if length > 0)
    for point in boundaries(config):
        if point <= 0 or point > schedule.lr_decay_steps:
            continue
        if schedule.lr_decay_style == "inverse-square-root" and point == schedule.lr_decay_steps:
            continue  # the inverse square root drops to min_lr: a jump by design
        # Each shape moves by at most 2 * x (slope below pi / 2) or sqrt(x) (minus_sqrt)
        # over a fraction x of its phase.
        below, above = point - 1e-12 * point, point + 1e-12 * point
        at = schedule.lr(point)
        for near in (below, above):
            x = abs(near - point) / shortest  # the distance as the floats have it
            bound = scale * (2 * x + math.sqrt(x)) + _ulps(scale, 4)
            assert abs(schedule.lr(near) - at) <= bound


@settings(max_examples=200, deadline=None)
@given(configs)
def test_wd_rises_from_start_to_end(drawn):
    config, _ = drawn
    schedule = Schedule(**config)
    steps = np.linspace(0, 1.2 * max(schedule.wd_incr_steps, 1), 2001)
    wd = schedule.wd(steps)
    assert np.all(np.diff(wd) >= 0)
    assert wd[-1] == schedule.end_wd
    assert (
        schedule.wd(0) == schedule.start_wd
        or schedule.wd_incr_style == "constant"
        or schedule.wd_incr_steps == 0
    )


def test_random_config_generator_covers_every_style():
    rng = random.Random(0)
    seen = {random_config(rng)["lr_decay_style"] for _ in range(200)}
    assert seen == {"constant", "linear", "cosine", "inverse-square-root", "WSD"}
