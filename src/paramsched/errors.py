"""The errors paramsched raises, and the checks that raise them.

Every message names the field, repeats the value and says what was expected, so
that a mistake in a launch script reads as one line.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable


class ScheduleError(ValueError):
    """A value paramsched cannot accept; the message names the field and the value."""


class ScheduleTypeError(ScheduleError, TypeError):
    """A value of the wrong type; also a `TypeError`."""


#: The largest number paramsched takes (a step count, samples, a rate): beyond any run,
#: and within what floats, int64 arrays and JSON carry exactly, so that every position a
#: scheduler reaches is one its checkpoint can hold and load.
LIMIT = 10**18


def check_number(field: str, value: object) -> int | float:
    """Returns `value` as a finite Python int or float of at most `LIMIT` in size, or
    raises naming `field`.

    Integers stay integers (step counts compare exactly), other reals become floats;
    NumPy scalars are accepted. `bool` is refused: `True` is never a step count.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScheduleTypeError(
            f"{field}={value!r} is of type {type(value).__name__}; expected a number"
        )
    try:
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    except OverflowError:  # a Fraction or Decimal no float holds
        raise ScheduleError(f"{field} is beyond any run; expected at most 1e18 in size") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ScheduleError(f"{field}={value!r} is not finite; expected a finite number")
    if abs(value) > LIMIT:
        shown = (
            f"an integer of {_digits(abs(value))} digits"
            if isinstance(value, int) and abs(value) > 10**30
            else repr(value)
        )
        raise ScheduleError(f"{field}={shown} is beyond any run; expected at most 1e18 in size")
    return value


def _digits(number: int) -> int:
    """The decimal digits of `number` > 0, without writing it out (Python refuses to
    write an int of more than 4300 digits)."""
    digits = int(math.log10(number)) + 1
    if 10 ** (digits - 1) > number:
        return digits - 1
    return digits + 1 if 10**digits <= number else digits


def check_non_negative(field: str, value: object) -> int | float:
    """Like `check_number`, and also refuses values below zero."""
    value = check_number(field, value)
    if value < 0:
        raise ScheduleError(f"{field}={value!r} is negative; expected a number >= 0")
    return value


def check_rate(field: str, value: object) -> float:
    """A learning rate or a weight decay: a finite float >= 0."""
    return float(check_non_negative(field, value))


def check_choice(field: str, value: object, choices: Iterable[str]) -> str:
    """Returns `value` as a plain `str` if it is one of `choices` (a `str` subclass such
    as ``numpy.str_`` or a ``str`` Enum member compares equal, and is returned as the
    plain string, which checkpoints and ``torch.load(weights_only=True)`` take), else
    raises listing them all.

    Examples:
        >>> check_choice("style", "cosin", ("linear", "cosine"))
        Traceback (most recent call last):
        ...
        paramsched.errors.ScheduleError: style='cosin' is not one of 'linear', 'cosine' (did you mean 'cosine'?)
    """
    choices = tuple(choices)
    if isinstance(value, str) and value in choices:
        return str.__str__(value)  # a plain str: np.str_ or a str Enum member is not one
    listed = ", ".join(repr(c) for c in choices)
    message = f"{field}={value!r} is not one of {listed}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1)
        if not close:
            close = [c for c in choices if c.lower() == value.lower()]
        if close:
            message += f" (did you mean {close[0]!r}?)"
    raise ScheduleError(message)


def briefly(items: Iterable[str], width: int = 90) -> str:
    """`items` joined for a one-line WARNING: as many as fit in `width` characters, then
    how many more (the whole list belongs in DEBUG or in an exception).

    Examples:
        >>> briefly(["max_lr=0.002 (not 0.001)", "min_lr=0.0 (not 1e-05)"], width=30)
        'max_lr=0.002 (not 0.001) and 1 more'
    """
    items = [str(item) for item in items]
    shown: list[str] = []
    for item in items:
        if shown and len(", ".join([*shown, item])) > width:
            break
        shown.append(item if len(item) <= width else item[: width - 3] + "...")
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def shown(value: object, width: int = 40) -> str:
    """`value`'s repr for a one-line message, cut to `width` characters.

    Examples:
        >>> shown("1" * 100, width=12)
        "'1111...111'"
    """
    text = repr(value)
    if len(text) <= width:
        return text
    keep = width - 3
    return text[: keep // 2 + keep % 2] + "..." + text[len(text) - keep // 2 :]


def coded(error: ScheduleError, code: str, step: int | None = None) -> ScheduleError:
    """`error`, marked as a finding of the check rule `code` (`paramsched.check.rules`)
    at `step`, for ``paramsched check`` to report; raised as it is everywhere else.

    Examples:
        >>> error = coded(ScheduleError("--train-iters=1000 with --train-samples=5"), "M120")
        >>> error.code, error.step
        ('M120', None)
    """
    error.code, error.step = code, step
    return error
