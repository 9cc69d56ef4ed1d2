"""How previews write counts and rates: exact below a million, then with an SI suffix."""

from __future__ import annotations

from ..core.units import SI_SUFFIXES

# One suffix per scale, largest first: the first `SI_SUFFIXES` lists (B, not its alias G).
_SI_SCALES = sorted(
    {scale: suffix for suffix, scale in reversed(SI_SUFFIXES.items()) if scale > 1}.items(),
    reverse=True,
)


def _si_scale(value) -> tuple[str, int]:
    """The largest SI suffix not above `value`, and its scale; the table and the plot's
    axes both write counts with it.

    Examples:
        >>> _si_scale(3.6e9), _si_scale(999)
        (('B', 1000000000), ('', 1))
    """
    for scale, suffix in _SI_SCALES:
        if abs(value) >= scale:
            return suffix, scale
    return "", 1


def _number(value) -> str:
    """Counts for people: exact below a million, then 3.4912B, 14.633T."""
    if value is None:
        return "-"
    if abs(value) >= 10**6:
        suffix, scale = _si_scale(value)
        return f"{value / scale:.5g}{suffix}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{int(value):,}"


def _csv_number(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)
