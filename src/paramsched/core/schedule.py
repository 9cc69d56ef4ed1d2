"""`Schedule`: Megatron-Core's learning-rate and weight-decay schedule as a value.

A `Schedule` holds the configuration of Megatron-Core's `OptimizerParamScheduler`
(everything but the optimizer and the checkpoint policies), validated once, and
answers `lr(step)` and `wd(step)` for a step count or a NumPy array of them.

The learning rate at step ``n`` (``w`` = ``lr_warmup_steps``, ``d`` =
``lr_decay_steps``), the first rule that applies::

    w > 0 and n <= w           init_lr + (max_lr - init_lr) * n / w
    constant                   max_lr
    n > d                      min_lr
    inverse-square-root        max(min_lr, max_lr * max(w, 1)**0.5 / max(n, 1)**0.5)
    WSD, n <= d - wsd          max_lr reached as min_lr + 1.0 * (max_lr - min_lr)
    WSD                        min_lr + shape(lr_wsd_decay_style).decay(r) * (max_lr - min_lr),
                               r = (n - (d - wsd)) / wsd
    linear, cosine             min_lr + shape.decay(r) * (max_lr - min_lr), r = (n - w) / (d - w)

The weight decay at step ``n`` (``i`` = ``wd_incr_steps``)::

    n > i or constant          end_wd
    linear, cosine             start_wd + shape.rise(n / i) * (end_wd - start_wd)

Without ``start_wd`` and ``end_wd`` the schedule has no weight-decay part.

The rules become the segments of two curves (`paramsched._curve`): a warmup, then
the decay (WSD: a stable plateau, then the anneal), then ``min_lr`` held (``max_lr``
for the constant style). Every operation is Megatron-Core's, in its order, so
the floats are the same to the last bit, for one step or a NumPy array of them.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Literal, Optional, get_args

from ..errors import (
    ScheduleError,
    ScheduleTypeError,
    check_choice,
    check_non_negative,
    check_rate,
)
from ._curve import KINDS, Curve, CurveSchedule, Segment, is_scalar, step_array  # noqa: F401
from .shapes import SHAPES
from .units import Run

LrDecayStyle = Literal["constant", "linear", "cosine", "inverse-square-root", "WSD"]
WsdDecayStyle = Literal["linear", "cosine", "exponential", "minus_sqrt"]
WdIncrStyle = Literal["constant", "linear", "cosine"]

LR_DECAY_STYLES: tuple[str, ...] = get_args(LrDecayStyle)
logger = logging.getLogger(__name__)

WSD_DECAY_STYLES: tuple[str, ...] = get_args(WsdDecayStyle)
WD_INCR_STYLES: tuple[str, ...] = get_args(WdIncrStyle)


@dataclass(frozen=True, kw_only=True)
class Schedule(CurveSchedule):
    """Megatron-Core's learning-rate and weight-decay schedule, validated and immutable.

    Arguments have Megatron-Core's names and meanings; steps are whatever the
    training loop counts (Megatron counts samples). Invalid combinations raise
    `ScheduleError` (a `ValueError`) or `ScheduleTypeError` (a `TypeError`) naming
    the argument and the value.

    Args:
        max_lr: Peak learning rate, reached at the end of warmup.
        lr_decay_steps: Step at which the decay ends; after it the rate is `min_lr`
            (except for the constant style).
        lr_decay_style: One of `LR_DECAY_STYLES`.
        init_lr: Learning rate at step 0 of the warmup, in ``[0, max_lr]``.
        min_lr: Learning rate at the end of the decay, in ``[0, max_lr]``.
        lr_warmup_steps: Length of the linear warmup, in ``[0, lr_decay_steps)``;
            may be fractional (Megatron's ``--lr-warmup-fraction``).
        start_wd: Weight decay at step 0. Without `start_wd` and `end_wd` the schedule
            has no weight-decay part, and leaves each group's ``weight_decay`` as the
            optimizer has it; given one, the other defaults to it.
        end_wd: Weight decay from `wd_incr_steps` on; at least `start_wd`.
        wd_incr_steps: Length of the weight-decay increase; > 0 unless constant.
        wd_incr_style: One of `WD_INCR_STYLES`; constant needs ``start_wd == end_wd``.
        wsd_decay_steps: For WSD, the length of the final anneal, in ``(0, lr_decay_steps]``.
        lr_wsd_decay_style: For WSD, the anneal's shape, one of `WSD_DECAY_STYLES`.
        run: Optionally, the run the schedule is for (batch size, sequence length,
            length), which previews use to speak of steps and tokens; it does not
            change any value and is not compared.

    Examples:
        >>> import numpy as np
        >>> s = Schedule(max_lr=1.0, min_lr=0.1, lr_warmup_steps=10, lr_decay_steps=110,
        ...              lr_decay_style="linear")
        >>> s.lr(5), s.lr(10), s.lr(60), s.lr(500)
        (0.5, 1.0, 0.55, 0.1)
        >>> s.lr(np.array([0, 5, 10]))
        array([0. , 0.5, 1. ])
    """

    max_lr: float
    lr_decay_steps: int | float
    lr_decay_style: LrDecayStyle
    init_lr: float = 0.0
    min_lr: float = 0.0
    lr_warmup_steps: int | float = 0
    start_wd: Optional[float] = None
    end_wd: Optional[float] = None
    wd_incr_steps: int | float = 0
    wd_incr_style: WdIncrStyle = "constant"
    wsd_decay_steps: Optional[int | float] = None
    lr_wsd_decay_style: Optional[WsdDecayStyle] = None
    run: Optional[Run] = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in SCHEDULE_FIELDS:
            object.__setattr__(self, name, check_field(name, getattr(self, name)))
        if self.start_wd is None and self.end_wd is not None:
            object.__setattr__(self, "start_wd", self.end_wd)
        if self.end_wd is None and self.start_wd is not None:
            object.__setattr__(self, "end_wd", self.start_wd)
        if self.run is not None and not isinstance(self.run, Run):
            raise ScheduleTypeError(
                f"run={self.run!r} is of type {type(self.run).__name__}; "
                "expected a paramsched.Run or None"
            )
        self._check_relations()
        # The curves are derived from the fields (not fields themselves).
        object.__setattr__(self, "lr_curve", self._build_lr_curve())
        object.__setattr__(self, "wd_curve", self._build_wd_curve())

    def _check_relations(self) -> None:
        def require(ok: bool, message: str) -> None:
            if not ok:
                raise ScheduleError(message)

        require(
            self.min_lr <= self.max_lr,
            f"min_lr={self.min_lr!r} is greater than max_lr={self.max_lr!r}; "
            "expected min_lr <= max_lr",
        )
        require(
            self.init_lr <= self.max_lr,
            f"init_lr={self.init_lr!r} is greater than max_lr={self.max_lr!r}; "
            "expected 0 <= init_lr <= max_lr",
        )
        require(
            self.lr_decay_steps > 0,
            f"lr_decay_steps={self.lr_decay_steps!r}; expected a number > 0",
        )
        require(
            self.lr_warmup_steps < self.lr_decay_steps,
            f"lr_warmup_steps={self.lr_warmup_steps!r} is not below "
            f"lr_decay_steps={self.lr_decay_steps!r}; "
            "expected 0 <= lr_warmup_steps < lr_decay_steps",
        )
        if self.lr_decay_style == "WSD":
            require(
                self.wsd_decay_steps is not None,
                "wsd_decay_steps=None with lr_decay_style='WSD'; expected the length of "
                "the WSD anneal, in (0, lr_decay_steps]",
            )
            unusual = _unusual_wsd(self.wsd_decay_steps, self.lr_decay_steps, self.lr_warmup_steps)
            if unusual:  # Megatron-Core runs it as written; so does paramsched, saying so
                logger.warning(
                    "wsd_decay_steps=%.8g with lr_decay_steps=%.8g: %s; run as "
                    "Megatron-Core runs it",
                    self.wsd_decay_steps,
                    self.lr_decay_steps,
                    unusual,
                )
            require(
                self.lr_wsd_decay_style is not None,
                "lr_wsd_decay_style=None with lr_decay_style='WSD'; expected one of "
                + ", ".join(repr(s) for s in WSD_DECAY_STYLES),
            )
        if self.start_wd is None:
            return
        require(
            self.start_wd <= self.end_wd,
            f"end_wd={self.end_wd!r} is below start_wd={self.start_wd!r}; "
            "expected start_wd <= end_wd",
        )
        if self.wd_incr_style == "constant":
            require(
                self.start_wd == self.end_wd,
                f"start_wd={self.start_wd!r} and end_wd={self.end_wd!r} differ with "
                "wd_incr_style='constant'; expected equal values, or a 'linear' or 'cosine' style",
            )
        else:
            require(
                self.wd_incr_steps > 0,
                f"wd_incr_steps={self.wd_incr_steps!r} with wd_incr_style="
                f"{self.wd_incr_style!r}; expected a number > 0",
            )

    def replace(self, **changes) -> "Schedule":
        """A copy with `changes` applied, validated like a new one."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The configuration (Megatron's arguments) as a dict of Python builtins."""
        return {name: getattr(self, name) for name in SCHEDULE_FIELDS}

    # ------------------------------------------------------------ the curves

    def _build_lr_curve(self) -> Curve:
        w, d, style = self.lr_warmup_steps, self.lr_decay_steps, self.lr_decay_style
        segments = []
        if w > 0:
            segments.append(
                Segment(w, "warmup", "init_lr", "max_lr", length=float(w), label="warmup")
            )
        if style == "constant":
            return Curve(tuple(segments), "max_lr", "constant")
        if style == "inverse-square-root":
            segments.append(Segment(d, "inverse-sqrt", "max_lr", "min_lr", origin=w, label=style))
        elif style == "WSD":
            anneal_start = d - self.wsd_decay_steps
            if anneal_start > w:  # Megatron's n > lr_decay_steps comes first: capped at d
                segments.append(
                    Segment(min(anneal_start, d), "stable", "max_lr", "min_lr", label="stable")
                )
            if anneal_start < d:  # with none (or one rounded away), min_lr after d at once
                segments.append(
                    Segment(
                        d,
                        "decay",
                        "max_lr",
                        "min_lr",
                        SHAPES[self.lr_wsd_decay_style],
                        origin=anneal_start,
                        length=float(self.wsd_decay_steps),
                        label=f"WSD {self.lr_wsd_decay_style}",
                    )
                )
        else:
            segments.append(
                Segment(
                    d,
                    "decay",
                    "max_lr",
                    "min_lr",
                    SHAPES[style],
                    origin=w,
                    length=float(d - w),
                    label=style,
                )
            )
        return Curve(tuple(segments), "min_lr")

    def _build_wd_curve(self) -> Curve | None:
        if self.start_wd is None:
            return None
        style, steps = self.wd_incr_style, self.wd_incr_steps
        if style == "constant":
            return Curve((), "end_wd", "constant")
        return Curve(
            (
                Segment(
                    steps,
                    "rise",
                    "start_wd",
                    "end_wd",
                    SHAPES[style],
                    length=float(steps),
                    label=f"wd {style}",
                ),
            ),
            "end_wd",
        )

    @property
    def horizon(self):
        """Where the schedule's last change is: ``lr_decay_steps``."""
        return self.lr_decay_steps

    def fields(self) -> dict:
        """What the schedule is, flat: Megatron's arguments (for comparisons and messages)."""
        return self.to_dict()

    def to_state(self) -> dict:
        """The checkpoint entries: Megatron-Core's flat keys (format 1)."""
        return self.to_dict()

    kind = "megatron"

    def meaning(self) -> dict:
        """Megatron's arguments (`to_dict`); the run is not part of them."""
        return self.to_dict()

    def describe(self) -> str:
        return f"Megatron's {self.lr_decay_style}"


def _unusual_wsd(wsd, decay, warmup) -> str:
    """What is unusual about a WSD anneal that Megatron-Core still runs, or ``""``."""
    if wsd == 0 or decay - wsd >= decay:
        return "no anneal: the rate drops from max_lr to min_lr after lr_decay_steps"
    if wsd > decay:
        return "the anneal is longer than the decay: the rate drops right after the warmup"
    if not float(wsd).is_integer():
        return "a fractional anneal, which begins inside a step"
    return ""


def _optional(check):
    def check_optional(label, value):
        return None if value is None else check(label, value)

    return check_optional


_FIELD_CHECKS = {
    **dict.fromkeys(("max_lr", "init_lr", "min_lr"), check_rate),
    **dict.fromkeys(("start_wd", "end_wd"), _optional(check_rate)),
    **dict.fromkeys(("lr_decay_steps", "lr_warmup_steps", "wd_incr_steps"), check_non_negative),
    "wsd_decay_steps": _optional(check_non_negative),
    "lr_decay_style": lambda label, value: check_choice(label, value, LR_DECAY_STYLES),
    "wd_incr_style": lambda label, value: check_choice(label, value, WD_INCR_STYLES),
    "lr_wsd_decay_style": _optional(
        lambda label, value: check_choice(label, value, WSD_DECAY_STYLES)
    ),
}

#: Megatron's arguments, the fields a checkpoint holds; ``run`` only describes the clock.
SCHEDULE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Schedule) if f.name != "run"
)


def check_field(name: str, value: object, label: str | None = None):
    """Checks one `Schedule` field on its own (type and range) and returns it normalised.

    Args:
        name: The field's name.
        value: The value to check.
        label: How the message names the value; default `name`.
    """
    return _FIELD_CHECKS[name](label or name, value)


def _from_meaning(meaning: dict, run) -> Schedule:
    """A Megatron schedule built back from its meaning (`Schedule.meaning`), every key
    checked, so that a malformed one is a `ScheduleError`, not a TypeError."""
    unknown = [key for key in meaning if key not in SCHEDULE_FIELDS]
    if unknown:
        raise ScheduleError(
            f"{unknown[0]!r} is not one of Megatron's schedule fields; "
            "expected " + ", ".join(SCHEDULE_FIELDS)
        )
    missing = [key for key in ("max_lr", "lr_decay_steps", "lr_decay_style") if key not in meaning]
    if missing:
        raise ScheduleError(
            "Megatron's schedule is missing "
            + ", ".join(map(repr, missing))
            + "; expected every field it was written with"
        )
    return Schedule(**meaning, run=run)


KINDS[Schedule.kind] = _from_meaning
