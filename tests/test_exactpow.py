"""Tests for paramsched.core._exactpow: pow_array is math.pow, bit for bit, element by element."""

from __future__ import annotations

import math
import platform
import subprocess
import sys
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched.core import _exactpow
from paramsched.core._exactpow import pow_array

POWERS = [0.5, 1.5, 2.0, 3.0, 7.3]


def libm(base, exponent) -> np.ndarray:
    """The reference: math.pow on every element."""
    base, exponent = np.broadcast_arrays(np.asarray(base, float), np.asarray(exponent, float))
    values = map(math.pow, base.ravel().tolist(), exponent.ravel().tolist())
    return np.fromiter(values, np.float64, base.size).reshape(base.shape)


def assert_same_bits(got, want):
    assert got.shape == want.shape
    differ = np.flatnonzero(got.view(np.int64).ravel() != want.view(np.int64).ravel())
    assert differ.size == 0, f"{differ.size} elements differ, the first at {differ[:5]}"


def ratios(rng, count: int) -> np.ndarray:
    """Ratios in [0, 1]: uniform, step ratios k/n and (n - a)/w, ends and tiny values."""
    steps = [np.arange(n + 1) / n for n in range(1, 301)]
    for n in rng.integers(301, 10**7, 40):
        steps.append(rng.integers(0, n + 1, 10_000) / n)
    w = 10**7
    steps.append((w - np.arange(0, w + 1, 37)) / w)
    tiny = [
        0.0,
        1.0,
        5e-324,
        1e-320,
        2.0**-1022,
        2.0**-1000,
        1e-300,
        1e-20,
        2.0**-53,
        2.0**-52,
        1.0 - 2.0**-53,
        0.5,
        0.25,
        1 / 3,
    ]
    return np.concatenate([rng.random(count), *steps, tiny])


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture(scope="module", autouse=True)
def fast_path_for_small_inputs_too():
    """Small inputs normally go to math.pow whole; here they take the fast path."""
    saved, _exactpow._MIN_FAST = _exactpow._MIN_FAST, 0
    yield
    _exactpow._MIN_FAST = saved


def test_exponential_anneal_shape_matches_math_pow(rng):
    r = ratios(rng, 2_000_000)
    assert r.size > 2_500_000
    assert_same_bits(pow_array(0.5, r), libm(0.5, r))


@pytest.mark.parametrize("power", POWERS)
def test_polynomial_shape_matches_math_pow(rng, power):
    base = 1.0 - ratios(rng, 700_000)
    assert base.size > 1_000_000
    assert_same_bits(pow_array(base, power), libm(base, power))


def test_general_inputs_match_math_pow(rng):
    base = np.concatenate(
        [
            2.0 ** rng.uniform(-1070, 1020, 100_000),
            rng.random(100_000),
            1.0 + rng.standard_normal(100_000) * 1e-12,
        ]
    )
    exponent = rng.choice([-1.0, 1.0], base.size) * 10.0 ** rng.uniform(-20, 4, base.size)
    with np.errstate(all="ignore"):
        s = np.log2(base) * exponent
    keep = np.isfinite(s) & (s < 1000)  # no overflow
    assert_same_bits(pow_array(base[keep], exponent[keep]), libm(base[keep], exponent[keep]))


def test_exact_midpoints_and_exact_results(rng):
    # x with 27 bits: x**2 can lie exactly halfway between two doubles, where pow may round
    # either way; and squares, cubes and square roots that are doubles themselves.
    x = rng.integers(2**26, 2**27, 200_000) * 2.0**-26
    c = rng.integers(2**17, 2**18, 200_000) * 2.0**-17
    for base, power in [(x, 2.0), (c, 3.0), (x * x, 0.5), (x * x, 1.5), (x * 0.7, 2.0)]:
        assert_same_bits(pow_array(base, power), libm(base, power))


def test_exact_results_and_special_elements():
    base = [0.0, 0.0, 1.0, 1.0, 2.0, 0.25, 3.0, 0.5, 1e-310, 7.0, np.inf, np.nan, 1.0, -2.0]
    exponent = [2.0, 0.0, 7.3, -1e300, 10.0, 0.5, 1.0, 0.0, 2.0, -0.0, 0.5, 0.0, np.nan, 3.0]
    got = pow_array(base, exponent)
    assert_same_bits(got, libm(base, exponent))
    assert got[:8].tolist() == [0.0, 1.0, 1.0, 1.0, 1024.0, 0.5, 3.0, 1.0]


def test_small_inputs_take_math_pow_whole(rng, monkeypatch):
    monkeypatch.setattr(_exactpow, "_MIN_FAST", 3000)
    r = rng.random(2999)
    assert_same_bits(pow_array(0.5, r), libm(0.5, r))
    monkeypatch.setattr(_exactpow, "_fast", None)  # not called
    assert_same_bits(pow_array(1.0 - r, 2.5), libm(1.0 - r, 2.5))


def test_shapes_broadcast_like_numpy():
    assert pow_array(0.5, 0.25).shape == ()
    assert isinstance(pow_array(0.5, 0.25), np.ndarray)
    assert pow_array(np.empty((0, 3)), 2.0).shape == (0, 3)
    assert pow_array(0.5, []).shape == (0,)
    base, exponent = np.linspace(0.1, 2, 7)[:, None], np.linspace(-1, 3, 5)[None, :]
    assert_same_bits(pow_array(base, exponent), libm(base, exponent))
    assert_same_bits(pow_array(base.T, 2.5), libm(base.T, 2.5))  # not contiguous
    assert_same_bits(pow_array([1.5, 2.5], [[2], [3]]), libm([1.5, 2.5], [[2], [3]]))


