"""paramsched.formats._timm_plan: ``convert`` from a ``[timm]`` table, checked by running
timm's own scheduler for the source and the target's own code (megatron-core's
OptimizerParamScheduler, transformers' get_scheduler, torchtitan's builder, OLMo-core's
classes) for what is written; refusals by name; the command line."""

from __future__ import annotations

import json
import logging
import re
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, from_timm
from paramsched.cli import main
from paramsched.formats._convert_io import MAX_ULPS, ulps
from paramsched.formats.convert import convert

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

pytest.importorskip("torch")

from stacks import timm_rates, timm_scheduler  # noqa: E402

timm_scheduler()  # skips the module when timm is not installed
pytestmark = pytest.mark.megatron

#: The largest distance, in ulps, between the target's own rates and timm's, by timm's
#: schedule and the target, as measured over 6,000 random timm arguments (decays of up to
#: 156 steps) and 4,800 examples of the test below, for warmups that rise (warmup_lr <=
#: lr); a conversion accepted with ``within_ulps=MAX_ULPS`` stays within it. 0: to the
#: bit, always. Two distances grow with T, the decay's length in steps: ``"T"``, a linear
#: decay whose target computes ``1 - t / T`` in another order than timm (measured: at most
#: 2 T), and ``"T2"``, a cosine whose target computes its angle ``pi * (t / T)`` where timm
#: computes ``pi * t / T``: an ulp of the cosine near -1, where ``1 + cos`` nears 0, is up
#: to ``2 T^2 / pi^2`` ulps of the rate (measured: at most 0.19 T^2; bound two ulps of the
#: cosine, 0.41 T^2). A cosine long enough parts by more than `MAX_ULPS` and is refused,
#: naming the step.
MEASURED_ULPS = {
    ("cosine", "megatron"): "T2",
    ("cosine", "hf"): "T2",
    ("cosine", "torchtitan"): "T2",
    ("cosine", "olmo_core"): 2,
    ("poly", "megatron"): 2,
    ("poly", "hf"): "T",
    ("poly", "torchtitan"): 3,
    ("poly", "olmo_core"): "T",
    ("constant", "megatron"): 2,
    ("constant", "hf"): 2,
    ("constant", "torchtitan"): 0,
    ("constant", "olmo_core"): 2,
    ("wsd", "megatron"): 2,
    ("wsd", "hf"): 3,
    ("wsd", "torchtitan"): 3,
    ("wsd", "olmo_core"): "T",
}
TARGETS = ("megatron", "hf", "torchtitan", "olmo_core")


def measured(sched: str, target: str, arguments: dict) -> int:
    """`MEASURED_ULPS` for timm's `sched` converted to `target`."""
    bound = MEASURED_ULPS[(sched, target)]
    steps = arguments["num_epochs"] * arguments["updates_per_epoch"]
    if bound == "T":
        return 2 * steps
    if bound == "T2":
        return int(0.41 * steps**2) + 2
    return bound


@st.composite
def timm_arguments(draw, sched: str) -> dict:
    """Random arguments of timm's `sched` that a target can run: an optimizer step per
    timm step (per update, or one update an epoch), a warmup as a prefix that rises."""
    on_epochs = draw(st.booleans())
    lr = draw(st.floats(1e-6, 1.0))
    arguments = {
        "sched": sched,
        "lr": lr,
        "num_epochs": draw(st.integers(1, 12)),
        "warmup_epochs": draw(st.sampled_from([0, 0, 1, 2, 3])),
        "warmup_prefix": True,
        "warmup_lr": draw(st.sampled_from([0.0, 0.0, 1e-5, 1e-7]).filter(lambda w: w <= lr)),
        "step_on_epochs": on_epochs,
        "updates_per_epoch": 1 if on_epochs else draw(st.integers(1, 13)),
    }
    if sched in ("cosine", "poly", "wsd"):
        floor = draw(st.sampled_from([0.0, 0.0, 1e-6]) | st.floats(0.0, 0.5).map(lambda r: r * lr))
        arguments.update(min_lr=floor, cooldown_epochs=draw(st.sampled_from([0, 0, 1, 2])))
    if sched == "poly":
        arguments["decay_rate"] = draw(st.sampled_from([1, 1.0]))
    if sched == "wsd":
        arguments.update(
            decay_fn=draw(st.sampled_from(["linear", "1-sqrt", "cosine", "power"])),
            decay_epochs=draw(st.sampled_from([0.2, 0.5, 1, 2])),
            warmup_prefix=draw(st.booleans()),
        )
    return arguments


