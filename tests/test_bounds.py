"""Tests for paramsched.runtime._bounds: a schedule's values are checked against the optimizer's own
bounds over their whole curves, when the schedule is attached to the optimizer (built,
assigned, branched, loaded), naming the group, the value and the first step out of range."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")

from conftest import PlainOptimizer, written
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import OptimizerParamScheduler, PhaseSchedule, Schedule, ScheduleError
from paramsched.runtime._bounds import BOUNDS, Bound, first_out_of_range, optimizer_bounds
from paramsched.torch import ParamScheduler

pytestmark = pytest.mark.torch


def ramp(key, start, end, until="200 samples", run=None):
    """A learning rate and `key` going linearly from `start` to `end` by `until`, on a run
    of one sample a step (`run`: another run, or {} for none)."""
    unit = until.split()[1]
    return PhaseSchedule.from_dict(
        {
            **({"run": {"global_batch_size": 1} if run is None else run} if run != {} else {}),
            "lr": {
                "max_lr": 1e-3,
                "phases": [{"shape": "linear", "to": "max_lr", "until": f"10 {unit}"}],
            },
            "group": {
                key: {
                    "start": start,
                    "end": end,
                    "phases": [{"shape": "linear", "to": "end", "until": until}],
                }
            },
        }
    )


def model_parameters():
    torch.manual_seed(0)
    return list(torch.nn.Linear(3, 2).parameters())


def expected(key, value, position, step, requires) -> str:
    return (
        f"optimizer.param_groups[0]: {key} reaches {value!r} at num_steps={position} "
        f"(samples, step {step}) ({requires}); expected a schedule whose values the "
        "optimizer accepts at every step"
    )


# ----------------------------------------------------------------- the reproducers


@pytest.mark.parametrize(
    "make,key,start,end,first,requires",
    [
        (torch.optim.AdamW, "betas[1]", 0.95, 1.5, 19, "AdamW requires 0 <= betas[1] < 1"),
        (torch.optim.AdamW, "betas[0]", 0.9, -0.5, 129, "AdamW requires 0 <= betas[0] < 1"),
        (torch.optim.AdamW, "eps", 1e-8, -1e-3, 1, "AdamW requires eps >= 0"),
        (
            lambda p: torch.optim.SGD(p, momentum=0.9),
            "momentum",
            0.9,
            5.0,
            5,
            "SGD requires 0 <= momentum <= 1: torch accepts more, but above 1 the momentum buffer "
            "grows without bound",
        ),
    ],
    ids=["beta2-to-1.5", "beta1-to-minus-0.5", "eps-below-0", "sgd-momentum-5"],
)
def test_a_value_the_optimizer_refuses_is_refused_when_the_schedule_is_attached(
    make, key, start, end, first, requires
):
    # A beta2 ramp to 1.5 crashed AdamW mid-run (a ComplexFloat error); the others trained
    # on silently.
    schedule = ramp(key, start, end)
    optimizer = make(model_parameters())
    before = [dict(g) for g in optimizer.param_groups]
    value = schedule.value(key, first)
    assert not BOUNDS[type(optimizer).__name__][key].holds(value)
    assert BOUNDS[type(optimizer).__name__][key].holds(schedule.value(key, first - 1))
    for attach in (
        lambda: ParamScheduler(optimizer, schedule),
        lambda: OptimizerParamScheduler.from_schedule(optimizer, schedule),
    ):
        with pytest.raises(ScheduleError) as refused:
            attach()
        assert str(refused.value) == expected(key, value, first, first, requires)
        assert optimizer.param_groups == before  # nothing written


def test_a_value_that_stays_within_its_bounds_is_accepted_to_the_bit_of_the_bound():
    optimizer = torch.optim.AdamW(model_parameters())
    below_one = math.nextafter(1.0, 0.0)
    ParamScheduler(optimizer, ramp("betas[1]", 0.95, below_one))
    ParamScheduler(torch.optim.AdamW(model_parameters()), ramp("betas[0]", 0.9, 0.0))
    with pytest.raises(ScheduleError, match=r"betas\[1\] reaches 1.0 at num_steps=200 "):
        ParamScheduler(torch.optim.AdamW(model_parameters()), ramp("betas[1]", 0.95, 1.0))


def test_each_group_is_checked_with_its_own_overrides_and_named():
    params = model_parameters()
    optimizer = torch.optim.Adam(
        [{"params": [params[0]]}, {"params": [params[1]], "betas[1].end": 1.25}]
    )
    with pytest.raises(ScheduleError) as refused:
        ParamScheduler(optimizer, ramp("betas[1]", 0.95, 0.99))
    assert str(refused.value) == expected(
        "betas[1]", 1.001, 34, 34, "Adam requires 0 <= betas[1] < 1"
    ).replace("param_groups[0]", "param_groups[1]")
    assert ramp("betas[1]", 0.95, 1.25).value("betas[1]", 34) == 1.001


def test_every_value_out_of_range_is_named_in_one_message():
    schedule = PhaseSchedule.from_dict(
        {
            "run": {"global_batch_size": 4},
            "lr": {
                "max_lr": 1e-3,
                "phases": [{"shape": "cosine", "to": "max_lr", "until": "40 samples"}],
            },
            "group": {
                "eps": {
                    "start": 1e-8,
                    "end": -1.0,
                    "phases": [{"shape": "cosine", "to": "end", "until": "400 samples"}],
                },
                "betas[1]": {
                    "start": 0.999,
                    "end": 1.0,
                    "phases": [
                        {"shape": "constant", "until": "100 samples"},
                        {"shape": "linear", "to": "end", "until": "102 samples"},
                    ],
                },
            },
        }
    )  # lands at 104
    params = model_parameters()
    optimizer = torch.optim.AdamW(
        [{"params": [params[0]]}, {"params": [params[1]], "betas[1].end": 0.9995}]
    )
    with pytest.raises(ScheduleError) as refused:
        ParamScheduler(optimizer, schedule)
    eps = schedule.value("eps", 1)
    assert str(refused.value) == (
        "optimizer.param_groups[0]: betas[1] reaches 1.0 at num_steps=104 (samples, step 26) "
        "(AdamW requires 0 <= betas[1] < 1); optimizer.param_groups[0]: eps reaches "
        f"{eps!r} at num_steps=1 (samples, before step 1) (AdamW requires eps >= 0); "
        f"optimizer.param_groups[1]: eps reaches {eps!r} at num_steps=1 (samples, before "
        "step 1) (AdamW requires eps >= 0); expected a schedule whose values the optimizer "
        "accepts at every step"
    )


# ------------------------------------------------------- every place a schedule attaches


def test_a_schedule_assigned_or_branched_mid_run_is_checked_and_changes_nothing():
    schedule = ramp("betas[1]", 0.95, 0.99)
    optimizer = torch.optim.AdamW(model_parameters())
    scheduler = ParamScheduler(optimizer, schedule)
    for _ in range(50):
        optimizer.step()
        scheduler.step()
    held = [dict(g) for g in optimizer.param_groups]
    branch = schedule.branch(
        "50 samples",
        [{"shape": "constant", "until": "100 samples"}],
        values={"betas[1]": [{"shape": "linear", "to": 1.1, "until": "100 samples"}]},
    )
    assert branch.value("betas[1]", 64) < 1.0 <= branch.value("betas[1]", 65)
    with pytest.raises(ScheduleError, match=r"betas\[1\] reaches 1.002 at num_steps=65 "):
        scheduler.schedule = branch
    with pytest.raises(ScheduleError, match=r"betas\[1\] reaches 1.5 at num_steps=0 "):
        scheduler.schedule = ramp("betas[1]", 1.5, 0.99)
    assert scheduler.schedule is schedule and optimizer.param_groups == held
    scheduler.step()
    assert scheduler.num_steps == 51


@pytest.mark.parametrize("policy", ["checkpoint", "strict"])
def test_a_checkpoint_whose_schedule_the_optimizer_refuses_is_not_loaded(policy):
    bad = ramp("betas[1]", 0.95, 1.5)
    good = ramp("betas[1]", 0.95, 0.99)
    # written by a scheduler on an optimizer without bounds (plain dicts)
    state = OptimizerParamScheduler.from_schedule(
        PlainOptimizer([{"betas": (0.9, 0.0)}]), bad
    ).state_dict()
    optimizer = torch.optim.AdamW(model_parameters())
    scheduler = ParamScheduler(optimizer, good, checkpoint_policy=policy)
    held = [dict(g) for g in optimizer.param_groups]
    torch_state = {**scheduler.state_dict(), "paramsched": state}
    with pytest.raises(
        ScheduleError,
        match=r"betas\[1\] reaches 1.00\d* at num_steps=19 |"
        r"does not match",
    ):
        scheduler.load_state_dict(torch_state)
    assert scheduler.schedule is good and optimizer.param_groups == held


def test_an_override_changed_mid_run_is_checked_at_the_next_step_which_changes_nothing():
    optimizer = torch.optim.AdamW(model_parameters())
    scheduler = ParamScheduler(optimizer, ramp("betas[1]", 0.95, 0.99))
    scheduler.step()
    optimizer.param_groups[0]["betas[1].end"] = 2.0
    held = written(optimizer), optimizer.param_groups[0]["betas"]
    with pytest.raises(ScheduleError, match=r"param_groups\[0\]: betas\[1\] reaches 1.0"):
        scheduler.step()
    assert (written(optimizer), optimizer.param_groups[0]["betas"]) == held
    assert scheduler.num_steps == 1


def test_a_wrapper_is_checked_with_the_bounds_of_the_optimizer_it_wraps():
    class Wrapper:  # as Megatron's optimizers hold a torch optimizer
        def __init__(self, optimizer):
            self.optimizer = optimizer

        @property
        def param_groups(self):
            return self.optimizer.param_groups

    wrapped = Wrapper(torch.optim.RAdam(model_parameters()))
    assert optimizer_bounds(wrapped)[0] == "RAdam"
    with pytest.raises(ScheduleError, match=r"\(RAdam requires 0 <= betas\[1\] < 1\)"):
        OptimizerParamScheduler.from_schedule(wrapped, ramp("betas[1]", 0.95, 1.5))

    class MyAdamW(torch.optim.AdamW):  # a subclass: AdamW's bounds
        pass

    assert optimizer_bounds(MyAdamW(model_parameters()))[0] == "AdamW"


def test_an_optimizer_of_another_kind_gets_the_checks_every_optimizer_needs():
    # Its bounds are unknown: a value may be anything finite, as named values are.
    optimizer = PlainOptimizer([{"betas": (0.9, 0.0), "momentum": 0.0}])
    assert optimizer_bounds(optimizer) == (None, {"lr": Bound(0.0), "weight_decay": Bound(0.0)})
    OptimizerParamScheduler.from_schedule(optimizer, ramp("betas[1]", 0.95, 1.5))
    OptimizerParamScheduler.from_schedule(optimizer, ramp("momentum", 0.9, -5.0))


def test_a_group_warming_up_to_a_max_lr_of_0_runs_as_in_megatron():
    # Megatron's warmup formula ends at -8.7e-19, not 0, for a group whose max_lr is 0 and
    # init_lr is not; megatron-core writes it and no optimizer step notices it. The
    # learning rate and weight decay are >= 0 by construction, up to such rounding.
    megatron = pytest.importorskip("megatron.core.optimizer_param_scheduler")
    config = dict(
        init_lr=0.007057253312858108,
        max_lr=0.007057253312858108,
        min_lr=0.006454912820774535,
        lr_warmup_steps=81,
        lr_decay_steps=82,
        lr_decay_style="constant",
        start_wd=0.0,
        end_wd=0.0131690591535643,
        wd_incr_steps=82,
        wd_incr_style="linear",
    )
    groups = [
        {"params": [p], "max_lr": 0.0, "min_lr": 0.6192811548328034} for p in model_parameters()[:1]
    ]
    ours = torch.optim.AdamW(copy.deepcopy(groups))
    theirs = PlainOptimizer([{k: v for k, v in g.items() if k != "params"} for g in groups])
    scheduler = OptimizerParamScheduler(ours, **config)
    reference = megatron.OptimizerParamScheduler(theirs, **config)
    for _ in range(81):
        scheduler.step()
        reference.step(1)
    assert written(ours) == written(theirs) and written(ours)[0][0] == -8.673617379884035e-19


# ------------------------------------------------------------ the table against torch


def _constructor_arguments(name: str, key: str, value: float) -> dict:
    """What to give `name`'s constructor to set `key` to `value` (a tuple's component among
    torch's defaults for the others)."""
    if key.endswith("]"):
        base, index = key[:-1].split("[")
        defaults = {"betas": [0.9, 0.999], "etas": [0.5, 1.2], "eps": [None, 1e-3]}[base]
        defaults[int(index)] = value
        return {base: tuple(defaults)}
    return {key: value}


