"""Writing ``lr`` and ``weight_decay`` into parameter groups, fast and all-or-nothing.

Groups that hold the same overrides get the same values, so the values are
computed once per *class* of groups (distinct overrides), not once per group.
Megatron-Core re-reads every group's overrides at every step (users and its own
checkpoint code change them, and ``torch.optim.Optimizer.load_state_dict``
replaces the group dicts), and so does paramsched: `GroupWriter.write_step`
reads the five override keys of each group and compares them, as one tuple,
with what that position held at the last step, in the same dict. While they
match (the common case) a group costs those reads, one tuple comparison and two
stores. Any difference (a changed override, a replaced group dict, a group that
is not a dict) falls back to planning every group afresh, which validates before
it writes and restores the groups already written if it refuses. Groups that
hold ``lr`` or ``weight_decay`` in tensors are checked first and written after,
in place, by `paramsched.torch.TensorWriter`.

The plan is a cache of what the groups held, derived from them; it is not part
of the scheduler's state and is never saved.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from .errors import ScheduleError, ScheduleTypeError, check_rate
from .overrides import OVERRIDE_KEYS
from .schedule import Schedule


@dataclass(slots=True)
class Plan:
    """Which class each group belongs to, and each class's values at one step.

    All groups of a class share one ``[lr, weight_decay]`` list (``cells`` holds it
    by position), so updating a class's values updates every group's cell at once.
    """

    schedule: Schedule
    num_steps: int | float  # the step the values are for
    groups: list  # the group dicts planned for, by position
    tensors: Any  # a paramsched.torch.TensorWriter if some group holds a tensor, else None
    keys: list[tuple]  # each group's overrides, in OVERRIDE_KEYS order, by position
    cells: list[list[float]]  # each group's class's [lr, weight_decay], by position
    effective: list[tuple]  # each class's (max_lr, min_lr, start_wd, end_wd, wd_mult)
    values: list[list[float]]  # each class's [lr, weight_decay]

    def advance(self, num_steps) -> None:
        """Recomputes every class's values for `num_steps`.

        The only place a class's ``(lr, weight_decay)`` is computed: the learning rate
        for its ``max_lr``/``min_lr``, the weight decay for its ``start_wd``/``end_wd``
        times its ``wd_mult`` (as Megatron-Core multiplies). The overrides are floats,
        so both are floats.
        """
        lr_at, wd_at = self.schedule.lr_at, self.schedule.wd_at
        for cell, (max_lr, min_lr, start_wd, end_wd, wd_mult) in zip(self.values,
                                                                      self.effective):
            cell[0] = lr_at(num_steps, max_lr, min_lr)
            cell[1] = wd_at(num_steps, start_wd, end_wd) * wd_mult
        self.num_steps = num_steps


def param_groups(optimizer) -> list:
    """``optimizer.param_groups``, checked to be a list of dicts."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, (list, tuple)):
        raise ScheduleTypeError(
            f"optimizer={optimizer!r} has no param_groups list; expected an optimizer "
            "such as torch.optim.AdamW, or any object whose param_groups is a list of dicts"
        )
    for index, group in enumerate(groups):
        if not isinstance(group, MutableMapping):
            raise ScheduleTypeError(
                f"optimizer.param_groups[{index}] is of type {type(group).__name__}; "
                "expected a dict"
            )
    return groups


def override_key(group) -> tuple:
    """The group's overrides in `OVERRIDE_KEYS` order, None where it has none."""
    return tuple(group.get(key) for key in OVERRIDE_KEYS)


def effective(schedule: Schedule, key: tuple, where: str = "param_group") -> tuple:
    """A group's ``(max_lr, min_lr, start_wd, end_wd, wd_mult)``, its overrides checked."""
    defaults = (schedule.max_lr, schedule.min_lr, schedule.start_wd, schedule.end_wd, 1.0)
    max_lr, min_lr, start_wd, end_wd, wd_mult = (
        default if value is None else check_rate(f"{where}[{name!r}]", value)
        for name, value, default in zip(OVERRIDE_KEYS, key, defaults)
    )
    if min_lr > max_lr:
        raise ScheduleError(
            f"{where} has min_lr={min_lr!r} above max_lr={max_lr!r}; expected min_lr <= max_lr"
        )
    if end_wd < start_wd:
        raise ScheduleError(
            f"{where} has end_wd={end_wd!r} below start_wd={start_wd!r}; "
            "expected start_wd <= end_wd"
        )
    if schedule.wd_incr_style == "constant" and start_wd != end_wd:
        raise ScheduleError(
            f"{where} has start_wd={start_wd!r} and end_wd={end_wd!r} with "
            "wd_incr_style='constant'; expected equal values"
        )
    return max_lr, min_lr, start_wd, end_wd, wd_mult


