"""paramsched.formats.olmo_core: OLMo-core's schedulers, differential against OLMo-core itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, ScheduleTypeError, from_olmo_core, load_schedule
from paramsched.formats.olmo_core import OLMO_CORE_SCHEDULERS, olmo_core_arguments, read_olmo_core

pytest.importorskip("olmo_core")
torch = pytest.importorskip("torch")

from stacks import (  # noqa: E402
    olmo_core_rates,
    olmo_core_scheduler,
    optimizer_of,
    refused_file,
    run_and_resume,
)

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


def test_golden_values_of_one_cosine_and_one_token_wsd():
    """Rates OLMo-core 3.0.0 sets (stored as data): step n + 1 uses lr(n)."""
    cosine = from_olmo_core("CosWithWarmup", lr=3e-4, warmup=100, max_steps=1000)
    golden = {0: 2.9999999999999997e-06, 1: 5.999999999999999e-06, 50: 0.000153,
              98: 0.00029699999999999996, 99: 0.0002999999999999999, 100: 0.0002999991775338017,
              500: 0.00018797828238741436, 998: 3.0000822466198294e-05,
              999: 2.9999999999999997e-05, 1000: 2.9999999999999997e-05}  # fmt: skip
    assert {n: cosine.lr(n) for n in golden} == golden
    wsd = from_olmo_core("WSD", lr=3e-4, units="tokens", warmup=4_000_000, decay_fraction=0.2,
                         max_tokens=96 * 1_048_576, tokens_per_batch=1_048_576)  # fmt: skip
    golden = {0: 7.86432e-05, 2: 0.0002359296, 3: 0.0003, 75: 0.0003, 76: 0.00029687500294918814, 77: 0.0002812500027939677, 94: 1.5625000155220428e-05, 95: 0.0, 96: 0.0}  # fmt: skip
    assert {n: wsd.lr(n) for n in golden} == golden
    assert wsd.horizon == 96 and wsd.run.tokens(96) == 96 * 1_048_576


def test_a_table_of_nested_schedulers_is_from_olmo_core(tmp_path):
    path = tmp_path / "olmo.toml"
    path.write_text(
        '[olmo_core]\nscheduler = "SequentialScheduler"\nlr = 1e-3\nmax_steps = 120\n'
        "schedulers_max = [30, 50]\n"
        'override_decay = { start = 100, duration = 10, shape = "cosine", end_lr = 0.0 }\n'
        '[[olmo_core.schedulers]]\nscheduler = "LinearWithWarmup"\nwarmup = 10\nalpha_f = 0.5\n'
        '[[olmo_core.schedulers]]\nscheduler = "composable"\n'
        'stages = [{ duration = 20, end_lr_fraction = 0.2 }, { duration = 5, shape = "cosine", end_lr = 1e-4 }]\n'
        '[[olmo_core.schedulers]]\nscheduler = "CosWithWarmup"\nwarmup_steps = 5\n'
    )
    schedule = load_schedule(path)
    same = from_olmo_core(
        "SequentialScheduler", 1e-3, max_steps=120, schedulers_max=[30, 50, 99],
        override_decay={"start": 100, "duration": 10, "shape": "cosine", "end_lr": 0.0},
        schedulers=[
            {"scheduler": "LinearWithWarmup", "warmup": 10, "alpha_f": 0.5},
            {"scheduler": "ComposableScheduler", "stages": [
                {"duration": 20, "end_lr_fraction": 0.2},
                {"duration": 5, "shape": "cosine", "end_lr": 1e-4}]},
            {"scheduler": "CosWithWarmup", "warmup": 5, "warmup_fraction": None},
        ],
    )  # fmt: skip
    assert schedule == same and hash(schedule) == hash(same)
    expected = [row[0] for row in olmo_core_rates(schedule.arguments)]
    assert schedule.lr(np.arange(121)).tolist() == expected
    assert [p.name for p in schedule.pieces(120)] == [
        "LinearWithWarmup", "ComposableScheduler", "CosWithWarmup", "cosine override", "hold"
    ]  # fmt: skip


def test_two_spellings_of_one_schedule_are_equal():
    plain = from_olmo_core("WSD", 1e-3, warmup=10, max_steps=100)
    for other in (
        from_olmo_core("wsd", 1e-3, warmup_steps=10, max_steps=100),
        from_olmo_core("WSD", 1e-3, warmup=np.int64(10), decay_fraction=0.1, max_steps=100),
        from_olmo_core("WSD", np.float64(1e-3), warmup=10, max_steps=100, units="steps"),
    ):
        assert other == plain and hash(other) == hash(plain)
    assert from_olmo_core("WSD", 1e-3, warmup=10, decay=10, max_steps=100) != plain
    assert plain.meaning()["decay_fraction"] == 0.1 and plain.describe() == "olmo_core WSD"


def test_torch_scheduler_and_resume_follow_olmo_core():
    """ParamScheduler over two groups writes OLMo-core's rates (each group's first lr its
    base rate), and a checkpoint taken midway resumes them."""

    schedule = from_olmo_core("HalfCosWithWarmup", 1e-3, warmup=7, alpha_f=0.05, max_steps=60)
    expected = olmo_core_rates(schedule.arguments, groups=2)
    run_and_resume(schedule, from_olmo_core("ConstantScheduler", 5e-4, max_steps=10), expected)


def test_a_last_step_past_max_tokens_is_run_as_olmo_core_runs_it(caplog):
    """max_tokens of no whole number of batches: OLMo-core's last step counts more tokens
    than t_max (WSD's decay goes below its floor there), with one WARNING saying so."""
    table = dict(scheduler="WSD", lr=3e-4, units="tokens", warmup=0, decay=2_000,
                 max_tokens=10_000, tokens_per_batch=768)  # fmt: skip
    schedule = from_olmo_core(**table)
    expected = [row[0] for row in olmo_core_rates(schedule.arguments)]
    assert schedule.lr(np.arange(schedule.horizon + 1)).tolist() == expected
    assert schedule.horizon == 14 and expected[-1] < 0
    [record] = [r for r in caplog.records if r.name == "paramsched.olmo_core"]
    assert "max_tokens=10000 is not a whole number of batches of 768 tokens" in record.message
    with pytest.raises(
        ScheduleError, match="SequentialScheduler at 10752 of t_max=10000; OLMo-core asserts"
    ):
        from_olmo_core("SequentialScheduler", 3e-4, units="tokens", max_tokens=10_000,
                       tokens_per_batch=768, schedulers=[{"scheduler": "ConstantScheduler"}] * 2,
                       schedulers_max=[5_000])  # fmt: skip


def test_branch_of_a_token_file_at_a_quantity_of_tokens(tmp_path):
    (tmp_path / "olmo.toml").write_text(
        '[olmo_core]\nscheduler = "CosWithWarmup"\nunits = "tokens"\nlr = 1e-3\n'
        "warmup_fraction = 0.1\nmax_tokens = 102_400\ntokens_per_batch = 1024\n"
    )
    (tmp_path / "branch.toml").write_text(
        '[branch]\nfrom = "olmo.toml"\nat = "61_440 tokens"\n'
        '[lr]\nphases = [{shape = "linear", to = 0.0, until = "70 steps"}]\n'
    )
    parent, branch = load_schedule(tmp_path / "olmo.toml"), load_schedule(tmp_path / "branch.toml")
    assert branch.lr(np.arange(61)).tolist() == parent.lr(np.arange(61)).tolist()
    assert branch.lr(70) == 0.0 and branch.lr(65) < parent.lr(65)


DROP = object()  # a key left out
HOSTILE = [
    (
        {"scheduler": "CosWithWarmUp"},
        ScheduleError,
        "scheduler='CosWithWarmUp' is not one of .*did you mean 'CosWithWarmup'",
    ),  # fmt: skip
    ({"scheduler": None}, ScheduleError, "scheduler is missing; expected one of ConstantScheduler"),
    ({"warmpu": 3}, ScheduleError, "warmpu is not a field of CosWithWarmup.*did you mean 'warmup'"),
    ({"decay": 3}, ScheduleError, "decay is not a field of CosWithWarmup"),
    ({"warmup_fraction": 0.1}, ScheduleError, "warmup and warmup_fraction: expected exactly one"),
    ({"warmup": None}, ScheduleError, "warmup and warmup_fraction: expected exactly one"),
    ({"warmup_steps": 4}, ScheduleError, "warmup_steps and warmup are both given"),
    ({"warmup": -1}, ScheduleError, "warmup=-1; expected a whole number >= 0"),
    ({"warmup": 2.5}, ScheduleTypeError, "warmup=2.5 is of type float; expected a whole number"),
    ({"warmup": True}, ScheduleTypeError, "warmup=True is of type bool"),
    ({"alpha_f": "0.1"}, ScheduleTypeError, "alpha_f='0.1' is of type str"),
    ({"alpha_f": -0.1}, ScheduleError, "alpha_f=-0.1 is negative"),
    ({"t_max": 0}, ScheduleError, "t_max=0; expected a whole number >= 1"),
    ({"lr": 0.0}, ScheduleError, "lr=0.0; expected a learning rate > 0"),
    ({"lr": None}, ScheduleError, "lr is missing; expected the optimizer's learning rate"),
    ({"units": "samples"}, ScheduleError, "units='samples' is not one of 'steps', 'tokens'"),
    ({"max_steps": None}, ScheduleError, "max_steps is missing; expected the trainer's max_steps"),
    ({"max_tokens": 5}, ScheduleError, "max_tokens with units='steps'; expected max_steps"),
    (
        {"units": "tokens", "max_steps": None, "max_tokens": 500},
        ScheduleError,
        "tokens_per_batch is missing",
    ),  # fmt: skip
    (
        {"warmup_min_lr": 2e-3},
        ScheduleError,
        "warmup_min_lr=0.002 with a rate of 0.001 to rise to; OLMo-core asserts",
    ),  # fmt: skip
    ({"scheduler": "PowerLR", "b": 0.5}, ScheduleError, "b=0.5; expected a negative exponent"),
    (
        {"scheduler": "PowerLR", "warmup": 0},
        ScheduleError,
        "warmup=0; PowerLR divides by its warmup",
    ),
    (
        {"scheduler": "WSD", "decay": 0, "warmup": 1},
        ScheduleError,
        "get_lr at current=100 of t_max=100 divides by zero",
    ),  # fmt: skip
    (
        {"scheduler": "WSD", "decay": 5, "decay_fraction": 0.2},
        ScheduleError,
        "decay and decay_fraction: expected exactly one",
    ),  # fmt: skip
    (
        {"scheduler": "ExponentialScheduler", "warmup": DROP, "lr_min": 0.0},
        ScheduleError,
        "lr_min=0.0; expected a number > 0",
    ),  # fmt: skip
    (
        {"scheduler": "ComposableScheduler", "warmup": DROP},
        ScheduleError,
        "stages is missing; expected a non-empty list of stage tables",
    ),  # fmt: skip
    (
        {"scheduler": "ComposableScheduler", "warmup": DROP, "stages": [{"duration": 5}]},
        ScheduleError,
        "stages\\[0\\].end_lr and end_lr_fraction: expected exactly one",
    ),  # fmt: skip
    (
        {
            "scheduler": "ComposableScheduler",
            "warmup": DROP,
            "stages": [{"duration": 5, "end_lr": 0.0, "shape": "cos"}],
        },
        ScheduleError,
        "stages\\[0\\].shape='cos' is not one of 'linear', 'cosine'",
    ),  # fmt: skip
    (
        {"scheduler": "ComposableScheduler", "warmup": DROP, "stages": [{"length": 5}]},
        ScheduleError,
        "stages\\[0\\].length is not a stage's field.*did you mean 'end_lr'|stages\\[0\\].length is not",
    ),  # fmt: skip
    (
        {
            "scheduler": "SequentialScheduler",
            "warmup": DROP,
            "schedulers": [{"scheduler": "CosWithWarmup", "warmup": 1, "alpha": 0}],
        },
        ScheduleError,
        "schedulers\\[0\\].alpha is not a field of CosWithWarmup.*did you mean 'alpha_f'",
    ),  # fmt: skip
    (
        {
            "scheduler": "SequentialScheduler",
            "warmup": DROP,
            "schedulers": [{"scheduler": "ConstantScheduler"}] * 3,
            "schedulers_max": [10],
        },
        ScheduleError,
        "schedulers_max has 1 lengths for 3 schedulers",
    ),  # fmt: skip
    (
        {"scheduler": "WSDS", "warmup": 5, "period_lengths": [10, 4], "decay": 6},
        ScheduleError,
        "period_lengths\\[0\\]=10 with a decay of 6 after a warmup of 5",
    ),  # fmt: skip
    (
        {
            "scheduler": "WSDS",
            "warmup": 5,
            "period_lengths": [10],
            "decay": 1,
            "period_lr_multipliers": [1.0, 2.0],
        },
        ScheduleError,
        "period_lr_multipliers has 2 values for 1 periods",
    ),  # fmt: skip
    (
        {"scheduler": "WSDS", "warmup": 5, "period_lengths": [10], "decay": 1, "warmup_steps": 3},
        ScheduleError,
        "warmup_steps is not a field of WSDS",
    ),  # fmt: skip
]


@pytest.mark.parametrize("change, error, message", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])  # fmt: skip
def test_hostile_arguments_are_refused_naming_the_key(change, error, message):
    arguments = {"scheduler": "CosWithWarmup", "lr": 1e-3, "warmup": 10, "max_steps": 100}
    arguments.update(change)
    arguments = {key: value for key, value in arguments.items() if value is not DROP}
    with pytest.raises(error, match=message):
        read_olmo_core(arguments)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[olmo_core]\nscheduler = "WSD"\nlr = 1e-3\nwarmup = 3\nmax_step = 9\n',
         "olmo_core.max_step is not a field of WSD.*did you mean 'max_steps'"),
        ('[olmo_core]\nscheduler = "WSD"\nlr = 1e-3\nwarmup = -3\nmax_steps = 9\n',
         "olmo_core.warmup=-3"),
        ('[olmo_core]\nscheduler = "SequentialScheduler"\nlr = 1e-3\nmax_steps = 9\n'
         'schedulers_max = [3]\nschedulers = [{scheduler = "WSD"}, {scheduler = "constant"}]\n',
         "olmo_core.schedulers\\[0\\].warmup and olmo_core.schedulers\\[0\\].warmup_fraction"),
        ("olmo_core = 3\n", "olmo_core is of type int"),
        ('[olmo_core]\nscheduler = "WSD"\n[lr]\nmax_lr = 1.0\n',
         "a \\[olmo_core\\] table comes alone; found also lr"),
    ],
)  # fmt: skip
def test_hostile_files_name_the_key_as_written(tmp_path, text, message):
    refused_file(tmp_path / "olmo.toml", text, message)


