"""Tests for paramsched.units: quantities, and the run's clock against Megatron's ramp-up."""

from __future__ import annotations

import logging
import random
import re
import time
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramsched import Quantity, Run, ScheduleError, ScheduleTypeError


def megatron_calculator():
    """megatron-core's ramp-up calculator, the reference (skips where it is not installed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = pytest.importorskip("megatron.core.num_microbatches_calculator")
    return module.RampupBatchsizeNumMicroBatchesCalculator


@pytest.mark.parametrize(
    "text,amount,unit",
    [
        ("2000 steps", 2000, "steps"),
        ("1 step", 1, "steps"),
        ("1.5M samples", 1_500_000, "samples"),
        ("10T tokens", 10**13, "tokens"),
        ("20B tokens", 2 * 10**10, "tokens"),
        ("3G tokens", 3 * 10**9, "tokens"),
        ("2.5K steps", 2500, "steps"),
        ("5%", 5, "%"),
        ("12.5 %", Fraction(25, 2), "%"),
        ("1e3 samples", 1000, "samples"),
        ("0.1T tokens", 10**11, "tokens"),
        ("4_096 samples", 4096, "samples"),
    ],
    ids=lambda v: str(v),
)
def test_quantities_parse_exactly(text, amount, unit):
    quantity = Quantity.parse(text)
    assert (quantity.amount, quantity.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["2000", "5 apples", "5K%", "", "steps", "-3 steps", "1..5 steps"])
def test_bad_quantities_name_the_field(text):
    with pytest.raises(ScheduleError, match=r"until=.* is not a quantity; expected a number"):
        Quantity.parse(text, "until")


@pytest.mark.parametrize(
    "text,meant",
    [
        ("10steps", "(did you mean '10 steps'?)"),
        ("10tokens", "(did you mean '10 tokens'?)"),
        ("1.5Msamples", "(did you mean '1.5M samples'?)"),
        ("100ttokens", "(did you mean '100T tokens'?)"),
        ("10k steps", "(did you mean '10K steps'?)"),
        ("10 K steps", "(did you mean '10K steps'?)"),
        ("10 stpes", "(did you mean '10 steps'?)"),
        ("5K%", "(a percentage takes no SI suffix)"),
        ("\u0661\u0660 steps", "(only the ASCII digits 0-9 are read)"),
        ("\uff11\uff10 steps", "(only the ASCII digits 0-9 are read)"),
    ],
    ids=[
        "steps",
        "tokens",
        "si-unit",
        "lowercase-si-attached",
        "lowercase-si",
        "spaced-si",
        "typo",
        "si-percent",
        "arabic-indic-digits",
        "fullwidth-digits",
    ],
)
def test_near_misses_of_the_grammar_are_refused_with_what_was_meant(text, meant):
    with pytest.raises(ScheduleError) as info:
        Quantity.parse(text, "until")
    message = str(info.value)
    assert message.startswith(f"until={text!r} is not a quantity; expected a number (digits 0-9)")
    assert message.endswith(meant)


@pytest.mark.parametrize(
    "text",
    [
        "1__0 steps",
        "1_ steps",
        "_1 steps",
        "1_.5 steps",
        "10\u00a0tokens",
        "1e3M%",
        "5 apples",
        "2 epochs",
        "1e steps",
    ],
)
def test_the_grammar_is_strict(text):
    with pytest.raises(ScheduleError, match=r"is not a quantity; expected a number"):
        Quantity.parse(text, "until")


@pytest.mark.parametrize(
    "text,amount,unit",
    [
        ("10 STEPS", 10, "steps"),
        (" 10\ttokens ", 10, "tokens"),
        (".5 samples", Fraction(1, 2), "samples"),
        ("1_000.000_5 samples", Fraction(10000005, 10000), "samples"),
        ("5. %", 5, "%"),
        ("1E3M samples", 10**9, "samples"),
        ("0e999999999999 steps", 0, "steps"),
        ("1e0000000000003 steps", 1000, "steps"),
        ("1e18 tokens", 10**18, "tokens"),
    ],
    ids=lambda v: str(v),
)
def test_the_grammar_accepts(text, amount, unit):
    quantity = Quantity.parse(text)
    assert (quantity.amount, quantity.unit) == (amount, unit)


@pytest.mark.parametrize(
    "text,message",
    [
        ("1e100000000 steps", "is beyond any run; expected at most 1e+18"),
        (
            "9" * 100_000 + " steps",
            "until='" + "9" * 40 + "'... (100,006 characters) is beyond any run",
        ),
        ("1000000000000000001 samples", "is beyond any run"),
        ("1e-100000000 samples", "is below the smallest float, 5e-324; expected 0 or more"),
        ("0." + "0" * 100_000 + "1 samples", "is below the smallest float"),
        ("1." + "0" * 100_000 + "1 samples", "has 100002 significant digits; expected at most 40"),
    ],
    ids=["exponent", "digits", "just-above", "tiny-exponent", "tiny-digits", "precise"],
)
def test_huge_and_tiny_amounts_are_refused_before_they_are_computed(text, message):
    started = time.perf_counter()
    with pytest.raises(ScheduleError, match=re.escape(message)) as info:
        Quantity.parse(text, "until")
    assert time.perf_counter() - started < 0.1
    assert len(str(info.value)) < 200  # a long text is shown by its start and length


@given(st.floats(min_value=0, max_value=1e18))
def test_every_float_written_as_a_quantity_reads_back(value):
    assert float(Quantity.parse(f"{value!r} samples").amount) == value


@pytest.mark.parametrize(
    "amount,unit,error,message",
    [
        (Fraction(-3), "steps", ScheduleError, "amount=Fraction(-3, 1); expected a number from 0"),
        (10**19, "steps", ScheduleError, "expected a number from 0 to 1e+18"),
        (float("nan"), "steps", ScheduleError, "amount=nan"),
        (True, "steps", ScheduleTypeError, "amount=True is of type bool"),
        ("3", "steps", ScheduleTypeError, "amount='3' is of type str"),
        (3, "apples", ScheduleError, "unit='apples' is not one of 'steps'"),
    ],
    ids=["negative", "huge", "nan", "bool", "text", "unit"],
)
def test_a_quantity_built_directly_is_checked(amount, unit, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Quantity(amount, unit)


def test_non_string_quantity_is_a_type_error():
    with pytest.raises(ScheduleTypeError, match="until=12 is of type int"):
        Quantity.parse(12, "until")


def test_quantities_print_back():
    assert [
        str(Quantity.parse(t)) for t in ("1500000 samples", "10T tokens", "5%", "2001 steps")
    ] == ["1.5M samples", "10T tokens", "5%", "2001 steps"]


def test_conversions_without_a_ramp():
    run = Run(global_batch_size=1024, seq_length=4096, total="1T tokens")
    assert run.samples("2000 steps") == 2_048_000
    assert run.samples("4096 tokens") == 1
    assert run.samples("1 tokens") == 1 / 4096
    assert run.samples("50%") == run.total_samples / 2
    assert run.total_samples == 244_140_625
    assert run.samples_at_step(3) == 3072
    assert run.step_at_samples(3072) == 3 and run.step_at_samples(3073) == 4
    assert run.tokens(2) == 8192


@pytest.mark.parametrize(
    "values,message",
    [
        (dict(seq_length=0), "seq_length=0; expected a whole number > 0"),
        (dict(global_batch_size=2.5), "global_batch_size=2.5; expected a whole number > 0"),
        (dict(total="5%"), "total='5%' is a percentage"),
        (
            dict(global_batch_size=1024, rampup_batch_size=[256, 100, 1000]),
            "minus the start 256 is 768; expected a multiple >= 0 of the increment 100",
        ),
        (
            dict(global_batch_size=100, rampup_batch_size=[256, 128, 1000]),
            "minus the start 256 is -156",
        ),
        (dict(rampup_batch_size=[256, 128, 1000]), "without global_batch_size"),
        (dict(global_batch_size=1024, rampup_batch_size=[256, 128]), "expected [start, increment,"),
        (
            dict(global_batch_size=1024, rampup_batch_size=[256, 128, "20B tokens"]),
            "rampup_batch_size[2]='20B tokens' is in tokens; expected seq_length",
        ),
        (
            dict(global_batch_size=1024, rampup_batch_size=[256, 128, "100 steps"]),
            "expected the ramp's length in samples or tokens",
        ),
        (
            dict(global_batch_size=1024, rampup_batch_size=[0, 128, 100]),
            "rampup_batch_size[0]=0; expected a whole number > 0",
        ),
    ],
    ids=[
        "seq",
        "batch",
        "total-percent",
        "not-dividing",
        "start-above",
        "no-batch",
        "two-values",
        "tokens-no-seq",
        "steps",
        "zero-start",
    ],
)
def test_bad_runs_are_refused(values, message):
    with pytest.raises(ScheduleError) as info:
        Run(**values)
    assert message in str(info.value)


def test_missing_pieces_are_named():
    run = Run(global_batch_size=8)
    with pytest.raises(ScheduleError, match="is in tokens; expected seq_length"):
        run.samples("10 tokens", "until")
    with pytest.raises(ScheduleError, match="is a percentage; expected total"):
        run.samples("10%", "until")
    with pytest.raises(ScheduleError, match="is in steps; expected global_batch_size"):
        Run().samples("10 steps", "until")


def megatron_clock(start, increment, ramp, global_batch_size, steps):
    """Consumed samples and batch sizes as Megatron's training loop advances them."""
    logging.disable(logging.CRITICAL)
    try:
        calculator = megatron_calculator()(
            global_batch_size, 1, 1, False, 0, start, increment, ramp
        )
        consumed, clock, batches = 0, [0], []
        for _ in range(steps):
            calculator.update(consumed, consistency_check=False)
            batch = calculator.get_current_global_batch_size()
            batches.append(batch)
            consumed += batch
            clock.append(consumed)
    finally:
        logging.disable(logging.NOTSET)
    return clock, batches


