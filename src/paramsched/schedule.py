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

Every operation is Megatron-Core's, in its order, so the floats are the same to
the last bit. The array path evaluates the same shape formulas on NumPy arrays
(see `paramsched.shapes`) and gives the same floats as the scalar path, except
for the inverse square root, where it takes ``np.sqrt`` for ``** 0.5`` and may
differ by an ulp or two (relative differences below 1e-15).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional, get_args

import numpy as np

from .errors import (
    ScheduleError,
    ScheduleTypeError,
    check_choice,
    check_non_negative,
    check_rate,
)
from .shapes import ARRAY, SHAPES, interpolate, warmup
from .units import Run

LrDecayStyle = Literal["constant", "linear", "cosine", "inverse-square-root", "WSD"]
WsdDecayStyle = Literal["linear", "cosine", "exponential", "minus_sqrt"]
WdIncrStyle = Literal["constant", "linear", "cosine"]

LR_DECAY_STYLES: tuple[str, ...] = get_args(LrDecayStyle)
WSD_DECAY_STYLES: tuple[str, ...] = get_args(WsdDecayStyle)
WD_INCR_STYLES: tuple[str, ...] = get_args(WdIncrStyle)


class Evaluates:
    """`lr` and `wd` for a number or an array of steps, from a schedule's formulas.

    A schedule provides ``lr_at``/``wd_at`` (one step, values as a group holds
    them) and ``_lr_array``/``_wd_array`` (the same over a float64 array), and its
    ``max_lr``, ``min_lr``, ``start_wd`` and ``end_wd``.
    """

    def lr(self, step, max_lr: float | None = None, min_lr: float | None = None):
        """The learning rate after `step` steps.

        Args:
            step: A step count, or an array-like of them (>= 0, finite).
            max_lr: A parameter group's override of `max_lr`; default `self.max_lr`.
            min_lr: A parameter group's override of `min_lr`; default `self.min_lr`.

        Returns:
            A float for a scalar step, a float64 array of the same shape for an array.
        """
        max_lr = self.max_lr if max_lr is None else check_rate("max_lr", max_lr)
        min_lr = self.min_lr if min_lr is None else check_rate("min_lr", min_lr)
        if is_scalar(step):
            return float(self.lr_at(check_non_negative("step", step), max_lr, min_lr))
        return self._lr_array(step_array(step), max_lr, min_lr)

    def wd(self, step, start_wd: float | None = None, end_wd: float | None = None):
        """The weight decay after `step` steps (before any group's ``wd_mult``).

        Args:
            step: A step count, or an array-like of them (>= 0, finite).
            start_wd: A parameter group's override of `start_wd`.
            end_wd: A parameter group's override of `end_wd`.

        Returns:
            A float for a scalar step, a float64 array of the same shape for an array.
        """
        start_wd = self.start_wd if start_wd is None else check_rate("start_wd", start_wd)
        end_wd = self.end_wd if end_wd is None else check_rate("end_wd", end_wd)
        if is_scalar(step):
            return float(self.wd_at(check_non_negative("step", step), start_wd, end_wd))
        return self._wd_array(step_array(step), start_wd, end_wd)


