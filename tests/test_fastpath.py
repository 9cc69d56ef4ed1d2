"""The plan's step function (`paramsched.runtime._fastpath`) against the general path, bit for bit.

Every scenario runs twice from scratch: once with step functions built as soon as a
plan has served a step, once with none (every step through `GroupWriter.write_step`).
Everything a user can see (each group's keys, their types and exact values, errors,
the position, `metrics`, `last_values`) must be the same after every action.
"""

from __future__ import annotations

import gc
import math
import pickle
import random
import weakref
from unittest import mock

import pytest
from conftest import PlainOptimizer, random_config, random_groups
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import OptimizerParamScheduler, PhaseSchedule, Schedule, ScheduleError
from paramsched.core._curve import RULES
from paramsched.overrides import OVERRIDE_KEYS
from paramsched.runtime import _fastpath
from paramsched.runtime._writer import Plan, _general

try:  # tensors in the groups, where torch is installed
    import torch
except ImportError:
    torch = None

COSINE = dict(
    init_lr=0.0,
    max_lr=3e-4,
    min_lr=3e-5,
    lr_warmup_steps=100,
    lr_decay_steps=10_000,
    lr_decay_style="cosine",
    start_wd=0.0,
    end_wd=0.1,
    wd_incr_steps=10_000,
    wd_incr_style="linear",
)
#: Megatron-Core's layouts (`_get_param_groups`): one group; decayed and undecayed;
#: the same, times a decoupled learning rate (the embedding's and output layer's).
MEGATRON_KEYS = {
    "params": [],
    "is_expert_parallel": False,
    "default_config": True,
    "wd_mult": 1.0,
    "lr_mult": 1.0,
    "is_decoupled_lr": False,
    "max_lr": 3e-4,
    "min_lr": 3e-5,
}
DECOUPLED = {"default_config": False, "max_lr": 1e-3, "min_lr": 1e-4}
LAYOUTS = {
    "one": [{}],
    "decay-no-decay": [{}, {"wd_mult": 0.0}],
    "decoupled": [{}, {**DECOUPLED}, {**DECOUPLED, "wd_mult": 0.0}, {"wd_mult": 0.0}],
}


def megatron_groups(layout: str) -> list[dict]:
    return [{**MEGATRON_KEYS, **overrides} for overrides in LAYOUTS[layout]]


def general_only():
    """No step function is ever built: every step takes the general path."""
    return mock.patch.object(_fastpath, "step_function", lambda plan, num_steps, compiled: None)


def built_at_once(unroll: int = _fastpath.UNROLL):
    """Step functions built once a plan has served one step, one block per group up to
    `unroll` groups (a loop beyond)."""
    patches = [
        mock.patch.object(_fastpath, "SERVED", 1),
        mock.patch.object(_fastpath, "UNROLL", unroll),
    ]

    class Both:
        def __enter__(self):
            for patch in patches:
                patch.__enter__()

        def __exit__(self, *exc):
            for patch in reversed(patches):
                patch.__exit__(*exc)

    return Both()


def general_steps(monkeypatch) -> list:
    """Counts the steps that go through `Plan.step` (the general path)."""
    calls, original = [], Plan.step

    def step(self, groups, num_steps):
        calls.append(num_steps)
        return original(self, groups, num_steps)

    monkeypatch.setattr(Plan, "step", step)
    return calls


