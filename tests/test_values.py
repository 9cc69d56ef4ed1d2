"""Every value on one clock, checked to the bit against a reference training loop.

The reference (`Reference`, on `conftest`'s ``reference_*`` rules) is plain Python:
step by step it computes the batch size, the consumed samples (or tokens), the
learning rate under a batch-size rule, the weight decay, a group value (``betas[1]``,
``momentum``, ``eps``) and a loop value (``grad_clip``). The tests drive
`paramsched.torch.ParamScheduler` on real torch optimizers and
`OptimizerParamScheduler` on plain dicts, compare with ``==`` what is written, read
and reported at every step, then resume at several steps through every checkpoint
path and compare again. Hypothesis checks random tables the same way, and the last
section attacks the new API like a hostile user.
"""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import collections
import copy
import dataclasses
import io
import json
import logging
import pathlib
import pickle
import random
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import (
    PlainOptimizer,
    reference_batch_factor,
    reference_batch_size,
    reference_landing,
    reference_phases,
    reference_wd,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paramsched import OptimizerParamScheduler, PhaseSchedule, ScheduleError, ScheduleTypeError
from paramsched.torch import ParamScheduler

pytestmark = pytest.mark.torch
DATA = pathlib.Path(__file__).parent / "data"

# --------------------------------------------------------------- the reference run
# A run of 400 samples of 16 tokens (6400 tokens), its batch size 4, then 8 from 700
# tokens (the 44th sample: 43.75 rounds up), then 16 from 2000 tokens (sample 125).

SEQ = 16
STAGES = [(0, 4), (44, 8), (125, 16)]  # in samples, from the tokens by hand
MAX_LR, MIN_LR = 3e-4, 3e-5
# Every phase end lands on the end of the first step whose position reaches it (the
# positions are 0, 4, ..., 44, 52, ..., 132, 148, ...), by hand:
WARMUP_END = 44  # "650 tokens": 40.625 samples, inside the step from 40 to 44
TOTAL = 400  # "6400 tokens"
LANDED_TOTAL = 404  # "100%": 400 samples, inside the step from 388 to 404
WD = ("cosine", 372, 0.01, 0.1)  # style, until ("90%": 360, inside 356..372), start_wd, end_wd
VALUE_HOLD_END = 324  # "80%": 320 samples, inside 308..324
CLIP_END = 68  # "1000 tokens": 62.5 samples, inside 60..68
VALUE_START = {"betas[1]": 0.95, "momentum": 0.9, "eps": 1e-8}
VALUE_END = {"betas[1]": 0.99, "momentum": 0.99, "eps": 1e-6}


def schedule_data(rule="sqrt", key="betas[1]", reference_batch_size=None) -> dict:
    """The reference run as a schedule file's tables (quantities as a user writes them)."""
    lr = {
        "max_lr": MAX_LR,
        "min_lr": MIN_LR,
        "batch_size_rule": rule,
        "phases": [
            {"shape": "linear", "to": "max_lr", "until": "650 tokens"},
            {"shape": "cosine", "to": "min_lr", "until": "100%"},
        ],
    }
    if reference_batch_size is not None:
        lr["reference_batch_size"] = reference_batch_size
    return {
        "run": {
            "seq_length": SEQ,
            "total": "6400 tokens",
            "batch_size_schedule": [[0, 4], ["700 tokens", 8], ["2000 tokens", 16]],
        },
        "lr": lr,
        "wd": {"start_wd": 0.01, "end_wd": 0.1, "style": "cosine", "until": "90%"},
        "group": {
            key: {
                "start": VALUE_START[key],
                "end": VALUE_END[key],
                "phases": [
                    {"shape": "constant", "until": "80%"},
                    {"shape": "linear", "to": "end", "until": "100%"},
                ],
            }
        },
        "loop": {
            "grad_clip": {
                "start": 0.0,
                "end": 1.0,
                "phases": [{"shape": "linear", "to": "end", "until": "1000 tokens"}],
            }
        },
    }


@dataclasses.dataclass
class Reference:
    """What every value must be, step by step, for groups with these overrides."""

    rule: str = "sqrt"
    reference_batch_size: int = 4
    key: str = "betas[1]"
    groups: tuple = ({},)  # each group's overrides: max_lr, min_lr, wd_mult, end

    def step(self, n) -> dict:
        """The values in force for the step taken at position `n`."""
        batch = reference_batch_size(STAGES, n)
        factor = reference_batch_factor(self.rule, batch, self.reference_batch_size)
        start, end = VALUE_START[self.key], VALUE_END[self.key]
        groups = []
        for g in self.groups:
            max_lr, min_lr = g.get("max_lr", MAX_LR), g.get("min_lr", MIN_LR)
            base = reference_phases(
                [("linear", WARMUP_END, 0.0, max_lr), ("cosine", LANDED_TOTAL, max_lr, min_lr)], n
            )
            value_end = g.get("end", end)
            groups.append(
                {
                    "lr": base * factor,
                    "weight_decay": reference_wd(*WD, n) * g.get("wd_mult", 1.0),
                    self.key: reference_phases(
                        [
                            ("constant", VALUE_HOLD_END, start, start),
                            ("linear", LANDED_TOTAL, start, value_end),
                        ],
                        n,
                    ),
                }
            )
        return {
            "position": n,
            "batch_size": batch,
            "groups": groups,
            "grad_clip": reference_phases([("linear", CLIP_END, 0.0, 1.0)], n),
        }

    def run(self, steps: int) -> list[dict]:
        """Each step's values, the positions advancing by the batch size of the moment."""
        found, n = [], 0
        for _ in range(steps):
            found.append(self.step(n))
            n += found[-1]["batch_size"]
        return found

    def metrics(self, expected: dict, names) -> dict:
        found = {}
        for name, group in zip(names, expected["groups"]):
            for key, value in group.items():
                found[f"{key}/{name}"] = value
        return {**found, "grad_clip": expected["grad_clip"], "batch_size": expected["batch_size"]}


STEPS = 48  # to position 496, past the end of every phase


def test_the_reference_run_crosses_every_boundary():
    positions = [s["position"] for s in Reference().run(STEPS)]
    assert positions[11] == 44 and positions[22] == 132 and positions[-1] > TOTAL + 64
    assert 40 in positions and 44 in positions and 60 in positions and 68 in positions
    assert [p for p in positions if 308 <= p <= 404] == [308, 324, 340, 356, 372, 388, 404]


# ------------------------------------------------------------------ optimizers


def number(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else value


@dataclasses.dataclass
class Case:
    """One way to run the reference: the optimizer, its groups and what it holds."""

    name: str
    reference: Reference
    make: object  # () -> torch optimizer
    group_names: tuple = ("0",)
    tensors: bool = False

    def schedule(self) -> PhaseSchedule:
        ref = self.reference
        return PhaseSchedule.from_dict(
            schedule_data(
                ref.rule,
                ref.key,
                None if ref.reference_batch_size == 4 else ref.reference_batch_size,
            )
        )


def _params(count=2, seed=0):
    torch.manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(3)) for _ in range(count)]


