"""timm's schedules (``create_scheduler_v2``), read as timm runs them.

A ``[timm]`` table of a schedule file, or `from_timm`, takes ``create_scheduler_v2``'s
arguments (``sched``, ``num_epochs``, ``warmup_epochs``, ``cycle_mul``, ...) and
``lr``, the optimizer's learning rate. timm's training loop calls
``scheduler.step(epoch + 1)`` after each epoch, or ``scheduler.step_update(num_updates)``
after each optimizer update (``step_on_epochs = false``); the rate it has set after
``t`` of them is its ``_get_lr(t)``, and before the first one what its constructor
wrote (``warmup_lr`` with a warmup, else the group's rate).

Positions count optimizer updates when ``updates_per_epoch`` is given (a per-epoch
schedule changes every ``updates_per_epoch`` of them), and epochs when a per-epoch
schedule has no ``updates_per_epoch``. ``lr(n)`` is then the rate timm has set after
``n`` of them, to the bit: each value runs timm's operations in timm's order
(`paramsched.formats._stack`). A parameter group's ``max_lr`` is its base rate.

``wsd`` and ``rsqrt`` are timm's WSD scheduler, with a constant or an inverse square
root stable phase. Refused, with the reason: ``plateau`` (it follows a metric), ``noise`` (drawn from
torch's random generator, which paramsched, a NumPy package, does not run), and a
``cycle_mul`` below 1 (timm takes the logarithm of a negative number once the
cycles' total length is reached).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass

from ..core._curve import KINDS
from ..errors import ScheduleError, ScheduleTypeError, check_choice
from ._stack import END, Formula, StackSchedule, curve, elementwise, number, unknown_key, whole

KIND = "timm"
#: ``create_scheduler_v2``'s arguments and defaults, and ``lr`` (the optimizer's).
TIMM_DEFAULTS: dict = {
    "lr": None,
    "sched": "cosine",
    "num_epochs": 300,
    "decay_epochs": None,
    "decay_milestones": [90, 180, 270],
    "cooldown_epochs": 0,
    "patience_epochs": 10,
    "decay_rate": 0.1,
    "min_lr": 0.0,
    "warmup_lr": 1e-5,
    "warmup_epochs": 0,
    "warmup_prefix": False,
    "noise": None,
    "noise_pct": 0.67,
    "noise_std": 1.0,
    "noise_seed": 42,
    "cycle_mul": 1.0,
    "cycle_decay": 0.1,
    "cycle_limit": 1,
    "k_decay": 1.0,
    "decay_fn": None,
    "stable_timescale": None,
    "plateau_mode": "max",
    "step_on_epochs": True,
    "updates_per_epoch": 0,
}
_COMMON = ("lr", "sched", "num_epochs", "warmup_lr", "warmup_epochs", "warmup_prefix")
_CYCLES = ("min_lr", "cycle_mul", "cycle_decay", "cycle_limit", "cooldown_epochs")
_CLOCK = ("step_on_epochs", "updates_per_epoch", "noise", "noise_pct", "noise_std", "noise_seed")
#: The names read, and the arguments each one uses (the others must keep their defaults).
TIMM_SCHEDULES: dict[str, tuple] = {
    "cosine": (*_COMMON, *_CYCLES, *_CLOCK, "k_decay"),
    "tanh": (*_COMMON, *_CYCLES, *_CLOCK),
    "poly": (*_COMMON, *_CYCLES, *_CLOCK, "k_decay", "decay_rate"),
    "step": (*_COMMON, *_CLOCK, "decay_epochs", "decay_rate"),
    "multistep": (*_COMMON, *_CLOCK, "decay_milestones", "decay_rate"),
    "constant": (*_COMMON, *_CLOCK),
    "wsd": (*_COMMON, *_CLOCK, "min_lr", "decay_epochs", "decay_fn", "cooldown_epochs"),
    "rsqrt": (
        *_COMMON,
        *_CLOCK,
        *("min_lr", "decay_epochs", "decay_fn", "cooldown_epochs", "stable_timescale"),
    ),
}
WSD_DECAY_FNS = ("linear", "1-sqrt", "cosine", "power", "exp")
REFUSED = {
    "plateau": "it lowers the rate when a metric stops improving, not by a clock",
    "none": "timm makes no scheduler and leaves the optimizer's rate as it is",
}


LR_SCALE = (
    "timm multiplies each rate it writes by a group's lr_scale (layer-wise decay), which this "
    "schedule does not; expected no lr_scale"
)


@dataclass(frozen=True)
class TimmLaw:
    """The numbers of one timm scheduler, in its units (epochs or updates)."""

    sched: str
    t_initial: object
    lr_min: float
    cycle_mul: float
    cycle_decay: float
    cycle_limit: int
    warmup_t: object
    warmup_lr_init: float
    warmup_prefix: bool
    k: float
    rate: float
    decay_t: object
    milestones: tuple
    decay_fn: str = "1-sqrt"  # wsd and rsqrt: the decay's shape
    timescale: object = None  # rsqrt: its stable phase's timescale

    def lr(self, t, v):
        """The rate after `t` steps for a group whose base rate is `v` (``_get_lr``)."""
        if t < self.warmup_t:
            return self.warmup_lr_init + t * self.warmup_step(v)
        if self.sched in ("wsd", "rsqrt"):
            return self.wsd(t - self.warmup_t, v)
        return self.after_warmup(t - self.warmup_t if self.warmup_prefix else t, v)

    def warmup_step(self, v):
        target = v
        if self.sched == "tanh" and not self.warmup_prefix:
            target = self.after_warmup(self.warmup_t, v)  # the value the warmup reaches
        return (target - self.warmup_lr_init) / self.warmup_t

    def after_warmup(self, t, v):
        if self.sched == "step":
            return v * (self.rate ** (t // self.decay_t))
        if self.sched == "multistep":
            return v * (self.rate ** bisect.bisect_right(self.milestones, t + 1))
        if self.sched == "constant":
            return v * (1.0 ** (t // 1))
        mul, period = self.cycle_mul, self.t_initial
        if mul != 1:
            i = math.floor(math.log(1 - t / period * (1 - mul), mul))
            t_i = mul**i * period
            t_curr = t - (1 - mul**i) / (1 - mul) * period
        else:
            i = t // period
            t_i = period
            t_curr = t - (period * i)
        if i >= self.cycle_limit:
            return self.lr_min
        lr_max, lr_min, k = v * self.cycle_decay**i, self.lr_min, self.k
        if self.sched == "cosine":
            return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr**k / t_i**k))
        if self.sched == "tanh":
            tr = t_curr / t_i
            return lr_min + 0.5 * (lr_max - lr_min) * (1 - math.tanh(-7.0 * (1.0 - tr) + 3.0 * tr))
        return lr_min + (lr_max - lr_min) * (1 - t_curr**k / t_i**k) ** self.rate

    def wsd(self, t_s, v):
        """timm's WSD after its warmup: a stable phase (constant, or rsqrt), then the decay."""
        factor = 1.0 if self.sched == "wsd" else (1.0 + t_s / self.timescale) ** -0.5
        stable = max(v * factor, self.lr_min)
        t_decay = t_s - (self.t_initial - self.decay_t)
        if t_decay <= 0:
            return stable
        frac = min(t_decay / self.decay_t, 1.0)
        if self.decay_fn == "linear":
            decay = 1.0 - frac
        elif self.decay_fn == "1-sqrt":
            decay = 1.0 - math.sqrt(frac)
        elif self.decay_fn == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * frac))
        elif self.decay_fn == "power":
            decay = 1.0 - frac**0.5
        else:  # exp, timm's default decay_ratio of 0.1
            decay = (0.1**frac - 0.1) / (1.0 - 0.1)
        return self.lr_min + (stable - self.lr_min) * decay

    def cycle_length(self):
        """``get_cycle_length()``: where the cycles end (the warmup included if a prefix)."""
        cycles = max(1, self.cycle_limit)
        if self.cycle_mul == 1.0:
            t = self.t_initial * cycles
        else:
            t = int(
                math.floor(-self.t_initial * (self.cycle_mul**cycles - 1) / (1 - self.cycle_mul))
            )
        return t + self.warmup_t if self.warmup_prefix else t


