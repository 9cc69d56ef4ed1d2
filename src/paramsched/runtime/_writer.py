"""Writing ``lr`` and ``weight_decay`` into parameter groups, fast and all-or-nothing.

Groups that hold the same overrides get the same values, so the values are
computed once per *class* of groups (distinct overrides), not once per group,
from the schedule's curves bound to the class's overrides (`CurveSchedule.bind`).
Megatron-Core re-reads every group's overrides at every step (users and its own
checkpoint code change them, and ``torch.optim.Optimizer.load_state_dict``
replaces the group dicts), and so does paramsched: `GroupWriter.write_step`
reads each group's five override keys and the type of what it holds in ``lr``
and ``weight_decay``, and compares them, as one tuple, with what that position
held at the last step, in the same dict. While they match (the common case) a
group costs those reads, one comparison and two stores. Any difference (a
changed override, a replaced group dict, a float replaced by a tensor, a group
that is not a dict) falls back to planning every group afresh, which validates
before it writes and restores the groups already written if it refuses. While a
plan holds, all of this is one function compiled for it (`paramsched._fastpath`,
`GroupWriter.fast_step`), which makes the same reads and comparison and gives the
same floats, and hands any difference to this general path.

Groups that hold ``lr`` or ``weight_decay`` in tensors are written in place by
`paramsched._tensors.TensorWriter`; a tensor replaced by another is noticed
(by identity) and the new one is updated from then on, a float replacing a
tensor gets floats, and a tensor replacing a float is kept and updated in
place. A schedule without a weight-decay part writes only ``lr``.

The plan is a cache of what the groups held, derived from them; it is not part
of the scheduler's state and is never saved. A pickled writer keeps only which
group dicts it last wrote and their overrides, which the override policy needs.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import numpy as np

from ..core._curve import VALUE_OVERRIDE
from ..core.overrides import OVERRIDE_KEYS
from ..errors import ScheduleError, ScheduleTypeError, briefly, check_rate, shown
from . import _fastpath
from ._bounds import check_bounds
from ._tensors import is_tensor

_WD_OVERRIDES = ("start_wd", "end_wd", "wd_mult")
logger = logging.getLogger("paramsched.scheduler")


class Plan:
    """Which class each group belongs to, and each class's values at one step.

    All groups of a class share one ``[lr, weight_decay]`` list (their cell), so
    updating a class's values updates every group's cell at once.
    """

    __slots__ = (
        "schedule",
        "num_steps",
        "rows",
        "tensors",
        "classes",
        "keys",
        "unusual",
        "values",
        "stray",
        "overrides",
    )

    def __init__(self, schedule, rows, tensors, classes, values, scheduled=None) -> None:
        self.schedule = schedule
        self.num_steps = None  # the step the values are for
        # (group, key, cell) by position; key = (overrides..., what lr and wd hold)
        self.rows: list[tuple] = rows
        self.tensors: Any = tensors  # a TensorWriter if some group holds a tensor
        # each class's ([lr, weight_decay], lr function, wd function or None, wd_mult)
        self.classes: list[tuple] = [(cell, *fns) for cell, fns in zip(values, classes)]
        self.keys = ("lr", "weight_decay") if schedule.has_wd else ("lr",)
        self.unusual: list[str] = []  # what is unusual about its groups (one WARNING)
        self.values: ValueWriter | None = scheduled  # the other group values, if scheduled
        self.stray: list[str] = []  # value overrides for values not scheduled (one WARNING)
        # Each class's effective (max_lr, min_lr, start_wd, end_wd, wd_mult), which the
        # plan's step functions are built from (`_fastpath`).
        self.overrides: list[tuple] = []

    def advance(self, num_steps) -> None:
        """Recomputes every class's values for `num_steps`: the only place they are computed.

        The weight decay is the curve's value times the class's ``wd_mult``, as
        Megatron-Core multiplies; without a weight-decay part it is not computed.
        """
        for cell, lr, wd, wd_mult in self.classes:
            cell[0] = lr(num_steps)
            if wd is not None:
                cell[1] = wd(num_steps) * wd_mult
        if self.values is not None:
            self.values.advance(num_steps)
        self.num_steps = num_steps

    def step(self, groups, num_steps) -> bool:
        """Writes the values at `num_steps` if every group is as planned; False at the
        first that is not (the groups before it are written, `restore` undoes them).

        Float plans write into the dicts the optimizer holds now: a dict replaced by
        one with the same overrides gets the same values. Tensor plans also need the
        same dicts, since they write into the tensors they planned for.
        """
        if type(groups) is not list or len(groups) != len(self.rows):
            return False
        values = self.values  # other group values: checked first, written last if all is well
        if values is not None and not values.unchanged(groups):
            return False
        previous = self.num_steps
        self.advance(num_steps)
        # The keys are read in OVERRIDE_KEYS order, spelled out for speed.
        try:
            if self.tensors is not None:
                # What each group holds in lr and weight_decay: the tensor planned for (the
                # same object), or a float (`float`); no weight decay: None, not checked.
                for group, (planned, key, _), (lr_held, wd_held) in zip(
                    groups, self.rows, self.tensors.held
                ):
                    lr, wd = group.get("lr"), group.get("weight_decay")
                    if (
                        group is not planned
                        or (
                            group.get("max_lr"),
                            group.get("min_lr"),
                            group.get("start_wd"),
                            group.get("end_wd"),
                            group.get("wd_mult"),
                        )
                        != key
                        or not (lr is lr_held or lr_held is float and lr.__class__ is float)
                        or not (
                            wd_held is None
                            or wd is wd_held
                            or wd_held is float
                            and wd.__class__ is float
                        )
                    ):
                        break
                else:
                    self.tensors()
                    if values is not None:
                        values.write()
                    return True
            elif len(self.keys) == 2:
                for group, (_, key, (lr, weight_decay)) in zip(groups, self.rows):
                    if (
                        group.get("max_lr"),
                        group.get("min_lr"),
                        group.get("start_wd"),
                        group.get("end_wd"),
                        group.get("wd_mult"),
                        group["lr"].__class__,
                        group["weight_decay"].__class__,
                    ) != key:
                        break
                    group["lr"] = lr
                    group["weight_decay"] = weight_decay
                else:
                    if values is not None:
                        values.write()
                    return True
            else:
                for group, (_, key, (lr, _)) in zip(groups, self.rows):
                    if (
                        group.get("max_lr"),
                        group.get("min_lr"),
                        group.get("start_wd"),
                        group.get("end_wd"),
                        group.get("wd_mult"),
                        group["lr"].__class__,
                    ) != key:
                        break
                    group["lr"] = lr
                else:
                    if values is not None:
                        values.write()
                    return True
        except (AttributeError, TypeError, KeyError):
            pass  # not a dict, or a key removed: planning afresh says so
        self.advance(previous)
        return False

    def restore(self, groups) -> None:
        """Puts back this plan's values into the groups `step` may have written."""
        if not isinstance(groups, (list, tuple)) or self.tensors is not None:
            return  # tensor plans write nothing before every group is checked
        for group, (_, key, (lr, weight_decay)) in zip(groups, self.rows):
            # Only a group still holding what was planned (its overrides, and the types
            # of its lr and weight_decay): a tensor or float put there since is the user's.
            if (
                isinstance(group, MutableMapping)
                and (*override_key(group), *(type(group.get(k)) for k in self.keys)) == key
            ):
                group["lr"] = lr
                if len(self.keys) == 2:
                    group["weight_decay"] = weight_decay


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
    """The group's overrides in `OVERRIDE_KEYS` order, None where it has none.

    Examples:
        >>> override_key({"params": [], "wd_mult": 0.0, "max_lr": 1e-3})
        (0.001, None, None, None, 0.0)
    """
    return tuple(group.get(key) for key in OVERRIDE_KEYS)