def test_a_tampered_checkpoint_names_the_key():
    from paramsched.torch import ParamScheduler

    scheduler = ParamScheduler(optimizer_of(1e-3), from_olmo_core("CosWithWarmup", 1e-3, warmup=3, max_steps=10))  # fmt: skip
    state = scheduler.state_dict()
    state["paramsched"]["schedule"] = state["paramsched"]["schedule"].replace('"warmup": 3', '"warmup": "3"')  # fmt: skip
    with pytest.raises(ScheduleTypeError, match="warmup='3' is of type str"):
        scheduler.load_state_dict(state)


def test_check_summarises_an_olmo_core_file(tmp_path, capsys):
    """check speaks of the run in steps (and tokens with tokens_per_batch), the peak, the
    floor and where the warmup and decay end, as OLMo-core's rates have them."""
    from paramsched.cli import main

    path = tmp_path / "olmo.toml"
    path.write_text(
        '[olmo_core]\nscheduler = "CosWithWarmup"\nunits = "tokens"\nlr = 3e-4\nwarmup = 100_000\n'
        "max_tokens = 1_000_000\ntokens_per_batch = 1_000\n"
    )
    assert main(["check", str(path)]) in (0, None)
    out = capsys.readouterr().out
    assert "run: 1,000 steps, 1,000 samples, 1M tokens" in out
    assert "lr: peak 0.0003, final 3e-05, floor 3e-05; warmup ends at step 99, decay ends at step 999" in out  # fmt: skip
    assert "no findings" in out


