"""Tests for paramsched.shapes: end points, monotonicity, and the array twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError
from paramsched.shapes import ARRAY, SHAPES, shape_with, warmup

NAMES = sorted(SHAPES)
#: The shapes that reach 1 and 0 exactly (tanh, as timm's, stops a hair short of both).
EXACT_ENDS = [name for name in NAMES if name != "tanh"]


@pytest.mark.parametrize("name", EXACT_ENDS)
def test_decay_runs_from_one_to_zero(name):
    assert SHAPES[name].decay(0.0) == 1.0
    assert SHAPES[name].decay(1.0) == 0.0


@pytest.mark.parametrize("name", EXACT_ENDS)
def test_rise_runs_from_zero_to_one(name):
    assert SHAPES[name].rise(0.0) == 0.0
    assert SHAPES[name].rise(1.0) == 1.0


def test_linear_rise_is_the_ratio_itself():
    # 1 - (1 - r) is not r in floating point; Megatron's weight decay uses r.
    assert SHAPES["linear"].rise(0.1) == 0.1
    assert SHAPES["linear"].decay(1 - 0.1) != 0.1


def test_cosine_rise_mirrors_decay():
    assert SHAPES["cosine"].rise(0.3) == SHAPES["cosine"].decay(1 - 0.3)


ratios = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=50, deadline=None)
@given(values=st.lists(ratios, min_size=1, max_size=200))
def test_array_namespace_is_bit_identical(name, values):
    shape = SHAPES[name]
    array = np.array(values)
    assert shape.decay(array, ARRAY).tolist() == [shape.decay(r) for r in values]
    assert shape.rise(array, ARRAY).tolist() == [shape.rise(r) for r in values]


@pytest.mark.parametrize("name", NAMES)
def test_array_namespace_is_bit_identical_on_a_dense_grid(name):
    grid = np.linspace(0.0, 1.0, 200_001)
    shape = SHAPES[name]
    assert shape.decay(grid, ARRAY).tolist() == [shape.decay(r) for r in grid.tolist()]


@pytest.mark.parametrize("name", NAMES)
def test_decay_is_monotone_and_bounded(name):
    grid = np.linspace(0.0, 1.0, 100_001)
    coeff = SHAPES[name].decay(grid, ARRAY)
    assert np.all(np.diff(coeff) <= 0)
    assert coeff.min() >= 0.0 and coeff.max() <= 1.0


def test_array_pow_matches_the_c_library_where_numpy_does_not():
    exponents = np.random.default_rng(0).random(100_000)
    exact = ARRAY.pow(0.5, exponents)
    assert exact.tolist() == [math.pow(0.5, e) for e in exponents.tolist()]
    bases = np.arange(1.0, 20_001.0)
    assert ARRAY.pow(bases, 0.5).tolist() == [b**0.5 for b in bases.tolist()]


def test_warmup_keeps_the_reference_order():
    # (peak - init) * step / w, not (peak - init) * (step / w): the two differ for 0.3, 1, 7.
    assert warmup(0.0, 0.3, 1.0, 7.0) == 0.04285714285714286
    assert 0.3 * (1.0 / 7.0) == 0.04285714285714285


def test_tanh_ends_where_timm_s_does():
    # timm's tanh at t = 0 and t = T: 0.5 * (1 - tanh(-7)) and 0.5 * (1 - tanh(3)).
    assert SHAPES["tanh"].decay(0.0) == 0.9999991684719723
    assert SHAPES["tanh"].decay(1.0) == 0.002472623156634768


# Golden values: each shape at r = 0.1, 0.25, 0.5, 0.9, from its reference: timm's tanh and
# k-decay cosine (lr_max 1, lr_min 0, T = 1), and 1 - sin(pi / 2 * r) for half_cosine.
GOLDEN = {
    ("tanh", ()): [0.9999938558253978, 0.9998766054240138, 0.9820137900379085, 0.01798620996209155],
    ("cosine", (("k", 2.0),)): [
        0.9997532801828658,
        0.9903926402016152,
        0.8535533905932737,
        0.08645971286271903,
    ],
    ("cosine", (("k", 0.5),)): [0.7728974576770602, 0.5, 0.1971500664605933, 0.006483602653438059],
    ("half_cosine", ()): [
        0.8435655349597692,
        0.6173165676349102,
        0.29289321881345254,
        0.01231165940486223,
    ],
}


@pytest.mark.parametrize("name, options", list(GOLDEN), ids=lambda v: str(v))
def test_new_shapes_golden_values(name, options):
    shape = shape_with("shape", name, dict(options))
    assert [shape.decay(r) for r in (0.1, 0.25, 0.5, 0.9)] == GOLDEN[name, options]
    grid = np.linspace(0.0, 1.0, 10_001)
    assert shape.decay(grid, ARRAY).tolist() == [shape.decay(r) for r in grid.tolist()]
    assert shape.rise(grid, ARRAY).tolist() == [shape.rise(r) for r in grid.tolist()]


def test_array_tanh_is_math_tanh_where_numpy_s_is_not():
    values = np.random.default_rng(0).uniform(-8.0, 4.0, 100_000)
    assert ARRAY.tanh(values).tolist() == [math.tanh(v) for v in values.tolist()]
    assert (np.tanh(values) != ARRAY.tanh(values)).any()  # why the array twin is not np.tanh


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("cosine", {"k": 0}, "shape.k=0; expected a number > 0"),
        ("cosine", {"k": "2"}, "shape.k='2' is of type str"),
        ("tanh", {"lower": 3, "upper": -7}, "lower=3.0 and upper=-7.0; expected lower < upper"),
        ("tanh", {"upper": float("inf")}, "shape.upper=inf is not finite"),
    ],
)
def test_new_shape_parameters_are_checked(name, options, message):
    with pytest.raises(ScheduleError, match=message):
        shape_with("shape", name, options)


def test_half_cosine_is_olmo_core_s_second_half_of_a_cosine():
    # OLMo-core's HalfCosWithWarmup after its warmup, as a fraction of the half range it
    # decays over: 2 * (1 + cos(pi * (c + T) / (2 * T))) / 2, for c = 0..T.
    total = 1000
    reference = np.array(
        [2 * ((1 + math.cos(math.pi * (c + total) / (2 * total))) / 2) for c in range(total + 1)]
    )
    mine = SHAPES["half_cosine"].decay(np.arange(total + 1) / total, ARRAY)
    assert np.abs(mine - reference).max() <= 2**-51  # two ulps of 1: the reference cancels
