"""``base ** exponent`` on NumPy arrays: bit for bit what `math.pow` returns, but fast.

How: ``x**y = 2**s`` with ``s = y*log2(x)``, estimated in double-double arithmetic made
of float64 NumPy operations (``log2`` from a 256-entry table and a polynomial, an
error-free product, ``2**s`` from a 1024-entry table and a polynomial) to within
0.004 + 0.0001*|s| ULP, then rounded to a double, its remainder kept. (NumPy's
long-double ``exp2`` and ``power`` would be simpler but cost 50 to 600 ns an element,
more than `math.pow` itself.)

The margin: ``pow`` is not correctly rounded, so a rounded estimate is kept only where
``pow`` must return the same double. glibc's ``pow`` (since 2.28, e_pow.c) documents
0.54 ULP at worst: up to 0.511 ULP for its final exp, plus ``|y ln x|*1.5*2**-68*2**53``
ULP from its log (up to 0.03 ULP, near overflow). Before rounding it is thus within
0.011 + 0.000032*|s| ULP of the true value. An estimate is kept only if it is at least
``1/32 + |s|/2048`` ULP from the midpoint between two doubles: over twice both bounds
added, for every ``s``, so there both round to the same double. Every other element
(about 7% of random ones; and all with a base that is not a positive normal number, a
non-finite exponent, or ``|s| >= 512``) comes from `math.pow`, which raises its errors.
The estimate is used with glibc >= 2.28 on 64-bit x86 or ARM only; elsewhere every
element comes from `math.pow`.
"""

from __future__ import annotations

import math
import platform
import sys
from decimal import Decimal, localcontext
from functools import cache, lru_cache
from itertools import repeat

import numpy as np

_LIBC, _VERSION = platform.libc_ver()
_FAST = (
    _LIBC == "glibc"
    and platform.machine() in ("x86_64", "aarch64")
    and sys.maxsize > 2**32
    and tuple(int(v) for v in _VERSION.split(".")[:2] if v.isdigit()) >= (2, 28)
)
_CHUNK = 1 << 15  # elements per pass, so that the temporaries stay in the cache
_MIN_FAST = 3000  # for fewer elements, math.pow on each is faster
_OFF = 0x3FF0000000000000 - (301 << 43)  # 0.706; log table entry 150 is [1-2**-10, 1+2**-9)
_SHIFT = 1.5 * 2.0**52  # u + _SHIFT holds round(u) in its low bits
_M0, _M1 = 1 / 32, 1 / 2048  # the margin in ULP: _M0 + _M1 * |s|


def pow_array(base, exponent) -> np.ndarray:
    """``base ** exponent`` elementwise, each element the double `math.pow` returns.

    Args:
        base: A float or an array-like of floats.
        exponent: A float or an array-like of floats, broadcastable with `base`.

    Returns:
        A float64 array of the broadcast shape (0-d for two scalars).

    Raises:
        ValueError, OverflowError: Where `math.pow` raises (such as a negative base with
            a non-integer exponent, or overflow), naming the element; ValueError also if
            the shapes do not broadcast; TypeError or ValueError for an argument that
            NumPy cannot turn into float64.

    Examples:
        >>> r = np.linspace(0.0, 1.0, 5001)
        >>> pow_array(0.5, r).tolist() == [math.pow(0.5, x) for x in r.tolist()]
        True
    """
    b, y = _as_array("base", base), _as_array("exponent", exponent)
    try:
        shape = np.broadcast_shapes(b.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"pow_array: base={base!r} and exponent={exponent!r} do not broadcast"
        ) from None
    out = np.empty(shape)
    flat = out.reshape(-1)
    b, y = (a.reshape(-1) if a.size == 1 else np.broadcast_to(a, shape).ravel() for a in (b, y))
    fast = _FAST and flat.size >= _MIN_FAST
    redo = [] if fast else [np.arange(flat.size)]  # the elements to take from math.pow
    if fast:
        with np.errstate(all="ignore"):
            # Scratch rows for all chunks: new temporaries every chunk would be handed
            # back to the system and page-faulted in again, at a cost of ~100 ns an element.
            work = np.empty((12, min(_CHUNK, flat.size)))
            log_b = _log2_of(b.item()) if b.size == 1 else None
            for start in range(0, flat.size, _CHUNK):
                part = slice(start, start + _CHUNK)
                w = work[:, : flat[part].size]
                log_x = log_b if log_b is not None else _log2(b[part], w)
                _, unsafe, _, _ = _fast(y if y.size == 1 else y[part], log_x, w[2:], flat[part])
                redo.append(start + np.flatnonzero(unsafe))
    if redo and (redo := np.concatenate(redo)).size:
        flat[redo] = _libm(b, y, redo)
    return out