_TORCH_CHECKED = [
    (name, key, bound)
    for name, table in BOUNDS.items()
    for key, bound in table.items()
    if not bound.note
]


@pytest.mark.parametrize(
    "name,key,bound", _TORCH_CHECKED, ids=[f"{n}-{k}" for n, k, _ in _TORCH_CHECKED]
)
def test_each_bound_is_the_one_torchs_constructor_checks(name, key, bound):
    # Just inside the bound torch accepts the value; just outside, it refuses it.
    make = getattr(torch.optim, name)
    params = [torch.nn.Parameter(torch.zeros(2, 2))]
    edges = [
        (edge, inclusive, side)
        for edge, inclusive, side in (
            (bound.low, bound.low_inclusive, -1.0),
            (bound.high, bound.high_inclusive, 1.0),
        )
        if edge is not None
    ]
    assert edges
    for edge, inclusive, side in edges:
        inside = edge if inclusive else math.nextafter(edge, -side * math.inf)
        outside = math.nextafter(edge, side * math.inf) if inclusive else edge
        assert bound.holds(inside) and not bound.holds(outside)
        make(params, **_constructor_arguments(name, key, inside))
        with pytest.raises(ValueError):
            make(params, **_constructor_arguments(name, key, outside))


@pytest.mark.parametrize(
    "name,key,outside",
    [("SGD", "momentum", 1.5), ("RMSprop", "alpha", 1.5), ("Muon", "momentum", 1.5)],
)
def test_bounds_tighter_than_torchs_say_why(name, key, outside):
    make = getattr(torch.optim, name)
    make([torch.nn.Parameter(torch.zeros(2, 2))], **{key: outside})  # torch accepts it
    bound = BOUNDS[name][key]
    assert not bound.holds(outside) and bound.holds(1.0) and "torch accepts more" in bound.note