@pytest.mark.parametrize("seed", range(30))
def test_ramp_matches_megatrons_calculator(seed):
    rng = random.Random(seed)
    start, increment = rng.randint(1, 64), rng.randint(1, 64)
    global_batch_size = start + increment * rng.randint(1, 12)
    ramp = rng.choice([rng.randint(0, 5000), rng.randint(0, 5000) + 0.5, 10_000])
    run = Run(global_batch_size=global_batch_size, rampup_batch_size=[start, increment, ramp])
    steps = 400
    clock, batches = megatron_clock(start, increment, ramp, global_batch_size, steps)
    assert run.samples_at_step(np.arange(steps + 1)).tolist() == clock
    assert [run.batch_size_at(c) for c in clock[:-1]] == batches
    assert [run.samples_at_step(k) for k in range(0, steps + 1, 37)] == clock[::37]
    for k in range(1, steps + 1, 13):  # the inverse: the first step reaching a sample count
        assert run.step_at_samples(clock[k]) == k
        assert run.step_at_samples(clock[k] - 0.5) == k


def test_ramp_in_tokens_and_a_ramp_of_one_level():
    run = Run(global_batch_size=1024, seq_length=4096, rampup_batch_size=[256, 128, "20B tokens"])
    assert run._ramp[2] == 20 * 10**9 / 4096
    flat = Run(global_batch_size=64, rampup_batch_size=[64, 8, 1000])  # nothing to ramp
    assert flat.samples_at_step(10) == 640 and flat.batch_size_at(0) == 64


