"""paramsched.formats.torchtitan: torchtitan's schedule, differential against torchtitan's
own code, and ``convert --to torchtitan`` checked by running torchtitan on what is written.

torchtitan's scheduler is built through its public builder, unmodified:
``LRSchedulersContainer.Config(...).build(optimizers=[optimizer], training_steps=steps)``
on a plain torch SGD optimizer on the CPU (`stacks.torchtitan_rates`), and stepped after
the optimizer as torchtitan's trainer steps it.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, ScheduleTypeError, from_hf, from_torchtitan, load_schedule
from paramsched.formats._convert_io import MAX_ULPS, read_flags, ulps
from paramsched.formats.convert import convert
from paramsched.formats.torchtitan import DECAY_TYPES

pytest.importorskip("torchtitan.components.optimizer.lr_scheduler")

from stacks import (  # noqa: E402
    hf_rates,
    megatron_rates,
    refused_file,
    run_and_resume,
    torchtitan_rates,
)


class Kept(logging.Handler):
    """The WARNINGs paramsched logs while it is attached (hypothesis runs many examples
    in one test, so caplog's per-test capture does not do)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("paramsched").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("paramsched").removeHandler(self)


@st.composite
def torchtitan_arguments(draw, decay_type: str) -> dict:
    """Random arguments torchtitan runs: warmups longer than the run (torchtitan cuts
    them), decay ratios that round half to even or overflow the run, a total_steps past
    the training's steps, floors from 0 to 1."""
    steps = draw(st.integers(1, 80))
    arguments = {
        "lr": draw(st.floats(1e-6, 1.0)),
        "steps": steps,
        "warmup_steps": draw(st.integers(0, 90)),
        "decay_type": decay_type,
        "min_lr_factor": draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0.0, 1.0)),
    }
    if draw(st.booleans()):
        arguments["decay_ratio"] = draw(
            st.sampled_from([0.0, 0.5, 0.25, 0.125, 0.8, 1.0]) | st.floats(0.0, 1.0)
        )
    if draw(st.booleans()):
        arguments["total_steps"] = steps + draw(st.integers(0, 30))
    return arguments