def effective(schedule, key: tuple, where: str = "param_group", unusual=None) -> tuple:
    """A group's ``(max_lr, min_lr, start_wd, end_wd, wd_mult)``, its overrides checked;
    what is unusual about them (`CurveSchedule.check_group`) is put in `unusual`."""
    if not schedule.has_wd:
        for name, value in zip(OVERRIDE_KEYS, key):
            if name in _WD_OVERRIDES and value is not None:
                raise ScheduleError(
                    f"{where} has {name}={value!r} but the schedule has no weight-decay part; "
                    "expected start_wd (and end_wd) in the schedule, or the group's own "
                    "weight_decay without weight-decay overrides"
                )
    defaults = (schedule.max_lr, schedule.min_lr, schedule.start_wd, schedule.end_wd, 1.0)
    values = tuple(
        default if value is None else _override(f"{where}[{name!r}]", value)
        for name, value, default in zip(OVERRIDE_KEYS, key, defaults)
    )
    found = schedule.check_group(*values[:4], where)
    if unusual is not None:
        unusual[:] = found
    return values


def _override(field: str, value):
    """An override, checked: a float, or a narrower NumPy float kept as it is, since
    Megatron-Core computes in NumPy's promoted type (a float32 ``max_lr`` gives float32
    rates), and so must the same floats."""
    checked = check_rate(field, value)
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return value
    return checked


