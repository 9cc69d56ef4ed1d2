"""Checkpoints: what a scheduler's state holds, how it is read back, and the policies.

Formats (``paramsched_format``):

- 0 or absent: Megatron-Core's own flat keys, legacy names included.
- 1: the same flat keys plus ``init_lr``, ``wsd_decay_steps``, ``lr_wsd_decay_style``
  (what a Megatron `Schedule` writes; megatron-core reads it).
- 2: a phase schedule's file data as a nested dict under ``schedule`` (read only:
  ``torch.distributed.checkpoint`` flattens nested dicts, and loads into the
  structure of the *current* state, so a nested schedule could load half of one
  schedule and half of another).
- 3: the schedule as one JSON text under ``schedule``, with its ``kind``: one
  leaf, loaded whole or not at all, whatever the current schedule looks like.

Every format holds ``num_steps``. Everything is read and checked before a
scheduler changes anything. The policy for a checkpoint whose schedule differs
from the scheduler's is one `Policy` value: Megatron's two booleans map onto it.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
from collections.abc import Mapping

from ..core._curve import KINDS as CURVE_KINDS
from ..core.phases import KIND as PHASES_KIND
from ..core.phases import PhaseSchedule
from ..core.schedule import SCHEDULE_FIELDS, Schedule, check_field
from ..core.units import positions_as_written, positions_of
from ..errors import ScheduleError, ScheduleTypeError, check_choice, check_non_negative

logger = logging.getLogger("paramsched.scheduler")

FORMAT_KEY = "paramsched_format"
MEGATRON_FORMAT = 1
PHASES_FORMAT = 2
JSON_FORMAT = 3
STATE_FORMAT = 3  # the newest format this version reads

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
_REQUIRED_KEYS = (
    "max_lr",
    "min_lr",
    "lr_warmup_steps",
    "lr_decay_steps",
    "lr_decay_style",
    "num_steps",
)
# Megatron-Core checkpoints carry the weight-decay fields together or not at all.
_WD_KEYS = ("start_wd", "end_wd", "wd_incr_steps", "wd_incr_style")
#: How each kind of JSON schedule is read back.
KINDS = {PHASES_KIND: PhaseSchedule.from_dict}


class Policy(enum.Enum):
    """What loading does with a checkpoint whose schedule differs from the scheduler's.

    ``checkpoint`` takes the checkpoint's (Megatron's default,
    ``use_checkpoint_opt_param_scheduler=True``) and says so at WARNING;
    ``override`` keeps the scheduler's (``override_opt_param_scheduler=True``);
    ``strict`` refuses, listing every difference (both flags False).
    """

    CHECKPOINT = "checkpoint"
    OVERRIDE = "override"
    STRICT = "strict"

    @classmethod
    def parse(cls, value, field: str = "checkpoint_policy") -> "Policy":
        if isinstance(value, Policy):
            return value
        return cls(check_choice(field, value, [p.value for p in cls]))

    @classmethod
    def from_flags(cls, use_checkpoint, override) -> "Policy":
        """Megatron's ``use_checkpoint_opt_param_scheduler`` and ``override_opt_param_scheduler``.

        Examples:
            >>> Policy.from_flags(True, False), Policy.from_flags(False, False)
            (<Policy.CHECKPOINT: 'checkpoint'>, <Policy.STRICT: 'strict'>)
        """
        use_checkpoint = check_flag("use_checkpoint_opt_param_scheduler", use_checkpoint)
        override = check_flag("override_opt_param_scheduler", override)
        if use_checkpoint and override:
            raise ScheduleError(
                "override_opt_param_scheduler=True and use_checkpoint_opt_param_scheduler=True;"
                " expected at most one of the two checkpoint policies"
            )
        return cls.OVERRIDE if override else cls.CHECKPOINT if use_checkpoint else cls.STRICT


def check_flag(name: str, value) -> bool:
    """A policy flag: a bool, or None for False."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ScheduleTypeError(f"{name}={value!r} is of type {type(value).__name__}; expected a bool")


