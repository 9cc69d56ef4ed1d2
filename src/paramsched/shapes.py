"""Decay shapes: one formula each, shared by learning rate and weight decay.

A shape maps a ratio ``r`` in ``[0, 1]`` (how far a segment has run) to a
coefficient: ``decay(r)`` goes from 1 down to 0, ``rise(r)`` from 0 up to 1.
A segment of a curve turns the coefficient into a value (`paramsched._curve`).

The formulas, written out once (``r`` the ratio)::

    linear       decay = 1 - r                      rise = r
    cosine       decay = (cos(pi * r) + 1) / 2      rise = decay(1 - r)
    exponential  decay = 2 * 0.5**r - 1             rise = decay(1 - r)
    minus_sqrt   decay = 1 - sqrt(r)                rise = decay(1 - r)
    polynomial   decay = (1 - r)**power             rise = decay(1 - r)

Each shape is evaluated with the same expression for a float or a NumPy array:
the math functions come from a namespace, `SCALAR` or `ARRAY`. `ARRAY` is
bit-identical to `SCALAR` on every shape: ``np.cos`` and ``np.sqrt`` agree with
``math`` here (a test checks it), and ``pow`` is the C library's, element by
element where a faster path could differ in the last bit (`paramsched._exactpow`).

``rise`` of ``linear`` is ``r`` itself rather than ``decay(1 - r)``: the two are
equal as real numbers but not as floats, and Megatron-Core's weight-decay
increment uses ``r``. Shapes are plain frozen values, so schedules built from
them pickle and deep-copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._exactpow import pow_array
from .errors import ScheduleError, check_choice, check_number


class _ScalarMath:
    """The functions a formula needs, for one Python number."""

    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    pow = staticmethod(math.pow)
    maximum = staticmethod(max)
    float = float


class _ArrayMath:
    """The same functions for float64 arrays, matching `_ScalarMath` bit for bit."""

    cos = staticmethod(np.cos)
    sqrt = staticmethod(np.sqrt)
    pow = staticmethod(pow_array)
    maximum = staticmethod(np.maximum)

    @staticmethod
    def float(values):
        return values  # float64 already


SCALAR = _ScalarMath
ARRAY = _ArrayMath


@dataclass(frozen=True)
class Shape:
    """A named decay shape; subclasses define `decay` (and `linear` its own `rise`)."""

    name: str

    def decay(self, r, m=SCALAR):
        """The coefficient at ratio `r`, from 1 at 0 to 0 at 1."""
        raise NotImplementedError

    def rise(self, r, m=SCALAR):
        """The coefficient at ratio `r`, from 0 at 0 to 1 at 1: ``decay(1 - r)``."""
        return self.decay(1 - r, m)


@dataclass(frozen=True)
class _Linear(Shape):
    def decay(self, r, m=SCALAR):
        return 1.0 - r

    def rise(self, r, m=SCALAR):
        return r


@dataclass(frozen=True)
class _Cosine(Shape):
    def decay(self, r, m=SCALAR):
        return 0.5 * (m.cos(math.pi * r) + 1.0)


@dataclass(frozen=True)
class _Exponential(Shape):
    def decay(self, r, m=SCALAR):
        return 2.0 * m.pow(0.5, r) - 1.0


@dataclass(frozen=True)
class _MinusSqrt(Shape):
    def decay(self, r, m=SCALAR):
        return 1.0 - m.sqrt(r)


@dataclass(frozen=True)
class Polynomial(Shape):
    """``(1 - r)**power``; `power` > 0."""

    power: float = 1.0

    def decay(self, r, m=SCALAR):
        return m.pow(1.0 - r, self.power)


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        _Linear("linear"),
        _Cosine("cosine"),
        _Exponential("exponential"),
        _MinusSqrt("minus_sqrt"),
    )
}

#: Every shape a name can give, `polynomial` with a power.
SHAPE_NAMES: tuple[str, ...] = (*SHAPES, "polynomial")


def shape_named(field: str, name: object, power: object = None) -> Shape:
    """The shape `name` (one of `SHAPE_NAMES`); `power` only, and always, for polynomial.

    Example:
        >>> shape_named("shape", "polynomial", 2).decay(0.5)
        0.25
    """
    name = check_choice(field, name, SHAPE_NAMES)
    if name != "polynomial":
        if power is not None:
            raise ScheduleError(
                f"{field}={name!r} has power={power!r}; only a polynomial shape has a power"
            )
        return SHAPES[name]
    value = None if power is None else check_number(f"{field}.power", power)
    if value is None or value <= 0:
        raise ScheduleError(f"power={power!r} for a polynomial shape; expected a number > 0")
    return Polynomial("polynomial", float(value))


def warmup(init, peak, step, warmup_steps):
    """Linear warmup, ``init + (peak - init) * step / warmup_steps``, in that order.

    The product is taken before the division, as Megatron-Core does; taking
    ``step / warmup_steps`` first would change the last bit.
    """
    return init + (peak - init) * step / warmup_steps
