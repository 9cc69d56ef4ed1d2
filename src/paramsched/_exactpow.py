"""``pow`` over arrays, element by element the C library's (placeholder: per element)."""

from __future__ import annotations

import math

import numpy as np


def pow_array(base, exponent) -> np.ndarray:
    """``base ** exponent`` elementwise, each element from the C library's ``pow``.

    Example:
        >>> import math
        >>> pow_array([0.5, 2.0], 0.3).tolist() == [math.pow(0.5, 0.3), math.pow(2.0, 0.3)]
        True
    """
    base, exponent = np.broadcast_arrays(
        np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64)
    )
    values = map(math.pow, base.ravel().tolist(), exponent.ravel().tolist())
    return np.fromiter(values, dtype=np.float64, count=base.size).reshape(base.shape)