@pytest.mark.parametrize("decay_type", DECAY_TYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_decay_type_equals_torchtitan(decay_type, data):
    """lr(n) == the rate torchtitan has set after n steps, for n = 0..steps, one step and
    an array, and a second group of another base rate; and paramsched warns where
    torchtitan warns (it cuts the warmup or the decay), once each."""
    arguments = data.draw(torchtitan_arguments(decay_type))
    with Kept() as kept:
        schedule = from_torchtitan(**arguments)
    expected, warned = torchtitan_rates(groups=2, **arguments)
    n = np.arange(arguments["steps"] + 1)
    assert [schedule.lr(k) for k in n.tolist()] == [row[0] for row in expected]
    assert schedule.lr(n).tolist() == [row[0] for row in expected]
    assert schedule.lr(n, max_lr=arguments["lr"] * 2).tolist() == [row[1] for row in expected]
    assert len(kept.messages) == len(warned)
    assert all(len(message) <= 200 for message in kept.messages)


#: torchtitan's rates over its llama3 debug model's schedule (lr 8e-4, 10 steps, warmup
#: 2, decay_ratio 0.8, linear) and over a cosine whose decay, 10 * 0.25 = 2.5 steps,
#: rounds half to even (2 steps), as torchtitan 0.3.0 sets them.
GOLDEN = [
    (
        dict(lr=8e-4, steps=10, warmup_steps=2, decay_ratio=0.8, decay_type="linear"),
        [0.0004, 0.0008, 0.0008, 0.0007, 0.0006000000000000001, 0.0005, 0.0004,
         0.00030000000000000003, 0.0002, 0.0001, 0.0],
    ),
    (
        dict(lr=3e-4, steps=10, warmup_steps=3, decay_ratio=0.25, decay_type="cosine",
             min_lr_factor=0.1),
        [9.999999999999999e-05, 0.00019999999999999998, 0.0003, 0.0003, 0.0003, 0.0003,
         0.0003, 0.0003, 0.0003, 0.000165, 2.9999999999999997e-05],
    ),
]  # fmt: skip


@pytest.mark.parametrize("arguments, rates", GOLDEN, ids=["debugmodel", "half-to-even"])
def test_golden_rates(arguments, rates):
    schedule = from_torchtitan(**arguments)
    assert schedule.lr(np.arange(11)).tolist() == rates
    assert [row[0] for row in torchtitan_rates(**arguments)[0]] == rates


def test_torchtitan_table_is_from_torchtitan(tmp_path):
    path = tmp_path / "torchtitan.toml"
    path.write_text(
        "[torchtitan]\nlr = 3e-4\nsteps = 100\nwarmup_steps = 10\ndecay_ratio = 0.3\n"
        'decay_type = "sqrt"\nmin_lr_factor = 0.1\n'
    )
    schedule = load_schedule(path)
    arguments = dict(warmup_steps=10, decay_ratio=0.3, decay_type="sqrt", min_lr_factor=0.1)
    assert schedule == from_torchtitan(3e-4, 100, **arguments)
    expected, _ = torchtitan_rates(lr=3e-4, steps=100, **arguments)
    assert schedule.lr(np.arange(101)).tolist() == [row[0] for row in expected]


def test_meaning_round_trips_and_defaults_are_one_spelling():
    import copy
    import pickle

    plain = from_torchtitan(1e-3, 100)
    spelled = from_torchtitan(1e-3, 100, warmup_steps=200, total_steps=100, min_lr_factor=0)
    assert plain == spelled and hash(plain) == hash(spelled)
    assert from_torchtitan(**plain.meaning()) == plain
    assert plain.meaning()["total_steps"] == 100
    for copied in (pickle.loads(pickle.dumps(plain)), copy.deepcopy(plain)):
        assert copied == plain and copied.run.total == plain.run.total


def test_torch_scheduler_and_resume_follow_torchtitan():
    """ParamScheduler over two groups writes torchtitan's rates (each group's first lr is
    its base rate), and a checkpoint taken midway resumes them."""

    arguments = dict(lr=1e-3, steps=60, warmup_steps=7, decay_ratio=0.4, decay_type="cosine",
                     min_lr_factor=0.1)  # fmt: skip
    expected, _ = torchtitan_rates(groups=2, **arguments)
    run_and_resume(from_torchtitan(**arguments), from_torchtitan(5e-4, 10), expected)


def test_the_counting_convention():
    """The warmup's first rate is lr / warmup_steps before any step; the peak is held one
    step more than the run has room for (the virtual last step); the floor is reached
    after exactly total_steps steps, and held past them."""
    s = from_torchtitan(1.0, 10, warmup_steps=4, decay_ratio=0.5, min_lr_factor=0.25)
    assert s.lr(0) == 0.25 and s.lr(3) == 1.0
    assert [s.lr(n) for n in (4, 5)] == [1.0, 1.0]  # stable: 10 + 1 - 4 - 5 = 2 steps
    assert s.lr(6) < 1.0 and s.lr(9) > 0.25 and s.lr(10) == 0.25 == s.lr(50)
    no_ratio = from_torchtitan(1.0, 10, warmup_steps=4)  # decays from the warmup's end
    assert no_ratio.lr(4) == 1.0 > no_ratio.lr(5) and no_ratio.lr(10) == 0.0


def test_torchtitan_s_cuts_are_warned_in_one_line(caplog):
    with caplog.at_level(logging.WARNING, "paramsched"):
        cut = from_torchtitan(1e-3, 10, warmup_steps=12, decay_ratio=0.5)
    assert caplog.messages == [
        "warmup_steps=12 is more than the 10 total steps; torchtitan cuts the warmup to 10 "
        "steps, and so does this schedule",
        "decay_ratio=0.5 makes a decay of 5 steps, which with the warmup of 10 exceeds the 10 "
        "total steps; torchtitan cuts the decay to 0 steps, and so does this schedule",
    ]
    assert cut.lr(9) == cut.lr(10) == 1e-3 and cut.min_lr == 1e-3
    expected, warned = torchtitan_rates(lr=1e-3, steps=10, warmup_steps=12, decay_ratio=0.5)
    assert len(warned) == 2 and cut.lr(np.arange(11)).tolist() == [r[0] for r in expected]


HOSTILE = [
    ({"lr": None}, ScheduleError, "lr is missing; expected the optimizer's learning rate"),
    ({"steps": None}, ScheduleError, "steps is missing; expected training.steps"),
    ({"lr": -1e-3}, ScheduleError, "lr=-0.001 is negative; expected a learning rate >= 0"),
    ({"lr": "1e-3"}, ScheduleTypeError, "lr='1e-3' is of type str"),
    ({"steps": 0}, ScheduleError, "steps=0; expected a whole number >= 1"),
    ({"steps": 10.0}, ScheduleTypeError, "steps=10.0 is of type float; expected a whole number"),
    ({"warmup_steps": -1}, ScheduleError, "warmup_steps=-1; expected a whole number >= 0"),
    ({"warmup_steps": True}, ScheduleTypeError, "warmup_steps=True is of type bool"),
    (
        {"total_steps": 50},
        ScheduleError,
        "total_steps=50 is less than steps=100: torchtitan carries its decay on past "
        "total_steps, below min_lr_factor",
    ),
    ({"decay_ratio": 1.5}, ScheduleError, "decay_ratio=1.5; expected a ratio in \\[0, 1\\]"),
    ({"decay_ratio": float("nan")}, ScheduleError, "decay_ratio=nan is not finite"),
    (
        {"decay_type": "cos"},
        ScheduleError,
        "decay_type='cos' is not one of 'linear', 'sqrt', 'cosine' \\(did you mean 'cosine'\\?\\)",
    ),
    (
        {"decay_type": "1-sqrt"},
        ScheduleError,
        "decay_type='1-sqrt' is not one of .*did you mean 'sqrt'",
    ),
    (
        {"min_lr_factor": 2},
        ScheduleError,
        "min_lr_factor=2; expected a factor in \\[0, 1\\] \\(the floor is lr \\* min_lr_factor\\)",
    ),
    ({"min_lr_factor": -0.1}, ScheduleError, "min_lr_factor=-0.1; expected a factor in"),
]


@pytest.mark.parametrize(
    "change, error, message", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))]
)
def test_hostile_arguments_are_refused_naming_the_key(change, error, message):
    arguments = {"lr": 1e-3, "steps": 100, **change}
    with pytest.raises(error, match=message):
        from_torchtitan(**arguments)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[torchtitan]\nlr = 0.1\nstep = 3\n",
            "torchtitan.step is not a key of a torchtitan schedule; expected one of lr, steps, "
            "warmup_steps, total_steps, decay_ratio, decay_type, min_lr_factor \\(did you mean "
            "'steps'\\?\\)",
        ),
        (
            "[torchtitan]\nlr = 0.1\nsteps = 10\nwarmup_step = 3\n",
            "torchtitan.warmup_step is not a key.*did you mean 'warmup_steps'",
        ),
        ("[torchtitan]\nsteps = 10\n", "torchtitan.lr is missing"),
        (
            "[torchtitan]\nlr = 0.1\nsteps = 10\ndecay_type = 'cosin'\n",
            "torchtitan.decay_type='cosin' is not one of",
        ),
        ('torchtitan = "cosine"\n', "torchtitan is of type str"),
        (
            '[torchtitan]\nlr = 0.1\nsteps = 10\n[hf]\nname = "linear"\n',
            "a \\[hf\\] table comes alone|a \\[torchtitan\\] table comes alone",
        ),
    ],
)
def test_hostile_files_name_the_key_as_written(tmp_path, text, message):
    refused_file(tmp_path / "torchtitan.toml", text, message)


