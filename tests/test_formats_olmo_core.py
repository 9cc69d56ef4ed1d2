"""paramsched.formats.olmo_core: OLMo-core's schedulers, differential against OLMo-core itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, from_olmo_core
from paramsched.formats.olmo_core import OLMO_CORE_SCHEDULERS, olmo_core_arguments

pytest.importorskip("olmo_core")
torch = pytest.importorskip("torch")

from stacks import olmo_core_rates, olmo_core_scheduler  # noqa: E402

rates = st.floats(1e-6, 1.0)
shapes = st.sampled_from(["linear", "cosine"])
SIMPLE = ["ConstantScheduler", "ConstantWithWarmup", "WSD", "LinearWithWarmup", "CosWithWarmup",
          "HalfCosWithWarmup", "InvSqrtWithWarmup", "CosWithWarmupAndLinearDecay", "PowerLR"]  # fmt: skip


@st.composite
def counted(draw, name: str, length: int, lr: float, least: int = 0) -> dict:
    """``name`` (``warmup`` or ``decay``) as a count (of at least `least`, when given) or a
    fraction, with its floor."""
    fields = {}
    if least or draw(st.booleans()):
        fields[name] = draw(st.integers(max(least, name == "decay"), max(length, 1, least)))
    else:
        fields[f"{name}_fraction"] = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        fields[f"{name}_min_lr"] = draw(st.floats(0.0, 0.5)) * lr * 0.1
    return fields


@st.composite
def class_fields(draw, name: str, length: int, lr: float, depth: int = 0) -> dict:
    """Random fields of OLMo-core's class `name` for a run of `length` (steps or tokens)."""
    f: dict = {"scheduler": name}
    warmup_classes = ("ConstantWithWarmup", "WSD", "PowerLR", "LinearWithWarmup", "CosWithWarmup",
                      "HalfCosWithWarmup", "InvSqrtWithWarmup", "CosWithWarmupAndLinearDecay")  # fmt: skip
    if name in warmup_classes:
        f.update(draw(counted("warmup", length // 2, lr, int(name == "PowerLR"))))
    if name in ("WSD", "PowerLR", "CosWithWarmupAndLinearDecay"):
        f.update(draw(counted("decay", length // 2, lr, depth or int(name == "PowerLR"))))
    if name in ("LinearWithWarmup", "CosWithWarmup", "HalfCosWithWarmup", "InvSqrtWithWarmup",
                "CosWithWarmupAndLinearDecay") and draw(st.booleans()):  # fmt: skip
        f["alpha_f"] = draw(st.floats(0.0, 1.0))
    if name in ("LinearWithWarmup", "CosWithWarmup", "HalfCosWithWarmup") and draw(st.booleans()):
        f["t_max"] = draw(st.integers(1, 2 * length))
    if name == "PowerLR":
        f["b"] = draw(st.floats(-2.0, -0.01))
    if name == "ExponentialScheduler" and draw(st.booleans()):
        f["lr_min"] = draw(st.floats(1e-9, 1.0)) * lr
    if name == "ComposableScheduler":
        f["stages"] = [draw(stage(lr)) for _ in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):
            f["override_decay"] = draw(override(length, lr))
    if name == "SequentialScheduler":
        count = draw(st.integers(1, 3))
        most = [draw(st.integers(1, max(1, length // (count + 1)))) for _ in range(count - 1)]
        inner = [draw(class_fields(draw(st.sampled_from(SIMPLE + ["ComposableScheduler"] * (depth < 1))),
                                   length, lr, depth + 1)) for _ in range(count)]  # fmt: skip
        f.update(
            schedulers=inner, schedulers_max=most + [draw(st.integers(1, 9))] * draw(st.booleans())
        )
        if draw(st.booleans()):
            f["override_decay"] = draw(override(length, lr))
    if name == "WSDS":
        periods = [
            draw(st.integers(2, max(2, length // 2))) for _ in range(draw(st.integers(1, 3)))
        ]
        f["period_lengths"] = periods
        if draw(st.booleans()):
            f["period_lr_multipliers"] = [draw(st.floats(0.1, 2.0)) for _ in periods]
        f.update(draw(counted("warmup", periods[0] // 3, lr)))
        f.update(draw(counted("decay", min(periods) // 3, lr)))
    return f


@st.composite
def stage(draw, lr: float) -> dict:
    s = {"duration": draw(st.integers(1, 40)), "shape": draw(shapes)}
    start = draw(st.sampled_from(["none", "lr", "fraction"]))
    if start == "lr":
        s["start_lr"] = draw(st.floats(0.0, 1.0)) * lr
    elif start == "fraction":
        s["start_lr_fraction"] = draw(st.floats(0.0, 1.5))
    if draw(st.booleans()):
        s["end_lr"] = draw(st.floats(0.0, 1.0)) * lr
    else:
        s["end_lr_fraction"] = draw(st.floats(0.0, 1.5))
    return s


@st.composite
def override(draw, length: int, lr: float) -> dict:
    o = {
        "start": draw(st.integers(0, length)),
        "duration": draw(st.integers(1, 40)),
        "shape": draw(shapes),
    }
    if draw(st.booleans()):
        o["end_lr"] = draw(st.floats(0.0, 0.5)) * lr
    else:
        o["end_lr_fraction"] = draw(st.floats(0.0, 0.5))
    return o


@st.composite
def olmo_table(draw, name: str) -> dict:
    """A random ``[olmo_core]`` table of class `name`, in steps or tokens."""
    lr = draw(rates)
    units = draw(st.sampled_from(["steps", "tokens"]))
    per = draw(st.integers(1, 37)) if units == "tokens" else None
    steps = draw(st.integers(1, 120))
    short = draw(st.integers(0, per - 1)) if per and name != "SequentialScheduler" else 0
    length = steps * per - short if per else steps
    table = {**draw(class_fields(name, length, lr)), "lr": lr, "units": units}
    if per:
        table.update(max_tokens=length, tokens_per_batch=per)
    else:
        table["max_steps"] = length
    return table


@pytest.mark.parametrize("name", list(OLMO_CORE_SCHEDULERS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_class_equals_olmo_core(name, data):
    """lr(n) == the rate OLMo-core's scheduler sets for step n + 1, as its trainer calls it,
    for every n of the run (and after it, the last step's), for one step and an array, and
    for a second group of twice the base rate. A table paramsched refuses is one OLMo-core
    fails on (a configuration error, an assertion or a division by zero)."""
    from olmo_core.exceptions import OLMoConfigurationError

    table = data.draw(olmo_table(name))
    try:
        arguments = olmo_core_arguments(table)
    except ScheduleError:
        with pytest.raises(OLMoConfigurationError):
            olmo_core_scheduler(table)
        event("refused when configured")
        return
    try:
        schedule = from_olmo_core(**table)
    except ScheduleError:
        try:
            got = olmo_core_rates(arguments)
        except (AssertionError, ZeroDivisionError):
            pass
        else:  # a negative base to PowerLR's power: a complex rate
            assert any(isinstance(rate, complex) for row in got for rate in row)
        event("refused as it fails in the run")
        return
    event("compared")
    expected = olmo_core_rates(schedule.arguments, groups=2)
    ns = np.arange(schedule.horizon + 1)
    first = [row[0] for row in expected]
    assert [schedule.lr(n) for n in ns.tolist()] == first
    assert schedule.lr(ns).tolist() == first
    assert schedule.lr(ns, max_lr=table["lr"] * 2).tolist() == [row[1] for row in expected]
