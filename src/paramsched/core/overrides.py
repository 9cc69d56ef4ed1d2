"""Per-group overrides: what a parameter group may set for itself.

A parameter group (a dict in ``optimizer.param_groups``) may hold ``max_lr``,
``min_lr``, ``start_wd``, ``end_wd`` and ``wd_mult``; the scheduler then uses
them instead of its own values for that group, as Megatron-Core does. As on
Megatron main, every key is optional and an override may also name the group's
``optimizer`` (``"muon"``, say), which the scheduler does not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from ..errors import ScheduleError, ScheduleTypeError, check_number

OVERRIDE_KEYS = ("max_lr", "min_lr", "start_wd", "end_wd", "wd_mult")


class ParamGroupOverride(TypedDict, total=False):
    """Values a parameter group sets for itself, all optional; other keys are allowed too.

    Examples:
        >>> ParamGroupOverride(min_lr=1e-4, wd_mult=0.0)
        {'min_lr': 0.0001, 'wd_mult': 0.0}
        >>> ParamGroupOverride(optimizer="muon")  # a per-parameter optimizer, Megatron main's
        {'optimizer': 'muon'}
    """

    max_lr: float
    min_lr: float
    start_wd: float
    end_wd: float
    wd_mult: float
    optimizer: str


def _check_list(field: str, value, of: str) -> None:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ScheduleTypeError(
            f"{field}={value!r} is of type {type(value).__name__}; expected a list of {of}"
        )


def _check_override(field: str, value) -> None:
    """Refuses an override that is not a dict, and one whose value for a key of
    `OVERRIDE_KEYS` is not a number (an array, say) or None, naming the key."""
    if not isinstance(value, Mapping):
        raise ScheduleTypeError(
            f"{field}={value!r} is of type {type(value).__name__}; "
            "expected a dict such as {'wd_mult': 0.0}"
        )
    for key in OVERRIDE_KEYS:
        if value.get(key) is not None:
            check_number(f"{field}[{key!r}]", value[key])


def param_group_override_to_tuple(
    param_group_override: ParamGroupOverride | None,
) -> tuple[tuple[str, Any], ...] | None:
    """The override as a tuple of ``(key, value)`` sorted by key, usable as a dict key.

    Two overrides that hold the same entries in a different order give the same tuple.

    Examples:
        >>> param_group_override_to_tuple({"wd_mult": 0.0, "max_lr": 1e-3})
        (('max_lr', 0.001), ('wd_mult', 0.0))
    """
    if param_group_override is None:
        return None
    _check_override("param_group_override", param_group_override)
    for key, value in param_group_override.items():
        try:
            hash(value)
        except TypeError:  # a list or an array: the tuple could not be a dict key
            raise ScheduleTypeError(
                f"param_group_override[{key!r}]={value!r} is of type {type(value).__name__}; "
                "expected a number or a string (the tuple is used as a dict key)"
            ) from None
    return tuple(sorted(param_group_override.items()))


def combine_param_group_overrides(
    param_group_overrides: list[ParamGroupOverride | None],
) -> ParamGroupOverride:
    """Merges overrides into one; `None` entries are skipped.

    Raises:
        ScheduleError: (a `ValueError`) two overrides give one key different values.

    Examples:
        >>> combine_param_group_overrides([{"wd_mult": 0.0}, None, {"max_lr": 1e-3}])
        {'wd_mult': 0.0, 'max_lr': 0.001}
    """
    _check_list("param_group_overrides", param_group_overrides, "overrides (dicts or None)")
    combined = ParamGroupOverride()
    for index, override in enumerate(param_group_overrides):
        if override is None:
            continue
        _check_override(f"param_group_overrides[{index}]", override)
        for key, value in override.items():
            if key in combined and _differ(
                f"param_group_overrides[{index}][{key!r}]", combined[key], value
            ):
                raise ScheduleError(
                    f"conflicting overrides for {key!r}: {combined[key]!r} and {value!r} "
                    f"(override {index}); expected one value"
                )
            combined[key] = value
    return combined


def _differ(field: str, first, second) -> bool:
    """Whether two values of one key differ; values that cannot say (arrays of several
    elements) are refused, naming the key."""
    try:
        return bool(first != second)
    except (TypeError, ValueError):
        raise ScheduleTypeError(
            f"{field}={second!r} is of type {type(second).__name__}, which "
            f"cannot be compared with {first!r}; expected a number or a "
            "string"
        ) from None


def get_canonical_lr_for_logging(param_groups: list[dict]) -> float | None:
    """The ``lr`` of the first group with ``default_config=True``, or None if there is none.

    Groups that use the default configuration share one schedule, so the first is
    representative; empty groups count too, since the scheduler writes every group.
    """
    _check_list("param_groups", param_groups, "parameter groups (optimizer.param_groups)")
    for index, group in enumerate(param_groups):
        if not isinstance(group, Mapping):
            raise ScheduleTypeError(
                f"param_groups[{index}]={group!r} is of type "
                f"{type(group).__name__}; expected a dict"
            )
        if group.get("default_config", False):
            return group.get("lr")
    return None
