"""torchtitan's schedule (``LRSchedulersContainer``), read and written as torchtitan runs it.

A ``[torchtitan]`` table of a schedule file, or `from_torchtitan`, takes the fields of
torchtitan's ``lr_scheduler`` config section (``warmup_steps``, ``total_steps``,
``decay_ratio``, ``decay_type``, ``min_lr_factor``), with ``steps`` (its
``training.steps``) and ``lr`` (the optimizer's learning rate). torchtitan builds one
``LambdaLR`` of ``linear_warmup_stable_decay``; ``lr(n)`` is the rate it has set after
``n`` optimizer steps, ``lr * factor(n)``, to the bit:

- ``T`` is ``total_steps`` (``steps`` when not given); a warmup longer than ``T`` is
  cut to ``T``, with a WARNING, as torchtitan does;
- the decay lasts ``d = round(T * decay_ratio)`` steps (Python's ``round``: half to
  even), or ``T - warmup_steps`` with no ``decay_ratio``; a warmup and decay longer
  than ``T`` cut the decay to ``T - warmup_steps``, with a WARNING, as torchtitan does;
- the stable phase lasts ``T + 1 - warmup_steps - d`` steps: one step more than the
  run has room for (torchtitan's virtual last step), so the floor is reached after
  exactly ``T`` steps, not before;
- ``factor(n)`` is ``(n + 1) / warmup_steps`` for ``n < warmup_steps`` (the warmup's
  first rate, before any step, is ``lr / warmup_steps``), ``1.0`` in the stable
  phase, then ``min_lr_factor + (1 - min_lr_factor) * f(p)`` with
  ``p = (n + 1 - (T + 1 - d)) / d`` and ``f`` ``1 - p`` (linear), ``1 - sqrt(p)``
  (sqrt) or ``0.5 * (1 + cos(pi * p))`` (cosine).

After ``T`` steps, where torchtitan does not train (``total_steps`` may not be less
than ``steps``), the rate holds ``lr * min_lr_factor``. A parameter group's ``max_lr``
is its base rate, as each group's ``initial_lr`` is ``LambdaLR``'s.

`write_torchtitan` is ``paramsched convert --to torchtitan``: the ``[torchtitan]`` table
that runs a schedule, checked step by step (`paramsched.formats.convert`).

Examples:
    >>> s = from_torchtitan(1e-3, steps=10, warmup_steps=2, decay_ratio=0.5)
    >>> [s.lr(n) for n in (0, 1, 5, 6, 9, 10)]
    [0.0005, 0.001, 0.001, 0.0008, 0.00019999999999999996, 0.0]
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass

from ..core._curve import KINDS
from ..core.units import Run
from ..errors import ScheduleError, ScheduleTypeError, check_choice
from . import _convert_io as forms
from ._stack import Formula, StackSchedule, curve, number, unknown_key, whole

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

logger = logging.getLogger("paramsched.torchtitan")
KIND = "torchtitan"
#: The table's keys: ``lr`` (the optimizer's), ``steps`` (``training.steps``) and the
#: ``lr_scheduler`` section's fields, with torchtitan's defaults.
TORCHTITAN_DEFAULTS: dict = {
    "lr": None,
    "steps": None,
    "warmup_steps": 200,
    "total_steps": None,
    "decay_ratio": None,
    "decay_type": "linear",
    "min_lr_factor": 0.0,
}
DECAY_TYPES = ("linear", "sqrt", "cosine")


def _warmup(n, base, m, warmup_steps):
    return base * ((n + 1) / warmup_steps)


def _stable(n, base, m):
    return base * 1.0


def _decay(n, base, m, kind, start, decay_steps, floor):
    progress = (n + 1 - start) / decay_steps
    if kind == "linear":
        adjustment = 1 - progress
    elif kind == "sqrt":
        adjustment = 1 - m.sqrt(progress)
    else:
        adjustment = 0.5 * (1.0 + m.cos(math.pi * progress))
    return base * (floor + (1 - floor) * adjustment)


@dataclass(frozen=True, eq=False)
class TorchtitanSchedule(StackSchedule):
    """A torchtitan schedule: its curve runs to ``total_steps`` (its `horizon`, where
    the floor is reached), its run trains ``steps`` (``training.steps``), which may be
    fewer."""

    steps: int = 0

    @property
    def run(self) -> Run:
        """One position per optimizer step, ``steps`` of them."""
        return Run(global_batch_size=1, total=f"{self.steps} steps")


def _checked(arguments: dict, prefix: str) -> dict:
    """The arguments checked and normalised (defaults filled in); errors name each key
    as `prefix` + its name."""
    for key in arguments:
        if key not in TORCHTITAN_DEFAULTS:
            raise unknown_key(prefix, key, TORCHTITAN_DEFAULTS, "a key of a torchtitan schedule")
    a = {**TORCHTITAN_DEFAULTS, **arguments}
    for key, needed in (("lr", "the optimizer's learning rate"), ("steps", "training.steps")):
        if a[key] is None:
            raise ScheduleError(f"{prefix}{key} is missing; expected {needed}")
    out = {"lr": number(f"{prefix}lr", a["lr"])}
    if out["lr"] < 0:
        raise ScheduleError(f"{prefix}lr={a['lr']!r} is negative; expected a learning rate >= 0")
    out["steps"] = whole(f"{prefix}steps", a["steps"], 1)
    out["warmup_steps"] = whole(f"{prefix}warmup_steps", a["warmup_steps"])
    total = a["total_steps"]
    out["total_steps"] = out["steps"] if total is None else whole(f"{prefix}total_steps", total, 1)
    if out["total_steps"] < out["steps"]:
        raise ScheduleError(
            f"{prefix}total_steps={total!r} is less than steps={out['steps']!r}: torchtitan "
            "carries its decay on past total_steps, below min_lr_factor (a linear or sqrt "
            "decay below zero); expected total_steps >= steps"
        )
    ratio = a["decay_ratio"]
    if ratio is not None:
        ratio = number(f"{prefix}decay_ratio", ratio)
        if not 0.0 <= ratio <= 1.0:
            raise ScheduleError(f"{prefix}decay_ratio={a['decay_ratio']!r}; expected a ratio in [0, 1]")  # fmt: skip
    out["decay_ratio"] = ratio
    out["decay_type"] = check_choice(f"{prefix}decay_type", a["decay_type"], DECAY_TYPES)
    floor = number(f"{prefix}min_lr_factor", a["min_lr_factor"])
    if not 0.0 <= floor <= 1.0:
        raise ScheduleError(
            f"{prefix}min_lr_factor={a['min_lr_factor']!r}; expected a factor in [0, 1] "
            "(the floor is lr * min_lr_factor)"
        )
    out["min_lr_factor"] = floor
    return out


def lengths(a: dict, prefix: str = "", warn: bool = True) -> tuple[int, int, int]:
    """``(warmup, stable, decay)`` steps as torchtitan's ``build`` makes them from the
    checked arguments `a`, with its WARNINGs (one line each, if `warn`) where it cuts them."""
    total, warmup, cuts = a["total_steps"], a["warmup_steps"], []
    if warmup > total:
        cuts.append(f"{prefix}warmup_steps={warmup} is more than the {total} total steps; "
                    f"torchtitan cuts the warmup to {total} steps")  # fmt: skip
        warmup = total
    if a["decay_ratio"] is None:
        decay = total - warmup
    else:
        decay = round(total * a["decay_ratio"])  # Python's round: half to even
        if warmup + decay > total:
            cuts.append(f"{prefix}decay_ratio={a['decay_ratio']!r} makes a decay of {decay} "
                        f"steps, which with the warmup of {warmup} exceeds the {total} total "
                        f"steps; torchtitan cuts the decay to {total - warmup} steps")  # fmt: skip
            decay = total - warmup
    for cut in cuts if warn else ():
        logger.warning("%s, and so does this schedule", cut)
    return warmup, total + 1 - warmup - decay, decay


def read_torchtitan(arguments, prefix: str = "") -> StackSchedule:
    """`from_torchtitan` of a table (a ``[torchtitan]`` table, a checkpoint's meaning);
    errors name each key as `prefix` + its name."""
    if not isinstance(arguments, dict):
        raise ScheduleTypeError(
            f"{prefix.rstrip('.') or KIND} is of type {type(arguments).__name__}; expected a "
            "table of torchtitan's lr_scheduler fields, steps and lr"
        )
    a = _checked(arguments, prefix)
    warmup, stable, decay = lengths(a, prefix)
    held = warmup + stable  # torchtitan's warmup_stable_steps: where the decay's p counts from
    pieces = [
        (warmup - 1, Formula("warmup", _warmup, (warmup,))),
        (held - 1, Formula("stable", _stable)),
    ]
    final = "max_lr"
    if decay:
        args = (a["decay_type"], held, decay, a["min_lr_factor"])
        pieces.append((held + decay - 1, Formula(f"{a['decay_type']} decay", _decay, args)))
        final = f"{a['min_lr_factor']!r} * max_lr"
    return TorchtitanSchedule.of_curve(KIND, a, curve(pieces, final), a["total_steps"], a["lr"],
                                       steps=a["steps"])  # fmt: skip


def from_torchtitan(
    lr,
    steps,
    warmup_steps=200,
    total_steps=None,
    decay_ratio=None,
    decay_type="linear",
    min_lr_factor=0.0,
) -> StackSchedule:
    """The schedule torchtitan's ``LRSchedulersContainer.Config(...).build(optimizers,
    training_steps=steps)`` sets, as a paramsched schedule.

    Args:
        lr: The optimizer's learning rate.
        steps: ``training.steps``, the steps the run trains for.
        warmup_steps: As for torchtitan's ``lr_scheduler`` section (its default, 200).
        total_steps: As for torchtitan: the schedule's length, ``steps`` if None.
        decay_ratio: As for torchtitan: the share of ``total_steps`` that decays, at the
            end; None decays from the warmup's end.
        decay_type: ``"linear"``, ``"sqrt"`` or ``"cosine"``.
        min_lr_factor: The floor, as a factor of each group's rate.

    Returns:
        A schedule whose ``lr(n)`` equals torchtitan's rate after ``n`` steps.

    Examples:
        >>> s = from_torchtitan(1e-3, steps=4, warmup_steps=0, decay_type="cosine")
        >>> [s.lr(n) for n in range(5)]
        [0.001, 0.0008535533905932737, 0.0005, 0.00014644660940672628, 0.0]
    """
    return read_torchtitan(
        {
            "lr": lr,
            "steps": steps,
            "warmup_steps": warmup_steps,
            "total_steps": total_steps,
            "decay_ratio": decay_ratio,
            "decay_type": decay_type,
            "min_lr_factor": min_lr_factor,
        }
    )


#: Megatron's WSD anneals as torchtitan's ``decay_type`` (``exponential``: none).
WSD_DECAYS = {"linear": "linear", "cosine": "cosine", "minus_sqrt": "sqrt"}


def _refuse(what: str) -> ScheduleError:
    return ScheduleError(f"torchtitan has no {what}; nothing written")


def _floor_factor(schedule, plan) -> float:
    """``min_lr_factor`` for the source's floor: transformers' own ratio where it has one
    (``lr * ratio / lr`` need not be ``ratio``), else ``min_lr / lr``."""
    if isinstance(schedule, StackSchedule) and schedule.kind == "hf":
        a = schedule.arguments
        k = a["scheduler_specific_kwargs"]
        if a["name"] == "warmup_stable_decay":
            return k["min_lr_ratio"]
        if a["name"] == "cosine_with_min_lr":
            return k["min_lr_rate"] if k["min_lr_rate"] is not None else k["min_lr"] / a["lr"]
    return plan.min_lr / plan.max_lr if plan.max_lr else 0.0


def torchtitan_table(schedule) -> dict:
    """The ``[torchtitan]`` table that should run `schedule`, or a refusal naming what
    torchtitan cannot express (the table is checked step by step by `write_torchtitan`)."""

    from .convert import plan_of

    if isinstance(schedule, StackSchedule) and schedule.kind == KIND:
        a = schedule.arguments
        return {k: v for k, v in a.items() if k != "total_steps" or v != a["steps"]}
    if isinstance(schedule, StackSchedule) and schedule.kind == "hf":
        if schedule.arguments["name"] == "cosine_warmup_with_min_lr":
            raise _refuse("decay that falls from the step its warmup ends (transformers' "
                          "cosine_warmup_with_min_lr; torchtitan holds the peak one step there)")  # fmt: skip
    run = schedule.run
    if run is not None and (run.rampup_batch_size or run.batch_size_schedule):
        raise _refuse("batch-size schedule (it counts optimizer steps of one batch size, and "
                      "the source's batch size changes: a ramp-up or stages)")  # fmt: skip
    plan = plan_of(schedule, "torchtitan")
    if plan.wd is not None and plan.wd[0] != plan.wd[1]:
        raise _refuse(f"weight decay schedule (the source's goes from {plan.wd[0]!r} to "
                      f"{plan.wd[1]!r}; torchtitan leaves the optimizer's)")  # fmt: skip
    steps = forms.whole_steps(plan, _refuse)
    if steps["warmup"]:
        raise _refuse(f"warmup that starts at {plan.init_lr!r} (its rate after n < "
                      "warmup_steps steps is lr * (n + 1) / warmup_steps: lr / warmup_steps "
                      "before the first step)")  # fmt: skip
    if plan.style == "inverse-square-root":
        raise _refuse("inverse square root decay")
    if plan.style == "WSD" and plan.wsd_style not in WSD_DECAYS:
        raise _refuse(f"{plan.wsd_style} decay")
    table = {"lr": plan.max_lr, "steps": steps["total"], "warmup_steps": 0}
    if plan.style == "constant":
        return {**table, "decay_ratio": 0.0}
    end = steps["decay"]
    if end < steps["total"]:
        raise _refuse(f"floor held after its decay (the source's decay ends at step {end}, its "
                      f"training at step {steps['total']}; torchtitan's decay ends at "
                      "total_steps, which is at least steps)")  # fmt: skip
    factor = _floor_factor(schedule, plan)
    if not 0.0 <= factor <= 1.0:
        raise _refuse(f"floor of {plan.min_lr!r} for a rate of {plan.max_lr!r} (its "
                      "min_lr_factor is in [0, 1])")  # fmt: skip
    if end != steps["total"]:
        table["total_steps"] = end
    if plan.style == "WSD":
        ratio = steps["wsd"] / end
        if round(end * ratio) != steps["wsd"]:
            raise _refuse(f"decay_ratio that rounds to {steps['wsd']} steps of {end}")
        table.update(decay_ratio=ratio, decay_type=WSD_DECAYS[plan.wsd_style])
    else:
        table["decay_type"] = plan.style
    if factor:
        table["min_lr_factor"] = factor
    return table


def torchtitan_plan(schedule: StackSchedule, target: str):
    """A torchtitan schedule in Megatron's terms (`paramsched.formats.convert.Plan`) for
    ``convert --to megatron|hf|toml``: a WSD whose anneal is torchtitan's decay, or a
    refusal naming what `target` cannot express (torchtitan's warmup)."""
    from .convert import STACK_NAMES, Plan

    a = schedule.arguments
    warmup, _, decay = lengths(a, warn=False)  # warned when it was read
    if warmup > 1:  # a warmup of one step sets lr * (1 / 1) at once: the peak, held
        raise ScheduleError(
            f"{STACK_NAMES[target]} has no warmup that starts at lr / warmup_steps before the "
            "first step (torchtitan's rate after n < warmup_steps steps is lr * (n + 1) / "
            "warmup_steps); nothing written"
        )
    total = a["total_steps"]
    plan = Plan("constant", a["lr"], a["steps"], total, min_lr=a["lr"] * a["min_lr_factor"])
    if decay:
        plan.style, plan.wsd = "WSD", decay
        plan.wsd_style = {"sqrt": "minus_sqrt"}.get(a["decay_type"], a["decay_type"])
    return plan


def write_torchtitan(schedule, within_ulps: int | None = None) -> str:
    """``paramsched convert --to torchtitan``: the ``[torchtitan]`` table as TOML, read
    back and compared with the source step by step (`paramsched.formats.convert.compare`).

    Examples:
        >>> from paramsched import from_hf
        >>> print(write_torchtitan(from_hf("cosine", 1e-3, 0, 100)), end="")
        [torchtitan]
        lr = 0.001
        steps = 100
        warmup_steps = 0
        decay_type = "cosine"
    """
    from ..recipe import schedule_from_data
    from ._convert_io import toml_text
    from .convert import compare

    text = toml_text({KIND: torchtitan_table(schedule)})
    try:
        target = schedule_from_data(tomllib.loads(text))
    except ScheduleError as error:
        raise ScheduleError(f"torchtitan refuses this schedule: {error}") from None
    compare(schedule, target, KIND, within_ulps)
    return text


KINDS[KIND] = lambda meaning, run: read_torchtitan(meaning)

__all__ = [
    "DECAY_TYPES",
    "TORCHTITAN_DEFAULTS",
    "from_torchtitan",
    "read_torchtitan",
    "torchtitan_plan",
    "torchtitan_table",
    "write_torchtitan",
]