def _adamw(count=1, overrides=({},), names=None, tensors=False, **kwargs):
    params = _params(count)
    groups = []
    for index, (param, extra) in enumerate(zip(params, overrides)):
        group = {"params": [param], **extra}
        if names:
            group["name"] = names[index]
        if tensors:
            group["lr"] = torch.tensor(1.0, dtype=torch.float64)
            group["betas"] = (
                torch.tensor(0.9, dtype=torch.float64),
                torch.tensor(0.5, dtype=torch.float64),
            )
        groups.append(group)
    if tensors:
        kwargs.update(
            foreach=False,
            lr=torch.tensor(1.0, dtype=torch.float64),
            betas=(torch.tensor(0.9, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)),
        )
    else:
        kwargs.setdefault("betas", (0.9, 0.5))
    return torch.optim.AdamW(groups, **kwargs)


OVERRIDES = ({}, {"max_lr": 6e-4, "min_lr": 1e-5, "wd_mult": 0.0, "end": 0.999})


def _group_overrides(key, overrides):
    """Groups' override keys from `Reference` overrides (``end`` is the value's)."""
    return tuple({(f"{key}.end" if k == "end" else k): v for k, v in o.items()} for o in overrides)


CASES = [
    Case("adamw-sqrt", Reference(), lambda: _adamw()),
    Case("adamw-linear-rule", Reference(rule="linear", reference_batch_size=8), lambda: _adamw()),
    Case(
        "adamw-overrides-named-groups",
        Reference(groups=OVERRIDES),
        lambda: _adamw(2, _group_overrides("betas[1]", OVERRIDES), names=("decay", "embed")),
        group_names=("decay", "embed"),
    ),
    Case(
        "adamw-tensor-lr-and-betas",
        Reference(groups=OVERRIDES),
        lambda: _adamw(2, _group_overrides("betas[1]", OVERRIDES), tensors=True),
        group_names=("0", "1"),
        tensors=True,
    ),
    Case(
        "sgd-momentum",
        Reference(key="momentum", groups=OVERRIDES),
        lambda: torch.optim.SGD(
            [
                {"params": [p], **o}
                for p, o in zip(_params(), _group_overrides("momentum", OVERRIDES))
            ],
            lr=0.1,
            momentum=0.5,
        ),
        group_names=("0", "1"),
    ),
    Case(
        "adam-eps",
        Reference(key="eps", rule="linear"),
        lambda: torch.optim.Adam(_params(1), eps=1.0),
    ),
]
CASE_IDS = [case.name for case in CASES]


def check_written(case: Case, optimizer, expected: dict, originals) -> None:
    """The groups hold `expected`'s values, and what the schedule does not set is as it was."""
    key = case.reference.key
    for group, values, original in zip(optimizer.param_groups, expected["groups"], originals):
        assert number(group["lr"]) == values["lr"], expected["position"]
        assert number(group["weight_decay"]) == values["weight_decay"], expected["position"]
        if key == "betas[1]":
            assert group["betas"][0] is original["betas"][0]  # untouched
            assert number(group["betas"][1]) == values[key], expected["position"]
            assert isinstance(group["betas"], tuple)
        else:
            assert number(group[key]) == values[key], expected["position"]
        if case.tensors:  # updated in place, never replaced
            assert group["lr"] is original["lr"] and group["betas"][1] is original["betas"][1]


def drive(case: Case, scheduler, optimizer, expected: list[dict], originals) -> None:
    """Steps through `expected` (a slice of the reference run), checking every value
    before each optimizer step and the metrics after each scheduler step."""
    for values in expected:
        assert scheduler.num_steps == values["position"]
        check_written(case, optimizer, values, originals)
        assert scheduler.value("grad_clip") == values["grad_clip"]
        assert scheduler.batch_size == values["batch_size"]
        optimizer.step()
        scheduler.step()
        assert scheduler.metrics() == case.reference.metrics(values, case.group_names)


