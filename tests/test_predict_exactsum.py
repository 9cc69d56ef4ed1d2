"""The multi-power law's exact sum as the fit lays it out: the law's every term, its
Jacobian, the limit at a rate of 0, and the gathered form beyond `EXACT_PAIRS`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched.predict import MultiPowerLaw, exactsum
from paramsched.predict.exactsum import ExactSum, Gathered, pair_count
from paramsched.predict.laws import terms

THETA = np.array([3.0, 0.5, 0.5, 300.0, 2.0, 0.6, 0.6])


def term_by_term(lrs, steps, theta, jacobian=True):
    """The law's `_curve` on every (point, change) term."""
    area = np.cumsum(lrs)[steps]
    return MultiPowerLaw._curve(theta, area, terms(lrs, steps, 2**62), jacobian)


@st.composite
def schedules(draw):
    """Piecewise rates (held, linear or jumping pieces, some of 0 after the first),
    and increasing points after the first positive rate."""
    pieces = draw(st.lists(st.tuples(st.integers(1, 400), st.floats(0.0, 1e-3)), max_size=6))
    first = draw(st.floats(1e-5, 1e-3))
    parts, last = [np.full(draw(st.integers(1, 300)), first)], first
    for length, rate in pieces:
        if draw(st.booleans()):
            parts.append(np.linspace(last, rate, length))
        else:
            parts.append(np.full(length, rate))
        last = rate
    lrs = np.concatenate(parts)
    steps = np.unique(draw(st.lists(st.integers(0, len(lrs) - 1), min_size=1, max_size=40)))
    theta = THETA * np.exp(draw(st.lists(st.floats(-0.5, 0.5), min_size=7, max_size=7)))
    return lrs, steps, theta


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_the_exact_sum_is_the_laws_every_term(case):
    lrs, steps, theta = case
    value, jac = ExactSum(lrs, steps).curve(theta, True)
    expected, expected_jac = term_by_term(lrs, steps, theta)
    np.testing.assert_allclose(value, expected, rtol=1e-13, atol=0)
    scale = np.max(np.abs(expected_jac), axis=0) + 1e-300
    np.testing.assert_allclose(jac / scale, expected_jac / scale, rtol=0, atol=1e-11)
    np.testing.assert_array_equal(ExactSum(lrs, steps).curve(theta)[0], value)


def test_a_point_after_thousands_of_changes_is_summed_in_pieces(monkeypatch):
    monkeypatch.setattr(exactsum, "PIECE", 1000)
    lrs = np.r_[np.linspace(0, 3e-4, 2500), 3e-5 + 2.7e-4 * np.cos(np.arange(4000) / 2600) ** 2]
    steps = np.arange(10, 6500, 333)
    law_sum = ExactSum(lrs, steps)
    assert max(hi - lo for _, lo, hi in law_sum.pieces) == 1000 and len(law_sum.pieces) > 50
    value, jac = law_sum.curve(THETA, True)
    expected, expected_jac = term_by_term(lrs, steps, THETA)
    np.testing.assert_allclose(value, expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(jac, expected_jac, rtol=1e-10, atol=1e-13)
    assert law_sum.pairs == pair_count(lrs, steps) == terms(lrs, steps, 2**62).point.size


def test_a_drop_to_a_rate_of_0_takes_the_laws_limit():
    lrs = np.r_[np.full(100, 1e-3), np.zeros(50), np.full(50, 1e-4)]
    steps = np.array([99, 100, 149, 150, 199])
    value, _ = ExactSum(lrs, steps).curve(THETA, True)
    np.testing.assert_array_equal(value, term_by_term(lrs, steps, THETA)[0])
    assert np.all(np.isfinite(value))


def test_points_before_any_change_have_no_drop():
    lrs = np.r_[np.full(100, 1e-3), np.full(100, 5e-4)]
    value, jac = ExactSum(lrs, np.array([0, 50, 99])).curve(THETA, True)
    area = np.cumsum(lrs)[[0, 50, 99]]
    np.testing.assert_allclose(value, 3.0 + 0.5 * area**-0.5, rtol=1e-15)
    assert not jac[:, 3:].any()


def test_a_run_beyond_the_exact_pairs_is_fitted_gathered(monkeypatch):
    from paramsched.predict import adamfit
    from paramsched.predict.runs import LossRun

    lrs = np.r_[np.linspace(0, 3e-4, 500), np.linspace(3e-4, 3e-5, 3000)]
    steps = np.arange(600, 3500, 100)
    truth = MultiPowerLaw(*THETA)
    run = LossRun.of(lrs, steps, truth.loss(lrs, steps, exact=True))
    assert isinstance(adamfit.prepare([run])[0][0], ExactSum)
    monkeypatch.setattr(adamfit, "EXACT_PAIRS", pair_count(lrs, steps) - 1)
    law_sum, log_loss = adamfit.prepare([run])[0]
    assert isinstance(law_sum, Gathered)
    value, _ = law_sum.curve(THETA, True)
    assert np.max(np.abs(np.log(value) - log_loss)) < 1e-5  # the far drops gathered
    assert not np.array_equal(np.log(value), log_loss)


@pytest.mark.parametrize("jacobian", [False, True])
def test_the_exact_sum_evaluates_without_allocating_per_point(jacobian):
    # every point's pieces reuse the same buffers: the evaluation holds a few arrays of
    # one per change, never one of one per term (2.4M terms: 19 MB each)
    import tracemalloc

    lrs = np.r_[np.linspace(0, 3e-4, 2000), np.linspace(3e-4, 3e-5, 20000)]
    law_sum = ExactSum(lrs, np.arange(2000, 22000, 100))
    tracemalloc.start()
    law_sum.curve(THETA, jacobian)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert law_sum.pairs > 2_000_000 and peak < 1_000_000