# ------------------------------------------------------------ check, table, preview


def test_check_summarizes_warmup_decay_and_floor(tmp_path, capsys):
    """check on a [torchtitan] file: the warmup reaches its peak after warmup_steps - 1
    steps, the decay ends at total_steps at lr * min_lr_factor; a run shorter than
    total_steps ends before the floor (S102); table marks where the decay starts."""
    from paramsched.cli import main

    path = tmp_path / "torchtitan.toml"
    table = "[torchtitan]\nlr = 3e-4\nsteps = 1000\nwarmup_steps = 100\ndecay_ratio = 0.2\n"
    path.write_text(table + 'decay_type = "cosine"\nmin_lr_factor = 0.1\n')
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = report["summary"]
    assert (summary["warmup_end_step"], summary["decay_end_step"]) == (99, 1000)
    assert summary["floor_lr"] == summary["final_lr"] == 3e-4 * 0.1
    assert summary["peak_lr"] == 3e-4 and report["findings"] == []
    assert main(["table", str(path)]) == 0
    events = [line for line in capsys.readouterr().out.splitlines() if "ends" in line]
    assert [line.split()[0] for line in events] == ["99", "800"]
    assert "(stable) ends" in events[1]  # the decay starts after step 800: 1,000 - 200

    path.write_text(table + "total_steps = 2000\n")
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["steps"] == 1000
    # the decay begins after step 1,600 of total_steps, past the run's end (S109)
    assert [f["code"] for f in report["findings"]] == ["S102", "S109"]
    assert (
        "before the decay reaches its floor (0 at step 2,000)" in report["findings"][0]["message"]
    )


