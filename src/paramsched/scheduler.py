"""`OptimizerParamScheduler`: Megatron-Core's scheduler, float for float, minus its sharp edges.

The scheduler holds a `Schedule`, the optimizer and the step count. On every
`step` it writes ``lr`` and ``weight_decay`` into every parameter group, empty
ones included, honouring each group's overrides (``max_lr``, ``min_lr``,
``start_wd``, ``end_wd``, ``wd_mult``), which it re-reads at every step.

Checkpoints (`state_dict`) are a flat dict of Python builtins with Megatron-Core's
keys, plus ``init_lr``, ``wsd_decay_steps``, ``lr_wsd_decay_style`` and a format
version. Loading is exact and all-or-nothing: the whole checkpoint is checked
before anything changes, the step count is set (never added to), and the groups
are written once, with every restored value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ._writer import GroupWriter, effective, override_key, param_groups, plan
from .errors import ScheduleError, ScheduleTypeError, check_non_negative
from .phases import PhaseSchedule
from .schedule import SCHEDULE_FIELDS, Schedule, check_field

logger = logging.getLogger(__name__)

#: Checkpoint formats: 1, Megatron's flat keys and paramsched's additions; 2, a
#: PhaseSchedule's data under ``schedule``. `STATE_FORMAT` is the newest one read.
MEGATRON_FORMAT = 1
PHASES_FORMAT = 2
STATE_FORMAT = 2
FORMAT_KEY = "paramsched_format"

#: Keys older Megatron checkpoints use, and the key each stands for today.
LEGACY_KEYS = {
    "start_lr": "max_lr",
    "warmup_iter": "lr_warmup_steps",
    "warmup_steps": "lr_warmup_steps",
    "end_iter": "lr_decay_steps",
    "decay_steps": "lr_decay_steps",
    "decay_style": "lr_decay_style",
    "num_iters": "num_steps",
}

_REQUIRED_KEYS = ("max_lr", "min_lr", "lr_warmup_steps", "lr_decay_steps", "lr_decay_style",
                  "num_steps")
# Megatron-Core checkpoints carry the weight-decay fields together or not at all.
_WD_KEYS = ("start_wd", "end_wd", "wd_incr_steps", "wd_incr_style")


class _ScheduleField:
    """An attribute of the scheduler that reads and replaces a field of its `Schedule`.

    Assigning validates the new value with the rest of the schedule, as
    constructing would, and leaves everything unchanged if it is refused.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, scheduler, owner=None):
        if scheduler is None:
            return self
        try:
            return getattr(scheduler.schedule, self.name)
        except AttributeError:
            raise AttributeError(
                f"{self.name} is a field of Megatron-style schedules; this scheduler runs a "
                f"{type(scheduler.schedule).__name__} (see scheduler.schedule)"
            ) from None

    def __set__(self, scheduler, value) -> None:
        if not isinstance(scheduler.schedule, Schedule):
            raise ScheduleTypeError(
                f"{self.name} cannot be set on a {type(scheduler.schedule).__name__}; expected "
                "a new schedule assigned to scheduler.schedule"
            )
        scheduler.schedule = scheduler.schedule.replace(**{self.name: value})


