"""The branches of transformers' schedule lambdas, each times a group's base rate.

``LambdaLR`` sets ``base_lr * lr_lambda(n)``; each function here is one branch of one of
transformers' lambdas (`paramsched.formats.hf` says which, and where it applies), with
its operations in their order, for a number or, through the math namespace ``m``
(`paramsched.shapes`), a NumPy array.

Examples:
    >>> from paramsched.shapes import SCALAR
    >>> warmup(3, 2.0, SCALAR, 4.0)
    1.5
"""

from __future__ import annotations

import math

# Each formula is one branch of a transformers lambda, times the group's base rate.


def warmup(n, base, m, denominator):
    return base * (m.float(n) / denominator)


def one(n, base, m):
    return base * 1.0


def linear(n, base, m, total, denominator):
    return base * m.maximum(0.0, m.float(total - n) / denominator)


def cosine(n, base, m, warmup, denominator, cycles):
    progress = m.float(n - warmup) / denominator
    return base * m.maximum(0.0, 0.5 * (1.0 + m.cos(math.pi * cycles * 2.0 * progress)))


def restarts(n, base, m, warmup, denominator, cycles):
    progress = m.float(n - warmup) / denominator
    return base * m.maximum(0.0, 0.5 * (1.0 + m.cos(math.pi * ((cycles * progress) % 1.0))))


def polynomial(n, base, m, warmup, decay_steps, lr_range, power, lr_end, lr_init):
    remaining = 1 - (n - warmup) / decay_steps
    return base * ((lr_range * m.pow(remaining, power) + lr_end) / lr_init)


def inverse_sqrt(n, base, m, shift, timescale):
    return base * (1.0 / m.sqrt((n + shift) / timescale))


def cosine_min(n, base, m, warmup, denominator, cycles, rate):
    progress = m.float(n - warmup) / denominator
    factor = 0.5 * (1.0 + m.cos(math.pi * cycles * 2.0 * progress))
    return base * m.maximum(0, factor * (1 - rate) + rate)


def warmup_plus_one(n, base, m, denominator):
    return base * ((m.float(n) + 1.0) / denominator)


def warmup_from_rate(n, base, m, start, denominator):
    return base * (start + (1.0 - start) * m.float(n) / denominator)


def cosine_min_shifted(n, base, m, warmup, denominator, cycles, rate):
    progress = (m.float(n) - warmup + 1.0) / denominator
    factor = 0.5 * (1.0 + m.cos(math.pi * cycles * 2.0 * progress))
    return base * m.maximum(0, factor * (1 - rate) + rate)


def wsd_warmup(n, base, m, kind, denominator, ratio):
    progress = m.float(n) / denominator
    if kind == "linear":
        factor = progress
    elif kind == "cosine":
        factor = 0.5 * (1.0 - m.cos(math.pi * progress))
    else:
        factor = 1.0 - m.sqrt(1.0 - progress)
    return base * m.maximum(0.0, factor * (1.0 - ratio) + ratio)


def wsd_decay(n, base, m, kind, start, denominator, cycles, ratio):
    progress = m.float(n - start) / denominator
    if kind == "linear":
        factor = 1.0 - progress
    elif kind == "cosine":
        factor = 0.5 * (1.0 + m.cos(math.pi * cycles * 2.0 * progress))
    else:
        factor = 1.0 - m.sqrt(progress)
    return base * m.maximum(0.0, factor * (1.0 - ratio) + ratio)
