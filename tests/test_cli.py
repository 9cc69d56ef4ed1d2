"""Tests for the paramsched command line."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import RULE_TOML, TOKEN_CLOCK_TOML, VALUES_TOML, schedule_from_toml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_megatron import FLAG_EXAMPLES, FLAG_NAMES, megatron_016_iterations

from paramsched import from_megatron_args
from paramsched.cli import EXAMPLE, _build_parser, main
from paramsched.formats.megatron import MEGATRON_FLAGS, MEGATRON_LOOKALIKES, NEAR_MISS


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_table_with_no_flags_shows_the_example(capsys):
    status, out, err = run(capsys, "table")
    assert status == 0 and err == ""
    assert out.startswith("example run: --lr 0.0003")
    assert "warmup ends" in out and "anneal starts" in out and "decay ends" in out


def test_table_values_are_the_schedules(capsys):
    status, out, _ = run(
        capsys,
        "table",
        "--lr",
        "1e-3",
        "--min-lr",
        "1e-4",
        "--train-iters",
        "100",
        "--lr-warmup-iters",
        "10",
        "--lr-decay-style",
        "cosine",
        "--global-batch-size",
        "8",
        "--points",
        "4",
    )
    assert status == 0
    schedule = from_megatron_args(
        argparse.Namespace(
            lr=1e-3,
            min_lr=1e-4,
            train_iters=100,
            lr_warmup_iters=10,
            lr_decay_style="cosine",
            global_batch_size=8,
        )
    )
    rows = [line.split() for line in out.splitlines()[2:]]
    iterations = [int(r[0]) for r in rows]
    assert iterations == [0, 10, 25, 50, 75, 100]
    for row in rows:
        samples = int(row[1])
        assert samples == int(row[0]) * 8
        assert row[2] == f"{schedule.lr(samples):.6e}"
        assert row[3] == f"{schedule.wd(samples):.6e}"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["table", "--lr-decay-style", "cosin"], "invalid choice: 'cosin'"),
        (["table", "--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
        (["table", "--lr", "1e-3"], "neither --train-iters nor --train-samples is set"),
        (
            ["table", "--lr", "1e-3", "--train-iters", "10", "--min-lr", "1"],
            "--min-lr 1.0 is greater than --lr 0.001",
        ),
        (["table", "--points", "-1"], "--points=-1; expected a number >= 0"),
        (["tabel"], "invalid choice: 'tabel'"),
        (["table", "--bogus"], "unrecognized arguments: --bogus"),
        (
            ["table", "--lr", "1", "--train-samples", "4", "--global-batch-size", "8"],
            "--train-samples=4 is less than one iteration of 8 samples",
        ),
        (
            [
                "table",
                "--lr",
                "1",
                "--train-samples",
                "100",
                "--global-batch-size",
                "8",
                "--rampup-batch-size",
                "4",
                "4",
                "100",
            ],
            "--train-samples=100 ends within the batch-size ramp-up, which takes 108 samples",
        ),
        (
            [
                "table",
                "--lr",
                "1",
                "--train-samples",
                "100",
                "--global-batch-size",
                "8",
                "--rampup-batch-size",
                "4",
                "x",
                "100",
            ],
            "--rampup-batch-size[1]='x'; expected a whole number",
        ),
        (["table", "--rampup-batch-size", "4", "4"], "expected 3 arguments"),
    ],
    ids=[
        "style",
        "not-a-number",
        "no-length",
        "min-above-max",
        "points",
        "command",
        "flag",
        "samples-short",
        "samples-in-ramp",
        "ramp-not-a-number",
        "ramp-two-values",
    ],
)
def test_bad_flags_give_one_line_and_status_2(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def flag_words(values: dict) -> list[str]:
    """Megatron's arguments as command-line words."""
    words = []
    for name, value in values.items():
        words.append("--" + name.replace("_", "-"))
        words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return words


@pytest.mark.parametrize("command", ["table", "preview"])
@pytest.mark.parametrize("name", FLAG_NAMES, ids=FLAG_NAMES)
def test_table_and_preview_take_every_megatron_flag(capsys, command, name):
    values = FLAG_EXAMPLES[name]
    options = _build_parser().parse_args([command, *flag_words(values)])
    expected = values[name]
    assert getattr(options, name) == (
        [str(v) for v in expected] if isinstance(expected, list) else expected
    )
    status, out, err = run(capsys, command, *flag_words(values))
    assert status == 0 and out
    assert all(line.startswith(f"paramsched {command}: note: ") for line in err.splitlines())
    assert ("--rampup-batch-size follows Megatron-Core 0.16" in err) == (
        name == "rampup_batch_size"
    )