def originals_of(optimizer) -> list[dict]:
    return [dict(group) for group in optimizer.param_groups]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_param_scheduler_writes_reads_and_reports_the_reference_at_every_step(case):
    optimizer = case.make()
    scheduler = ParamScheduler(optimizer, case.schedule())
    drive(case, scheduler, optimizer, case.reference.run(STEPS), originals_of(optimizer))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_optimizer_param_scheduler_on_plain_dicts_writes_the_reference(case):
    groups = []
    for group in case.make().param_groups:
        plain = {k: number(v) for k, v in group.items() if k not in ("params", "betas")}
        if "betas" in group:
            plain["betas"] = tuple(number(b) for b in group["betas"])
        groups.append(plain)
    optimizer = PlainOptimizer(groups)
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, case.schedule())
    plain_case = dataclasses.replace(case, tensors=False)
    originals = originals_of(optimizer)
    for values in case.reference.run(STEPS):
        check_written(plain_case, optimizer, values, originals)
        assert scheduler.value("grad_clip") == values["grad_clip"]
        scheduler.step(scheduler.batch_size)
        assert scheduler.metrics() == case.reference.metrics(values, case.group_names)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_array_path_gives_the_reference(case):
    schedule, expected = case.schedule(), case.reference.run(STEPS)
    positions = np.array([v["position"] for v in expected])
    key = case.reference.key
    for number_, overrides in enumerate(case.reference.groups):
        lr = {k: overrides[k] for k in ("max_lr", "min_lr") if k in overrides}
        value = {"end": overrides["end"]} if "end" in overrides else {}
        assert schedule.lr(positions, **lr).tolist() == [
            v["groups"][number_]["lr"] for v in expected
        ]
        assert (schedule.wd(positions) * overrides.get("wd_mult", 1.0)).tolist() == [
            v["groups"][number_]["weight_decay"] for v in expected
        ]
        assert schedule.value(key, positions, **value).tolist() == [
            v["groups"][number_][key] for v in expected
        ]
        assert [schedule.value(key, int(p), **value) for p in positions] == schedule.value(
            key, positions, **value
        ).tolist()
    assert schedule.value("grad_clip", positions).tolist() == [v["grad_clip"] for v in expected]


def test_the_reference_batch_size_defaults_to_the_first_stage():
    default = PhaseSchedule.from_dict(schedule_data())
    assert default == PhaseSchedule.from_dict(schedule_data(reference_batch_size=4))
    assert default.batch_size_rule == ("sqrt", 4)


# --------------------------------------------------------------------- resume


def _fresh(case: Case):
    optimizer = case.make()
    for param in (p for g in optimizer.param_groups for p in g["params"]):
        param.grad = torch.zeros_like(param)
    return optimizer


def _optimizer_step(optimizer) -> None:
    """One optimizer step with gradients (so that it has moment state to save)."""
    for param in (p for g in optimizer.param_groups for p in g["params"]):
        param.grad = torch.ones_like(param)
    optimizer.step()


def _train(case: Case, optimizer, scheduler, steps: int) -> None:
    for _ in range(steps):
        _optimizer_step(optimizer)
        scheduler.step()


def _via_torch_save(states: dict, tmp_path) -> dict:
    buffer = io.BytesIO()
    torch.save(states, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _via_pickle(states: dict, tmp_path) -> dict:
    return pickle.loads(pickle.dumps(states))


def _dcp(states_of_source, target_optimizer, target_scheduler, tmp_path):
    """Saves the source's ``{"optimizer", "scheduler"}`` with torch.distributed.checkpoint
    (one process) and loads them into the target's (the scheduler as a stateful object)."""
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no process group: one process
        dcp.save(states_of_source, checkpoint_id=str(tmp_path / "dcp"))
        optimizer_state = target_optimizer.state_dict()
        dcp.load(
            {"optimizer": optimizer_state, "scheduler": target_scheduler},
            checkpoint_id=str(tmp_path / "dcp"),
        )
    target_optimizer.load_state_dict(optimizer_state)


RESUME_AT = (5, 11, 23, 37)  # in the first stage, at the second, in the third, in the cooldown
MECHANISMS = ["torch.save", "pickle", "dcp", "scheduler-first"]


def resume(case: Case, k: int, mechanism: str, tmp_path):
    """A run stopped after `k` steps, saved, and resumed into a new optimizer and
    scheduler; returns them."""
    optimizer = case.make()
    scheduler = ParamScheduler(optimizer, case.schedule())
    _train(case, optimizer, scheduler, k)
    target_optimizer = _fresh(case)
    target_optimizer.step()  # moment state to load into (DCP loads in place)
    target = ParamScheduler(target_optimizer, case.schedule())
    if mechanism == "dcp":
        _dcp(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler},
            target_optimizer,
            target,
            tmp_path,
        )
        return target_optimizer, target
    states = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    states = (_via_pickle if mechanism == "pickle" else _via_torch_save)(states, tmp_path)
    if mechanism == "scheduler-first":
        target.load_state_dict(states["scheduler"])
        target_optimizer.load_state_dict(states["optimizer"])
    else:
        target_optimizer.load_state_dict(states["optimizer"])
        target.load_state_dict(states["scheduler"])
    return target_optimizer, target


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_run_resumed_mid_way_continues_with_the_reference_values(case, mechanism, tmp_path):
    expected = case.reference.run(STEPS)
    for k in RESUME_AT:
        optimizer, scheduler = resume(case, k, mechanism, tmp_path / str(k))
        with pytest.raises(ScheduleError, match="no step has been taken"):
            scheduler.metrics()  # nothing taken since the load
        # What the groups hold for the coming step is the reference's, whatever the
        # optimizer's checkpoint held; tensors are the new optimizer's own.
        drive(case, scheduler, optimizer, expected[k:], originals_of(optimizer))


def test_a_whole_scheduler_and_optimizer_pickled_together_continue(tmp_path):
    case = CASES[2]
    optimizer = case.make()
    scheduler = ParamScheduler(optimizer, case.schedule())
    _train(case, optimizer, scheduler, 17)
    optimizer, scheduler = pickle.loads(pickle.dumps((optimizer, scheduler)))
    drive(case, scheduler, optimizer, case.reference.run(STEPS)[17:], originals_of(optimizer))


# ---------------------------------------------------------------- token clock

TOKEN_STAGES = [(0, 4), (3000, 8), (12000, 16)]  # thresholds in tokens
TOKEN_TOTAL = 60000


def token_schedule() -> PhaseSchedule:
    return PhaseSchedule.from_dict(
        {
            "run": {
                "clock": "tokens",
                "total": f"{TOKEN_TOTAL} tokens",
                "batch_size_schedule": [list(stage) for stage in TOKEN_STAGES],
            },
            "lr": {
                "max_lr": MAX_LR,
                "min_lr": MIN_LR,
                "batch_size_rule": "sqrt",
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "5%"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.01, "end_wd": 0.1, "style": "linear", "until": "50000 tokens"},
            "group": {
                "betas[1]": {
                    "start": 0.95,
                    "end": 0.99,
                    "phases": [
                        {"shape": "constant", "until": "80%"},
                        {"shape": "linear", "to": "end", "until": "100%"},
                    ],
                }
            },
            "loop": {
                "grad_clip": {
                    "start": 0.0,
                    "end": 1.0,
                    "phases": [{"shape": "linear", "to": "end", "until": "1000 tokens"}],
                }
            },
        }
    )