def test_check_keeps_torchtitan_s_cuts_as_notes(tmp_path, capsys):
    from paramsched.cli import main

    path = tmp_path / "torchtitan.toml"
    path.write_text("[torchtitan]\nlr = 3e-4\nsteps = 100\n")  # the default warmup: 200
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note S113: torchtitan.warmup_steps=200 is more than the 100 total steps" in out
    assert "warmup ends at step 99, no decay" in out


# ------------------------------------------------------------ convert --to torchtitan


def written_rates(text: str, groups: int = 1) -> list[float]:
    """torchtitan's own rates for the [torchtitan] table `text` that convert wrote."""
    import tomllib

    table = tomllib.loads(text)["torchtitan"]
    return [row[0] for row in torchtitan_rates(groups=groups, **table)[0]]


@st.composite
def hf_without_warmup(draw) -> dict:
    """transformers' arguments torchtitan can run: no warmup (torchtitan's warmup never
    starts at 0), a cosine of half a cycle, a constant, a WSD of each decay type."""
    name = draw(st.sampled_from(["cosine", "cosine_with_min_lr", "constant", "linear",
                                 "warmup_stable_decay"]))  # fmt: skip
    lr, training = draw(st.floats(1e-6, 1.0)), draw(st.integers(1, 150))
    arguments = {"name": name, "lr": lr, "num_training_steps": training}
    if name != "constant":
        arguments["num_warmup_steps"] = 0
    if name == "cosine_with_min_lr":
        arguments["scheduler_specific_kwargs"] = {"min_lr_rate": draw(st.floats(0.0, 1.0))}
    if name == "warmup_stable_decay":
        arguments["scheduler_specific_kwargs"] = {
            "num_decay_steps": draw(st.integers(1, training)),
            "decay_type": draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            "min_lr_ratio": draw(st.sampled_from([0.0, 0.1]) | st.floats(0.0, 1.0)),
        }
    return arguments