def test_command_line_errors_of_an_olmo_core_file_are_one_line(tmp_path, capsys):
    from paramsched.cli import main

    path = tmp_path / "olmo.toml"
    path.write_text('[olmo_core]\nscheduler = "CosWithWarmup"\nlr = 1e-3\nwarmup = 9\nwarmup_fraction = 0.5\nmax_steps = 5\n')  # fmt: skip
    assert main(["table", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "olmo_core.warmup and olmo_core.warmup_fraction" in err


def _written(source, within_ulps=None) -> tuple[dict, list]:
    """What convert writes for `source` (the [olmo_core] table) and OLMo-core's rates for
    the run's steps, by OLMo-core's own class."""
    import tomllib

    from paramsched.formats.convert import convert

    table = tomllib.loads(convert(source, "olmo_core", within_ulps))["olmo_core"]
    theirs = [row[0] for row in olmo_core_rates(olmo_core_arguments(table))][:-1]
    assert read_olmo_core(table).lr(np.arange(len(theirs))).tolist() == theirs
    return table, theirs


CONVERTED = [  # (source, the ulps it is within, and the step of its first difference)
    (dict(hf=dict(name="cosine", lr=3e-4, num_warmup_steps=100, num_training_steps=1000)), 629, 3),
    (dict(hf=dict(name="linear", lr=3e-4, num_warmup_steps=100, num_training_steps=1000)), 529, 3),
    (dict(hf=dict(name="cosine_with_min_lr", lr=1e-3, num_warmup_steps=10, num_training_steps=90,
                  scheduler_specific_kwargs={"min_lr_rate": 0.1})), 6, 3),
    (dict(megatron=dict(lr=3e-4, min_lr=3e-5, lr_decay_style="WSD", lr_warmup_iters=100, train_iters=1000,
                        lr_wsd_decay_style="linear", lr_wsd_decay_iters=200, global_batch_size=8)), 10, 805),
    (dict(megatron=dict(lr=3e-4, min_lr=3e-5, lr_decay_style="cosine", lr_warmup_iters=100,
                        train_iters=1000, global_batch_size=8)), 7, 196),
    (dict(megatron=dict(lr=3e-4, lr_decay_style="constant", lr_warmup_iters=10, train_iters=100, global_batch_size=1)), 0, None),
    (dict(hf=dict(name="constant", lr=3e-4, num_training_steps=50)), 0, None),
]  # fmt: skip


@pytest.mark.parametrize("data, ulps, first", CONVERTED, ids=[str(i) for i in range(len(CONVERTED))])  # fmt: skip
def test_convert_writes_what_olmo_cores_classes_run(data, ulps, first):
    """convert --to olmo_core: the table written, run by OLMo-core's own class as its
    trainer runs it, gives the rate each step of the source's run uses, within the ulps the
    note names (to the bit where none), and refuses with fewer."""
    from paramsched.formats._convert_io import ulps as apart
    from paramsched.recipe import schedule_from_data

    source = schedule_from_data(data)
    table, theirs = _written(source, ulps or None)
    steps = source.run.samples_at_step(np.arange(len(theirs)))
    distance = apart(source.lr(steps), theirs)
    assert int(distance.max()) == ulps
    if first is not None:
        assert int(np.flatnonzero(distance)[0]) == first
        with pytest.raises(ScheduleError, match=f"at step {first} its lr is .* apart\\); nothing written"):  # fmt: skip
            _written(source)
    if "hf" in data:  # transformers itself, for the source
        from stacks import hf_rates

        assert [row[0] for row in hf_rates(len(theirs) - 1, **data["hf"])] == source.lr(
            steps
        ).tolist()


@pytest.mark.parametrize(
    "data, message",
    [
        (dict(megatron=dict(lr=1e-3, min_lr=0.0, lr_decay_style="WSD", lr_warmup_iters=0, train_iters=100,
                            lr_wsd_decay_style="exponential", lr_wsd_decay_iters=20, global_batch_size=4)),
         "OLMo-core has no exponential anneal"),
        (dict(megatron=dict(lr=1e-3, lr_decay_style="inverse-square-root", lr_warmup_iters=10, train_iters=100, global_batch_size=4)),
         "OLMo-core has no inverse-square-root decay"),
        (dict(megatron=dict(lr=1e-3, lr_decay_style="cosine", train_samples=1000, global_batch_size=16,
                            rampup_batch_size=[4, 4, 200])),
         "OLMo-core has no batch-size schedule"),
        (dict(megatron=dict(lr=1e-3, lr_decay_style="cosine", train_iters=100, start_weight_decay=0.0,
                            end_weight_decay=0.1, weight_decay_incr_style="linear", global_batch_size=4)),
         "OLMo-core has no weight decay schedule"),
        (dict(timm=dict(lr=1e-3, sched="tanh", num_epochs=10, step_on_epochs=False, updates_per_epoch=4)),
         "OLMo-core has no tanh schedule as timm runs it"),
        (dict(run=dict(clock="tokens", total="1000 tokens"),
              lr=dict(max_lr=1e-3, phases=[dict(shape="cosine", to=0.0, until="100%")])),
         "the source's clock counts the tokens each step consumed"),
    ],
)  # fmt: skip
def test_what_olmo_core_cannot_express_is_refused_by_name(data, message):
    from paramsched.formats.convert import convert
    from paramsched.recipe import schedule_from_data

    with pytest.raises(ScheduleError, match=message):
        convert(schedule_from_data(data), "olmo_core", 1000)


def test_an_olmo_core_file_converts_to_its_own_table(tmp_path, capsys):
    from paramsched.cli import main

    path = tmp_path / "olmo.toml"
    path.write_text(
        '[olmo_core]\nscheduler = "WSDS"\nlr = 1e-3\nmax_steps = 90\nperiod_lengths = [40, 50]\n'
        "warmup = 5\ndecay_fraction = 0.2\nperiod_lr_multipliers = [1.0, 0.5]\n"
    )
    assert main(["convert", str(path), "--to", "olmo_core", "--out", str(tmp_path / "out.toml")]) in (0, None)  # fmt: skip
    assert load_schedule(tmp_path / "out.toml") == load_schedule(path)
    assert main(["convert", str(path), "--to", "hf"]) == 2
    assert "a olmo_core WSDS schedule converts only to toml" in capsys.readouterr().err


def test_a_field_given_under_both_names_names_each_as_written():
    arguments = {"scheduler": "CosWithWarmup", "lr": 1e-3, "warmup_steps": 4, "warmup": 3, "max_steps": 10}  # fmt: skip
    with pytest.raises(ScheduleError, match="^warmup and warmup_steps are both given"):
        read_olmo_core(arguments)


def _nested(depth: int) -> dict:
    table = {"scheduler": "ConstantScheduler"}
    for _ in range(depth):
        table = {"scheduler": "SequentialScheduler", "schedulers_max": [1],
                 "schedulers": [{"scheduler": "ConstantScheduler"}, table]}  # fmt: skip
    return table


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"scheduler": "SequentialScheduler", "schedulers_max": [1] * 100_000,
          "schedulers": [{"scheduler": "ConstantScheduler"}] * 100_001},
         "^schedulers_max has 100000 entries, making more than 128 .*expected at most 128$"),
        ({"scheduler": "WSDS", "period_lengths": [10] * 129, "warmup": 1, "decay": 1},
         "^period_lengths has 129 entries"),
        ({"scheduler": "ComposableScheduler", "stages": [{"duration": 1, "end_lr": 0.0}] * 10**6},
         "^stages has 1000000 entries"),
        (_nested(2000), "^(schedulers\\[1\\]\\.){16}schedulers nests tables more than 16 deep"),
    ],
)  # fmt: skip
def test_a_table_too_large_to_evaluate_is_refused_at_once(fields, message):
    import time

    start = time.perf_counter()
    with pytest.raises(ScheduleError, match=message):
        from_olmo_core(lr=1e-3, max_steps=10**6, **fields)
    assert time.perf_counter() - start < 1.0