def _as_array(name, value) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise type(err)(f"pow_array: {name}={value!r} is not a float: {err}") from None


def _libm(b, y, where) -> np.ndarray:
    """`math.pow` at the indices `where` of `b` and `y` (each 1-D, or of size 1)."""
    # A memoryview makes its floats one at a time: faster than a list.
    xs, ys = (memoryview(a[where]) if a.size > 1 else repeat(a.item(), len(where)) for a in (b, y))
    try:
        return np.fromiter(map(math.pow, xs, ys), np.float64, where.size)
    except (ValueError, OverflowError):
        for x, e in zip(*(a[where] if a.size > 1 else repeat(a[0]) for a in (b, y))):
            x, e = float(x), float(e)
            try:
                math.pow(x, e)
            except (ValueError, OverflowError) as err:
                raise type(err)(f"pow_array: base={x!r}, exponent={e!r}: {err}") from None
        raise


@cache
def _tables():
    """Tables and coefficients, computed once: doubles, or hi + lo pairs to ~2**-110."""
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()

        def split(d, grid=0.0):  # hi, a multiple of 1/grid if given, and lo
            hi = round(float(d) * grid) / grid if grid else float(d)
            return hi, float(d - Decimal(hi))

        exp2, step = [Decimal(1)], (ln2 / 1024).exp()
        while len(exp2) < 1024:  # 2**(j/1024)
            exp2.append(exp2[-1] * step)
        logs = []  # for the z of entry i: 1/c ~ 1/z with 12 bits after the point, -log2(1/c)
        for i in range(256):
            lo, hi = (float(np.int64(_OFF + (k << 44)).view(np.float64)) for k in (i, i + 1))
            invc = 1.0 if lo <= 1.0 < hi else round(8192 / (lo + hi)) / 4096
            logs.append((invc, *split(-Decimal(invc).ln() / ln2, 2.0**42)))
        c1h, c1l = split(1 / ln2, 2.0**26)  # 1/ln2; c1h has 27 bits
        exp_poly = [float((ln2 / 1024) ** n / math.factorial(n)) for n in range(4, 0, -1)]
        log_poly = [float((-1) ** (k + 1) / (k * ln2)) for k in range(8, 2, -1)] + [-c1l / 2, c1l]
    exp2 = np.array([split(t) for t in exp2]).T.copy()
    return exp2, np.array(logs).T.copy(), c1h, exp_poly, log_poly


def _log2(x, w):
    """``log2(x) = hi + lo`` to a relative 2**-66, and where x is a positive normal number.

    hi and lo are the rows w[0] and w[1]; w[2:11] are overwritten (rows as long as x).
    """
    _, (invc, th, tl), c1h, _, poly = _tables()
    hi, lo, z, zh, c, u, v, a, b, e = w[:10]
    ix, zi, ie, i = x.view(np.int64), z.view(np.int64), e.view(np.int64), w[10].view(np.int64)
    np.subtract(ix, _OFF, out=ie)
    np.right_shift(ie, 44, out=i)
    i &= 255  # the table entry
    np.bitwise_and(ie, -1 << 52, out=zi)
    np.subtract(ix, zi, out=zi)  # x = 2**e * z, z in [0.706, 1.412)
    ie >>= 52
    invc.take(i, mode="clip", out=c)  # 1/c, near 1/z, with 12 bits after the point
    np.bitwise_and(zi, -1 << 32, out=zh.view(np.int64))  # z to 20 bits
    np.subtract(z, zh, out=v)
    v *= c
    np.multiply(zh, c, out=u)
    u -= 1.0  # z/c - 1 = u + v exactly, and it is below 2**-8.8
    rd, re = _two_sum(u, v, z, zh)
    rh, rl = zh, v
    np.bitwise_and(rd.view(np.int64), -1 << 27, out=rh.view(np.int64))  # rd to 26 bits
    np.subtract(rd, rh, out=rl)
    rl += re  # r = rh + rl
    np.multiply(rh, c1h, out=a)  # exact, like the products of rh with ah and a - ah
    np.bitwise_and(a.view(np.int64), -1 << 27, out=c.view(np.int64))  # ah
    np.subtract(a, c, out=b)
    b *= rh
    b *= 0.5  # p2
    c *= rh
    c *= 0.5  # p1, and p1 + p2 = c1h * rh**2 / 2
    np.subtract(a, c, out=lo)  # h = a - p1; and the small terms, in a:
    np.subtract(a, lo, out=a)
    a -= c
    a -= b  # ((a - h) - p1) - p2
    np.subtract(1.0, rh, out=b)
    np.multiply(rl, 0.5, out=c)
    b -= c
    b *= rl
    b *= c1h
    a += b  # + c1h * rl * ((1 - rh) - rl / 2)
    a += _horner(rd, poly, b)  # + the rest of the series, c1l * r - c1l * r**2 / 2 + ...
    th.take(i, mode="clip", out=b)
    b += ie  # e + log2(c), exact
    _, err = _two_sum(b, lo, hi, c)
    tl.take(i, mode="clip", out=lo)
    lo += a
    lo += err
    return hi, lo, (x >= 2.0**-1022) & (x < np.inf)