def target_rates(to: str, text: str, steps: int) -> list[float]:
    """The rates the target's own code sets after 0..`steps` optimizer steps, for the
    configuration `text` that convert wrote."""
    if to == "megatron":
        from stacks import megatron_rates

        return [row[0][0] for row in megatron_rates(text)]
    if to == "hf":
        from stacks import hf_rates

        return [row[0] for row in hf_rates(steps, **json.loads(text))]
    table = tomllib.loads(text)[to]
    if to == "torchtitan":
        from stacks import torchtitan_rates

        return [row[0] for row in torchtitan_rates(**table)[0]]
    from stacks import olmo_core_rates

    from paramsched.formats.olmo_core import olmo_core_arguments

    # OLMo-core's step k uses the rate after k - 1 updates: the steps of the run use those
    # after 0..steps - 1 (it has no rate of its own after the run)
    return [row[0] for row in olmo_core_rates(olmo_core_arguments(table))][:-1]


def _importable(to: str) -> None:
    module = {"megatron": "megatron.core.optimizer_param_scheduler", "hf": "transformers",
              "torchtitan": "torchtitan.components.optimizer.lr_scheduler",
              "olmo_core": "olmo_core.optim.scheduler"}[to]  # fmt: skip
    pytest.importorskip(module)


@pytest.mark.parametrize("to", TARGETS)
@pytest.mark.parametrize("sched", ["cosine", "poly", "constant", "wsd"])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_what_is_written_runs_timm_s_rates_in_the_target(sched, to, data):
    """timm's own scheduler gives the source's rates; the target's own code, on what is
    written, gives them too: to the bit where convert wrote it without ulps, else within
    the ulps it accepted, at most the measured ones. A refusal names what the target lacks."""
    _importable(to)
    arguments = data.draw(timm_arguments(sched))
    try:
        schedule = from_timm(**arguments)
    except ScheduleError as error:  # a WSD decay of no step: timm refuses it too
        assert sched == "wsd" and "timm requires" in str(error)
        assume(False)
    timm = [row[0] for row in timm_rates(schedule.horizon, **arguments)]
    assert schedule.lr(np.arange(schedule.horizon + 1)).tolist() == timm
    logger = logging.getLogger("paramsched")
    level, logger.level = logger.level, logging.ERROR  # hypothesis runs many examples
    try:
        try:
            text, accepted = convert(schedule, to), 0
        except ScheduleError as error:
            if " refuses this schedule: " in str(error):  # its reader's refusal
                return
            if " has no " in str(error):  # a refusal by name: nothing to run
                assert str(error).endswith("; nothing written")
                return
            assert " apart); nothing written" in str(error)
            try:
                text, accepted = convert(schedule, to, within_ulps=MAX_ULPS), MAX_ULPS
            except ScheduleError as wider:  # parts by more (a long cosine, a cooldown)
                far = re.search(r"\((\d+) ulps apart\); nothing written$", str(wider))
                assert far and int(far.group(1)) > MAX_ULPS, str(wider)
                return
    finally:
        logger.level = level
    theirs = target_rates(to, text, schedule.horizon)
    assert len(theirs) == len(timm) - (to == "olmo_core")
    apart = int(ulps(theirs, timm[: len(theirs)]).max())
    assert apart <= min(accepted, measured(sched, to, arguments)), (arguments, text)
    assert (apart == 0) == (accepted == 0)


def test_poly_of_power_1_is_megatron_s_linear_decay_to_the_bit():
    """timm's ``lr_min + (lr - lr_min) * (1 - t / T) ** 1`` is Megatron's linear decay,
    operation for operation, after a warmup as a prefix too (timm from step 0)."""
    from stacks import megatron_rates

    arguments = dict(sched="poly", lr=3e-4, num_epochs=10, decay_rate=1, min_lr=1e-5,
                     cooldown_epochs=2, step_on_epochs=False, updates_per_epoch=7)  # fmt: skip
    schedule = from_timm(**arguments)
    flags = convert(schedule, "megatron")
    assert flags == (
        "--lr 0.0003 --min-lr 1e-05 --lr-decay-style linear --lr-decay-iters 70 --train-iters 84"
    )
    megatron = [row[0][0] for row in megatron_rates(flags)]
    assert megatron == [row[0] for row in timm_rates(84, **arguments)]


