"""Hugging Face transformers' schedules (``get_scheduler``), read as transformers runs them.

A ``[hf]`` table of a schedule file, or `from_hf`, takes ``get_scheduler``'s
arguments: ``name``, ``num_warmup_steps``, ``num_training_steps``,
``scheduler_specific_kwargs``, and ``lr``, the optimizer's learning rate. The
schedule's ``lr(n)`` is the rate transformers' ``LambdaLR`` has set after ``n``
calls of ``scheduler.step()``, ``base_lr * lr_lambda(n)``, to the bit: each branch
of each lambda is one segment whose formula performs transformers' operations in
its order (`paramsched.formats._stack`). A parameter group's ``max_lr`` is its
``base_lr``. Positions are optimizer steps, whole numbers.

`HF_SCHEDULES` is the table: each name, the keyword arguments it takes with
transformers' defaults, and the function that builds its pieces.
``reduce_lr_on_plateau`` and ``greedy`` follow a metric, not a clock, and are refused.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from ..core._curve import KINDS
from ..errors import ScheduleError, ScheduleTypeError, check_choice
from . import _hf_lambdas as lambdas
from ._stack import END, Formula, StackSchedule, curve, number, unknown_key, whole

KIND = "hf"
#: The names that follow a metric, not a clock, and why they are refused.
METRIC_SCHEDULES = {
    "reduce_lr_on_plateau": "it lowers the rate when a metric stops improving, not by a clock",
    "greedy": "it changes the rate by the training loss, not by a clock",
}
#: The table's keys, as ``get_scheduler`` names its arguments.
HF_KEYS = ("name", "lr", "num_warmup_steps", "num_training_steps", "scheduler_specific_kwargs")
WSD_TYPES = ("linear", "cosine", "1-sqrt")


def _warmup_piece(w: int) -> list:
    """transformers' linear warmup, ``float(n) / float(max(1, w))``, for ``n < w``."""
    return [(w - 1, Formula("warmup", lambdas.warmup, (float(max(1, w)),)))]


def _scaled(ratio: float) -> str:
    return f"{ratio!r} * max_lr"


# Each builder takes the checked arguments and returns (pieces, final value, horizon).


def _build_linear(a):
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    decay = Formula("linear", lambdas.linear, (t, float(max(1, t - w))))
    return [*_warmup_piece(w), (t, decay)], 0.0, t


