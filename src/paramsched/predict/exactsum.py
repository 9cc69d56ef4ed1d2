"""The multi-power law's drop sum over every (point, change) pair, laid out for a fit.

A fit evaluates the law and its Jacobian at the same points of the same runs hundreds
of times. `ExactSum` lays a run's pairs out once: for each logged point ``t``, the
changes ``k <= t`` of the rate (the steps where ``lrs[k] != lrs[k-1]``; a held rate
costs nothing), as a ragged, point-major list, each pair holding its change's index
and the area ``S_k(t) = area[t] - area[k-1]`` (from prefix sums). An evaluation then
costs, per pair, one logarithm and one exponential::

    u = lrs[k]**-gamma * S_k(t)          lrs[k]**-gamma once per change
    tail = (C * u + 1)**-beta             G = 1 - tail
    L(t) = L0 + A * S(t)**-alpha - B * (sum_k d_k - sum_k d_k * tail)

and the Jacobian shares ``u``, ``log(C * u + 1)`` and ``tail`` with the value. The
pairs are walked in chunks of whole points, each small enough to stay in the cache.
Every term is summed: the result is the law's sum, as `paramsched.predict.laws.terms`
gives it exactly, up to the order of the additions.

Example:
    >>> import numpy as np
    >>> from paramsched.predict import MultiPowerLaw
    >>> law = MultiPowerLaw(L0=3.0, A=0.5, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6)
    >>> lrs = np.r_[np.linspace(0, 3e-4, 100), np.full(700, 3e-4), np.full(200, 3e-5)]
    >>> steps = np.array([150, 799, 999])
    >>> theta = np.array(list(law.params.values()))
    >>> value, _ = ExactSum(lrs, steps).curve(theta)
    >>> bool(np.allclose(value, law.loss(lrs, steps, exact=True), rtol=1e-14, atol=0))
    True
"""

from __future__ import annotations

import numpy as np

from .laws import MultiPowerLaw, terms

#: The changes evaluated at once (a point's changes in pieces of this many at most): the
#: pieces stay in the cache, and their dot products below the length at which a BLAS
#: starts threads.
PIECE = 8192


def pair_count(lrs: np.ndarray, steps: np.ndarray) -> int:
    """The number of (point, change) terms of the law's sum at `steps`."""
    changes = np.flatnonzero(np.diff(lrs)) + 1
    return int(np.searchsorted(changes, steps, side="right").sum())


class ExactSum:
    """One run's logged points and rate changes, laid out once for many evaluations
    of the multi-power law (see the module)."""

    def __init__(self, lrs: np.ndarray, steps: np.ndarray):
        lrs = np.asarray(lrs, dtype=np.float64)
        steps = np.asarray(steps, dtype=np.int64)
        area = np.cumsum(lrs)
        drop = np.zeros_like(lrs)
        drop[1:] = lrs[:-1] - lrs[1:]
        changes = np.flatnonzero(drop)
        before = np.searchsorted(changes, steps, side="right")  # pairs of each point
        self.area = area[steps]
        self.count = steps.size
        self.pairs = int(before.sum())
        # A drop to a rate of 0 takes the law's limit there: its term-by-term evaluation.
        self.terms = terms(lrs, steps, 2**62) if np.any(lrs[changes] == 0) else None
        if self.terms is not None:
            return
        self.drop = drop[changes]
        self.log_lr = np.log(lrs[changes])
        self.area_before = area[changes - 1]
        self.drop_log_lr = self.drop * self.log_lr
        # pieces (point, first change, end) of at most PIECE changes each, in the cache
        self.pieces = [
            (int(j), lo, min(lo + PIECE, int(before[j])))
            for j in np.flatnonzero(before)
            for lo in range(0, int(before[j]), PIECE)
        ]
        cumulative = np.concatenate([[0.0], np.cumsum(self.drop)])
        self.drop_total = np.where(before > 0, cumulative[before], 0.0)  # sum_k d_k
        self._buffers = np.empty((4, min(PIECE, int(before.max(initial=0)))))

    def curve(self, theta, jacobian: bool = False):
        """The law's losses at the run's points for the parameters `theta` (``L0, A,
        alpha, B, C, beta, gamma``), and their Jacobian (one column each) when asked."""
        if self.terms is not None:
            return MultiPowerLaw._curve(theta, self.area, self.terms, jacobian)
        value, columns = MultiPowerLaw._power(theta, self.area, jacobian)
        B, C, beta, gamma = (float(v) for v in theta[3:7])
        scale = C * np.exp(-gamma * self.log_lr)  # C * lrs[k]**-gamma
        sums = np.zeros((4, self.count))
        dot, drop, drop_log_lr = np.dot, self.drop, self.drop_log_lr
        for j, lo, hi in self.pieces:  # the changes before point j are the first ones
            cu, base, log_base, tail = (b[: hi - lo] for b in self._buffers)
            np.subtract(self.area[j], self.area_before[lo:hi], out=cu)  # S_k(t)
            cu *= scale[lo:hi]  # C * u
            np.add(cu, 1.0, out=base)
            np.log(base, out=log_base)
            np.multiply(log_base, -beta, out=tail)
            np.exp(tail, out=tail)
            if not jacobian:
                sums[0, j] += dot(drop[lo:hi], tail)
                continue
            sums[0, j] += dot(tail, drop[lo:hi])
            np.divide(cu, base, out=cu)  # C * u / base
            log_base *= tail
            sums[1, j] += dot(log_base, drop[lo:hi])
            tail *= cu
            sums[2, j] += dot(tail, drop[lo:hi])
            sums[3, j] += dot(tail, drop_log_lr[lo:hi])
        gathered = self.drop_total - sums[0]  # sum_k d_k * G
        value = value - B * gathered
        if not jacobian:
            return value, None
        columns += [-gathered, -B * beta / C * sums[2], -B * sums[1], B * beta * sums[3]]
        return value, np.stack(columns, axis=1)


class Gathered:
    """A run's points with the changes more than `near_blocks` blocks before each
    gathered (`paramsched.predict.laws.terms`), evaluated as `ExactSum` is."""

    def __init__(self, lrs: np.ndarray, steps: np.ndarray, near_blocks: int):
        self.area = np.cumsum(lrs)[steps]
        self.pairs = steps.size
        self.terms = terms(lrs, steps, 0, near_blocks)

    def curve(self, theta, jacobian: bool = False):
        """As `ExactSum.curve`."""
        return MultiPowerLaw._curve(theta, self.area, self.terms, jacobian)
