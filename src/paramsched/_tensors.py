"""Tensor learning rates and weight decays, updated in place (imports torch when used).

The writer reaches this module only when a parameter group holds its ``lr`` or
``weight_decay`` in a tensor (``fused=True``, ``capturable=True``, a compiled
optimizer step); the core of paramsched never imports torch otherwise.
"""

from __future__ import annotations


def is_tensor(value) -> bool:
    """Whether `value` is a tensor-like to update in place (duck-typed: no torch import).

    Example:
        >>> import torch
        >>> is_tensor(torch.tensor(1e-3)), is_tensor(1e-3)
        (True, False)
    """
    return hasattr(value, "copy_") and hasattr(value, "dim")


class TensorWriter:
    """Writes each group's ``[lr, weight_decay]`` cell, updating tensors in place.

    Built once per plan of the groups: it remembers which values live in tensors
    (by device) and which are Python floats. Each call then copies the cells'
    current values into the tensors with one ``torch._foreach_copy_`` per device,
    from one new tensor per device: the number of torch operations does not grow
    with the number of groups, no tensor is replaced, and nothing is read back to
    the host. Values held as Python numbers are written as Python floats.

    Args:
        groups: The parameter groups.
        cells: Each group's ``[lr, weight_decay]`` list, by position.
        keys: The keys to write: ``("lr", "weight_decay")``, or ``("lr",)`` for a
            schedule without a weight-decay part.
    """

    def __init__(self, groups, cells, keys=("lr", "weight_decay")) -> None:
        import torch

        self.torch = torch
        self.floats = []  # (group, key, cell, index) for values held as Python numbers
        by_device: dict = {}
        for group, cell in zip(groups, cells):
            for index, key in enumerate(keys):
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
            values = self.torch.tensor([cell[index] for cell, index in slots],
                                       dtype=self.torch.float64, device=device)
            self.torch._foreach_copy_(targets, list(values.unbind(0)))
