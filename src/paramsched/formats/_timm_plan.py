"""A timm schedule in Megatron's terms (`paramsched.formats.convert.Plan`), for
``paramsched convert`` from a ``[timm]`` table.

timm's rate after ``t`` of its steps is its ``_get_lr(t)`` (before the first one, what
its constructor wrote): a linear warmup ``warmup_lr + t * ((lr - warmup_lr) /
warmup_t)``, then the schedule. Planned, where every optimizer step is one of timm's
steps (``step_on_epochs = false``, or ``updates_per_epoch = 1``):

- ``cosine`` of one cycle and ``k_decay = 1``: Megatron's cosine from ``lr`` to
  ``min_lr``, after a warmup that is a prefix (``warmup_prefix = true``, or none);
- ``poly`` of ``decay_rate = 1`` (a power of 1), likewise: Megatron's linear decay;
- ``constant``: the warmup, then ``lr`` held (Megatron's constant);
- ``wsd`` of a ``linear``, ``1-sqrt``, ``power`` (its power of 0.5) or ``cosine``
  decay: Megatron's WSD.

``cooldown_epochs`` hold ``min_lr`` after the decay (Megatron's ``--train-iters``
beyond ``--lr-decay-iters``). Anything else is refused by name in the target's words.
Whether the target's rates are timm's, to the bit or within some ulps, the comparison
of `paramsched.formats.convert` decides, step by step.

Example:
    >>> from paramsched import from_timm
    >>> plan = timm_plan(from_timm(1e-3, "cosine", num_epochs=8, warmup_epochs=2,
    ...                            warmup_prefix=True, updates_per_epoch=10,
    ...                            step_on_epochs=False), "megatron")
    >>> (plan.style, plan.warmup, plan.decay, plan.total, plan.init_lr)
    ('cosine', 20, 100, 100, 1e-05)
"""

from __future__ import annotations

from ..errors import ScheduleError
from ._stack import StackSchedule

PLANNED = "paramsched converts timm's cosine, poly of decay_rate 1, constant and wsd"
#: timm's WSD decay_fn and the Megatron WSD anneal that runs it (None: none does).
WSD_STYLES = {"linear": "linear", "1-sqrt": "minus_sqrt", "power": "minus_sqrt",
              "cosine": "cosine", "exp": None}  # fmt: skip


def _clock(a: dict, target: str) -> int:
    """How many optimizer steps one of timm's steps is: 1, or a refusal."""
    from .convert import refuse

    upe = a["updates_per_epoch"]
    if a["step_on_epochs"] and not upe:
        raise ScheduleError(
            "the timm schedule counts epochs (step_on_epochs=true and no updates_per_epoch), "
            "not optimizer steps; expected step_on_epochs=false and updates_per_epoch (the "
            "optimizer updates in an epoch); nothing written"
        )
    if a["step_on_epochs"] and upe != 1:
        raise refuse(target, f"rate stepped per epoch (step_on_epochs with updates_per_epoch "
                     f"{upe}: it changes once per {upe} steps)")  # fmt: skip
    return 1 if a["step_on_epochs"] else upe


def timm_plan(schedule: StackSchedule, target: str):
    """`schedule` (a timm schedule) as a `paramsched.formats.convert.Plan`, or a refusal
    naming what `target` cannot express."""
    from .convert import Plan, refuse

    a, sched = schedule.arguments, schedule.arguments["sched"]
    scale = _clock(a, target)
    if sched not in ("cosine", "poly", "constant", "wsd"):
        raise refuse(target, f"{sched} schedule as timm runs it (timm sched={sched!r}; {PLANNED})")
    warmup = a["warmup_epochs"] * scale
    init = a["warmup_lr"] if warmup else 0.0
    if sched == "constant":
        return Plan("constant", a["lr"], schedule.horizon, schedule.horizon, warmup,
                    init_lr=init)  # fmt: skip
    if sched == "wsd":
        t_sched = schedule.horizon - warmup - a["cooldown_epochs"] * scale
        decay = a["decay_epochs"]
        decay_t = int(round(decay * t_sched if 0 < decay < 1 else decay * scale))
        style = WSD_STYLES[a["decay_fn"]]
        if style is None:
            raise refuse(target, f"WSD anneal of {a['decay_fn']} as timm runs it (timm wsd with "
                         "decay_fn='exp': (0.1 ** frac - 0.1) / 0.9)")  # fmt: skip
        return Plan("WSD", a["lr"], schedule.horizon, warmup + t_sched, warmup, a["min_lr"],
                    init, wsd=decay_t, wsd_style=style)  # fmt: skip
    cycles = a["cycle_limit"]
    if cycles != 1:
        what = "that restarts" if cycles else "of no cycle"
        raise refuse(target, f"{sched} {what} (timm {sched} with cycle_limit {cycles}"
                     + ("" if cycles else ": min_lr throughout") + ")")  # fmt: skip
    if a["k_decay"] != 1:
        raise refuse(target, f"{sched} of t ** k / T ** k (timm {sched} with k_decay "
                     f"{a['k_decay']!r})")  # fmt: skip
    if sched == "poly" and a["decay_rate"] != 1:
        raise refuse(target, f"polynomial decay of power {a['decay_rate']!r} (timm poly with "
                     f"decay_rate {a['decay_rate']!r}; its linear decay is power 1)")  # fmt: skip
    if warmup and not a["warmup_prefix"]:
        raise refuse(target, f"warmup inside the decay (timm's warmup_prefix=false with "
                     f"warmup_epochs={a['warmup_epochs']}: its {sched} starts at step 0 under "
                     "the warmup); expected warmup_prefix=true")  # fmt: skip
    style = "cosine" if sched == "cosine" else "linear"
    decay = warmup + a["num_epochs"] * scale
    return Plan(style, a["lr"], schedule.horizon, decay, warmup, a["min_lr"], init)


__all__ = ["timm_plan"]