def _as_floats(lr, wd, wd_mult) -> tuple:
    """A class's rate and weight decay as Python floats, its ``wd_mult`` applied (for a
    NumPy float32 class, whose values are written as the floats they are)."""

    def lr_float(n):
        return float(lr(n))

    def wd_float(n):
        return float(wd(n) * wd_mult)

    return lr_float, None if wd is None else wd_float, 1.0


def plan(schedule, num_steps, groups, optimizer=None) -> Plan:
    """Classes and values for every group; checks every override, writes nothing. With
    `optimizer`, also checks that every value stays within its bounds at every position
    (`paramsched._bounds.check_bounds`), for each class of groups."""
    index: dict[tuple, int] = {}
    keys, classes, overrides, unusual = [], [], [], []  # unusual: per class
    scheduled = [v for v in schedule.values if v.place == "group"]
    extra_keys = [k for v in scheduled for k in v.override_keys]
    extras, given = [], []  # each group's overrides of the other values; each class's, checked
    names, stray = {v.name for v in scheduled}, []
    for position, group in enumerate(groups):
        key = override_key(group)
        extra = tuple(group.get(k) for k in extra_keys)
        for name, value in (*zip(OVERRIDE_KEYS, key), *zip(extra_keys, extra)):
            if value is not None and getattr(value, "__hash__", None) is None:  # a list, an array
                raise ScheduleTypeError(
                    f"optimizer.param_groups[{position}][{name!r}]={value!r} is of type "
                    f"{type(value).__name__}; expected a number"
                )
        for name, reason in schedule.refused_group_keys.items():
            if name in group:
                raise ScheduleError(
                    f"optimizer.param_groups[{position}] has {name}={shown(group[name])}; {reason}"
                )
        if scheduled:
            _check_override_names(group, scheduled, f"optimizer.param_groups[{position}]")
        stray += [
            f"optimizer.param_groups[{position}][{key!r}]"
            for key in group
            if isinstance(key, str)
            and VALUE_OVERRIDE.fullmatch(key)
            and key.rsplit(".", 1)[0] not in names
        ]
        kinds = tuple(map(type, key))  # a float32 0.5 computes unlike a float 0.5
        cls = index.get((key, kinds, extra))
        if cls is None:
            cls = index[(key, kinds, extra)] = len(overrides)
            unusual.append([])
            where = f"optimizer.param_groups[{position}]"
            overrides.append(effective(schedule, key, where, unusual[-1]))
            given.append(_value_overrides(schedule, scheduled, extra, where))
        keys.append(key)
        extras.append(extra)
        classes.append(cls)
    if optimizer is not None:
        check_bounds(
            schedule,
            optimizer,
            [
                ([p for p, c in enumerate(classes) if c == cls], resolved, given[cls])
                for cls, resolved in enumerate(overrides)
            ],
        )
    values = [[0.0, 0.0] for _ in overrides]
    bound = []
    for resolved in overrides:
        lr, wd = schedule.bind(*resolved[:4])
        if any(isinstance(v, np.floating) for v in resolved):  # NumPy's arithmetic
            bound.append(_as_floats(lr, wd, resolved[4]))
        else:
            bound.append((lr, wd, resolved[4]))
    cells = [values[c] for c in classes]
    written = ("lr", "weight_decay") if schedule.has_wd else ("lr",)
    tensors = None
    if any(is_tensor(g.get(k)) for g in groups for k in written):
        _check_shared_tensors(groups, classes, overrides, written)
        from ._tensors import TensorWriter

        tensors = TensorWriter(groups, cells, written)
    # A float plan's key also holds the types of lr and weight_decay (a tensor put there
    # is noticed); a tensor plan checks them against TensorWriter.held.
    rows = [
        (group, key if tensors else (*key, *(type(group.get(k)) for k in written)), cell)
        for group, key, cell in zip(groups, keys, cells)
    ]
    values_writer = (
        ValueWriter(schedule, scheduled, groups, classes, extras, given) if scheduled else None
    )
    planned = Plan(schedule, rows, tensors, bound, values, values_writer)
    planned.stray = stray
    planned.overrides = overrides
    planned.unusual = [
        f"optimizer.param_groups[{', '.join(str(p) for p, c in enumerate(classes) if c == cls)}]"
        f" {'has' if classes.count(cls) == 1 else 'have'} {' and '.join(found)}, in the "
        "opposite order to the schedule's"
        for cls, found in enumerate(unusual)
        if found
    ]
    planned.advance(num_steps)
    return planned


