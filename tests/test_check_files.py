"""Tests for paramsched check on schedule files and other stacks' schedules: where the
summary puts the warmup and the decay, on every kind of schedule, checked by hand."""

from __future__ import annotations

import paramsched
from paramsched.check import examine


def _codes(findings) -> list[str]:
    return [finding.code for finding in findings]


def test_a_transformers_1_sqrt_decay_is_examined():
    # the decay's formula, read at the stable phase's last step, takes a negative root
    wsd = paramsched.from_hf(
        "warmup_stable_decay",
        lr=3e-4,
        num_warmup_steps=100,
        num_training_steps=1000,
        scheduler_specific_kwargs={"num_decay_steps": 200, "decay_type": "1-sqrt"},
    )
    summary, findings = examine(wsd)
    assert (summary["warmup_end_step"], summary["decay_end_step"]) == (100, 1000)
    assert wsd.lr(100) == 3e-4 and wsd.lr(99) < 3e-4 and wsd.lr(1000) == 0.0
    assert findings == []


def test_a_transformers_warmup_ends_at_its_num_warmup_steps():
    for name in ("linear", "cosine", "polynomial"):
        schedule = paramsched.from_hf(name, lr=1e-3, num_warmup_steps=10, num_training_steps=100)
        summary, _ = examine(schedule)
        assert schedule.lr(10) == 1e-3 > schedule.lr(9)
        assert summary["warmup_end_step"] == 10, name


def test_a_timm_warmup_is_not_a_jump():
    # five epochs of warmup rise by a fifth of the peak each: a warmup, not a jump (S112)
    schedule = paramsched.from_timm(1e-3, "cosine", num_epochs=100, warmup_epochs=5, min_lr=1e-5)
    summary, findings = examine(schedule)
    assert summary["warmup_end_step"] == 5
    assert schedule.lr(5) > schedule.lr(4) and schedule.lr(6) < schedule.lr(5)
    assert "S112" not in _codes(findings)


def test_a_timm_step_decay_ends_at_its_last_milestone():
    schedule = paramsched.from_timm(1e-3, "step", num_epochs=100, decay_epochs=30, decay_rate=0.1)
    summary, _ = examine(schedule)
    assert schedule.lr(89) != schedule.lr(90) == schedule.lr(100)
    assert summary["decay_end_step"] == 90
    assert summary["share_at_floor"] == 0.1


def _file(tmp_path, text: str) -> str:
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    return str(path)


STEP_DOWN = """
[run]
global_batch_size = 4
total = "{total} steps"
[lr]
max_lr = 1e-3
min_lr = 1e-4
phases = [
    {{ shape = "linear", to = "max_lr", until = "100 steps" }},
    {{ shape = "constant", until = "{down} steps" }},
    {{ shape = "constant", value = "min_lr", until = "100%" }},
]
"""


def test_a_step_down_reaches_the_floor_at_the_step_after(tmp_path):
    schedule = paramsched.load_schedule(_file(tmp_path, STEP_DOWN.format(total=1000, down=500)))
    summary, findings = examine(schedule)
    assert schedule.lr(500 * 4) == 1e-3 and schedule.lr(501 * 4) == 1e-4
    assert summary["decay_end_step"] == 501 and summary["share_at_floor"] == 0.499
    assert [f.step for f in findings if f.code in ("S101", "S112")] == [501, 501]


def test_a_run_too_long_to_list_gives_exact_steps_and_its_jumps(tmp_path, capsys):
    from paramsched.cli import main

    text = STEP_DOWN.format(total=20_000_000, down=10_000_001)
    status = main(["check", _file(tmp_path, text)])
    out = capsys.readouterr().out
    assert status == 0
    assert "run: 20,000,000 steps, 80M samples" in out
    assert "decay ends at step 10,000,002" in out
    assert "at step 10,000,002 of 20,000,000" in out
    assert "note S112: the learning rate jumps from 0.001 to 0.0001 at step 10,000,002" in out


def test_ignoring_the_refusal_does_not_pass_a_run_that_would_not_start(tmp_path, capsys):
    from paramsched.cli import main

    text = '[run]\nglobal_batch_size = 4\ntotal = "100%"\n[lr]\nmax_lr = 1e-3\nphases = []\n'
    assert main(["check", "--ignore", "S100", _file(tmp_path, text)]) == 1
    assert "no run to summarize: it would not start" in capsys.readouterr().out


def test_a_megatron_table_is_spoken_of_in_its_own_keys(tmp_path, capsys):
    from paramsched.cli import main

    table = '[megatron]\nlr = 3e-4\nmin_lr = 3e-5\ntrain_iters = 1000\nlr_decay_style = "cosine"\n'
    assert main(["check", _file(tmp_path, table)]) == 1
    out = capsys.readouterr().out
    assert "error S100: " in out and "megatron.global_batch_size is not set" in out
    assert "--global-batch-size" not in out
    ramp = "train_samples = 100000\nglobal_batch_size = 256\nrampup_batch_size = [32, 32, 20000]\n"
    table = table.replace("train_iters = 1000\n", ramp)
    assert main(["check", _file(tmp_path, table)]) == 0
    out = capsys.readouterr().out
    assert "note M112: megatron.rampup_batch_size follows Megatron-Core 0.16" in out
    assert "--rampup-batch-size" not in out


