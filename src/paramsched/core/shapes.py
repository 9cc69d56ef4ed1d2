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
    cosine, k    decay = (cos(pi * r**k) + 1) / 2   rise = decay(1 - r)   (k-decay; k=1: cosine)
    tanh         decay = (1 - tanh(lower * (1 - r) + upper * r)) / 2      (lower -7, upper 3)
    half_cosine  decay = 1 - sin(pi / 2 * r)        rise = decay(1 - r)

``tanh`` with its default bounds starts a hair under 1 and ends a hair above 0, as
timm's tanh schedule does (``(1 - tanh(3)) / 2`` is about 0.0025). ``half_cosine`` is
the second half of a cosine, from its midpoint down: steep at first, flat at the end.

Each shape is evaluated with the same expression for a float or a NumPy array:
the math functions come from a namespace, `SCALAR` or `ARRAY`. `ARRAY` is
bit-identical to `SCALAR` on every shape: ``np.cos``, ``np.sin`` and ``np.sqrt``
agree with ``math`` here (a test checks it), ``pow`` is the C library's, element by
element where a faster path could differ in the last bit (`paramsched._exactpow`),
and ``tanh`` is ``math.tanh`` element by element (``np.tanh`` differs in the last bit
on about half of all inputs).

``rise`` of ``linear`` is ``r`` itself rather than ``decay(1 - r)``: the two are
equal as real numbers but not as floats, and Megatron-Core's weight-decay
increment uses ``r``. Shapes are plain frozen values, so schedules built from
them pickle and deep-copy.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScheduleError, check_choice, check_number
from ._exactpow import pow_array


class _ScalarMath:
    """The functions a formula needs, for one Python number."""

    cos = staticmethod(math.cos)
    sin = staticmethod(math.sin)
    tanh = staticmethod(math.tanh)
    sqrt = staticmethod(math.sqrt)
    pow = staticmethod(math.pow)
    maximum = staticmethod(max)
    minimum = staticmethod(min)
    float = float


def _tanh_array(values):
    """``math.tanh`` of each element (bit for bit, where ``np.tanh`` is not)."""
    values = np.asarray(values, dtype=np.float64)
    flat = np.fromiter(map(math.tanh, values.ravel().tolist()), np.float64, values.size)
    return flat.reshape(values.shape)


class _ArrayMath:
    """The same functions for float64 arrays, matching `_ScalarMath` bit for bit."""

    cos = staticmethod(np.cos)
    sin = staticmethod(np.sin)
    tanh = staticmethod(_tanh_array)
    sqrt = staticmethod(np.sqrt)
    pow = staticmethod(pow_array)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

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


@dataclass(frozen=True)
class KCosine(Shape):
    """The k-decay cosine, ``(cos(pi * r**k) + 1) / 2``; `k` > 0 (1 is `cosine`)."""

    k: float = 1.0

    def decay(self, r, m=SCALAR):
        return 0.5 * (m.cos(math.pi * m.pow(r, self.k)) + 1.0)


@dataclass(frozen=True)
class Tanh(Shape):
    """``(1 - tanh(lower * (1 - r) + upper * r)) / 2``; `lower` < `upper`."""

    lower: float = -7.0
    upper: float = 3.0

    def decay(self, r, m=SCALAR):
        return 0.5 * (1.0 - m.tanh(self.lower * (1.0 - r) + self.upper * r))


@dataclass(frozen=True)
class _HalfCosine(Shape):
    def decay(self, r, m=SCALAR):
        return 1.0 - m.sin(0.5 * math.pi * r)


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        _Linear("linear"),
        _Cosine("cosine"),
        _Exponential("exponential"),
        _MinusSqrt("minus_sqrt"),
        Tanh("tanh"),
        _HalfCosine("half_cosine"),
    )
}

#: Every shape a name can give, `polynomial` with a power.
SHAPE_NAMES: tuple[str, ...] = (*SHAPES, "polynomial")


def shape_with(field: str, name: str, options: dict) -> Shape:
    """The shape `name` with its parameters: ``k`` for a k-decay ``cosine`` (1, or none,
    is the plain cosine), ``lower`` and ``upper`` for ``tanh``; each checked, named as
    ``{field}.{key}``.

    Examples:
        >>> shape_with("shape", "cosine", {"k": 2.0}).decay(0.5) == (math.cos(math.pi / 4) + 1) / 2
        True
    """
    if name == "cosine" and options.get("k", 1.0) != 1.0:
        k = check_number(f"{field}.k", options["k"])
        if not k > 0:
            raise ScheduleError(f"{field}.k={k!r}; expected a number > 0 for a k-decay cosine")
        return KCosine("cosine", float(k))
    if name == "tanh" and options:
        lower = float(check_number(f"{field}.lower", options.get("lower", -7.0)))
        upper = float(check_number(f"{field}.upper", options.get("upper", 3.0)))
        if not lower < upper:
            raise ScheduleError(
                f"{field}.lower={lower!r} and upper={upper!r}; expected lower < upper"
            )
        return Tanh("tanh", lower, upper)
    return SHAPES[name]


def shape_named(field: str, name: object, power: object = None) -> Shape:
    """The shape `name` (one of `SHAPE_NAMES`); `power` only, and always, for polynomial.

    Examples:
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


# Level shapes: a phase whose value is its start times a factor a step function gives
# (``start * factor**levels``), and the power law of tokens and batch size. They are
# rules of the curve engine (`paramsched._curve`), not ratios.


@dataclass(frozen=True)
class StepDecay:
    """``levels(x) = x // every``: the factor applies once more every `every` positions."""

    every: int | float
    factor: float
    name: str = "step"

    def levels(self, x, m=SCALAR):
        return x // self.every


@dataclass(frozen=True)
class MultiStepDecay:
    """``levels(x)``: how many of `milestones` (offsets from the phase's start) are <= x."""

    milestones: tuple
    factor: float
    name: str = "multistep"

    def levels(self, x, m=SCALAR):
        if m is ARRAY:
            from .units import exact_searchsorted

            return exact_searchsorted(self.milestones, x, side="right")
        return bisect.bisect_right(self.milestones, x)


@dataclass(frozen=True)
class PowerLaw:
    """``min(start, a * B * T**b)``: `B` the run's global batch size at the position,
    `T` the tokens consumed by then (the position on a token clock, else the position
    times the sequence length)."""

    a: float
    b: float
    run: object = field(compare=False, repr=False)
    name: str = "power"

    def batch_size(self, n, m=SCALAR):
        if m is ARRAY:
            return self.run.batch_sizes_at(np.asarray(n, dtype=np.float64))
        return self.run.batch_size_at(n)

    def tokens(self, n, m=SCALAR):
        per = 1 if self.run.counts_tokens else self.run.seq_length  # a token clock's are tokens
        if m is ARRAY:
            return np.asarray(n, dtype=np.float64) * per
        return n * per
