"""paramsched.formats.convert: conversions checked by running the target's own code
(megatron-core's OptimizerParamScheduler, transformers' get_scheduler), refusals, and
``paramsched convert`` on the command line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import ScheduleError, from_hf, from_timm, load_schedule
from paramsched.cli import main
from paramsched.formats._convert_io import MAX_ULPS, read_flags, ulps
from paramsched.formats.convert import MAPPINGS, convert
from paramsched.preview.points import total_samples

pytest.importorskip("transformers")
pytest.importorskip("megatron.core.optimizer_param_scheduler")

from stacks import hf_call, hf_rates, megatron_rates  # noqa: E402

pytestmark = pytest.mark.megatron

#: The largest distance, in ulps, between megatron-core's and transformers' rates for a
#: conversion either way, by transformers' name, as measured over 300 random arguments
#: per name and 1,500 random Megatron flags; a conversion accepted with
#: ``within_ulps=MAX_ULPS`` must stay within it. ``linear`` is None: its distance is up
#: to the decay's length, ``t - w`` ulps (measured: exactly that at most, at its last step
#: before the end), since Megatron's ``1 - (n - w) / (t - w)`` cancels where transformers'
#: ``(t - n) / (t - w)`` does not.
MEASURED_ULPS = {
    "linear": None,
    "polynomial": 2,
    "cosine": 2,
    "cosine_with_min_lr": 3,
    "cosine_with_restarts": 2,
    "constant": 0,
    "constant_with_warmup": 2,
    "inverse_sqrt": 3,
    "warmup_stable_decay": 3,
}


def measured(arguments: dict) -> int:
    """`MEASURED_ULPS` for transformers' `arguments`."""
    bound = MEASURED_ULPS[arguments["name"]]
    if bound is None:
        return max(1, arguments["num_training_steps"] - arguments["num_warmup_steps"])
    return bound


MEGATRON_NAMES = [m.hf for m in MAPPINGS if m.style is not None]


@st.composite
def hf_arguments(draw, name: str) -> dict:
    """Random arguments of transformers' `name` that Megatron can express."""
    lr = draw(st.floats(1e-6, 1.0))
    warmup = draw(st.integers(1 if name == "inverse_sqrt" else 0, 40))
    training = warmup + draw(st.integers(1, 120))
    kwargs: dict = {}
    if name == "cosine_with_min_lr":
        rate = draw(st.floats(0.0, 1.0))
        kwargs.update({"min_lr_rate": rate} if draw(st.booleans()) else {"min_lr": rate * lr})
    if name == "polynomial":
        kwargs.update(power=1.0, lr_end=draw(st.floats(0.0, 0.99)) * lr)
    if name == "cosine_with_restarts":
        kwargs["num_cycles"] = 1
    if name == "inverse_sqrt":
        kwargs["timescale"] = warmup
    if name == "warmup_stable_decay":
        decay = draw(st.integers(1, 50))
        kwargs.update(
            num_decay_steps=decay,
            decay_type=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
            min_lr_ratio=draw(st.floats(0.0, 1.0)),
        )
        training = warmup + decay + draw(st.integers(0, 50))
    return hf_call(name, lr, warmup, training, kwargs)


