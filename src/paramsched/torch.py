"""PyTorch integration: tensor learning rates updated in place.

This module imports torch; the core of paramsched never does. It is imported
lazily, the first time a parameter group is found to hold its ``lr`` or
``weight_decay`` in a tensor (as for ``fused=True``, ``capturable=True`` or a
``torch.compile``d optimizer step).
"""

from __future__ import annotations

import torch


class TensorWriter:
    """Writes each group's ``[lr, weight_decay]`` cell, updating tensors in place.

    Built once per plan of the groups: it remembers which values live in tensors
    (by device) and which are Python floats. Each call then copies the cells'
    current values into the tensors with one ``torch._foreach_copy_`` per device,
    from one new tensor per device: the number of torch operations does not grow
    with the number of groups, no tensor is replaced, and nothing is read back to
    the host. Values held as Python numbers are written as Python floats.
    """

    def __init__(self, groups, cells) -> None:
        self.floats = []  # (group, key, cell, index) for values held as Python numbers
        by_device: dict = {}
        for group, cell in zip(groups, cells):
            for key, index in (("lr", 0), ("weight_decay", 1)):
                current = group.get(key)
                if isinstance(current, torch.Tensor):
                    targets, slots = by_device.setdefault(current.device, ([], []))
                    targets.append(current)
                    slots.append((cell, index))
                else:
                    self.floats.append((group, key, cell, index))
        self.devices = [(device, targets, slots)
                        for device, (targets, slots) in by_device.items()]

    def __call__(self) -> None:
        for group, key, cell, index in self.floats:
            group[key] = cell[index]
        for device, targets, slots in self.devices:
            values = torch.tensor([cell[index] for cell, index in slots], dtype=torch.float64,
                                  device=device)
            torch._foreach_copy_(targets, list(values.unbind(0)))