@elementwise
def _timm_rate(n, base, m, law, per):
    t = n // per
    if t == 0:  # what the constructor wrote
        return law.warmup_lr_init if law.warmup_t else base
    return law.lr(t, base)


def _check(a: dict, prefix: str) -> dict:
    """The arguments checked, each named as written; numbers keep their type (timm's
    arithmetic on an int is not on a float)."""
    sched = a["sched"]
    if isinstance(sched, str) and str.__str__(sched) in REFUSED:
        raise ScheduleError(
            f"{prefix}sched={str.__str__(sched)!r} is refused: {REFUSED[str.__str__(sched)]}"
        )
    sched = check_choice(f"{prefix}sched", sched, TIMM_SCHEDULES)
    used = TIMM_SCHEDULES[sched]
    for key, default in TIMM_DEFAULTS.items():
        given = list(a[key]) if isinstance(a[key], tuple) else a[key]
        if key not in used and given != default:
            users = [name for name, keys in TIMM_SCHEDULES.items() if key in keys]
            raise ScheduleError(
                f"{prefix}{key}={a[key]!r} has no effect on sched={sched!r} in timm; expected "
                + (f"it only with {', '.join(users)}" if users else "its default")
            )
    if a["noise"] is not None:
        raise ScheduleError(
            f"{prefix}noise={a['noise']!r} is refused: timm draws the noise from torch's "
            "random generator, which paramsched (a NumPy package) does not run; expected none"
        )
    out = {"sched": sched}
    if a["lr"] is None:
        raise ScheduleError(f"{prefix}lr is missing; expected the optimizer's learning rate")
    for key in ("lr", "min_lr", "warmup_lr", "decay_rate", "cycle_decay", "k_decay", "cycle_mul"):
        value = number(f"{prefix}{key}", a[key])
        if value < 0 or (key in ("k_decay", "cycle_mul") and value <= 0):
            raise ScheduleError(
                f"{prefix}{key}={a[key]!r}; expected a number {'>' if key in ('k_decay', 'cycle_mul') else '>='} 0"
            )
        out[key] = a[key] if isinstance(a[key], int) and not isinstance(a[key], bool) else value
    if out["cycle_mul"] < 1:
        raise ScheduleError(
            f"{prefix}cycle_mul={a['cycle_mul']!r} is below 1: timm takes log(1 - t / "
            "num_epochs * (1 - cycle_mul)), which fails once the cycles' total length is "
            "reached; expected cycle_mul >= 1"
        )
    for key in (
        "num_epochs",
        "warmup_epochs",
        "cooldown_epochs",
        "cycle_limit",
        "updates_per_epoch",
    ):
        out[key] = whole(
            f"{prefix}{key}",
            a[key],
            1 if key == "num_epochs" and sched in ("cosine", "tanh", "poly") else 0,
        )
    for key in ("warmup_prefix", "step_on_epochs"):
        if not isinstance(a[key], bool):
            raise ScheduleTypeError(
                f"{prefix}{key}={a[key]!r} is of type {type(a[key]).__name__}; expected true or false"
            )
        out[key] = a[key]
    if not out["step_on_epochs"] and out["updates_per_epoch"] == 0:
        raise ScheduleError(
            f"{prefix}step_on_epochs=false needs updates_per_epoch; expected the number of "
            "optimizer updates in an epoch"
        )
    decay = a["decay_epochs"]
    if sched == "step":
        decay = 90 if decay is None else decay
        value = number(f"{prefix}decay_epochs", decay)
        if not value > 0:
            raise ScheduleError(f"{prefix}decay_epochs={decay!r}; expected a length > 0")
        out["decay_epochs"] = decay if isinstance(decay, int) else value
    if sched in ("wsd", "rsqrt"):
        decay = 0.2 if decay is None else decay
        value = number(f"{prefix}decay_epochs", decay)
        out["decay_epochs"] = decay if isinstance(decay, int) else value
        fn = a["decay_fn"] or ("linear" if sched == "rsqrt" else "1-sqrt")
        out["decay_fn"] = check_choice(f"{prefix}decay_fn", fn, WSD_DECAY_FNS)
        if sched == "rsqrt" and a["stable_timescale"] is not None:
            timescale = number(f"{prefix}stable_timescale", a["stable_timescale"])
            out["stable_timescale"] = (
                a["stable_timescale"] if timescale == int(timescale) else timescale
            )
        elif sched == "rsqrt":
            out["stable_timescale"] = None
    milestones = a["decay_milestones"]
    if sched == "multistep":
        if not isinstance(milestones, (list, tuple)) or not milestones:
            raise ScheduleTypeError(
                f"{prefix}decay_milestones={milestones!r}; expected a list of epochs"
            )
        checked = [whole(f"{prefix}decay_milestones[{i}]", m, 1) for i, m in enumerate(milestones)]
        if checked != sorted(checked):
            raise ScheduleError(
                f"{prefix}decay_milestones={checked!r}; expected increasing epochs (timm "
                "searches them as a sorted list)"
            )
        out["decay_milestones"] = checked
    return out