def test_a_cosine_with_warmup_to_megatron_within_the_ulps_it_reports(caplog):
    """timm's warmup ``warmup_lr + t * ((lr - warmup_lr) / w)`` and Megatron's
    ``init + (lr - init) * t / w`` part by an ulp at step 3; the cosine by up to 13."""
    from stacks import megatron_rates

    arguments = dict(sched="cosine", lr=1e-3, num_epochs=8, warmup_epochs=2, warmup_prefix=True,
                     min_lr=1e-5, step_on_epochs=False, updates_per_epoch=10)  # fmt: skip
    schedule = from_timm(**arguments)
    with pytest.raises(ScheduleError) as refused:
        convert(schedule, "megatron", within_ulps=12)
    assert str(refused.value) == (
        "Megatron does not run this schedule: at step 83 its lr is 0.00011626811921403137, "
        "the source's 0.00011626811921403119 (13 ulps apart); nothing written"
    )
    with caplog.at_level(logging.WARNING):
        flags = convert(schedule, "megatron", within_ulps=13)
    assert flags == (
        "--lr 0.001 --min-lr 1e-05 --lr-decay-style cosine --lr-warmup-init 1e-05 "
        "--lr-warmup-iters 20 --train-iters 100"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "Megatron runs this schedule within 13 ulps: the largest difference is at step 83 "
        "(0.00011626811921403137, the source's 0.00011626811921403119)"
    ]
    megatron = [row[0][0] for row in megatron_rates(flags)]
    timm = [row[0] for row in timm_rates(100, **arguments)]
    assert int(ulps(megatron, timm).max()) == 13
    assert int(np.flatnonzero(ulps(megatron, timm))[0]) == 3


EPOCHS = dict(step_on_epochs=False, updates_per_epoch=10)


@pytest.mark.parametrize(
    "arguments, to, message",
    [
        (
            dict(sched="cosine", num_epochs=8, cycle_limit=3, **EPOCHS),
            "megatron",
            "Megatron has no cosine that restarts (timm cosine with cycle_limit 3); nothing "
            "written",
        ),
        (
            dict(sched="cosine", num_epochs=8, cycle_limit=0, **EPOCHS),
            "hf",
            "transformers has no cosine of no cycle (timm cosine with cycle_limit 0: min_lr "
            "throughout); nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, warmup_epochs=1, **EPOCHS),
            "megatron",
            "Megatron has no warmup inside the decay (timm's warmup_prefix=false with "
            "warmup_epochs=1: its cosine starts at step 0 under the warmup); expected "
            "warmup_prefix=true; nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, updates_per_epoch=100),
            "megatron",
            "Megatron has no rate stepped per epoch (step_on_epochs with updates_per_epoch 100: "
            "it changes once per 100 steps); nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8),
            "torchtitan",
            "the timm schedule counts epochs (step_on_epochs=true and no updates_per_epoch), "
            "not optimizer steps; expected step_on_epochs=false and updates_per_epoch (the "
            "optimizer updates in an epoch); nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, k_decay=0.5, **EPOCHS),
            "olmo_core",
            "OLMo-core has no cosine of t ** k / T ** k (timm cosine with k_decay 0.5); "
            "nothing written",
        ),
        (
            dict(sched="poly", num_epochs=8, decay_rate=2.0, **EPOCHS),
            "megatron",
            "Megatron has no polynomial decay of power 2.0 (timm poly with decay_rate 2.0; its "
            "linear decay is power 1); nothing written",
        ),
        (
            dict(sched="tanh", num_epochs=8, **EPOCHS),
            "hf",
            "transformers has no tanh schedule as timm runs it (timm sched='tanh'; paramsched "
            "converts timm's cosine, poly of decay_rate 1, constant and wsd); nothing written",
        ),
        (
            dict(sched="step", num_epochs=8, decay_epochs=2, **EPOCHS),
            "olmo_core",
            "OLMo-core has no step schedule as timm runs it (timm sched='step'; paramsched "
            "converts timm's cosine, poly of decay_rate 1, constant and wsd); nothing written",
        ),
        (
            dict(sched="wsd", num_epochs=8, decay_fn="exp", **EPOCHS),
            "megatron",
            "Megatron has no WSD anneal of exp as timm runs it (timm wsd with decay_fn='exp': "
            "(0.1 ** frac - 0.1) / 0.9); nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, warmup_epochs=1, warmup_prefix=True, **EPOCHS),
            "hf",
            "transformers has no warmup from a non-zero rate (init_lr 1e-05); nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, warmup_epochs=1, warmup_prefix=True, **EPOCHS),
            "torchtitan",
            "torchtitan has no warmup that starts at 1e-05 (its rate after n < warmup_steps "
            "steps is lr * (n + 1) / warmup_steps: lr / warmup_steps before the first step); "
            "nothing written",
        ),
        (
            dict(sched="cosine", num_epochs=8, cooldown_epochs=2, **EPOCHS),
            "torchtitan",
            "torchtitan has no floor held after its decay (the source's decay ends at step 80, "
            "its training at step 100; torchtitan's decay ends at total_steps, which is at "
            "least steps); nothing written",
        ),
        (
            dict(sched="wsd", num_epochs=8, decay_fn="1-sqrt", **EPOCHS),
            "olmo_core",
            "OLMo-core has no minus_sqrt anneal (its stages are linear or cosine); nothing written",
        ),
    ],
    ids=[
        "restarts",
        "no-cycle",
        "warmup-inside",
        "per-epoch",
        "epochs",
        "k-decay",
        "power-2",
        "tanh",
        "step",
        "wsd-exp",
        "hf-warmup-lr",
        "torchtitan-warmup",
        "cooldown-torchtitan",
        "olmo-sqrt",
    ],  # fmt: skip
)
def test_what_a_target_cannot_run_is_refused_by_name(arguments, to, message):
    with pytest.raises(ScheduleError) as refused:
        convert(from_timm(1e-3, **arguments), to, within_ulps=MAX_ULPS)
    assert str(refused.value) == message