def test_errors_name_the_argument_and_value():
    with pytest.raises(ValueError, match=r"base=-2.0, exponent=0.5"):
        pow_array([4.0, -2.0], 0.5)
    with pytest.raises(OverflowError, match=r"base=10.0, exponent=400.0"):
        pow_array(10.0, [1.0, 400.0])
    with pytest.raises(ValueError, match=r"base=0.0, exponent=-1.0"):
        pow_array(0.0, -1.0)
    with pytest.raises(ValueError, match="base='x'"):
        pow_array("x", 1.0)
    with pytest.raises(TypeError, match="exponent=1j"):
        pow_array(2.0, 1j)
    with pytest.raises(ValueError, match="do not broadcast"):
        pow_array([1.0, 2.0], [1.0, 2.0, 3.0])


def test_the_math_pow_path_gives_the_same_results(rng, monkeypatch):
    base = np.concatenate([1.0 - ratios(rng, 100_000)[:200_000], [0.0, 2.0, 1e-310]])
    fast = pow_array(base, 7.3), pow_array(0.5, base)
    monkeypatch.setattr(_exactpow, "_FAST", False)
    slow = pow_array(base, 7.3), pow_array(0.5, base)
    for got, want in zip(slow, fast):
        assert_same_bits(got, want)
    assert_same_bits(slow[0], libm(base, 7.3))


def estimate(base, exponent):
    """log2(base) as (hi, lo, valid) and the fast path's (rounded, unsafe, y0, d)."""
    base, exponent = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (base, exponent))
    n = max(base.size, exponent.size)
    with np.errstate(all="ignore"):
        log_base = _exactpow._log2(base, np.empty((11, base.size)))
        return log_base, _exactpow._fast(exponent, log_base, np.empty((10, n)), np.empty(n))


def unsafe_fraction(base, exponent) -> float:
    return float(estimate(base, exponent)[1][1].mean())


@pytest.mark.parametrize("power", [None, *POWERS])
def test_few_elements_need_math_pow(rng, power):
    # The speed comes from here: about 2 * (1/32) of random elements are near a midpoint.
    r = rng.random(1_000_000)
    fraction = unsafe_fraction([0.5], r) if power is None else unsafe_fraction(1.0 - r, [power])
    assert 0.03 < fraction < 0.15


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the fast path is for glibc")
def test_fast_path_is_on_with_glibc():
    # Guards the speed: the fast path must not be switched off by mistake here.
    assert _exactpow._FAST == (platform.machine() in ("x86_64", "aarch64") and sys.maxsize > 2**32)


def test_estimate_error_is_within_the_documented_bound(rng):
    """The estimate before rounding is within 0.004 + 0.0001*|s| ULP; log2 to 2**-66."""
    cases = [
        (np.full(400, 0.5), rng.random(400)),
        (1.0 - rng.random(400), np.full(400, 7.3)),
        (2.0 ** rng.uniform(-300, 300, 400), rng.uniform(-1.5, 1.5, 400)),
        (1.0 + rng.standard_normal(400) * 1e-9, rng.standard_normal(400) * 1e9),
    ]
    worst = 0.0
    with localcontext() as ctx, np.errstate(all="ignore"):
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        for base, exponent in cases:
            (hi, lo, _), (rounded, _, y0, d) = estimate(base, exponent)
            columns = (base, exponent, hi, lo, rounded, y0, d)
            for x, y, h, low, v, v0, dv in zip(*(a.tolist() for a in columns)):
                log2 = Decimal(x).ln() / ln2
                if log2:
                    assert abs((Decimal(h) + Decimal(low) - log2) / log2) < Decimal(2) ** -66
                true = Decimal(x) ** Decimal(y)
                value = Decimal(v) + Decimal(dv) * Decimal(v) / Decimal(v0)
                ulps = float(abs(value - true) / Decimal(math.ulp(float(true))))
                bound = 0.004 + 0.0001 * abs(float(Decimal(y) * log2))
                assert ulps < bound, (x, y, ulps)
                worst = max(worst, ulps / bound)
    assert worst > 0.0


finite = st.floats(allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, allow_infinity=False) | st.floats(0.0, 2.0)


def check_pairs(pairs):
    base, exponent = (np.array(v, dtype=np.float64) for v in zip(*pairs))
    try:
        want = libm(base, exponent)
    except (ValueError, OverflowError) as err:
        with pytest.raises(type(err)):
            pow_array(base, exponent)
        return
    assert_same_bits(pow_array(base, exponent), want)


@settings(max_examples=300)
@given(st.lists(st.tuples(non_negative, finite), min_size=1, max_size=40))
def test_property_matches_math_pow_in_the_supported_domain(pairs):
    check_pairs(pairs)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=40))
def test_property_matches_math_pow_for_ratios(pairs):
    check_pairs([(0.5, r) for r, _ in pairs] + [(1.0 - r, 10 * p) for r, p in pairs])


@settings(max_examples=200)
@given(st.lists(st.tuples(st.floats(), st.floats()), min_size=1, max_size=10))
def test_property_anything_else_is_deferred_to_math_pow(pairs):
    check_pairs(pairs)


def test_benchmark_script_runs():
    script = Path(__file__).parent.parent / "benchmarks" / "exactpow.py"
    result = subprocess.run(
        [sys.executable, str(script), "--size", "5000", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "0.5 ** r" in result.stdout
