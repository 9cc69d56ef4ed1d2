"""``paramsched check --megatron`` on the argument lists that launch scripts hand to
Megatron: arrays expanded by the shell, flags repeated, flags of Megatron's example
trainers, and hostile lists. Each list is Megatron's flags and values as a script's
launch line gives them."""

from __future__ import annotations

import argparse
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched.check.command import parse_in_chunks
from paramsched.cli import main
from paramsched.formats.megatron import add_megatron_flags

#: A launch line's scheduling flags: 500,000 iterations of a step batch-size schedule.
STEP_RUN = [
    "--seq-length", "2048",
    "--micro-batch-size", "1",
    "--train-iters", "500000",
    "--lr", "6.0e-5",
    "--lr-decay-style", "cosine",
    "--min-lr", "6.0e-6",
    "--lr-warmup-fraction", ".001",
    "--lr-decay-iters", "430000",
]  # fmt: skip

SCHEDULE = ["0:16", "2.4B:320", "4.8B:624", "7.2B:928", "9.6B:1232", "12B:1536"]


def check(capsys, *argv, megatron):
    """The exit status, the report as JSON data (None on a usage error) and stderr."""
    status = main(["check", "--json", *argv, "--megatron", *megatron])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out else None), err


def codes(report) -> list[str]:
    return [finding["code"] for finding in report["findings"]]


def messages(report, code: str) -> list[str]:
    return [finding["message"] for finding in report["findings"] if finding["code"] == code]


def test_a_step_schedule_the_shell_split_is_one_finding_and_the_rest_is_checked_as_quoted(
    capsys,
):
    options = ("--megatron-version", "main", "--data-parallel-size", "16")
    split = [*STEP_RUN, "--global-batch-size", "1536", "--step-batch-size-schedule", *SCHEDULE]
    quoted = [*split[: -len(SCHEDULE)], " ".join(SCHEDULE)]
    status, report, err = check(capsys, *options, megatron=split)
    _, as_quoted, _ = check(capsys, *options, megatron=quoted)
    assert status == 1 and err == ""
    (message,) = messages(report, "M100")
    assert message.startswith(
        "--step-batch-size-schedule takes one value, and the shell split it into 6 words "
        "(0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536)"
    )
    assert report["summary"] == as_quoted["summary"]
    assert report["findings"][1:] == as_quoted["findings"]
    assert codes(as_quoted)[:2] == ["M122", "S108"]
    # Megatron-Core 0.16 has no such flag: that is said too.
    _, older, _ = check(capsys, "--megatron-version", "0.16", megatron=split)
    assert codes(older)[:2] == ["M100", "M110"]


@pytest.mark.parametrize("stray", ["-x", "-", "extra"], ids=["dash-word", "dash", "word"])
def test_a_stray_word_after_a_flag_is_refused_in_megatrons_own_words(capsys, stray):
    status, report, _ = check(capsys, megatron=["--lr", "3e-4", "--train-iters", "1000", stray])
    assert status == 1 and report["summary"] is None
    (message,) = messages(report, "M100")
    assert message == (
        f"Megatron refuses the arguments: unrecognized arguments: {stray} (after "
        "--train-iters 1000, which takes 1 value: quote a value that holds spaces)"
    )


def test_a_toml_file_after_another_flag_is_that_flags_value(capsys):
    status, report, _ = check(
        capsys, megatron=["--lr", "3e-4", "--train-iters", "10", "--model-config", "run.toml"]
    )
    assert status == 0
    assert messages(report, "M151") == [
        "ignored 1 flag that does not affect the schedule (--model-config)"
    ]


@pytest.mark.parametrize(
    "flag",
    [
        "--total-seq-length",
        "--packing-seq-length",
        "--image-seq-length",
        "--out-seq-length",
        "--max-batch-size",
        "--mem-batch-size",
        "--calib-batch-size",
        "--mmlu-batch-size",
        "--num-samples",
    ],
)
def test_flags_megatrons_trainers_add_are_not_taken_for_misspellings(capsys, flag):
    status, report, _ = check(capsys, megatron=["--lr", "1e-2", "--train-iters", "2200", flag, "2"])
    assert status == 0 and "M101" not in codes(report)
    assert messages(report, "M151") == [
        f"ignored 1 flag that does not affect the schedule ({flag})"
    ]