def test_toml_keeps_timm_s_table_or_phases_that_run_it_to_the_bit():
    """--to toml writes phases where they give timm's rates with ==, else the [timm] table."""
    from paramsched.recipe import schedule_from_data

    for arguments, first in (
        (
            dict(
                sched="poly",
                num_epochs=8,
                decay_rate=1,
                warmup_epochs=1,
                warmup_prefix=True,
                warmup_lr=0.0,
                **EPOCHS,
            ),
            "[run]",
        ),
        (dict(sched="poly", num_epochs=8, decay_rate=1, **EPOCHS), "[timm]"),
        (dict(sched="cosine", num_epochs=8, cycle_limit=3, **EPOCHS), "[timm]"),
    ):
        source = from_timm(1e-3, **arguments)
        text = convert(source, "toml")
        assert text.startswith(first)
        written = schedule_from_data(tomllib.loads(text))
        steps = np.arange(source.horizon + 1)
        assert written.lr(written.run.samples_at_step(steps)).tolist() == source.lr(steps).tolist()


@pytest.fixture
def timm_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "timm.toml").write_text(
        '[timm]\nsched = "cosine"\nlr = 1e-3\nnum_epochs = 8\ncycle_limit = 3\n'
        "step_on_epochs = false\nupdates_per_epoch = 10\n"
    )
    (tmp_path / "poly.toml").write_text(
        '[timm]\nsched = "poly"\nlr = 1e-3\nnum_epochs = 8\ndecay_rate = 1\n'
        "step_on_epochs = false\nupdates_per_epoch = 10\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["timm.toml", "--to", "megatron"],
            "paramsched convert: error: Megatron has no cosine that restarts (timm cosine with "
            "cycle_limit 3); nothing written",
        ),
        (
            ["poly.toml", "--to", "hf"],
            "paramsched convert: error: transformers does not run this schedule: at step 41 its "
            "lr is 0.0004875, the source's 0.00048750000000000003 (1 ulp apart); nothing written",
        ),
    ],
)
def test_command_line_refusals_are_one_line_and_exit_2(timm_file, capsys, argv, message):
    assert main(["convert", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == message + "\n"


def test_the_command_writes_megatron_s_flags_for_timm_s_poly(timm_file, capsys):
    assert main(["convert", "poly.toml", "--to", "megatron"]) == 0
    out, err = capsys.readouterr()
    assert out == "--lr 0.001 --min-lr 0.0 --lr-decay-style linear --train-iters 80\n"
    assert err == ""


def test_following_the_epochs_refusal_s_advice_converts(tmp_path, monkeypatch, capsys):
    """A file counted in epochs is refused with what to set; setting it as the message
    says converts, and the flags run the same rate at every optimizer update."""
    monkeypatch.chdir(tmp_path)
    table = '[timm]\nsched = "poly"\ndecay_rate = 1.0\nlr = 1e-3\nnum_epochs = 9\nmin_lr = 1e-5\n'
    (tmp_path / "epochs.toml").write_text(table)
    assert main(["convert", "epochs.toml", "--to", "megatron"]) == 2
    err = capsys.readouterr().err
    advice = re.search(r"expected (step_on_epochs=false) and (updates_per_epoch) \(", err)
    assert advice, err
    key, value = advice.group(1).split("=")
    followed = table + f"{key} = {value}\n{advice.group(2)} = 4\n"
    (tmp_path / "updates.toml").write_text(followed)
    assert main(["convert", "updates.toml", "--to", "megatron"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == "--lr 0.001 --min-lr 1e-05 --lr-decay-style linear --train-iters 36\n"
    source = from_timm(sched="poly", decay_rate=1.0, lr=1e-3, num_epochs=9, min_lr=1e-5,
                       step_on_epochs=False, updates_per_epoch=4)  # fmt: skip
    assert target_rates("megatron", out, 36) == [float(source.lr(n)) for n in range(37)]
