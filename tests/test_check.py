"""Tests for paramsched check: every rule on a configuration that triggers it and on one
that does not, the report, the exit status and the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from paramsched import Run, Schedule
from paramsched.check import RULES, examine
from paramsched.check.rules import Finding, rule_table
from paramsched.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHECK_RULES_PAGE = ROOT / "docs" / "reference" / "check-rules.md"


def check(capsys, *argv):
    """Runs ``paramsched check --json ARGV``: the exit status and the report."""
    status = main(["check", "--json", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return status, json.loads(out)


def codes(report) -> list[str]:
    return [finding["code"] for finding in report["findings"]]


def toml_file(tmp_path, text: str) -> str:
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    return str(path)


def phases_file(tmp_path, phases: str, run: str = 'global_batch_size = 8\ntotal = "100 steps"'):
    return toml_file(
        tmp_path,
        f"[run]\n{run}\n[lr]\nmax_lr = 1.0\nmin_lr = 0.1\nphases = [\n{phases}\n]\n",
    )


WARM_COSINE = """  {shape = "linear", to = "max_lr", until = "10 steps"},
  {shape = "cosine", to = "min_lr", until = "UNTIL"},"""


# ------------------------------------------------------------------ the rule table


def test_every_code_is_unique_and_has_a_severity_and_text():
    assert len(RULES) == len({rule.code for rule in RULES.values()})
    for code, rule in RULES.items():
        assert re.fullmatch(r"[SM]1\d\d", code)
        assert rule.severity in ("error", "warning", "note")
        assert rule.checks and rule.example and rule.fix


def test_the_check_rules_page_shows_the_rule_table():
    assert rule_table() in CHECK_RULES_PAGE.read_text()


def test_a_finding_is_its_message_with_its_rule():
    finding = Finding("M122", "text", 7)
    assert finding == "text" and finding.severity == "error" and finding.step == 7
    with pytest.raises(KeyError):
        Finding("X999", "text")


# ------------------------------------------------------------------ schedule rules


def _examine_codes(schedule, **kwargs) -> list[str]:
    return [finding.code for finding in examine(schedule, **kwargs)[1]]


def _cosine(decay, total, warmup=100, style="cosine", **kwargs):
    return Schedule(
        max_lr=3e-4,
        min_lr=3e-5,
        lr_warmup_steps=warmup,
        lr_decay_steps=decay,
        lr_decay_style=style,
        run=Run(global_batch_size=1, total=f"{total} steps"),
        **kwargs,
    )


def test_s101_the_decay_ends_well_before_training():
    assert "S101" in _examine_codes(_cosine(3000, 10000))
    assert "S101" not in _examine_codes(_cosine(9000, 10000))  # 10% at the floor
    assert "S101" not in _examine_codes(_cosine(3000, 10000), moved=True)  # S108 said it


def test_s101_gives_the_step_and_the_share():
    finding = examine(_cosine(3000, 10000))[1][0]
    assert finding.step == 3000 and "70% of training at the floor" in finding


@pytest.mark.parametrize("style", ["linear", "cosine", "inverse-square-root", "WSD"], ids=str)
def test_no_finding_on_a_decay_to_the_end_of_training(style):
    extra = {"wsd_decay_steps": 1000, "lr_wsd_decay_style": "linear"} if style == "WSD" else {}
    assert _examine_codes(_cosine(10000, 10000, style=style, **extra)) == []


def test_s102_training_ends_within_the_decay(tmp_path):
    assert "S102" in _examine_codes(_cosine(30000, 10000))
    assert "S102" not in _examine_codes(_cosine(10000, 10000))


def test_s102_compares_the_base_rate_under_a_batch_size_rule(capsys):
    """every_value.toml's rate is the base rate x sqrt(batch / 8): it ends at twice its
    base floor, on its floor."""
    example = str(ROOT / "examples" / "every_value.toml")
    status, report = check(capsys, example)
    assert "S102" not in codes(report) and report["summary"]["batch_size_rule"] == "sqrt"
    assert report["summary"]["final_lr"] == 2 * report["summary"]["floor_lr"]


def test_s102_a_wsd_anneal_that_never_begins():
    wsd = _cosine(20000, 10000, style="WSD", wsd_decay_steps=2000, lr_wsd_decay_style="linear")
    found = examine(wsd)[1]
    assert [finding.code for finding in found] == ["S102", "S109"]  # and the anneal's phase
    assert "its last rate is 0.0003" in found[0] and "'WSD linear'" in found[1]


def test_s103_training_ends_within_the_last_step_of_the_decay(capsys):
    flags = ["--lr", "1e-3", "--train-samples", "1000", "--global-batch-size", "64"]
    status, report = check(capsys, "--megatron", *flags)
    assert status == 0 and "S103" in codes(report) and "S102" not in codes(report)
    status, report = check(capsys, "--megatron", *flags[:3], "1024", *flags[4:])
    assert "S103" not in codes(report)


def test_s104_warmup_not_shorter_than_the_decay(capsys):
    base = ["--lr", "1e-3", "--train-iters", "1000", "--global-batch-size", "8"]
    status, report = check(capsys, "--megatron", *base, "--lr-warmup-iters", "1000")
    assert status == 1 and codes(report) == ["S104"] and report["summary"] is None
    status, report = check(capsys, "--megatron", *base, "--lr-warmup-iters", "999")
    assert status == 0 and "S104" not in codes(report)


def test_s105_training_ends_within_the_warmup(tmp_path, capsys):
    rising = '  {shape = "linear", to = "max_lr", until = "500 steps"},'
    status, report = check(capsys, phases_file(tmp_path, rising))
    assert codes(report) == ["S105"] and report["findings"][0]["step"] == 100
    status, report = check(capsys, phases_file(tmp_path, rising.replace("500", "100")))
    assert "S105" not in codes(report)


def test_s106_the_warmup_ends_after_the_wsd_anneal_begins():
    late = _cosine(1000, 1000, warmup=900, style="WSD", wsd_decay_steps=200,
                   lr_wsd_decay_style="linear")  # fmt: skip
    assert "S106" in _examine_codes(late)
    early = _cosine(1000, 1000, warmup=700, style="WSD", wsd_decay_steps=200,
                    lr_wsd_decay_style="linear")  # fmt: skip
    assert "S106" not in _examine_codes(early)
    longer = _cosine(1000, 1000, warmup=100, style="WSD", wsd_decay_steps=2000,
                     lr_wsd_decay_style="linear")  # fmt: skip
    found = [f for f in examine(longer)[1] if f.code == "S106"]
    assert found == [
        "the warmup ends at step 100, after the WSD anneal begins (before the run begins)"
    ]


STEP_SCHEDULE = [
    "--lr", "1e-3", "--train-iters", "100", "--micro-batch-size", "1",
    "--data-parallel-size", "2", "--step-batch-size-schedule", "0:2 20:8",
]  # fmt: skip


def test_s107_s108_a_step_schedule_moves_the_warmup_and_the_decay(capsys):
    status, report = check(
        capsys, "--megatron", *STEP_SCHEDULE, "--lr-warmup-iters", "20", "--lr-decay-iters", "60"
    )
    found = {f["code"]: f for f in report["findings"]}
    assert found["S107"]["step"] == 13 and "not 20" in found["S107"]["message"]
    assert found["S108"]["step"] == 23 and "not 60" in found["S108"]["message"]
    assert "S101" not in found  # S108 says it, with the iteration
    status, report = check(
        capsys, "--megatron", *STEP_SCHEDULE, "--lr-warmup-iters", "5", "--lr-decay-iters", "8"
    )
    assert not {"S107", "S108"} & set(codes(report))  # both end within the first stage


def test_s109_a_phase_past_the_end_of_the_run(tmp_path, capsys):
    phases = WARM_COSINE.replace("UNTIL", "100 steps")
    later = '\n  {shape = "linear", to = 0.0, until = "200 steps"},'
    status, report = check(capsys, phases_file(tmp_path, phases + later))
    assert codes(report) == ["S102", "S109"]
    assert "phase 2 ('linear', from step 100)" in report["findings"][1]["message"]
    status, report = check(capsys, phases_file(tmp_path, phases))
    assert codes(report) == []


def test_s109_a_branch_point_past_the_end_of_training():
    parent = _cosine(1000, 1000)
    branch = parent.branch(
        "1000 steps", [{"shape": "linear", "to": "min_lr", "until": "1100 steps"}]
    )
    assert "S109" in _examine_codes(branch)
    branch = parent.branch(
        "900 steps", [{"shape": "linear", "to": "min_lr", "until": "1000 steps"}]
    )
    assert "S109" not in _examine_codes(branch)


def test_s110_a_batch_size_stage_past_the_end(tmp_path, capsys):
    run = 'batch_size_schedule = [[0, 8], ["2000 samples", 16]]\ntotal = "100 steps"'
    phases = WARM_COSINE.replace("UNTIL", "100 steps")
    status, report = check(capsys, phases_file(tmp_path, phases, run))
    assert codes(report) == ["S110"]
    run = run.replace("2000 samples", "400 samples")
    status, report = check(capsys, phases_file(tmp_path, phases, run))
    assert codes(report) == []


def test_s111_a_run_without_a_total(tmp_path, capsys):
    phases = WARM_COSINE.replace("UNTIL", "100 steps")
    status, report = check(capsys, phases_file(tmp_path, phases, "global_batch_size = 8"))
    assert codes(report) == ["S111"] and status == 0
    status, report = check(capsys, phases_file(tmp_path, phases))
    assert codes(report) == []


def test_s112_a_jump_between_two_steps(tmp_path, capsys):
    down = """  {shape = "constant", value = "max_lr", until = "80 steps"},
  {shape = "constant", value = "min_lr", until = "100 steps"},"""
    status, report = check(capsys, phases_file(tmp_path, down))
    assert codes(report) == ["S112"] and report["findings"][0]["step"] == 81
    status, report = check(capsys, phases_file(tmp_path, WARM_COSINE.replace("UNTIL", "100 steps")))
    assert codes(report) == []


def test_s113_a_note_of_the_reader(tmp_path, capsys):
    megatron = """[megatron]
