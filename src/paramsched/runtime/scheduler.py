"""`OptimizerParamScheduler`: Megatron-Core's scheduler, float for float, minus its sharp edges.

The scheduler holds a schedule, the optimizer, the step count and its checkpoint
policy. On every `step` it writes ``lr`` and ``weight_decay`` into every
parameter group, empty ones included, honouring each group's overrides
(``max_lr``, ``min_lr``, ``start_wd``, ``end_wd``, ``wd_mult``), which it re-reads
at every step, and the schedule's other group values (``betas[1]``, ``eps``...)
with their ``"KEY.name"`` overrides. The loop reads the rest from it: `value`
(``grad_clip``), `batch_size`, and `metrics` (what the step just taken used). On a
token clock each step says how many tokens it consumed (``step(tokens=n)``). It
asks the schedule (`paramsched._curve.CurveSchedule`) for everything, whatever
kind of schedule it is.

Checkpoints (`state_dict`, see `paramsched._checkpoint`) are plain data: for a
Megatron `Schedule`, a flat dict with Megatron-Core's keys plus ``init_lr``,
``wsd_decay_steps``, ``lr_wsd_decay_style`` and a format version; for any other
schedule, the schedule as one JSON text. Loading is exact and all-or-nothing:
the whole checkpoint is checked before anything changes, the step count is set
(never added to), and the groups are written once, with every restored value.
"""

from __future__ import annotations

import logging
import numbers
import operator
import weakref
from collections.abc import Mapping

from ..core._curve import CurveSchedule
from ..core.schedule import Schedule
from ..core.units import TOKEN_CLOCK_STEP, check_tokens
from ..errors import LIMIT, ScheduleError, ScheduleTypeError, check_non_negative
from . import _checkpoint
from ._checkpoint import (  # noqa: F401  (public constants of the checkpoint format)
    FORMAT_KEY,
    LEGACY_KEYS,
    MEGATRON_FORMAT,
    PHASES_FORMAT,
    STATE_FORMAT,
    Policy,
)
from ._tensors import as_float, held, held_lrs, outside_compiled, put_back_lrs, read_groups
from ._writer import (
    GroupWriter,
    effective,
    override_key,
    param_groups,
    plan,
)

logger = logging.getLogger(__name__)


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
        replace = getattr(scheduler.schedule, "replace", None)
        if replace is None:
            raise ScheduleTypeError(
                f"{self.name} cannot be set on a {type(scheduler.schedule).__name__}; expected "
                "a new schedule assigned to scheduler.schedule"
            )
        scheduler.schedule = replace(**{self.name: value})