@pytest.mark.parametrize("command", ["table", "preview"])
def test_help_lists_every_megatron_flag(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    for flag in MEGATRON_FLAGS:
        assert f"  {flag.option} " in out and f"  {flag.help}\n" in out
    assert ("--points" in out) == (command == "table")


SAMPLE_BASED_TABLE = """\
decay style linear, 12 iterations of 8 samples (Megatron's count for --train-samples 100); \
values the scheduler holds after each iteration
 iteration      samples             lr   weight_decay  event
         0            0   0.000000e+00   1.000000e-02  start
         3           24   9.550000e-04   1.000000e-02  warmup ends
         6           48   6.850000e-04   1.000000e-02
        12           96   1.450000e-04   1.000000e-02  training ends
        13          104   1.000000e-04   1.000000e-02  decay ends
"""


def test_table_of_a_sample_based_run(capsys):
    flags = dict(lr=1e-3, min_lr=1e-4, train_samples=100, global_batch_size=8, lr_warmup_samples=20)
    status, out, err = run(capsys, "table", *flag_words(flags), "--points", "2")
    assert status == 0 and err == ""
    assert out == SAMPLE_BASED_TABLE
    schedule = from_megatron_args(argparse.Namespace(**flags))
    for row in [line.split() for line in out.splitlines()[2:]]:
        samples = int(row[1])
        assert samples == int(row[0]) * 8
        assert (row[2], row[3]) == (f"{schedule.lr(samples):.6e}", f"{schedule.wd(samples):.6e}")


def test_table_of_a_sample_based_run_with_a_ramp(capsys):
    flags = dict(
        lr=1e-3,
        train_samples=1000,
        global_batch_size=8,
        rampup_batch_size=[4, 4, 100],
        lr_decay_style="cosine",
    )
    status, out, err = run(capsys, "table", *flag_words(flags), "--points", "2")
    assert status == 0 and err == (
        "paramsched table: note: --rampup-batch-size follows "
        "Megatron-Core 0.16 and 0.17; from 0.18 Megatron ignores it "
        "(use --step-batch-size-schedule)\n"
    )
    # 25 iterations of 4 samples, one of 8 that ends the ramp at 108, then 111 whole batches.
    assert out.startswith("decay style cosine, 137 iterations of 4 rising to 8 samples")
    schedule = from_megatron_args(argparse.Namespace(**flags))
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [int(r[0]) for r in rows] == [0, 68, 137, 138]
    assert rows[2][4:] == ["training", "ends"] and rows[3][4:] == ["decay", "ends"]
    for row in rows:
        samples = int(row[1])
        assert samples == schedule.run.samples_at_step(int(row[0]))
        assert row[2] == f"{schedule.lr(samples):.6e}"
    assert int(rows[2][1]) == 996


# ------------------------------------------- a launch line of Megatron's, pasted whole

#: Argument lists as bash expands the arrays of Megatron-LM's example scripts for
#: pretrain_*.py (examples/llama, mixtral, bert, mamba; paths made up), split on
#: whitespace as an unquoted expansion is (so ``'99,1,0'`` keeps its quotes).
LAUNCH_LINES = {
    "llama3-8b": """
        --use-mcore-models --num-layers 32 --hidden-size 4096 --ffn-hidden-size 14336
        --num-attention-heads 32 --group-query-attention --num-query-groups 8 --kv-channels 128
        --seq-length 8192 --max-position-embeddings 8192 --position-embedding-type rope
        --rotary-base 1000000 --rotary-percent 1.0 --attention-dropout 0.0 --hidden-dropout 0.0
        --swiglu --normalization RMSNorm --init-method-std 0.0134 --attention-backend fused
        --apply-layernorm-1p --untie-embeddings-and-output-weights --disable-bias-linear
        --micro-batch-size 1 --global-batch-size 128 --train-samples 1953125000
        --lr-decay-samples 1949218748 --lr-warmup-samples 3906252 --lr 0.00015 --min-lr 0.00001
        --decoupled-lr 5.0e-4 --decoupled-min-lr 4.5e-5 --lr-decay-style cosine --clip-grad 1.0
        --weight-decay 0.1 --adam-beta1 0.9 --adam-beta2 0.95 --bf16 --grad-reduce-in-bf16
        --cross-entropy-loss-fusion --calculate-per-token-loss --manual-gc
        --empty-unused-memory-level 1 --exit-duration-in-mins 235 --use-distributed-optimizer
        --overlap-grad-reduce --overlap-param-gather --fp8-format hybrid
        --fp8-amax-history-len 1024 --fp8-amax-compute-algo max --fp8-param-gather
        --tensor-model-parallel-size 1 --context-parallel-size 1 --sequence-parallel --mock-data
        --tokenizer-type NullTokenizer --vocab-size 128256 --data-cache-path /data/cache
        --tiktoken-pattern v2 --split '99,1,0' --no-create-attention-mask-in-dataloader
        --no-mmap-bin-files --num-workers 1 --log-interval 1 --eval-iters 32 --eval-interval 100
        --save-interval 1000 --log-throughput --profile --profile-step-start 4
        --profile-step-end 6 --ckpt-format torch_dist --distributed-timeout-minutes 60
        --save /ckpt --load /ckpt --tensorboard-dir /tb""",
    "mixtral-8x7b": """
        --use-mcore-models --disable-bias-linear --seq-length 4096 --max-position-embeddings 32768
        --num-layers 32 --hidden-size 4096 --ffn-hidden-size 14336 --num-attention-heads 32
        --init-method-std 0.01 --attention-dropout 0.0 --hidden-dropout 0.0 --normalization
        RMSNorm --position-embedding-type rope --swiglu --untie-embeddings-and-output-weights
        --group-query-attention --num-query-groups 8 --no-masked-softmax-fusion
        --no-position-embedding --rotary-base 1000000 --num-experts 8 --moe-router-topk 2
        --moe-router-load-balancing-type aux_loss --moe-aux-loss-coeff 1e-2 --moe-grouped-gemm
        --moe-token-dispatcher-type alltoall --overlap-param-gather --overlap-grad-reduce
        --tokenizer-type Llama2Tokenizer --tokenizer-model /data/tokenizer.model --data-path
        /data/text_document --split 99990,8,2 --micro-batch-size 1 --global-batch-size 256
        --lr 1e-4 --train-iters 500000 --lr-decay-iters 320000 --lr-decay-style cosine --min-lr
        1.0e-5 --weight-decay 0.1 --lr-warmup-iters 500 --clip-grad 1.0 --bf16
        --tensor-model-parallel-size 1 --pipeline-model-parallel-size 4
        --expert-model-parallel-size 8 --use-distributed-optimizer --sequence-parallel
        --log-interval 1 --save-interval 10000 --eval-interval 1000 --eval-iters 10 --save /ckpt
        --load /ckpt --tensorboard-dir /ckpt/tensorboard --no-load-optim --no-load-rng""",
    "bert-340m": """
        --num-layers 24 --hidden-size 1024 --num-attention-heads 16 --seq-length 512
        --max-position-embeddings 512 --attention-backend auto --micro-batch-size 4
        --global-batch-size 32 --train-iters 1000000 --weight-decay 1e-2 --clip-grad 1.0 --fp16
        --lr 0.0001 --lr-decay-iters 990000 --lr-decay-style linear --min-lr 1.0e-5
        --weight-decay 1e-2 --lr-warmup-fraction .01 --clip-grad 1.0
        --tensor-model-parallel-size 8 --pipeline-model-parallel-size 16 --data-path
        /data/text_sentence --vocab-file /data/vocab.txt --split 949,50,1 --log-interval 100
        --save-interval 10000 --eval-interval 1000 --save /ckpt --load /ckpt --eval-iters 10
        --tensorboard-dir /tb""",
    "mamba-800m": """
        --tensor-model-parallel-size 1 --sequence-parallel --pipeline-model-parallel-size 1
        --use-distributed-optimizer --overlap-param-gather --overlap-grad-reduce
        --untie-embeddings-and-output-weights --init-method-std 0.02 --position-embedding-type
        none --hybrid-layer-pattern M-M-M--M-*M-M-M-M--*M-M-M-M-*M--M-M-M-*M-M--M-M-
        --hidden-size 1024 --num-attention-heads 16 --group-query-attention --num-query-groups 8
        --seq-length 4096 --max-position-embeddings 4096 --train-samples 73242188
        --lr-warmup-samples 50000 --lr-decay-samples 73192188 --save /ckpt --load /ckpt
        --data-path /data/text --data-cache-path /data/cache --split 99,1,0 --tokenizer-type
        GPTSentencePieceTokenizer --tokenizer-model /data/tokenizer.model --distributed-backend
        nccl --micro-batch-size 4 --global-batch-size 32 --lr 2.5e-4 --min-lr 2.5e-5
        --lr-decay-style cosine --weight-decay 0.1 --clip-grad 1.0 --attention-dropout 0.0
        --hidden-dropout 0.0 --disable-bias-linear --normalization RMSNorm --adam-beta1 0.9
        --adam-beta2 0.95 --log-interval 10 --save-interval 2000 --eval-interval 2000
        --eval-iters 32 --bf16 --use-mcore-models --spec
        megatron.core.models.hybrid.hybrid_layer_specs hybrid_stack_spec
        --no-create-attention-mask-in-dataloader --tensorboard-dir /tb""",
}


def scheduling_words(words: list[str]) -> list[str]:
    """The words of Megatron's scheduling flags in `words` (each with its values)."""
    kept, taking = [], 0
    options = {flag.option: len(flag.metavar or "x") for flag in MEGATRON_FLAGS}
    for word in words:
        if word.startswith("--"):
            taking = options.get(word, 0)
            if taking:
                kept.append(word)
        elif taking:
            kept.append(word)
            taking -= 1
    return kept


@pytest.mark.parametrize("command", ["table", "preview"])
@pytest.mark.parametrize("name", list(LAUNCH_LINES))
def test_a_launch_line_of_megatrons_examples_is_read_whole(capsys, command, name):
    words = LAUNCH_LINES[name].split()
    status, out, err = run(capsys, command, *words)
    assert status == 0, err
    notes = err.splitlines()
    others = (
        {word for word in words if word.startswith("--")}
        - {flag.option for flag in MEGATRON_FLAGS}
        - {"--decoupled-lr", "--decoupled-min-lr"}
    )
    assert notes[0] == (
        f"paramsched {command}: note: ignored {len(others)} flags that do not "
        "affect the schedule ("
        + ", ".join(list(dict.fromkeys(w for w in words if w in others))[:5])
        + ", ...)"
    )
    assert (
        "--decoupled-lr, --decoupled-min-lr, which give some parameter groups rates of "
        "their own" in err
    ) == (name == "llama3-8b")
    # The schedule is that of the scheduling flags alone.
    alone = run(capsys, command, *scheduling_words(words))
    assert alone[0] == 0 and alone[1] == out


def test_megatrons_gpt3_example_is_refused_as_megatron_refuses_it(capsys):
    schedule = "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536"
    line = [
        "--micro-batch-size",
        "1",
        "--global-batch-size",
        "1536",
        "--step-batch-size-schedule",
        *schedule.split(),
        "--train-iters",
        "500000",
        "--weight-decay",
        "0.1",
        "--adam-beta1",
        "0.9",
        "--clip-grad",
        "1.0",
        "--fp16",
        "--lr",
        "6.0e-5",
        "--lr-decay-style",
        "cosine",
        "--min-lr",
        "6.0e-6",
        "--lr-warmup-fraction",
        ".001",
        "--lr-decay-iters",
        "430000",
        "--seq-length",
        "2048",
    ]
    # Its array splits the schedule into words, which Megatron's parser refuses too.
    status, out, err = run(capsys, "table", *line)
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(
        "paramsched table: error: unrecognized arguments: 2.4B:320 4.8B:624 "
        "7.2B:928 9.6B:1232 12B:1536 (after --step-batch-size-schedule 0:16, "
        "which takes 1 value"
    )
    index = line.index("--step-batch-size-schedule")
    quoted = [*line[: index + 1], schedule, *line[index + 7 :]]
    status, out, err = run(capsys, "table", *quoted)  # quoted: --global-batch-size beside it
    assert (
        status == 2
        and "--step-batch-size-schedule='0:16 2.4B:320" in err
        and "with --global-batch-size=1536; expected one of the two" in err
    )
    quoted[2:4] = ["--data-parallel-size", "16"]  # without it, Megatron's default: 1 x 16
    status, out, err = run(capsys, "table", *quoted)
    assert status == 0 and "the learning rate reaches --min-lr at iteration 81,663" in err
    assert (
        "ignored 3 flags that do not affect the schedule (--adam-beta1, --clip-grad, --fp16)" in err
    )


@pytest.mark.parametrize(
    "words,ignored",
    [
        (["--clip-grad", "1.0", "--adam-beta2", "0.95"], "--clip-grad, --adam-beta2"),
        (["--clip-grad=1.0", "--bf16"], "--clip-grad, --bf16"),
        (["--init-method-std", "-1", "--bf16"], "--init-method-std, --bf16"),
        (["--data-path", "0.5", "/a", "0.5", "/b", "--split", "'99,1,0'"], "--data-path, --split"),
        (
            ["--eval-iters", "10", "--decoder-seq-length", "128"],
            "--eval-iters, --decoder-seq-length",
        ),
    ],
    ids=["values", "equals-and-boolean", "negative", "many-values", "lookalikes"],
)
@pytest.mark.parametrize("command", ["table", "preview"])
def test_other_flags_are_ignored_with_their_values_in_one_note(capsys, command, words, ignored):
    flags = ["--lr", "1e-3", "--train-iters", "100", "--global-batch-size", "8"]
    expected = run(capsys, command, *flags)
    for placed in ([*words, *flags], [*flags, *words], [*flags[:2], *words, *flags[2:]]):
        status, out, err = run(capsys, command, *placed)
        assert status == 0 and out == expected[1]
        count = len(ignored.split(", "))
        assert (
            err == f"paramsched {command}: note: ignored {count} flags that do not affect "
            f"the schedule ({ignored})\n"
        )


@pytest.mark.parametrize(
    "words,message",
    [
        (
            ["--lr-warmup-steps", "10"],
            "unrecognized argument --lr-warmup-steps; did you mean --lr-warmup-iters?",
        ),
        (["--train-iter", "10"], "unrecognized argument --train-iter; did you mean --train-iters?"),
        (["--min_lr", "0"], "unrecognized argument --min_lr; did you mean --min-lr?"),
        (
            ["--lr-decay", "cosine"],
            "unrecognized argument --lr-decay; did you mean --lr-decay-style?",
        ),
        (
            ["--global-batch=8"],
            "unrecognized argument --global-batch; did you mean --global-batch-size?",
        ),
        (
            ["--warmup", "100"],
            "--warmup is no longer one of Megatron's flags (Megatron refuses it); "
            "expected --lr-warmup-fraction",
        ),
        (["--batch-size", "8"], "--batch-size is no longer one of Megatron's flags"),
    ],
    ids=[
        "steps-for-iters",
        "abbreviation",
        "underscore",
        "short",
        "equals",
        "retired-warmup",
        "retired-batch-size",
    ],
)
@pytest.mark.parametrize("command", ["table", "preview"])
def test_a_near_miss_of_a_flag_is_refused_with_the_flag_meant(capsys, command, words, message):
    status, out, err = run(
        capsys, command, "--lr", "1e-3", "--train-iters", "100", "--global-batch-size", "8", *words
    )
    assert status == 2 and out == ""
    assert err.startswith(f"paramsched {command}: error: {message}")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["table", "--point", "3"],
            "paramsched table: error: unrecognized argument --point; did you mean --points?",
        ),
        (
            ["preview", "--recipe", "llama2-7b", "--ou", "x.png"],
            "unrecognized argument --ou; did you mean --out?",
        ),
        (["preview", "--rec", "llama2-7b"], "unrecognized argument --rec; did you mean --recipe?"),
        (
            ["compare", "--rec", "llama2-7b", "--recipe", "minicpm-wsd"],
            "paramsched compare: error: unrecognized argument --rec; did you mean --recipe?",
        ),
        (
            ["compare", "--recipe", "llama2-7b", "--recipe", "minicpm-wsd", "--jso"],
            "unrecognized argument --jso; did you mean --json?",
        ),
        (["--vers"], "unrecognized arguments: --vers"),
        (
            ["preview", "--recipe", "llama2-7b", "--bf16"],
            "paramsched preview: error: unrecognized "
            "arguments: --bf16 (Megatron's other flags are taken beside its scheduling flags",
        ),
        (
            ["table", "--clip-grad", "1.0"],
            "paramsched table: error: unrecognized arguments: "
            "--clip-grad 1.0 (Megatron's other flags",
        ),
    ],
    ids=[
        "table-points",
        "preview-out",
        "preview-recipe",
        "compare-recipe",
        "compare-json",
        "top-level",
        "file-and-other-flags",
        "other-flags-alone",
    ],
)
def test_no_command_takes_an_abbreviation_or_an_unknown_flag(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and message in err and len(err.splitlines()) == 1


def test_help_after_a_flag_of_a_launch_line_is_the_help(capsys):
    status, out, _ = run(capsys, "table", "--lr", "1e-3", "--train-iters", "10", "--bf16", "-h")
    assert status == 0 and out.startswith("usage: paramsched table")


def test_every_megatron_lookalike_is_near_a_flag_and_ignored(capsys):
    # The list holds only Megatron's flags that would otherwise be taken for misspellings.
    known = [
        option
        for command in ("table", "preview")
        for option in _build_parser().commands[command]._option_string_actions
        if option[:2] == "--"
    ]
    flags = ["--lr", "1e-3", "--train-iters", "100", "--global-batch-size", "8"]
    for lookalike in sorted(MEGATRON_LOOKALIKES):
        assert difflib.get_close_matches(lookalike, known, n=1, cutoff=NEAR_MISS)
        assert lookalike not in known
        status, _, err = run(capsys, "table", *flags, lookalike, "1")
        assert (
            status == 0 and f"ignored 1 flag that does not affect the schedule ({lookalike})" in err
        )


#: Megatron-Core 0.16's update_train_iters for GPT-3's sample-based flags (its ramp-up
#: counted by stepping megatron-core's calculator; see test_megatron).
GPT3_SAMPLES = [
    "--lr",
    "6.0e-5",
    "--min-lr",
    "6.0e-6",
    "--lr-decay-style",
    "cosine",
    "--train-samples",
    "146484375",
    "--global-batch-size",
    "1536",
    "--rampup-batch-size",
    "16",
    "16",
    "5859375",
    "--lr-decay-samples",
    "126953125",
    "--lr-warmup-samples",
    "183105",
    "--seq-length",
    "2048",
    "--weight-decay",
    "0.1",
]


def test_table_and_preview_count_megatrons_iterations_for_gpt3s_sample_based_flags(capsys):
    expected = megatron_016_iterations(16, 16, 5_859_375, 1536, 146_484_375)
    _, table, _ = run(capsys, "table", *GPT3_SAMPLES)
    assert table.startswith(f"decay style cosine, {expected} iterations of 16 rising to 1536")
    assert re.search(rf"^ +{expected} +\d+ .* training ends$", table, re.M)
    _, shown, _ = run(capsys, "preview", *GPT3_SAMPLES)
    assert f"total: {expected:,} steps" in shown
    _, points, _ = run(capsys, "preview", *GPT3_SAMPLES, "--json", "--at", "100%")
    assert json.loads(points)[0]["step"] == expected


#: Runs of every kind: iterations, samples (whole batches or not), a ramp-up, a step
#: schedule by iterations and by samples, without a global batch size.
SAME_RUN_FLAGS = [
    dict(lr=1e-3, train_iters=100, global_batch_size=8),
    dict(lr=1e-3, train_iters=100),
    dict(lr=1e-3, train_iters=100, micro_batch_size=2, data_parallel_size=4),
    dict(lr=1e-3, train_samples=1000, global_batch_size=8),
    dict(lr=1e-3, train_samples=1001, global_batch_size=8, lr_warmup_samples=100),
    dict(lr=1e-3, train_samples=1000, global_batch_size=8, rampup_batch_size=[2, 2, 100]),
    dict(lr=1e-3, train_samples=1000, step_batch_size_schedule="0:4 100:16"),
    dict(
        lr=1e-3,
        train_iters=100,
        step_batch_size_schedule="0:4 100:16",
        micro_batch_size=1,
        data_parallel_size=4,
    ),
]


@pytest.mark.parametrize("flags", SAME_RUN_FLAGS, ids=range(len(SAME_RUN_FLAGS)))
def test_table_and_preview_run_for_the_same_iterations(capsys, flags):
    status, table, table_err = run(capsys, "table", *flag_words(flags), "--points", "0")
    assert status == 0, table_err
    iterations = int(re.search(r"decay style \w+, (\d+) iterations", table)[1])
    status, shown, preview_err = run(capsys, "preview", *flag_words(flags))
    assert status == 0, preview_err
    assert f"total: {iterations:,} steps" in shown
    assert table_err.replace("table", "preview") == preview_err  # the same notes
    assert re.search(rf"^ +{iterations} .* training ends$", table, re.M)


@pytest.mark.parametrize("command", ["table", "preview"])
def test_without_a_global_batch_size_table_and_preview_do_alike(capsys, command):
    status, out, err = run(capsys, command, "--lr", "1e-3", "--train-iters", "100")
    assert status == 0 and err == (
        f"paramsched {command}: note: --global-batch-size is not set: "
        "an iteration counts as 1 sample (the learning rate by "
        "iteration is the same at any constant batch size; samples "
        "and tokens are not)\n"
    )
    status, out, err = run(capsys, command, "--lr", "1e-3", "--train-samples", "100")
    assert status == 2 and err == (
        f"paramsched {command}: error: --global-batch-size is not set "
        "with --train-samples; expected it (or --micro-batch-size and "
        "--data-parallel-size), since Megatron trains --train-samples "
        "// --global-batch-size iterations\n"
    )


@pytest.mark.parametrize("quantity", ["50 iters", "50 iterations", "50 steps", "50 Iter"])
def test_iterations_are_steps_in_a_point(capsys, quantity):
    status, out, _ = run(
        capsys,
        "preview",
        "--lr",
        "1e-3",
        "--train-iters",
        "100",
        "--global-batch-size",
        "8",
        "--json",
        "--at",
        quantity,
    )
    assert status == 0 and json.loads(out)[0]["step"] == 50 and json.loads(out)[0]["samples"] == 400


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            [
                "--lr",
                "1e-3",
                "--train-iters",
                "100",
                "--global-batch-size",
                "8",
                "--at",
                "101 iters",
            ],
            "--at='101 iters' is past the end of the run (step 100, 800 samples); expected a point "
            "within it",
        ),
        (
            [
                "--lr",
                "1e-3",
                "--train-iters",
                "100",
                "--global-batch-size",
                "8",
                "--seq-length",
                "4",
                "--at",
                "101%",
            ],
            "--at='101%' is past the end of the run (step 100, 800 samples, 3,200 "
            "tokens); expected a point within it",
        ),
        (
            ["--recipe", "llama2-7b", "--at", "3T tokens"],
            "--at='3T tokens' is past the end of the run "
            "(step 476,838, 488.28M samples, 2T tokens); expected a point within it",
        ),
    ],
    ids=["steps", "percent", "tokens"],
)
@pytest.mark.parametrize("json_output", [False, True], ids=["table", "json"])
def test_a_point_past_the_end_of_the_run_is_refused_naming_the_end(
    capsys, argv, message, json_output
):
    status, out, err = run(capsys, "preview", *argv, *(["--json"] if json_output else []))
    assert status == 2 and out == ""
    assert err == f"paramsched preview: error: {message}\n"