def token_reference(steps: int, seed: int = 0) -> list[dict]:
    """Each step's values on the token clock, with a seeded random count of tokens per
    step; positions are Python ints."""
    rng, n, found = random.Random(seed), 0, []
    for _ in range(steps):
        batch = reference_batch_size(TOKEN_STAGES, n)
        base = reference_phases(
            [("linear", 3000, 0.0, MAX_LR), ("cosine", TOKEN_TOTAL, MAX_LR, MIN_LR)], n
        )
        found.append(
            {
                "position": n,
                "batch_size": batch,
                "tokens": batch * rng.randint(1, 300),
                "groups": [
                    {
                        "lr": base * reference_batch_factor("sqrt", batch, 4),
                        "weight_decay": reference_wd("linear", 50000, 0.01, 0.1, n),
                        "betas[1]": reference_phases(
                            [("constant", 48000, 0.95, 0.95), ("linear", 60000, 0.95, 0.99)], n
                        ),
                    }
                ],
                "grad_clip": reference_phases([("linear", 1000, 0.0, 1.0)], n),
            }
        )
        n += found[-1]["tokens"]
    return found


TOKEN_CASE = Case("tokens", Reference(), lambda: _adamw())
TOKEN_STEPS = 80


def test_the_token_reference_crosses_every_boundary():
    positions = [s["position"] for s in token_reference(TOKEN_STEPS)]
    assert all(type(p) is int for p in positions)
    assert positions[0] < 1000 < 3000 < 12000 < 48000 < TOKEN_TOTAL < positions[-1]