def _value_overrides(schedule, scheduled, extra: tuple, where: str) -> list[tuple]:
    """A class's overrides of each scheduled group value, checked, by value."""
    given, start = [], 0
    for value in scheduled:
        count = len(value.named)
        given.append(schedule.value_overrides(value, extra[start : start + count], where))
        start += count
    return given


class ValueWriter:
    """Writes the scheduled group values besides ``lr`` and ``weight_decay``.

    Each value goes into every group under its key (``eps``), or into one component
    of a tuple (``betas[1]``: the tuple is rebuilt, its other components untouched);
    a tensor held there is updated in place (``fill_``, no new tensor). Every group
    must already hold the key, as a number or a floating-point tensor: a value the
    optimizer does not have (a misspelt key, Adam's ``momentum``) is refused, not
    added where nothing reads it.
    """

    def __init__(self, schedule, scheduled, groups, classes, extras, given) -> None:
        self.cells = [[0.0] * len(scheduled) for _ in given]
        self.functions = [
            [schedule.bind_value(v.name, g) for v, g in zip(scheduled, gs)] for gs in given
        ]
        self.scheduled = scheduled
        self.keys = [k for v in scheduled for k in v.override_keys]
        self.rows = []  # (group, its overrides of these values, what it holds, its cell)
        owners: dict[int, tuple] = {}  # tensor id -> (position, class, value)
        for position, (group, cls, extra) in enumerate(zip(groups, classes, extras)):
            held = []
            for number, value in enumerate(scheduled):
                held.append(_holder(group, value, f"optimizer.param_groups[{position}]"))
                tensor = held[-1][-1]
                if tensor is not float:
                    other = owners.setdefault(id(tensor), (position, cls, number))
                    if other[2] != number:
                        _one_tensor(other[0], scheduled[other[2]].name, position, value.name)
                    if given[other[1]][number] != given[cls][number]:
                        raise ScheduleError(
                            f"optimizer.param_groups[{other[0]}] and [{position}] share one "
                            f"tensor for {value.name!r} but are scheduled differently; expected "
                            f"a tensor of its own in each group"
                        )
            self.rows.append((group, extra, tuple(held), self.cells[cls]))
        _check_held_elsewhere(groups, scheduled, owners)

    def advance(self, num_steps) -> None:
        for cell, functions in zip(self.cells, self.functions):
            for number, value in enumerate(functions):
                cell[number] = value(num_steps)

    def unchanged(self, groups) -> bool:
        """Whether every group is the dict planned, with the same overrides of these
        values and the same kind of holders (else the groups are planned afresh)."""
        keys = self.keys
        try:
            for group, (planned, extra, held, _) in zip(groups, self.rows):
                if group is not planned or tuple(group.get(k) for k in keys) != extra:
                    return False
                for value, (container, size, holder) in zip(self.scheduled, held):
                    found = group[value.key]
                    if container is not None:
                        if found.__class__ is not container or len(found) != size:
                            return False
                        found = found[value.index]
                    if not (found is holder or holder is float and found.__class__ is float):
                        return False
        except (AttributeError, TypeError, KeyError, IndexError):
            return False
        return True

    def write(self) -> None:
        for group, _, held, cell in self.rows:
            for value, (container, _, holder), number in zip(self.scheduled, held, cell):
                if holder is not float:
                    holder.fill_(number)
                elif container is None:
                    group[value.key] = number
                else:
                    old, index = group[value.key], value.index
                    group[value.key] = container(
                        number if i == index else component for i, component in enumerate(old)
                    )


