"""The ``[olmo_core]`` table's arguments, checked: OLMo-core's scheduler classes by name,
each with its fields and OLMo-core's defaults (`OLMO_CORE_SCHEDULERS`), read as written
and refused, naming the key, where OLMo-core would fail on them.

Examples:
    >>> olmo_core_arguments({"scheduler": "CosWithWarmup", "lr": 1e-3, "max_steps": 100,
    ...                      "warmup": 10})["alpha_f"]
    0.1
"""

from __future__ import annotations

import logging

from ..errors import ScheduleError, ScheduleTypeError, check_choice
from . import _olmo_rates as rates
from ._stack import number, unknown_key, whole

KIND = "olmo_core"
MODULE = "olmo_core.optim.scheduler."  # where OLMo-core's classes are (its config JSON's _CLASS_)
logger = logging.getLogger("paramsched.olmo_core")
UNITS = ("steps", "tokens")
SHAPES = ("linear", "cosine")
#: The keys every table has besides its class's fields.
RUN_KEYS = ("scheduler", "lr", "units", "max_steps", "max_tokens", "tokens_per_batch")
#: OLMo-core's deprecated field names, read as the names it replaces them with.
ALIASES = {
    "warmup_steps": "warmup",
    "decay_steps": "decay",
    "schedulers_max_steps": "schedulers_max",
}
_ABSENT = object()  # a fraction's default that applies only when its count is absent

_WARMUP = {"warmup": ("count", None), "warmup_fraction": ("fraction", None), "warmup_min_lr": ("rate", 0.0)}  # fmt: skip
_DECAY = {"decay": ("count", None), "decay_fraction": ("fraction", 0.1), "decay_min_lr": ("rate", 0.0)}  # fmt: skip
_COSINE = {**_WARMUP, "alpha_f": ("rate", 0.1), "t_max": ("length", None)}
_OVERRIDE = {"override_decay": ("override", None)}
#: OLMo-core's scheduler classes: each one's fields, ``{name: (kind, default)}``.
OLMO_CORE_SCHEDULERS: dict[str, dict] = {
    "ConstantScheduler": {},
    "ConstantWithWarmup": _WARMUP,
    "WSD": {**_WARMUP, **_DECAY},
    "PowerLR": {"b": ("negative", -0.51), **_WARMUP, **_DECAY},
    "LinearWithWarmup": _COSINE,
    "InvSqrtWithWarmup": {"alpha_f": ("rate", 0.1), **_WARMUP},
    "CosWithWarmup": _COSINE,
    "HalfCosWithWarmup": _COSINE,
    "CosWithWarmupAndLinearDecay": {**_COSINE, **_DECAY},
    "ComposableScheduler": {"stages": ("stages", None), **_OVERRIDE},
    "SequentialScheduler": {
        "schedulers": ("schedulers", None),
        "schedulers_max": ("counts", None),
        **_OVERRIDE,
    },  # fmt: skip
    "WSDS": {
        "period_lengths": ("lengths", None),
        "period_lr_multipliers": ("multipliers", None),
        **{k: (kind, None) for k, (kind, _) in {**_WARMUP, **_DECAY}.items() if "min" not in k},
        "warmup_min_lr": ("rate", 0.0),
        "decay_min_lr": ("rate", 0.0),
    },
    "ExponentialScheduler": {"lr_min": ("positive", 1e-9)},
}
#: The names OLMo-core registers each class under (``Scheduler.register``).
REGISTERED = {
    "constant": "ConstantScheduler", "constant_with_warmup": "ConstantWithWarmup", "wsd": "WSD",
    "power_lr": "PowerLR", "linear_with_warmup": "LinearWithWarmup",
    "inv_sqrt_with_warmup": "InvSqrtWithWarmup", "cos_with_warmup": "CosWithWarmup",
    "half_cos_with_warmup": "HalfCosWithWarmup",
    "cos_with_warmup_and_linear_decay": "CosWithWarmupAndLinearDecay",
    "composable": "ComposableScheduler", "sequential": "SequentialScheduler", "wsds": "WSDS",
    "exponential": "ExponentialScheduler",
}  # fmt: skip
_STAGE = {"duration": ("length", None), "shape": ("shape", "linear"), "start_lr": ("rate", None),
          "start_lr_fraction": ("rate", None), "end_lr": ("rate", None), "end_lr_fraction": ("rate", None)}  # fmt: skip
_OVERRIDE_KEYS = {"start": ("count", None), "duration": ("length", None), "shape": ("shape", "linear"),
                  "end_lr": ("rate", None), "end_lr_fraction": ("rate", None)}  # fmt: skip


def _value(kind: str, label: str, value, prefix: str):
    """One field's value, checked as its `kind` says."""
    if value is None:
        return None
    if kind in ("count", "length"):
        return whole(label, value, 1 if kind == "length" else 0)
    if kind == "shape":
        return check_choice(label, value, SHAPES)
    if kind in ("counts", "lengths", "multipliers"):
        if not isinstance(value, (list, tuple)):
            raise ScheduleTypeError(f"{label}={value!r} is of type {type(value).__name__}; expected a list")  # fmt: skip
        return [_value("length" if kind == "lengths" else "positive" if kind == "multipliers"
                       else "count", f"{label}[{i}]", v, prefix) for i, v in enumerate(value)]  # fmt: skip
    if kind == "stages":
        if not isinstance(value, (list, tuple)) or not value:
            raise ScheduleError(f"{label}={value!r}; expected a non-empty list of stage tables")
        return [_table(v, _STAGE, f"{label}[{i}].", "a stage's field") for i, v in enumerate(value)]
    if kind == "override":
        return _table(value, _OVERRIDE_KEYS, f"{label}.", "a field of override_decay")
    if kind == "schedulers":
        if not isinstance(value, (list, tuple)) or not value:
            raise ScheduleError(f"{label}={value!r}; expected a non-empty list of scheduler tables")
        return [_scheduler(v, f"{label}[{i}].") for i, v in enumerate(value)]
    value = number(label, value)
    if kind == "fraction" and not 0.0 <= value <= 1.0:
        raise ScheduleError(f"{label}={value!r}; expected a fraction in [0, 1]")
    if kind == "rate" and value < 0:
        raise ScheduleError(f"{label}={value!r} is negative; expected a number >= 0")
    if kind == "positive" and not value > 0:
        raise ScheduleError(f"{label}={value!r}; expected a number > 0")
    if kind == "negative" and not value < 0:
        raise ScheduleError(f"{label}={value!r}; expected a negative exponent (a decaying power law)")  # fmt: skip
    return value


def _table(given, spec: dict, prefix: str, what: str) -> dict:
    """A stage or an override: its fields checked, one of ``end_lr``/``end_lr_fraction``."""
    if not isinstance(given, dict):
        raise ScheduleTypeError(f"{prefix.rstrip('.')} is of type {type(given).__name__}; expected a table")  # fmt: skip
    for key in given:
        if key not in spec:
            raise unknown_key(prefix, key, list(spec), what)
    checked = {k: _value(kind, prefix + k, given.get(k, default), prefix) for k, (kind, default) in spec.items()}  # fmt: skip
    for need in ("duration", "start"):
        if need in spec and checked[need] is None:
            raise ScheduleError(f"{prefix}{need} is missing; expected a whole number")
    if (checked["end_lr"] is None) == (checked["end_lr_fraction"] is None):
        raise ScheduleError(f"{prefix}end_lr and end_lr_fraction: expected exactly one of them")
    if "start_lr" in spec and None not in (checked["start_lr"], checked["start_lr_fraction"]):
        raise ScheduleError(f"{prefix}start_lr and start_lr_fraction: expected at most one of them")  # fmt: skip
    return checked


