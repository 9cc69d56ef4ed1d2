"""Other stacks' own schedulers, run to give the rates paramsched's readers must equal.

Each function builds the stack's scheduler from its own code, unmodified, steps it, and
returns the learning rate it has set after 0, 1, ..., `steps` steps. Imported by the
tests of `paramsched.formats` once the stack is known to be installed.
"""

from __future__ import annotations

import torch


def optimizer_of(lr: float, groups: int = 1) -> torch.optim.Optimizer:
    """An SGD optimizer of `groups` groups, group ``i`` at ``lr * (i + 1)``."""
    params = [
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * (i + 1)} for i in range(groups)
    ]
    return torch.optim.SGD(params, lr=lr)


def hf_rates(steps: int, groups: int = 1, **arguments) -> list[list[float]]:
    """transformers' ``get_scheduler(**arguments)`` (``lr`` is the optimizer's): each
    group's rate after 0..`steps` calls of ``scheduler.step()``."""
    from transformers import get_scheduler

    optimizer = optimizer_of(arguments.pop("lr"), groups)
    scheduler = get_scheduler(optimizer=optimizer, **arguments)
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates


def timm_scheduler():
    """timm's own ``timm.scheduler`` package, unmodified, without running ``timm/__init__``.

    timm's package module imports torchvision (for its models), and the package index's
    torchvision cannot load beside the CPU build of torch; its scheduler modules import
    only torch, NumPy and one another. A bare ``timm`` package module whose ``__path__`` is
    the installed timm directory is registered (only if timm is not imported already), so
    that ``import timm.scheduler`` runs timm's scheduler files and nothing else.
    """
    import importlib
    import importlib.util
    import sys
    import types

    if "timm" not in sys.modules:
        spec = importlib.util.find_spec("timm")
        if spec is None:
            import pytest

            pytest.skip("timm is not installed (pip install --no-deps timm==1.0.31)")
        package = types.ModuleType("timm")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        sys.modules["timm"] = package
    return importlib.import_module("timm.scheduler")


def timm_rates(updates: int, groups: int = 1, **arguments) -> list:
    """timm's ``create_scheduler_v2(optimizer, **arguments)`` driven as timm's training
    loop drives it: ``step_update(num_updates)`` after each optimizer update, and
    ``step(epoch + 1)`` after each epoch of ``updates_per_epoch`` updates (one, when the
    arguments give none: then an update is an epoch). Each group's rate after
    0..`updates` updates."""
    scheduler_module = timm_scheduler()
    optimizer = optimizer_of(arguments.pop("lr"), groups)
    scheduler, _ = scheduler_module.create_scheduler_v2(optimizer, **arguments)
    per_epoch = arguments.get("updates_per_epoch") or 1
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for update in range(1, updates + 1):
        optimizer.step()
        scheduler.step_update(num_updates=update)
        if update % per_epoch == 0:
            scheduler.step(update // per_epoch)
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates
