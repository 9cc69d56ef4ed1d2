"""PyTorch integration: an ``LRScheduler``, and tensor learning rates updated in place.

This module imports torch; the core of paramsched never does. The core imports
it lazily, the first time a parameter group is found to hold its ``lr`` or
``weight_decay`` in a tensor (as for ``fused=True``, ``capturable=True`` or a
``torch.compile``d optimizer step).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch.optim.lr_scheduler import LRScheduler

from .errors import ScheduleError, ScheduleTypeError, check_number
from .scheduler import FORMAT_KEY, OptimizerParamScheduler

logger = logging.getLogger(__name__)


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


class ParamScheduler(LRScheduler):
    """paramsched as a ``torch.optim.lr_scheduler.LRScheduler``.

    Each `step()` (one optimizer step) advances the schedule by `samples_per_step`
    and writes every group's ``lr`` and ``weight_decay``: the same floats
    `paramsched.OptimizerParamScheduler` writes (it does the work), tensors updated
    in place. Lightning accepts it as it is (no ``lr_scheduler_step`` override), and
    so does the Hugging Face ``Trainer``; its `state_dict` is plain Python data,
    which ``torch.load(..., weights_only=True)`` reads, and it is a
    ``torch.distributed.checkpoint`` stateful object.

    Args:
        optimizer: A ``torch.optim.Optimizer``.
        schedule: A `paramsched.Schedule` (Megatron's arguments) or `PhaseSchedule`.
        samples_per_step: How far one step advances the schedule's clock: 1 when the
            schedule counts steps, the global batch size when it counts samples.

    Example:
        >>> import torch, paramsched
        >>> model = torch.nn.Linear(2, 2)
        >>> optimizer = torch.optim.AdamW(model.parameters())
        >>> schedule = paramsched.Schedule(max_lr=1e-3, lr_warmup_steps=10, lr_decay_steps=100,
        ...                                lr_decay_style="cosine")
        >>> scheduler = ParamScheduler(optimizer, schedule)
        >>> optimizer.step(); scheduler.step()
        >>> scheduler.get_last_lr()
        [0.0001]
    """

    def __init__(self, optimizer, schedule, samples_per_step=1) -> None:
        self.samples_per_step = _check_samples_per_step(samples_per_step)
        self.core = OptimizerParamScheduler.from_schedule(optimizer, schedule)
        super().__init__(optimizer)

    @property
    def schedule(self):
        """The schedule in force."""
        return self.core.schedule

    @property
    def num_steps(self):
        """The schedule's clock: `samples_per_step` times the steps taken."""
        return self.core.num_steps

    def step(self, epoch=None) -> None:
        """Advances by `samples_per_step` (the first call, from the constructor, by 0)."""
        if epoch is not None:
            raise ScheduleTypeError(
                f"epoch={epoch!r}; expected step() without an argument: ParamScheduler "
                "advances by samples_per_step per call"
            )
        initial = getattr(self, "_is_initial", False) or self._step_count == 0
        self.core.step(0 if initial else self.samples_per_step)
        self._step_count += 1
        self.last_epoch += 1
        self._last_lr = self.get_lr()

    def get_lr(self) -> list[float]:
        """Each group's learning rate, as Python floats (tensors are not read back)."""
        return [lr for lr, _ in self.core.last_values()]

    def state_dict(self) -> dict:
        """Plain data: the scheduler's state, ``samples_per_step`` and torch's counters."""
        return {
            "paramsched": self.core.state_dict(),
            "samples_per_step": self.samples_per_step,
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            FORMAT_KEY: TORCH_FORMAT,
        }

    def load_state_dict(self, state_dict) -> None:
        """Restores a `state_dict`: checked whole first, the step set (never added to).

        A checkpoint whose schedule differs from this scheduler's is taken, as
        Megatron's default checkpoint policy does, and logged at INFO.
        """
        if not isinstance(state_dict, Mapping):
            raise ScheduleTypeError(
                f"state_dict is of type {type(state_dict).__name__}; expected a dict")
        missing = [k for k in ("paramsched", "samples_per_step", "last_epoch", "_step_count")
                   if k not in state_dict]
        if missing:
            raise ScheduleError("state_dict is missing " + ", ".join(map(repr, missing))
                                + "; expected a checkpoint of ParamScheduler.state_dict()")
        version = state_dict.get(FORMAT_KEY, TORCH_FORMAT)
        if version != TORCH_FORMAT:
            raise ScheduleError(f"state_dict[{FORMAT_KEY!r}]={version!r}; expected "
                                f"{TORCH_FORMAT}")
        samples_per_step = _check_samples_per_step(state_dict["samples_per_step"],
                                                   "state_dict['samples_per_step']")
        counters = {key: check_number(f"state_dict[{key!r}]", state_dict[key])
                    for key in ("last_epoch", "_step_count")}
        before = self.core.schedule
        self.core.load_state_dict(state_dict["paramsched"])
        if self.core.schedule != before:
            logger.info("ParamScheduler: the checkpoint's schedule replaces the one given")
        self.samples_per_step = samples_per_step
        self.last_epoch = counters["last_epoch"]
        self._step_count = counters["_step_count"]
        self._last_lr = self.get_lr()


TORCH_FORMAT = 1


def _check_samples_per_step(value, label: str = "samples_per_step"):
    value = check_number(label, value)
    if value <= 0:
        raise ScheduleError(f"{label}={value!r}; expected a number > 0")
    return value
