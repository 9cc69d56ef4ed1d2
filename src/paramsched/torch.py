"""PyTorch integration: tensor learning rates updated in place.

This module imports torch; the core of paramsched never does. It is imported
lazily, the first time a parameter group is found to hold its ``lr`` or
``weight_decay`` in a tensor (as for ``fused=True``, ``capturable=True`` or a
``torch.compile``d optimizer step).
"""

from __future__ import annotations

import torch


def write_tensor_values(groups, cells) -> None:
    """Writes each group's ``[lr, weight_decay]`` cell; tensors are updated in place.

    A tensor is never replaced and never read back to the host: the new values
    go into one tensor per device, and one ``torch._foreach_copy_`` copies them
    into every group's tensors, so the number of torch operations per call does
    not grow with the number of groups. Values held as Python numbers stay Python
    floats.
    """
    by_device: dict[torch.device, tuple[list, list]] = {}
    for group, cell in zip(groups, cells):
        for key, value in (("lr", cell[0]), ("weight_decay", cell[1])):
            current = group.get(key)
            if isinstance(current, torch.Tensor):
                targets, values = by_device.setdefault(current.device, ([], []))
                targets.append(current)
                values.append(value)
            else:
                group[key] = value
    for device, (targets, values) in by_device.items():
        sources = torch.tensor(values, dtype=torch.float64, device=device).unbind(0)
        torch._foreach_copy_(targets, list(sources))