lr = 1e-3
min_lr = 1e-4
train_iters = 1000
global_batch_size = 8
lr_decay_style = "WSD"
lr_wsd_decay_style = "linear"
lr_wsd_decay_iters = WSD
"""
    status, report = check(capsys, toml_file(tmp_path, megatron.replace("WSD\n", "0\n")))
    assert "S113" in codes(report) and "S102" in codes(report)
    status, report = check(capsys, toml_file(tmp_path, megatron.replace("WSD\n", "100\n")))
    assert codes(report) == []


def test_s100_a_schedule_the_scheduler_refuses(tmp_path, capsys):
    phases = WARM_COSINE.replace("UNTIL", "5 steps")
    status, report = check(capsys, phases_file(tmp_path, phases))
    assert (
        status == 1
        and codes(report) == ["S100"]
        and "lr.phases[1].until" in (report["findings"][0]["message"])
    )


# ------------------------------------------------------------------ the command


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_text_report_has_the_summary_the_findings_and_the_counts(capsys):
    status, out, err = run(
        capsys, "check", "--megatron", "--lr", "3e-4", "--min-lr", "3e-5", "--train-iters",
        "10000", "--lr-decay-iters", "3000", "--global-batch-size", "256", "--seq-length", "4096",
    )  # fmt: skip
    assert status == 0 and err == ""
    assert out.splitlines()[:3] == [
        "check: Megatron arguments (12 words)",
        "run: 10,000 iterations, 2.56M samples, 10.486B tokens",
        "lr: peak 0.0003, final 3e-05, floor 3e-05; no warmup, decay ends at iteration 3,000 "
        "(70.0% of training at the floor)",
    ]
    assert "warning S101: the learning rate reaches its floor (3e-05) at iteration 3,000" in out
    assert out.rstrip().endswith("0 errors, 1 warning, 0 notes")


def test_strict_makes_warnings_fail_and_ignore_silences_a_rule(capsys):
    flags = ["--megatron", "--lr", "3e-4", "--train-iters", "100", "--lr-decay-iters", "10"]
    assert run(capsys, "check", *flags)[0] == 0
    assert run(capsys, "check", "--strict", *flags)[0] == 1
    status, out, _ = run(capsys, "check", "--strict", "--ignore", "s101,M152", *flags)
    assert status == 0 and "S101" not in out and "M152" not in out


def test_the_json_report(capsys):
    status, report = check(capsys, "--recipe", "minicpm-wsd")
    assert status == 0 and set(report) == {"source", "summary", "findings", "counts"}
    assert report["summary"]["steps"] == 100_000 and report["summary"]["warmup_end_step"] == 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "expected one schedule"),
        (["a.toml", "--recipe", "llama2-7b"], "expected one schedule"),
        (["--recipe", "llama2-7b", "--ignore", "S1O1"], "no rule S1O1 (did you mean S1"),
        (["--recipe", "llama2-7b", "--megatron-version", "0.18"], "invalid choice"),
        (["--recipe", "llama2-7b", "--data-parallel-size", "0"], "expected a whole number > 0"),
        (["/nonexistent/x.toml"], "/nonexistent/x.toml"),
        (["--recipe", "nope"], "nope"),
        (["--recipe", "llama2-7b", "--lr", "3e-4"], "unrecognized arguments"),
        (
            ["--data-parallel-size", "2", "--megatron", "--data-parallel-size", "4", "--lr", "1"],
            "expected one value",
        ),
    ],
    ids=lambda value: str(value)[:30],
)
def test_usage_errors_are_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, "check", *argv)
    assert status == 2 and out == "" and message in err and err.count("\n") == 1


def test_what_megatrons_parser_refuses_is_a_finding_not_a_traceback(capsys):
    for words in (
        ["--lr"],
        ["--lr", "nan", "--train-iters", "10"],
        ["--train-iters", "1e30", "--lr", "1"],
        ["positional", "--lr", "1"],
        ["--step-batch-size-schedule", "0:16", "2.4B:320", "--lr", "1"],
        [],
    ):
        status, report = check(capsys, "--megatron", *words)
        assert status == 1 and report["findings"][0]["severity"] == "error", words


def test_preview_warns_by_the_same_rules(capsys, tmp_path):
    phases = WARM_COSINE.replace("UNTIL", "300 steps")
    path = phases_file(tmp_path, phases)
    status, out, err = run(capsys, "preview", path)
    _, report = check(capsys, path)
    message = report["findings"][0]["message"]
    assert report["findings"][0]["code"] == "S102"
    assert f"paramsched preview: note: {message}" in err


@settings(max_examples=150, deadline=None)
@given(
    warmup=st.integers(0, 400),
    decay=st.integers(1, 2000),
    total=st.integers(1, 3000),
    style=st.sampled_from(["linear", "cosine", "inverse-square-root", "WSD", "constant"]),
    wsd=st.integers(0, 3000),
    batch=st.integers(1, 64),
)
def test_any_megatron_schedule_is_examined_without_error(warmup, decay, total, style, wsd, batch):
    assume(warmup < decay)
    extra = {"wsd_decay_steps": wsd, "lr_wsd_decay_style": "linear"} if style == "WSD" else {}
    schedule = Schedule(
        max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=warmup * batch, lr_decay_steps=decay * batch,
        lr_decay_style=style, run=Run(global_batch_size=batch, total=f"{total} steps"), **extra,
    )  # fmt: skip
    summary, found = examine(schedule)
    assert summary["steps"] == total
    for finding in found:
        assert "\n" not in finding and len(finding) <= 300
    ends_at_floor = float(schedule.base_lr(total * batch)) == summary["floor_lr"]
    codes = {finding.code for finding in found}
    if style != "constant" and not {"S105"} & codes:
        assert ends_at_floor or {"S102", "S103"} & codes


def test_a_run_without_steps_is_summarized_in_its_own_unit(tmp_path, capsys):
    tokens = """[run]