class OptimizerParamScheduler:
    """Anneals the learning rate and weight decay of every parameter group.

    The constructor takes Megatron-Core's arguments, with its names and defaults;
    see `Schedule` for what each means. Everything is validated before anything
    is written into the optimizer; then every group gets its values for step 0.

    Args:
        optimizer: Anything with a ``param_groups`` list of dicts.
        use_checkpoint_opt_param_scheduler: On load, take the checkpoint's values.
        override_opt_param_scheduler: On load, keep this scheduler's values. With
            neither policy, the checkpoint must match; at most one may be set.

    Example:
        >>> class Opt:
        ...     param_groups = [{"params": []}, {"params": [], "wd_mult": 0.0}]
        >>> sched = OptimizerParamScheduler(
        ...     Opt(), init_lr=0.0, max_lr=1.0, min_lr=0.1, lr_warmup_steps=10,
        ...     lr_decay_steps=110, lr_decay_style="linear", start_wd=0.1, end_wd=0.1,
        ...     wd_incr_steps=110, wd_incr_style="constant")
        >>> sched.step(5)
        >>> [(g["lr"], g["weight_decay"]) for g in Opt.param_groups]
        [(0.5, 0.1), (0.5, 0.0)]
    """

    init_lr = _ScheduleField()
    max_lr = _ScheduleField()
    min_lr = _ScheduleField()
    lr_warmup_steps = _ScheduleField()
    lr_decay_steps = _ScheduleField()
    lr_decay_style = _ScheduleField()
    wsd_decay_steps = _ScheduleField()
    lr_wsd_decay_style = _ScheduleField()
    start_wd = _ScheduleField()
    end_wd = _ScheduleField()
    wd_incr_steps = _ScheduleField()
    wd_incr_style = _ScheduleField()

    def __init__(
        self,
        optimizer,
        init_lr: float,
        max_lr: float,
        min_lr: float,
        lr_warmup_steps: int,
        lr_decay_steps: int,
        lr_decay_style: str,
        start_wd: float,
        end_wd: float,
        wd_incr_steps: int,
        wd_incr_style: str,
        use_checkpoint_opt_param_scheduler: bool | None = True,
        override_opt_param_scheduler: bool | None = False,
        wsd_decay_steps: int | None = None,
        lr_wsd_decay_style: str | None = None,
    ) -> None:
        schedule = Schedule(
            init_lr=init_lr,
            max_lr=max_lr,
            min_lr=min_lr,
            lr_warmup_steps=lr_warmup_steps,
            lr_decay_steps=lr_decay_steps,
            lr_decay_style=lr_decay_style,
            start_wd=start_wd,
            end_wd=end_wd,
            wd_incr_steps=wd_incr_steps,
            wd_incr_style=wd_incr_style,
            wsd_decay_steps=wsd_decay_steps,
            lr_wsd_decay_style=lr_wsd_decay_style,
        )
        self._start(optimizer, schedule, use_checkpoint_opt_param_scheduler,
                    override_opt_param_scheduler)

    @classmethod
    def from_schedule(
        cls,
        optimizer,
        schedule: Schedule,
        use_checkpoint_opt_param_scheduler: bool | None = True,
        override_opt_param_scheduler: bool | None = False,
    ) -> "OptimizerParamScheduler":
        """A scheduler driving `optimizer` with an existing `Schedule`."""
        scheduler = cls.__new__(cls)
        scheduler._start(optimizer, schedule, use_checkpoint_opt_param_scheduler,
                         override_opt_param_scheduler)
        return scheduler

    def _start(self, optimizer, schedule, use_checkpoint, override) -> None:
        _check_schedule(schedule)
        use_checkpoint = _check_policy("use_checkpoint_opt_param_scheduler", use_checkpoint)
        override = _check_policy("override_opt_param_scheduler", override)
        if use_checkpoint and override:
            raise ScheduleError(
                "override_opt_param_scheduler=True and use_checkpoint_opt_param_scheduler=True;"
                " expected at most one of the two checkpoint policies"
            )
        groups = param_groups(optimizer)
        first = plan(schedule, 0, groups)
        self.optimizer = optimizer
        self._schedule = schedule
        self._num_steps = 0
        self.use_checkpoint_opt_param_scheduler = use_checkpoint
        self.override_opt_param_scheduler = override
        self._writer = GroupWriter()
        self._writer.write(groups, first)
        logger.debug("scheduler started with %r", schedule)

    # ------------------------------------------------------------------ state

    @property
    def schedule(self) -> Schedule:
        """The schedule in force; assigning a new one takes effect at the next `step`."""
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: Schedule | PhaseSchedule) -> None:
        self._schedule = _check_schedule(schedule)

    @property
    def num_steps(self) -> int | float:
        """Steps taken so far (Megatron counts samples); assigning does not write the groups."""
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value) -> None:
        self._num_steps = check_non_negative("num_steps", value)

    # ------------------------------------------------------------- scheduling

    def get_lr(self, param_group: dict) -> float:
        """The learning rate for `param_group` at the current step, with its overrides."""
        max_lr, min_lr, _, _, _ = effective(self._schedule, override_key(param_group))
        return float(self._schedule.lr_at(self._num_steps, max_lr, min_lr))

    def get_wd(self, param_group: dict | None = None) -> float:
        """The weight decay at the current step, with the group's ``start_wd``/``end_wd``.

        As in Megatron-Core, ``wd_mult`` is not applied here but in `step`.
        """
        key = override_key(param_group) if param_group is not None else (None,) * 5
        _, _, start_wd, end_wd, _ = effective(self._schedule, key)
        return float(self._schedule.wd_at(self._num_steps, start_wd, end_wd))

    def last_values(self) -> list[tuple[float, float]]:
        """Each group's ``(lr, weight_decay)`` as last written, as Python floats.

        For groups that hold tensors this does not read them back to the host.
        """
        return [(lr, weight_decay) for lr, weight_decay in self._writer.plan.cells]

    def step(self, increment: int = 1) -> None:
        """Advances by `increment` steps and writes every group's lr and weight decay.

        Raises:
            ScheduleError: `increment` is negative or not finite, or a group holds an
                invalid override; nothing is changed then.
        """
        if type(increment) is not int or increment < 0:
            increment = check_non_negative("increment", increment)
        num_steps = self._num_steps + increment
        self._writer.write_step(self.optimizer, self._schedule, num_steps)
        self._num_steps = num_steps

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """The scheduler's state as a flat dict of Python builtins.

        For a Megatron-style `Schedule` it has Megatron-Core's keys, so
        Megatron-Core's own `load_state_dict` reads it, and also ``init_lr``,
        ``wsd_decay_steps``, ``lr_wsd_decay_style`` and ``paramsched_format``. For a
        `PhaseSchedule` it holds the whole schedule's data under ``schedule``, the
        step count and ``paramsched_format`` 2.
        """
        if isinstance(self._schedule, PhaseSchedule):
            return {"schedule": self._schedule.to_dict(), "num_steps": self._num_steps,
                    FORMAT_KEY: PHASES_FORMAT}
        state = {name: getattr(self._schedule, name) for name in SCHEDULE_FIELDS}
        state["num_steps"] = self._num_steps
        state[FORMAT_KEY] = MEGATRON_FORMAT
        return state

    def _check_and_set(self, cls_value, sd_value, name: str):
        """The value a checkpoint policy keeps for one field: the scheduler's or the checkpoint's.

        Raises:
            ScheduleError: neither policy is set and the two values differ.
        """
        value, differs = self._policy_value(cls_value, sd_value)
        if differs:
            raise ScheduleError(_mismatch_message([(name, cls_value, sd_value)]))
        return value

    def _policy_value(self, cls_value, sd_value):
        """``(value to keep, whether the values differ under the strict policy)``."""
        if self.override_opt_param_scheduler:
            return cls_value, False
        if not self.use_checkpoint_opt_param_scheduler:
            return cls_value, cls_value != sd_value
        return sd_value, False

    def _restored_schedule(self, state: dict):
        """The schedule the checkpoint policies keep, given a checked checkpoint."""
        if self.override_opt_param_scheduler:
            return self._schedule
        mine = self._schedule
        if "schedule" in state:  # a PhaseSchedule's checkpoint
            theirs = state["schedule"]
            if not self.use_checkpoint_opt_param_scheduler and theirs != mine:
                raise ScheduleError(_mismatch_message(_differences(
                    _describe(mine), theirs.to_dict(), "schedule")))
            return theirs if self.use_checkpoint_opt_param_scheduler else mine
        fields = {name: state[name] for name in SCHEDULE_FIELDS if name in state}
        if not isinstance(mine, Schedule):
            if not self.use_checkpoint_opt_param_scheduler:
                raise ScheduleError(_mismatch_message([(
                    "schedule", f"phases ({len(mine.lr_curve.phases)} for lr)",
                    f"Megatron's {fields['lr_decay_style']}")]))
            current = {}
        else:
            current = mine.to_dict()
        chosen, mismatches = {}, []
        for name, value in fields.items():
            chosen[name], differs = self._policy_value(current.get(name, value), value)
            if differs:
                mismatches.append((name, current[name], value))
        if mismatches:
            raise ScheduleError(_mismatch_message(mismatches))
        try:
            if isinstance(mine, Schedule):
                return mine.replace(**chosen)
            return Schedule(**chosen)
        except ScheduleError as error:
            raise type(error)(f"checkpoint rejected: {error}") from None

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restores a checkpoint written by paramsched or by Megatron-Core, legacy keys included.

        The step count is set to the checkpoint's. The other fields follow the
        checkpoint policies; fields the checkpoint lacks (``init_lr`` and the WSD
        fields in Megatron-Core's checkpoints) keep this scheduler's values.
        Then every group is written once, with every restored value.

        Raises:
            ScheduleError: a key is missing or malformed, the restored schedule is
                invalid, or (with neither policy) fields differ, all listed. The
                scheduler and the groups are then exactly as they were.
        """
        state = _read_state(state_dict)
        schedule = self._restored_schedule(state)
        num_steps = state["num_steps"]
        groups = param_groups(self.optimizer)
        restored = plan(schedule, num_steps, groups)
        self._schedule = schedule
        self._num_steps = num_steps
        self._writer.write(groups, restored)
        policy = (
            "scheduler's values kept" if self.override_opt_param_scheduler
            else "checkpoint's values used" if self.use_checkpoint_opt_param_scheduler
            else "checkpoint matches the scheduler"
        )
        logger.info("loaded scheduler state at num_steps=%s (%s)", num_steps, policy)


# -------------------------------------------------------------------- helpers


def _check_policy(name: str, value) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ScheduleTypeError(f"{name}={value!r} is of type {type(value).__name__}; expected a bool")


def _read_state(state_dict) -> dict:
    """Checks a checkpoint on its own and returns its fields, checked, by today's names."""
    if not isinstance(state_dict, Mapping):
        raise ScheduleTypeError(
            f"state_dict is of type {type(state_dict).__name__}; expected a dict"
        )
    version = state_dict.get(FORMAT_KEY, 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ScheduleError(f"state_dict[{FORMAT_KEY!r}]={version!r}; expected an int >= 0")
    if version > STATE_FORMAT:
        raise ScheduleError(
            f"state_dict[{FORMAT_KEY!r}]={version!r} was written by a newer paramsched; "
            f"this one reads formats up to {STATE_FORMAT}"
        )
    if "schedule" in state_dict:
        return _read_phase_state(state_dict)
    state, labels = {}, {}
    for key, value in state_dict.items():
        name = LEGACY_KEYS.get(key, key)
        if name not in SCHEDULE_FIELDS and name != "num_steps":
            continue
        if name in state and state[name] != value:
            raise ScheduleError(
                f"state_dict[{labels[name]!r}]={state[name]!r} and state_dict[{key!r}]={value!r} "
                f"both give {name}; expected one value"
            )
        state[name], labels[name] = value, key
    missing = [name for name in _REQUIRED_KEYS if name not in state]
    if "start_wd" in state or any(name in state for name in _WD_KEYS):
        missing += [name for name in _WD_KEYS if name not in state]
    if missing:
        raise ScheduleError(
            "state_dict is missing " + ", ".join(repr(name) for name in missing)
            + "; expected a checkpoint written by OptimizerParamScheduler.state_dict()"
        )
    for name, value in state.items():
        label = f"state_dict[{labels[name]!r}]"
        if name == "num_steps":
            state[name] = check_non_negative(label, value)
        else:
            state[name] = check_field(name, value, label)
    return state


def _read_phase_state(state_dict) -> dict:
    missing = [key for key in ("schedule", "num_steps") if key not in state_dict]
    if missing:
        raise ScheduleError("state_dict is missing " + ", ".join(repr(k) for k in missing)
                            + "; expected a checkpoint written by OptimizerParamScheduler")
    try:
        schedule = PhaseSchedule.from_dict(state_dict["schedule"])
    except ScheduleError as error:
        raise type(error)(f"state_dict['schedule']: {error}") from None
    return {"schedule": schedule,
            "num_steps": check_non_negative("state_dict['num_steps']", state_dict["num_steps"])}


def _check_schedule(schedule):
    if not isinstance(schedule, (Schedule, PhaseSchedule)):
        raise ScheduleTypeError(
            f"schedule={schedule!r} is of type {type(schedule).__name__}; "
            "expected a paramsched.Schedule or PhaseSchedule"
        )
    return schedule


def _describe(schedule):
    """A schedule's data for comparing phase schedules; a Megatron one is named."""
    if isinstance(schedule, PhaseSchedule):
        return schedule.to_dict()
    return f"Megatron's {schedule.lr_decay_style}"


def _differences(mine, theirs, path: str) -> list[tuple]:
    """Every ``(path, mine, theirs)`` where two schedules' data differ."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found = []
        for key in list(mine) + [k for k in theirs if k not in mine]:
            found += _differences(mine.get(key), theirs.get(key), f"{path}.{key}")
        return found
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        found = []
        for index, (a, b) in enumerate(zip(mine, theirs)):
            found += _differences(a, b, f"{path}[{index}]")
        return found
    return [] if mine == theirs else [(path, mine, theirs)]


def _mismatch_message(mismatches) -> str:
    listed = "; ".join(
        f"{name}: scheduler {mine!r}, checkpoint {theirs!r}" for name, mine, theirs in mismatches
    )
    return (
        f"checkpoint does not match the scheduler ({listed}); with "
        "use_checkpoint_opt_param_scheduler=False and override_opt_param_scheduler=False they "
        "must agree: set use_checkpoint_opt_param_scheduler=True to take the checkpoint's "
        "values, or override_opt_param_scheduler=True to keep the scheduler's"
    )
