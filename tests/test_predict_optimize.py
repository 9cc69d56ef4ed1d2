"""Optimizing a schedule: a valid phase schedule, never rising after the warmup, better
than cosine and WSD under the law, with the law's exact gradient."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PlainOptimizer
from predict_data import FIT, PAPER_PARAMS, rates, run

pytest.importorskip("scipy")

from paramsched import OptimizerParamScheduler, PhaseSchedule  # noqa: E402
from paramsched.predict import AnnealingLaw, MultiPowerLaw, PredictError, fit, optimize, rates_of  # noqa: E402
from paramsched.predict.optimize import final_loss_gradient, optimize_text  # noqa: E402

PAPER_LAW = MultiPowerLaw(**PAPER_PARAMS)


@pytest.fixture(scope="module")
def best():
    law = fit([run(name) for name in FIT])
    return law, optimize_text(law, 24000, 3e-4, 2160, 0.0)


def test_the_optimized_schedule_beats_cosine_and_wsd(best):
    law, (schedule, text, final) = best
    assert isinstance(schedule, PhaseSchedule)
    lrs = rates_of(schedule, 24000)
    assert final == law.loss(lrs, [23999])[0]
    assert round(final, 5) == 3.25804
    gains = {
        name: round(float(law.loss(rates(name), [23999])[0] - final), 4)
        for name in ("cosine_24000", "wsd_20000_24000", "wsdld_20000_24000")
    }
    assert gains == {"cosine_24000": 0.0571, "wsd_20000_24000": 0.0082, "wsdld_20000_24000": 0.0073}


def test_the_optimized_schedule_warms_up_then_never_rises(best):
    _, (schedule, text, _) = best
    lrs = rates_of(schedule, 24001)
    assert np.array_equal(lrs[:2161], 3e-4 * np.arange(2161) / 2160)
    assert np.all(np.diff(lrs[2160:]) <= 0) and lrs.min() >= 0
    assert text.startswith("# The schedule that minimizes the predicted final loss")


def test_the_scheduler_runs_the_optimized_schedule(best):
    _, (schedule, _, _) = best
    optimizer = PlainOptimizer([{"params": [], "lr": 0.0}])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    held = []
    for _ in range(24000):
        held.append(optimizer.param_groups[0]["lr"])
        scheduler.step(1)
    assert held == rates_of(schedule, 24000).tolist()
    assert PhaseSchedule.from_dict(schedule.to_dict()) == schedule


@pytest.mark.parametrize(
    "law",
    [PAPER_LAW, AnnealingLaw(L0=3.0, A=0.5, alpha=0.5, C=300.0, lam=0.999)],
    ids=["multi-power", "annealing"],
)
def test_the_gradient_is_the_laws(law):
    lrs = rates("wsdld_20000_24000")[:5000].copy()
    lrs[3000:] = np.linspace(3e-4, 1e-5, 2000)
    value, gradient = final_loss_gradient(law, lrs)
    assert value == pytest.approx(law.loss(lrs, [4999], exact=True)[0], rel=1e-14)
    for step in (5, 2500, 3001, 4999):
        nudge = np.zeros_like(lrs)
        nudge[step] = 1e-9
        up = law.loss(lrs + nudge, [4999], exact=True)[0]
        down = law.loss(lrs - nudge, [4999], exact=True)[0]
        assert gradient[step] == pytest.approx((up - down) / 2e-9, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=1), "steps=1; expected 2..10,000,000"),
        (dict(steps=10**12), "steps=1000000000000; expected 2..10,000,000"),
        (dict(steps=100.0), "steps=100.0; expected a whole number of steps"),
        (dict(warmup=1000), "warmup=1000; expected 0 <= warmup < steps (1000)"),
        (dict(peak_lr=float("nan")), "peak_lr=nan; expected a finite rate"),
        (dict(peak_lr=0.0), "peak_lr=0.0; expected a rate > 0"),
        (dict(min_lr=1.0), "min_lr=1.0; expected a rate in [0, peak_lr=0.0003]"),
    ],
    ids=["short", "huge", "float", "warmup", "nan", "zero-peak", "min-above-peak"],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = dict(steps=1000, peak_lr=3e-4, warmup=100, min_lr=0.0) | kwargs
    with pytest.raises(PredictError) as error:
        optimize(PAPER_LAW, **arguments)
    assert message in str(error.value)


def test_without_warmup_the_schedule_starts_at_the_peak():
    schedule = optimize(PAPER_LAW, 2000, 3e-4, 0, min_lr=1e-5)
    lrs = rates_of(schedule, 2001)
    assert lrs[0] == 3e-4 and np.all(np.diff(lrs) <= 0) and lrs[-1] >= 1e-5
