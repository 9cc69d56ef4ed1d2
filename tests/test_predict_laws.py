"""The laws: the paper's figures from its parameters, the gathered sum against the exact
one, the laws' files, extrapolation warnings, and properties."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from predict_data import FIT, HELD_OUT, PAPER, PAPER_PARAMS, held_out_figures, run

from paramsched.predict import AnnealingLaw, MultiPowerLaw, PredictError, law_from_dict, laws

PAPER_LAW = MultiPowerLaw(**PAPER_PARAMS)
LAW = MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)
ANNEALING = AnnealingLaw(L0=3.0, A=0.5, alpha=0.5, C=300.0, lam=0.999)


def test_the_papers_parameters_give_the_papers_figures():
    _, average = held_out_figures(PAPER_LAW, exact=True)
    printed = {"R2": 4, "MAE": 5, "RMSE": 5, "PredE": 5, "WorstE": 5}
    assert {m: round(v, printed[m]) for m, v in average.items()} == PAPER


@pytest.mark.parametrize("name", [*FIT, *HELD_OUT])
def test_gathered_drops_are_within_1e_6_of_the_exact_sum(name):
    logged = run(name)
    exact = PAPER_LAW.loss(logged.lrs, logged.steps, exact=True)
    gathered = PAPER_LAW.curve(
        np.asarray(list(PAPER_PARAMS.values())),
        logged.lrs,
        logged.steps,
        laws.terms(logged.lrs, logged.steps, exact_terms=0),
    )[0]
    assert np.max(np.abs(gathered - exact)) < 1e-6


def naive(law, lrs, steps):
    """The law's formula, step by step."""
    p = law.params
    out = []
    for t in steps:
        area = sum(lrs[: t + 1])
        drop = 0.0
        for k in range(1, t + 1):
            d = lrs[k - 1] - lrs[k]
            if d == 0:
                continue
            after = sum(lrs[k : t + 1])
            if isinstance(law, MultiPowerLaw):
                drop += (
                    p["B"] * d * (1 - (p["C"] * lrs[k] ** -p["gamma"] * after + 1) ** -p["beta"])
                )
            else:
                drop += p["C"] * d * (1 - p["lam"] ** (t - k + 1)) / (1 - p["lam"])
        out.append(p["L0"] + p["A"] * area ** -p["alpha"] - drop)
    return np.asarray(out)


rates = st.lists(st.floats(1e-5, 1e-3), min_size=2, max_size=40)


@settings(max_examples=40)
@given(rates, st.sampled_from([LAW, ANNEALING]))
def test_the_sum_is_the_formula_step_by_step(values, law):
    lrs = np.asarray(values)
    steps = np.arange(len(lrs))
    assert np.allclose(law.loss(lrs, steps), naive(law, lrs, steps), rtol=1e-12, atol=1e-12)


@settings(max_examples=30)
@given(st.floats(1e-5, 1e-2), st.integers(2, 5000))
def test_a_constant_rate_has_no_drop_and_a_falling_loss(rate, count):
    lrs = np.full(count, rate)
    steps = np.arange(count)
    loss = LAW.loss(lrs, steps)
    assert np.array_equal(loss, 3.0 + 0.5 * np.cumsum(lrs) ** -0.5)
    assert np.all(np.diff(loss) <= 0)


@pytest.mark.parametrize("law", [LAW, ANNEALING], ids=["multi-power", "annealing"])
@pytest.mark.parametrize("ridge", [{"ridge": 1.0}, {}], ids=["ridge", "no-ridge"])
def test_a_law_reads_back_from_its_dict(law, ridge):
    fitted = type(law)(**law.params, fitted={"peak_lr": 3e-4, "max_step": 100, **ridge})
    again = law_from_dict(fitted.to_dict())
    assert again == fitted and again.fitted == fitted.fitted and again.params == law.params
    assert set(again.to_dict()["fitted"]) == {"peak_lr", "max_step", *ridge}


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "law is of type list; expected an object"),
        ({"law": "power", "params": {}}, "law.law='power'; expected one of 'multi-power'"),
        ({"law": "annealing", "params": {"L0": 1}}, "law.params={'L0': 1}; expected an object"),
        (
            {"law": "annealing", "params": dict(L0="3", A=1, alpha=1, C=1, lam=0.5)},
            "L0='3' is of type str; expected a number",
        ),
        (
            {"law": "annealing", "params": dict(L0=3, A=1, alpha=1, C=1, lam=1.5)},
            "lam=1.5; expected a number in (0, 1)",
        ),
        (
            {"law": "annealing", "params": dict(L0=3, A=True, alpha=1, C=1, lam=0.5)},
            "A=True is of type bool",
        ),
        ({"law": "annealing", "params": {}, "extra": 1}, "law has the key 'extra'"),
        (
            {**ANNEALING.to_dict(), "fitted": {"peak_lr": 1.0, "max_step": 1.5, "ridge": 0}},
            "fitted.max_step=1.5 is of type float; expected a whole number",
        ),
        (
            {**ANNEALING.to_dict(), "fitted": {"peak_lr": 1.0, "ridge": 0}},
            "expected an object with the keys peak_lr, max_step and optionally ridge",
        ),
        (
            {**ANNEALING.to_dict(), "fitted": {"peak_lr": 1.0, "max_step": 5, "lr": 0}},
            "expected an object with the keys peak_lr, max_step and optionally ridge",
        ),
    ],
    ids=[
        "list",
        "name",
        "keys",
        "string",
        "range",
        "bool",
        "extra",
        "fitted",
        "missing",
        "unknown",
    ],
)
def test_a_bad_law_is_refused_by_field(data, message):
    with pytest.raises(PredictError, match=None) as error:
        law_from_dict(data)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "lrs, steps, message",
    [
        ([1e-3, float("nan")], [1], "lrs[1]=nan; expected a finite rate >= 0"),
        ([1e-3, -1e-3], [1], "lrs[1]=-0.001; expected a finite rate >= 0"),
        ([0.0, 0.0], [1], "lrs are all 0"),
        ([1e-3, 1e-3], [2], "steps holds 2; expected steps 0..1"),
        ([1e-3, 1e-3], [0.5], "expected whole steps"),
        ([0.0, 1e-3], [0], "before the first positive rate (step 1)"),
        ("abc", [0], "lrs is not an array of numbers"),
    ],
    ids=["nan", "negative", "zeros", "beyond", "fraction", "untrained", "text"],
)
def test_bad_rates_or_steps_are_refused(lrs, steps, message):
    with pytest.raises(PredictError) as error:
        LAW.loss(lrs, steps)
    assert message in str(error.value)