def _one_tensor(position, name, other_position, other_name) -> None:
    raise ScheduleError(
        f"optimizer.param_groups[{position}][{name!r}] and optimizer.param_groups"
        f"[{other_position}][{other_name!r}] are one tensor, which the schedule writes as "
        f"{name!r}; expected a tensor of its own for each, e.g. a .clone() of it"
    )


def _check_held_elsewhere(groups, scheduled, owners: dict) -> None:
    """Refuses a tensor the schedule writes as a value that a group also holds as
    something else (its ``lr``, ``weight_decay``, another component of the tuple): an
    in-place write of the value would change that too."""
    keys = {v.key for v in scheduled}
    for position, group in enumerate(groups):
        places = [("lr", group.get("lr")), ("weight_decay", group.get("weight_decay"))]
        for key in keys:
            found = group.get(key)
            places += (
                [(f"{key}[{i}]", c) for i, c in enumerate(found)]
                if isinstance(found, (tuple, list))
                else [(key, found)]
            )
        for place, held in places:
            owner = owners.get(id(held)) if is_tensor(held) else None
            if owner is not None and scheduled[owner[2]].name != place:
                _one_tensor(owner[0], scheduled[owner[2]].name, position, place)


def _check_override_names(group, scheduled, where: str) -> None:
    """Refuses a group key that overrides a named value a scheduled value does not have
    (``"betas[1].ned"``): it would be silently ignored."""
    for key in group:
        if not isinstance(key, str) or "." not in key:
            continue
        for value in scheduled:
            if key.startswith(f"{value.name}.") and key not in value.override_keys:
                raise ScheduleError(
                    f"{where} has {key!r}, which names no value of [group.{value.name}]; "
                    "expected one of " + ", ".join(repr(k) for k in value.override_keys)
                )


def _holder(group, value, where: str) -> tuple:
    """What a group holds where `value` goes: ``(tuple or list type or None, its length,
    float or the tensor)``; refused if it holds nothing a value can go into."""
    if value.key not in group:
        raise ScheduleError(
            f"{where} has no {value.key!r}, which the schedule's [group.{value.name}] sets; "
            "expected an optimizer whose parameter groups have it (a value written where the "
            "optimizer does not read it would be silently ignored)"
        )
    found, container, size = group[value.key], None, 0
    if value.index is not None:
        if type(found) not in (tuple, list) or len(found) <= value.index:
            raise ScheduleError(  # a subclass (a namedtuple) could not be rebuilt alike
                f"{where}[{value.key!r}]={found!r}; expected a tuple (or list) with a "
                f"component {value.index} for [group.{value.name}]"
            )
        container, size, found = type(found), len(found), found[value.index]
    if is_tensor(found):
        from ._tensors import _check_writable

        _check_writable(found, f"{where}[{value.name!r}]")
        return container, size, found
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        raise ScheduleTypeError(
            f"{where}[{value.name!r}]={found!r} is of type {type(found).__name__}; expected a "
            "number or a floating-point tensor for the schedule to write"
        )
    return container, size, float


