"""The multi-power law's staged fit: AdamW step for step against torch's, the
objective's gradient, the constant-rate part recovered, the stopping rules."""

from __future__ import annotations

import numpy as np
import pytest
from predict_data import FIT, run

pytest.importorskip("scipy")

from paramsched.predict import adamfit  # noqa: E402
from paramsched.predict.fitting import _scipy  # noqa: E402

TARGET = np.array([3.0, 0.5, 0.5, 360.0, 2.0, 0.6, 0.65])
WEIGHT = np.array([1e-2, 3e-2, 5e-2, 1e-7, 1e-3, 2e-2, 2e-2])


def quadratic(data, theta):
    gap = theta - TARGET
    return float(np.sum(WEIGHT * gap * gap)), 2.0 * WEIGHT * gap


def torch_adamw(theta0):
    """torch.optim.AdamW with the paper's two groups on `quadratic`, its loop and stopping
    rules: the parameters after the update from the least loss, that loss, the steps."""
    torch = pytest.importorskip("torch")
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in theta0]
    fast = [params[i] for i in (0, 1, 3, 4)]
    slow = [params[i] for i in (2, 5, 6)]
    optimizer = torch.optim.AdamW(
        [{"params": fast, "lr": 5e-2}, {"params": slow, "lr": 5e-3}], foreach=False
    )
    target, weight = torch.tensor(TARGET), torch.tensor(WEIGHT)
    best, least, stale, kept = float("inf"), float("inf"), 0, None
    for step in range(200):
        optimizer.zero_grad()
        loss = torch.sum(weight * (torch.stack(params) - target) ** 2)
        loss.backward()
        optimizer.step()
        if loss.item() < least:
            least, stale = loss.item(), 0
        else:
            stale += 1
        if step > 20 and stale >= 20:
            break
        if torch.cat([p.grad.flatten() for p in params]).norm() < 1e-5:
            break
        if loss.item() < best:
            best, kept = loss.item(), [p.item() for p in params]
    return np.array(kept), best, step + 1


def test_adamw_steps_as_torchs(monkeypatch):
    monkeypatch.setattr(adamfit, "objective", quadratic)
    theta0 = np.array([3.1, 0.55, 0.49, 378.0, 1.0, 0.5, 0.5])
    kept, best, steps = adamfit.adamw(None, theta0)
    expected, expected_best, expected_steps = torch_adamw(theta0)
    assert steps == expected_steps > 50
    np.testing.assert_allclose(kept, expected, rtol=1e-12)
    assert best == pytest.approx(expected_best, rel=1e-12)
    # weight decay alone pulls B (whose gradient is tiny) down by about 5e-4 * B a step
    assert 378.0 - kept[3] > 50 * 5e-4 * 360


def test_adamw_stops_after_20_steps_without_improvement(monkeypatch):
    values = iter([5.0, 4.0, 3.0] + [3.5] * 100)
    seen = []

    def stalling(data, theta):
        seen.append(theta.copy())
        return next(values), np.ones_like(theta)

    monkeypatch.setattr(adamfit, "objective", stalling)
    kept, best, steps = adamfit.adamw(None, np.ones(7))
    # the best value was evaluated at the third point; kept is the fourth point
    assert best == 3.0 and steps == 23 and np.array_equal(kept, seen[3])


def test_adamw_stops_at_a_small_gradient_or_a_non_finite_value(monkeypatch):
    monkeypatch.setattr(adamfit, "objective", lambda data, theta: (1.0, np.full(7, 1e-7)))
    assert adamfit.adamw(None, np.ones(7)) == (None, float("inf"), 1)
    values = iter([2.0, 1.0, float("nan")])
    monkeypatch.setattr(adamfit, "objective", lambda data, theta: (next(values), np.ones(7)))
    kept, best, steps = adamfit.adamw(None, np.ones(7))
    assert best == 1.0 and steps == 3 and kept is not None


def test_the_objectives_gradient_is_its_derivative():
    data = adamfit.prepare([run(name) for name in FIT])
    theta = np.array([3.04, 0.52, 0.51, 363.0, 2.0, 0.58, 0.64])
    value, gradient = adamfit.objective(data, theta)
    for i in range(7):
        nudge = np.zeros(7)
        nudge[i] = 1e-6 * theta[i]
        up = adamfit.objective(data, theta + nudge)[0]
        down = adamfit.objective(data, theta - nudge)[0]
        assert gradient[i] == pytest.approx((up - down) / (2 * nudge[i]), rel=1e-4, abs=1e-9)


def test_a_prediction_below_the_floor_is_held_there():
    r, slope = adamfit._log_residual(np.log([3.0, 3.0]), np.array([-1.0, 3.0]))
    assert r[0] == pytest.approx(np.log(3.0) - np.log(1e-10)) and slope[0] == 0.0
    assert r[1] == 0.0 and slope[1] == pytest.approx(-1 / 3)


def test_the_constant_rate_part_is_recovered():
    warm = np.linspace(0, 3e-4, 500)
    runs = [
        run_of(np.r_[warm, np.full(7500, 3e-4)]),
        run_of(np.r_[warm, np.full(3500, 3e-4), np.full(4000, 6e-5)]),
    ]
    L0, A, alpha, B = adamfit.constant_part(runs, _scipy())
    assert (L0, A, alpha, B) == pytest.approx((2.9, 0.6, 0.45, 500.0), rel=1e-5)


def run_of(lrs):
    from paramsched.predict import LossRun

    steps = np.arange(600, 8000, 100)
    area = np.cumsum(lrs)[steps]
    return LossRun.of(lrs, steps, 2.9 + 0.6 * area**-0.45 - 500.0 * (3e-4 - lrs[steps]))