def test_the_largest_table_taken_is_evaluated_in_seconds():
    import time

    start = time.perf_counter()
    s = from_olmo_core("WSDS", 1e-3, max_steps=1280, period_lengths=[10] * 128, warmup=1, decay=1)
    assert s.lr(8) == 1e-3 and s.lr(9) == 0.0  # the first period's decay of one step
    assert from_olmo_core(lr=1e-3, max_steps=100, **_nested(16)).lr(50) == 1e-3
    assert time.perf_counter() - start < 5.0


def test_olmo_cores_own_spellings_of_a_class_are_read_or_refused_with_what_to_write(tmp_path):
    path = "olmo_core.optim.scheduler.CosWithWarmup"  # as OLMo-core's config JSON names it
    assert from_olmo_core(path, 1e-3, warmup=3, max_steps=10) == from_olmo_core(
        "CosWithWarmup", 1e-3, warmup=3, max_steps=10
    )
    with pytest.raises(ScheduleError, match="^scheduler='CosWithWarmup\\(warmup=3\\)' is a class's "
                       "repr; expected scheduler = 'CosWithWarmup' and each field as a key"):  # fmt: skip
        from_olmo_core("CosWithWarmup(warmup=3)", 1e-3, max_steps=10)
    refused_file(
        tmp_path / "olmo.toml",
        f'[olmo_core]\n_CLASS_ = "{path}"\nwarmup = 3\nlr = 1e-3\nmax_steps = 10\n',
        "olmo_core._CLASS_='olmo_core.optim.scheduler.CosWithWarmup' is the class key of "
        "OLMo-core's config JSON; expected scheduler = 'CosWithWarmup'",
    )
