"""Parameter groups from rules: per-group overrides without hand-written group lists.

`param_groups(model, rules)` walks ``model.named_parameters()`` and gives each
trainable parameter the combination of the overrides of every rule it matches;
parameters with equal combined overrides share one group. It imports no
framework: any object with ``named_parameters()`` whose parameters have
``requires_grad`` and ``ndim`` works (a ``torch.nn.Module`` does).

Example:
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

import fnmatch
import warnings
from collections.abc import Callable, Mapping

from .errors import ScheduleError, ScheduleTypeError
from .overrides import ParamGroupOverride, param_group_override_to_tuple


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

    Returns:
        Groups in the order their first parameter appears, parameters in model
        order; each holds its overrides and ``default_config``, True exactly for
        the group without overrides (as Megatron sets it). Frozen parameters
        (``requires_grad`` False) are left out.

    Raises:
        ScheduleError: two rules a parameter matches set one key to different
            values; the message names the parameter and both rules.

    Warns:
        UserWarning: for every rule that matches no trainable parameter.
    """
    if not isinstance(rules, Mapping):
        raise ScheduleTypeError(f"rules is of type {type(rules).__name__}; expected a mapping "
                                "from selectors to overrides")
    for selector, override in rules.items():
        if not (isinstance(selector, str) or callable(selector)):
            raise ScheduleTypeError(f"rule selector {selector!r} is of type "
                                    f"{type(selector).__name__}; expected a glob, a predicate "
                                    "(name, param) or paramsched.rules.attribute(...)")
        if not isinstance(override, Mapping):
            raise ScheduleTypeError(f"rule {_describe(selector)}: override {override!r} is of "
                                    f"type {type(override).__name__}; expected a dict such as "
                                    "{'wd_mult': 0.0}")
    used = {selector: False for selector in rules}
    groups: dict[tuple, dict] = {}
    for name, param in model.named_parameters():
        if not getattr(param, "requires_grad", True):
            continue
        combined: ParamGroupOverride = {}
        source: dict[str, object] = {}
        for selector, override in rules.items():
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
        key = param_group_override_to_tuple(combined)
        if key not in groups:
            groups[key] = {"params": [], **combined, "default_config": not combined}
        groups[key]["params"].append(param)
    for selector, matched in used.items():
        if not matched:
            warnings.warn(f"paramsched.param_groups: rule {_describe(selector)} matched no "
                          "trainable parameter", UserWarning, stacklevel=2)
    return list(groups.values())


def no_weight_decay_on_bias_and_norm() -> dict:
    """A rule: no weight decay (``wd_mult=0.0``) for biases and every one-dimensional
    parameter (normalization weights and biases, as is customary)."""
    selector = _Named("bias and one-dimensional parameters",
                      lambda name, param: name.endswith("bias") or getattr(param, "ndim", 2) <= 1)
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
        lambda name, param: id(param) in chosen
        or bool(getattr(param, "is_embedding_or_output_parameter", False)),
    )
    return {selector: override}