@lru_cache(maxsize=64)
def _log2_of(x: float):
    """`_log2` of a single base, kept: a scalar base is the common case."""
    return _log2(np.array([x]), np.empty((11, 1)))


def _two_sum(a, b, s, t):
    """Writes a + b = s + e exactly into s, and e into a; b and t are overwritten."""
    np.add(a, b, out=s)
    np.subtract(s, a, out=t)
    b -= t
    np.subtract(s, t, out=t)
    a -= t
    a += b
    return s, a


def _horner(x, coefficients, out):
    """``x * (((c0 * x + c1) * x + ...) + cn)``, into out."""
    np.multiply(x, coefficients[0], out=out)
    for c in coefficients[1:]:
        out += c
        out *= x
    return out


def _fast(y, log_x, w, result):
    """``2**(y * log2 x)`` rounded, into result; where that is unsafe; ``y0`` and ``d``.

    Before rounding, the estimate is ``result * (1 + d / y0)``. w: 10 scratch rows.
    """
    (eh, el), _, _, poly, _ = _tables()
    lh, ll, ok = log_x
    s, q, th, c, y0, d, a, b = w[:8]
    j, m = w[8].view(np.int64), w[9].view(np.int64)
    np.multiply(y, lh, out=s)
    exact = lh.size == 1 and ll[0] == 0.0 and abs(math.frexp(lh[0])[0]) == 0.5  # 2**k bases
    if not exact:  # Dekker's product: y * lh = s + d exactly, then d += y * ll
        np.multiply(y, 134217729.0, out=a)
        np.subtract(a, y, out=b)
        a -= b  # yh
        np.subtract(y, a, out=b)  # yl
        np.bitwise_and(lh.view(np.int64), -1 << 27, out=c.view(np.int64))  # lhh
        np.subtract(lh, c, out=th)  # lhl
        np.multiply(a, c, out=d)
        d -= s
        a *= th
        d += a
        c *= b
        d += c
        b *= th
        d += b
        np.multiply(y, ll, out=b)
        d += b
    np.multiply(s, 1024.0, out=a)
    np.add(a, _SHIFT, out=b)  # holds k = round(1024 s) in its low bits
    ki = b.view(np.int64)
    np.bitwise_and(ki, 1023, out=j)
    np.right_shift(ki, 10, out=m)
    m <<= 52  # k >> 10, as an exponent field
    b -= _SHIFT
    a -= b  # 1024 s = k + a exactly, |a| <= 1/2
    if not exact:
        d *= 1024.0
        a += d
    eh.take(j, mode="clip", out=th)
    _horner(a, poly, q)  # 2**(a/1024) - 1
    el.take(j, mode="clip", out=c)
    q *= th
    c += q
    np.add(th, c, out=y0)
    np.subtract(th, y0, out=d)
    d += c  # 2**((j + a) / 1024) = y0 + d
    abs_s = np.abs(s, out=s)
    bound = abs_s.max()
    if bound < 8.0:  # one margin for the whole chunk, its widest
        np.multiply(d, 0.5 / ((0.5 - _M0) - _M1 * bound), out=q)
    else:
        np.multiply(abs_s, -_M1, out=q)
        q += 0.5 - _M0
        np.divide(0.5, q, out=q)
        q *= d
    q += y0  # rounds to y0 unless y0 + d is within the margin of a midpoint
    unsafe = q != y0
    if not bound < 8.0:
        unsafe |= ~(abs_s < 512.0)
    if ok.size > 1 or not ok[0]:
        unsafe |= ~ok
    np.add(y0.view(np.int64), m, out=result.view(np.int64))
    return result, unsafe, y0, d