@dataclass(frozen=True, kw_only=True)
class Schedule(Evaluates):
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
        start_wd: Weight decay at step 0.
        end_wd: Weight decay from `wd_incr_steps` on; at least `start_wd`.
        wd_incr_steps: Length of the weight-decay increase; > 0 unless constant.
        wd_incr_style: One of `WD_INCR_STYLES`; constant needs ``start_wd == end_wd``.
        wsd_decay_steps: For WSD, the length of the final anneal, in ``(0, lr_decay_steps]``.
        lr_wsd_decay_style: For WSD, the anneal's shape, one of `WSD_DECAY_STYLES`.
        run: Optionally, the run the schedule is for (batch size, sequence length,
            length), which previews use to speak of steps and tokens; it does not
            change any value and is not compared.

    Example:
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
    start_wd: float = 0.0
    end_wd: float = 0.0
    wd_incr_steps: int | float = 0
    wd_incr_style: WdIncrStyle = "constant"
    wsd_decay_steps: Optional[int | float] = None
    lr_wsd_decay_style: Optional[WsdDecayStyle] = None
    run: Optional[Run] = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in SCHEDULE_FIELDS:
            object.__setattr__(self, name, check_field(name, getattr(self, name)))
        if self.run is not None and not isinstance(self.run, Run):
            raise ScheduleTypeError(f"run={self.run!r} is of type {type(self.run).__name__}; "
                                    "expected a paramsched.Run or None")
        self._check_relations()
        # The formulas this schedule uses, looked up once (not fields: derived).
        decay_style = (self.lr_wsd_decay_style if self.lr_decay_style == "WSD"
                       else self.lr_decay_style)
        shape = SHAPES.get(decay_style)
        object.__setattr__(self, "_decay", shape.decay if shape else None)
        wd_shape = SHAPES.get(self.wd_incr_style)
        object.__setattr__(self, "_rise", wd_shape.rise if wd_shape else None)

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
            require(
                0 < self.wsd_decay_steps <= self.lr_decay_steps,
                f"wsd_decay_steps={self.wsd_decay_steps!r} is outside (0, "
                f"lr_decay_steps={self.lr_decay_steps!r}]",
            )
            require(
                self.lr_wsd_decay_style is not None,
                "lr_wsd_decay_style=None with lr_decay_style='WSD'; expected one of "
                + ", ".join(repr(s) for s in WSD_DECAY_STYLES),
            )
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

    # ------------------------------------------------------ the scalar formula

    def lr_at(self, n, max_lr, min_lr):
        """`lr` without checks: `n` a valid step count, the rates as a group holds them."""
        w = self.lr_warmup_steps
        if w > 0 and n <= w:
            return warmup(self.init_lr, max_lr, float(n), float(w))
        style = self.lr_decay_style
        if style == "constant":
            return max_lr
        if n > self.lr_decay_steps:
            return min_lr
        if style == "inverse-square-root":
            return max(min_lr, max_lr * max(w, 1) ** 0.5 / max(n, 1) ** 0.5)
        if style == "WSD":
            anneal_start = self.lr_decay_steps - self.wsd_decay_steps
            if n <= anneal_start:
                coeff = 1.0
            else:
                ratio = float(n - anneal_start) / float(self.wsd_decay_steps)
                coeff = self._decay(ratio)
        else:
            ratio = float(n - w) / float(self.lr_decay_steps - w)
            coeff = self._decay(ratio)
        return interpolate(min_lr, max_lr, coeff)

    def wd_at(self, n, start_wd, end_wd):
        """`wd` without checks: `n` a valid step count, the values as a group holds them."""
        if n > self.wd_incr_steps or self.wd_incr_style == "constant":
            return end_wd
        ratio = float(n) / float(self.wd_incr_steps)
        return interpolate(start_wd, end_wd, self._rise(ratio))

    # ------------------------------------------------------- the array formula

    def _lr_array(self, steps: np.ndarray, max_lr: float, min_lr: float) -> np.ndarray:
        out = np.empty_like(steps)
        todo = np.ones(steps.shape, dtype=bool)

        def fill(mask, value):
            out[mask] = value
            todo[mask] = False

        w = self.lr_warmup_steps
        if w > 0:
            mask = steps <= w
            fill(mask, warmup(self.init_lr, max_lr, steps[mask], float(w)))
        style = self.lr_decay_style
        if style == "constant":
            fill(todo, max_lr)
            return out
        fill(todo & (steps > self.lr_decay_steps), min_lr)
        n = steps[todo]
        if style == "inverse-square-root":
            # np.sqrt is correctly rounded; the scalar path's ``n ** 0.5`` (the C
            # library's pow) is off from it by one ulp for about 0.1% of steps. The
            # array path accepts that (a relative difference below 1e-15) rather than
            # call pow per element, which would make it ten times slower.
            lr = max_lr * max(w, 1) ** 0.5 / np.sqrt(np.maximum(n, 1.0))
            fill(todo.copy(), np.maximum(min_lr, lr))
            return out
        if style == "WSD":
            anneal_start = self.lr_decay_steps - self.wsd_decay_steps
            coeff = np.ones_like(n)
            annealing = n > anneal_start
            ratio = (n[annealing] - anneal_start) / float(self.wsd_decay_steps)
            coeff[annealing] = self._decay(ratio, ARRAY)
        else:
            ratio = (n - w) / float(self.lr_decay_steps - w)
            coeff = self._decay(ratio, ARRAY)
        fill(todo.copy(), interpolate(min_lr, max_lr, coeff))
        return out

    def _wd_array(self, steps: np.ndarray, start_wd: float, end_wd: float) -> np.ndarray:
        out = np.full_like(steps, end_wd)
        if self.wd_incr_style == "constant":
            return out
        rising = steps <= self.wd_incr_steps
        ratio = steps[rising] / float(self.wd_incr_steps)
        coeff = self._rise(ratio, ARRAY)
        out[rising] = interpolate(start_wd, end_wd, coeff)
        return out


def _optional(check):
    def check_optional(label, value):
        return None if value is None else check(label, value)

    return check_optional


_FIELD_CHECKS = {
    **dict.fromkeys(("max_lr", "init_lr", "min_lr", "start_wd", "end_wd"), check_rate),
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


def is_scalar(step) -> bool:
    return np.ndim(step) == 0 and not isinstance(step, np.ndarray)


def step_array(step) -> np.ndarray:
    """`step` as a float64 array, refusing negative, non-finite and non-numeric entries."""
    try:
        steps = np.asarray(step)
    except (TypeError, ValueError) as error:
        raise ScheduleTypeError(f"step={step!r} is not an array of numbers") from error
    if steps.dtype == bool or not (
        np.issubdtype(steps.dtype, np.integer) or np.issubdtype(steps.dtype, np.floating)
    ):
        raise ScheduleTypeError(f"step has dtype {steps.dtype}; expected integer or float steps")
    steps = steps.astype(np.float64)
    bad = ~np.isfinite(steps) | (steps < 0)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ScheduleError(
            f"step[{where}]={float(steps[index])!r} is negative or not finite; "
            "expected finite steps >= 0"
        )
    return steps