def plan(schedule: Schedule, num_steps, groups) -> Plan:
    """Classes and values for every group; checks every override, writes nothing."""
    index: dict[tuple, int] = {}
    keys, classes, overrides = [], [], []
    for position, group in enumerate(groups):
        key = override_key(group)
        cls = index.get(key)
        if cls is None:
            cls = index[key] = len(overrides)
            overrides.append(effective(schedule, key, f"optimizer.param_groups[{position}]"))
        keys.append(key)
        classes.append(cls)
    values = [[0.0, 0.0] for _ in overrides]
    cells = [values[c] for c in classes]
    tensors = None
    if any(_is_tensor(g.get("lr")) or _is_tensor(g.get("weight_decay")) for g in groups):
        _check_shared_tensors(groups, classes, overrides)
        from .torch import TensorWriter  # only reached when torch tensors are in use

        tensors = TensorWriter(groups, cells)
    planned = Plan(schedule, num_steps, list(groups), tensors, keys, cells, overrides, values)
    planned.advance(num_steps)
    return planned


def _check_shared_tensors(groups, classes, overrides) -> None:
    """Refuses one tensor shared by groups that need different values.

    ``torch.optim`` gives every group the same ``lr`` tensor when the default
    ``lr`` is a tensor; groups with different overrides cannot share it.
    """
    for key, relevant in (("lr", slice(0, 2)), ("weight_decay", slice(2, 5))):
        first: dict[int, int] = {}
        for position, group in enumerate(groups):
            value = group.get(key)
            if not _is_tensor(value):
                continue
            other = first.setdefault(id(value), position)
            mine, theirs = overrides[classes[position]], overrides[classes[other]]
            if mine[relevant] != theirs[relevant]:
                raise ScheduleError(
                    f"optimizer.param_groups[{other}] and [{position}] share one {key} tensor "
                    f"but are scheduled differently ({theirs[relevant]} and {mine[relevant]}); "
                    f"expected a tensor of its own in each group, e.g. "
                    f"group['{key}'] = group['{key}'].clone()"
                )


def _is_tensor(value) -> bool:
    """Whether `value` is a tensor-like to update in place (duck-typed: no torch import)."""
    return hasattr(value, "copy_") and hasattr(value, "dim")


class GroupWriter:
    """Writes a schedule's values into an optimizer's groups, remembering the last plan."""

    def __init__(self) -> None:
        self.plan: Plan | None = None

    def write(self, groups, new_plan: Plan) -> None:
        """Writes a checked plan into `groups` and remembers it."""
        if new_plan.tensors is not None:
            new_plan.tensors()
        else:
            for group, (lr, weight_decay) in zip(groups, new_plan.cells):
                group["lr"] = lr
                group["weight_decay"] = weight_decay
        self.plan = new_plan

    def write_step(self, optimizer, schedule: Schedule, num_steps) -> None:
        """Writes every group's values at `num_steps`, or raises having changed nothing."""
        last = self.plan
        groups = getattr(optimizer, "param_groups", None)
        if (last is not None and last.schedule is schedule and type(groups) is list
                and len(groups) == len(last.keys)):
            previous_steps = last.num_steps
            last.advance(num_steps)
            try:
                if last.tensors is not None:
                    for group, planned, key in zip(groups, last.groups, last.keys):
                        if group is not planned or (
                                group.get("max_lr"), group.get("min_lr"), group.get("start_wd"),
                                group.get("end_wd"), group.get("wd_mult")) != key:
                            break
                    else:
                        last.tensors()
                        return
                else:
                    # The keys are read in OVERRIDE_KEYS order, spelled out for speed.
                    for group, planned, key, cell in zip(groups, last.groups, last.keys,
                                                         last.cells):
                        if group is not planned or (
                                group.get("max_lr"), group.get("min_lr"), group.get("start_wd"),
                                group.get("end_wd"), group.get("wd_mult")) != key:
                            break
                        group["lr"] = cell[0]
                        group["weight_decay"] = cell[1]
                    else:
                        return
            except (AttributeError, TypeError):
                pass  # not a dict: planning afresh says so
            last.advance(previous_steps)
        try:
            new_plan = plan(schedule, num_steps, param_groups(optimizer))
        except ScheduleError:
            self._restore(groups)
            raise
        self.write(groups, new_plan)

    def _restore(self, groups) -> None:
        """Puts back the last step's values into the groups the fast path may have written."""
        last = self.plan
        if last is None or not isinstance(groups, (list, tuple)):
            return
        if last.tensors is not None:
            return  # tensor plans write nothing before every group is checked
        for group, planned, key, (lr, weight_decay) in zip(groups, last.groups, last.keys,
                                                           last.cells):
            if group is planned and override_key(group) == key:
                group["lr"] = lr
                group["weight_decay"] = weight_decay