def test_a_misspelt_scheduling_flag_is_still_refused(capsys):
    status, report, _ = check(
        capsys, megatron=["--lr", "1e-2", "--train-iters", "2200", "--lr-warmup-steps", "150"]
    )
    assert status == 1
    assert messages(report, "M101") == [
        "unrecognized argument --lr-warmup-steps; did you mean --lr-warmup-iters?"
    ]


def test_the_encoder_sequence_length_is_the_sequence_length_without_seq_length(capsys):
    run = ["--lr", "1e-4", "--train-iters", "1000", "--global-batch-size", "512"]
    _, encoder, _ = check(capsys, megatron=[*run, "--encoder-seq-length", "512"])
    _, plain, _ = check(capsys, megatron=[*run, "--seq-length", "512"])
    assert encoder["summary"]["tokens"] == 1000 * 512 * 512
    assert encoder == {**plain, "source": encoder["source"]}
    status, both, _ = check(
        capsys, megatron=[*run, "--seq-length", "512", "--encoder-seq-length", "1024"]
    )
    assert status == 1 and both["summary"] == plain["summary"]
    assert messages(both, "M100") == [
        "--encoder-seq-length 1024 with --seq-length 512; expected one of the two, as Megatron "
        "requires (the rest is checked with --seq-length)"
    ]


def test_a_step_schedules_thresholds_are_tokens_with_the_encoder_sequence_length(capsys):
    run = ["--lr", "1e-4", "--train-samples", "20000", "--micro-batch-size", "1"]
    run += ["--step-batch-size-schedule", "0:8 1M:16"]
    options = ("--megatron-version", "main", "--data-parallel-size", "8")
    _, encoder, _ = check(capsys, *options, megatron=[*run, "--encoder-seq-length", "1000"])
    _, plain, _ = check(capsys, *options, megatron=[*run, "--seq-length", "1000"])
    assert encoder["summary"]["batch_size_stages"][1]["samples"] == 1000
    assert encoder["summary"] == plain["summary"]


def test_train_samples_without_a_global_batch_size_asks_for_the_data_parallel_size(capsys):
    run = ["--lr", "5e-5", "--train-samples", "128000", "--micro-batch-size", "1"]
    status, report, err = check(capsys, megatron=run)
    assert status == 2 and report is None
    assert err.strip() == (
        "paramsched check: error: --global-batch-size is not set with --train-samples: "
        "Megatron takes --micro-batch-size x data-parallel size, which the flags do not say "
        "(pass --data-parallel-size N)"
    )
    status, report, _ = check(capsys, "--data-parallel-size", "8", megatron=run)
    assert status == 0 and report["summary"]["steps"] == 128000 // 8


@pytest.mark.parametrize("word", ["-h", "--help"])
def test_help_among_megatrons_words_is_said_to_stop_the_run(capsys, word):
    status, report, _ = check(capsys, megatron=["--lr", "1e-4", word, "--train-iters", "100"])
    assert status == 1 and report["summary"]["steps"] == 100
    assert messages(report, "M100") == [
        f"Megatron's parser prints its help at {word} and exits: the run does not start (the "
        "rest is checked without it)"
    ]
    assert "M151" not in codes(report)


def test_data_parallel_size_among_megatrons_words_is_refused_as_megatron_refuses_it(capsys):
    run = ["--lr", "1e-4", "--train-iters", "100", "--data-parallel-size", "8"]
    status, report, _ = check(capsys, megatron=run)
    assert status == 1
    assert messages(report, "M101")[0].startswith(
        "--data-parallel-size 8 is not one of Megatron's flags"
    )


def test_a_scheduling_flag_given_twice_warns_when_its_values_differ(capsys):
    run = ["--lr", "3e-4", "--train-iters", "100", "--weight-decay", "1e-2"]
    status, report, _ = check(capsys, megatron=[*run, "--lr=1e-3", "--weight-decay", "1e-2"])
    assert status == 0 and report["summary"]["peak_lr"] == 1e-3
    assert messages(report, "M111") == [
        "--lr is given 2 times with different values (3e-4, then 1e-3): Megatron takes the "
        "last, 1e-3, and ignores the others"
    ]
    # An earlier value is still read, as Megatron's parser reads it.
    status, report, _ = check(capsys, megatron=["--lr", "abc", *run])
    assert status == 1
    assert messages(report, "M100") == [
        "Megatron refuses the arguments: argument --lr: invalid float value: 'abc'"
    ]