def _build_cosine(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    decay = Formula("cosine", lambdas.cosine, (w, float(max(1, t - w)), k["num_cycles"]))
    return [*_warmup_piece(w), (END, decay)], 0.0, t


def _build_restarts(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    length = max(1, t - w)  # progress < 1.0 up to w + length - 1; then 0.0
    decay = Formula("cosine_with_restarts", lambdas.restarts, (w, float(length), k["num_cycles"]))
    return [*_warmup_piece(w), (w + length - 1, decay)], 0.0, t


def _build_polynomial(a):
    w, t, k, lr = (
        a["num_warmup_steps"],
        a["num_training_steps"],
        a["scheduler_specific_kwargs"],
        a["lr"],
    )
    lr_end, power = k["lr_end"], k["power"]
    if not lr > lr_end:
        raise ScheduleError(
            f"scheduler_specific_kwargs.lr_end={lr_end!r} with lr={lr!r}; "
            "transformers requires lr_end < lr"
        )
    if t == w:
        raise ScheduleError(
            f"num_training_steps={t!r} equals num_warmup_steps; transformers' polynomial "
            "divides by zero there: expected num_training_steps > num_warmup_steps"
        )
    args = (w, t - w, lr - lr_end, power, lr_end, lr)
    return (
        [*_warmup_piece(w), (t, Formula("polynomial", lambdas.polynomial, args))],
        _scaled(lr_end / lr),
        t,
    )


def _build_constant(a):
    t = a["num_training_steps"]
    return [(max(t or 0, 0), Formula("constant", lambdas.one))], "max_lr", t or 0


def _build_constant_with_warmup(a):
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    return [*_warmup_piece(w), (max(t or 0, w), Formula("constant", lambdas.one))], "max_lr", t or w


def _build_inverse_sqrt(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    timescale = k["timescale"]
    if timescale is None:
        timescale = k["timescale"] = w or 10_000  # transformers' default, written out
    decay = Formula("inverse_sqrt", lambdas.inverse_sqrt, (timescale - w, timescale))
    return [*_warmup_piece(w), (END, decay)], 0.0, t if t is not None else w + timescale


def _min_lr_rate(a) -> float:
    k = a["scheduler_specific_kwargs"]
    if (k["min_lr"] is None) == (k["min_lr_rate"] is None):
        raise ScheduleError(
            "scheduler_specific_kwargs has "
            + (
                "both min_lr and min_lr_rate"
                if k["min_lr"] is not None
                else "neither min_lr nor min_lr_rate"
            )
            + f" for {a['name']!r}; expected exactly one"
        )
    if k["min_lr"] is not None and not k["min_lr"] <= a["lr"] > 0:
        raise ScheduleError(
            f"scheduler_specific_kwargs.min_lr={k['min_lr']!r} with lr={a['lr']!r}; "
            "expected 0 <= min_lr <= lr and lr > 0 (transformers divides min_lr by lr)"
        )
    return k["min_lr"] / a["lr"] if k["min_lr"] is not None else k["min_lr_rate"]


def _build_cosine_with_min_lr(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    rate = _min_lr_rate(a)
    decay = Formula(
        "cosine_with_min_lr", lambdas.cosine_min, (w, float(max(1, t - w)), k["num_cycles"], rate)
    )
    return [*_warmup_piece(w), (END, decay)], 0.0, t


def _build_cosine_warmup_with_min_lr(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    rate, start, wf = _min_lr_rate(a), k["warmup_lr_rate"], float(w)
    if start is None:
        warm = Formula("warmup", lambdas.warmup_plus_one, (max(1.0, wf),))
    else:
        warm = Formula("warmup", lambdas.warmup_from_rate, (start, max(1, wf - 1)))
    args = (wf, max(1.0, float(t) - wf), k["num_cycles"], rate)
    decay = Formula("cosine_warmup_with_min_lr", lambdas.cosine_min_shifted, args)
    return [(w - 1, warm), (END, decay)], 0.0, t


def _build_wsd(a):
    w, t, k = a["num_warmup_steps"], a["num_training_steps"], a["scheduler_specific_kwargs"]
    d, s, ratio = k["num_decay_steps"], k["num_stable_steps"], k["min_lr_ratio"]
    if d is None:
        raise ScheduleError(
            "scheduler_specific_kwargs.num_decay_steps is missing; warmup_stable_decay needs it"
        )
    if s is None and t is None:
        raise ScheduleError(
            "num_training_steps is missing, and so is scheduler_specific_kwargs."
            "num_stable_steps; warmup_stable_decay needs one of them"
        )
    if s is None:
        s = t - w - d
        if s < 0:
            raise ScheduleError(
                f"num_training_steps={t!r} is less than num_warmup_steps + num_decay_steps "
                f"({w} + {d}); expected room for them (a negative stable phase)"
            )
    elif t is not None and w + s + d != t:
        raise ScheduleError(
            f"num_training_steps={t!r} but num_warmup_steps + num_stable_steps + num_decay_steps "
            f"is {w + s + d!r}; transformers uses num_stable_steps: expected them to agree, or one"
        )
    k["num_stable_steps"], a["num_training_steps"] = s, w + s + d  # one spelling
    warm = Formula(
        f"{k['warmup_type']} warmup",
        lambdas.wsd_warmup,
        (k["warmup_type"], float(max(1, w)), ratio),
    )
    decay_args = (k["decay_type"], w + s, float(max(1, d)), k["num_cycles"], ratio)
    pieces = [
        (w - 1, warm),
        (w + s - 1, Formula("stable", lambdas.one)),
        (w + s + d - 1, Formula(f"{k['decay_type']} decay", lambdas.wsd_decay, decay_args)),
    ]
    return pieces, _scaled(ratio), w + s + d


@dataclass(frozen=True)
class HFSchedule:
    """One of transformers' names: its keyword arguments (transformers' defaults) and
    what it needs.

    Attributes:
        build: ``arguments -> (pieces, final, horizon)``.
        kwargs: ``{keyword: default}`` for ``scheduler_specific_kwargs``.
        warmup: Whether ``num_warmup_steps`` is used (``constant`` ignores it).
        training: ``"required"``, ``"optional"`` or ``"unused"`` for ``num_training_steps``.
    """

    build: Callable
    kwargs: dict
    warmup: bool = True
    training: str = "required"


_CYCLES = {"num_cycles": 0.5}
_MIN_LR = {"num_cycles": 0.5, "min_lr": None, "min_lr_rate": None}
#: transformers' scheduler names, each as one `HFSchedule`.
HF_SCHEDULES: dict[str, HFSchedule] = {
    "linear": HFSchedule(_build_linear, {}),
    "cosine": HFSchedule(_build_cosine, _CYCLES),
    "cosine_with_restarts": HFSchedule(_build_restarts, {"num_cycles": 1}),
    "polynomial": HFSchedule(_build_polynomial, {"lr_end": 1e-7, "power": 1.0}),
    "constant": HFSchedule(_build_constant, {}, warmup=False, training="unused"),
    "constant_with_warmup": HFSchedule(_build_constant_with_warmup, {}, training="unused"),
    "inverse_sqrt": HFSchedule(_build_inverse_sqrt, {"timescale": None}, training="unused"),
    "cosine_with_min_lr": HFSchedule(_build_cosine_with_min_lr, _MIN_LR),
    "cosine_warmup_with_min_lr": HFSchedule(
        _build_cosine_warmup_with_min_lr, {**_MIN_LR, "warmup_lr_rate": None}
    ),
    "warmup_stable_decay": HFSchedule(
        _build_wsd,
        {
            "num_decay_steps": None,
            "num_stable_steps": None,
            "warmup_type": "linear",
            "decay_type": "cosine",
            "min_lr_ratio": 0.0,
            "num_cycles": 0.5,
        },
        training="optional",
    ),
}
_STEP_KWARGS = ("timescale", "num_decay_steps", "num_stable_steps")
_TYPE_KWARGS = ("warmup_type", "decay_type")
_RATIO_KWARGS = ("min_lr_rate", "warmup_lr_rate", "min_lr_ratio")


def _kwargs(name: str, given, where: str) -> dict:
    spec = HF_SCHEDULES[name].kwargs
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ScheduleTypeError(
            f"{where}={given!r} is of type {type(given).__name__}; expected a table of keywords"
        )
    checked = dict(spec)
    for key, value in given.items():
        label = f"{where}.{key}"
        if key not in spec:
            close = difflib.get_close_matches(str(key), spec, n=1)
            raise ScheduleError(
                f"{label} is not an argument of {name!r}; expected "
                + (", ".join(spec) or "none")
                + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        if value is None:
            continue
        if key in _STEP_KWARGS:
            value = whole(label, value, 1 if key == "timescale" else 0)
        elif key in _TYPE_KWARGS:
            value = check_choice(label, value, WSD_TYPES)
        else:
            value = number(label, value)
            if key in _RATIO_KWARGS and not 0.0 <= value <= 1.0:
                raise ScheduleError(f"{label}={value!r}; expected a ratio in [0, 1]")
            if key in ("lr_end", "min_lr", "power") and value < 0:
                raise ScheduleError(f"{label}={value!r} is negative; expected a number >= 0")
        checked[key] = value
    return checked


def hf_arguments(arguments: dict, prefix: str = "") -> dict:
    """`get_scheduler`'s arguments checked and normalised (defaults filled in), the
    schedule's meaning; errors name the key as `prefix` + its name."""
    unknown = [key for key in arguments if key not in HF_KEYS]
    if unknown:
        raise unknown_key(prefix, unknown[0], HF_KEYS, "an argument of get_scheduler")
    for key in ("name", "lr"):
        if arguments.get(key) is None:
            raise ScheduleError(f"{prefix}{key} is missing; expected {_NEEDED[key]}")
    name = arguments["name"]
    if isinstance(name, str) and str.__str__(name) in METRIC_SCHEDULES:
        raise ScheduleError(
            f"{prefix}name={str.__str__(name)!r} is not a schedule of steps: "
            f"{METRIC_SCHEDULES[str.__str__(name)]}; paramsched reads schedules that follow a clock"
        )
    name = check_choice(f"{prefix}name", name, HF_SCHEDULES)
    spec = HF_SCHEDULES[name]
    lr = number(f"{prefix}lr", arguments["lr"])
    if lr < 0:
        raise ScheduleError(f"{prefix}lr={lr!r} is negative; expected a learning rate >= 0")
    a = {"name": name, "lr": lr}
    for key in ("num_warmup_steps", "num_training_steps"):
        value = arguments.get(key)
        a[key] = None if value is None else whole(f"{prefix}{key}", value)
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    if not spec.warmup and w:
        raise ScheduleError(
            f"{prefix}num_warmup_steps={w!r} with name={name!r}, which transformers runs "
            "without a warmup; expected 'constant_with_warmup', or no num_warmup_steps"
        )
    if spec.warmup and w is None:
        raise ScheduleError(f"{prefix}num_warmup_steps is missing; {name!r} requires it")
    if spec.training == "required" and t is None:
        raise ScheduleError(f"{prefix}num_training_steps is missing; {name!r} requires it")
    if spec.warmup and t is not None and w > t:
        raise ScheduleError(
            f"{prefix}num_warmup_steps={w!r} is greater than num_training_steps={t!r}; "
            "expected a warmup within the training"
        )
    where = f"{prefix}scheduler_specific_kwargs"
    given = arguments.get("scheduler_specific_kwargs")
    if not spec.kwargs and given:
        raise ScheduleError(
            f"{where}={given!r} for {name!r}, which get_scheduler gives no keywords; expected none"
        )
    a["num_warmup_steps"] = w or 0
    a["scheduler_specific_kwargs"] = _kwargs(name, given, where)
    return a


_NEEDED = {"name": "one of " + ", ".join(HF_SCHEDULES), "lr": "the optimizer's learning rate"}


def from_hf(
    name,
    lr,
    num_warmup_steps=None,
    num_training_steps=None,
    scheduler_specific_kwargs=None,
) -> StackSchedule:
    """The schedule transformers' ``get_scheduler`` makes, as a paramsched schedule.

    Args:
        name: One of `HF_SCHEDULES` (a ``SchedulerType`` member is taken too).
        lr: The optimizer's learning rate (``optimizer.defaults["lr"]``).
        num_warmup_steps: As for ``get_scheduler``.
        num_training_steps: As for ``get_scheduler``.
        scheduler_specific_kwargs: As for ``get_scheduler``: the name's keywords.

    Returns:
        A schedule whose ``lr(n)`` equals transformers' rate after ``n`` steps.

    Examples:
        >>> s = from_hf("cosine", lr=1e-3, num_warmup_steps=10, num_training_steps=110)
        >>> s.lr(5), s.lr(10), s.lr(60), s.lr(110)
        (0.0005, 0.001, 0.0005, 0.0)
    """
    arguments = {
        "name": name,
        "lr": lr,
        "num_warmup_steps": num_warmup_steps,
        "num_training_steps": num_training_steps,
        "scheduler_specific_kwargs": scheduler_specific_kwargs,
    }
    return read_hf(arguments)


def read_hf(arguments, prefix: str = "") -> StackSchedule:
    """`from_hf` of a table of `get_scheduler`'s arguments (a ``[hf]`` table, a
    checkpoint's meaning); errors name each key as `prefix` + its name."""
    if not isinstance(arguments, dict):
        raise ScheduleTypeError(
            f"{prefix.rstrip('.') or 'hf'} is of type {type(arguments).__name__}; "
            "expected a table of get_scheduler's arguments"
        )
    a = hf_arguments(arguments, prefix)
    try:
        pieces, final, horizon = HF_SCHEDULES[a["name"]].build(a)
    except ScheduleError as error:
        raise type(error)(f"{prefix}{error}") from None
    return StackSchedule.of_curve(KIND, a, curve(pieces, final), horizon, a["lr"])


KINDS[KIND] = lambda meaning, run: read_hf(meaning)

__all__ = ["HF_SCHEDULES", "METRIC_SCHEDULES", "from_hf", "hf_arguments", "read_hf"]