def _scheduler(given, prefix: str, keys=()) -> dict:
    """A scheduler class and its fields, checked and with OLMo-core's defaults."""
    if not isinstance(given, dict):
        raise ScheduleTypeError(f"{prefix.rstrip('.') or KIND} is of type {type(given).__name__}; "
                                "expected a table of a scheduler's fields")  # fmt: skip
    if given.get("scheduler") is None and "_CLASS_" in given:
        short = str(given["_CLASS_"]).rpartition(".")[2]
        raise ScheduleError(f"{prefix}_CLASS_={given['_CLASS_']!r} is the class key of OLMo-core's config "
                            f"JSON; expected scheduler = {short!r}, the other fields as they are")  # fmt: skip
    if given.get("scheduler") is None:
        raise ScheduleError(f"{prefix}scheduler is missing; expected one of " + ", ".join(OLMO_CORE_SCHEDULERS))  # fmt: skip
    name = given["scheduler"]
    if isinstance(name, str) and name.startswith(
        MODULE
    ):  # the class's path, as OLMo-core's JSON has it
        name = name[len(MODULE) :]
    if (
        isinstance(name, str)
        and "(" in name
        and name.partition("(")[0].strip() in OLMO_CORE_SCHEDULERS
    ):
        raise ScheduleError(f"{prefix}scheduler={given['scheduler']!r} is a class's repr; expected "
                            f"scheduler = {name.partition('(')[0].strip()!r} and each field as a key of the table")  # fmt: skip
    name = REGISTERED.get(name, name) if isinstance(name, str) else name
    name = check_choice(f"{prefix}scheduler", name, OLMO_CORE_SCHEDULERS)
    spec, fields, written = OLMO_CORE_SCHEDULERS[name], {}, {}
    for key, value in given.items():
        if key == "scheduler" or key in keys:
            continue
        field_name = ALIASES.get(key, key)
        if field_name not in spec or (key in ALIASES and name == "WSDS"):
            raise unknown_key(prefix, key, list(spec) + list(keys), f"a field of {name}")
        if field_name in fields and value is not None and fields[field_name] is not None:
            raise ScheduleError(f"{prefix}{key} and {prefix}{written[field_name]} are both given; expected one (they are one field)")  # fmt: skip
        if value is not None or field_name not in fields:
            fields[field_name], written[field_name] = value, key
    checked = {"scheduler": name}
    for key, (kind, default) in spec.items():
        if key.endswith("_fraction") and fields.get(key[: -len("_fraction")]) is not None:
            default = None  # the count is given: OLMo-core's default fraction would conflict
        checked[key] = _value(kind, prefix + key, fields.get(key, default), prefix)
    for pair in ("warmup", "decay"):
        if pair in spec and (checked[pair] is None) == (checked[f"{pair}_fraction"] is None):
            raise ScheduleError(f"{prefix}{pair} and {prefix}{pair}_fraction: expected exactly one of them")  # fmt: skip
    _check_class(checked, prefix)
    return checked


def _check_class(a: dict, prefix: str) -> None:
    name = a["scheduler"]
    for key in ("stages", "schedulers"):
        if key in a and a[key] is None:
            raise ScheduleError(f"{prefix}{key} is missing; expected a non-empty list of {key[:-1]} tables")  # fmt: skip
    if name == "SequentialScheduler":
        most, inner = a["schedulers_max"], a["schedulers"]
        if most is None:
            raise ScheduleError(f"{prefix}schedulers_max is missing; expected the length of each scheduler but the last")  # fmt: skip
        if len(most) == len(inner):
            most = a["schedulers_max"] = most[:-1]  # OLMo-core ignores the last one
        if len(most) + 1 != len(inner):
            raise ScheduleError(f"{prefix}schedulers_max has {len(most)} lengths for {len(inner)} schedulers; "
                                "expected one for each scheduler but the last")  # fmt: skip
    if name == "WSDS":
        lengths, multipliers = a["period_lengths"], a["period_lr_multipliers"]
        if not lengths:
            raise ScheduleError(f"{prefix}period_lengths is missing or empty; expected the periods' lengths")  # fmt: skip
        if multipliers is not None and len(multipliers) != len(lengths):
            raise ScheduleError(f"{prefix}period_lr_multipliers has {len(multipliers)} values for "
                                f"{len(lengths)} periods; expected one per period")  # fmt: skip
        w = rates.wsds_periods(a)[0]
        for i, length in enumerate(lengths):
            d = rates.wsds_decay(a, length)
            if d + (w if i == 0 else 0) > length:
                raise ScheduleError(f"{prefix}period_lengths[{i}]={length} with a decay of {d}"
                                    + (f" after a warmup of {w}" if i == 0 else "")
                                    + "; expected them to fit in the period")  # fmt: skip
    if name == "PowerLR" and a["warmup"] == 0:
        raise ScheduleError(f"{prefix}warmup=0; PowerLR divides by its warmup: expected >= 1")