def _wsd_law(law: TimmLaw, a: dict, scale, prefix: str) -> TimmLaw:
    """timm's WSD and rsqrt: the stable and decay lengths as ``create_scheduler_v2``
    makes them (the warmup always a prefix), checked as ``WSDLRScheduler`` checks them."""
    t_sched = law.t_initial if law.warmup_prefix else law.t_initial - law.warmup_t
    decay = a["decay_epochs"]
    decay_t = decay * t_sched if 0 < decay < 1 else decay * scale
    decay_t = int(round(decay_t))
    if not 0 < decay_t <= t_sched:
        raise ScheduleError(
            f"{prefix}decay_epochs={decay!r} gives a decay of {decay_t} for a stable and decay "
            f"length of {t_sched}; timm requires 0 < decay <= num_epochs"
            + ("" if law.warmup_prefix else " - warmup_epochs")
        )
    timescale = a.get("stable_timescale")
    timescale = law.warmup_t if timescale is None else timescale * scale
    if a["sched"] == "rsqrt" and not timescale > 0:
        raise ScheduleError(
            f"{prefix}stable_timescale is {timescale!r} (its default is warmup_epochs); "
            "timm requires a positive timescale for rsqrt"
        )
    return dataclasses.replace(
        law, t_initial=t_sched, decay_t=decay_t, decay_fn=a["decay_fn"], timescale=timescale
    )