def test_a_prediction_beyond_the_fitted_range_warns_once_each(caplog):
    law = MultiPowerLaw(**LAW.params, fitted={"peak_lr": 1e-3, "max_step": 10, "ridge": 1.0})
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        law.loss(np.full(50, 1e-3), [10, 20])
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        law.loss(np.full(200, 2e-3), [150])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "rate of 0.002, above the peak 0.001" in messages[0]
    assert "step 150, beyond 10x the last step fitted (10)" in messages[1]


def test_a_rate_that_falls_to_zero_keeps_the_loss_finite():
    lrs = np.r_[np.full(10, 1e-3), np.zeros(10)]
    assert np.all(np.isfinite(LAW.loss(lrs, np.arange(20))))
    assert np.all(np.isfinite(ANNEALING.loss(lrs, np.arange(20))))


def test_a_huge_step_count_is_handled_by_gathering():
    lrs = np.linspace(3e-4, 3e-5, 3_000_000)
    loss = LAW.loss(lrs, np.linspace(1, 2_999_999, 50).astype(np.int64))
    assert np.all(np.isfinite(loss)) and np.all(np.diff(loss) < 0)


@pytest.mark.slow
def test_importing_paramsched_and_predict_does_not_import_scipy():
    import subprocess
    import sys

    code = (
        "import sys, paramsched, paramsched.cli, paramsched.predict; print('scipy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@st.composite
def schedules_and_points(draw):
    """Rates of held, ramped and jumping pieces, and a set of points after the first
    positive rate."""
    parts = [np.full(draw(st.integers(1, 200)), draw(st.floats(1e-5, 1e-3)))]
    for _ in range(draw(st.integers(0, 5))):
        length, rate = draw(st.integers(1, 800)), draw(st.floats(0.0, 1e-3))
        if draw(st.booleans()):
            parts.append(np.linspace(parts[-1][-1], rate, length))
        else:
            parts.append(np.full(length, rate))
    lrs = np.concatenate(parts)
    points = draw(st.lists(st.integers(0, len(lrs) - 1), min_size=1, max_size=60))
    return lrs, np.asarray(points)


@settings(max_examples=60, deadline=None)
@given(schedules_and_points(), st.sampled_from([LAW, ANNEALING]))
def test_a_points_loss_does_not_depend_on_the_other_points(case, law):
    lrs, points = case
    # limits small enough that these schedules have gathered points and several groups
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(laws, "EXACT_CHANGES", 40)
        patch.setattr(laws, "EXACT_TERMS", 300)
        together = law.loss(lrs, points)
        alone = np.array([law.loss(lrs, [p])[0] for p in points])
        reversed_ = law.loss(lrs, points[::-1])[::-1]
    assert np.array_equal(together, alone) and np.array_equal(together, reversed_)
    assert [f"{v:.5f}" for v in together] == [f"{v:.5f}" for v in alone]


def test_a_point_is_gathered_after_exact_changes_changes_whatever_is_asked_with_it():
    # a cosine of 120,000 steps: the points up to step 50,000 summed term by term, the
    # later ones gathered, alone or together
    t = np.arange(118_000)
    lrs = np.r_[np.linspace(0, 3e-4, 2000), 3e-5 + 1.35e-4 * (1 + np.cos(np.pi * t / 118_000))]
    points = np.array([2500, 30_000, 50_000, 50_001, 80_000, 119_999])
    together = PAPER_LAW.loss(lrs, points)
    assert np.array_equal(together, [PAPER_LAW.loss(lrs, [p])[0] for p in points])
    exact = PAPER_LAW.loss(lrs, points, exact=True)
    assert np.array_equal(together[:3], exact[:3])
    assert np.all(together[3:] != exact[3:]) and np.max(np.abs(together - exact)) < 1e-6
