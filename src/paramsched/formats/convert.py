"""A schedule in another stack's words, only where that stack runs it to the bit.

`convert` writes Megatron's flags (``megatron``), transformers' ``get_scheduler`` arguments
and the optimizer's ``lr`` as JSON (``hf``: the keys of an ``[hf]`` table), a schedule file
(``toml``: phases where they give the same rates, else the source's own table), or a
``[torchtitan]`` table (``torchtitan``). What is written is read back through paramsched's
reader for the target (equal to the target's code, by the differential tests) and its lr
after every optimizer step of the run compared with ``==`` to the source's (Megatron's
weight decay too): the first step that differs refuses it, with both rates and their
distance in ulps, unless ``within_ulps`` accepts it (with one WARNING). What a target cannot
express is refused by name. `MAPPINGS` is the one table between the stacks' names.

Examples:
    >>> from paramsched import from_hf
    >>> print(convert(from_hf("cosine", 1e-3, 0, 100), "megatron"))
    --lr 0.001 --min-lr 0.0 --lr-decay-style cosine --train-iters 100
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..core.phases import PhaseSchedule
from ..core.schedule import Schedule
from ..errors import ScheduleError, check_choice
from ..preview.points import step_curve, total_samples
from . import _convert_io as forms
from ._convert_io import MAX_ULPS, TARGETS
from ._olmo_write import olmo_core_text
from ._stack import StackSchedule
from ._timm_plan import timm_plan
from .torchtitan import torchtitan_plan, write_torchtitan

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

logger = logging.getLogger("paramsched.convert")
STACK_NAMES = {"megatron": "Megatron", "hf": "transformers", "toml": "the phases file",
               "torchtitan": "torchtitan", "olmo_core": "OLMo-core"}  # fmt: skip


@dataclass(frozen=True)
class Mapping:
    """transformers' name `hf` and Megatron's ``--lr-decay-style`` `style` that runs it
    (None: none does); `needs`, the ``scheduler_specific_kwargs`` it requires, each with
    what Megatron lacks otherwise; `floor`, whether it decays to a floor of its own (None:
    only read, never written); `warmup`, whether it has a warmup."""

    hf: str
    style: str | None
    needs: dict = field(default_factory=dict)
    floor: bool | None = False
    warmup: bool = True


_HALF = {"num_cycles": (0.5, "cosine of other than half a cycle")}
#: transformers' names and Megatron's styles, both ways (written: the first that fits).
MAPPINGS = (
    Mapping("linear", "linear"),
    Mapping("polynomial", "linear", {"power": (1.0, "polynomial decay")}, floor=True),
    Mapping("cosine", "cosine", _HALF),
    Mapping("cosine_with_min_lr", "cosine", _HALF, floor=True),
    Mapping("cosine_with_restarts", "cosine", {"num_cycles": (1, "restarts")}, floor=None),
    Mapping("constant", "constant", warmup=False),
    Mapping("constant_with_warmup", "constant"),
    Mapping("inverse_sqrt", "inverse-square-root"),
    Mapping("warmup_stable_decay", "WSD", {"warmup_type": ("linear", "warmup but a linear one")}),
    Mapping("cosine_warmup_with_min_lr", None, {"": (None, "warmup that starts at (1 / w) * lr")}),
)
#: Megatron's WSD anneals as transformers' ``decay_type`` (None: transformers has none).
WSD_DECAYS = {"linear": "linear", "cosine": "cosine", "minus_sqrt": "1-sqrt", "exponential": None}
MEGATRON_DECAYS = ("linear", "cosine", "inverse-square-root")


@dataclass
class Plan:
    """A warmup-then-decay schedule in Megatron's terms, lengths in samples at `batch`
    samples per step (`batch` None: the source has no batch size of its own)."""

    style: str
    max_lr: float
    total: int
    decay: int | float
    warmup: int | float = 0
    min_lr: float = 0.0
    init_lr: float = 0.0
    wsd: int | None = None
    wsd_style: str | None = None
    batch: int | None = None
    wd: tuple | None = None  # (start, end, style, steps)
    ramp: list | None = None  # Megatron's --rampup-batch-size, in samples


def refuse(target: str, what: str) -> ScheduleError:
    return ScheduleError(f"{STACK_NAMES[target]} has no {what}; nothing written")


def _plan_of_hf(a: dict, target: str) -> Plan:
    name, k, lr = a["name"], a["scheduler_specific_kwargs"], a["lr"]
    mapping = next(m for m in MAPPINGS if m.hf == name)
    for key, (value, what) in mapping.needs.items():
        if mapping.style is None or k.get(key) != value:
            raise refuse("megatron", what + (f" ({name} with {key}={k.get(key)!r})" if key else ""))
    w, t = a["num_warmup_steps"], a["num_training_steps"]
    plan = Plan(mapping.style, lr, t, t, w)
    if name == "polynomial":
        plan.min_lr = k["lr_end"]
    elif name == "cosine_with_min_lr":
        plan.min_lr = k["min_lr"] if k["min_lr"] is not None else lr * k["min_lr_rate"]
    elif name == "inverse_sqrt":
        if k["timescale"] != w or not w:
            raise refuse("megatron", f"inverse square root of timescale {k['timescale']} after "
                         f"a warmup of {w} steps (its timescale is its warmup, of >= 1)")  # fmt: skip
        plan.total = plan.decay = t if t is not None else w + k["timescale"]
    elif name == "warmup_stable_decay":
        style = {v: s for s, v in WSD_DECAYS.items() if v}[k["decay_type"]]
        if style == "cosine" and k["num_cycles"] != 0.5:
            raise refuse("megatron", f"WSD cosine anneal of num_cycles={k['num_cycles']!r}")
        plan.min_lr = plan.init_lr = lr * k["min_lr_ratio"]
        plan.wsd, plan.wsd_style = k["num_decay_steps"], style
    if not plan.total:
        raise ScheduleError(f"hf {name} has no num_training_steps: the run has no length to "
                            "convert; expected num_training_steps")  # fmt: skip
    return plan


def _plan_of_megatron(s: Schedule) -> Plan:
    wd = None if s.start_wd is None else (s.start_wd, s.end_wd, s.wd_incr_style, s.wd_incr_steps)
    ramp = s.run.rampup_batch_size
    if s.run.batch_size_schedule or ramp and not isinstance(ramp[2], int):
        raise ScheduleError("paramsched writes Megatron's flags for one batch size or a ramp-up in "
                            "samples; the source has stages or a ramp in tokens; nothing written")  # fmt: skip
    return Plan(s.lr_decay_style, s.max_lr, int(total_samples(s)), s.lr_decay_steps,
                s.lr_warmup_steps, s.min_lr, s.init_lr, s.wsd_decay_steps, s.lr_wsd_decay_style,
                s.run.global_batch_size, wd, ramp and list(ramp))  # fmt: skip


def _plan_of_phases(s: PhaseSchedule, target: str) -> Plan:
    """The phases as Megatron's warmup and one decay style, or a refusal naming the
    first phase Megatron cannot run."""
    data, run = s.to_dict(), s.run
    if "branch" in data:
        raise refuse(target, "branch from another schedule (convert the file it describes)")
    lr, odd = data["lr"], None
    phases = [(p["shape"], p.get("from"), p.get("to", p.get("value"))) for p in lr["phases"]]
    for shape, phase in zip(phases, lr["phases"]):
        extra = sorted(set(phase) - {"shape", "from", "to", "until", "value"})
        if extra or shape[0] not in (*WSD_DECAYS, "inverse-square-root", "constant"):
            known = shape[0] in (*WSD_DECAYS, "inverse-square-root", "constant")
            raise refuse(target, f"{shape[0]} decay" + (f" with {extra[0]}" if known else ""))
    ends = [Fraction(p["until"].split()[0]) for p in lr["phases"]]
    plan = Plan("constant", lr["max_lr"], int(total_samples(s)), 0,
                min_lr=lr["min_lr"], init_lr=lr["init_lr"], batch=run.global_batch_size)  # fmt: skip
    at = 0
    if phases and phases[0] == ("linear", "init_lr", "max_lr"):
        plan.warmup, at = _whole(ends[0]), 1
    rest = phases[at:]
    held = ("constant", None, "max_lr")
    if len(rest) == 2 and rest[0] == held and rest[1][1:] == ("max_lr", "min_lr"):
        plan.style, plan.wsd_style = "WSD", rest[1][0]
        plan.decay, plan.wsd = _whole(ends[-1]), _whole(ends[-1] - ends[-2])
    elif rest in ([], [held]):
        plan.decay = plan.total
    elif len(rest) == 1 and rest[0][1:] == ("max_lr", "min_lr") and rest[0][0] in MEGATRON_DECAYS:
        plan.style, plan.decay = rest[0][0], _whole(ends[-1])
    else:
        odd = next((p for p in rest if p[0] not in MEGATRON_DECAYS), rest[-1])
        raise refuse(target, "phases but a warmup from init_lr to max_lr, then a decay from "
                     "max_lr to min_lr (or a constant max_lr and an anneal); here "
                     + (f"constant at {odd[2]}" if odd[0] == "constant" else
                        f"{odd[0]} from {odd[1]} to {odd[2]}"))  # fmt: skip
    if "wd" in data:
        w = data["wd"]
        wd_end = run.land(run.samples(w.get("until", "100%"), "wd.until"))
        plan.wd = (w["start_wd"], w["end_wd"], w.get("style", "constant"), wd_end)
    return plan


def _whole(value: Fraction):  # a length in samples: an int where it is one
    return int(value) if value.denominator == 1 else float(value)


def plan_of(schedule, target: str) -> Plan:
    """The source as a `Plan`, or a refusal naming what `target` cannot express."""
    run = schedule.run
    if run is None:
        raise ScheduleError("the schedule has no run (paramsched.Run): expected one with a "
                            "global_batch_size and a total, since a conversion goes step by step")  # fmt: skip
    changing = run.rampup_batch_size or run.batch_size_schedule
    if target == "hf" and changing:
        raise refuse("hf", "batch-size schedule (it counts optimizer steps of one batch size, and "
                     "the source's batch size changes: a ramp-up or stages)")  # fmt: skip
    if isinstance(schedule, Schedule):
        return _plan_of_megatron(schedule)
    if changing:
        raise ScheduleError("paramsched writes Megatron's flags for a changing batch size only "
                            "from Megatron's own schedule; nothing written")  # fmt: skip
    if isinstance(schedule, StackSchedule) and schedule.kind == "hf":
        return _plan_of_hf(dict(schedule.arguments), target)
    if isinstance(schedule, StackSchedule) and schedule.kind == "torchtitan":
        return torchtitan_plan(schedule, target)
    if isinstance(schedule, StackSchedule) and schedule.kind == "timm":
        return timm_plan(schedule, target)
    if isinstance(schedule, PhaseSchedule):
        if schedule.values or schedule.batch_size_rule:
            raise refuse(target, "scheduled values but the learning rate and weight decay")
        if run.counts_tokens:
            raise refuse(target, "token clock (the source's phases count tokens)")
        return _plan_of_phases(schedule, target)
    raise ScheduleError(f"a {schedule.describe()} schedule converts only to toml (its own "
                        "table); nothing written")  # fmt: skip


def megatron_flags(plan: Plan) -> dict:
    """Megatron's flags, by name, that run `plan`: iterations where every length is
    whole iterations, else samples."""
    g = plan.batch or 1
    unit, scale = ("iters", g)
    lengths = [plan.total, plan.decay, plan.warmup, plan.wsd or 0]
    if plan.ramp or any(Fraction(x) % g for x in lengths) or plan.wd and Fraction(plan.wd[3]) % g:
        unit, scale = "samples", 1
    flags = {"lr": plan.max_lr, "min_lr": plan.min_lr, "lr_decay_style": plan.style}
    if plan.init_lr:
        flags["lr_warmup_init"] = plan.init_lr
    if plan.warmup:
        if Fraction(plan.warmup) % scale:
            flags["lr_warmup_fraction"] = plan.warmup / plan.decay
        else:
            flags[f"lr_warmup_{unit}"] = int(plan.warmup // scale)
    if plan.decay != plan.total:
        flags[f"lr_decay_{unit}"] = int(plan.decay // scale)
    flags[f"train_{unit}"] = int(plan.total // scale)
    if plan.style == "WSD":
        flags["lr_wsd_decay_style"] = plan.wsd_style
        flags[f"lr_wsd_decay_{unit}"] = int(plan.wsd // scale)
    if plan.batch is not None:
        flags["global_batch_size"] = plan.batch
    if plan.ramp:
        flags["rampup_batch_size"] = plan.ramp
    if plan.wd is not None:
        start, end, style, _ = plan.wd
        if style == "constant":
            flags["weight_decay"] = start
        else:
            flags.update(start_weight_decay=start, end_weight_decay=end,
                         weight_decay_incr_style=style)  # fmt: skip
    return flags


def hf_arguments(plan: Plan) -> dict:
    """transformers' ``get_scheduler`` arguments (and ``lr``) that run `plan`."""
    if plan.wd is not None and plan.wd[0] != plan.wd[1]:
        raise refuse("hf", f"weight decay schedule (the source's goes from {plan.wd[0]!r} to "
                     f"{plan.wd[1]!r}; transformers leaves the optimizer's)")  # fmt: skip
    g = plan.batch or 1
    steps = {}
    for name in ("total", "decay", "warmup", "wsd"):
        value = getattr(plan, name) or 0
        if Fraction(value) % g:
            raise refuse(
                "hf", f"{name} of {value!r} samples at {g} per step (it counts whole steps)"
            )
        steps[name] = int(value // g)
    floor, warm = plan.min_lr != 0 and plan.style in ("linear", "cosine"), bool(steps["warmup"])
    mapping = next(
        m for m in MAPPINGS if (m.style, m.floor) == (plan.style, floor) and m.warmup >= warm
    )
    start = plan.min_lr if plan.style == "WSD" else 0.0
    if warm and plan.init_lr != start:
        raise refuse("hf", f"warmup from a non-zero rate (init_lr {plan.init_lr!r})" if not start
                     else f"WSD warmup from {plan.init_lr!r}, not from its floor {start!r}")  # fmt: skip
    a = {"name": mapping.hf, "lr": plan.max_lr}
    if mapping.warmup:
        a["num_warmup_steps"] = steps["warmup"]
    kwargs = {key: value for key, (value, _) in mapping.needs.items()}
    if mapping.hf == "warmup_stable_decay":
        if WSD_DECAYS[plan.wsd_style] is None:
            raise refuse("hf", f"{plan.wsd_style} decay")
        if steps["decay"] - steps["wsd"] < steps["warmup"]:
            raise refuse("hf", "WSD anneal that begins within the warmup")
        kwargs.update(decay_type=WSD_DECAYS[plan.wsd_style], min_lr_ratio=plan.min_lr / plan.max_lr,
                      num_decay_steps=steps["wsd"],
                      num_stable_steps=steps["decay"] - steps["wsd"] - steps["warmup"])  # fmt: skip
    else:
        a["num_training_steps"] = steps["total"] if plan.style == "constant" else steps["decay"]
    if mapping.hf == "polynomial":
        kwargs["lr_end"] = plan.min_lr
    if mapping.hf == "cosine_with_min_lr":
        kwargs["min_lr"] = plan.min_lr
    if mapping.hf == "inverse_sqrt":
        kwargs["timescale"] = max(steps["warmup"], 1)
    if kwargs:
        a["scheduler_specific_kwargs"] = kwargs
    return a


def _rates(schedule, name: str) -> tuple[np.ndarray, np.ndarray]:
    curve = step_curve(schedule)
    if curve is None:
        raise ScheduleError(f"{name} has no optimizer steps to compare (no global_batch_size, a "
                            "token clock, or over 10,000,000 steps); nothing written")  # fmt: skip
    return curve[1], schedule.lr(curve[1])


def compare(source, target, to: str, within_ulps: int | None) -> None:
    """Refuses `target` unless its lr after every optimizer step of the source's run is
    the source's (within `within_ulps`, with one WARNING); and its weight decay too."""
    samples, expected = _rates(source, "the source")
    steps = np.arange(len(samples))
    got = target.lr(target.run.samples_at_step(steps))  # every target has a run
    theirs = len(_rates(target, "the flags")[0]) if to == "megatron" else len(steps)
    if theirs != len(steps):
        raise ScheduleError(f"the flags run {theirs - 1} steps, the source {len(steps) - 1}; "
                            "nothing written")  # fmt: skip
    forms.judge(STACK_NAMES[to], expected, got, within_ulps)
    if to == "megatron" and source.wd_curve is not None:
        wd, theirs = source.wd(samples), target.wd(target.run.samples_at_step(steps))
        if np.any(wd != theirs):
            n = int(np.flatnonzero(wd != theirs)[0])
            raise ScheduleError(f"Megatron does not run this weight decay: at step {n} its "
                                f"{float(theirs[n])!r}, the source's {float(wd[n])!r}; nothing written")  # fmt: skip


def convert(schedule, to: str, within_ulps: int | None = None) -> str:
    """`schedule` as `to`'s configuration, the text to write.

    Args:
        schedule: Any schedule with a run of optimizer steps (a loaded schedule file).
        to: One of `TARGETS`.
        within_ulps: Accept a target whose every rate is within this many ulps of the
            source's (0 to `MAX_ULPS`; not for ``toml``), with one WARNING.

    Raises:
        ScheduleError: the target cannot express the schedule, or differs at a step.
    """
    from ..recipe import schedule_from_data

    to = check_choice("--to", to, TARGETS)
    if within_ulps is not None and not 0 <= within_ulps <= MAX_ULPS:
        raise ScheduleError(f"--within-ulps={within_ulps!r}; expected 0 to {MAX_ULPS}")
    if to == "toml":
        if within_ulps is not None:
            raise ScheduleError(f"--within-ulps={within_ulps} with --to toml, which is written "
                                "only to the bit; expected it with --to megatron or hf")  # fmt: skip
        return _toml(schedule, schedule_from_data)
    if to == "torchtitan":  # its writer, in its reader's module
        return write_torchtitan(schedule, within_ulps)
    if to == "olmo_core":  # an [olmo_core] table (`paramsched.formats._olmo_write`)
        return olmo_core_text(schedule, within_ulps)
    plan = plan_of(schedule, to)
    try:
        if to == "megatron":
            text = forms.flags_text(megatron_flags(plan))
            target = forms.read_flags(text)
        else:
            text = json.dumps(hf_arguments(plan))
            target = schedule_from_data({"hf": json.loads(text)})
    except ScheduleError as error:
        if "nothing written" in str(error):
            raise
        raise ScheduleError(f"{STACK_NAMES[to]} refuses this schedule: {error}") from None
    compare(schedule, target, to, within_ulps)
    return text


def _toml(schedule, read) -> str:
    """Phases where they run the source to the bit, else the source's own table."""
    if isinstance(schedule, PhaseSchedule):
        candidates = [schedule.to_dict()]
        if "branch" in candidates[0]:
            raise ScheduleError("a branch converts to toml only as its own [branch] file")
    elif isinstance(schedule, StackSchedule):
        candidates = [{schedule.kind: schedule.arguments}]
    else:
        candidates = [{"megatron": megatron_flags(plan_of(schedule, "megatron"))}]
    try:
        candidates.insert(0, forms.phases_file(plan_of(schedule, "toml")))
    except ScheduleError:  # the stack's own table, then
        pass
    first = None
    for index, data in enumerate(candidates):
        text = forms.toml_text(data)
        try:
            target = read(tomllib.loads(text))
        except ScheduleError:  # phases that do not read back: the next form, then
            if index == len(candidates) - 1:
                raise
            continue
        if isinstance(schedule, StackSchedule) and target == schedule:
            return text  # the stack's own table, read back to the same arguments: the same rates
        try:
            compare(schedule, target, "toml", None)
            return text
        except ScheduleError as error:
            first = first or error
    raise first  # why the first form differs


__all__ = ["MAPPINGS", "TARGETS", "convert"]