class _Required:
    """Marks Megatron's required arguments (see `OptimizerParamScheduler.__init__`)."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


class OptimizerParamScheduler:
    """Anneals the learning rate and weight decay of every parameter group.

    The constructor takes Megatron-Core's arguments, with its names and defaults;
    see `Schedule` for what each means. Everything is validated before anything
    is written into the optimizer; then every group gets its values for step 0.

    A schedule that already exists goes through `from_schedule`; given in place of
    Megatron's arguments (``OptimizerParamScheduler(optimizer, schedule)``), it is
    refused with a `ScheduleTypeError` that says so, and so is a call that leaves
    out some of the ten, naming them.

    Args:
        optimizer: Anything with a ``param_groups`` list of dicts.
        use_checkpoint_opt_param_scheduler: On load, take the checkpoint's values.
        override_opt_param_scheduler: On load, keep this scheduler's values. With
            neither policy, the checkpoint must match; at most one may be set.

    Examples:
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

    # Defaults for schedulers pickled before these existed (no step taken, a sample clock).
    _taken = None
    _counts_tokens = False
    # What the groups held for the step taken (`metrics`): ``(keys, each group's values)``;
    # what a torch optimizer's last step used, recorded by its step pre-hook (None: it has
    # not stepped since the scheduler's last step); whether the optimizer has that hook.
    _used = None
    _stepped = None
    _sees_steps = False
    _reader = None  # (plan, keys, a reader of the groups' values) for the plan in force
    _warned_not_stepped = False
    #: Whether writing every group afresh (on a checkpoint's load, or the optimizer's) keeps
    #: the learning rates the groups hold: `paramsched.torch.ParamScheduler` sets it while
    #: another scheduler drives them (a SequentialLR before this one's milestone).
    _keeps_lr = False

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
        init_lr: float = _REQUIRED,
        max_lr: float = _REQUIRED,
        min_lr: float = _REQUIRED,
        lr_warmup_steps: int = _REQUIRED,
        lr_decay_steps: int = _REQUIRED,
        lr_decay_style: str = _REQUIRED,
        start_wd: float = _REQUIRED,
        end_wd: float = _REQUIRED,
        wd_incr_steps: int = _REQUIRED,
        wd_incr_style: str = _REQUIRED,
        use_checkpoint_opt_param_scheduler: bool | None = True,
        override_opt_param_scheduler: bool | None = False,
        wsd_decay_steps: int | None = None,
        lr_wsd_decay_style: str | None = None,
    ) -> None:
        # Megatron's ten arguments are required; they default to a marker only so that
        # a mistaken call gets a message that says what to do, not a bare TypeError.
        _check_megatron_call(
            optimizer,
            dict(
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
            ),
        )
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
        self._start(
            optimizer, schedule, use_checkpoint_opt_param_scheduler, override_opt_param_scheduler
        )

    @classmethod
    def from_schedule(
        cls,
        optimizer,
        schedule: Schedule,
        use_checkpoint_opt_param_scheduler: bool | None = True,
        override_opt_param_scheduler: bool | None = False,
    ) -> "OptimizerParamScheduler":
        """A scheduler driving `optimizer` with an existing `Schedule` (or any schedule)."""
        if isinstance(optimizer, CurveSchedule):
            raise ScheduleTypeError(
                f"from_schedule was given the {type(optimizer).__name__} first; expected "
                f"{_FROM_SCHEDULE}, the optimizer first"
            )
        scheduler = cls.__new__(cls)
        scheduler._start(
            optimizer, schedule, use_checkpoint_opt_param_scheduler, override_opt_param_scheduler
        )
        return scheduler

    def _start(self, optimizer, schedule, use_checkpoint, override) -> None:
        _check_schedule(schedule)
        Policy.from_flags(use_checkpoint, override)  # refuses both, and non-bools
        first = plan(schedule, 0, param_groups(optimizer), optimizer)
        self.optimizer = optimizer
        self._use(schedule)
        self._num_steps = 0
        self._set_flags(use_checkpoint, override)
        self._writer = GroupWriter()
        self._writer.write(first)
        self._hook(optimizer)
        logger.debug("scheduler started with %r", schedule)

    def _hook(self, optimizer) -> None:
        """Leaves the scheduler's hooks on a torch optimizer: after its ``load_state_dict``
        (to rewrite the groups it replaced) and before each of its steps (to record the
        values the step uses, for `metrics`)."""
        register = getattr(optimizer, "register_load_state_dict_post_hook", None)
        if callable(register):
            register(_AfterOptimizerLoad(self))
        register = getattr(optimizer, "register_step_pre_hook", None)
        if callable(register):
            register(outside_compiled(_BeforeOptimizerStep(self)))
            self._sees_steps = True

    # ------------------------------------------------------------------ state

    @property
    def schedule(self) -> CurveSchedule:
        """The schedule in force; assigning a new one takes effect at the next `step`."""
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: CurveSchedule) -> None:
        _check_schedule(schedule)
        _check_same_clock(self._schedule, schedule, "the new schedule")
        # the groups can run it, within the optimizer's bounds
        plan(schedule, self._num_steps, param_groups(self.optimizer), self.optimizer)
        self._use(schedule)

    def _use(self, schedule) -> None:
        """Puts `schedule` in force, with what the step path asks of it (its clock)."""
        self._schedule = schedule
        self._counts_tokens = clock_unit(schedule) == "tokens"

    @property
    def num_steps(self) -> int | float:
        """Steps taken so far (Megatron counts samples); assigning does not write the groups."""
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value) -> None:
        if self._counts_tokens:
            value = check_tokens("num_steps", value)
        self._num_steps = check_non_negative("num_steps", value)

    @property
    def checkpoint_policy(self) -> Policy:
        """What `load_state_dict` does with a checkpoint of another schedule (a `Policy`).

        Megatron's two flags below are another view of it; setting either one sets
        the policy, the override winning as in Megatron.
        """
        return self._policy

    @checkpoint_policy.setter
    def checkpoint_policy(self, value) -> None:
        self._policy = Policy.parse(value)
        self._flags = (self._policy is Policy.CHECKPOINT, self._policy is Policy.OVERRIDE)

    @property
    def use_checkpoint_opt_param_scheduler(self) -> bool:
        return self._flags[0]

    @use_checkpoint_opt_param_scheduler.setter
    def use_checkpoint_opt_param_scheduler(self, value) -> None:
        self._set_flags(value, self._flags[1])

    @property
    def override_opt_param_scheduler(self) -> bool:
        return self._flags[1]

    @override_opt_param_scheduler.setter
    def override_opt_param_scheduler(self, value) -> None:
        self._set_flags(self._flags[0], value)

    def _set_flags(self, use_checkpoint, override) -> None:
        use_checkpoint = _checkpoint.check_flag(
            "use_checkpoint_opt_param_scheduler", use_checkpoint
        )
        override = _checkpoint.check_flag("override_opt_param_scheduler", override)
        self._policy = Policy.from_flags(use_checkpoint and not override, override)
        self._flags = (use_checkpoint, override)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for cached in ("_taken", "_used", "_reader"):  # of a plan of the groups (a cache):
            state.pop(cached, None)  # no step taken, once loaded
        # A writer of its own, without the plan (a cache of the groups, planned afresh) but
        # with the group dicts it last wrote and their overrides (the override policy's).
        state["_writer"] = writer = GroupWriter()
        writer.remembered = self._writer.last_overrides()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._hook(self.optimizer)  # the copied optimizer's hooks are inert: leave live ones

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
        if not self._schedule.has_wd:
            raise ScheduleError(
                "the schedule has no weight-decay part; the optimizer's own "
                "weight_decay is in force"
            )
        return float(self._schedule.wd_at(self._num_steps, start_wd, end_wd))

    def last_values(self) -> list[tuple[float, float | None]]:
        """Each group's ``(lr, weight_decay)`` as last written, as Python floats (the
        weight decay None for a schedule without one). Tensors are not read back."""
        if self._writer.plan is None:  # unpickled: plan the groups again
            self._writer.plan_and_write(
                self.optimizer, self._schedule, self._num_steps, self._policy is Policy.OVERRIDE
            )
        has_wd = self._writer.plan.schedule.has_wd  # what was written, not what will be
        return [
            (lr, weight_decay if has_wd else None)
            for _, _, (lr, weight_decay) in self._writer.plan.rows
        ]

    def step(self, increment: int = 1, *, tokens: int | None = None) -> None:
        """Advances by `increment` steps and writes every group's values.

        On a schedule whose run counts tokens (``clock = "tokens"``), each step
        advances by the tokens it really consumed: ``step(tokens=n)``, an int; a
        step without them, or with them on another clock, is refused.

        Raises:
            ScheduleError: `increment` (or `tokens`) is negative or not finite, the
                clock is not the one asked for, or a group holds an invalid
                override; nothing is changed then.
        """
        if tokens is not None or self._counts_tokens:
            increment = self._tokens(increment, tokens)
        elif type(increment) is not int or not 0 <= increment <= LIMIT:
            increment = check_non_negative("increment", increment)
        num_steps = self._num_steps + increment
        if num_steps > LIMIT:
            raise ScheduleError(
                f"increment={increment!r} takes num_steps to {num_steps!r}; "
                "expected a position of at most 1e18 (beyond any run)"
            )
        # `_move`, inline: nothing between step() and the plan's step function, which
        # also gives what the groups held before it wrote (what the optimizer used).
        fast = self._writer.fast_step
        taken = fast(self.optimizer, self._schedule, num_steps)
        if taken is None:
            used = None if self._sees_steps else self._held()
            taken = self._write_step(num_steps)
        else:
            used = fast.held
        if self._sees_steps:  # a torch optimizer's pre-hook recorded what it used
            used, self._stepped = self._stepped, None
        self._taken, self._used = taken, used
        self._num_steps = num_steps

    def _move(self, num_steps) -> None:
        """Writes every group's values at `num_steps` and goes there, remembering the
        values in force for the step taken (see `_write_step`).

        While the plan holds, its step function does it all (`GroupWriter.fast_step`,
        compiled for the plan: `paramsched._fastpath`); else the general path."""
        fast = self._writer.fast_step
        taken = fast(self.optimizer, self._schedule, num_steps)
        if taken is None:
            used = None if self._sees_steps else self._held()
            taken = self._write_step(num_steps)
        else:
            used = fast.held
        if self._sees_steps:  # a torch optimizer's pre-hook recorded what it used
            used, self._stepped = self._stepped, None
        self._taken, self._used = taken, used
        self._num_steps = num_steps

    def _write_step(self, num_steps) -> tuple:
        """The general path of `_move`: writes every group's values at `num_steps`
        (`GroupWriter.write_step`), or raises having changed nothing; returns the
        values in force for the step taken: the plan's, at the position it wrote them
        for (not num_steps, which may have been assigned since without writing the
        groups), read before the plan advances in place."""
        in_force = self._writer.plan or self._in_force()  # (a plan is never false)
        taken = (in_force, in_force and in_force.num_steps)
        self._writer.write_step(
            self.optimizer, self._schedule, num_steps, self._policy is Policy.OVERRIDE
        )
        return taken

    def _held(self):
        """What the groups hold before the step's write, ``(keys, values by group)``: what
        the optimizer's step just used, for an optimizer whose steps the scheduler does
        not see (it does not change its groups inside its step). Groups of numbers are
        read with one ``itemgetter`` each (numbers need no copy), tensors copied."""
        reader = self._reader
        if reader is not None and reader[0] is self._writer.plan and reader[2] is not None:
            try:
                return reader[1], list(map(reader[2], self.optimizer.param_groups))
            except (KeyError, TypeError):
                pass  # a group without one of the keys (added since): read one by one
        return self._held_slowly()

    def _held_slowly(self):
        """`_held` for a new plan, groups holding tensors, or groups without the keys."""
        in_force = self._writer.plan
        reader = self._reader
        if reader is None or reader[0] is not in_force:
            reader = self._reader = (in_force, *_group_reader(in_force, self._schedule))
        _, keys, fast = reader
        try:
            if fast is not None:
                try:
                    return keys, list(map(fast, self.optimizer.param_groups))
                except (KeyError, TypeError):
                    pass
            return keys, read_groups(self.optimizer.param_groups, keys)
        except (AttributeError, TypeError):
            return None  # not a list of dicts: the write refuses it

    def _record_stepped(self) -> None:
        """Records the values the groups hold as the optimizer steps (its step pre-hook)."""
        plan = self._writer.plan
        keys = _reported_keys(self._schedule if plan is None else plan.schedule)
        self._stepped = (keys, read_groups(self.optimizer.param_groups, keys))

    def _in_force(self):
        """The plan of the values in force for the step being taken when the writer has
        none (an unpickled scheduler: its plan is a cache, not pickled): the groups
        planned afresh at its position (None if they cannot run: the step then raises)."""
        try:
            return plan(self._schedule, self._num_steps, param_groups(self.optimizer))
        except ScheduleError:
            return None

    def _tokens(self, increment, tokens) -> int:
        """The increment of a step on the token clock, checked: `tokens`, a whole number."""
        if not self._counts_tokens:
            raise ScheduleError(
                f"step(tokens={tokens!r}) on a schedule whose clock counts "
                f"{'samples' if self._schedule.run is not None else 'steps'}; expected "
                "step() (or step(increment)), or a schedule whose run has clock = 'tokens'"
            )
        if tokens is None:
            raise ScheduleError(TOKEN_CLOCK_STEP)
        if increment != 1:
            raise ScheduleError(
                f"step({increment!r}, tokens={tokens!r}); expected the tokens alone, step(tokens=n)"
            )
        return check_tokens("tokens", tokens)

    def step_to(self, num_steps) -> None:
        """Sets the step count to `num_steps` (absolute) and writes every group.

        For a loop that keeps its own counter (Megatron's consumed samples, or the
        tokens consumed on a token clock: a whole number there): the scheduler then
        cannot drift from it. Nothing changes if it raises.
        """
        if self._counts_tokens:
            num_steps = check_tokens("num_steps", num_steps)
        self._move(check_non_negative("num_steps", num_steps))

    # --------------------------------------------------------------- values

    def value(self, name: str) -> float:
        """A value the training loop reads (a ``[loop.NAME]`` table, such as
        ``grad_clip``), in force for the coming step: read it before that step's
        optimizer step, as the groups' values are.

        Raises:
            ScheduleError: the schedule has no such value, or writes it into the groups.
        """
        scheduled = self._schedule.scheduled(name)
        if scheduled.place != "loop":
            raise ScheduleError(
                f"{name!r} is a group value, written into every parameter group (under "
                f"{scheduled.key!r}); expected a [loop] value here, or metrics() for what "
                "each group used"
            )
        return float(self._schedule.value_at(name, self._num_steps, _defaults(scheduled)))

    @property
    def batch_size(self) -> int:
        """The global batch size of the coming step (the run's, at the current position)."""
        run = self._schedule.run
        if run is None or run.global_batch_size is None:
            raise ScheduleError(
                "the schedule's run has no batch size; expected "
                "global_batch_size or batch_size_schedule in its run"
            )
        return run.batch_size_at(self._num_steps)

    def metrics(self) -> dict[str, float]:
        """The values the optimizer used in the step just taken, for a logger: one flat dict.

        Call it after `step`: it reports what the optimizer used in the step the
        scheduler just moved past, never the next step's values (which `step` has
        already written into the groups), whoever set them (the schedule, a torch
        scheduler chained after it, ``ReduceLROnPlateau``, a hand-written
        ``group["lr"] = x``). A torch optimizer's are recorded as it steps (a step
        pre-hook): the values of its last step since the scheduler's step before
        this one. If it did not step (an accumulated or skipped step), the values
        scheduled for the step are reported, and a WARNING says so once. Any other
        optimizer's are read from its groups as `step` begins, before it writes:
        what its last step used, for an optimizer that does not change its groups
        inside its step. A tensor's value is the float it holds (its dtype's
        rounding). The loop's values and the batch size are the schedule's. Names
        are stable:

        - ``"lr/G"``, ``"weight_decay/G"`` and ``"KEY/G"`` for each scheduled group
          value (``"betas[1]/G"``), for each parameter group ``G``: its ``name`` key
          if it has one, else its position (``"lr/0"``);
        - ``"NAME"`` for each value the loop reads (``"grad_clip"``);
        - ``"batch_size"`` when the run has a batch size.

        Raises:
            ScheduleError: no step has been taken since the scheduler started or
                loaded a checkpoint, or two groups have the same name.

        A group added (``add_param_group``) after the step before this one is not
        reported for this step, which used the group's own values; a WARNING says so.
        """
        taken = self._taken
        if taken is None or taken[0] is None:
            raise ScheduleError(
                "metrics() reports the values of the step just taken, and no "
                "step has been taken since the scheduler started or loaded; "
                "expected a call after scheduler.step()"
            )
        groups = getattr(self.optimizer, "param_groups", None)
        if isinstance(groups, list) and len(groups) > len(taken[0].rows):
            logger.warning(
                "metrics(): optimizer.param_groups[%d:] were added since the step "
                "before this one, which used their own values; they are reported "
                "from the next step on",
                len(taken[0].rows),
            )
        if self._used is None and not self._warned_not_stepped:
            self._warned_not_stepped = True
            logger.warning(
                "metrics(): the optimizer did not step since the scheduler's step "
                "before this one (an accumulated or skipped step); reporting the "
                "values scheduled for it (said once)"
            )
        return _metrics(*taken, self._used)

    def _after_optimizer_load(self) -> None:
        """Writes the groups the optimizer's ``load_state_dict`` just replaced, so that
        its next step uses this scheduler's values (and, under the override policy,
        this run's per-group overrides), whichever of the two loads came first."""
        kept = held_lrs(self.optimizer.param_groups) if self._keeps_lr else None
        self._writer.plan_and_write(
            self.optimizer, self._schedule, self._num_steps, self._policy is Policy.OVERRIDE
        )
        if kept is not None:
            put_back_lrs(kept)

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """The scheduler's state as a dict of Python builtins.

        For a Megatron-style `Schedule` it has Megatron-Core's keys, so
        Megatron-Core's own `load_state_dict` reads it, and also ``init_lr``,
        ``wsd_decay_steps``, ``lr_wsd_decay_style`` and ``paramsched_format`` 1. For
        any other schedule it holds the whole schedule as one JSON text under
        ``schedule``, the step count and ``paramsched_format`` 3.
        """
        return _checkpoint.write(self._schedule, self._num_steps)

    def _check_and_set(self, cls_value, sd_value, name: str):
        """The value the checkpoint policy keeps for one field (Megatron's helper).

        Raises:
            ScheduleError: the strict policy and the two values differ.
        """
        if self._policy is Policy.OVERRIDE:
            return cls_value
        if self._policy is Policy.STRICT and cls_value != sd_value:
            raise ScheduleError(_checkpoint.mismatch_message([(name, cls_value, sd_value)]))
        return sd_value

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restores a checkpoint written by paramsched or by Megatron-Core, legacy keys included.

        The step count is set to the checkpoint's. The schedule follows the
        checkpoint policy; fields a Megatron-Core checkpoint lacks (``init_lr`` and
        the WSD fields) keep this scheduler's values. Then every group is written
        once, with every restored value.

        Raises:
            ScheduleError: a key is missing or malformed, the restored schedule is
                invalid, or (with the strict policy) the schedules differ, all listed.
                The scheduler and the groups are then exactly as they were.
        """
        self._commit(*self._prepare(state_dict))

    def _prepare(self, state_dict) -> tuple:
        """``(schedule, num_steps, plan)`` a checkpoint restores, all checked; changes
        nothing but, under the override policy, the overrides of group dicts an
        optimizer's ``load_state_dict`` replaced, which get this run's back."""
        theirs, num_steps = _checkpoint.read(state_dict, self._schedule)
        _check_same_clock(self._schedule, theirs, "the checkpoint's schedule")
        if self._counts_tokens:
            check_tokens("state_dict['num_steps']", num_steps)
        schedule = _checkpoint.choose(self._schedule, theirs, self._policy, num_steps)
        planned = self._writer.plan_groups(
            self.optimizer, schedule, num_steps, self._policy is Policy.OVERRIDE
        )
        return schedule, num_steps, planned

    def _commit(self, schedule, num_steps, restored) -> None:
        self._use(schedule)
        self._num_steps = num_steps
        self._taken = None
        kept = held_lrs(self.optimizer.param_groups) if self._keeps_lr else None
        self._writer.write(restored)
        if kept is not None:
            put_back_lrs(kept)
        logger.info(
            "loaded scheduler state at num_steps=%s (policy %s)", num_steps, self._policy.value
        )


class _BeforeOptimizerStep:
    """The step pre-hook a scheduler leaves on a torch optimizer: records the values the
    groups hold as each ``optimizer.step()`` begins, which that step uses (`metrics`). It
    holds the scheduler weakly, and a copy of it does nothing."""

    def __init__(self, scheduler=None) -> None:
        self._scheduler = None if scheduler is None else weakref.ref(scheduler)

    def __call__(self, optimizer, args, kwargs) -> None:
        scheduler = None if self._scheduler is None else self._scheduler()
        if scheduler is not None and scheduler.optimizer is optimizer:
            scheduler._record_stepped()

    def __reduce__(self):
        return (_BeforeOptimizerStep, ())


class _AfterOptimizerLoad:
    """The hook a scheduler leaves on a torch optimizer: after its ``load_state_dict``,
    the scheduler rewrites the groups. It holds the scheduler weakly, and a copy of it
    (a pickled or deep-copied optimizer) does nothing."""

    def __init__(self, scheduler=None) -> None:
        self._scheduler = None if scheduler is None else weakref.ref(scheduler)

    def __call__(self, optimizer) -> None:
        scheduler = None if self._scheduler is None else self._scheduler()
        if scheduler is not None and scheduler.optimizer is optimizer:
            scheduler._after_optimizer_load()

    def __reduce__(self):
        return (_AfterOptimizerLoad, ())


_FROM_SCHEDULE = "OptimizerParamScheduler.from_schedule(optimizer, schedule)"


def _check_megatron_call(optimizer, given: dict) -> None:
    """Refuses a schedule given where Megatron's arguments go, and missing arguments,
    with a pointer to `OptimizerParamScheduler.from_schedule`."""
    for name, value in {"optimizer": optimizer, **given}.items():
        if isinstance(value, CurveSchedule):
            raise ScheduleTypeError(
                f"OptimizerParamScheduler was given a {type(value).__name__} as {name}; "
                f"expected {_FROM_SCHEDULE} to run a schedule, or Megatron's arguments"
            )
    missing = [name for name, value in given.items() if value is _REQUIRED]
    if not missing:
        return
    init_lr = given["init_lr"]
    if len(missing) == len(given) - 1 and (
        isinstance(init_lr, bool) or not isinstance(init_lr, numbers.Real)
    ):
        raise ScheduleTypeError(  # OptimizerParamScheduler(optimizer, some_schedule)
            f"OptimizerParamScheduler(optimizer, {init_lr!r}): init_lr is of type "
            f"{type(init_lr).__name__}; expected {_FROM_SCHEDULE} to run a schedule, or "
            "Megatron's arguments"
        )
    raise ScheduleTypeError(
        f"OptimizerParamScheduler is missing {', '.join(missing)}; expected Megatron's ten "
        f"arguments ({', '.join(given)}), or {_FROM_SCHEDULE}"
    )


def clock_unit(schedule) -> str:
    """What a schedule's positions count: ``"tokens"`` on a token clock, else
    ``"samples"`` (or optimizer steps, for a schedule without a run)."""
    run = schedule.run
    return "tokens" if run is not None and run.counts_tokens else "samples"


def _check_same_clock(mine, theirs, what: str) -> None:
    """Refuses a schedule on the other clock (tokens against samples): one run keeps
    one clock, under every checkpoint policy."""
    if clock_unit(mine) != clock_unit(theirs):
        raise ScheduleError(
            f"{what} counts {clock_unit(theirs)} and this scheduler's counts "
            f"{clock_unit(mine)}; expected one clock in one run (a position in one is no "
            "position in the other): a schedule on the same clock"
        )


def _defaults(scheduled) -> tuple:
    return tuple(value for _, value in scheduled.named)


def _reported_keys(schedule) -> tuple[str, ...]:
    """The group keys whose values `metrics` reports for `schedule`: ``lr``, then
    ``weight_decay`` if it schedules one, then each scheduled group value's key."""
    keys = ["lr", "weight_decay"] if schedule.has_wd else ["lr"]
    for value in schedule.values:
        if value.place == "group" and value.key not in keys:
            keys.append(value.key)
    return tuple(keys)