def exact(value):
    """A value as the user sees it, to the bit: its type and repr (tensors by value)."""
    if hasattr(value, "tolist"):
        return (type(value).__name__, str(value.dtype), repr(value.tolist()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(exact(v) for v in value))
    return (type(value).__name__, repr(value))


def observe(scheduler, optimizer) -> tuple:
    groups = optimizer.param_groups
    seen = (
        [
            tuple(sorted((str(k), exact(v)) for k, v in g.items() if k != "params"))
            if isinstance(g, dict)
            else repr(g)
            for g in groups
        ]
        if isinstance(groups, list)
        else repr(groups)
    )
    try:
        metrics = sorted((k, exact(v)) for k, v in scheduler.metrics().items())
    except ScheduleError as error:
        metrics = str(error)
    last = exact(scheduler.last_values()) if scheduler._writer.plan is not None else None
    return seen, exact(scheduler.num_steps), metrics, last


# ------------------------------------------------------------------ scenarios


def random_phases(rng: random.Random, wd: bool, branch: bool):
    """A phase schedule (or a branch of a Megatron one) with every rule and shape."""
    total = rng.randint(4, 120)
    ends = sorted(rng.sample(range(1, total + 1), rng.randint(1, min(5, total))))
    phases = []
    for end in ends:
        shape = rng.choice(
            [
                "linear",
                "cosine",
                "exponential",
                "minus_sqrt",
                "polynomial",
                "constant",
                "inverse-square-root",
            ]
        )
        target = rng.choice([rng.uniform(0, 2e-3), "min_lr", "max_lr", "0.5 * max_lr", 0.0])
        phase = {
            "shape": shape,
            "until": f"{end} samples",
            ("value" if shape == "constant" else "to"): target,
        }
        if shape == "polynomial":
            phase["power"] = rng.choice([0.5, 1.5, 2.0])
        if rng.random() < 0.3:  # a jump where the phase begins
            phase["from"] = rng.choice([rng.uniform(0, 2e-3), "max_lr", "min_lr"])
        phases.append(phase)
    if branch:
        parent = Schedule(**{**COSINE, "lr_warmup_steps": 5, "lr_decay_steps": 2 * total})
        at = rng.randint(0, total // 2)
        shifted = [{**p, "until": f"{at + int(p['until'].split()[0])} steps"} for p in phases]
        return parent.branch(at, shifted)
    data = {
        "lr": {"max_lr": 1e-3, "min_lr": 1e-4, "init_lr": rng.choice([0.0, 1e-5]), "phases": phases}
    }
    if wd:
        data["wd"] = rng.choice(
            [
                {"start_wd": 0.05, "end_wd": 0.05},
                {
                    "start_wd": 0.0,
                    "end_wd": 0.1,
                    "style": rng.choice(["linear", "cosine"]),
                    "until": f"{rng.randint(1, total)} samples",
                },
                {
                    "start_wd": 0.1,
                    "end_wd": 0.0,
                    "phases": [{"shape": "cosine", "to": "end_wd", "until": f"{total} samples"}],
                },
            ]
        )
    return PhaseSchedule.from_dict(data)


def build(seed: int, kind: str):
    """The schedule and group dicts of one scenario, the same for both runs."""
    rng = random.Random(seed)
    if kind == "megatron":
        config = random_config(rng)
        return Schedule(**config), random_groups(rng, config)
    if kind == "megatron-layout":
        config = {
            **COSINE,
            "lr_warmup_steps": rng.randint(0, 20),
            "lr_decay_steps": rng.randint(21, 400),
            "wd_incr_steps": rng.randint(1, 400),
        }
        return Schedule(**config), megatron_groups(rng.choice(sorted(LAYOUTS)))
    schedule = random_phases(rng, wd=kind != "phases-no-wd", branch=kind == "branch")
    groups = [{"params": []}]
    for _ in range(rng.randint(0, 4)):
        group = {
            "params": [],
            "max_lr": rng.choice([1e-3, 2e-3, 5e-4]),
            "min_lr": rng.choice([0.0, 1e-4, 3e-3]),
        }
        if schedule.has_wd:
            group["wd_mult"] = rng.choice([0.0, 1.0, 0.5])
        groups.append(group)
    return schedule, groups


ACTIONS = st.one_of(
    st.tuples(st.just("step"), st.sampled_from([1, 1, 1, 1, 2, 3, 17, 0, 250])),
    st.tuples(st.just("steps"), st.integers(1, 40)),  # steps of 1, each observed
    st.tuples(st.just("step_to"), st.integers(0, 700)),
    st.tuples(st.just("to a boundary"), st.integers(0, 7), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("tensor"), st.integers(0, 7), st.sampled_from(["lr", "weight_decay"])),
    st.tuples(
        st.just("set"),
        st.integers(0, 7),
        st.sampled_from(OVERRIDE_KEYS + ("lr",)),
        st.sampled_from([None, 0.0, 5e-4, 2e-3, 0.5, -1.0, "x", 1]),
    ),
    st.tuples(st.just("replace"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("add"), st.integers(0, 7)),
    st.tuples(st.just("remove"), st.integers(0, 7)),
    st.tuples(st.just("not a dict"), st.integers(0, 7)),
    st.tuples(st.just("num_steps"), st.integers(0, 500)),
    st.tuples(st.just("schedule"), st.booleans()),
    st.tuples(st.just("reload"), st.just(0)),
    st.tuples(st.just("pickle"), st.just(0)),
    st.tuples(st.just("groups"), st.sampled_from(["tuple", "list"])),
)


def act(scheduler, optimizer, action, other_schedule):
    """Applies one action; returns the (maybe new) scheduler and optimizer, and what
    it raised."""
    name, *args = action
    groups = optimizer.param_groups
    size = len(groups)
    try:
        if name == "step":
            scheduler.step(args[0])
        elif name == "step_to":
            scheduler.step_to(args[0])
        elif name == "to a boundary":  # where a segment ends, or one step either side
            schedule = scheduler.schedule
            ends = [*schedule.lr_curve.ends, *(schedule.wd_curve.ends if schedule.has_wd else ())]
            if ends:
                scheduler.step_to(max(0, ends[args[0] % len(ends)] + args[1]))
        elif name == "tensor" and size and torch is not None:
            groups[args[0] % size][args[1]] = torch.tensor(0.0, dtype=torch.float64)
        elif name == "set" and size:
            group = groups[args[0] % size]
            if args[2] is None:
                group.pop(args[1], None)
            else:
                group[args[1]] = args[2]
        elif name == "replace" and size:
            index = args[0] % size
            groups[index] = dict(groups[index])
            if not args[1]:
                groups[index]["max_lr"] = 7e-4
        elif name == "add":
            groups.append(dict(groups[args[0] % size]) if size else {"params": []})
        elif name == "remove" and size > 1:
            groups.pop(args[0] % size)
        elif name == "not a dict" and size:
            groups[args[0] % size] = [("params", [])]
        elif name == "num_steps":
            scheduler.num_steps = args[0]
        elif name == "schedule":
            scheduler.schedule = other_schedule if args[0] else scheduler.schedule
        elif name == "reload":
            scheduler.load_state_dict(scheduler.state_dict())
        elif name == "pickle":
            scheduler, optimizer = pickle.loads(pickle.dumps((scheduler, optimizer)))
        elif name == "groups":
            optimizer.param_groups = (tuple if args[0] == "tuple" else list)(groups)
    except (ScheduleError, TypeError, ValueError, AttributeError, KeyError) as error:
        return scheduler, optimizer, (type(error).__name__, str(error))
    return scheduler, optimizer, None


def history(seed: int, kind: str, actions: list) -> list:
    schedule, groups = build(seed, kind)
    other, _ = build(seed + 1, kind)
    if other.has_wd != schedule.has_wd or other.run != schedule.run:
        other = schedule
    optimizer = PlainOptimizer(groups)
    seen = []
    try:
        scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    except ScheduleError as error:
        return [str(error)]
    for action in [("steps", 3)] + actions:
        for one in [("step", 1)] * action[1] if action[0] == "steps" else [action]:
            scheduler, optimizer, raised = act(scheduler, optimizer, one, other)
            seen.append((one, raised, observe(scheduler, optimizer)))
    return seen


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["megatron", "megatron-layout", "phases", "phases-no-wd", "branch"]),
    st.lists(ACTIONS, max_size=40),
    st.sampled_from([64, 0]),
)
def test_the_step_function_is_the_general_path_bit_for_bit(seed, kind, actions, unroll):
    with built_at_once(unroll):
        fast = history(seed, kind, actions)
    with general_only():
        general = history(seed, kind, actions)
    assert fast == general


# ------------------------------------------------------- the step function runs


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_megatron_layouts_step_on_the_step_function_alone(layout, monkeypatch):
    optimizer = PlainOptimizer(megatron_groups(layout))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    scheduler.step(1000)
    for _ in range(_fastpath.SERVED):
        scheduler.step()
    calls = general_steps(monkeypatch)
    schedule = scheduler.schedule
    for _ in range(50):
        scheduler.step()
        n = scheduler.num_steps
        assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
            (schedule.lr(n, g["max_lr"], g["min_lr"]), schedule.wd(n) * g["wd_mult"])
            for g in optimizer.param_groups
        ]
    assert calls == []  # not one step went through the general path
    assert scheduler.metrics()["lr/0"] == schedule.lr(scheduler.num_steps - 1, 3e-4, 3e-5)