def drive_tokens(scheduler, optimizer, expected, add_tokens=False) -> None:
    originals = originals_of(optimizer)
    for values in expected:
        assert scheduler.num_steps == values["position"]
        assert type(scheduler.num_steps) is int
        check_written(TOKEN_CASE, optimizer, values, originals)
        assert scheduler.value("grad_clip") == values["grad_clip"]
        assert scheduler.batch_size == values["batch_size"]
        optimizer.step()
        if add_tokens:  # as a framework's callback would, in two parts
            scheduler.add_tokens(values["tokens"] // 2)
            scheduler.add_tokens(values["tokens"] - values["tokens"] // 2)
            scheduler.step()
        else:
            scheduler.step(tokens=values["tokens"])
        assert scheduler.metrics() == TOKEN_CASE.reference.metrics(values, ("0",))


@pytest.mark.parametrize("add_tokens", [False, True], ids=["step-tokens", "add-tokens"])
def test_a_token_clock_follows_the_tokens_of_every_step(add_tokens):
    optimizer = _adamw()
    scheduler = ParamScheduler(optimizer, token_schedule())
    drive_tokens(scheduler, optimizer, token_reference(TOKEN_STEPS), add_tokens)


def test_a_token_clock_on_plain_dicts_and_the_array_path():
    expected = token_reference(TOKEN_STEPS)
    optimizer = PlainOptimizer([{"betas": (0.9, 0.5)}])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, token_schedule())
    for values in expected:
        group = optimizer.param_groups[0]
        assert (group["lr"], group["weight_decay"], group["betas"]) == (
            values["groups"][0]["lr"],
            values["groups"][0]["weight_decay"],
            (0.9, values["groups"][0]["betas[1]"]),
        )
        scheduler.step(tokens=values["tokens"])
    schedule, positions = token_schedule(), np.array([v["position"] for v in expected])
    assert schedule.lr(positions).tolist() == [v["groups"][0]["lr"] for v in expected]
    assert schedule.value("betas[1]", positions).tolist() == [
        v["groups"][0]["betas[1]"] for v in expected
    ]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_token_clock_resumes_mid_way_pending_tokens_included(mechanism, tmp_path):
    expected = token_reference(TOKEN_STEPS)
    for k in (3, 20, 61):
        optimizer = _adamw()
        scheduler = ParamScheduler(optimizer, token_schedule())
        for values in expected[:k]:
            _optimizer_step(optimizer)
            scheduler.step(tokens=values["tokens"])
        scheduler.add_tokens(expected[k]["tokens"])  # recorded for the coming step
        target_optimizer = _fresh(TOKEN_CASE)
        target_optimizer.step()
        target = ParamScheduler(target_optimizer, token_schedule())
        if mechanism == "dcp":
            _dcp(
                {"optimizer": optimizer.state_dict(), "scheduler": scheduler},
                target_optimizer,
                target,
                tmp_path / str(k),
            )
        else:
            states = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            states = (_via_pickle if mechanism == "pickle" else _via_torch_save)(states, None)
            loads = [
                lambda: target_optimizer.load_state_dict(states["optimizer"]),
                lambda: target.load_state_dict(states["scheduler"]),
            ]
            for load in loads[::-1] if mechanism == "scheduler-first" else loads:
                load()
        assert target.pending_tokens == expected[k]["tokens"]
        check_written(TOKEN_CASE, target_optimizer, expected[k], originals_of(target_optimizer))
        target_optimizer.step()
        target.step()  # the pending tokens
        assert target.metrics() == TOKEN_CASE.reference.metrics(expected[k], ("0",))
        drive_tokens(target, target_optimizer, expected[k + 1 :])


# ------------------------------------------------------------------ properties

SHAPES = [
    "linear",
    "cosine",
    "exponential",
    "minus_sqrt",
    "polynomial",
    "constant",
    "inverse-square-root",
]
finite = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


@st.composite
def value_tables(draw, names=("end", "peak", "low")):
    """A value's table (``start`` and some named values, phases that name them), and
    its phases resolved for the reference: ``(table, named, pieces)``."""
    named = {"start": draw(finite)}
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
        named[name] = draw(finite)
    phases, ends, end = [], [], 0
    for _ in range(draw(st.integers(1, 4))):
        end += draw(st.integers(16, 76))  # past the largest batch: ends land apart
        shape = draw(st.sampled_from(SHAPES))
        phase = {"shape": shape, "until": f"{end} samples"}
        operand = st.one_of(finite, st.sampled_from(sorted(named)))
        if shape == "constant":
            if draw(st.booleans()):
                phase["value"] = draw(operand)
        else:
            phase["to"] = draw(operand)
            if draw(st.booleans()):
                phase["from"] = draw(operand)
        if shape == "polynomial":
            phase["power"] = draw(st.sampled_from([0.5, 1.0, 2.0, 3.5]))
        if shape == "inverse-square-root":  # a value that falls as 1/sqrt(n): a >= 0
            phase["to"], phase["from"] = draw(st.floats(0, 1)), draw(st.floats(0, 2))
        phases.append(phase)
        ends.append(end)
    return {**named, "phases": phases}


def resolve(table: dict, overrides: dict, land=lambda end: end) -> list[tuple]:
    """A value table's phases as the reference's pieces, names resolved, ends landed."""
    named = {k: v for k, v in table.items() if k != "phases"} | overrides

    def value(operand):
        return named[operand] if isinstance(operand, str) else float(operand)

    pieces, previous = [], value("start")
    for phase in table["phases"]:
        end = land(int(phase["until"].split()[0]))
        start = value(phase["from"]) if "from" in phase else previous
        if phase["shape"] == "constant":
            target = value(phase["value"]) if "value" in phase else start
        else:
            target = value(phase["to"])
        pieces.append(
            (phase["shape"], end, start, target, *([phase["power"]] if "power" in phase else []))
        )
        previous = target
    return pieces


@st.composite
def stages(draw):
    thresholds = sorted(draw(st.sets(st.integers(1, 150), max_size=3)))
    return [(t, draw(st.integers(1, 16))) for t in [0, *thresholds]]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    stages(),
    value_tables(),
    value_tables(),
    value_tables(),
    st.sampled_from([None, "sqrt", "linear"]),
    st.data(),
)
def test_random_tables_agree_on_every_path(
    batch_stages, lr_table, group_table, loop_table, rule, data
):
    key = data.draw(st.sampled_from(["eps", "betas[1]", "momentum"]), "key")
    max_lr = abs(lr_table["start"]) + 1.0
    # The learning rate's phases: a name is max_lr, a number its size (rates are >= 0).
    lr = {
        "max_lr": max_lr,
        "phases": [
            {
                k: ("max_lr" if isinstance(v, str) else abs(v))
                if k in ("to", "from", "value")
                else v
                for k, v in phase.items()
            }
            for phase in lr_table["phases"]
        ],
    }
    if rule:
        lr["batch_size_rule"] = rule
    data_ = {
        "run": {"batch_size_schedule": [list(s) for s in batch_stages]},
        "lr": lr,
        "group": {key: group_table},
        "loop": {"clip": loop_table},
    }
    schedule = PhaseSchedule.from_dict(data_)
    # to_dict/from_dict, and a JSON text of it, give an equal schedule with an equal hash.
    again = PhaseSchedule.from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert again == schedule and hash(again) == hash(schedule)
    assert again.to_json() == schedule.to_json()

    overridden = [n for n in group_table if n != "phases"]
    override = {data.draw(st.sampled_from(overridden), "override"): data.draw(finite, "to")}
    held = (0.9, 0.5) if key == "betas[1]" else 0.5
    key_name = key.split("[")[0]
    optimizer = PlainOptimizer(
        [{key_name: held}, {key_name: held, **{f"{key}.{k}": v for k, v in override.items()}}]
    )
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, schedule)
    positions = []

    def land(end):
        return reference_landing(batch_stages, end)

    for _ in range(30):
        n = scheduler.num_steps
        positions.append(n)
        for group, given_ in zip(optimizer.param_groups, ({}, override)):
            found = group[key_name][1] if key == "betas[1]" else group[key_name]
            expected = reference_phases(resolve(group_table, given_, land), n)
            assert found == schedule.value(key, n, **given_) == expected, (n, given_)
        batch = reference_batch_size(batch_stages, n)
        base = reference_phases(resolve({"start": 0.0, **lr}, {}, land), n)  # init_lr 0.0
        expected_lr = (
            base if rule is None else base * reference_batch_factor(rule, batch, batch_stages[0][1])
        )
        assert optimizer.param_groups[0]["lr"] == schedule.lr(n) == expected_lr
        assert (
            scheduler.value("clip")
            == schedule.value("clip", n)
            == reference_phases(resolve(loop_table, {}, land), n)
        )
        assert scheduler.batch_size == batch
        scheduler.step(scheduler.batch_size)
    array = np.array(positions)
    assert schedule.lr(array).tolist() == [schedule.lr(n) for n in positions]
    assert schedule.value(key, array, **override).tolist() == [
        schedule.value(key, n, **override) for n in positions
    ]
    assert schedule.value("clip", array).tolist() == [schedule.value("clip", n) for n in positions]


# ------------------------------------------------------------- a hostile user


def small(**changes) -> dict:
    """A small schedule with a group value and a loop value, for the attacks."""
    data = {
        "run": {"global_batch_size": 2},
        "lr": {
            "max_lr": 1.0,
            "phases": [{"shape": "linear", "to": "max_lr", "until": "10 samples"}],
        },
        "wd": {"start_wd": 0.1},
        "group": {
            "betas[1]": {
                "start": 0.9,
                "end": 0.99,
                "phases": [{"shape": "linear", "to": "end", "until": "10 samples"}],
            }
        },
        "loop": {
            "grad_clip": {
                "start": 0.0,
                "phases": [{"shape": "linear", "to": 1.0, "until": "10 samples"}],
            }
        },
    }
    for path, value in changes.items():
        *parents, last = path.split("/")
        target = data
        for part in parents:
            target = target[part]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return data


