"""``paramsched convert FILE --to olmo_core``: a schedule as an ``[olmo_core]`` table (TOML).

A warmup-then-decay schedule (transformers', Megatron's, or phases that are one) is
written as OLMo-core's ``ComposableScheduler``: a first stage of one step (OLMo-core's
trainer counts the step it is taking, so the rate step ``n + 1`` uses is its position
``n + 1``, and the stage at position 0 is never used), the warmup as a linear stage
from the start rate to the peak (``end_lr_fraction = 1.0``, each group's base rate),
a stable stage for WSD, and the decay as a linear or cosine stage to the floor, which
then holds; a constant schedule without warmup is ``ConstantScheduler``. An
``[olmo_core]`` source is written as its own table.

What is written is read back through `paramsched.formats.olmo_core` (equal to
OLMo-core's code, by the differential tests) and the rate each optimizer step of the
run uses is compared with ``==`` to the source's; the first step that differs refuses
it, unless ``within_ulps`` accepts it (with one WARNING). The rate after the run's last
step is not compared: OLMo-core's trainer sets none. Refused, naming what OLMo-core
lacks: exponential and 1-sqrt anneals, an inverse square root, a batch-size schedule,
a weight-decay schedule, lengths that are not whole steps.

Examples:
    >>> from paramsched import from_hf
    >>> print(olmo_core_text(from_hf("constant", 1e-3, None, 10)), end="")
    [olmo_core]
    scheduler = "ConstantScheduler"
    lr = 0.001
    max_steps = 10
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ScheduleError
from ..preview.points import step_curve
from . import _convert_io as forms
from .olmo_core import OlmoCoreSchedule, read_olmo_core

logger = logging.getLogger("paramsched.convert")
NAME = "OLMo-core"
SHAPES = ("linear", "cosine")


def _refuse(what: str) -> ScheduleError:
    return ScheduleError(f"{NAME} has no {what}; nothing written")


def olmo_core_table(schedule) -> dict:
    """The ``[olmo_core]`` table that runs `schedule` (not yet compared)."""
    from .convert import plan_of

    if isinstance(schedule, OlmoCoreSchedule):
        return dict(schedule.arguments)
    run = schedule.run
    if run is not None and run.counts_tokens:
        raise ScheduleError("the source's clock counts the tokens each step consumed, which "
                            f"{NAME}'s token units fix per step (tokens_per_batch); nothing written")  # fmt: skip
    if run is not None and (run.rampup_batch_size or run.batch_size_schedule):
        raise _refuse("batch-size schedule for its scheduler (it counts steps or tokens at one rate)")  # fmt: skip
    try:
        plan = plan_of(schedule, "olmo_core")
    except ScheduleError as error:  # the plan is in Megatron's terms: what it lacks, so do we
        raise type(error)(str(error).replace("Megatron has no", f"{NAME} has no")) from None
    if plan.wd is not None and plan.wd[0] != plan.wd[1]:
        raise _refuse(f"weight decay schedule (the source's goes from {plan.wd[0]!r} to {plan.wd[1]!r})")  # fmt: skip
    steps = forms.whole_steps(plan, _refuse)
    table = {"scheduler": "ComposableScheduler", "lr": plan.max_lr, "max_steps": steps["total"]}
    w, d = steps["warmup"], steps["decay"]
    if plan.style == "constant" and not w:
        table["scheduler"] = "ConstantScheduler"
        return table
    if plan.style not in ("linear", "cosine", "constant", "WSD"):
        raise _refuse(f"{plan.style} decay")
    stages = [{"duration": 1, "end_lr": plan.init_lr} if w else {"duration": 1, "end_lr_fraction": 1.0}]  # fmt: skip
    if w:
        stages.append({"duration": w, "end_lr_fraction": 1.0})
    if plan.style == "WSD":
        if plan.wsd_style not in SHAPES:
            raise _refuse(f"{plan.wsd_style} anneal (its stages are linear or cosine)")
        if d - steps["wsd"] - w > 0:
            stages.append({"duration": d - steps["wsd"] - w, "end_lr_fraction": 1.0})
        stages.append({"duration": steps["wsd"], "shape": plan.wsd_style, "end_lr": plan.min_lr})
    elif plan.style != "constant" and d > w:
        stages.append({"duration": d - w, "shape": plan.style, "end_lr": plan.min_lr})
    table["stages"] = [s for s in stages if s["duration"] > 0]
    return table


def compare(source, target, within_ulps: int | None) -> None:
    """Refuses `target` unless the rate each optimizer step of the source's run uses is
    the source's (within `within_ulps`, with one WARNING)."""
    curve = step_curve(source)
    if curve is None:
        raise ScheduleError("the source has no optimizer steps to compare (no global_batch_size, a "
                            "token clock, or over 10,000,000 steps); nothing written")  # fmt: skip
    steps, samples = curve[0][:-1], curve[1][:-1]  # the rates the run's steps use
    expected, got = source.lr(samples), target.lr(steps)
    if len(target.lr(np.arange(target.horizon))) != len(steps):
        raise ScheduleError(f"{NAME}'s trainer runs {target.horizon} steps, the source "
                            f"{len(steps)}; nothing written")  # fmt: skip
    forms.judge(NAME, expected, got, within_ulps)


def olmo_core_text(schedule, within_ulps: int | None = None) -> str:
    """`schedule` as an ``[olmo_core]`` table (TOML), only where OLMo-core runs it."""
    table = olmo_core_table(schedule)
    first = ("scheduler", "lr", "units", "max_steps", "max_tokens", "tokens_per_batch")
    table = {**{k: table[k] for k in first if k in table}, **table}
    if isinstance(schedule, OlmoCoreSchedule):
        return forms.toml_text({"olmo_core": table})  # its own table
    try:
        target = read_olmo_core(table)
    except ScheduleError as error:
        raise ScheduleError(f"{NAME} refuses this schedule: {error}; nothing written") from None
    compare(schedule, target, within_ulps)
    return forms.toml_text({"olmo_core": table})


__all__ = ["olmo_core_table", "olmo_core_text"]