def read_timm(arguments, prefix: str = "") -> StackSchedule:
    """`from_timm` of a table of ``create_scheduler_v2``'s arguments; errors name each key
    as `prefix` + its name."""
    if not isinstance(arguments, dict):
        raise ScheduleTypeError(
            f"{prefix.rstrip('.') or 'timm'} is of type {type(arguments).__name__}; "
            "expected a table of create_scheduler_v2's arguments"
        )
    for key in arguments:
        if key not in TIMM_DEFAULTS:
            raise unknown_key(prefix, key, TIMM_DEFAULTS, "an argument of create_scheduler_v2")
    a = _check({**TIMM_DEFAULTS, **arguments}, prefix)
    used = TIMM_SCHEDULES[a["sched"]]
    meaning = {k: a[k] for k in TIMM_DEFAULTS if k in used and k in a}
    upe = a["updates_per_epoch"]
    scale = 1 if a["step_on_epochs"] else upe  # timm's lengths in its steps
    per = upe if a["step_on_epochs"] and upe else 1  # positions in one of its steps
    law = TimmLaw(
        a["sched"],
        a["num_epochs"] * scale,
        a.get("min_lr", 0.0),
        a.get("cycle_mul", 1.0),
        a.get("cycle_decay", 0.1),
        a.get("cycle_limit", 1),
        a["warmup_epochs"] * scale,
        a["warmup_lr"],
        a["warmup_prefix"],
        a.get("k_decay", 1.0),
        a.get("decay_rate", 0.1),
        a.get("decay_epochs", 90) * scale,
        tuple(m * scale for m in a.get("decay_milestones", ())),
    )
    if a["sched"] in ("wsd", "rsqrt"):
        law = _wsd_law(law, a, scale, prefix)
    rate = Formula(a["sched"], _timm_rate, (law, per))
    pieces = [(per - 1, Formula("start", _timm_rate, (law, per)))]
    if law.warmup_t > 1:
        pieces.append((law.warmup_t * per - 1, Formula("warmup", _timm_rate, (law, per))))
    pieces.append((END, rate))
    if a["sched"] in ("cosine", "tanh", "poly"):
        length = law.cycle_length() + a.get("cooldown_epochs", 0) * scale
    elif a["sched"] in ("wsd", "rsqrt"):
        length = law.warmup_t + law.t_initial + a["cooldown_epochs"] * scale
    else:
        length = law.t_initial + (law.warmup_t if law.warmup_prefix else 0)
    horizon = length * per
    if horizon > END:
        raise ScheduleError(
            f"{prefix}num_epochs={a['num_epochs']!r} comes to {horizon:.3g} updates (warmup, "
            "cycles and cooldown included), beyond any run; expected at most 1e18"
        )
    return StackSchedule.of_curve(KIND, meaning, curve(pieces, 0.0), horizon, float(a["lr"]),
                                  refused_group_keys={"lr_scale": LR_SCALE})  # fmt: skip


def from_timm(lr, sched: str = "cosine", **arguments) -> StackSchedule:
    """The schedule timm's ``create_scheduler_v2(optimizer, sched, **arguments)`` makes.

    Args:
        lr: The optimizer's learning rate.
        sched: One of `TIMM_SCHEDULES`.
        **arguments: ``create_scheduler_v2``'s other arguments (`TIMM_DEFAULTS`).

    Examples:
        >>> s = from_timm(0.1, "step", num_epochs=10, decay_epochs=3, decay_rate=0.5)
        >>> [s.lr(e) for e in range(8)]
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]
    """
    return read_timm({"lr": lr, "sched": sched, **arguments})


KINDS[KIND] = lambda meaning, run: read_timm(meaning)

__all__ = ["TIMM_DEFAULTS", "TIMM_SCHEDULES", "from_timm", "read_timm"]