def snapshot(scheduler, optimizer) -> tuple:
    """Everything a refused call must leave as it was."""
    try:
        metrics = scheduler.metrics()
    except ScheduleError as error:
        metrics = str(error)
    groups = [
        {
            k: (
                v.item()
                if isinstance(v, torch.Tensor)
                else tuple(number(c) for c in v)
                if isinstance(v, tuple)
                else v
            )
            for k, v in g.items()
            if k != "params"
        }
        for g in optimizer.param_groups
    ]
    return (
        scheduler.state_dict(),
        scheduler.num_steps,
        groups,
        metrics,
        getattr(scheduler, "pending_tokens", None),
    )


BAD_NUMBERS = [
    (float("nan"), ScheduleError, "is not finite"),
    (float("inf"), ScheduleError, "is not finite"),
    (-float("inf"), ScheduleError, "is not finite"),
    (1e300, ScheduleError, "is too large for a hyperparameter"),
    (10**30, ScheduleError, "is too large for a hyperparameter"),
    (True, ScheduleTypeError, "is of type bool; expected a number"),
    ("0.5", ScheduleTypeError, "is of type str; expected a number"),
    (None, ScheduleTypeError, "is of type NoneType; expected a number"),
    ([0.5], ScheduleTypeError, "is of type list; expected a number"),
]


@pytest.mark.parametrize(
    "field", ["group/betas[1]/start", "group/betas[1]/end", "loop/grad_clip/start"]
)
@pytest.mark.parametrize("value,error,message", BAD_NUMBERS, ids=repr)
def test_a_named_value_that_is_no_number_is_refused_naming_it(field, value, error, message):
    where = field.replace("/", ".")
    with pytest.raises(
        error,
        match=rf"^{re.escape(where)}={re.escape(repr(value))} "
        rf"{re.escape(message)}",
    ):
        PhaseSchedule.from_dict(small(**{field: value}))


@pytest.mark.parametrize(
    "value,error,message",  # None is no override
    [b for b in BAD_NUMBERS if b[0] is not None],
    ids=repr,
)
def test_a_group_override_that_is_no_number_is_refused_and_nothing_changes(value, error, message):
    optimizer = PlainOptimizer([{"betas": (0.9, 0.5)}, {"betas": (0.9, 0.5)}])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, PhaseSchedule.from_dict(small()))
    scheduler.step(4)
    optimizer.param_groups[1]["betas[1].end"] = value
    before = snapshot(scheduler, optimizer)
    with pytest.raises(error, match=re.escape("optimizer.param_groups[1]['betas[1].end']=")):
        scheduler.step(2)
    del optimizer.param_groups[1]["betas[1].end"]
    assert snapshot(scheduler, optimizer)[:2] == before[:2]
    optimizer.param_groups[1]["betas[1].end"] = value
    assert snapshot(scheduler, optimizer) == before


def test_named_values_of_either_sign_are_scheduled_as_written():
    schedule = PhaseSchedule.from_dict(
        small(**{"group/betas[1]/start": -1.0, "group/betas[1]/end": -3.0})
    )
    assert schedule.value("betas[1]", 0) == -1.0 and schedule.value("betas[1]", 10) == -3.0
    with pytest.raises(ScheduleError, match=r"^lr\.max_lr=-1\.0 is negative"):
        PhaseSchedule.from_dict(small(**{"lr/max_lr": -1.0}))


TOKEN_ATTACKS = [
    (1.5, ScheduleTypeError, "tokens=1.5 is of type float; expected a whole number of tokens"),
    (100.0, ScheduleTypeError, "tokens=100.0 is of type float"),
    (float("nan"), ScheduleTypeError, "tokens=nan is of type float"),
    (float("inf"), ScheduleTypeError, "tokens=inf is of type float"),
    (-1, ScheduleError, "tokens=-1; expected a whole number of tokens from 0 to 1e+18"),
    (10**19, ScheduleError, "tokens=10000000000000000000; expected a whole number of tokens"),
    (True, ScheduleTypeError, "tokens=True is of type bool"),
    ("100", ScheduleTypeError, "tokens='100' is of type str"),
    (np.float64(3.0), ScheduleTypeError, "is of type float64"),
]


@pytest.mark.parametrize("how", ["step", "add_tokens"])
@pytest.mark.parametrize("tokens,error,message", TOKEN_ATTACKS, ids=repr)
def test_tokens_that_are_not_a_whole_count_are_refused_and_nothing_changes(
    tokens, error, message, how
):
    optimizer = _adamw()
    scheduler = ParamScheduler(optimizer, token_schedule())
    scheduler.step(tokens=700)
    scheduler.add_tokens(5)
    before = snapshot(scheduler, optimizer)
    call = (
        scheduler.add_tokens if how == "add_tokens" else (lambda t: scheduler.core.step(tokens=t))
    )
    with pytest.raises(error, match=re.escape(message)):
        call(tokens)
    assert snapshot(scheduler, optimizer) == before


def test_tokens_that_would_take_the_clock_beyond_any_run_are_refused():
    optimizer = _adamw()
    scheduler = ParamScheduler(optimizer, token_schedule())
    scheduler.step(tokens=10**18)
    before = snapshot(scheduler, optimizer)
    with pytest.raises(ScheduleError, match="takes num_steps to"):
        scheduler.step(tokens=1)
    assert snapshot(scheduler, optimizer) == before
    scheduler.add_tokens(0)
    before = snapshot(scheduler, optimizer)
    with pytest.raises(ScheduleError, match=r"expected at most 0 more tokens for it"):
        scheduler.add_tokens(10**18)  # was recorded, and every step after it refused
    assert snapshot(scheduler, optimizer) == before and scheduler.pending_tokens == 0
    scheduler.step()
    assert scheduler.num_steps == 10**18


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: s.step(), "the schedule's clock counts tokens"),
        (lambda s: s.core.step(3), "the schedule's clock counts tokens"),
        (lambda s: s.core.step(2, tokens=3), r"step\(2, tokens=3\); expected the tokens alone"),
        (lambda s: s.step_to(3), "a number of steps is no position on it"),
        (lambda s: s.core.step_to(3.0), r"num_steps=3\.0 is of type float"),
        (lambda s: s.step(tokens=4), r"step\(tokens=4\) after add_tokens\(4\)"),
    ],
    ids=["step()", "step(3)", "step(2, tokens=3)", "step_to", "float position", "both ways"],
)
def test_a_token_clock_refuses_a_step_without_its_tokens(call, message, request):
    optimizer = _adamw()
    scheduler = ParamScheduler(optimizer, token_schedule())
    scheduler.step(tokens=100)
    if "both" in request.node.name:
        scheduler.add_tokens(4)
    before = snapshot(scheduler, optimizer)
    with pytest.raises(ScheduleError, match=message):
        call(scheduler)
    assert snapshot(scheduler, optimizer) == before