def _check_shared_tensors(groups, classes, overrides, written) -> None:
    """Refuses one tensor shared by groups that need different values, or held as one
    group's ``lr`` and a group's ``weight_decay`` (it can hold only one of the two).

    ``torch.optim`` gives every group the same ``lr`` tensor when the default
    ``lr`` is a tensor; groups with different overrides cannot share it.
    """
    if len(written) == 2:
        lrs = {id(g.get("lr")): p for p, g in enumerate(groups) if is_tensor(g.get("lr"))}
        for position, group in enumerate(groups):
            other = lrs.get(id(group.get("weight_decay")))
            if other is not None and is_tensor(group.get("weight_decay")):
                raise ScheduleError(
                    f"optimizer.param_groups[{other}]['lr'] and optimizer.param_groups"
                    f"[{position}]['weight_decay'] are one tensor; expected a tensor of its own "
                    "for each, e.g. group['weight_decay'] = group['weight_decay'].clone()"
                )
    for key, relevant in (("lr", slice(0, 2)), ("weight_decay", slice(2, 5)))[: len(written)]:
        first: dict[int, int] = {}
        for position, group in enumerate(groups):
            value = group.get(key)
            if not is_tensor(value):
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


def _general(optimizer, schedule, num_steps) -> None:
    """`GroupWriter.fast_step` while there is no step function: the general path."""
    return None


