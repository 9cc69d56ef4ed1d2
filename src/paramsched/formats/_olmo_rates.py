"""OLMo-core's scheduler classes as rate functions: ``rate(spec, base, current, t_max)``.

Each function takes one class's checked fields (``spec``, a dict with ``"scheduler"``,
the class name), the group's base rate, the count OLMo-core passes as ``current`` (the
step or the tokens seen, this step included) and ``t_max`` (the trainer's
``max_steps`` or ``max_tokens``), and returns the rate OLMo-core's ``get_lr`` gives for
them, with its floating-point operations on Python numbers in its order. Where
OLMo-core asserts (a warmup floor not below the rate it rises to, a ``current`` past a
sequence's ``t_max``) a `ScheduleError` says so. `RATES` is the table.

Examples:
    >>> spec = {"scheduler": "CosWithWarmup", "warmup": 10, "warmup_fraction": None,
    ...         "alpha_f": 0.1, "t_max": None, "warmup_min_lr": 0.0}
    >>> rate(spec, 1e-3, 5, 110), rate(spec, 1e-3, 60, 110), rate(spec, 1e-3, 110, 110)
    (0.0005, 0.00055, 0.0001)
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ScheduleError


def _asserted(floor: float, top: float, field: str) -> None:
    if isinstance(top, float) and not 0 <= floor < top:
        raise ScheduleError(
            f"{field}={floor!r} with a rate of {top!r} to {'rise to' if 'warmup' in field else 'fall from'}"
            f"; OLMo-core asserts 0 <= {field} < that rate"
        )


def warm(top, current, warmup, floor):
    """A linear warmup from `floor` to `top` over `warmup` (OLMo-core's)."""
    _asserted(floor, top, "warmup_min_lr")
    return floor + (top - floor) * min(current, warmup) / warmup


def cool(top, left, decay, floor):
    """A linear decay from `top` to `floor` over the last `decay`, `left` before the end."""
    _asserted(floor, top, "decay_min_lr")
    return floor + (top - floor) * min(left, decay) / decay


def resolved(spec: dict, name: str, length) -> int:
    """``warmup`` or ``decay``: its count, else ``round(length * its fraction)``."""
    if spec.get(name) is not None:
        return spec[name]
    return round(length * spec[f"{name}_fraction"])


def _constant(s, base, c, t):
    return base


def _constant_with_warmup(s, base, c, t):
    w = resolved(s, "warmup", t)
    return warm(base, c, w, s["warmup_min_lr"]) if c <= w else base


def _wsd(s, base, c, t):
    w = resolved(s, "warmup", t)
    if c <= w:
        return warm(base, c, w, s["warmup_min_lr"])
    d = resolved(s, "decay", t)
    if c >= t - d:
        return cool(base, t - c, d, s["decay_min_lr"])
    return base


def _power(s, base, c, t):
    w, d = resolved(s, "warmup", t), resolved(s, "decay", t)
    if c <= w:
        return warm(base, c, w, s["warmup_min_lr"])
    if c >= t - d:
        return cool(base * ((t - d) / w) ** s["b"], t - c, d, s["decay_min_lr"])
    return base * (c / w) ** s["b"]


def _linear(s, base, c, t):
    t = t if s["t_max"] is None else s["t_max"]
    floor, w = base * s["alpha_f"], resolved(s, "warmup", t)
    if c < w:
        return warm(base, c, w, s["warmup_min_lr"])
    if c >= t:
        return floor
    return base - (base - floor) * ((c - w) / (t - w))


def _inv_sqrt(s, base, c, t):
    w = resolved(s, "warmup", t)
    if c < w:
        return warm(base, c, w, s["warmup_min_lr"])
    floor = base * s["alpha_f"]
    return floor + (base - floor) * math.sqrt(w / c)


def _cosine(s, base, c, t, half=False):
    t = t if s["t_max"] is None else s["t_max"]
    floor, w = base * s["alpha_f"], resolved(s, "warmup", t)
    if c < w:
        top = floor + (base - floor) / 2 if half else base
        return warm(top, c, w, s["warmup_min_lr"])
    if c >= t:
        return floor
    c, t = c - w, t - w
    if half:
        c, t = c + t, t * 2
    return floor + (base - floor) * (1 + math.cos(math.pi * c / t)) / 2


def _half_cosine(s, base, c, t):
    return _cosine(s, base, c, t, half=True)


def _cosine_linear(s, base, c, t):
    d = resolved(s, "decay", t)
    if c >= t - d:
        return cool(_cosine(s, base, t - d, t), t - c, d, s["decay_min_lr"])
    return _cosine(s, base, c, t)


def _level(base, value, fraction):
    return value if value is not None else base * fraction


def interpolate(shape, start, end, c, duration):
    """A stage's (or an override's) rate, `c` into it."""
    if shape == "linear":
        return start + (end - start) * c / duration
    return end + (start - end) * (1 + math.cos(math.pi * c / duration)) / 2


def _overridden(s, base, c, main):
    o = s["override_decay"]
    if o is None or c < o["start"]:
        return main(c)
    start, end = main(o["start"]), _level(base, o["end_lr"], o["end_lr_fraction"])
    if c - o["start"] < o["duration"]:
        return interpolate(o["shape"], start, end, c - o["start"], o["duration"])
    return end


def _composable(s, base, c, t):
    def main(c):
        c, begin, previous = max(c, 0), 0, base
        for stage in s["stages"]:
            if stage["start_lr"] is None and stage["start_lr_fraction"] is None:
                start = previous
            else:
                start = _level(base, stage["start_lr"], stage["start_lr_fraction"])
            end = _level(base, stage["end_lr"], stage["end_lr_fraction"])
            if c < begin + stage["duration"]:
                return interpolate(stage["shape"], start, end, c - begin, stage["duration"])
            previous, begin = end, begin + stage["duration"]
        return previous

    return _overridden(s, base, max(c, 0), main)


def _sequential(s, base, c, t):
    if not 0 <= c <= t:
        raise ScheduleError(
            f"SequentialScheduler at {c} of t_max={t}; OLMo-core asserts 0 <= current <= t_max"
        )

    def main(c, base=base, t=t):
        for inner, most in zip(s["schedulers"], s["schedulers_max"]):
            if c <= most:
                return rate(inner, base, c, min(t, most))
            base = rate(inner, base, most, most)
            c, t = c - most, t - most
        if not t > 0:
            raise ScheduleError(
                "SequentialScheduler's last scheduler has no length (t_max minus the "
                "schedulers_max before it); OLMo-core asserts it is > 0"
            )
        return rate(s["schedulers"][-1], base, c, t)

    return _overridden(s, base, c, main)


def wsds_periods(s) -> tuple[int, list, list]:
    """WSDS's warmup, its periods' lengths (the first less the warmup) and their ends."""
    lengths = s["period_lengths"]
    w = s["warmup"] if s["warmup"] is not None else int(round(s["warmup_fraction"] * lengths[0]))
    adjusted = [lengths[0] - w, *lengths[1:]]
    ends, total = [], 0
    for length in adjusted:
        total += length
        ends.append(total)
    return w, adjusted, ends


def wsds_decay(s, length: int) -> int:
    return s["decay"] if s["decay"] is not None else int(round(s["decay_fraction"] * length))


def _wsds(s, base, c, t):
    w, adjusted, ends = wsds_periods(s)
    multipliers = s["period_lr_multipliers"]

    def peak(i):
        return base if multipliers is None else base * multipliers[i]

    if c < w:
        return warm(peak(0), c, w, s["warmup_min_lr"])
    x = c - w
    if x >= ends[-1]:
        return s["decay_min_lr"]
    i = next(k for k, end in enumerate(ends) if x <= end)
    position = min(max(x - (ends[i - 1] if i else 0), 0), adjusted[i])
    d = wsds_decay(s, s["period_lengths"][i])
    stable = adjusted[i] - d
    if position < stable:
        return peak(i)
    return cool(peak(i), d - (position - stable), d, s["decay_min_lr"])


def _exponential(s, base, c, t):
    if c >= t:
        return base
    if c == 0:
        return s["lr_min"]
    return s["lr_min"] * (base / s["lr_min"]) ** (c / t)


#: OLMo-core's class names and the function of each one's ``get_lr``.
RATES = {
    "ConstantScheduler": _constant,
    "ConstantWithWarmup": _constant_with_warmup,
    "WSD": _wsd,
    "PowerLR": _power,
    "LinearWithWarmup": _linear,
    "InvSqrtWithWarmup": _inv_sqrt,
    "CosWithWarmup": _cosine,
    "HalfCosWithWarmup": _half_cosine,
    "CosWithWarmupAndLinearDecay": _cosine_linear,
    "ComposableScheduler": _composable,
    "SequentialScheduler": _sequential,
    "WSDS": _wsds,
    "ExponentialScheduler": _exponential,
}


def rate(spec: dict, base, current: int, t_max: int):
    """OLMo-core's ``get_lr(base, current, t_max)`` for the class `spec` describes."""
    return RATES[spec["scheduler"]](spec, base, current, t_max)


# The same classes over an array of counts, where NumPy performs the same operations on
# the same numbers: integers below 2**53 (so ``int / int`` and ``float * int`` round as
# Python's do), the four operations and ``np.sqrt`` (correctly rounded, as ``math.sqrt``),
# and ``math.cos`` itself, element by element. Each branch runs only on its own counts.
EXACT = 2**53


def _cos(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.cos, x.tolist()), np.float64, x.size)