@pytest.mark.parametrize("name", MEGATRON_NAMES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_hf_to_megatron_runs_in_megatron_core(name, data):
    """transformers' name → Megatron's flags → megatron-core: the rates transformers sets,
    to the bit where the conversion is exact, else within the ulps it accepted."""
    arguments = data.draw(hf_arguments(name))
    schedule = from_hf(**arguments)
    try:
        flags = convert(schedule, "megatron")
        accepted = 0
    except ScheduleError as error:
        assert " apart); nothing written" in str(error)
        flags = convert(schedule, "megatron", within_ulps=MAX_ULPS)
        accepted = MAX_ULPS
    megatron = [rates[0][0] for rates in megatron_rates(flags)]
    transformers = [rates[0] for rates in hf_rates(len(megatron) - 1, **arguments)]
    apart = int(ulps(megatron, transformers).max())
    assert apart <= min(accepted, measured(arguments)), (arguments, flags)
    assert (apart == 0) == (accepted == 0)


@st.composite
def megatron_flags(draw) -> str:
    """Random Megatron flags transformers can express: a warmup from 0 (WSD: from its
    floor), every style, any global batch size."""
    style = draw(st.sampled_from(["linear", "cosine", "constant", "inverse-square-root", "WSD"]))
    lr = draw(st.floats(1e-6, 1.0))
    train = draw(st.integers(2, 150))
    warmup = draw(st.integers(1 if style == "inverse-square-root" else 0, train - 1))
    flags = f"--lr {lr!r} --lr-decay-style {style} --train-iters {train}"
    flags += f" --global-batch-size {draw(st.sampled_from([1, 4, 256]))}"
    flags += f" --lr-warmup-iters {warmup}" if warmup else ""
    if style in ("linear", "cosine", "WSD") and draw(st.booleans()):
        floor = draw(st.floats(0.0, 0.99)) * lr
        flags += f" --min-lr {floor!r}" + (f" --lr-warmup-init {floor!r}" if style == "WSD" else "")
    if style == "WSD":
        anneal = draw(st.sampled_from(["linear", "cosine", "minus_sqrt"]))
        anneal_iters = draw(st.integers(1, train - warmup))
        flags += f" --lr-wsd-decay-style {anneal} --lr-wsd-decay-iters {anneal_iters}"
    return flags


@settings(max_examples=150, deadline=None)
@given(flags=megatron_flags())
def test_megatron_to_hf_runs_in_transformers(flags):
    """Megatron's flags → get_scheduler's arguments → transformers over a torch optimizer:
    the rates megatron-core sets, to the bit where exact, else within the ulps accepted."""
    schedule = read_flags(flags)
    try:
        text = convert(schedule, "hf")
        accepted = 0
    except ScheduleError as error:
        assert " apart); nothing written" in str(error)
        text = convert(schedule, "hf", within_ulps=MAX_ULPS)
        accepted = MAX_ULPS
    arguments = json.loads(text)
    assert set(arguments) <= {
        "name",
        "lr",
        "num_warmup_steps",
        "num_training_steps",
        "scheduler_specific_kwargs",
    }
    megatron = [rates[0][0] for rates in megatron_rates(flags)]
    transformers = [rates[0] for rates in hf_rates(len(megatron) - 1, **arguments)]
    apart = int(ulps(megatron, transformers).max())
    assert apart <= min(accepted, measured(arguments)), (flags, arguments)
    assert (apart == 0) == (accepted == 0)


def test_an_exact_conversion_is_written_without_a_warning(caplog):
    """hf cosine without warmup is Megatron's cosine float for float: no ulps to accept."""
    schedule = from_hf("cosine", 3e-4, 0, 1000)
    flags = convert(schedule, "megatron")
    assert flags == "--lr 0.0003 --min-lr 0.0 --lr-decay-style cosine --train-iters 1000"
    assert [r[0][0] for r in megatron_rates(flags)] == [
        r[0]
        for r in hf_rates(
            1000, **dict(name="cosine", lr=3e-4, num_warmup_steps=0, num_training_steps=1000)
        )  # fmt: skip
    ]
    assert not caplog.records


def test_hf_cosine_with_warmup_to_megatron_is_one_ulp_apart_at_step_3(caplog):
    """transformers' warmup is lr * (n / w), Megatron's lr * n / w: step 3 of 100 differs
    by one ulp; refused with both rates, accepted within 1 ulp with one WARNING."""
    schedule = from_hf("cosine", 3e-4, 100, 1000)
    with pytest.raises(ScheduleError) as refused:
        convert(schedule, "megatron")
    assert str(refused.value) == (
        "Megatron does not run this schedule: at step 3 its lr is 9e-06, the source's "
        "8.999999999999999e-06 (1 ulp apart); nothing written"
    )
    with caplog.at_level(logging.WARNING, "paramsched"):
        flags = convert(schedule, "megatron", within_ulps=1)
    assert [r.getMessage() for r in caplog.records] == [
        "Megatron runs this schedule within 1 ulp: the largest difference is at step 3 "
        "(9e-06, the source's 8.999999999999999e-06)"
    ]
    megatron = [r[0][0] for r in megatron_rates(flags)]
    transformers = [r[0] for r in hf_rates(1000, name="cosine", lr=3e-4, num_warmup_steps=100,
                                            num_training_steps=1000)]  # fmt: skip
    assert int(ulps(megatron, transformers).max()) == 1
    assert megatron[3] != transformers[3]


SOURCES = {
    "hf.toml": '[hf]\nname = "warmup_stable_decay"\nlr = 3e-4\nnum_warmup_steps = 100\n'
    "num_training_steps = 1000\nscheduler_specific_kwargs = { num_decay_steps = 200, "
    'decay_type = "1-sqrt", min_lr_ratio = 0.1 }\n',
    "megatron.toml": '[megatron]\nlr = 3e-4\nmin_lr = 3e-5\nlr_decay_style = "WSD"\n'
    'lr_wsd_decay_style = "minus_sqrt"\nlr_wsd_decay_iters = 200\nlr_warmup_iters = 100\n'
    "train_iters = 1000\nglobal_batch_size = 256\nweight_decay = 0.1\n",
    "ramp.toml": '[megatron]\nlr = 3e-4\nmin_lr = 3e-5\nlr_decay_style = "cosine"\n'
    "lr_warmup_samples = 12800\ntrain_samples = 256000\nglobal_batch_size = 256\n"
    'rampup_batch_size = ["64", "64", "25600"]\nstart_weight_decay = 0.0\n'
    'end_weight_decay = 0.1\nweight_decay_incr_style = "linear"\n',
    "phases.toml": '[run]\nglobal_batch_size = 4\ntotal = "1000 steps"\n[lr]\nmax_lr = 3e-4\n'
    'min_lr = 3e-5\nphases = [\n  { shape = "linear", to = "max_lr", until = "100 steps" },\n'
    '  { shape = "cosine", to = "min_lr", until = "100%" },\n]\n',
    "timm.toml": '[timm]\nsched = "cosine"\nlr = 1e-3\nnum_epochs = 20\nwarmup_epochs = 2\n',
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_toml_round_trips_to_the_bit(tmp_path, name):
    """--to toml writes a file paramsched reads back to the same rate after every step:
    phases where they give them, else the source's own table."""
    source = tmp_path / name
    source.write_text(SOURCES[name])
    schedule = load_schedule(source)
    text = convert(schedule, "toml")
    written = tmp_path / "written.toml"
    written.write_text(text)
    again = load_schedule(written)
    steps = range(1001)
    positions = [schedule.run.samples_at_step(n) for n in steps] if schedule.run else steps
    assert [again.lr(p) for p in positions] == [schedule.lr(p) for p in positions]
    expected = {"hf.toml": "[hf]", "timm.toml": "[timm]"}.get(name, "[run]")
    assert text.startswith(expected)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_schedules_round_trip_through_toml(data, tmp_path_factory):
    """transformers' arguments of every name Megatron runs, and Megatron's flags, → toml →
    read back: the same rate (and weight decay) after every optimizer step."""
    if data.draw(st.booleans()):
        schedule = from_hf(**data.draw(hf_arguments(data.draw(st.sampled_from(MEGATRON_NAMES)))))
    else:
        schedule = read_flags(data.draw(megatron_flags()))
    path = tmp_path_factory.mktemp("toml") / "written.toml"
    path.write_text(convert(schedule, "toml"))
    again = load_schedule(path)
    steps = range(schedule.run.step_at_samples(int(total_samples(schedule))) + 1)
    samples, theirs = schedule.run.samples_at_step(steps), again.run.samples_at_step(steps)
    assert again.lr(theirs).tolist() == schedule.lr(samples).tolist()
    if schedule.wd_curve is not None:
        assert again.wd(theirs).tolist() == schedule.wd(samples).tolist()


def test_megatron_to_megatron_keeps_the_ramp_and_the_weight_decay(tmp_path):
    source = tmp_path / "ramp.toml"
    source.write_text(SOURCES["ramp.toml"])
    flags = convert(load_schedule(source), "megatron")
    assert "--rampup-batch-size 64 64 25600" in flags and "--train-samples 256000" in flags
    assert "--weight-decay-incr-style linear" in flags


@pytest.mark.parametrize("anneal", ["linear", "cosine", "exponential", "minus_sqrt"])
@pytest.mark.parametrize("batch", [1, 8])
def test_phases_of_megatrons_shapes_run_in_megatron_core_to_the_bit(tmp_path, anneal, batch):
    """A warmup, a constant peak and an anneal, as phases → Megatron's WSD flags →
    megatron-core: the rate and weight decay after every iteration are the source's."""
    path = tmp_path / "wsd.toml"
    path.write_text(
        f'[run]\nglobal_batch_size = {batch}\ntotal = "200 steps"\n[lr]\nmax_lr = 1e-3\n'
        'min_lr = 1e-4\nphases = [{ shape = "linear", to = "max_lr", until = "20 steps" }, '
        '{ shape = "constant", until = "150 steps" }, '
        f'{{ shape = "{anneal}", to = "min_lr", until = "100%" }}]\n'
        "[wd]\nstart_wd = 0.1\nend_wd = 0.1\n"
    )
    schedule = load_schedule(path)
    flags = convert(schedule, "megatron")
    assert "--lr-decay-style WSD --lr-warmup-iters 20 --train-iters 200" in flags
    samples = [schedule.run.samples_at_step(n) for n in range(201)]
    expected = [[(schedule.lr(p), schedule.wd(p))] for p in samples]
    assert megatron_rates(flags) == expected


def phase_file(tmp_path, phases: str, run: str = 'global_batch_size = 8\ntotal = "100 steps"'):
    path = tmp_path / "phases.toml"
    path.write_text(f"[run]\n{run}\n[lr]\nmax_lr = 1e-3\nmin_lr = 1e-4\nphases = [{phases}]\n")
    return load_schedule(path)


WARMUP = '{ shape = "linear", to = "max_lr", until = "10 steps" }, '


@pytest.mark.parametrize(
    "make, to, message",
    [
        (
            lambda p: phase_file(
                p, WARMUP + '{ shape = "step", every = "10 steps", factor = 0.5, until = "100%" }'
            ),
            "megatron",
            "Megatron has no step decay; nothing written",
        ),
        (
            lambda p: phase_file(
                p, WARMUP + '{ shape = "cosine", to = "0.5 * max_lr", until = "100%" }'
            ),
            "megatron",
            "Megatron has no phases but a warmup from init_lr to max_lr, then a decay from "
            "max_lr to min_lr (or a constant max_lr and an anneal); here cosine from max_lr to "
            "0.5 * max_lr; nothing written",
        ),
        (
            lambda p: phase_file(p, WARMUP + '{ shape = "tanh", to = "min_lr", until = "100%" }'),
            "hf",
            "transformers has no tanh decay; nothing written",
        ),
        (
            lambda p: phase_file(
                p,
                WARMUP + '{ shape = "cosine", to = "min_lr", until = "100%" }',
                'global_batch_size = 8\nrampup_batch_size = [4, 2, "80 samples"]\ntotal = "100 steps"',
            ),
            "hf",
            "transformers has no batch-size schedule (it counts optimizer steps of one batch "
            "size, and the source's batch size changes: a ramp-up or stages); nothing written",
        ),
        (
            lambda p: phase_file(
                p,
                WARMUP + '{ shape = "cosine", to = "min_lr", until = "100%" }',
                'global_batch_size = 8\nrampup_batch_size = [4, 2, "80 samples"]\ntotal = "100 steps"',
            ),
            "megatron",
            "paramsched writes Megatron's flags for a changing batch size only from Megatron's "
            "own schedule; nothing written",
        ),
        (
            lambda p: read_flags(
                "--lr 1e-3 --train-samples 256000 --global-batch-size 256 "
                "--rampup-batch-size 64 64 25600"
            ),
            "hf",
            "transformers has no batch-size schedule (it counts optimizer steps of one batch "
            "size, and the source's batch size changes: a ramp-up or stages); nothing written",
        ),
        (
            lambda p: read_flags(
                "--lr 1e-3 --lr-warmup-init 1e-4 --lr-warmup-iters 10 --train-iters 100"
            ),
            "hf",
            "transformers has no warmup from a non-zero rate (init_lr 0.0001); nothing written",
        ),
        (
            lambda p: read_flags(
                "--lr 1e-3 --train-iters 100 --start-weight-decay 0.0 --end-weight-decay 0.1 "
                "--weight-decay-incr-style cosine"
            ),
            "hf",
            "transformers has no weight decay schedule (the source's goes from 0.0 to 0.1; "
            "transformers leaves the optimizer's); nothing written",
        ),
        (
            lambda p: read_flags(
                "--lr 1e-3 --lr-decay-style WSD --lr-wsd-decay-iters 10 --train-iters 100"
            ),
            "hf",
            "transformers has no exponential decay; nothing written",
        ),
        (
            lambda p: from_hf("cosine_with_restarts", 1e-3, 10, 100, {"num_cycles": 3}),
            "megatron",
            "Megatron has no restarts (cosine_with_restarts with num_cycles=3.0); nothing written",
        ),
        (
            lambda p: from_hf("cosine", 1e-3, 10, 100, {"num_cycles": 0.25}),
            "megatron",
            "Megatron has no cosine of other than half a cycle (cosine with num_cycles=0.25); "
            "nothing written",
        ),
        (
            lambda p: from_hf("polynomial", 1e-3, 10, 100, {"power": 2.0}),
            "megatron",
            "Megatron has no polynomial decay (polynomial with power=2.0); nothing written",
        ),
        (
            lambda p: from_hf(
                "warmup_stable_decay",
                1e-3,
                10,
                100,
                {"num_decay_steps": 20, "warmup_type": "cosine"},
            ),  # fmt: skip
            "megatron",
            "Megatron has no warmup but a linear one (warmup_stable_decay with "
            "warmup_type='cosine'); nothing written",
        ),
        (
            lambda p: from_hf("cosine_warmup_with_min_lr", 1e-3, 10, 100, {"min_lr_rate": 0.1}),
            "megatron",
            "Megatron has no warmup that starts at (1 / w) * lr; nothing written",
        ),
        (
            lambda p: from_hf("inverse_sqrt", 1e-3, 10, 100, {"timescale": 50}),
            "megatron",
            "Megatron has no inverse square root of timescale 50 after a warmup of 10 steps "
            "(its timescale is its warmup, of >= 1); nothing written",
        ),
        (
            lambda p: from_hf("constant", 1e-3),
            "megatron",
            "hf constant has no num_training_steps: the run has no length to convert; "
            "expected num_training_steps",
        ),
        (
            lambda p: from_timm(1e-3, "cosine", num_epochs=20),
            "hf",
            "the timm schedule counts epochs (step_on_epochs=true and no updates_per_epoch), not "
            "optimizer steps; expected step_on_epochs=false and updates_per_epoch (the optimizer "
            "updates in an epoch); nothing written",
        ),
    ],
    ids=[
        "megatron-step",
        "megatron-half-the-peak",
        "hf-tanh",
        "hf-ramp",
        "megatron-ramp-of-phases",
        "hf-megatron-ramp",
        "hf-warmup-from-nonzero",
        "hf-weight-decay-schedule",
        "hf-exponential",
        "megatron-restarts",
        "megatron-cycles",
        "megatron-polynomial",
        "megatron-cosine-warmup",
        "megatron-warmup-plus-one",
        "megatron-timescale",
        "no-length",
        "timm",
    ],
)
def test_what_a_target_cannot_express_is_refused_by_name(tmp_path, make, to, message):
    with pytest.raises(ScheduleError) as refused:
        convert(make(tmp_path), to, within_ulps=MAX_ULPS)
    assert str(refused.value) == message


def test_a_linear_decay_to_a_floor_is_transformers_polynomial_of_power_1():
    flags = "--lr 0.001 --min-lr 0.0001 --train-iters 100 --global-batch-size 1"
    arguments = json.loads(convert(read_flags(flags), "hf", within_ulps=MAX_ULPS))
    assert arguments == {
        "name": "polynomial",
        "lr": 0.001,
        "num_warmup_steps": 0,
        "num_training_steps": 100,
        "scheduler_specific_kwargs": {"power": 1.0, "lr_end": 0.0001},
    }


def test_ulps_count_the_doubles_between_two_rates():
    assert ulps([0.0, 1.0, 1.0, -0.0], [5e-324, 1.0000000000000002, 1.0, 0.0]).tolist() == [
        1,
        1,
        0,
        0,
    ]
    assert ulps([-5e-324], [5e-324]).tolist() == [2]


# ------------------------------------------------------------ the command line


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in SOURCES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "cosine.toml").write_text(
        '[hf]\nname = "cosine"\nlr = 3e-4\nnum_warmup_steps = 100\nnum_training_steps = 1000\n'
    )
    (tmp_path / "megatron-cosine.toml").write_text(
        '[megatron]\nlr = 3e-4\nlr_decay_style = "cosine"\nlr_warmup_iters = 100\n'
        "train_iters = 1000\nglobal_batch_size = 1\n"
    )
    return tmp_path


def test_the_command_prints_the_target_or_writes_it(files, capsys):
    assert main(["convert", "cosine.toml", "--to", "megatron", "--within-ulps", "1"]) == 0
    out, err = capsys.readouterr()
    assert out == (
        "--lr 0.0003 --min-lr 0.0 --lr-decay-style cosine --lr-warmup-iters 100 "
        "--train-iters 1000\n"
    )
    assert err == (
        "paramsched convert: note: Megatron runs this schedule within 1 ulp: the largest "
        "difference is at step 3 (9e-06, the source's 8.999999999999999e-06)\n"
    )
    assert main(["convert", "megatron-cosine.toml", "--to", "toml", "--out", "out.toml"]) == 0
    assert capsys.readouterr().out == "wrote the toml configuration to out.toml\n"
    written, source = (
        load_schedule(files / "out.toml"),
        load_schedule(files / "megatron-cosine.toml"),
    )
    assert (files / "out.toml").read_text().startswith("[run]")
    assert written.lr(range(1001)).tolist() == source.lr(range(1001)).tolist()


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["cosine.toml", "--to", "keras"],
            "paramsched convert: error: argument --to: invalid choice: 'keras' "
            "(choose from 'megatron', 'hf', 'toml', 'torchtitan', 'olmo_core')",
        ),
        (["--to", "hf"], "paramsched convert: error: the following arguments are required: file"),
        (["cosine.toml"], "paramsched convert: error: the following arguments are required: --to"),
        (
            ["cosine.toml", "--to", "toml", "--within-ulps", "1"],
            "paramsched convert: error: --within-ulps=1 with --to toml, which is written only to "
            "the bit; expected it with --to megatron or hf",
        ),
        (["missing.toml", "--to", "hf"], "paramsched convert: error: missing.toml: no such file"),
        (
            ["broken.toml", "--to", "hf"],
            "paramsched convert: error: broken.toml: not valid TOML: ",
        ),
        (
            ["cosine.toml", "--to", "hf", "--out", "cosine.toml"],
            "paramsched convert: error: --out='cosine.toml' is also the schedule FILE "
            "'cosine.toml'; expected different files",
        ),
        (
            ["cosine.toml", "--to", "megatron"],
            "paramsched convert: error: Megatron does not run this schedule: at step 3 its lr is "
            "9e-06, the source's 8.999999999999999e-06 (1 ulp apart); nothing written",
        ),
    ]
    + [
        (
            ["cosine.toml", "--to", "megatron", "--within-ulps", value],
            f"paramsched convert: error: argument --within-ulps: {value!r}; expected a whole "
            "number of ulps from 0 to 1000 (a larger difference is another schedule)",
        )
        for value in ("-1", "1001", "99999999999999999999", "nan", "inf", "1.5", "")
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_command_line_mistakes_are_one_line_and_exit_2(files, capsys, argv, message):
    (files / "broken.toml").write_text("[hf\n")
    assert main(["convert", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(message)
    assert not (files / "cosine.toml.out").exists()


def test_compare_shows_where_two_stacks_cosines_part(files, capsys):
    """transformers' and Megatron's versions of one cosine with warmup part at step 3."""
    assert main(["compare", "cosine.toml", "megatron-cosine.toml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["diverges_at_step"] for row in rows] == [None, 3]


def test_a_stack_table_of_any_length_converts_to_toml_as_itself():
    """A torchtitan or OLMo-core schedule too long to compare step by step converts to its
    own table, which reads back to the same arguments; a phases form that does not read
    back (a warmup of 0 steps) is passed over for it, not reported."""
    from paramsched import from_olmo_core, from_torchtitan
    from paramsched.formats.convert import tomllib  # tomli on Python 3.10
    from paramsched.recipe import schedule_from_data

    def load_schedule_text(text):
        return schedule_from_data(tomllib.loads(text))

    for steps in (100, 10**12):
        source = from_torchtitan(3e-4, steps=steps, warmup_steps=0, decay_type="cosine")
        text = convert(source, "toml")
        assert text.startswith("[torchtitan]\n") and f"steps = {steps}\n" in text
        assert load_schedule_text(text) == source
    source = from_olmo_core("CosWithWarmup", 3e-4, warmup=100, max_steps=10**12)
    assert load_schedule_text(convert(source, "toml")) == source