@pytest.mark.parametrize("command", ["table", "preview"])
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lr", "-3e-4"], "--lr=-0.0003 is negative; expected a number >= 0"),
        (["--lr", "-0.0003"], "--lr=-0.0003 is negative; expected a number >= 0"),
        (["--lr", "1e-3", "--min-lr", "-1E-5"], "--min-lr=-1e-05 is negative"),
        (
            ["--lr", "1e-3", "--lr-warmup-fraction", "-1e-2"],
            "--lr-warmup-fraction=-0.01 is negative",
        ),
        (["--lr", "1e-3", "--weight-decay", "-inf"], "--weight-decay=-inf is not finite"),
    ],
    ids=["exponent", "decimal", "min-lr", "fraction", "infinite"],
)
def test_negative_values_reach_the_check(capsys, command, argv, message):
    status, out, err = run(
        capsys, command, *argv, "--train-iters", "10", "--global-batch-size", "4"
    )
    assert status == 2 and out == ""
    assert message in err and "expected one argument" not in err
    assert err.startswith(f"paramsched {command}: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_runs_as_a_module_and_as_a_command():
    for command in ([sys.executable, "-m", "paramsched", "table"], ["paramsched", "table"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "decay ends" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "paramsched", "table", "--lr", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_example_is_a_valid_megatron_configuration():
    assert from_megatron_args(argparse.Namespace(**EXAMPLE)).lr_decay_style == "WSD"


def test_recipes_lists_every_recipe_with_its_source(capsys):
    status, out, _ = run(capsys, "recipes")
    assert status == 0
    for name in ("llama2-7b", "minicpm-wsd", "deepseek-v3"):
        assert f"{name}: " in out
    assert out.count("source: ") >= 3


def test_preview_of_a_recipe_with_points_csv_and_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png, table = tmp_path / "s.png", tmp_path / "s.csv"
    status, out, err = run(
        capsys,
        "preview",
        "--recipe",
        "deepseek-v3",
        "--at",
        "2000 steps",
        "--at",
        "10T tokens",
        "--out",
        str(png),
        "--x",
        "tokens",
        "--csv",
        str(table),
    )
    assert status == 0, err
    assert "constant" in out and "cosine" in out and "area under the lr curve" in out
    assert png.read_bytes()[:4] == b"\x89PNG" and table.read_text().startswith("step,samples")


def test_preview_json_points(capsys):
    from paramsched import load_schedule
    from paramsched.recipe import recipe_path

    status, out, _ = run(
        capsys, "preview", "--recipe", "llama2-7b", "--json", "--at", "2000 steps", "--at", "50%"
    )
    points = json.loads(out)
    schedule = load_schedule(recipe_path("llama2-7b"))
    assert [sorted(p) for p in points] == [["lr", "samples", "step", "tokens", "wd"]] * 2
    assert points[0] == {
        "step": 2000,
        "samples": 2000 * 1024,
        "tokens": 2000 * 1024 * 4096,
        "lr": 3e-4,
        "wd": 0.1,
    }
    assert points[1]["lr"] == schedule.lr(points[1]["samples"])


def test_preview_from_megatron_flags_and_a_file(capsys, tmp_path):
    status, out, _ = run(
        capsys,
        "preview",
        "--lr",
        "1e-3",
        "--train-samples",
        "100000",
        "--rampup-batch-size",
        "32",
        "32",
        "10000",
        "--global-batch-size",
        "128",
        "--lr-decay-style",
        "cosine",
        "--lr-warmup-samples",
        "1000",
        "--seq-length",
        "512",
    )
    assert status == 0 and "warmup" in out and "cosine" in out
    path = tmp_path / "s.toml"
    path.write_text(
        "[lr]\nmax_lr = 1.0\nphases = [{ shape = 'linear', to = 0.0, "
        "until = '10 samples', from = 'max_lr' }]\n"
    )
    status, out, _ = run(capsys, "preview", str(path), "--at", "5 samples")
    assert status == 0 and "5.000000e-01" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["preview"], "expected one schedule"),
        (["preview", "--recipe", "x", "--lr", "1"], "expected one schedule"),
        (["preview", "--recipe", "nope"], "recipe 'nope' is not one of"),
        (["preview", "missing.toml"], "missing.toml: no such file"),
        (
            ["preview", "--recipe", "llama2-7b", "--at", "5 apples"],
            "--at='5 apples' is not a quantity",
        ),
        (["preview", "--recipe", "llama2-7b", "--x", "epochs"], "invalid choice: 'epochs'"),
        (
            [
                "preview",
                "--lr",
                "1",
                "--train-iters",
                "10",
                "--global-batch-size",
                "4",
                "--rampup-batch-size",
                "1",
                "1",
                "8",
            ],
            "with --train-iters; expected --train-samples",
        ),
        (["preview", "--recipe", "llama2-7b", "--csv", "/nonexistent/dir/x.csv"], "No such file"),
        (["preview", "--recipe", "llama2-7b", "--at", "1e400 steps"], "is beyond any run"),
        (
            ["preview", "--lr", "1", "--train-iters", "0", "--global-batch-size", "4"],
            "--train-iters=0; expected a number > 0",
        ),
    ],
    ids=["none", "two", "recipe", "file", "at", "x", "ramp-iters", "csv-path", "huge", "zero"],
)
def test_preview_errors_are_one_line(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "out,message",
    [
        ("plot", "--out='.*plot' has no file extension; expected one of"),
        ("plot.xyz", "--out='.*plot.xyz' has the extension .xyz, which matplotlib does not write"),
    ],
    ids=["no-extension", "unknown-format"],
)
def test_a_plot_that_cannot_be_written_is_refused_before_anything_is_written(
    capsys, tmp_path, out, message
):
    pytest.importorskip("matplotlib")
    table = tmp_path / "s.csv"
    status, stdout, err = run(
        capsys,
        "preview",
        "--recipe",
        "llama2-7b",
        "--csv",
        str(table),
        "--out",
        str(tmp_path / out),
    )
    assert status == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert re.search(message, err) and not table.exists() and list(tmp_path.iterdir()) == []