@settings(max_examples=80, deadline=None)
@given(arguments=hf_without_warmup())
def test_hf_to_torchtitan_runs_in_torchtitan(arguments):
    """transformers' schedule → the [torchtitan] table → torchtitan's own code: the rates
    transformers sets, to the bit where written without ulps, else within those accepted."""
    try:
        text = convert(from_hf(**arguments), "torchtitan")
        accepted = 0
    except ScheduleError as error:
        assert " apart); nothing written" in str(error), error
        text = convert(from_hf(**arguments), "torchtitan", within_ulps=MAX_ULPS)
        accepted = MAX_ULPS
    titan = written_rates(text, groups=1)
    transformers = [row[0] for row in hf_rates(len(titan) - 1, **arguments)]
    apart = int(ulps(titan, transformers).max())
    assert apart <= accepted and (apart == 0) == (accepted == 0), (arguments, text)
    if arguments["name"] != "linear":
        assert accepted == 0  # these are torchtitan's operations, in its order


@pytest.mark.parametrize("anneal", ["linear", "cosine", "minus_sqrt"])
@pytest.mark.parametrize("batch", [1, 256])
def test_megatron_wsd_to_torchtitan_runs_in_torchtitan(anneal, batch):
    """Megatron's WSD without warmup → the [torchtitan] table → torchtitan: megatron-core's
    rates to the bit (to a floor of 0; a floor of its own within a few ulps, accepted)."""
    pytest.importorskip("megatron.core.optimizer_param_scheduler")
    flags = (f"--lr 0.0003 --lr-decay-style WSD --lr-wsd-decay-style {anneal} "
             f"--lr-wsd-decay-iters 200 --train-iters 1000 --global-batch-size {batch}")  # fmt: skip
    text = convert(read_flags(flags), "torchtitan")
    assert "decay_ratio = 0.2\n" in text and "warmup_steps = 0\n" in text
    megatron = [rates[0][0] for rates in megatron_rates(flags)]
    assert written_rates(text) == megatron
    floored = flags + " --min-lr 3e-5"
    text = convert(read_flags(floored), "torchtitan", within_ulps=MAX_ULPS)
    megatron = [rates[0][0] for rates in megatron_rates(floored)]
    assert 0 < int(ulps(written_rates(text), megatron).max()) <= 10


def test_an_exact_conversion_is_the_table_torchtitan_reads(caplog):
    with caplog.at_level(logging.WARNING, "paramsched"):
        text = convert(from_hf("cosine", 3e-4, 0, 1000), "torchtitan")
    assert text == (
        '[torchtitan]\nlr = 0.0003\nsteps = 1000\nwarmup_steps = 0\ndecay_type = "cosine"\n'
    )
    assert caplog.messages == []
    titan = from_torchtitan(3e-4, 100, warmup_steps=10, total_steps=150, decay_type="sqrt")
    again = convert(titan, "torchtitan")
    assert "total_steps = 150\n" in again and "decay_ratio" not in again
    toml = convert(titan, "toml")
    assert toml.startswith("[torchtitan]\n") and toml == again