#: The most scheduler tables, stages and periods a table holds in all, and the deepest
#: that schedulers nest: each is evaluated where every other begins and ends.
MOST_PARTS, MOST_DEPTH = 128, 16


def _bounded(given, prefix: str, depth: int = 0, seen: int = 0) -> int:
    """Refuses a table of more than `MOST_PARTS` nested tables and list entries, or of
    schedulers nested more than `MOST_DEPTH` deep, before any of it is checked; returns
    the count so far."""
    if not isinstance(given, dict):
        return seen
    for key, value in given.items():
        if not isinstance(value, (list, tuple, dict)):
            continue
        label = f"{prefix}{key}"
        items = [value] if isinstance(value, dict) else value
        seen += len(items)
        if seen > MOST_PARTS:
            raise ScheduleError(f"{label} has {len(items)} entries, making more than {MOST_PARTS} "
                                f"stages, periods and scheduler tables in all; expected at most {MOST_PARTS}")  # fmt: skip
        for i, item in enumerate(items):
            if isinstance(item, dict):
                if depth + 1 > MOST_DEPTH:
                    raise ScheduleError(f"{label} nests tables more than {MOST_DEPTH} deep; "
                                        f"expected at most {MOST_DEPTH} levels of schedulers")  # fmt: skip
                where = f"{label}." if isinstance(value, dict) else f"{label}[{i}]."
                seen = _bounded(item, where, depth + 1, seen)
    return seen


def olmo_core_arguments(arguments: dict, prefix: str = "") -> dict:
    """The table checked and normalised (defaults filled in, OLMo-core's deprecated names
    replaced), the schedule's meaning; errors name the key as `prefix` + its name."""
    _bounded(arguments, prefix)
    a = _scheduler(arguments, prefix, RUN_KEYS[1:])
    if arguments.get("lr") is None:
        raise ScheduleError(f"{prefix}lr is missing; expected the optimizer's learning rate")
    a["lr"] = number(f"{prefix}lr", arguments["lr"])
    if not a["lr"] > 0:
        raise ScheduleError(f"{prefix}lr={a['lr']!r}; expected a learning rate > 0")
    a["units"] = check_choice(f"{prefix}units", arguments.get("units", "steps"), UNITS)
    tokens = a["units"] == "tokens"
    length, other = ("max_tokens", "max_steps") if tokens else ("max_steps", "max_tokens")
    if arguments.get(other) is not None:
        raise ScheduleError(f"{prefix}{other} with units={a['units']!r}; expected {length}, "
                            f"the t_max OLMo-core's trainer passes for {a['units']}")  # fmt: skip
    if arguments.get(length) is None:
        raise ScheduleError(f"{prefix}{length} is missing; expected the trainer's {length} (the t_max of get_lr)")  # fmt: skip
    a[length] = whole(f"{prefix}{length}", arguments[length], 1)
    per = arguments.get("tokens_per_batch")
    if tokens and per is None:
        raise ScheduleError(f"{prefix}tokens_per_batch is missing; units='tokens' needs the tokens "
                            "of each optimizer step (the trainer's tokens_per_batch)")  # fmt: skip
    a["tokens_per_batch"] = None if per is None else whole(f"{prefix}tokens_per_batch", per, 1)
    return a