LONG_LISTS = {
    "scheduling-flag": ["--lr", "1e-4"] * 50_000,
    "other-flag": ["--num-layers", "4"] * 50_000,
    "two-values": ["--lr", "1e-4", "--lr", "2e-4"] * 25_000,
    "each-value-new": [word for i in range(1, 50_001) for word in ("--lr", f"{i}e-9")],
}


@pytest.mark.parametrize("tail", LONG_LISTS.values(), ids=LONG_LISTS.keys())
def test_a_list_of_100000_words_is_checked_in_seconds(capsys, tail):
    words = ["--lr", "3e-4", "--train-iters", "1000", *tail]
    start = time.perf_counter()
    status, report, _ = check(capsys, megatron=words)
    assert time.perf_counter() - start < 20
    assert status == 0 and report["summary"]["steps"] == 1000
    assert report["summary"]["peak_lr"] == float(words[-1] if tail[0] == "--lr" else 3e-4)


def test_a_constant_batch_size_not_divisible_names_global_batch_size(capsys):
    run = ["--lr", "6e-5", "--train-iters", "100", "--micro-batch-size", "2"]
    status, report, _ = check(
        capsys, "--data-parallel-size", "8", megatron=[*run, "--global-batch-size", "4"]
    )
    assert status == 1
    assert messages(report, "M130") == [
        "--global-batch-size 4 is not a multiple of --micro-batch-size x --data-parallel-size "
        "= 16; expected a multiple, since Megatron refuses it at start-up"
    ]


def test_a_last_rate_a_hair_above_the_floor_is_shown_with_the_digits_that_differ(capsys):
    run = ["--lr", "2e-6", "--min-lr", "2.5e-7", "--train-samples", "6602173"]
    run += ["--lr-warmup-samples", "198065", "--lr-decay-style", "cosine"]
    run += ["--global-batch-size", "256", "--micro-batch-size", "1"]
    _, report, _ = check(capsys, megatron=run)
    (message,) = messages(report, "S103")
    final = report["summary"]["final_lr"]
    assert final != 2.5e-7
    assert message.endswith(f"its last rate is {final:.9g}, not 2.5e-07")
    assert f"{final:.8g}" == "2.5e-07"


def test_a_wsd_anneal_longer_than_the_decay_is_checked_as_megatron_runs_it(capsys):
    run = ["--lr", "1e-4", "--train-iters", "1000", "--lr-decay-style", "WSD"]
    run += ["--lr-wsd-decay-iters", "2000", "--global-batch-size", "1"]
    status, report, err = check(capsys, megatron=run)
    assert status == 0 and err == "" and codes(report) == ["S113"]
    status, report, _ = check(capsys, megatron=[*run, "--lr-warmup-iters", "10"])
    assert status == 0
    assert messages(report, "S106") == [
        "the warmup ends at iteration 10, after the WSD anneal begins (before the run begins)"
    ]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--lr", "nan"], "--lr=nan is not finite; expected a finite number"),
        (["--lr", "inf"], "--lr=inf is not finite; expected a finite number"),
        (["--lr", "-1"], "--lr=-1.0 is negative; expected a number >= 0"),
        (["--lr=abc"], "Megatron refuses the arguments: argument --lr: invalid float value: 'abc'"),
        (["--lr", "1e30"], "--lr=1e+30 is beyond any run; expected at most 1e18 in size"),
        (["--lr", "3e-4", "--train-iters", "0"], "--train-iters=0; expected a number > 0"),
        (
            ["--lr", "3e-4", "--train-iters", "1e30"],
            "Megatron refuses the arguments: argument --train-iters: invalid int value: '1e30'",
        ),
        ([], "--lr is not set; expected the peak learning rate"),
        (["only", "positionals"], "Megatron refuses the arguments: unrecognized arguments: only "
         "positionals"),
        (
            ["--lr", "3e-4", "--train-samples", "100", "--step-batch-size-schedule", "0:8,x:y"],
            "--step-batch-size-schedule threshold='X'; expected a number with an optional K, M, "
            "B or T suffix",
        ),
        (
            ["--lr", "3e-4", "--lr-decay-style", "cösine"],
            "Megatron refuses the arguments: argument --lr-decay-style: invalid choice: 'cösine' "
            "(choose from 'constant', 'linear', 'cosine', 'inverse-square-root', 'WSD')",
        ),
    ],
    ids=[
        "nan", "inf", "negative", "not-a-number", "huge", "no-iterations", "huge-int",
        "empty", "positionals", "garbage-schedule", "unicode",
    ],
)  # fmt: skip
def test_a_hostile_value_is_one_error_naming_the_flag(capsys, words, message):
    if not {"--train-iters", "--train-samples"} & set(words):
        words = [*words, "--train-iters", "10"]
    argv = ["--megatron-version", "main", "--data-parallel-size", "1"]
    status, report, err = check(capsys, *argv, megatron=words)
    assert status == 1 and err == ""
    assert message in [finding["message"] for finding in report["findings"]]