def test_sparse_adam_runs_a_warmup_from_0_which_its_constructor_refuses():
    with pytest.raises(ValueError, match="Invalid learning rate"):
        torch.optim.SparseAdam([torch.nn.Parameter(torch.zeros(2))], lr=0.0)
    assert (
        BOUNDS["SparseAdam"]["lr"].holds(0.0)
        and "a warmup from 0" in BOUNDS["SparseAdam"]["lr"].note
    )
    optimizer = torch.optim.SparseAdam([torch.nn.Parameter(torch.zeros(2))])
    schedule = Schedule(
        init_lr=0.0, max_lr=1e-3, lr_warmup_steps=10, lr_decay_steps=100, lr_decay_style="linear"
    )
    ParamScheduler(optimizer, schedule)
    assert optimizer.param_groups[0]["lr"] == 0.0


def test_a_position_without_a_run_is_num_steps():
    from paramsched.runtime._bounds import _where

    schedule = Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear")
    assert schedule.run is None and _where(schedule, 19) == "num_steps=19"
    assert _where(schedule, 100.00000000000001) == "num_steps=100.00000000000001"


# ---------------------------------------------- the first position out of range, exactly


def test_the_work_grows_with_the_segments_not_the_positions():
    calls = []

    def value(n):
        calls.append(n)
        return 0.5 + 0.5 * min(n, 10**17) / 10**17  # reaches 1.0 at 1e17

    first = first_out_of_range((10**17,), value, Bound(0.0, high=1.0).holds)
    assert value(first - 1) < 1.0 <= value(first)  # 99999999999999977: rounded to 1.0
    assert len(calls) < 2 * 2 + 2 * 64