SAMPLE_CASE = CASES[0]


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: s.step(tokens=5), r"step\(tokens=5\) on a schedule whose clock counts samples"),
        (lambda s: s.add_tokens(5), r"add_tokens\(5\) on a schedule whose clock does not count"),
    ],
)
def test_tokens_on_a_sample_clock_are_refused(call, message):
    optimizer = SAMPLE_CASE.make()
    scheduler = ParamScheduler(optimizer, SAMPLE_CASE.schedule())
    scheduler.step()
    before = snapshot(scheduler, optimizer)
    with pytest.raises(ScheduleError, match=message):
        call(scheduler)
    assert snapshot(scheduler, optimizer) == before


@pytest.mark.parametrize("policy", ["checkpoint", "override", "strict"])
@pytest.mark.parametrize("mine", ["tokens", "samples"])
def test_a_checkpoint_or_schedule_of_the_other_clock_is_refused_under_every_policy(policy, mine):
    def build(clock):
        optimizer = _adamw()
        schedule = token_schedule() if clock == "tokens" else SAMPLE_CASE.schedule()
        scheduler = ParamScheduler(optimizer, schedule, checkpoint_policy=policy)
        scheduler.step(**({"tokens": 640} if clock == "tokens" else {}))
        return optimizer, scheduler

    optimizer, scheduler = build(mine)
    theirs = build("samples" if mine == "tokens" else "tokens")[1]
    before = snapshot(scheduler, optimizer)
    message = (
        f"counts {'samples' if mine == 'tokens' else 'tokens'} and this scheduler's "
        f"counts {mine}; expected one clock in one run"
    )
    with pytest.raises(ScheduleError, match=message):
        scheduler.load_state_dict(theirs.state_dict())
    with pytest.raises(ScheduleError, match=message):
        scheduler.core.load_state_dict(theirs.core.state_dict())
    with pytest.raises(ScheduleError, match=message):
        scheduler.schedule = theirs.schedule
    assert snapshot(scheduler, optimizer) == before


@pytest.mark.parametrize(
    "name,message",
    [
        ("lr", "'lr' is the [lr] table"),
        ("weight_decay", "'weight_decay' is the [wd] table"),
        ("batch_size", "'batch_size' is [run] batch_size_schedule"),
        ("max_lr", "'max_lr' is a per-group override of the [lr] and [wd] tables"),
        ("wd_mult", "'wd_mult' is a per-group override"),
        ("params", "'params' is the optimizer's parameters"),
        ("lr[0]", "'lr[0]' is the [lr] table"),
        ("betas[x]", "a value named 'betas[x]'; expected a group key, or one component"),
        ("betas[10]", "a value named 'betas[10]'"),
        ("betas[1][0]", "a value named 'betas[1][0]'"),
        ("a.b", "a value named 'a.b'"),
        ("", "a value named ''"),
        ("1st", "a value named '1st'"),
    ],
)
def test_a_reserved_or_malformed_value_name_is_refused(name, message):
    table = small()["group"]["betas[1]"]
    with pytest.raises(ScheduleError, match=re.escape(message)):
        PhaseSchedule.from_dict(small(**{"group": {name: table}}))


Betas = collections.namedtuple("Betas", "first second")  # no tuple(iterable) constructor


@pytest.mark.parametrize(
    "groups,error,message",
    [
        (
            [{}],
            ScheduleError,
            "optimizer.param_groups[0] has no 'betas', which the schedule's [group.betas[1]] sets",
        ),
        (
            [{"betas": (0.9, 0.5)}, {"momentum": 0.9}],
            ScheduleError,
            "optimizer.param_groups[1] has no 'betas'",
        ),
        (
            [{"betas": (0.9,)}],
            ScheduleError,
            "optimizer.param_groups[0]['betas']=(0.9,); expected a tuple (or list) with a "
            "component 1",
        ),
        (
            [{"betas": Betas(0.9, 0.5)}],
            ScheduleError,
            "['betas']=Betas(first=0.9, second=0.5); expected a tuple (or list)",
        ),
        ([{"betas": 0.9}], ScheduleError, "['betas']=0.9; expected a tuple"),
        ([{"betas": "ab"}], ScheduleError, "['betas']='ab'; expected a tuple"),
        (
            [{"betas": (0.9, "0.5")}],
            ScheduleTypeError,
            "['betas[1]']='0.5' is of type str; expected a number or a floating-point tensor",
        ),
        ([{"betas": (0.9, None)}], ScheduleTypeError, "['betas[1]']=None is of type NoneType"),
        ([{"betas": (0.9, True)}], ScheduleTypeError, "['betas[1]']=True is of type bool"),
        (
            [{"betas": (0.9, torch.tensor(1))}],
            ScheduleTypeError,
            "['betas[1]'] is a tensor of dtype torch.int64; expected a floating-point tensor",
        ),
    ],
)
def test_a_group_the_schedule_cannot_write_is_refused_before_anything_is_written(
    groups, error, message
):
    optimizer = PlainOptimizer([{**g, "lr": 7.0} for g in groups])
    before = copy.deepcopy(optimizer.param_groups)
    with pytest.raises(error, match=re.escape(message)):
        OptimizerParamScheduler.from_schedule(optimizer, PhaseSchedule.from_dict(small()))
    assert optimizer.param_groups == before
    # and mid-run: refused, the groups as they were
    optimizer = PlainOptimizer([{"betas": (0.9, 0.5)} for _ in groups])
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, PhaseSchedule.from_dict(small()))
    scheduler.step(2)
    expected = snapshot(scheduler, optimizer)
    optimizer.param_groups[:] = [{**g, "lr": optimizer.param_groups[0]["lr"]} for g in groups]
    with pytest.raises(error, match=re.escape(message)):
        scheduler.step(2)
    assert scheduler.num_steps == expected[1] and scheduler.metrics() == expected[3]