def test_a_split_schedule_written_with_an_equals_sign_is_read_alike(capsys):
    options = ("--megatron-version", "main", "--data-parallel-size", "16")
    run = [*STEP_RUN, "--step-batch-size-schedule"]
    _, spaced, _ = check(capsys, *options, megatron=[*run, *SCHEDULE])
    _, attached, _ = check(
        capsys, *options, megatron=[*run[:-1], f"{run[-1]}={SCHEDULE[0]}", *SCHEDULE[1:]]
    )
    assert attached["findings"] == spaced["findings"]
    assert attached["summary"] == spaced["summary"]
    assert codes(spaced)[0] == "M100"


@pytest.mark.parametrize(
    "words",
    [
        ["--json"],
        ["--strict"],
        ["--megatron-version", "0.16"],
        ["--ignore", "S101"],
        ["--megatron"],
    ],
    ids=["json", "strict", "version", "ignore", "megatron-twice"],
)
def test_checks_own_flags_after_megatron_are_refused_as_megatron_refuses_them(capsys, words):
    status, report, _ = check(capsys, megatron=["--lr", "1e-4", "--train-iters", "10", *words])
    assert status == 1
    assert messages(report, "M101") == [
        f"{words[0]} is paramsched check's flag, not Megatron's (Megatron refuses it); "
        "expected it before --megatron"
    ]
    assert "M151" not in codes(report)


@pytest.mark.parametrize("flag", ["--lr", "--train-iters", "--lr-decay-style"])
def test_a_flag_written_equals_dash_dash_is_no_value(capsys, flag):
    run = ["--lr", "3e-4", "--train-iters", "10", f"{flag}=--"]
    status, report, _ = check(capsys, megatron=run)
    assert status == 1 and report["summary"]["steps"] == 10
    assert messages(report, "M100") == [
        f"{flag}=-- gives {flag} no value (Megatron's parser reads an empty list); expected a "
        "value after = (the rest is checked without it)"
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [["--lr", "1e-4"], ["--lr=3e-4"], ["--train-iters", "7"], ["--seq-length", "9"]]
            + [["--rampup-batch-size", "1", "2", "3"], ["--lr-decay-style", "cosine"]]
        ),
        max_size=12,
    ),
    st.integers(1, 4),
)
def test_flags_parsed_in_chunks_are_those_of_one_call(groups, size):
    parser = argparse.ArgumentParser()
    add_megatron_flags(parser)
    words = [word for group in groups for word in group]
    assert parse_in_chunks(parser, words, size) == parser.parse_args(words)


@pytest.mark.parametrize(
    ("words", "shown"),
    [(["abc"], "abc"), ([], "nothing"), (["512", "1024"], "512 1024")],
    ids=["not-a-number", "no-value", "two-values"],
)
def test_an_encoder_sequence_length_megatron_cannot_read_is_refused(capsys, words, shown):
    run = ["--lr", "1e-4", "--train-iters", "10", "--encoder-seq-length", *words]
    status, report, _ = check(capsys, megatron=run)
    assert status == 1 and report["summary"]["tokens"] is None
    assert messages(report, "M100") == [
        "Megatron refuses the arguments: --encoder-seq-length takes one whole number, not "
        f"{shown} (the rest is checked without a sequence length)"
    ]