clock = "tokens"
total = "1B tokens"
[lr]
max_lr = 1e-3
min_lr = 1e-4
phases = [
  {shape = "linear", to = "max_lr", until = "10M tokens"},
  {shape = "cosine", to = "min_lr", until = "2B tokens"},
]
"""
    status, out, err = run(capsys, "check", toml_file(tmp_path, tokens))
    assert "run: 1B tokens" in out and "warmup ends at 10M tokens" in out
    assert "training ends at 1B tokens, before the decay reaches its floor" in out


def test_the_peak_of_a_run_too_long_to_list_step_by_step(tmp_path, capsys):
    phases = WARM_COSINE.replace("UNTIL", "100 steps")
    run_ = 'global_batch_size = 1\ntotal = "900000000000000000 steps"'
    status, report = check(capsys, phases_file(tmp_path, phases, run_))
    assert report["summary"]["peak_lr"] == 1.0 and codes(report) == ["S101"]


@pytest.mark.parametrize(
    ("table", "warmup_end"),
    [
        (
            '[hf]\nname = "cosine"\nlr = 3e-4\nnum_warmup_steps = 100\nnum_training_steps = 1000\n',
            100,
        ),
        (
            '[timm]\nsched = "cosine"\nlr = 1e-3\nnum_epochs = 10\nwarmup_epochs = 1\n'
            "updates_per_epoch = 100\nstep_on_epochs = false\n",
            99,
        ),
    ],
    ids=["hf", "timm"],
)
def test_other_stacks_schedules_are_checked_over_their_own_length(
    tmp_path, capsys, table, warmup_end
):
    """A stack's schedule runs for the steps its configuration speaks of, and its rate
    past them (transformers' cosine rises again) is not its floor."""
    status, report = check(capsys, toml_file(tmp_path, table))
    assert status == 0 and codes(report) == []
    summary = report["summary"]
    assert summary["steps"] == 1000 and summary["decay_end_step"] == 1000
    # transformers' rate reaches its peak at num_warmup_steps, timm's cosine the step before
    assert summary["floor_lr"] == 0.0 and summary["warmup_end_step"] == warmup_end


def test_following_the_findings_advice_clears_them(tmp_path, capsys):
    """Each fix the report suggests, taken as written, removes its finding."""
    base = ["--lr", "3e-4", "--train-samples", "64000", "--micro-batch-size", "1"]
    steps = ["--step-batch-size-schedule", "0:16 1000:64"]
    status, report = check(capsys, "--megatron", *base, *steps, "--global-batch-size", "64",
                           "--lr-warmup-steps", "10")  # fmt: skip
    assert {"M122", "M101"} <= set(codes(report))
    advice = next(f["message"] for f in report["findings"] if f["code"] == "M101")
    flag = advice.rsplit("did you mean ", 1)[1].rstrip("?")  # --lr-warmup-samples
    status, report = check(capsys, "--data-parallel-size", "1", "--megatron", *base, *steps,
                           flag, "10")  # fmt: skip
    assert status == 0 and not {"M122", "M101"} & set(codes(report))
    phases = WARM_COSINE.replace("UNTIL", "100 steps")
    status, report = check(capsys, phases_file(tmp_path, phases, "global_batch_size = 8"))
    assert codes(report) == ["S111"]  # its fix: give total in [run]
    status, report = check(
        capsys, phases_file(tmp_path, phases, 'global_batch_size = 8\ntotal = "100 steps"')
    )
    assert codes(report) == []