def test_batch_size_stages_on_a_token_clock_name_their_unit(tmp_path, capsys):
    from paramsched.cli import main

    text = """
[run]
clock = "tokens"
total = "40K tokens"
batch_size_schedule = [["0 tokens", 8], ["10K tokens", 16]]
[lr]
max_lr = 1e-3
phases = [{ shape = "linear", to = "max_lr", until = "4K tokens" }]
"""
    assert main(["check", _file(tmp_path, text)]) == 0
    assert "batch size: 8 from 0 tokens, 16 from 10,000 tokens\n" in capsys.readouterr().out


def test_a_timm_step_decay_that_goes_on_past_the_run_ends_within_it():
    # the 18th milestone (epoch 180) is after the run's 179 epochs: the rate is the run's
    # floor from epoch 170 on
    schedule = paramsched.from_timm(1e-3, "step", num_epochs=179, decay_epochs=10)
    summary, _ = examine(schedule)
    assert schedule.lr(169) != schedule.lr(170) == schedule.lr(179) != schedule.lr(180)
    assert summary["decay_end_step"] == 170


def test_an_unusual_wsd_anneal_is_noted_in_the_words_given(tmp_path, capsys):
    from paramsched.cli import main

    flags = ["--lr", "3e-4", "--min-lr", "3e-5", "--lr-decay-style", "WSD"]
    flags += ["--lr-wsd-decay-iters", "0", "--train-iters", "1000", "--global-batch-size", "256"]
    assert main(["check", "--megatron", *flags]) == 0
    out = capsys.readouterr().out
    assert (
        "note S113: --lr-wsd-decay-iters=0 with --train-iters=1000: no anneal: the rate drops "
        "from --lr to --min-lr after --train-iters; run as Megatron-Core runs it\n"
    ) in out
    assert "wsd_decay_steps" not in out and "256000" not in out
    table = "[megatron]\n" + "".join(
        f"{flag[2:].replace('-', '_')} = {value if value[0].isdigit() else repr(value)}\n"
        for flag, value in zip(flags[::2], flags[1::2])
    )
    assert main(["check", _file(tmp_path, table)]) == 0
    assert (
        "note S113: megatron.lr_wsd_decay_iters=0 with megatron.train_iters=1000: no anneal"
    ) in capsys.readouterr().out


def test_s101_on_a_run_without_steps_says_where_and_of_what(tmp_path):
    from paramsched import Run, Schedule

    short = Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=100,
        lr_decay_steps=3000,
        lr_decay_style="cosine",
        run=Run(total="10000 samples"),
    )
    _, findings = examine(short)
    assert [finding.line() for finding in findings] == [
        "warning S101: the learning rate reaches its floor (3e-05) at 3,000 samples of "
        "10,000: 70% of training at the floor"
    ]


def test_a_rise_to_a_plateau_is_not_a_decay_to_its_floor():
    from paramsched import Run, Schedule

    cosine = Schedule(
        max_lr=1.0,
        min_lr=0.0,
        lr_warmup_steps=10,
        lr_decay_steps=1000,
        lr_decay_style="cosine",
        run=Run(global_batch_size=2, total="500 steps"),
    )
    rewarmed = cosine.branch("300 steps", [{"shape": "constant", "value": 0.9, "until": "100%"}])
    _, findings = examine(rewarmed)
    assert rewarmed.lr(600) < 0.9 == rewarmed.lr(602) == rewarmed.lr(1000)
    assert _codes(findings) == ["S112"]  # the jump up, not a decay that ends early


def test_a_transformers_schedule_without_a_length_says_so():
    # inverse_sqrt decays for ever: its 20 steps are where a preview stops, not a run
    schedule = paramsched.from_hf("inverse_sqrt", lr=1e-3, num_warmup_steps=10)
    _, findings = examine(schedule)
    assert [finding.line() for finding in findings] == [
        "note S111: the run has no length (no hf.num_training_steps): checked up to step 20"
    ]
    assert schedule.lr(40) < schedule.lr(20)
    with_length = paramsched.from_hf("constant", lr=1e-3, num_training_steps=100)
    assert examine(with_length)[1] == []


def test_a_phase_that_begins_where_training_ends_is_not_said_to_begin_after(tmp_path):
    text = """
[run]
global_batch_size = 4
total = "10 steps"
[lr]
max_lr = 1e-3
min_lr = 1e-4
phases = [
    { shape = "linear", to = "max_lr", until = "10 steps" },
    { shape = "cosine", to = "min_lr", until = "20 steps" },
]
"""
    _, findings = examine(paramsched.load_schedule(_file(tmp_path, text)))
    assert [finding.line() for finding in findings if finding.code == "S109"] == [
        "warning S109: the learning rate's phase 1 ('cosine', from step 10) begins where "
        "training ends at step 10"
    ]
