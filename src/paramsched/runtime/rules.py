"""Parameter groups from rules: per-group overrides without hand-written group lists.

`param_groups(model, rules)` walks ``model.named_parameters()`` and gives each
trainable parameter the combination of the overrides of every rule it matches;
parameters with equal combined overrides share one group. It imports no
framework: any object with ``named_parameters()`` whose parameters have
``requires_grad`` and ``ndim`` works (a ``torch.nn.Module`` does).

Examples:
    >>> import torch
    >>> from collections import OrderedDict
    >>> model = torch.nn.Sequential(OrderedDict(embed=torch.nn.Embedding(10, 4),
    ...     norm=torch.nn.LayerNorm(4), mlp=torch.nn.Linear(4, 4), lm_head=torch.nn.Linear(4, 10)))
    >>> rules = {**no_weight_decay_on_bias_and_norm(),
    ...          **decoupled_lr(model, max_lr=1e-3, min_lr=1e-4)}
    >>> for group in param_groups(model, rules):
    ...     print(len(group["params"]), {k: v for k, v in group.items() if k != "params"})
    2 {'max_lr': 0.001, 'min_lr': 0.0001, 'default_config': False}
    3 {'wd_mult': 0.0, 'default_config': False}
    1 {'default_config': True}
    1 {'wd_mult': 0.0, 'max_lr': 0.001, 'min_lr': 0.0001, 'default_config': False}
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable, Mapping

from ..core._curve import VALUE_OVERRIDE
from ..core.overrides import OVERRIDE_KEYS, ParamGroupOverride, param_group_override_to_tuple
from ..errors import ScheduleError, ScheduleTypeError, check_number, check_rate

#: Keys a rule may not set, and why: the scheduler and param_groups write them.
_WRITTEN_KEYS = {
    "lr": "the scheduler writes lr at every step; expected max_lr and min_lr",
    "weight_decay": "the scheduler writes weight_decay at every step; expected wd_mult, "
    "or start_wd and end_wd",
    "params": "param_groups puts the parameters in the groups itself",
    "default_config": "param_groups sets it, True exactly for the group without overrides",
}


class attribute:  # noqa: N801 - reads as a selector: attribute("is_embedding")
    """Selects parameters whose attribute `name` is truthy (e.g. set by a model's code)."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ScheduleTypeError(f"attribute name={name!r}; expected a non-empty string")
        self.name = name

    def __call__(self, name: str, param) -> bool:
        return bool(getattr(param, self.name, False))

    def __repr__(self) -> str:
        return f"attribute({self.name!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, attribute) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("attribute", self.name))


class _Named:
    """A predicate with a name for messages."""

    def __init__(self, description: str, predicate: Callable) -> None:
        self.description, self.predicate = description, predicate

    def __call__(self, name: str, param) -> bool:
        return self.predicate(name, param)

    def __repr__(self) -> str:
        return self.description


def _describe(selector) -> str:
    if isinstance(selector, str):
        return repr(selector)
    return getattr(selector, "__name__", None) or repr(selector)


def _matches(selector, name: str, param) -> bool:
    if isinstance(selector, str):
        return fnmatch.fnmatchcase(name, selector)
    return bool(selector(name, param))


def param_groups(model, rules: Mapping) -> list[dict]:
    """Optimizer parameter groups built from ordered rules.

    Args:
        model: An object with ``named_parameters()`` (a ``torch.nn.Module``).
        rules: An ordered mapping from selectors to `ParamGroupOverride`s. A selector
            is a name glob (``"*.bias"``, matched with fnmatch against the full
            parameter name), a predicate ``(name, param) -> bool``, or `attribute`.
            An override may also hold the group's ``name`` (its name in the
            scheduler's ``metrics()``) and overrides of a scheduled value's named
            values, ``"KEY.name"`` (``{"betas[1].end": 0.999}``), which the scheduler
            checks against its schedule.

    Returns:
        Groups in the order their first parameter appears, parameters in model
        order; each holds its overrides and ``default_config``, True exactly for
        the group without overrides (as Megatron sets it). Frozen parameters
        (``requires_grad`` False) are left out.

        A parameter reachable under two names (shared or tied, e.g. an output layer
        that reuses the embedding, listed twice by ``named_parameters(remove_duplicate=
        False)`` or a model of one's own) is put once, under its first name.

    Raises:
        ScheduleError: two rules a parameter matches set one key to different
            values (the message names the parameter and both rules); a shared
            parameter's names get different overrides (it names both names); a
            rule sets a key that is not one of `OVERRIDE_KEYS` (naming them and the
            closest) or one the scheduler writes (``lr``, ``weight_decay``,
            ``params``, ``default_config``); a value is negative or not finite.
        ScheduleTypeError: `rules` is not a mapping, a selector is neither a glob nor
            a predicate, an override is not a dict, or a value is not a number (a
            list, a dict, an array), naming the rule and the key.

    Warns:
        UserWarning: for every rule that matches no trainable parameter.
    """
    checked = _check_rules(rules)
    named_parameters = getattr(model, "named_parameters", None)
    if not callable(named_parameters):
        raise ScheduleTypeError(
            f"model is of type {type(model).__name__}, without "
            "named_parameters(); expected a torch.nn.Module or an object "
            "with named_parameters()"
        )
    used = {selector: False for selector in checked}
    groups: dict[tuple, dict] = {}
    seen: dict[int, tuple[str, ParamGroupOverride]] = {}  # id(param) -> first name, overrides
    for name, param in named_parameters():
        if not getattr(param, "requires_grad", True):
            continue
        combined: ParamGroupOverride = {}
        source: dict[str, object] = {}
        for selector, override in checked.items():
            if not _matches(selector, name, param):
                continue
            used[selector] = True
            for key, value in override.items():
                if key in combined and combined[key] != value:
                    raise ScheduleError(
                        f"parameter {name!r}: rule {_describe(source[key])} sets "
                        f"{key}={combined[key]!r} and rule {_describe(selector)} sets "
                        f"{key}={value!r}; expected one value"
                    )
                combined[key], source[key] = value, selector
        if id(param) in seen:  # a shared (tied) parameter under another name: put once
            first, first_combined = seen[id(param)]
            if combined != first_combined:
                raise ScheduleError(
                    f"parameter {name!r} is the same tensor as {first!r} (shared); the rules "
                    f"give {first!r} {dict(first_combined)!r} and {name!r} "
                    f"{dict(combined)!r}; expected rules that give both names the same "
                    "overrides"
                )
            continue
        seen[id(param)] = (name, combined)
        key = param_group_override_to_tuple(combined)
        if key not in groups:
            groups[key] = {"params": [], **combined, "default_config": not set(combined) - {"name"}}
        groups[key]["params"].append(param)
    names: dict = {}
    for group in groups.values():
        if "name" in group and names.setdefault(group["name"], group) is not group:
            raise ScheduleError(
                f"two groups are named {group['name']!r} with different "
                "overrides; expected rules that name each group once"
            )
    for selector, matched in used.items():
        if not matched:
            warnings.warn(
                f"paramsched.param_groups: rule {_describe(selector)} matched no "
                "trainable parameter",
                UserWarning,
                stacklevel=2,
            )
    return list(groups.values())


def _check_rules(rules) -> dict:
    """`rules` checked, every override's values as floats; refuses by rule and key."""
    if not isinstance(rules, Mapping):
        raise ScheduleTypeError(
            f"rules is of type {type(rules).__name__}; expected a mapping "
            "from selectors to overrides"
        )
    checked = {}
    for selector, override in rules.items():
        if not (isinstance(selector, str) or callable(selector)):
            raise ScheduleTypeError(
                f"rule selector {selector!r} is of type "
                f"{type(selector).__name__}; expected a glob, a predicate "
                "(name, param) or paramsched.rules.attribute(...)"
            )
        rule = f"rule {_describe(selector)}"
        if not isinstance(override, Mapping):
            raise ScheduleTypeError(
                f"{rule}: override {override!r} is of type "
                f"{type(override).__name__}; expected a dict such as "
                "{'wd_mult': 0.0}"
            )
        checked[selector] = {}
        for key, value in override.items():
            if key in _WRITTEN_KEYS:
                raise ScheduleError(f"{rule} sets {key!r}: {_WRITTEN_KEYS[key]}")
            if key == "optimizer":  # Megatron main's per-parameter optimizer, by name
                if not isinstance(value, str) or not value:
                    raise ScheduleTypeError(
                        f"{rule}: optimizer={value!r}; expected the name of "
                        "an optimizer, such as 'muon'"
                    )
                checked[selector][key] = value
                continue
            if key == "name":  # the group's name in metrics()
                if not isinstance(value, str) or not value:
                    raise ScheduleTypeError(
                        f"{rule}: name={value!r}; expected a non-empty string naming the group"
                    )
                checked[selector][key] = value
                continue
            if isinstance(key, str) and VALUE_OVERRIDE.fullmatch(key):  # "betas[1].end"
                checked[selector][key] = float(check_number(f"{rule}: {key}", value))
                continue
            if key not in OVERRIDE_KEYS:
                keys = (*OVERRIDE_KEYS, "optimizer", "name", "KEY.named_value")
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ScheduleError(
                    f"{rule} sets {key!r}, which is not an override; expected "
                    f"one of {', '.join(repr(k) for k in keys)}{hint}"
                )
            checked[selector][key] = check_rate(f"{rule}: {key}", value)
    return checked


def no_weight_decay_on_bias_and_norm() -> dict:
    """A rule: no weight decay (``wd_mult=0.0``) for biases and every one-dimensional
    parameter (normalization weights and biases, as is customary)."""
    selector = _Named(
        "bias and one-dimensional parameters",
        lambda name, param: name.endswith("bias") or getattr(param, "ndim", 2) <= 1,
    )
    return {selector: {"wd_mult": 0.0}}


OUTPUT_LAYER_NAMES = ("lm_head", "output_layer", "output", "head")


def decoupled_lr(model, max_lr: float, min_lr: float | None = None) -> dict:
    """A rule: a learning rate of their own for the embedding and output layers.

    Selected are the parameters of modules whose class name ends in ``Embedding``,
    of modules named one of `OUTPUT_LAYER_NAMES` (the last part of the name), and
    any parameter with a truthy ``is_embedding_or_output_parameter`` attribute (as
    Megatron marks them).

    Args:
        model: The model, to find the embedding and output modules.
        max_lr: Their ``max_lr``.
        min_lr: Their ``min_lr``; default: the schedule's.
    """
    chosen = set()
    for module_name, module in model.named_modules():
        last = module_name.rsplit(".", 1)[-1]
        if type(module).__name__.endswith("Embedding") or last in OUTPUT_LAYER_NAMES:
            chosen.update(id(p) for p in module.parameters())
    override: dict = {"max_lr": max_lr}
    if min_lr is not None:
        override["min_lr"] = min_lr
    selector = _Named(
        "embedding and output layers",
        lambda name, param: (
            id(param) in chosen or bool(getattr(param, "is_embedding_or_output_parameter", False))
        ),
    )
    return {selector: override}
