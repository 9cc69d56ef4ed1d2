"""PyTorch integration: paramsched as a ``torch.optim.lr_scheduler.LRScheduler``.

This module imports torch; the core of paramsched never does (tensor learning
rates are written by `paramsched._tensors`, which imports torch only when a
group holds one).
"""

from __future__ import annotations

import json
import logging
import numbers
from collections.abc import Mapping

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from ..core.units import check_tokens, clock_for
from ..errors import LIMIT, ScheduleError, ScheduleTypeError
from ._checkpoint import FORMAT_KEY, Policy
from ._tensors import snapshot
from .scheduler import OptimizerParamScheduler, _check_schedule

logger = logging.getLogger(__name__)


class ParamScheduler(LRScheduler):
    """paramsched as a ``torch.optim.lr_scheduler.LRScheduler``.

    Each `step()` (one optimizer step) advances the schedule's clock by one step
    and writes every group's ``lr`` and ``weight_decay``: the same floats
    `paramsched.OptimizerParamScheduler` writes (it does the work), tensors updated
    in place. The clock is the schedule's own (`paramsched.units.clock_for`): a
    schedule whose run has a global batch size advances by the batch size of the
    moment, ramp-up included, as Megatron does; a schedule without a run counts
    optimizer steps; anything ambiguous is refused. Lightning accepts it as it is
    (no ``lr_scheduler_step`` override), and so does the Hugging Face ``Trainer``;
    its `state_dict` is plain Python data, which ``torch.load(...,
    weights_only=True)`` reads, and it is a ``torch.distributed.checkpoint``
    stateful object whose schedule loads whole or not at all.

    Args:
        optimizer: A ``torch.optim.Optimizer``.
        schedule: A `paramsched.Schedule` (Megatron's arguments) or `PhaseSchedule`.
        samples_per_step: A fixed amount each step advances the clock, for a schedule
            whose run does not say (it must agree with the run's batch size where the
            run has one). Default: the schedule's own clock.
        checkpoint_policy: What loading a checkpoint of another schedule does:
            ``"checkpoint"`` (Megatron's default: take it, with a WARNING naming what
            differs), ``"override"`` (keep this one) or ``"strict"`` (refuse).

    Examples:
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

    _pending_tokens = None  # for schedulers pickled before token clocks

    def __init__(
        self, optimizer, schedule, samples_per_step=None, checkpoint_policy="checkpoint"
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ScheduleTypeError(
                f"optimizer={optimizer!r} is of type {type(optimizer).__name__}; expected a "
                "torch.optim.Optimizer (or OptimizerParamScheduler for any object with "
                "param_groups)"
            )
        _check_schedule(schedule)
        self._samples_per_step = samples_per_step
        self._pending_tokens = None
        self._clock = clock_for(schedule, samples_per_step)
        self._clock_schedule = schedule  # the schedule the clock was made for
        policy = Policy.parse(checkpoint_policy)
        # torch's initial_lr: what the group held when a first scheduler attached, not what
        # this one writes (a scheduler built after it, or a SequentialLR, starts from it).
        if schedule.base_lr_from_groups:  # LambdaLR's base_lr: each group's first lr
            for group in optimizer.param_groups:
                if group.get("max_lr") is None:
                    group["max_lr"] = float(group.get("initial_lr", group.get("lr")))
        before = [
            (group, snapshot(group.get("lr")))
            for group in optimizer.param_groups
            if "initial_lr" not in group
        ]
        self.core = OptimizerParamScheduler.from_schedule(optimizer, schedule)
        self.core.checkpoint_policy = policy
        for group, lr in before:
            group.setdefault("initial_lr", lr)
        super().__init__(optimizer)

    @property
    def last_epoch(self) -> int:
        """torch's count of the steps taken; -1 while the scheduler has not started (a
        ``SequentialLR`` undoes its first step until its milestone): the groups' ``lr`` is
        then another scheduler's, which loading a checkpoint (the scheduler's or the
        optimizer's) keeps, writing every other value."""
        return self.__dict__["_last_epoch"]

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        self.__dict__["_last_epoch"] = value
        self.core._keeps_lr = value < 0

    def __setstate__(self, state: dict) -> None:
        if "last_epoch" in state:  # pickled before last_epoch was a property
            state["_last_epoch"] = state.pop("last_epoch")
        self.__dict__.update(state)

    @property
    def schedule(self):
        """The schedule in force; assigning one (checked against the groups and for its
        clock first) takes effect at the next step, on that schedule's own clock."""
        return self.core.schedule

    @schedule.setter
    def schedule(self, schedule) -> None:
        clock = clock_for(_check_schedule(schedule), self._samples_per_step)
        self.core.schedule = schedule
        self._clock, self._clock_schedule = clock, schedule

    def _current_clock(self):
        """The clock of the schedule in force (made afresh if it was replaced)."""
        schedule = self.core.schedule
        if schedule is not self._clock_schedule:
            self._clock = clock_for(schedule, self._samples_per_step)
            self._clock_schedule = schedule
        return self._clock

    @property
    def num_steps(self):
        """The schedule's clock: samples consumed (or steps, for a schedule without a run)."""
        return self.core.num_steps

    @property
    def samples_per_step(self):
        """The fixed step size given to the constructor, or None for the schedule's clock."""
        return self._samples_per_step

    @property
    def clock(self):
        """The clock in force (`paramsched.units.Clock`)."""
        return self._current_clock()

    @property
    def checkpoint_policy(self) -> Policy:
        return self.core.checkpoint_policy

    def step(self, epoch=None, *, tokens=None) -> None:
        """Advances the clock by one optimizer step (the first call, from the
        constructor, by none) and writes every group.

        On a token clock (a run with ``clock = "tokens"``), the step advances by the
        tokens it consumed: ``step(tokens=n)``, or the sum of `add_tokens` calls since
        the last step (for a framework that calls ``step()`` itself). Anything else
        there, and tokens on another clock, is refused.
        """
        if epoch is not None:
            raise ScheduleTypeError(
                f"epoch={epoch!r}; expected step() without an argument (ParamScheduler "
                "advances by one optimizer step per call), or step_to(step) for an "
                "absolute position"
            )
        initial = getattr(self, "_is_initial", False) or self._step_count == 0
        if initial:
            if tokens is not None:
                raise ScheduleError("step(tokens=...) before the scheduler has started")
            self.core.step_to(self.core.num_steps)
            self.core._taken = None  # writing the first values takes no step
        elif tokens is not None or self._current_clock().counts_tokens:
            if tokens is not None and self._pending_tokens:
                raise ScheduleError(
                    f"step(tokens={tokens!r}) after add_tokens({self._pending_tokens!r}); "
                    "expected one way to give this step's tokens"
                )
            self.core.step(tokens=self._pending_tokens if tokens is None else tokens)
            self._pending_tokens = None
        else:
            self.core.step(self._current_clock().increment(self.core.num_steps))
        self._step_count += 1
        self.last_epoch += 1
        self._last_lr = self.get_lr()

    def add_tokens(self, tokens: int) -> None:
        """Records tokens the coming optimizer step consumes, on a token clock: the next
        `step()` advances by the sum recorded since the last one (for Lightning or the
        Hugging Face Trainer, which call ``step()`` themselves).

        Raises:
            ScheduleError: `tokens` is not a whole number >= 0, or the step would take
                the clock past 1e18; what was recorded before is then kept, unchanged.
        """
        if not self._current_clock().counts_tokens:
            raise ScheduleError(
                f"add_tokens({tokens!r}) on a schedule whose clock does not "
                "count tokens; expected a run with clock = 'tokens'"
            )
        total = (self._pending_tokens or 0) + check_tokens("tokens", tokens)
        if self.core.num_steps + total > LIMIT:  # the step would be refused, every time
            room = LIMIT - self.core.num_steps - (self._pending_tokens or 0)
            raise ScheduleError(
                f"add_tokens({tokens!r}) takes the coming step from {self.core.num_steps!r} "
                f"to {self.core.num_steps + total!r} tokens; expected at most {room!r} more "
                "tokens for it (a position of at most 1e18, beyond any run)"
            )
        self._pending_tokens = total

    @property
    def pending_tokens(self) -> int:
        """Tokens recorded by `add_tokens` for the coming step."""
        return self._pending_tokens or 0

    def metrics(self) -> dict[str, float]:
        """The values in force for the step just taken, for a logger
        (`paramsched.OptimizerParamScheduler.metrics`)."""
        return self.core.metrics()

    def value(self, name: str) -> float:
        """A value the training loop reads, for the coming step
        (`paramsched.OptimizerParamScheduler.value`)."""
        return self.core.value(name)

    @property
    def batch_size(self) -> int:
        """The global batch size of the coming step."""
        return self.core.batch_size

    def step_to(self, step: int) -> None:
        """Goes to the position after `step` optimizer steps from the start, and writes
        every group: for a loop that keeps its own step counter, which then can never
        drift from the schedule's. Nothing changes if it raises."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise ScheduleTypeError(
                f"step={step!r} is of type {type(step).__name__}; expected "
                "a whole number of steps >= 0"
            )
        step = int(step)
        if step < 0:
            raise ScheduleError(f"step={step!r}; expected a whole number of steps >= 0")
        self.core.step_to(self._current_clock().position(step))
        self._step_count = step + 1
        self.last_epoch = step
        self._last_lr = self.get_lr()

    def get_lr(self) -> list[float]:
        """Each group's learning rate, as Python floats (tensors are not read back)."""
        return [lr for lr, _ in self.core.last_values()]

    def state_dict(self) -> dict:
        """Plain data: the schedule and its position, the clock, and torch's counters
        (and, on a token clock, the tokens `add_tokens` recorded for the coming step,
        and whether any were: zero recorded is a step of zero tokens, none a step refused).

        ``samples_per_step`` holds the clock: a fixed step size, or the run whose
        batch sizes each step consumes, as JSON text (one leaf for
        ``torch.distributed.checkpoint``).
        """
        state = {
            "paramsched": self.core.state_dict(),
            "samples_per_step": self._current_clock().describe(),
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            FORMAT_KEY: TORCH_FORMAT,
        }
        if self._current_clock().counts_tokens:  # only there: DCP loads into this structure
            state["pending_tokens"] = self._pending_tokens or 0
            state["tokens_recorded"] = self._pending_tokens is not None
        return state

    def load_state_dict(self, state_dict) -> None:
        """Restores a `state_dict`: checked whole first, the position set (never added to).

        The schedule follows the checkpoint policy. The clock stays this
        scheduler's; where the checkpoint's clock differs, a WARNING says so.
        """
        if not isinstance(state_dict, Mapping):
            raise ScheduleTypeError(
                f"state_dict is of type {type(state_dict).__name__}; expected a dict"
            )
        missing = [
            k
            for k in ("paramsched", "samples_per_step", "last_epoch", "_step_count")
            if k not in state_dict
        ]
        if missing:
            raise ScheduleError(
                "state_dict is missing "
                + ", ".join(map(repr, missing))
                + "; expected a checkpoint of ParamScheduler.state_dict()"
            )
        version = state_dict.get(FORMAT_KEY, 1)
        if version not in (1, TORCH_FORMAT) or isinstance(version, bool):
            raise ScheduleError(
                f"state_dict[{FORMAT_KEY!r}]={version!r}; expected 1 or {TORCH_FORMAT}"
            )
        saved_clock = _check_saved_clock(state_dict["samples_per_step"])
        last_epoch, step_count = (
            _check_counter(state_dict, key) for key in ("last_epoch", "_step_count")
        )
        if step_count != max(last_epoch, 0) + 1:
            raise ScheduleError(
                f"state_dict['_step_count']={step_count!r} with state_dict["
                f"'last_epoch']={last_epoch!r}; expected _step_count = "
                "last_epoch + 1, as ParamScheduler keeps them (1 with "
                "last_epoch -1, before a SequentialLR's milestone)"
            )
        pending = state_dict.get("pending_tokens", 0)  # absent before token clocks
        pending = check_tokens("state_dict['pending_tokens']", pending)
        recorded = state_dict.get("tokens_recorded", pending > 0)  # absent in early ones
        if not isinstance(recorded, bool) or (pending and not recorded):
            raise ScheduleError(
                f"state_dict['tokens_recorded']={recorded!r} with state_dict["
                f"'pending_tokens']={pending!r}; expected True or False, and "
                "True where tokens are pending"
            )
        prepared = self.core._prepare(state_dict["paramsched"])
        clock = clock_for(prepared[0], self._samples_per_step)
        if _advance(saved_clock) != _advance(clock.describe()):
            logger.warning(
                "ParamScheduler: the checkpoint's clock advanced by another amount "
                "per step; this scheduler's advances as its schedule says from the "
                "checkpoint's position on"
            )
            logger.debug(
                "the checkpoint's clock: %s; this scheduler's: %s", saved_clock, clock.describe()
            )
        self.last_epoch = last_epoch  # -1: the groups' lr is another scheduler's, kept
        self.core._commit(*prepared)
        self._clock, self._clock_schedule = clock, prepared[0]
        self._step_count = step_count
        self._pending_tokens = pending if recorded else None
        self._last_lr = self.get_lr()


TORCH_FORMAT = 2


def _check_counter(state_dict, key: str) -> int:
    """torch's counters: whole numbers >= 0, and ``last_epoch`` -1 for a scheduler that
    has not started (a SequentialLR's before its milestone)."""
    value = state_dict[key]
    lowest = -1 if key == "last_epoch" else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ScheduleError(f"state_dict[{key!r}]={value!r}; expected a whole number >= {lowest}")
    return value


def _advance(clock):
    """What a clock's description says of how far each step goes: a run's batch sizes,
    not its total (a branch that extends the run steps as its parent did)."""
    if not isinstance(clock, str):
        return clock
    try:
        data = json.loads(clock)
        run = {k: v for k, v in data["run"].items() if k != "total"}
    except (ValueError, TypeError, KeyError, AttributeError):
        return clock
    return json.dumps(run, sort_keys=True)


def _check_saved_clock(value):
    """A checkpoint's clock: a number > 0, or the JSON text of a run."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value != value
        or value == float("inf")
    ):
        raise ScheduleError(
            f"state_dict['samples_per_step']={value!r}; expected a number > 0 "
            "or the run's JSON text"
        )
    return value