def write(schedule, num_steps) -> dict:
    """A scheduler's state: the schedule's entries, the step count and the format."""
    entries = schedule.to_state()
    version = JSON_FORMAT if "schedule" in entries else MEGATRON_FORMAT
    return {**entries, "num_steps": num_steps, FORMAT_KEY: version}


def read(state_dict, current) -> tuple:
    """``(schedule, num_steps)`` of a checkpoint, checked whole; changes nothing.

    Fields a Megatron-Core checkpoint lacks (``init_lr``, the WSD fields) are taken
    from `current`; a Megatron schedule read back keeps `current`'s run (its clock).
    """
    if not isinstance(state_dict, Mapping):
        raise ScheduleTypeError(
            f"state_dict is of type {type(state_dict).__name__}; expected a dict"
        )
    version = state_dict.get(FORMAT_KEY, 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ScheduleError(f"state_dict[{FORMAT_KEY!r}]={version!r}; expected an int >= 0")
    if version > STATE_FORMAT:
        raise ScheduleError(
            f"state_dict[{FORMAT_KEY!r}]={version!r} was written by a newer "
            f"paramsched; this one reads formats up to {STATE_FORMAT}"
        )
    if "schedule" in state_dict:
        return _read_schedule(state_dict)
    return _read_megatron(state_dict, current)


def _read_schedule(state_dict) -> tuple:
    missing = [key for key in ("schedule", "num_steps") if key not in state_dict]
    if missing:
        raise ScheduleError(
            "state_dict is missing "
            + ", ".join(repr(k) for k in missing)
            + "; expected a checkpoint written by a paramsched scheduler"
        )
    data = state_dict["schedule"]
    try:
        with positions_as_written():  # a meaning: its positions are where they were
            return _schedule_of(data), check_non_negative(
                "state_dict['num_steps']", state_dict["num_steps"]
            )
    except ScheduleError as error:
        raise type(error)(f"state_dict['schedule']: {error}") from None


def _schedule_of(data):
    if isinstance(data, str):
        data = _json(data)
        readers = {**{k: functools.partial(read, run=None) for k, read in CURVE_KINDS.items()}}
        readers.update(KINDS)  # other stacks' kinds are read from their meaning
        kind = check_choice("kind", data.pop("kind", None), readers)
        return readers[kind](data)
    if isinstance(data, Mapping):  # format 2
        return PhaseSchedule.from_dict(dict(data))
    raise ScheduleTypeError(f"is of type {type(data).__name__}; expected a JSON text")


def _json(text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ScheduleError(f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ScheduleTypeError(f"holds a {type(data).__name__}; expected a JSON object")
    return data


def _read_megatron(state_dict, current) -> tuple:
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
    if any(name in state for name in _WD_KEYS):
        missing += [name for name in _WD_KEYS if name not in state]
    if missing:
        raise ScheduleError(
            "state_dict is missing "
            + ", ".join(repr(n) for n in missing)
            + "; expected a checkpoint written by OptimizerParamScheduler."
            "state_dict()"
        )
    for name, value in state.items():
        label = f"state_dict[{labels[name]!r}]"
        state[name] = (
            check_non_negative(label, value)
            if name == "num_steps"
            else check_field(name, value, label)
        )
    num_steps = state.pop("num_steps")
    source = current  # a branch takes what Megatron-Core leaves out from the Megatron
    while not isinstance(source, Schedule) and source.parent is not None:  # schedule it
        source = source.parent  # branches from
    mine = source.fields()
    fields = {**{k: mine[k] for k in SCHEDULE_FIELDS if k in mine}, **state}
    try:
        return Schedule(**fields, run=current.run), num_steps
    except ScheduleError as error:
        raise type(error)(f"checkpoint rejected: {error}") from None


def differences(mine, theirs) -> list[tuple]:
    """Every ``(field, mine, theirs)`` where two schedules differ, or one row naming
    both when they are of different kinds."""
    a, b = mine.fields(), theirs.fields()
    if not set(a) & set(b):
        return [("schedule", mine.describe(), theirs.describe())]
    missing = "<absent>"
    return [
        (key, a.get(key, missing), b.get(key, missing))
        for key in [*a, *(k for k in b if k not in a)]
        if a.get(key, missing) != b.get(key, missing)
    ]


def choose(mine, theirs, policy: Policy, num_steps=None):
    """The schedule `policy` keeps when a checkpoint holds `theirs` at `num_steps`.

    A checkpoint of a schedule `mine` branches from, written at or before the branch
    point, agrees with `mine` (their histories are one): every policy continues on
    `mine`, and says so.

    Raises:
        ScheduleError: the strict policy and the schedules differ, all listed.
    """
    if theirs == mine:
        return mine
    if num_steps is not None and mine.agrees_with(theirs, num_steps):
        logger.info(
            "the checkpoint (at %r) was written by the schedule this one branches "
            "from, before the branch point; continuing on the branch",
            num_steps,
        )
        return mine
    point = mine.departs_from(theirs)
    if point is not None and policy is not Policy.OVERRIDE:
        # The checkpoint's history is the parent's past the branch point: continuing on
        # the parent would silently drop the branch, and the branch cannot have it.
        raise ScheduleError(past_the_branch_point(mine, num_steps, point))
    rows = differences(mine, theirs)
    if policy is Policy.OVERRIDE:
        logger.info(
            "checkpoint's schedule differs; the scheduler's is kept (%s)",
            _listed(rows, "scheduler"),
        )
        return mine
    if policy is Policy.STRICT:
        raise ScheduleError(mismatch_message(rows))
    logger.warning(
        "the checkpoint's schedule replaces the scheduler's (%s); "
        "checkpoint_policy='override' keeps this one",
        _fields_named(rows),
    )
    logger.debug(
        "the checkpoint's schedule differs from the scheduler's: %s", _listed(rows, "scheduler")
    )
    return theirs


def _fields_named(rows, width: int = 100) -> str:
    """The differences for a one-line WARNING: all of them where they fit in `width`
    characters, else how many fields differ and the first ones' names (the whole list
    goes to DEBUG)."""
    listed = _listed(rows, "scheduler")
    if len(listed) <= width:
        return listed
    names, shown = [str(name) for name, _, _ in rows], []
    for name in names:
        if len(", ".join([*shown, name])) > width - 30:
            break
        shown.append(name)
    more = len(names) - len(shown)
    return f"{len(names)} fields differ: {', '.join(shown) or names[0][: width - 30]}" + (
        f" and {more} more" if more and shown else ""
    )


def past_the_branch_point(mine, num_steps, point) -> str:
    """Why a checkpoint of a parent's history past the branch point cannot continue on
    the branch: both positions (with their steps where the run has whole steps) and what
    to do."""
    run, unit = mine.run, positions_of(mine).unit
    if run is not None and run.has_steps and isinstance(num_steps, int):
        step, at_step = run.step_at_samples(num_steps), run.step_at_samples(point)
        return (
            f"the checkpoint is at step {step:,} ({num_steps:,} {unit}), past this "
            f"branch's point at step {at_step:,} ({point:,} {unit}): its history is the "
            f"parent's there; expected a branch at '{step} steps' or later, a checkpoint "
            f"from step {at_step:,} or before, or checkpoint_policy='override' to continue "
            "on this branch from here"
        )
    return (
        f"the checkpoint is at {num_steps!r} {unit}, past this branch's point at "
        f"{point!r} {unit}: its history is the parent's there; expected a branch at "
        f"{num_steps!r} {unit} or later, a checkpoint from {point!r} {unit} or before, or "
        "checkpoint_policy='override' to continue on this branch from here"
    )


def _listed(rows, mine_name: str) -> str:
    return "; ".join(f"{name}: {mine_name} {a!r}, checkpoint {b!r}" for name, a, b in rows)


def mismatch_message(rows) -> str:
    return (
        f"checkpoint does not match the scheduler ({_listed(rows, 'scheduler')}); with "
        "use_checkpoint_opt_param_scheduler=False and override_opt_param_scheduler=False they "
        "must agree: set use_checkpoint_opt_param_scheduler=True to take the checkpoint's "
        "values, or override_opt_param_scheduler=True to keep the scheduler's"
    )