def test_a_plot_that_fails_leaves_no_csv_behind(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    table = tmp_path / "s.csv"
    status, _, err = run(
        capsys,
        "preview",
        "--recipe",
        "llama2-7b",
        "--csv",
        str(table),
        "--out",
        str(tmp_path / "missing" / "plot.png"),
    )
    assert status == 2 and "No such file or directory" in err and not table.exists()


def test_a_file_that_is_not_utf8_gets_one_line_naming_it(capsys, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[lr]\nmax_lr = 1.0  # \xff\xfe\n")
    status, out, err = run(capsys, "preview", str(path))
    assert status == 2 and out == ""
    assert err.strip() == (
        f"paramsched preview: error: {path}: not UTF-8 text (byte 0xff at "
        "offset 21); expected a TOML file in UTF-8"
    )


def test_points_are_bounded_before_any_work(capsys):
    status, out, err = run(
        capsys, "table", "--points", str(10**8), "--lr", "1e-3", "--train-iters", "10"
    )
    assert status == 2 and out == "" and "--points=100000000; expected at most 10,000" in err


STEP_FLAGS = [
    "--lr",
    "6e-5",
    "--min-lr",
    "6e-6",
    "--lr-decay-style",
    "cosine",
    "--lr-warmup-fraction",
    ".001",
    "--lr-decay-iters",
    "430000",
    "--train-iters",
    "500000",
    "--seq-length",
    "2048",
    "--micro-batch-size",
    "1",
    "--data-parallel-size",
    "16",
    "--step-batch-size-schedule",
    "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536",
]


def test_preview_of_a_step_schedule_shows_its_stages_and_where_the_decay_really_ends(capsys):
    status, out, err = run(capsys, "preview", *STEP_FLAGS)
    assert status == 0
    assert err == (
        "paramsched preview: note: --step-batch-size-schedule with --train-iters "
        "counts samples of micro-batch x data-parallel (16): the learning rate "
        "reaches --min-lr at iteration 81,663, not 430,000 (of 500,000)\n"
    )
    stages = out[out.index("batch size by stages") :].splitlines()
    assert stages[1].split() == [
        "stage",
        "from",
        "samples",
        "from",
        "tokens",
        "batch",
        "size",
        "first",
        "step",
    ]
    assert [row.split() for row in stages[3:]] == [
        ["0", "0", "0", "16", "0"],
        ["1", "1.1719M", "2.4B", "320", "73,243"],
        ["2", "2.3438M", "4.8B", "624", "76,906"],
        ["3", "3.5156M", "7.2B", "928", "78,784"],
        ["4", "4.6875M", "9.6B", "1232", "80,047"],
        ["5", "5.8594M", "12B", "1536", "80,998"],
    ]
    assert "total: 500,000 steps" in out


def test_table_of_a_step_schedule_runs_megatrons_iterations(capsys):
    flags = [
        "--lr",
        "1e-3",
        "--train-samples",
        "1000",
        "--step-batch-size-schedule",
        "0:8 100:16 500:32",
        "--points",
        "0",
    ]
    status, out, err = run(capsys, "table", *flags)
    assert status == 0 and err == ""
    schedule = from_megatron_args(
        argparse.Namespace(
            lr=1e-3, train_samples=1000, step_batch_size_schedule="0:8 100:16 500:32"
        )
    )
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows[-1][:2] == ["54", "1016"] and "training" in rows[-1]
    for row in rows:
        assert int(row[1]) == schedule.run.samples_at_step(int(row[0]))
        assert float(row[2]) == float(f"{schedule.lr(int(row[1])):.6e}")


def test_a_megatron_table_in_a_file_gives_the_same_notes_in_its_keys(capsys, tmp_path):
    path = tmp_path / "megatron.toml"
    path.write_text(
        "[megatron]\nlr = 1e-3\ntrain_samples = 1000\nglobal_batch_size = 8\n"
        "rampup_batch_size = [4, 4, 100]\n"
    )
    status, out, err = run(capsys, "preview", str(path))
    assert status == 0 and out
    assert err == (
        "paramsched preview: note: megatron.rampup_batch_size follows Megatron-Core 0.16 "
        "and 0.17; from 0.18 Megatron ignores it (use megatron.step_batch_size_schedule)\n"
    )


# ------------------------------------------------------------ hostile input


def test_no_command_prints_the_help_with_every_command(capsys):
    status, out, err = run(capsys)
    assert status == 0 and err == ""
    assert out.startswith("usage: paramsched") and "example: paramsched table" in out
    for command in ("table", "preview", "compare", "recipes"):
        assert f"\n    {command} " in out


@pytest.mark.slow
def test_python_m_paramsched_alone_prints_the_help_and_exits_0():
    result = subprocess.run([sys.executable, "-m", "paramsched"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: paramsched") and "recipes" in result.stdout


GOOD_TOML = (
    "[lr]\nmax_lr = 1.0\nphases = [{ shape = 'linear', to = 0.0, until = '10 samples', "
    "from = 'max_lr' }]\n"
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A directory of hostile files, and a function that puts their paths into argv."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "good.toml").write_text(GOOD_TOML)
    (root / "empty.toml").write_bytes(b"")
    (root / "binary.toml").write_bytes(bytes(range(128, 256)) * 4)
    (root / "bad.toml").write_text("[lr\nmax_lr = ")
    (root / "near-miss.toml").write_text(GOOD_TOML.replace("10 samples", "10samples"))
    (root / "huge-number.toml").write_text("[megatron]\nlr = 1e-3\ntrain_iters = 1e30\n")
    (root / "huge.toml").write_bytes(b"# padding\n" * 110_000)
    (root / "huge-integer.toml").write_text("[lr]\nmax_lr = 1" + "0" * 5000 + "\n")
    (root / "ramp-number.toml").write_text(
        "[megatron]\nlr = 1e-3\ntrain_samples = 100\nrampup_batch_size = 5\n"
    )
    (root / "batched.toml").write_text("[run]\nglobal_batch_size = 2\n" + GOOD_TOML)
    (root / "long.toml").write_text(
        "[megatron]\nlr = 1e-3\ntrain_iters = 1_000_000_000_000\nglobal_batch_size = 4\n"
    )
    (root / "a-directory").mkdir()
    (root / "a-file").write_text("not a directory")
    (root / "deep.toml").write_text("[lr]\nmax_lr = " + "[" * 600 + "]" * 600 + "\n")
    (root / "dotted.toml").write_text("[" + ".".join(["a"] * 100_000) + "]\n")
    (root / "self.toml").symlink_to("self.toml")
    (root / "from-self.toml").write_text('[branch]\nfrom = "self.toml"\nat = "50%"\n')
    (root / "round.toml").write_text('[branch]\nfrom = "round.toml"\nat = "50%"\n')

    def argv(*words):
        return [word.replace("{dir}", str(root)) for word in words]

    argv.root = root
    return argv


BASE = ["--lr", "1e-3", "--train-iters", "10", "--global-batch-size", "4"]

#: (argv, what stderr says); every one exits with status 2, one line and nothing written.
HOSTILE_ARGV = [
    # table: numbers
    (["table", "--lr", "-3e-4", *BASE[2:]], "--lr=-0.0003 is negative; expected a number >= 0"),
    (["table", "--lr", "nan", *BASE[2:]], "--lr=nan is not finite"),
    (["table", "--lr", "-inf", *BASE[2:]], "--lr=-inf is not finite"),
    (["table", "--lr", "1e400", *BASE[2:]], "--lr=inf is not finite"),
    (["table", *BASE[:2], "--train-iters", "1" + "0" * 30], "is beyond any run"),
    (["table", *BASE[:2], "--train-iters", "1" + "0" * 5000], "invalid int value"),
    (
        ["table", *BASE[:4], "--global-batch-size", "-4"],
        "--global-batch-size=-4; expected a whole number > 0",
    ),
    (["table", *BASE, "--points", "nan"], "argument --points: invalid int value: 'nan'"),
    (["table", *BASE, "--points", "-3e2"], "argument --points: invalid int value: '-3e2'"),
    (
        [
            "table",
            *BASE[:2],
            "--train-samples",
            "1000",
            "--global-batch-size",
            "8",
            "--rampup-batch-size",
            "4",
            "4",
            "20Btokens",
        ],
        "(did you mean '20B tokens'?)",
    ),
    (
        [
            "table",
            *BASE[:2],
            "--train-samples",
            "1000",
            "--global-batch-size",
            "8",
            "--rampup-batch-size",
            "4",
            "4",
            "nan",
        ],
        "--rampup-batch-size[2]='nan' is not a quantity",
    ),
    # table: flags
    (
        ["table", *BASE, "--train-samples", "100"],
        "--train-iters=10 with --train-samples=100; expected iteration-based",
    ),
    (["table", "--lr"], "argument --lr: expected one argument"),
    (
        ["table", *BASE, "--lr-warmup-steps", "5"],
        "unrecognized argument --lr-warmup-steps; did you mean --lr-warmup-iters?",
    ),
    (["table", *BASE, "--lr-decay-style", "cosin"], "invalid choice: 'cosin'"),
    # preview: files
    (["preview", "{dir}/missing.toml"], "missing.toml: no such file"),
    (["preview", "{dir}/a-directory"], "a-directory: is a directory; expected a TOML file"),
    (["preview", "{dir}/empty.toml"], "empty.toml: the schedule has no [lr] table"),
    (["preview", "{dir}/binary.toml"], "binary.toml: not UTF-8 text (byte 0x80 at offset 0)"),
    (["preview", "{dir}/bad.toml"], "bad.toml: not valid TOML"),
    (["preview", "{dir}/huge.toml"], "huge.toml: larger than 1,048,576 bytes"),
    (["preview", "{dir}/near-miss.toml"], "(did you mean '10 samples'?)"),
    (["preview", "{dir}/huge-integer.toml"], "holds an integer of more than 4300 digits"),
    (["preview", "{dir}/ramp-number.toml"], "megatron.rampup_batch_size=5 is of type int"),
    (["preview", "{dir}/huge-number.toml"], "megatron.train_iters=1e+30 is beyond any run"),
    (["preview", "{dir}/a-file/x.toml"], "x.toml: cannot be read: Not a directory"),
    (["preview", "{dir}/deep.toml"], "deep.toml: line 2 nests 65 levels deep; expected at most 64"),
    (["table", "{dir}/dotted.toml"], "dotted.toml: line 1 nests 100000 levels deep"),
    (
        ["preview", "{dir}/self.toml"],
        "self.toml: cannot be read: Too many levels of symbolic links",
    ),
    (
        ["preview", "{dir}/from-self.toml"],
        "from-self.toml: {dir}/self.toml: cannot be read: Too many levels of symbolic links",
    ),
    (
        ["compare", "{dir}/round.toml", "--recipe", "llama2-7b"],
        "round.toml: branch.from="
        "'round.toml' goes round in a circle: {dir}/round.toml -> {dir}/round.toml",
    ),
    (["preview", ""], "FILE='' is empty; expected a schedule file (TOML)"),
    (["preview", "a\0.toml"], "'a\\x00.toml' is not a file name"),
    # preview: schedules and points
    (["preview", "--recipe", "nope"], "recipe 'nope' is not one of"),
    (["preview", "--recipe", ""], "recipe '' is not one of"),
    (["preview", "{dir}/good.toml", "--recipe", "llama2-7b"], "expected one schedule"),
    (["preview", "{dir}/good.toml", "--at", "10steps"], "(did you mean '10 steps'?)"),
    (["preview", "{dir}/good.toml", "--at", "-1 samples"], "--at='-1 samples' is not a quantity"),
    (["preview", "{dir}/good.toml", "--at", "nan samples"], "is not a quantity"),
    (["preview", "{dir}/good.toml", "--at", "1e100000000 samples"], "is beyond any run"),
    (["preview", "{dir}/good.toml", "--at", "5 steps"], "is in steps; expected global_batch_size"),
    (
        ["preview", *BASE, "--at", "1e18 steps"],
        "--at='1000000000000000000 steps' is beyond any run",
    ),
    (["preview", "{dir}/good.toml", "--x", "epochs"], "invalid choice: 'epochs'"),
    # preview: outputs
    (
        ["preview", "{dir}/good.toml", "--csv", "{dir}/missing/x.csv"],
        "/missing/x.csv' cannot be written: {dir}/missing: No such file or directory",
    ),
    (["preview", "{dir}/good.toml", "--csv", "{dir}/a-directory"], "is a directory"),
    (["preview", "{dir}/good.toml", "--csv", "{dir}/a-file/x.csv"], "a-file: Not a directory"),
    (["preview", "{dir}/good.toml", "--csv", ""], "--csv='' is not a file name"),
    (
        ["preview", "{dir}/good.toml", "--csv", "{dir}/good.toml"],
        "good.toml' is also the schedule FILE; expected different files",
    ),
    (
        ["preview", "{dir}/good.toml", "--csv", "{dir}/x.png", "--out", "{dir}/./x.png"],
        "x.png' is also --csv; expected different files",
    ),
    (
        ["preview", "{dir}/good.toml", "--json", "--csv", "{dir}/x.csv"],
        "--json with --csv; expected --json alone",
    ),
    (
        ["preview", "{dir}/good.toml", "--out", "{dir}/missing/x.png", "--x", "samples"],
        "No such file or directory",
    ),
    (["preview", "{dir}/good.toml", "--out", "", "--x", "samples"], "--out='' is not a file name"),
    (
        [
            "preview",
            "{dir}/good.toml",
            "--csv",
            "{dir}/x.csv",
            "--out",
            "{dir}/x.pgf",
            "--x",
            "samples",
        ],
        "x.pgf' has the extension .pgf, which needs more than matplotlib to write "
        "(LaTeX); expected one of .png, .pdf, .svg, .svgz, .eps, .ps",
    ),
    # compare
    (["compare"], "paramsched compare: error: no schedule given; expected at least two"),
    (
        ["compare", "--recipe", "llama2-7b"],
        "error: one schedule given; expected at least two (FILEs or --recipe NAMEs)",
    ),
    (["compare", "{dir}/batched.toml"], "one schedule given"),
    (["compare", "{dir}/missing.toml", "--recipe", "llama2-7b"], "missing.toml: no such file"),
    (["compare", "--recipe", "llama2-7b", "{dir}/bad.toml"], "bad.toml: not valid TOML"),
    (["compare", "--recipe", "llama2-7b", "{dir}/a-directory"], "a-directory: is a directory"),
    (["compare", "--recipe", "llama2-7b", "--recipe", "nope"], "recipe 'nope' is not one of"),
    (["compare", "--recipe", "llama2-7b", ""], "FILE='' is empty"),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/good.toml"],
        "{dir}/good.toml has no global_batch_size; expected a run that counts optimizer steps",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/long.toml"],
        "long.toml has more than 10,000,000 steps; expected at most that many",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--bogus"],
        "unrecognized arguments: --bogus",
    ),
    (
        [
            "compare",
            "--recipe",
            "llama2-7b",
            "{dir}/batched.toml",
            "--out",
            "{dir}/c.png",
            "--x",
            "tokens",
        ],
        "{dir}/batched.toml: --x tokens needs the run's seq_length",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--out", "{dir}/missing/c.png"],
        "/missing/c.png' cannot be written: {dir}/missing: No such file or directory",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--out", "{dir}/a-directory"],
        "is a directory",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--out", "{dir}/c"],
        "has no file extension",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--out", "{dir}/c.pgf"],
        "has the extension .pgf, which needs more than matplotlib to write (LaTeX)",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--out", "{dir}/batched.toml"],
        "batched.toml' is also the schedule FILE '{dir}/batched.toml'; expected different files",
    ),
    (
        [
            "compare",
            "--recipe",
            "llama2-7b",
            "{dir}/batched.toml",
            "--json",
            "--out",
            "{dir}/c.png",
        ],
        "--json with --out; expected --json alone",
    ),
    (
        ["compare", "--recipe", "llama2-7b", "{dir}/batched.toml", "--x", "epochs"],
        "invalid choice: 'epochs'",
    ),
    # commands
    (["tabel"], "invalid choice: 'tabel'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["recipes", "extra"], "unrecognized arguments: extra"),
]


def run_hostile(capsys, hostile, words):
    """Runs `words`; returns status, stdout, stderr, and whether the directory changed."""
    before = sorted(p.name for p in hostile.root.rglob("*"))
    status, out, err = run(capsys, *hostile(*words))
    return status, out, err, sorted(p.name for p in hostile.root.rglob("*")) != before


@pytest.mark.parametrize(
    "words,message", HOSTILE_ARGV, ids=[f"{i}-{w[0]}" for i, (w, _) in enumerate(HOSTILE_ARGV)]
)
def test_hostile_arguments_get_one_line_status_2_and_nothing_written(
    capsys, hostile, words, message
):
    status, out, err, changed = run_hostile(capsys, hostile, words)
    assert status == 2 and out == "" and not changed
    assert len(err.splitlines()) == 1 and err.endswith("\n") and "Traceback" not in err
    assert hostile(message)[0] in err


@pytest.mark.parametrize(
    "words",
    [
        ["table"],
        ["table", *BASE],
        ["table", "--lr=-0", *BASE[2:]],
        ["recipes"],
        ["--version"],
        ["table", "--help"],
        ["preview", "{dir}/good.toml", "--at", "5 samples", "--json"],
        ["preview", *BASE, "--at", "2 steps"],
        ["preview", "--recipe", "llama2-7b"],
        ["compare", "{dir}/batched.toml", "--recipe", "llama2-7b", "{dir}/batched.toml"],
        ["compare", "--recipe", "minicpm-wsd", "{dir}/batched.toml", "--json"],
    ],
    ids=[
        "example",
        "flags",
        "minus-zero",
        "recipes",
        "version",
        "help",
        "json",
        "flags-at",
        "recipe",
        "compare",
        "compare-json",
    ],
)
def test_valid_arguments_exit_0_with_nothing_on_stderr(capsys, hostile, words):
    status, out, err, changed = run_hostile(capsys, hostile, words)
    assert status == 0 and err == "" and out and not changed


def test_outputs_are_written_whole_under_their_names_and_nothing_else(capsys, tmp_path):
    (tmp_path / "good.toml").write_text(GOOD_TOML)
    status, out, err = run(
        capsys, "preview", str(tmp_path / "good.toml"), "--csv", str(tmp_path / "s.csv")
    )
    assert status == 0 and err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.toml", "s.csv"]
    assert (tmp_path / "s.csv").read_text().startswith("step,samples,tokens,lr,wd\n")


def test_an_output_through_a_link_or_into_a_device_is_written_there(capsys, tmp_path):
    (tmp_path / "good.toml").write_text(GOOD_TOML)
    (tmp_path / "target.csv").write_text("")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    status, _, err = run(
        capsys, "preview", str(tmp_path / "good.toml"), "--csv", str(tmp_path / "link.csv")
    )
    assert status == 0 and err == "" and (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "target.csv").read_text().startswith("step,samples")
    status, _, err = run(capsys, "preview", str(tmp_path / "good.toml"), "--csv", os.devnull)
    assert status == 0 and err == "" and not os.path.isfile(os.devnull)  # still the device


def test_an_output_that_may_not_be_written_is_refused_first(capsys, hostile, monkeypatch):
    import paramsched.cli

    target = str(hostile.root / "read-only.csv")
    real_access = os.access
    monkeypatch.setattr(
        paramsched.cli.os,
        "access",
        lambda path, mode: (
            False if str(path) in (target, str(hostile.root)) else real_access(path, mode)
        ),
    )
    status, out, err, changed = run_hostile(
        capsys, hostile, ["preview", "{dir}/good.toml", "--csv", target]
    )
    assert status == 2 and out == "" and not changed
    assert err.strip() == (
        f"paramsched preview: error: --csv={target!r} cannot be written: "
        "Permission denied; expected a file you may write"
    )


def test_a_write_that_fails_midway_names_the_flag_and_leaves_nothing(capsys, hostile, monkeypatch):
    from paramsched import preview

    def fail(schedule, path):
        open(path, "w").write("step,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(preview, "write_csv", fail)
    status, out, err, changed = run_hostile(
        capsys, hostile, ["preview", "{dir}/good.toml", "--csv", "{dir}/s.csv"]
    )
    assert status == 2 and out == "" and not changed
    assert err.strip().endswith("/s.csv' cannot be written: No space left on device")


def test_a_plot_matplotlib_fails_to_write_is_one_line_and_leaves_nothing(
    capsys, hostile, monkeypatch
):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def fail(figure, path, **kwargs):
        open(path, "w").write("%!PS")
        raise RuntimeError("Failed to process string with tex because latex could not be found")

    monkeypatch.setattr(Figure, "savefig", fail)
    for words in (
        ["preview", "{dir}/batched.toml"],
        ["compare", "{dir}/batched.toml", "--recipe", "llama2-7b"],
    ):
        status, out, err, changed = run_hostile(
            capsys, hostile, [*words, "--out", "{dir}/plot.eps"]
        )
        assert status == 2 and out == "" and not changed
        assert err.strip().endswith(
            "/plot.eps': matplotlib could not write it: Failed to process "
            "string with tex because latex could not be found"
        )


def test_what_a_killed_writer_left_is_removed_when_the_output_is_written_next(capsys, tmp_path):
    (tmp_path / "good.toml").write_text(GOOD_TOML)
    gone = 2**31 - 1  # no process has this number (Linux's largest is 2**22)
    alive = os.getppid()
    left = [
        f".s.csv.paramsched-{gone}.csv",
        f".s.csv.paramsched-{alive}.csv",
        f".other.csv.paramsched-{gone}.csv",
        f".s.csv.paramsched-{gone}.png",
        "s.csv.txt",
    ]
    for name in left:
        (tmp_path / name).write_text("step,")
    status, _, err = run(
        capsys, "preview", str(tmp_path / "good.toml"), "--csv", str(tmp_path / "s.csv")
    )
    assert status == 0 and err == ""
    # Only the temporary file of this output whose writer is gone is removed.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["good.toml", "s.csv", *left[1:]])


def test_a_long_run_is_previewed_on_a_grid_not_step_by_step(capsys):
    status, out, err = run(
        capsys, "preview", "--lr", "1e-3", "--train-iters", str(10**15), "--global-batch-size", "4"
    )
    assert status == 0 and err == ""
    assert "total: 1000T steps, 4000T samples" in out and "area under the lr curve -" in out


HOSTILE_WORDS = [
    "table",
    "preview",
    "compare",
    "recipes",
    "--lr",
    "--min-lr",
    "--train-iters",
    "--train-samples",
    "--global-batch-size",
    "--seq-length",
    "--lr-warmup-fraction",
    "--rampup-batch-size",
    "--lr-decay-style",
    "--points",
    "--at",
    "--json",
    "--x",
    "--recipe",
    "--csv",
    "--out",
    "--",
    "-h",
    "llama2-7b",
    "WSD",
    "cosine",
    "0",
    "1",
    "4",
    "10",
    "-1",
    "-3e-4",
    "1e-3",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "1e18",
    "1" + "0" * 40,
    "0x10",
    "",
    " ",
    "abc",
    "10steps",
    "10 steps",
    "5%",
    "20Btokens",
    "1e100000000 samples",
    "\u0661",
    "{dir}/missing/x.csv",
    "{dir}/a-directory",
    "{dir}/a-file/y.png",
    "{dir}/empty.toml",
    "{dir}/binary.toml",
    "{dir}/near-miss.toml",
    "minicpm-wsd",
    # a launch line's other flags, misspellings and hostile files
    "--clip-grad",
    "--bf16",
    "--clip-grad=1",
    "--decoupled-lr",
    "--eval-iters",
    "--lr-warmup-steps",
    "--train-iter",
    "--warmup",
    "--step-batch-size-schedule",
    "0:4 100:8",
    "2000 iters",
    "x.toml",
    "{dir}/deep.toml",
    "{dir}/self.toml",
    "{dir}/round.toml",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(HOSTILE_WORDS), max_size=10))
def test_random_arguments_never_escape(capsys, hostile, words):
    status, out, err = run(capsys, *hostile(*words))
    assert status in (0, 2) and "Traceback" not in err
    if status == 0:  # notes only (what a launch line holds besides the schedule, ...)
        assert all(re.match(r"paramsched \w+: note: ", line) for line in err.splitlines())
    else:
        assert len(err.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "words,message",
    [
        (["preview", "{dir}/missing.toml"], "missing.toml: no such file"),
        (["preview", "--recipe", "llama2-7b", "--at", "10steps"], "(did you mean '10 steps'?)"),
        (["table", "--lr", "-3e-4", *BASE[2:]], "--lr=-0.0003 is negative"),
        (["preview", "{dir}/good.toml", "--csv", "{dir}/a-file/x.csv"], "Not a directory"),
    ],
    ids=["missing-file", "near-miss", "negative", "output-under-a-file"],
)
def test_hostile_arguments_in_a_real_process(hostile, words, message):
    result = subprocess.run(
        [sys.executable, "-m", "paramsched", *hostile(*words)], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


@pytest.mark.slow
def test_a_reader_that_goes_away_gets_no_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "paramsched", "table", "--points", "10000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("example run:")
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read()
    assert process.wait() == 2 and "Traceback" not in err and "Exception ignored" not in err
    assert err == ("paramsched table: error: the output was closed before it was all written\n")


@pytest.mark.parametrize(
    "extra",
    [[], ["--x", "samples", "--out", "grid.png"], ["--csv", "grid.csv"]],
    ids=["table", "plot", "csv"],
)
def test_a_preview_of_more_steps_than_it_can_hold_goes_on_a_grid(
    capsys, tmp_path, monkeypatch, extra
):
    # 1e18 steps of one sample (a step schedule of batch size 1): the table gives the
    # totals without the area (a sum over every step), the plot and the CSV go on a grid
    # of samples (the CSV's step column empty); no traceback, no array of every step.
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    status, out, err = run(
        capsys,
        "preview",
        "--lr",
        "1e-3",
        "--train-samples",
        str(10**18),
        "--step-batch-size-schedule",
        "0:1",
        *extra,
    )
    assert status == 0 and err == ""
    assert "area under the lr curve - " in out
    if "--csv" in extra:
        rows = (tmp_path / "grid.csv").read_text().splitlines()
        assert len(rows) == 100_002 and rows[1].startswith(",0,")


# ------------------------------------------------------------ compare

COOLDOWN_TOML = """\
[branch]
from = "minicpm-wsd"
at = "40000 steps"

[lr]
phases = [{ shape = "minus_sqrt", to = "min_lr", until = "50000 steps" }]
"""

COMPARISON = """\
schedule            steps    samples  tokens   peak lr  final lr  lr area  departs at step
------------------  -------  -------  -------  -------  --------  -------  ---------------
recipe minicpm-wsd  100,000  102.4M   419.43B  0.01     0.001     944.842  -
cooldown.toml       100,000  102.4M   419.43B  0.01     0.001     485      40,001
recipe minicpm-wsd  100,000  102.4M   419.43B  0.01     0.001     944.842  never

departs at step: the first step n whose lr (after n optimizer steps) differs from recipe
minicpm-wsd's, over the steps both runs have; lr area: the sum over optimizer steps of the rate each
used
"""


@pytest.fixture
def cooldown(tmp_path, monkeypatch):
    """cooldown.toml, a branch of the minicpm-wsd recipe, in the current directory; and
    the recipe's schedule and the branch made from it with `schedule.branch`."""
    import numpy as np

    from paramsched import load_schedule
    from paramsched.recipe import recipe_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cooldown.toml").write_text(COOLDOWN_TOML)
    wsd = load_schedule(recipe_path("minicpm-wsd"))
    branch = wsd.branch(
        "40000 steps", [{"shape": "minus_sqrt", "to": "min_lr", "until": "50000 steps"}]
    )
    assert load_schedule("cooldown.toml") == branch
    # Where the branch departs, from the two schedules' rates at every step, compared one
    # by one: the first step after the branch point.
    samples = wsd.run.samples_at_step(np.arange(100_001))
    pairs = zip(wsd.lr(samples).tolist(), branch.lr(samples).tolist())
    departs = next(n for n, (a, b) in enumerate(pairs) if a != b)
    assert departs == wsd.run.step_at_samples(branch.branch_point) + 1 == 40_001
    return wsd, branch, departs


def test_compare_a_wsd_recipe_with_a_branch_of_it(capsys, cooldown):
    status, out, err = run(
        capsys, "compare", "--recipe", "minicpm-wsd", "cooldown.toml", "--recipe", "minicpm-wsd"
    )
    assert status == 0 and err == ""
    assert out == COMPARISON
    _, branch, departs = cooldown
    assert f"  {departs:,}\n" in out
    from paramsched import preview

    assert f"  {preview.totals(branch)['lr_area']:.6g}  " in out


def test_compare_keeps_the_order_of_the_command_line(capsys, cooldown):
    status, out, _ = run(
        capsys,
        "compare",
        "cooldown.toml",
        "--recipe",
        "minicpm-wsd",
        "cooldown.toml",
        "--recipe",
        "llama2-7b",
    )
    assert status == 0
    names = [line.split("  ")[0] for line in out.splitlines()[2:6]]
    assert names == ["cooldown.toml", "recipe minicpm-wsd", "cooldown.toml", "recipe llama2-7b"]
    assert [line.split()[-1] for line in out.splitlines()[2:6]] == ["-", "40,001", "never", "1"]


@pytest.mark.parametrize(
    "words,schedules",
    [
        (
            ["a.toml", "--recipe", "r", "b.toml", "--recipe=s", "c.toml"],
            [
                ("file", "a.toml"),
                ("recipe", "r"),
                ("file", "b.toml"),
                ("recipe", "s"),
                ("file", "c.toml"),
            ],
        ),
        (
            ["--json", "--recipe", "r", "--x", "tokens", "a.toml", "--", "--recipe", "-b.toml"],
            [("recipe", "r"), ("file", "a.toml"), ("file", "--recipe"), ("file", "-b.toml")],
        ),
        (["a=b.toml", "--out", "c.png", "d.toml"], [("file", "a=b.toml"), ("file", "d.toml")]),
    ],
    ids=["interleaved", "after-dashes", "equals-sign"],
)
def test_compare_takes_files_and_recipes_in_the_order_given(words, schedules):
    assert _build_parser().parse_args(["compare", *words]).schedules == schedules


def test_compare_json_rows(capsys, cooldown):
    import numpy as np

    wsd, branch, departs = cooldown
    status, out, err = run(
        capsys,
        "compare",
        "--recipe",
        "minicpm-wsd",
        "cooldown.toml",
        "--recipe",
        "minicpm-wsd",
        "--json",
    )
    assert status == 0 and err == ""
    assert "Infinity" not in out and "NaN" not in out
    rows = json.loads(out)
    keys = ["name", "total_steps", "peak_lr", "final_lr", "area", "diverges_at_step"]
    assert [list(row) for row in rows] == [keys] * 3
    for row in rows:
        assert isinstance(row["name"], str) and type(row["total_steps"]) is int
        assert all(type(row[key]) is float for key in ("peak_lr", "final_lr", "area"))
    assert [row["diverges_at_step"] for row in rows] == [None, departs, None]
    assert [row["name"] for row in rows] == [
        "recipe minicpm-wsd",
        "cooldown.toml",
        "recipe minicpm-wsd",
    ]
    assert rows[1]["final_lr"] == branch.lr(branch.run.total_samples)
    assert rows[1]["total_steps"] == 100_000
    assert rows[0]["peak_lr"] == float(wsd.lr(wsd.run.samples_at_step(np.arange(100_001))).max())


def test_compare_draws_a_plot(capsys, cooldown, tmp_path):
    pytest.importorskip("matplotlib")
    for x in ("steps", "tokens"):
        status, out, err = run(
            capsys,
            "compare",
            "--recipe",
            "minicpm-wsd",
            "cooldown.toml",
            "--out",
            f"c-{x}.png",
            "--x",
            x,
        )
        assert status == 0 and err == ""
        assert out.endswith(f"\nwrote the plot to c-{x}.png\n")
        assert (tmp_path / f"c-{x}.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c-steps.png",
        "c-tokens.png",
        "cooldown.toml",
    ]


def test_a_compare_plot_that_fails_midway_leaves_nothing(capsys, cooldown, tmp_path, monkeypatch):
    from paramsched import preview

    def fail(named, path, x_unit, title):
        open(path, "w").write("half a plot")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(preview, "plot_compare", fail)
    status, out, err = run(
        capsys, "compare", "--recipe", "minicpm-wsd", "cooldown.toml", "--out", "c.png"
    )
    assert status == 2 and out == ""
    assert err == (
        "paramsched compare: error: --out='c.png' cannot be written: No space left on device\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["cooldown.toml"]


# ------------------------------------------------- scheduled values, rules, token clocks


@pytest.fixture
def schedule_files(tmp_path):
    """The shared schedules with values (conftest), written as files, by name."""
    files = {}
    for name, text in (("values", VALUES_TOML), ("rule", RULE_TOML), ("tokens", TOKEN_CLOCK_TOML)):
        files[name] = tmp_path / f"{name}.toml"
        files[name].write_text(text)
    return files


def test_preview_of_values_writes_a_column_and_a_panel_for_each(capsys, schedule_files, tmp_path):
    pytest.importorskip("matplotlib")
    png, table = tmp_path / "v.png", tmp_path / "v.csv"
    status, out, err = run(
        capsys,
        "preview",
        str(schedule_files["values"]),
        "--at",
        "50%",
        "--csv",
        str(table),
        "--out",
        str(png),
    )
    assert status == 0 and err == ""
    assert "betas[1] (group)  0      linear" in out and "grad_clip (loop)  0      cosine" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("at "))
    assert header.split() == [
        "at",
        "step",
        "samples",
        "tokens",
        "lr",
        "wd",
        "betas[1]",
        "grad_clip",
    ]
    assert table.read_text().splitlines()[0] == "step,samples,tokens,lr,wd,betas[1],grad_clip"
    assert png.read_bytes()[:4] == b"\x89PNG"
    status, out, _ = run(capsys, "preview", str(schedule_files["values"]), "--json")
    schedule = schedule_from_toml(VALUES_TOML)
    points = json.loads(out)
    assert [p["betas[1]"] for p in points] == [
        schedule.value("betas[1]", p["samples"]) for p in points
    ]


def test_preview_says_the_rule(capsys, schedule_files):
    status, out, _ = run(capsys, "preview", str(schedule_files["rule"]), "--at", "100%")
    assert status == 0
    assert (
        "lr follows the batch size: sqrt rule, reference 256 (lr = base lr * "
        "sqrt(batch size / 256))"
    ) in out.splitlines()
    header, row = out.splitlines()[-2:]
    assert header.split()[-5:] == ["base", "lr", "batch", "size", "grad_clip"]
    schedule = schedule_from_toml(RULE_TOML)
    end = schedule.run.position("100%")  # 300,000 samples, landed on a whole step
    assert end == schedule.run.samples_at_step(schedule.run.step_at_samples(300_000)) > 300_000
    assert row.split()[-3:] == [
        f"{schedule.base_lr(end):.6e}",
        "1,024",
        f"{schedule.value('grad_clip', end):.6e}",
    ]


def test_preview_of_a_token_clock_counts_tokens(capsys, schedule_files, tmp_path):
    pytest.importorskip("matplotlib")
    png, table = tmp_path / "t.png", tmp_path / "t.csv"
    status, out, err = run(
        capsys,
        "preview",
        str(schedule_files["tokens"]),
        "--at",
        "50%",
        "--out",
        str(png),
        "--csv",
        str(table),
    )
    assert status == 0 and err == ""  # the plot's x axis is tokens unless told
    assert "total: 10M tokens (the clock counts tokens)" in out
    assert table.read_text().splitlines()[0] == "tokens,lr,wd,momentum"
    status, out, _ = run(capsys, "preview", str(schedule_files["tokens"]), "--json")
    assert [(p["step"], p["samples"], p["tokens"]) for p in json.loads(out)] == [
        (None, None, 100_000),
        (None, None, 10**7),
    ]


@pytest.mark.parametrize(
    "words,message",
    [
        (
            ["--out", "t.png", "--x", "steps"],
            "--x steps: the run's clock counts tokens, which fix no steps; expected --x tokens",
        ),
        (["--out", "t.png", "--x", "samples"], "--x samples: the run's clock counts tokens"),
        (["--at", "3 steps"], "--at='3 steps' is in steps, on a run whose clock counts tokens"),
        (["--at", "3 samples"], "--at='3 samples' is in samples, on a run whose clock counts "),
    ],
    ids=["x-steps", "x-samples", "at-steps", "at-samples"],
)
def test_a_token_clock_refuses_steps_and_samples_in_one_line(
    capsys, schedule_files, tmp_path, words, message
):
    pytest.importorskip("matplotlib")
    words = [str(tmp_path / w) if w.endswith(".png") else w for w in words]
    status, out, err = run(capsys, "preview", str(schedule_files["tokens"]), *words)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert message in err and list(tmp_path.glob("*.png")) == []


def test_table_of_a_file_has_a_column_for_each_value(capsys, schedule_files):
    status, out, err = run(capsys, "table", str(schedule_files["values"]), "--points", "2")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert (
        lines[0] == f"{schedule_files['values']}: values the scheduler holds after each listed step"
    )
    assert lines[1].split() == [
        "step",
        "samples",
        "tokens",
        "lr",
        "weight_decay",
        "betas[1]",
        "grad_clip",
        "event",
    ]
    schedule = schedule_from_toml(VALUES_TOML)
    for line in lines[2:]:
        cells = line.split()
        samples = int(cells[1])
        assert samples == int(cells[0]) * 8
        assert cells[3] == f"{schedule.lr(samples):.6e}"
        assert cells[5] == f"{schedule.value('betas[1]', samples):.6e}"
        assert cells[6] == f"{schedule.value('grad_clip', samples):.6e}"
    assert lines[-1].endswith("end")


def test_table_of_a_token_clock_and_of_a_rule(capsys, schedule_files):
    status, out, _ = run(capsys, "table", str(schedule_files["tokens"]), "--points", "1")
    assert status == 0
    lines = out.splitlines()
    assert lines[1].split() == ["tokens", "lr", "momentum", "event"]
    assert [line.split()[0] for line in lines[2:]] == ["0", "100000", "1000000", "10000000"]
    status, out, _ = run(capsys, "table", str(schedule_files["rule"]), "--points", "0")
    assert status == 0
    assert out.splitlines()[1] == (
        "lr follows the batch size: sqrt rule, reference 256 "
        "(lr = base lr * sqrt(batch size / 256))"
    )
    assert out.splitlines()[2].split()[:7] == [
        "step",
        "samples",
        "lr",
        "base",
        "lr",
        "batch",
        "size",
    ]


@pytest.mark.parametrize(
    "words", [["--lr", "1e-3"], ["--recipe", "llama2-7b"]], ids=["flags", "recipe"]
)
def test_table_takes_one_schedule(capsys, schedule_files, words):
    status, out, err = run(capsys, "table", str(schedule_files["values"]), *words)
    assert status == 2 and out == ""
    assert err.strip() == (
        "paramsched table: error: expected one schedule: a FILE, --recipe "
        "NAME, or Megatron's flags (--lr ... --train-iters ...)"
    )


def test_compare_with_values_and_a_rule_draws_them_and_refuses_a_token_clock(
    capsys, schedule_files, tmp_path
):
    pytest.importorskip("matplotlib")
    png = tmp_path / "c.png"
    status, out, err = run(
        capsys,
        "compare",
        str(schedule_files["values"]),
        str(schedule_files["rule"]),
        "--out",
        str(png),
    )
    assert status == 0 and err == "" and png.read_bytes()[:4] == b"\x89PNG"
    status, out, err = run(
        capsys, "compare", str(schedule_files["values"]), str(schedule_files["tokens"])
    )
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"{schedule_files['tokens']}'s clock counts tokens, which fix no steps" in err


@pytest.mark.parametrize("anneal", ["0", "200", "100"], ids=["none", "longer", "whole"])
def test_every_wsd_anneal_megatron_runs_is_tabled(capsys, anneal):
    status, out, err = run(
        capsys,
        "table",
        "--lr",
        "1e-3",
        "--lr-decay-style",
        "WSD",
        "--lr-wsd-decay-iters",
        anneal,
        "--train-iters",
        "100",
        "--global-batch-size",
        "1",
        "--points",
        "3",
    )
    assert status == 0 and "training ends" in out
    assert err.count("\n") == {"100": 0, "200": 1, "0": 2}[anneal]
    if anneal == "0":  # no anneal: the rate is still the peak when training ends
        assert "before the decay reaches its floor (0 at iteration 100 and after)" in err


def test_version_prints_the_packages_version(capsys):
    """``paramsched --version`` prints the version the package and its metadata carry."""
    import pathlib

    import tomllib

    import paramsched

    status, out, err = run(capsys, "--version")
    project = tomllib.loads((pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert (status, out, err) == (0, "paramsched 0.2.0\n", "")
    assert paramsched.__version__ == project["project"]["version"] == "0.2.0"