WARMUP = (
    "torchtitan has no warmup that starts at 0.0 (its rate after n < warmup_steps steps is "
    "lr * (n + 1) / warmup_steps: lr / warmup_steps before the first step); nothing written"
)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: from_hf("linear", 3e-4, 100, 1000), WARMUP),
        (lambda: from_hf("cosine", 3e-4, 100, 1000), WARMUP),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style WSD --lr-wsd-decay-style linear "
                "--lr-wsd-decay-iters 200 --lr-warmup-iters 10 --train-iters "
                "1000 --global-batch-size 1"
            ),  # fmt: skip
            WARMUP,
        ),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style WSD --lr-wsd-decay-iters 200 "
                "--train-iters 1000 --global-batch-size 1"
            ),  # fmt: skip
            "torchtitan has no exponential decay; nothing written",
        ),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style cosine --lr-decay-iters 500 "
                "--train-iters 1000 --global-batch-size 1"
            ),  # fmt: skip
            "torchtitan has no floor held after its decay (the source's decay ends at step "
            "500, its training at step 1000; torchtitan's decay ends at total_steps, which "
            "is at least steps); nothing written",
        ),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style inverse-square-root "
                "--lr-warmup-iters 0 --train-iters 100 --global-batch-size 1"
            ),  # fmt: skip
            "torchtitan has no inverse square root decay; nothing written",
        ),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style cosine --train-samples 25600 "
                "--global-batch-size 256 --rampup-batch-size 64 64 12800"
            ),  # fmt: skip
            "torchtitan has no batch-size schedule (it counts optimizer steps of one batch "
            "size, and the source's batch size changes: a ramp-up or stages); nothing written",
        ),
        (
            lambda: read_flags(
                "--lr 3e-4 --lr-decay-style cosine --train-iters 100 "
                "--global-batch-size 1 --start-weight-decay 0.0 "
                "--end-weight-decay 0.1 --weight-decay-incr-style linear"
            ),  # fmt: skip
            "torchtitan has no weight decay schedule (the source's goes from 0.0 to 0.1; "
            "torchtitan leaves the optimizer's); nothing written",
        ),
        (
            lambda: from_hf("cosine_warmup_with_min_lr", 1e-3, 0, 100, {"min_lr_rate": 0.1}),
            "torchtitan has no decay that falls from the step its warmup ends (transformers' "
            "cosine_warmup_with_min_lr; torchtitan holds the peak one step there); nothing "
            "written",
        ),
        (
            lambda: from_hf("inverse_sqrt", 1e-3, 10, 100),
            WARMUP,
        ),
    ],
    ids=[
        "hf-linear-warmup",
        "hf-cosine-warmup",
        "megatron-warmup",
        "exponential",
        "floor-held",
        "inverse-sqrt",
        "ramp",
        "weight-decay",
        "shifted-cosine",
        "inverse-sqrt-warmup",
    ],  # fmt: skip
)
def test_what_torchtitan_cannot_express_is_refused_by_name(make, message):
    with pytest.raises(ScheduleError) as refused:
        convert(make(), "torchtitan", within_ulps=MAX_ULPS)
    assert str(refused.value) == message


def test_a_linear_decay_differs_in_ulps_and_is_accepted_only_when_asked():
    """transformers' linear ``(t - n) / t`` is not torchtitan's ``1 - n / t``: refused at
    the first step they part, written with --within-ulps and one WARNING."""
    schedule = from_hf("linear", 3e-4, 0, 1000)
    with pytest.raises(ScheduleError, match="torchtitan does not run this schedule: at step "):
        convert(schedule, "torchtitan")
    text = convert(schedule, "torchtitan", within_ulps=MAX_ULPS)
    transformers = [row[0] for row in hf_rates(1000, lr=3e-4, name="linear",
                                               num_warmup_steps=0, num_training_steps=1000)]  # fmt: skip
    assert 0 < int(ulps(written_rates(text), transformers).max()) <= 1000