def _warm_array(top, c, w, floor):
    _asserted(floor, top, "warmup_min_lr")
    return floor + (top - floor) * np.minimum(c, w) / w


def _cool_array(top, left, d, floor):
    _asserted(floor, top, "decay_min_lr")
    if d == 0:
        raise ZeroDivisionError("division by zero")
    return floor + (top - floor) * np.minimum(left, d) / d


def _cosine_array(s, base, c, t, out, where, half=False):
    t = t if s["t_max"] is None else s["t_max"]
    floor, w = base * s["alpha_f"], resolved(s, "warmup", t)
    warming = where & (c < w)
    if warming.any():
        top = floor + (base - floor) / 2 if half else base
        out[warming] = _warm_array(top, c[warming], w, s["warmup_min_lr"])
    out[where & ~warming & (c >= t)] = floor
    rest = where & ~warming & (c < t)
    if rest.any():
        x, length = c[rest] - w, t - w
        if half:
            x, length = x + length, length * 2
        if s["scheduler"] == "LinearWithWarmup":
            out[rest] = base - (base - floor) * (x / length)
        else:
            out[rest] = floor + (base - floor) * (1 + _cos(math.pi * x / length)) / 2


def rate_array(spec: dict, base, c: np.ndarray, t: int):
    """`rate` over the counts `c` (int64), or None where only the scalar path is exact."""
    name = spec["scheduler"]
    if name not in FAST or t >= EXACT or (c.size and int(c.max()) >= EXACT):
        return None
    out, every = np.full(c.shape, base, dtype=np.float64), np.ones(c.shape, dtype=bool)
    if name in ("LinearWithWarmup", "CosWithWarmup", "HalfCosWithWarmup"):
        _cosine_array(spec, base, c, t, out, every, half=name == "HalfCosWithWarmup")
    elif name == "CosWithWarmupAndLinearDecay":
        d = resolved(spec, "decay", t)
        tail = c >= t - d
        if tail.any():
            top = _cosine(spec, base, t - d, t)
            out[tail] = _cool_array(top, t - c[tail], d, spec["decay_min_lr"])
        _cosine_array(spec, base, c, t, out, ~tail)
    elif name in ("ConstantWithWarmup", "WSD", "InvSqrtWithWarmup"):
        w = resolved(spec, "warmup", t)
        warming = c <= w if name != "InvSqrtWithWarmup" else c < w
        if warming.any():
            out[warming] = _warm_array(base, c[warming], w, spec["warmup_min_lr"])
        rest = ~warming
        if name == "WSD":
            d = resolved(spec, "decay", t)
            tail = rest & (c >= t - d)
            if tail.any():
                out[tail] = _cool_array(base, t - c[tail], d, spec["decay_min_lr"])
        elif name == "InvSqrtWithWarmup" and rest.any():
            floor = base * spec["alpha_f"]
            out[rest] = floor + (base - floor) * np.sqrt(w / c[rest])
    return out


#: The classes `rate_array` runs on NumPy arrays.
FAST = (
    "ConstantScheduler",
    "ConstantWithWarmup",
    "WSD",
    "LinearWithWarmup",
    "InvSqrtWithWarmup",
    "CosWithWarmup",
    "HalfCosWithWarmup",
    "CosWithWarmupAndLinearDecay",
)