def test_the_clock_is_exact_up_to_the_edge_of_the_domain():
    run = Run(global_batch_size=15360, rampup_batch_size=[3072, 3072, 10**8])
    steps = 65_104_166_677_111  # the last step within 1e18 samples, far past 2**53
    samples = run.samples_at_step(steps)
    assert isinstance(samples, int) and samples <= 10**18 < samples + 15360
    assert run.step_at_samples(samples) == steps and run.step_at_samples(samples - 1) == steps
    assert run.step_at_samples(samples + 1) == steps + 1
    assert run.samples_at_step(np.array([steps])).tolist() == [samples]
    with pytest.raises(
        ScheduleError,
        match=r"steps=65104166677112 is beyond any run; expected "
        r"at most 65104166677111 steps \(1e\+18 samples\)",
    ):
        run.samples_at_step(steps + 1)
    with pytest.raises(ScheduleError, match="is beyond any run"):
        Quantity.parse("1e400 steps", "at")


@pytest.mark.parametrize("ramp", [None, [16, 16, 2000], [4, 12, "1000 samples"]])
def test_the_array_conversions_equal_the_scalar_ones(ramp):
    run = Run(global_batch_size=64, rampup_batch_size=ramp)
    steps = np.arange(200)
    samples = run.samples_at_step(steps)
    assert samples.tolist() == [run.samples_at_step(int(k)) for k in steps]
    points = np.concatenate([samples, samples[1:] - 1, samples[1:] - 0.5, [samples[-1] * 3]])
    assert run.step_at_samples(points).tolist() == [run.step_at_samples(float(p)) for p in points]
    assert run.step_at_samples(samples).tolist() == steps.tolist()  # the inverse on the grid