def test_the_command_writes_the_table(tmp_path, monkeypatch, capsys):
    from paramsched.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "wsd.toml").write_text(
        '[hf]\nname = "warmup_stable_decay"\nlr = 3e-4\nnum_warmup_steps = 0\n'
        "num_training_steps = 1000\nscheduler_specific_kwargs = { num_decay_steps = 200, "
        'decay_type = "1-sqrt", min_lr_ratio = 0.1 }\n'
    )
    assert main(["convert", "wsd.toml", "--to", "torchtitan"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "[torchtitan]\nlr = 0.0003\nsteps = 1000\nwarmup_steps = 0\ndecay_ratio = 0.2\n"
        'decay_type = "sqrt"\nmin_lr_factor = 0.1\n'
    )
    assert main(["convert", "wsd.toml", "--to", "torchtitan", "--out", "titan.toml"]) == 0
    assert capsys.readouterr().out == "wrote the torchtitan configuration to titan.toml\n"
    written, source = load_schedule("titan.toml"), load_schedule("wsd.toml")
    assert written.lr(np.arange(1001)).tolist() == source.lr(np.arange(1001)).tolist()
    (tmp_path / "warm.toml").write_text(
        '[hf]\nname = "cosine"\nlr = 3e-4\nnum_warmup_steps = 100\nnum_training_steps = 1000\n'
    )
    assert main(["convert", "warm.toml", "--to", "torchtitan"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"paramsched convert: error: {WARMUP}\n"


@pytest.mark.parametrize("to", ["megatron", "hf"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_torchtitan_to_megatron_and_hf_runs_in_their_code(to, data):
    """torchtitan's schedule without warmup → Megatron's flags (megatron-core) or
    get_scheduler's arguments (transformers): torchtitan's rates, to the bit where written
    without ulps, else within those accepted; with a warmup, refused by name."""
    arguments = data.draw(torchtitan_arguments(data.draw(st.sampled_from(DECAY_TYPES))))
    schedule = from_torchtitan(**arguments)
    try:
        text = convert(schedule, to)
        accepted = 0
    except ScheduleError as error:
        if "has no warmup that starts at lr / warmup_steps" in str(error):
            assert schedule.lr(0) < schedule.lr(1)  # a warmup of at least one step
            return
        assert " apart); nothing written" in str(error), error
        text = convert(schedule, to, within_ulps=MAX_ULPS)
        accepted = MAX_ULPS
    titan = [row[0] for row in torchtitan_rates(**arguments)[0]]
    if to == "megatron":
        pytest.importorskip("megatron.core.optimizer_param_scheduler")
        theirs = [rates[0][0] for rates in megatron_rates(text)]
    else:
        theirs = [row[0] for row in hf_rates(len(titan) - 1, **json.loads(text))]
    apart = int(ulps(theirs, titan).max())
    assert len(theirs) == len(titan) and apart <= accepted, (arguments, text)
    assert (apart == 0) == (accepted == 0)
    if arguments["min_lr_factor"] == 0.0:
        assert accepted == 0, (arguments, text)  # a floor of 0: the same operations


# ------------------------------------------------------------ the page


PAGE = __import__("pathlib").Path(__file__).parent.parent / "docs" / "stacks" / "torchtitan.md"


def page_blocks(language: str) -> list[str]:
    import re

    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), re.M | re.S)


@pytest.mark.slow
def test_the_page_runs_as_written(tmp_path):
    """docs/stacks/torchtitan.md: its Python blocks run in order in a fresh interpreter
    beside its named TOML files, and each ``$ paramsched`` example prints what it shows
    (a command shown with ``|| echo "exit status $?"`` ends with its status)."""
    import os
    import shlex
    import subprocess
    import sys

    for block in page_blocks("toml"):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".toml"):
            (tmp_path / first[2:]).write_text(block)
    script = "\n\n".join(page_blocks("python"))
    (tmp_path / "page.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(PAGE.parent.parent.parent / "src")}
    ran = subprocess.run([sys.executable, "page.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    consoles = page_blocks("console")
    assert len(consoles) >= 5
    for block in consoles:
        command, *shown = block.splitlines()
        assert command.startswith("$ paramsched ")
        status = 0
        if command.endswith(' || echo "exit status $?"'):
            command = command.removesuffix(' || echo "exit status $?"')
            status = int(shown.pop().split()[-1])
        argv = shlex.split(command)[2:]  # after "$ paramsched"
        result = subprocess.run([sys.executable, "-m", "paramsched", *argv], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
        assert result.returncode == status, (command, result.stderr)
        assert result.stdout + result.stderr == "\n".join(shown) + "\n", command