def _brute_force(ends, value, holds, whole_up_to):
    """Segment by segment: its first whole position out, else its first float position
    out (checked as a property of the answer), from every whole position to `whole_up_to`
    and each segment's float ends."""
    begin = None
    for end in (*ends, whole_up_to):
        low = 0 if begin is None else math.nextafter(float(begin), math.inf)
        wholes = [n for n in range(math.ceil(low), math.floor(end) + 1)]
        out = [n for n in wholes if not holds(value(n))]
        if out:
            return out[0]
        if not holds(value(low)):
            return low
        if not holds(value(end)):
            return ("float", low, end)
        begin = end
    return None


_SHAPES = st.sampled_from(["linear", "cosine", "exponential", "minus_sqrt", "constant"])


@settings(max_examples=150)
@given(
    st.lists(
        st.tuples(_SHAPES, st.integers(1, 60), st.floats(-2.0, 2.0), st.booleans()),
        min_size=1,
        max_size=5,
    ),
    st.floats(-1.5, 0.5),
    st.floats(0.5, 2.0),
    st.booleans(),
    st.booleans(),
)
def test_the_first_position_out_of_range_is_what_every_position_says(
    phases, low, high, low_inclusive, high_inclusive
):
    until, table = 0, []
    for shape, length, to, fractional in phases:
        until += length
        phase = {"shape": shape, "until": f"{until + (0.5 if fractional else 0)} samples"}
        phase.update({"value": to} if shape == "constant" else {"to": to})
        table.append(phase)
    schedule = PhaseSchedule.from_dict(
        {
            "lr": {
                "max_lr": 1.0,
                "phases": [{"shape": "linear", "to": "max_lr", "until": "1 samples"}],
            },
            "group": {"eps": {"start": 0.25, "phases": table}},
        }
    )
    curve = schedule.scheduled("eps").curve
    value = schedule.scheduled("eps")
    holds = Bound(low, low_inclusive, high, high_inclusive).holds

    def at(n):
        return schedule.value_at("eps", n, (value.defaults()["start"],))

    found = first_out_of_range(curve.ends, at, holds)
    brute = _brute_force(curve.ends, at, holds, until + 3)
    if isinstance(brute, tuple):  # only between whole positions, at a fractional end
        _, begin, end = brute
        assert isinstance(found, float) and begin < found <= end
        assert not holds(at(found)) and holds(at(math.nextafter(found, -math.inf)))
    else:
        assert found == brute


def test_a_position_is_named_as_the_scheduler_counts_it():
    optimizer = torch.optim.AdamW(model_parameters())
    cases = [
        ({}, "num_steps=19 (samples)"),  # a run without a batch size
        ({"clock": "tokens", "total": "400 tokens"}, "num_steps=19 (tokens)"),
        ({"global_batch_size": 4}, "num_steps=19 (samples, before step 5)"),
        ({"global_batch_size": 4, "seq_length": 8}, "num_steps=19 (samples, before step 5)"),
        ({"batch_size_schedule": [[0, 1], [10, 3]]}, "num_steps=19 (samples, step 13)"),
    ]
    for run, where in cases:
        tokens = run.get("clock") == "tokens"
        schedule = ramp("betas[1]", 0.95, 1.5, "200 tokens" if tokens else "200 samples", run)
        with pytest.raises(ScheduleError) as refused:
            OptimizerParamScheduler.from_schedule(optimizer, schedule)
        assert f" at {where} (AdamW" in str(refused.value), (run, str(refused.value))
