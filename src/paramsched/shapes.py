"""Decay shapes: one formula each, shared by learning rate and weight decay.

A shape maps a ratio ``r`` in ``[0, 1]`` (how far a phase has run) to a
coefficient: ``decay(r)`` goes from 1 down to 0, ``rise(r)`` from 0 up to 1.
A value is then ``low + coeff * (high - low)`` (`interpolate`).

The formulas, written out once (``r`` the ratio)::

    linear       decay = 1 - r                      rise = r
    cosine       decay = (cos(pi * r) + 1) / 2      rise = decay(1 - r)
    exponential  decay = 2 * 0.5**r - 1
    minus_sqrt   decay = 1 - sqrt(r)

Each shape is evaluated with the same expression for a float or a NumPy array:
the math functions come from a namespace, `SCALAR` (the `math` module) or
`ARRAY`. `ARRAY` is bit-identical to `SCALAR` on every shape: ``np.cos`` and
``np.sqrt`` agree with ``math`` here (a test checks it), and ``pow`` is taken from
the C library element by element, because NumPy's vectorised ``pow`` (and
``sqrt`` in place of ``x ** 0.5``) differs from it in the last bit.

``rise`` of ``linear`` is ``r`` itself rather than ``decay(1 - r)``: the two are
equal as real numbers but not as floats, and Megatron-Core's weight-decay
increment uses ``r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class _ArrayMath:
    """The functions a shape needs, for NumPy arrays, matching `math` bit for bit."""

    cos = staticmethod(np.cos)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def pow(base, exponent) -> np.ndarray:
        """``base ** exponent`` elementwise, each element from the C library's ``pow``."""
        base, exponent = np.broadcast_arrays(
            np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64)
        )
        values = map(math.pow, base.ravel().tolist(), exponent.ravel().tolist())
        return np.fromiter(values, dtype=np.float64, count=base.size).reshape(base.shape)


SCALAR: Any = math
ARRAY: Any = _ArrayMath


def _linear(r, m=SCALAR):
    return 1.0 - r


def _linear_rise(r, m=SCALAR):
    return r


def _cosine(r, m=SCALAR):
    return 0.5 * (m.cos(math.pi * r) + 1.0)


def _exponential(r, m=SCALAR):
    return 2.0 * m.pow(0.5, r) - 1.0


def _minus_sqrt(r, m=SCALAR):
    return 1.0 - m.sqrt(r)


@dataclass(frozen=True)
class Shape:
    """A named decay shape.

    Attributes:
        name: The name used in configurations.
        decay: ``(ratio, math_namespace) -> coeff``, from 1 at ratio 0 to 0 at ratio 1.
        rise: ``(ratio, math_namespace) -> coeff``, from 0 at ratio 0 to 1 at ratio 1;
            by default ``decay(1 - ratio)``.
    """

    name: str
    decay: Callable[..., Any]
    rise: Callable[..., Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rise is None:
            decay = self.decay
            object.__setattr__(self, "rise", lambda r, m=SCALAR: decay(1 - r, m))


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("linear", _linear, _linear_rise),
        Shape("cosine", _cosine),
        Shape("exponential", _exponential),
        Shape("minus_sqrt", _minus_sqrt),
    )
}


def interpolate(low, high, coeff):
    """``low + coeff * (high - low)``: the one place a coefficient becomes a value."""
    return low + coeff * (high - low)


def warmup(init, peak, step, warmup_steps):
    """Linear warmup, ``init + (peak - init) * step / warmup_steps``, in that order.

    The product is taken before the division, as Megatron-Core does; taking
    ``step / warmup_steps`` first would change the last bit.
    """
    return init + (peak - init) * step / warmup_steps
