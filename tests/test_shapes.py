"""Tests for paramsched.shapes: end points, monotonicity, and the array twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched.shapes import ARRAY, SHAPES, warmup

NAMES = sorted(SHAPES)


@pytest.mark.parametrize("name", NAMES)
def test_decay_runs_from_one_to_zero(name):
    assert SHAPES[name].decay(0.0) == 1.0
    assert SHAPES[name].decay(1.0) == 0.0


@pytest.mark.parametrize("name", NAMES)
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