def test_one_tensor_shared_by_groups_scheduled_differently_is_refused():
    shared = torch.tensor(0.5, dtype=torch.float64)
    groups = [{"betas": (0.9, shared)}, {"betas": (0.9, shared), "betas[1].end": 0.999}]
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            "optimizer.param_groups[0] and [1] share one tensor for 'betas[1]' but are "
            "scheduled differently"
        ),
    ):
        OptimizerParamScheduler.from_schedule(
            PlainOptimizer(groups), PhaseSchedule.from_dict(small())
        )
    assert shared.item() == 0.5
    same = [{"betas": (0.9, shared)}, {"betas": (0.9, shared)}]  # one value: one tensor is fine
    scheduler = OptimizerParamScheduler.from_schedule(
        PlainOptimizer(same), PhaseSchedule.from_dict(small())
    )
    scheduler.step(4)
    assert shared.item() == scheduler.schedule.value("betas[1]", 4)


def test_at_most_32_values_and_16_named_values():
    table = small()["loop"]["grad_clip"]
    PhaseSchedule.from_dict(small(loop={f"v{i}": table for i in range(31)}))  # 32 with betas
    with pytest.raises(
        ScheduleError, match="the schedule has 33 values besides lr and wd; expected at most 32"
    ):
        PhaseSchedule.from_dict(small(loop={f"v{i}": table for i in range(32)}))
    with pytest.raises(
        ScheduleError,
        match=r"group\.betas\[1\] has 17 named values; expected "
        "at most 16",
    ):
        PhaseSchedule.from_dict(small(**{f"group/betas[1]/n{i}": 0.5 for i in range(15)}))


def test_a_branch_cannot_schedule_a_value_its_parent_lacks():
    parent = PhaseSchedule.from_dict(small(**{"group": {}, "loop": {}}))
    data = {
        "branch": {"parent": {"kind": "phases", **parent.to_dict()}, "at": 4},
        "lr": {"phases": [{"shape": "constant", "until": "10 samples"}]},
    }
    for place, name in (("group", "betas[1]"), ("loop", "grad_clip")):
        with pytest.raises(
            ScheduleError,
            match=re.escape(
                f"the branch has a [{place}.{name}] table but its parent schedules no "
                f"{place}.{name}"
            ),
        ):
            PhaseSchedule.from_dict(
                {**data, place: {name: {"phases": [{"shape": "constant", "until": "10 samples"}]}}}
            )


def test_a_branch_inherits_its_parents_values_and_may_continue_them():
    parent = PhaseSchedule.from_dict(small())
    kept = parent.branch(4, [{"shape": "constant", "until": "10 samples"}])
    assert [kept.value("betas[1]", n) for n in range(12)] == [
        parent.value("betas[1]", n) for n in range(12)
    ]
    data = kept.to_dict()
    data["group"] = {"betas[1]": {"phases": [{"shape": "linear", "to": 0.5, "until": "8 samples"}]}}
    moved = PhaseSchedule.from_dict(data)
    at_branch = parent.value("betas[1]", 4)
    for n in range(12):
        expected = (
            parent.value("betas[1]", n)
            if n <= 4
            else reference_phases([("linear", 4, 0.0, 0.0), ("linear", 8, at_branch, 0.5)], n)
        )
        assert moved.value("betas[1]", n) == expected, n
    with pytest.raises(ScheduleError, match=r"group\.betas\[1\] has an unknown key 'end'"):
        data["group"]["betas[1]"]["end"] = 0.5
        PhaseSchedule.from_dict(data)


@pytest.mark.parametrize("policy", ["checkpoint", "override", "strict"])
def test_checkpoints_of_the_previous_version_still_load(policy, caplog):
    old = json.loads((DATA / "checkpoints-0.1.0.json").read_text())["phases_format2"]
    optimizer = PlainOptimizer(
        [{"betas": (0.9, 0.5)}, {"betas": (0.9, 0.5), "wd_mult": 0.0, "max_lr": 2.0, "min_lr": 0.0}]
    )
    scheduler = OptimizerParamScheduler.from_schedule(optimizer, PhaseSchedule.from_dict(small()))
    scheduler.checkpoint_policy = policy
    before = snapshot(scheduler, optimizer)
    if policy == "strict":  # another schedule: refused, nothing changes
        with pytest.raises(ScheduleError, match="checkpoint does not match the scheduler"):
            scheduler.load_state_dict(old["state"])
        assert snapshot(scheduler, optimizer) == before
        return
    with caplog.at_level(logging.WARNING, logger="paramsched"):
        scheduler.load_state_dict(old["state"])
    assert scheduler.num_steps == old["state"]["num_steps"]
    if policy == "checkpoint":  # the old schedule, which sets no betas: they stay as they were
        assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
            tuple(g) for g in old["groups"]
        ]
        assert [g["betas"] for g in optimizer.param_groups] == [g["betas"] for g in before[2]]
    else:
        assert optimizer.param_groups[0]["betas"][1] == scheduler.schedule.value(
            "betas[1]", scheduler.num_steps
        )
    with pytest.raises(ScheduleError):  # a token clock refuses it under every policy
        token = ParamScheduler(_adamw(), token_schedule(), checkpoint_policy=policy)
        token.core.load_state_dict(old["state"])
