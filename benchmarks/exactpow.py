"""Times `pow_array` against calling `math.pow` per element (the map path it replaces).

Run ``python benchmarks/exactpow.py [--size N] [--repeats R]`` (with ``PYTHONPATH=src``
from a checkout). Each repeat runs every candidate once, interleaved, and checks that
both give the same bits; the table shows medians and their ratio.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from paramsched.core._exactpow import pow_array


def map_path(base, exponent) -> np.ndarray:
    """The per-element path: each element from `math.pow`."""
    base, exponent = np.broadcast_arrays(
        np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64)
    )
    values = map(math.pow, base.ravel().tolist(), exponent.ravel().tolist())
    return np.fromiter(values, dtype=np.float64, count=base.size).reshape(base.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    r = np.random.default_rng(0).random(args.size)
    cases = {"0.5 ** r": (0.5, r)}
    cases.update({f"(1 - r) ** {p}": (1.0 - r, p) for p in (0.5, 2.0, 7.3)})
    candidates = {"map path": map_path, "pow_array": pow_array}
    times = {(c, k): [] for c in cases for k in candidates}
    for _ in range(args.repeats):
        for case, (base, exponent) in cases.items():
            results = {}
            for name, function in candidates.items():
                start = time.perf_counter()
                results[name] = function(base, exponent)
                times[case, name].append(time.perf_counter() - start)
            old, new = (results[k].view(np.int64) for k in candidates)
            assert np.array_equal(old, new), f"{case}: pow_array differs from math.pow"
    print(f"{args.size:,} elements, median of {args.repeats} interleaved repeats")
    print(f"{'case':16} {'map path':>12} {'pow_array':>12} {'ratio':>7}")
    for case in cases:
        old, new = (statistics.median(times[case, k]) for k in candidates)
        old_ns, new_ns = old * 1e9 / args.size, new * 1e9 / args.size
        print(f"{case:16} {old_ns:9.1f} ns {new_ns:9.1f} ns {old / new:6.1f}x")


if __name__ == "__main__":
    main()
