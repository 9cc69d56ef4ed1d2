"""Tensor learning rates and weight decays, updated in place (imports torch when used).

The writer reaches this module only when a parameter group holds its ``lr`` or
``weight_decay`` in a tensor (``fused=True``, ``capturable=True``, a compiled
optimizer step); the core of paramsched never imports torch otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ScheduleTypeError


def is_tensor(value) -> bool:
    """Whether `value` is a tensor-like to update in place (duck-typed: no torch import).

    Examples:
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
        # Each group's (lr, weight_decay) as written: the tensor, or float; None: not written.
        self.held: list[tuple] = []
        by_device: dict = {}
        for position, (group, cell) in enumerate(zip(groups, cells)):
            held = [None, None]
            for index, key in enumerate(keys):
                current = group.get(key)
                held[index] = current if isinstance(current, torch.Tensor) else float
                if isinstance(current, torch.Tensor):
                    _check_writable(current, f"optimizer.param_groups[{position}][{key!r}]")
                    targets, slots = by_device.setdefault(current.device, ([], []))
                    targets.append(current)
                    slots.append((cell, index))
                else:
                    self.floats.append((group, key, cell, index))
            self.held.append(tuple(held))
        self.devices = [(device, targets, slots) for device, (targets, slots) in by_device.items()]

    def __call__(self) -> None:
        for group, key, cell, index in self.floats:
            group[key] = cell[index]
        for device, targets, slots in self.devices:
            values = self.torch.tensor(
                [cell[index] for cell, index in slots], dtype=self.torch.float64, device=device
            )
            self.torch._foreach_copy_(targets, list(values.unbind(0)))


def held(value: float, holder) -> float:
    """`value` as the tensor `holder` holds it once written (rounded to its dtype, as
    the in-place copy rounds it), or `value` itself for a float holder (`float`).

    Examples:
        >>> import torch
        >>> held(0.1, torch.tensor(0.0)) == float(torch.tensor(0.1, dtype=torch.float32))
        True
    """
    if holder is float or holder.dtype.itemsize == 8:
        return value
    import torch

    return torch.tensor(value, dtype=holder.dtype).item()


def _check_writable(tensor, where: str) -> None:
    """Refuses a tensor a schedule's value cannot be copied into as it is: one of an
    integer, bool or complex dtype (the copy would truncate the value, silently), or
    one that requires grad (an in-place copy into it is an autograd error)."""
    if not tensor.dtype.is_floating_point:
        raise ScheduleTypeError(
            f"{where} is a tensor of dtype {tensor.dtype}; expected a floating-point tensor "
            "(a learning rate or weight decay copied into it would be truncated), or a float"
        )
    if tensor.requires_grad:
        raise ScheduleTypeError(
            f"{where} is a tensor that requires grad; expected one that does not (the "
            "scheduler updates it in place), e.g. group[key] = group[key].detach()"
        )


def snapshot(value):
    """`value` as it is now: a copy of a tensor (``detach().clone()``: one device op, no
    read back to the host, so later in-place writes do not change it), else `value`."""
    return value.detach().clone() if is_tensor(value) else value


def held_lrs(groups) -> list[tuple]:
    """Each group's ``lr`` as it is now, to put back with `put_back_lrs`."""
    return [(group, group.get("lr"), snapshot(group.get("lr"))) for group in groups]


def put_back_lrs(held: list[tuple]) -> None:
    """Gives each group the ``lr`` `held_lrs` found in it: the same tensor, holding the
    same value again, or the same number."""
    for group, lr, value in held:
        if lr is None:
            continue
        if is_tensor(lr):
            lr.copy_(value)
        group["lr"] = lr


def read_groups(groups, keys: tuple) -> list[list]:
    """Each group's values under `keys` as they are now, a list per group (None where a
    group has no such key, or is no dict): tensors, in tuples too, copied with one
    ``_foreach_clone`` (copies on their devices, nothing read back to the host), so that
    in-place writes after this do not change them."""
    rows = [
        [group.get(key) for key in keys] if isinstance(group, Mapping) else [None] * len(keys)
        for group in groups
    ]
    found = []  # (the list holding a tensor, where)
    for row in rows:
        for column, value in enumerate(row):
            if type(value) in (tuple, list):
                row[column] = value = list(value)
                found += [(value, i) for i, component in enumerate(value) if is_tensor(component)]
            elif is_tensor(value):
                found.append((row, column))
    if found:
        import torch

        with torch.no_grad():
            copies = torch._foreach_clone([holder[where] for holder, where in found])
        for (holder, where), copy in zip(found, copies):
            holder[where] = copy
    return rows


def as_float(value) -> float | None:
    """A value a group held, as the float the optimizer read (a tensor's value, rounded
    to its dtype), or None for one that is not a single number."""
    if value is None or isinstance(value, (bool, str, bytes, tuple, list)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def outside_compiled(hook):
    """`hook`, run as plain Python when a compiled function (``torch.compile``) calls it:
    the compiled graphs neither hold its work nor recompile for what it reads."""
    try:
        import torch
    except ImportError:  # an optimizer with torch's hooks but no torch: nothing compiles
        return hook
    return torch.compiler.disable(hook)