class GroupWriter:
    """Writes a schedule's values into an optimizer's groups, remembering the last plan.

    `fast_step` is the plan's step function (`paramsched._fastpath`) once the plan
    has held for a few steps: ``fast_step(optimizer, schedule, num_steps)`` writes
    every group and returns ``(plan, the position written before)``, its ``held``
    being ``(keys, what each group held under them before the write)``; or it returns
    None having written nothing.
    The writer keeps the plan's step functions by segment (`compiled`); the plan
    does not hold them (each holds its plan), so a plan is freed with its writer
    without waiting for the garbage collector.
    """

    def __init__(self) -> None:
        self.fast_step, self.compiled = _general, {}
        self.plan: Plan | None = None
        # Without a plan (an unpickled writer): each group dict of the last plan and the
        # overrides it ran with, so that the override policy still knows this run's.
        self.remembered: list[tuple] | None = None

    def __getstate__(self) -> dict:
        # The plan is a cache, planned afresh; the groups it ran with and their overrides
        # are kept (pickled with the optimizer, they stay the optimizer's own dicts).
        return {"plan": None, "remembered": self.last_overrides()}

    def __setstate__(self, state: dict) -> None:
        self.plan, self.remembered = state.get("plan"), state.get("remembered")
        self.fast_step, self.compiled = _general, {}

    def last_overrides(self) -> list[tuple] | None:
        """``(group dict, overrides, ((value override key, value), ...))`` of the last
        plan, by position; None before any."""
        plan = self.plan
        if plan is None:
            return self.remembered
        keys = (
            ()
            if plan.values is None
            else [k for v in plan.values.scheduled for k in v.override_keys]
        )
        extras = (
            [()] * len(plan.rows)
            if plan.values is None
            else [tuple(zip(keys, extra)) for _, extra, _, _ in plan.values.rows]
        )
        return [
            (group, key[: len(OVERRIDE_KEYS)], extra)
            for (group, key, _), extra in zip(plan.rows, extras)
        ]

    def write(self, new_plan: Plan) -> None:
        """Writes a checked plan into its groups and remembers it; warns once about
        unusual groups (again only when what is unusual changes)."""
        if new_plan.stray and (self.plan is None or self.plan.stray != new_plan.stray):
            logger.warning(
                "%s: overrides of values not scheduled do nothing; expected "
                "its [group] values (%s)",
                briefly(new_plan.stray, 90),
                briefly([repr(v.name) for v in new_plan.schedule.values if v.place == "group"], 25)
                or "it schedules none",
            )
        if new_plan.unusual and (self.plan is None or self.plan.unusual != new_plan.unusual):
            logger.warning(
                "%s; run as Megatron-Core runs them (the rate moves the other way)",
                briefly(new_plan.unusual, 110),
            )
            logger.debug("groups in the opposite order: %s", "; ".join(new_plan.unusual))
        if new_plan.tensors is not None:
            new_plan.tensors()
        elif len(new_plan.keys) == 2:
            for group, _, (lr, weight_decay) in new_plan.rows:
                group["lr"] = lr
                group["weight_decay"] = weight_decay
        else:
            for group, _, cell in new_plan.rows:
                group["lr"] = cell[0]
        if new_plan.values is not None:
            new_plan.values.write()
        self.plan, self.remembered = new_plan, None
        self.fast_step, self.compiled = _general, {}

    def write_step(self, optimizer, schedule, num_steps, keep_overrides: bool = False) -> None:
        """Writes every group's values at `num_steps`, or raises having changed nothing.

        With `keep_overrides`, group dicts replaced since the last plan get back the
        overrides that plan ran with (`put_back_overrides`) before they are planned.
        """
        last = self.plan
        groups = getattr(optimizer, "param_groups", None)
        if last is not None and last.schedule is schedule and last.step(groups, num_steps):
            self.fast_step = _fastpath.step_function(last, num_steps, self.compiled) or _general
            return
        self.plan_and_write(optimizer, schedule, num_steps, keep_overrides)

    def plan_groups(self, optimizer, schedule, num_steps, keep_overrides: bool) -> Plan:
        """Plans every group afresh, writing nothing; with `keep_overrides`, group dicts
        replaced since the last plan first get this run's overrides back
        (`put_back_overrides`), which is undone if the plan is refused."""
        put_back = (
            self.put_back_overrides(getattr(optimizer, "param_groups", None))
            if keep_overrides
            else []
        )
        try:
            new_plan = plan(schedule, num_steps, param_groups(optimizer), optimizer)
        except ScheduleError:
            _undo_put_back(put_back)
            raise
        _report_put_back(put_back)
        return new_plan

    def plan_and_write(self, optimizer, schedule, num_steps, keep_overrides: bool) -> Plan:
        """Plans every group afresh and writes it, or raises having changed nothing."""
        last = self.plan
        try:
            new_plan = self.plan_groups(optimizer, schedule, num_steps, keep_overrides)
        except ScheduleError:
            if last is not None:
                last.restore(getattr(optimizer, "param_groups", None))
            raise
        self.write(new_plan)
        return new_plan

    def put_back_overrides(self, groups) -> list[tuple]:
        """Puts back, into each group dict replaced since the last plan (as an optimizer's
        ``load_state_dict`` replaces them), the overrides that plan ran with; returns
        ``(group, key, put back, found)`` for each. A dict changed in place is the
        user's change and is left alone."""
        last = self.last_overrides()
        if last is None or not isinstance(groups, list):
            return []
        if len(groups) != len(last):
            if any(g is not entry[0] for g, entry in zip(groups, last)):
                logger.warning(
                    "the optimizer has %d parameter groups where this scheduler last wrote %d, "
                    "so the override policy cannot tell which of this run's per-group "
                    "overrides each should get; the groups' own are used",
                    len(groups),
                    len(last),
                )
            return []
        changes = []
        for group, (planned, key, *extra) in zip(groups, last):  # no extra: an older pickle
            if group is planned or not isinstance(group, MutableMapping):
                continue
            for name, mine in (*zip(OVERRIDE_KEYS, key), *(extra[0] if extra else ())):
                theirs = group.get(name)
                if theirs is not mine and not _equal(theirs, mine):
                    changes.append((group, name, mine, theirs))
        for group, name, mine, _ in changes:
            _set_override(group, name, mine)
        return changes


def _equal(found, mine) -> bool:
    """Whether an override found in a group is the one planned (an array is not)."""
    try:
        return bool(found == mine)
    except (TypeError, ValueError):
        return False


def _undo_put_back(put_back: list[tuple]) -> None:
    """Gives the groups back what `GroupWriter.put_back_overrides` found in them."""
    for group, name, _, found in put_back:
        _set_override(group, name, found)


def _report_put_back(put_back: list[tuple]) -> None:
    """One WARNING listing the overrides `GroupWriter.put_back_overrides` put back."""
    if put_back:
        listed = [f"{name}={mine!r} (not {found!r})" for _, name, mine, found in put_back]
        logger.warning(
            "the override policy keeps this run's per-group overrides: %s replaced "
            "what the optimizer's checkpoint put back",
            briefly(listed, 90),
        )
        logger.debug("overrides put back: %s", ", ".join(listed))


def _set_override(group, name: str, value) -> None:
    if value is None:
        group.pop(name, None)
    else:
        group[name] = value