def test_a_run_across_every_segment_gets_a_step_function_for_each(monkeypatch):
    optimizer = PlainOptimizer(megatron_groups("decoupled"))
    scheduler = OptimizerParamScheduler(
        optimizer, **{**COSINE, "lr_decay_steps": 300, "wd_incr_steps": 200}
    )
    calls = general_steps(monkeypatch)
    schedule, built = scheduler.schedule, set()
    with mock.patch.object(_fastpath, "SERVED", 1):
        for n in range(1, 400):
            scheduler.step()
            built |= set(scheduler._writer.compiled)
            assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
                (schedule.lr(n, g["max_lr"], g["min_lr"]), schedule.wd(n) * g["wd_mult"])
                for g in optimizer.param_groups
            ]
    # warmup, decay with a rising weight decay, decay with its end, past both
    assert built == {(0, 0), (1, 0), (1, 1), (2, 1)}
    assert len(calls) < 12  # the general path only where a segment begins


def test_a_step_function_stops_where_its_segment_does():
    """Each side of every end, from either side, on a curve that jumps at every end."""
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1e-3,
                "min_lr": 1e-4,
                "phases": [
                    {"shape": "constant", "value": 5e-4, "until": "10 samples"},
                    {"shape": "cosine", "from": "max_lr", "to": "min_lr", "until": "20 samples"},
                    {"shape": "linear", "from": 2e-3, "to": 0.0, "until": "30 samples"},
                ],
            },
            "wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear", "until": "15 samples"},
        }
    )
    positions = [p for end in (10, 15, 20, 30) for p in (end + 1, end + 2, end, end - 1, end)]

    def walk():
        optimizer = PlainOptimizer([{"params": []}, {"params": [], "max_lr": 2e-3}])
        scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
        seen = []
        for position in positions:
            scheduler.step_to(position)
            scheduler.step(0)  # the same position again: on the step function if built
            seen += [(position, g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
        return seen, scheduler._writer.compiled

    with built_at_once():
        fast, compiled = walk()
    with general_only():
        general, _ = walk()
    assert fast == general
    assert sorted(compiled) == [(0, 0), (1, 0), (1, 1), (2, 1), (3, 1)]


def test_groups_changed_every_few_steps_build_nothing(monkeypatch):
    builds = []
    original = _fastpath._build
    monkeypatch.setattr(_fastpath, "_build", lambda *a: builds.append(a) or original(*a))
    optimizer = PlainOptimizer(megatron_groups("decay-no-decay"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    for step in range(10 * _fastpath.SERVED):
        if step % (_fastpath.SERVED - 1) == 0:
            optimizer.param_groups[1]["max_lr"] = 3e-4 + step * 1e-6
        scheduler.step()
    assert builds == []
    for _ in range(_fastpath.SERVED):
        scheduler.step()
    assert len(builds) == 1  # a plan that holds gets its step function


def test_segments_a_few_steps_long_build_nothing(monkeypatch):
    builds = []
    original = _fastpath._build
    monkeypatch.setattr(_fastpath, "_build", lambda *a: builds.append(a) or original(*a))
    length = _fastpath.SERVED - 1
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1e-3,
                "phases": [
                    {
                        "shape": "cosine",
                        "from": "max_lr",
                        "to": 0.0,
                        "until": f"{(k + 1) * length} samples",
                    }
                    for k in range(20)
                ],
            }
        }
    )
    scheduler = OptimizerParamScheduler.from_schedule(PlainOptimizer(), schedule)
    for _ in range(20 * length):
        scheduler.step()
    assert builds == []


def test_the_step_function_notices_what_plan_step_notices(monkeypatch):
    """A tensor put in, a key removed, an override changed, a group replaced by an equal
    one (written, as the general path writes it) or added: each as the general path."""
    pytest.importorskip("torch")
    optimizer = PlainOptimizer(megatron_groups("decoupled"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    with mock.patch.object(_fastpath, "SERVED", 1):
        scheduler.step(500)
        scheduler.step()
        fast = scheduler._writer.fast_step
        assert fast is not _general  # built
        groups = optimizer.param_groups
        lr = groups[2]["lr"]
        groups[2]["lr"] = torch.tensor(0.0, dtype=torch.float64)
        assert fast(optimizer, scheduler.schedule, 600) is None
        scheduler.step()
        assert groups[2]["lr"].item() == scheduler.schedule.lr(502, 1e-3, 1e-4) != lr
        groups[2]["lr"] = 0.0
        scheduler.step()
        del groups[0]["weight_decay"]
        scheduler.step()
        assert groups[0]["weight_decay"] == scheduler.schedule.wd(504)
        groups[1] = dict(groups[1])
        scheduler.step()
        assert groups[1]["lr"] == scheduler.schedule.lr(505, 1e-3, 1e-4)
        groups[3]["max_lr"] = -1.0
        before = [dict(g) for g in groups]
        with pytest.raises(ScheduleError, match=r"param_groups\[3\]\['max_lr'\]"):
            scheduler.step()
        assert groups == before and scheduler.num_steps == 505  # nothing changed


# ------------------------------------------------------------ building, refused


def test_a_formula_the_trace_cannot_follow_keeps_the_general_path(monkeypatch):
    def decay(seg, a, b):  # compares the position: no step function can stand for it
        def value(n, m=None):
            return b if n > seg.end else b + (a - b) * 0.5

        return value

    monkeypatch.setitem(RULES, "decay", decay)
    optimizer = PlainOptimizer(megatron_groups("one"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    with mock.patch.object(_fastpath, "SERVED", 1):
        for _ in range(200):
            scheduler.step()
    compiled = scheduler._writer.compiled
    assert compiled[(0, 0)] is not None and compiled[(1, 0)] is None  # the warmup's is built
    assert optimizer.param_groups[0]["lr"] == 3e-5 + (3e-4 - 3e-5) * 0.5


def test_a_step_function_that_disagrees_with_the_curves_is_not_used(monkeypatch):
    original = _fastpath._value
    monkeypatch.setattr(_fastpath, "_value", lambda *a: original(*a) * 1.0000001)
    optimizer = PlainOptimizer(megatron_groups("decoupled"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    with mock.patch.object(_fastpath, "SERVED", 1):
        for _ in range(300):
            scheduler.step()
    assert set(scheduler._writer.compiled.values()) == {None}
    assert optimizer.param_groups[1]["lr"] == scheduler.schedule.lr(300, 1e-3, 1e-4)


@pytest.mark.parametrize("kind", ["tensors", "values", "batch-size rule"])
def test_plans_the_step_function_does_not_cover_keep_the_general_path(kind):
    pytest.importorskip("torch")
    groups = megatron_groups("decay-no-decay")
    schedule = Schedule(**COSINE)
    wd = {"start_wd": 0.1, "end_wd": 0.1}
    if kind == "tensors":
        groups[0]["lr"] = torch.tensor(0.0, dtype=torch.float64)
    elif kind == "values":
        for group in groups:
            group["eps"] = 1e-8
        schedule = PhaseSchedule.from_dict(
            {
                "lr": {
                    "max_lr": 3e-4,
                    "phases": [{"shape": "cosine", "to": 0.0, "until": "900 samples"}],
                },
                "group": {
                    "eps": {
                        "start": 1e-8,
                        "phases": [{"shape": "linear", "to": 1e-6, "until": "900 samples"}],
                    }
                },
                "wd": wd,
            }
        )
    else:
        schedule = PhaseSchedule.from_dict(
            {
                "run": {
                    "global_batch_size": 8,
                    "rampup_batch_size": [4, 4, "400 samples"],
                    "total": "900 samples",
                },
                "lr": {
                    "max_lr": 3e-4,
                    "batch_size_rule": "sqrt",
                    "reference_batch_size": 4,
                    "phases": [{"shape": "cosine", "to": 0.0, "until": "100%"}],
                },
                "wd": wd,
            }
        )
    optimizer = PlainOptimizer(groups)
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    with mock.patch.object(_fastpath, "SERVED", 1):
        for _ in range(40):
            scheduler.step(8)
    assert scheduler._writer.compiled == {}
    assert optimizer.param_groups[1]["lr"] == schedule.lr(320, 3e-4, 3e-5)


# ------------------------------------------------------------ memory, pickling


def test_a_dropped_scheduler_frees_its_plan_without_the_garbage_collector():
    optimizer = PlainOptimizer(megatron_groups("decoupled"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    for _ in range(2 * _fastpath.SERVED):
        scheduler.step()
    assert scheduler._writer.fast_step is not _general  # it holds the plan, which holds this
    schedule = weakref.ref(scheduler._writer.plan.schedule)
    gc.disable()
    try:
        del scheduler
        assert schedule() is None  # no reference cycle kept the plan
    finally:
        gc.enable()


def test_a_pickled_scheduler_leaves_its_step_function_behind_and_builds_again(monkeypatch):
    optimizer = PlainOptimizer(megatron_groups("decoupled"))
    scheduler = OptimizerParamScheduler(optimizer, **COSINE)
    for _ in range(2 * _fastpath.SERVED):
        scheduler.step()
    clone, copied = pickle.loads(pickle.dumps((scheduler, optimizer)))
    assert clone._writer.compiled == {}
    for _ in range(2 * _fastpath.SERVED):
        scheduler.step()
        clone.step()
    assert clone._writer.fast_step is not _general
    assert copied.param_groups == optimizer.param_groups
    calls = general_steps(monkeypatch)
    clone.step()
    assert calls == [] and math.isfinite(copied.param_groups[0]["lr"])
