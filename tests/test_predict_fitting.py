"""Fitting: the paper's split of its 25M curves, synthetic laws recovered, and the fits
that must fail."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from predict_data import FIT, PAPER, held_out_figures, run

pytest.importorskip("scipy")

from paramsched.predict import (  # noqa: E402
    AnnealingLaw,
    MultiPowerLaw,
    PredictError,
    fit,
    fitting,  # noqa: E402
)

#: What the fit reaches on the six held-out curves, averaged: short of the paper's figures
#: on every metric (see docs/how-to/predict.md).
REACHED = {"R2": 0.99816, "MAE": 0.00405, "RMSE": 0.00482, "PredE": 0.00120, "WorstE": 0.00422}


@pytest.fixture(scope="module")
def fitted():
    return fit([run(name) for name in FIT])


def test_the_fit_on_three_curves_predicts_the_six_others(fitted):
    _, average = held_out_figures(fitted, exact=False)
    printed = {"R2": 5, "MAE": 5, "RMSE": 5, "PredE": 5, "WorstE": 5}
    assert {m: round(v, printed[m]) for m, v in average.items()} == REACHED
    # The paper's own figures are better on every metric: the goal is not met.
    assert average["R2"] < PAPER["R2"] and average["PredE"] > PAPER["PredE"]


def test_cross_validation_chooses_the_strongest_ridge_on_the_25m_curves(fitted):
    assert fitted.fitted == {"peak_lr": 3e-4, "max_step": 23936, "ridge": 1000.0}


def test_the_annealing_law_fits_the_same_curves():
    law = fit([run(name) for name in FIT], law="annealing")
    _, average = held_out_figures(law, exact=False)
    assert round(average["PredE"], 5) == 0.00152 and round(average["R2"], 5) == 0.99762


def synthetic(law, schedules, steps):
    return [(lrs, steps, law.loss(lrs, steps)) for lrs in schedules]


SCHEDULES = [
    np.full(3000, 3e-4),
    np.r_[np.full(2000, 3e-4), np.linspace(3e-4, 3e-5, 1000)],
    np.r_[np.full(1500, 3e-4), np.full(1500, 1e-4)],
]


@pytest.mark.parametrize(
    "truth",
    [
        MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6),
        AnnealingLaw(L0=3.0, A=0.5, alpha=0.5, C=2.0, lam=0.995),
    ],
    ids=["multi-power", "annealing"],
)
def test_a_law_without_noise_is_fitted_back(truth):
    steps = np.arange(100, 3000, 25)
    law = fit(synthetic(truth, SCHEDULES[:2], steps), law=truth.name, ridge=0.0)
    check = SCHEDULES[2]
    assert np.max(np.abs(law.loss(check, steps) - truth.loss(check, steps))) < 2e-3


def test_fewer_points_than_parameters_are_refused():
    lrs = np.full(100, 1e-3)
    with pytest.raises(PredictError, match="6 logged points; the multi-power law has 7 parameters"):
        fit([(lrs, [10, 20, 30], [3.0, 2.9, 2.8]), (lrs, [40, 50, 60], [2.7, 2.6, 2.5])])


def test_a_fit_that_does_not_converge_returns_no_law(monkeypatch):
    monkeypatch.setattr(fitting, "_minimize", lambda *args, **kw: (None, float("inf"), False))
    lrs = np.full(100, 1e-3)
    steps = np.arange(10, 100, 10)
    with pytest.raises(
        PredictError, match="the multi-power fit did not converge .* no law is returned"
    ):
        fit([(lrs, steps, 3.0 + 1.0 / steps)], ridge=1.0)


def test_an_unknown_law_or_runs_of_the_wrong_type_are_refused():
    with pytest.raises(
        PredictError, match="law='power'; expected one of 'multi-power', 'annealing'"
    ):
        fit([], law="power")
    with pytest.raises(PredictError, match="runs is of type dict"):
        fit({})
    with pytest.raises(PredictError, match=r"runs\[0\] is of type int"):
        fit([3])
    with pytest.raises(PredictError, match="runs is empty"):
        fit([])


def test_without_scipy_the_fit_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    lrs = np.full(100, 1e-3)
    with pytest.raises(PredictError, match=r'needs SciPy: pip install "paramsched\[predict\]"'):
        fit([(lrs, np.arange(10, 100, 10), np.linspace(3, 2, 9))], ridge=1.0)