HOSTILE_COUNTS = [
    (-1, ScheduleError, "=-1 is negative; expected a"),
    (-5.0, ScheduleError, "=-5.0 is negative"),
    (float("nan"), ScheduleError, "=nan is not finite"),
    (float("inf"), ScheduleError, "=inf is not finite"),
    (10**5000, ScheduleError, "=an integer of 5001 digits is beyond any run"),
    (True, ScheduleTypeError, "=True is of type bool; expected a number"),
    ("3", ScheduleTypeError, "='3' is of type str"),
    (None, ScheduleTypeError, "=None is of type NoneType"),
    (np.array([1, -2]), ScheduleError, "[1]=-2 is negative"),
    (np.array([[1.0, 2.0], [np.nan, 3.0]]), ScheduleError, "[(1, 0)]=nan is not finite"),
    (np.array([0.0, 2e18]), ScheduleError, "[1]=2e+18 is beyond any run"),
    (np.array([True, False]), ScheduleTypeError, "has dtype bool; expected an array of integer"),
    ([1, None], ScheduleTypeError, "has dtype object"),
    (np.array(["1"]), ScheduleTypeError, "has dtype <U1"),
]
HOSTILE_IDS = [
    "negative",
    "negative-float",
    "nan",
    "inf",
    "huge",
    "bool",
    "str",
    "none",
    "array-negative",
    "array-nan",
    "array-huge",
    "array-bool",
    "array-none",
    "array-str",
]


@pytest.mark.parametrize(
    "method,field",
    [
        ("samples_at_step", "steps"),
        ("step_at_samples", "samples"),
        ("tokens", "samples"),
        ("batch_size_at", "samples"),
    ],
)
@pytest.mark.parametrize("value,error,message", HOSTILE_COUNTS, ids=HOSTILE_IDS)
def test_conversions_refuse_what_is_not_a_count_by_name(method, field, value, error, message):
    run = Run(global_batch_size=8, seq_length=4, rampup_batch_size=[4, 4, 100])
    if method == "batch_size_at" and np.ndim(value):  # one position at a time
        error, message = ScheduleTypeError, "samples is an array; expected one number of samples"
    with pytest.raises(error, match=re.escape(message)) as info:
        getattr(run, method)(value)
    assert str(info.value).startswith(field)


