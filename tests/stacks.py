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
