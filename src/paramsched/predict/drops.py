"""The (point, change) terms of the laws' sums, each exact or gathered.

The laws of `paramsched.predict.laws` sum, for each logged point ``t``, a term per
change of the rate at a step ``k <= t``. A point that follows at most `EXACT_CHANGES`
changes gets every term. A later point has the changes more than `NEAR_BLOCKS`
blocks before it gathered by blocks of consecutive steps (each block's rises and
falls separately, at the drop-weighted mean step, its rate and area interpolated
there), and the changes within the last one to two blocks kept exact; the relative
error of a gathered block is of the order of ``(block / distance)**2 / 10``. Which of
the two a point gets, and the blocks (their length set by the number of steps and of
changes of the rates), depend on the rates and the point alone, never on the other
points asked for with it.

Example:
    >>> import numpy as np
    >>> lrs = np.r_[np.full(100, 3e-4), np.full(100, 1e-4)]   # one change, at step 100
    >>> found = terms(lrs, np.array([50, 150, 199]))
    >>> found.point.tolist(), found.age.tolist(), [round(float(d), 6) for d in found.drop]
    ([1, 2], [51.0, 100.0], [0.0002, 0.0002])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: A point that follows at most this many changes is summed term by term; a later
#: one has its far changes gathered by blocks.
EXACT_CHANGES = 50_000
#: Changes within this many blocks of a point are summed exactly.
NEAR_BLOCKS = 8
#: A block whose rates differ by more than this factor is never gathered.
ROUGH = 1.25


@dataclass(frozen=True)
class Terms:
    """The drops that shape each logged point's loss, flattened: term ``i`` belongs to
    point ``point[i]``, has the drop ``drop[i]``, the rate ``lr[i]`` at its step, the
    area ``area[i]`` from its step to the point, and ``age[i] = t - k + 1`` steps."""

    point: np.ndarray
    drop: np.ndarray
    lr: np.ndarray
    area: np.ndarray
    age: np.ndarray
    count: int  # number of points

    def total(self, values: np.ndarray) -> np.ndarray:
        """The sum of `values` (one per term) for each point."""
        return np.bincount(self.point, weights=values, minlength=self.count)


def terms(
    lrs: np.ndarray,
    steps: np.ndarray,
    exact_terms: int | None = None,
    near_blocks: int | None = None,
    exact_changes: float | None = None,
) -> Terms:
    """The `Terms` of the points `steps` of a run with per-step rates `lrs`: each point
    that follows at most `exact_changes` (`EXACT_CHANGES`) changes term by term, each
    later one with its far changes gathered (see the module). With `exact_terms` (a
    fit's, whose points are fixed), every point term by term when all together have at
    most that many terms, else every point gathered."""
    area = np.cumsum(lrs)
    drop = np.zeros_like(lrs)
    drop[1:] = lrs[:-1] - lrs[1:]
    changes = np.flatnonzero(drop)
    before = np.searchsorted(changes, steps, side="right")  # changes at or before each point
    near_blocks = near_blocks or NEAR_BLOCKS
    if exact_terms is not None:
        exact = np.full(len(steps), int(before.sum()) <= exact_terms)
    else:
        exact = before <= (EXACT_CHANGES if exact_changes is None else exact_changes)
    points = np.arange(len(steps))
    if exact.all():
        return _exact(lrs, area, drop, changes, steps, points, before)
    if not exact.any():
        return _blocked(lrs, area, drop, changes, steps, before, near_blocks)
    near = _exact(lrs, area, drop, changes, steps[exact], points[exact], before[exact])
    far = _blocked(lrs, area, drop, changes, steps[~exact], before[~exact], near_blocks)
    far = Terms(points[~exact][far.point], far.drop, far.lr, far.area, far.age, len(steps))
    return Terms(
        *(
            np.concatenate([getattr(near, name), getattr(far, name)])
            for name in ("point", "drop", "lr", "area", "age")
        ),
        len(steps),
    )


def _exact(lrs, area, drop, changes, steps, points, before) -> Terms:
    """Every change before each point, one term each."""
    counts = before
    point = np.repeat(points, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    k = changes[np.arange(point.size) - starts]
    t = np.repeat(steps, counts)
    return Terms(
        point, drop[k], lrs[k], area[t] - area[k - 1], (t - k + 1).astype(np.float64), len(steps)
    )


def _blocked(lrs, area, drop, changes, steps, before, near_blocks: int) -> Terms:
    """Changes more than `near_blocks` blocks before a point gathered, nearer ones exact."""
    # About len(lrs) / block gathered nodes and near_blocks * block * (changes per step)
    # exact terms per point: their sum is least at this block length.
    block = max(1, round(len(lrs) / math.sqrt(near_blocks * len(changes))))
    # A node gathers a run of consecutive changes in one block, of one sign, whose rates
    # are within a factor ROUGH (a warmup from 0 gets nodes ever closer to its start);
    # changes to a rate of 0 stay exact.
    rates = lrs[changes]
    zero = rates == 0
    exact_always = changes[zero]
    k_g = changes[~zero]
    key = np.stack([k_g // block, np.floor(np.log(lrs[k_g]) / math.log(ROUGH)), np.sign(drop[k_g])])
    new = np.ones(k_g.size, dtype=bool)
    new[1:] = np.any(key[:, 1:] != key[:, :-1], axis=0)
    group = np.cumsum(new) - 1
    weight = np.bincount(group, weights=drop[k_g])
    node_step = np.bincount(group, weights=drop[k_g] * k_g) / weight
    node_block = (k_g // block)[new]
    grid = np.arange(len(lrs), dtype=np.float64)
    node_lr = np.interp(node_step, grid, lrs)
    node_area_before = np.interp(node_step - 1.0, grid, area)
    # Point t: nodes of blocks before t // block - near_blocks + 1 gathered, later changes exact.
    first_exact = np.maximum(steps // block - near_blocks + 1, 0) * block
    gathered = np.searchsorted(node_block, first_exact // block, side="left")
    g_point = np.repeat(np.arange(len(steps)), gathered)
    g_node = np.arange(g_point.size) - np.repeat(np.cumsum(gathered) - gathered, gathered)
    t = steps[g_point]
    near_from = np.searchsorted(changes, first_exact, side="left")
    counts = before - near_from
    e_point = np.repeat(np.arange(len(steps)), counts)
    offsets = np.repeat(near_from - (np.cumsum(counts) - counts), counts)
    k = changes[np.arange(e_point.size) + offsets]
    # and the changes to a rate of 0 before the near ones
    far = np.searchsorted(exact_always, first_exact, side="left")
    z_point = np.repeat(np.arange(len(steps)), far)
    k = np.concatenate(
        [k, exact_always[np.arange(z_point.size) - np.repeat(np.cumsum(far) - far, far)]]
    )
    e_point = np.concatenate([e_point, z_point])
    te = steps[e_point]
    return Terms(
        np.concatenate([g_point, e_point]),
        np.concatenate([weight[g_node], drop[k]]),
        np.concatenate([node_lr[g_node], lrs[k]]),
        np.concatenate([area[t] - node_area_before[g_node], area[te] - area[k - 1]]),
        np.concatenate([t - node_step[g_node] + 1.0, (te - k + 1).astype(np.float64)]),
        len(steps),
    )