@pytest.mark.parametrize(
    "steps,message",
    [
        (2.5, "steps=2.5 is not a whole number; expected a whole number of steps >= 0"),
        (Fraction(7, 2), "steps=3.5 is not a whole number"),
        (np.array([0.0, 1.5, 2.0]), "steps[1]=1.5 is not a whole number; expected whole steps"),
    ],
    ids=["float", "fraction", "array"],
)
def test_steps_are_whole(steps, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        Run(global_batch_size=8).samples_at_step(steps)


def test_whole_counts_of_any_numeric_type_convert():
    run = Run(global_batch_size=8, seq_length=4, rampup_batch_size=[4, 4, 100])
    assert (
        run.samples_at_step(3.0)
        == run.samples_at_step(np.int64(3))
        == run.samples_at_step(np.array(3))
        == 12
    )
    assert run.samples_at_step(np.array([0.0, 3.0])).tolist() == [0, 12]
    assert run.samples_at_step(np.array([], dtype=np.int64)).tolist() == []
    assert run.step_at_samples(Fraction(7, 2)) == 1 and run.tokens(Fraction(7, 2)) == 14
    assert run.step_at_samples(2.5) == 1 and run.tokens(np.array([1.5])).tolist() == [6.0]


def test_tokens_of_a_large_array_do_not_wrap_around():
    run = Run(global_batch_size=10**15, seq_length=4096)
    samples = run.samples_at_step(np.array([0, 999, 1000]))
    assert run.tokens(samples).tolist() == [0.0, 999 * 10**15 * 4096, 4096 * 10**18]
    assert run.tokens(np.array([1, 2])).dtype == np.int64  # where int64 holds them, ints


def test_conversions_need_a_batch_size_and_say_so():
    for method in ("samples_at_step", "step_at_samples", "batch_size_at"):
        with pytest.raises(ScheduleError, match="the run has no global_batch_size"):
            getattr(Run(), method)(5)
    assert Run().tokens(5) is None
    with pytest.raises(ScheduleError, match="samples=-5 is negative"):
        Run().tokens(-5)  # checked even where there is nothing to convert


@pytest.mark.parametrize(
    "text,message",
    [
        ("2.5 steps", "at='2.5 steps'; expected a whole number of steps"),
        (
            "1e18 steps",
            "at='1000000000000000000 steps' is beyond any run; expected at most "
            "125,000,000,000,000,000 steps",
        ),
    ],
    ids=["fractional", "past-the-domain"],
)
def test_quantities_in_steps_convert_only_within_the_domain(text, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        Run(global_batch_size=8).samples(text, "at")


@pytest.mark.parametrize(
    "ramp", [{"a": 1, "b": 2, "c": 3}, "abc", range(3)], ids=["dict", "str", "range"]
)
def test_a_ramp_that_is_not_a_list_is_refused(ramp):
    with pytest.raises(ScheduleError, match="rampup_batch_size=.*; expected \\[start, increment"):
        Run(global_batch_size=4, rampup_batch_size=ramp)


@pytest.mark.parametrize(
    "run,message",
    [
        (
            dict(global_batch_size=10**20, rampup_batch_size=(10**19, 10**19, 10**21)),
            "global_batch_size=100000000000000000000 is beyond any run; expected at most 1e18",
        ),
        (dict(seq_length=10**19), "seq_length=10000000000000000000 is beyond any run"),
        (
            dict(global_batch_size=4, rampup_batch_size=(2, 2, 1e30)),
            "rampup_batch_size\\[2\\]=1e\\+30 is beyond any run",
        ),
    ],
    ids=["batch size", "sequence length", "ramp length"],
)
def test_amounts_beyond_any_run_are_refused(run, message):
    with pytest.raises(ScheduleError, match=message):
        Run(**run).samples_at_step(3)


def step_by_step(run, steps):
    """Consumed samples after each step, the clock advanced one step at a time by Megatron's
    rule (`batch_size_at`): the reference for the stretch-wise clock."""
    consumed, clock = 0, [0]
    for _ in range(steps):
        consumed += run.batch_size_at(consumed)
        clock.append(consumed)
    return clock


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(1, 16),
    increment=st.integers(1, 16),
    count=st.integers(0, 12),
    length=st.one_of(st.integers(1, 5000), st.floats(0.5, 5000.0)),
)
def test_the_clock_by_stretches_equals_the_clock_step_by_step(start, increment, count, length):
    run = Run(
        global_batch_size=start + increment * count, rampup_batch_size=[start, increment, length]
    )
    reference = step_by_step(run, 800)
    assert run.samples_at_step(np.arange(801)).tolist() == reference
    assert [run.samples_at_step(k) for k in (0, 1, 799, 800)] == [
        reference[k] for k in (0, 1, 799, 800)
    ]
    targets = sorted(
        t
        for t in {
            0,
            1,
            length,
            reference[-1],
            *(c - 1 for c in reference[1:50]),
            *(c + 0.5 for c in reference[:50]),
        }
        if t <= reference[-1]
    )
    expected = [next(k for k, c in enumerate(reference) if c >= t) for t in targets]
    assert [run.step_at_samples(t) for t in targets] == expected
    assert run.step_at_samples(np.array(targets, dtype=np.float64)).tolist() == expected


def test_a_long_ramp_costs_its_increments_not_its_length():
    import time

    begin = time.perf_counter()
    run = Run(global_batch_size=8, rampup_batch_size=[1, 1, 10**15])
    assert run.samples_at_step(10**14) > 0 and run.step_at_samples(10**15) > 0
    assert time.perf_counter() - begin < 2


@pytest.mark.parametrize(
    "ramp,message",
    [
        ([8, 8, 0], r"rampup_batch_size\[2\]=0 is a ramp of no length"),
        ([1, 1, 100], r"has 999,999 increments; expected at most 100,000"),
    ],
)
def test_ramps_that_cannot_run_are_refused(ramp, message):
    with pytest.raises(ScheduleError, match=message):
        Run(global_batch_size=10**6 if ramp[0] == 1 else 16, rampup_batch_size=ramp)


# ------------------------------------------------------------ step batch-size schedules


@settings(max_examples=200, deadline=None)
@given(
    stages=st.lists(st.tuples(st.integers(1, 3000), st.integers(1, 64)), max_size=6),
    first=st.integers(1, 64),
)
def test_a_step_schedule_by_stretches_equals_its_clock_step_by_step(stages, first):
    thresholds = sorted({t for t, _ in stages})
    sizes = [size for _, size in stages][: len(thresholds)]
    run = Run(batch_size_schedule=[(0, first), *zip(thresholds, sizes)])
    reference = step_by_step(run, 400)
    assert run.samples_at_step(np.arange(401)).tolist() == reference
    for consumed in {0, *thresholds, *(t - 1 for t in thresholds), reference[-1]}:
        # Megatron's rule: the last stage whose threshold the consumed samples reached.
        expected = [size for threshold, size in run.batch_size_schedule if consumed >= threshold]
        assert run.batch_size_at(consumed) == expected[-1]
    targets = sorted(
        t for t in {0, 1, *thresholds, *(c + 0.5 for c in reference[:40])} if t <= reference[-1]
    )
    assert [run.step_at_samples(t) for t in targets] == [
        next(k for k, c in enumerate(reference) if c >= t) for t in targets
    ]


def test_a_step_schedule_in_tokens_begins_a_stage_where_the_tokens_are_reached():
    run = Run(seq_length=4096, batch_size_schedule=[["0 tokens", 768], ["250B tokens", 1536]])
    # 250B / 4096 = 61,035,156.25 samples: the first whole count whose tokens reach 250B.
    assert run.batch_size_schedule == ((0, 768), (61_035_157, 1536))
    assert run.global_batch_size == 1536 and run.ramps
    assert run.batch_size_at(61_035_156) == 768 and run.batch_size_at(61_035_157) == 1536
    same = Run(seq_length=4096, batch_size_schedule=[[0, 768], [61_035_157, 1536]])
    assert same == run and Run(**run.to_dict()) == run
    assert run.to_dict()["batch_size_schedule"] == [[0, 768], [61_035_157, 1536]]
    assert not Run(batch_size_schedule=[[0, 8], [100, 8]]).ramps
    assert "batch_size_schedule" not in Run(global_batch_size=8).to_dict()  # old runs unchanged


def test_a_stage_passed_over_within_one_step_is_skipped_as_megatron_skips_it():
    run = Run(batch_size_schedule=[[0, 100], [150, 200], [160, 400]])
    assert [run.samples_at_step(k) for k in range(5)] == [0, 100, 200, 600, 1000]


@pytest.mark.parametrize(
    "values,error,message",
    [
        (
            dict(batch_size_schedule=[[10, 8]]),
            ScheduleError,
            r"batch_size_schedule\[0\]\[0\]=10; expected the first stage at 0",
        ),
        (
            dict(batch_size_schedule=[[0, 8], [100, 16], [100, 32]]),
            ScheduleError,
            r"batch_size_schedule\[2\]\[0\]=100 is 100 samples, not after the stage before it",
        ),
        (
            dict(
                seq_length=10, batch_size_schedule=[[0, 8], ["101 tokens", 16], ["110 tokens", 32]]
            ),
            ScheduleError,
            r"\[2\]\[0\]='110 tokens' is 11 samples, not after the stage before it",
        ),
        (
            dict(batch_size_schedule=[[0, 8], ["100 steps", 16]]),
            ScheduleError,
            r"batch_size_schedule\[1\]\[0\]='100 steps'; expected a threshold in samples or tokens",
        ),
        (
            dict(batch_size_schedule=[[0, 8], ["100 tokens", 16]]),
            ScheduleError,
            r"is in tokens; expected seq_length in the run",
        ),
        (
            dict(batch_size_schedule=[[0, 0]]),
            ScheduleError,
            r"batch_size_schedule\[0\]\[1\]=0; expected a whole batch size > 0",
        ),
        (dict(batch_size_schedule=[[0, 8.5]]), ScheduleError, r"expected a whole batch size"),
        (dict(batch_size_schedule=[[0, True]]), ScheduleTypeError, r"bool"),
        (dict(batch_size_schedule=[[-1, 8]]), ScheduleError, r"expected samples >= 0"),
        (dict(batch_size_schedule=[[float("nan"), 8]]), ScheduleError, r"nan"),
        (dict(batch_size_schedule=[[0, 8], [10**19, 16]]), ScheduleError, r"beyond any run"),
        (dict(batch_size_schedule=[]), ScheduleTypeError, r"expected a non-empty list"),
        (dict(batch_size_schedule="0:8 100:16"), ScheduleTypeError, r"expected a non-empty list"),
        (dict(batch_size_schedule=[[0, 8, 1]]), ScheduleTypeError, r"expected a pair"),
        (dict(batch_size_schedule=[[0, 8]] * 10_001), ScheduleError, r"expected at most 10,000"),
        (
            dict(batch_size_schedule=[[0, 8], [100, 16]], global_batch_size=8),
            ScheduleError,
            r"global_batch_size=8 with a batch_size_schedule whose last stage is 16",
        ),
        (
            dict(batch_size_schedule=[[0, 8]], global_batch_size=8, rampup_batch_size=[4, 4, 100]),
            ScheduleError,
            r"rampup_batch_size=\[4, 4, 100\] and batch_size_schedule are both set",
        ),
    ],
    ids=[
        "first-not-zero",
        "not-increasing",
        "collide-in-samples",
        "in-steps",
        "tokens-no-seq",
        "zero-batch",
        "fractional-batch",
        "bool-batch",
        "negative",
        "nan",
        "beyond-any-run",
        "empty",
        "a-string",
        "triple",
        "too-many",
        "contradicting-global",
        "with-a-ramp",
    ],
)
def test_a_step_schedule_that_cannot_run_is_refused(values, error, message):
    with pytest.raises(error, match=message):
        Run(**values)


@pytest.mark.parametrize(
    "run,quantity,message",
    [
        (
            dict(global_batch_size=8, total="2e17 steps"),
            None,
            r"total='200000T steps' is beyond any run; expected at most 125,000,000,000,000,000 steps",
        ),
        (
            dict(global_batch_size=8, total="1e18 samples"),
            "500%",
            r"quantity='500%' is 5e\+18 "
            "samples, beyond any run",
        ),
        (
            dict(batch_size_schedule=[[0, 10**18]], total="2 steps"),
            None,
            r"total='2 steps' is beyond any run; expected at most 1 steps",
        ),
    ],
    ids=["steps-of-a-batch", "percentage", "stages"],
)
def test_a_quantity_that_converts_beyond_any_run_is_refused(run, quantity, message):
    with pytest.raises(ScheduleError, match=message):
        Run(**run).samples(quantity) if quantity else Run(**run)
    assert Run(global_batch_size=8, total="1e17 steps").total_samples == 8 * 10**17  # within


# ------------------------------------------------------------------ token clock


@pytest.mark.parametrize(
    "values,message",
    [
        (
            dict(clock="tokens", seq_length=4096),
            "seq_length=4096 with clock='tokens'; expected no seq_length",
        ),
        (
            dict(clock="tokens", global_batch_size=8, rampup_batch_size=[2, 2, 100]),
            "rampup_batch_size=[2, 2, 100] with clock='tokens'",
        ),
        (
            dict(clock="tokens", total="100 samples"),
            "total='100 samples' with clock='tokens'; expected the run's length in tokens",
        ),
        (dict(clock="steps"), "clock='steps' is not one of 'samples', 'tokens'"),
    ],
)
def test_a_token_clock_refuses_what_fixes_tokens_per_sample(values, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        Run(**values)


def test_a_token_clock_counts_tokens_and_refuses_samples_and_steps():
    run = Run(
        clock="tokens",
        batch_size_schedule=[[0, 4], ["1K tokens", 8], [5000, 16]],
        total="10K tokens",
    )
    assert run.counts_tokens and run.unit == "tokens"
    assert run.samples("25%") == 2500 and run.samples("300 tokens") == 300
    assert [run.batch_size_at(n) for n in (0, 999, 1000, 4999, 5000)] == [4, 4, 8, 8, 16]
    assert run.batch_sizes_at(np.array([0.0, 999.0, 1000.0, 5000.0])).tolist() == [4, 4, 8, 16]
    for quantity in ("10 samples", "3 steps"):
        with pytest.raises(
            ScheduleError,
            match=re.escape(
                f"={quantity!r} is in {quantity.split()[1]}, on a run whose clock counts tokens"
            ),
        ):
            run.samples(quantity, "until")
    with pytest.raises(ScheduleError, match="the run's clock counts tokens, which steps do not"):
        run.samples_at_step(3)
    assert run.to_dict()["clock"] == "tokens" and "clock" not in Run().to_dict()


@pytest.mark.parametrize(
    "value,error,message",
    [
        (5, None, None),
        (np.int64(5), None, None),
        (10**18, None, None),
        (5.0, ScheduleTypeError, "tokens=5.0 is of type float"),
        (True, ScheduleTypeError, "tokens=True is of type bool"),
        (-1, ScheduleError, "tokens=-1; expected a whole number of tokens from 0 to 1e+18"),
        (10**18 + 1, ScheduleError, "expected a whole number of tokens from 0"),
    ],
    ids=repr,
)
def test_check_tokens_takes_whole_counts_only(value, error, message):
    from paramsched.units import check_tokens

    if error is None:
        assert check_tokens("tokens", value) == value and type(check_tokens("tokens", value)) is int
    else:
        with pytest.raises(error, match=re.escape(message)):
            check_tokens("tokens", value)


# ------------------------------------------------------------------ a run's length
LENGTH_SCHEDULES = {
    "ramp-up in tokens": {
        "run": {
            "seq_length": 4096,
            "global_batch_size": 1024,
            "rampup_batch_size": [256, 128, "20B tokens"],
            "total": "1T tokens",
        },
        "lr": {"max_lr": 3e-4, "phases": [{"shape": "cosine", "to": "min_lr", "until": "100%"}]},
    },
    "stages, total off a step": {
        "run": {
            "seq_length": 16,
            "batch_size_schedule": [["0 tokens", 8], ["32K tokens", 16], ["96K tokens", 32]],
            "total": "256K tokens",
        },
        "lr": {"max_lr": 2e-3, "phases": [{"shape": "linear", "to": "max_lr", "until": "10%"}]},
    },
    "small ramp-up": {
        "run": {
            "seq_length": 8,
            "global_batch_size": 64,
            "rampup_batch_size": [16, 16, "3000 samples"],
            "total": "10000.5 samples",
        },
        "lr": {"max_lr": 3e-4, "phases": [{"shape": "cosine", "to": "min_lr", "until": "100%"}]},
    },
    "no total": {
        "run": {"global_batch_size": 16},
        "lr": {
            "max_lr": 1e-3,
            "phases": [{"shape": "cosine", "to": "min_lr", "until": "7000 samples"}],
        },
    },
    "no batch size": {
        "run": {"total": "5000 samples", "seq_length": 8},
        "lr": {"max_lr": 1e-3, "phases": [{"shape": "cosine", "to": "min_lr", "until": "100%"}]},
    },
    "token clock": {
        "run": {"clock": "tokens", "total": "40K tokens"},
        "lr": {"max_lr": 1e-3, "phases": [{"shape": "cosine", "to": "min_lr", "until": "100%"}]},
    },
}


def length_schedules():
    import paramsched

    found = {
        name: paramsched.PhaseSchedule.from_dict(data) for name, data in LENGTH_SCHEDULES.items()
    }
    found.update(
        {f"recipe {r.name}": paramsched.load_schedule(r.path) for r in paramsched.recipes()}
    )
    found["hf"] = paramsched.from_hf("cosine", lr=1e-3, num_warmup_steps=10, num_training_steps=100)
    found["timm"] = paramsched.from_timm(0.1, "step", num_epochs=10, decay_epochs=3)
    found["branch"] = found["recipe minicpm-wsd"].branch(
        "50000 steps",
        [{"shape": "minus_sqrt", "to": "min_lr", "until": "100%"}],
        total="80000 steps",
    )
    return found


@pytest.mark.parametrize("name", list(length_schedules()))
def test_a_schedules_length_is_the_previews_total(name):
    """`schedule.length` is the steps, samples and tokens `paramsched preview` totals."""
    from paramsched.preview import points

    schedule = length_schedules()[name]
    totals = points.totals(schedule)
    assert tuple(schedule.length) == (totals["steps"], totals["samples"], totals["tokens"])


def test_a_schedule_without_a_run_has_a_length_in_steps_only():
    import paramsched

    schedule = paramsched.Schedule(max_lr=1e-3, lr_decay_steps=5000, lr_decay_style="cosine")
    assert schedule.length == (5000, None, None)
    longer = schedule.branch(
        "4000 steps", [{"shape": "constant", "until": "100%"}], total="9000 steps"
    )
    assert longer.length == paramsched.Length(steps=9000, samples=None, tokens=None)
    assert longer.length.steps == 9000


@pytest.mark.parametrize("name", ["small ramp-up", "stages, total off a step", "hf"])
def test_megatrons_loop_ends_at_the_length(name):
    """Megatron's loop, each step consuming the run's batch size of the moment until the
    run's total is reached, takes `length.steps` steps and consumes `length.samples`."""
    schedule = length_schedules()[name]
    run, total = schedule.run, schedule.run.total_samples
    steps = consumed = 0
    while consumed < total:
        consumed += run.batch_size_at(consumed)
        steps += 1
    assert schedule.length == (steps, consumed, run.tokens(consumed))