def _group_reader(plan, schedule) -> tuple:
    """``(keys, reader)`` for the values a plan's groups hold (`_reported_keys`): the
    reader one ``itemgetter`` (each group's values as a tuple) for a plan whose groups
    hold numbers, which need no copy; None for one that holds tensors (copied instead),
    or without a plan (an unpickled scheduler's first step: `schedule`'s keys)."""
    if plan is None:
        return _reported_keys(schedule), None
    keys = _reported_keys(plan.schedule)
    tensors = plan.tensors is not None or (
        plan.values is not None
        and any(
            holder is not float for *_, holders, _ in plan.values.rows for _, _, holder in holders
        )
    )
    if tensors:
        return keys, None
    return keys, operator.itemgetter(*keys, *keys[:1] if len(keys) == 1 else ())  # a tuple


def _used(used, number: int, key: str, index):
    """The float group `number` held under `key` (component `index` of a tuple) when the
    optimizer stepped, or None if `used` did not record one."""
    if used is None:
        return None
    keys, rows = used
    if number >= len(rows) or key not in keys:
        return None
    value = rows[number][keys.index(key)]
    if index is not None:
        if type(value) not in (tuple, list) or len(value) <= index:
            return None
        value = value[index]
    return as_float(value)


def _metrics(plan, position, used=None) -> dict[str, float]:
    """The values of the step `plan` wrote at `position`: each group's as `used` records
    them (what the optimizer held), else as the plan wrote them, and the loop's (see
    `OptimizerParamScheduler.metrics`)."""
    schedule, rows = plan.schedule, plan.rows
    names = _group_names([group for group, _, _ in rows])
    values = plan.values
    value_classes = (
        {} if values is None else {id(c): f for c, f in zip(values.cells, values.functions)}
    )
    found: dict[str, float] = {}
    classes = {}
    for cell, lr, wd, wd_mult in plan.classes:
        classes[id(cell)] = (
            float(lr(position)),
            None if wd is None else float(wd(position) * wd_mult),
        )
    for number, (name, (_, _, cell)) in enumerate(zip(names, rows)):
        lr, weight_decay = classes[id(cell)]
        if plan.tensors is not None:  # a tensor holds (and the step used) its dtype's rounding
            lr_held, wd_held = plan.tensors.held[number]
            lr = held(lr, lr_held)
            weight_decay = None if weight_decay is None else held(weight_decay, wd_held)
        lr_used = _used(used, number, "lr", None)
        found[f"lr/{name}"] = lr if lr_used is None else lr_used
        if weight_decay is not None:
            wd_used = _used(used, number, "weight_decay", None)
            found[f"weight_decay/{name}"] = weight_decay if wd_used is None else wd_used
        if values is not None:
            _, _, holders, value_cell = values.rows[number]
            functions = value_classes[id(value_cell)]
            for scheduled, function, (_, _, holder) in zip(values.scheduled, functions, holders):
                value_used = _used(used, number, scheduled.key, scheduled.index)
                found[f"{scheduled.name}/{name}"] = (
                    held(float(function(position)), holder) if value_used is None else value_used
                )
    for scheduled in schedule.values:
        if scheduled.place == "loop":
            found[scheduled.name] = float(
                schedule.value_at(scheduled.name, position, _defaults(scheduled))
            )
    run = schedule.run
    if run is not None and run.global_batch_size is not None:
        found["batch_size"] = run.batch_size_at(position)
    return found


def _group_names(groups) -> list[str]:
    """Each group's name in metrics: its ``name`` key (a non-empty string), else its
    position; two groups of one name are refused."""
    names, seen = [], {}
    for position, group in enumerate(groups):
        name = group.get("name", position)
        if not isinstance(name, (str, int)) or isinstance(name, bool) or name == "":
            raise ScheduleTypeError(
                f"optimizer.param_groups[{position}]['name']={name!r}; "
                "expected a non-empty string to name it in metrics"
            )
        name = str(name)
        if name in seen:
            raise ScheduleError(
                f"optimizer.param_groups[{seen[name]}] and [{position}] are both "
                f"named {name!r} in metrics; expected a distinct 'name' in "
                "each group"
            )
        seen[name] = position
        names.append(name)
    return names


def _check_schedule(schedule):
    if not isinstance(schedule, CurveSchedule):
        raise ScheduleTypeError(
            f"schedule={schedule!r} is of type {type(schedule).__name__}; "
            "expected a paramsched.Schedule or PhaseSchedule"
        )
    return schedule
