"""Tests for paramsched.recipe: schedule files and the shipped recipes."""

from __future__ import annotations

import argparse
import re

import pytest
from conftest import VALUES_TOML

from paramsched import (
    PhaseSchedule,
    Schedule,
    ScheduleError,
    ScheduleTypeError,
    from_megatron_args,
    load_schedule,
)
from paramsched.formats.megatron import MEGATRON_FLAGS
from paramsched.recipe import recipe_path, recipes

ISSUE_EXAMPLE = """
[run]
seq_length = 4096
global_batch_size = 1024
rampup_batch_size = [256, 128, "20B tokens"]
total = "1T tokens"

[lr]
init_lr = 0.0
max_lr = 3e-4
min_lr = 3e-5
phases = [
  { shape = "linear", to = "max_lr", until = "2000 steps" },
  { shape = "constant", until = "80%" },
  { shape = "minus_sqrt", to = "min_lr", until = "100%" },
]

[wd]
start_wd = 0.1
end_wd = 0.1
style = "constant"
"""


def write(tmp_path, text, name="schedule.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path):
    schedule = load_schedule(write(tmp_path, ISSUE_EXAMPLE))
    assert isinstance(schedule, PhaseSchedule)
    run = schedule.run
    warmup_end = run.samples_at_step(2000)
    assert warmup_end == 2000 * 256  # the ramp is still at its start
    # "80%" and "100%" land on the end of the first step whose samples reach them.
    landed = []
    for samples in (0.8 * 10**12 / 4096, 10**12 / 4096):
        step = run.step_at_samples(samples)
        assert run.samples_at_step(step - 1) < samples <= run.samples_at_step(step)
        landed.append(run.samples_at_step(step))
    assert landed == [195313408, 244140800]
    assert schedule.lr_curve.ends == (warmup_end, *landed)
    assert schedule.lr(warmup_end) == 3e-4 and schedule.lr(landed[1]) == 3e-5
    assert schedule.lr(landed[1] - 1024) > 3e-5
    assert schedule.wd(123) == 0.1


def test_a_megatron_table_means_what_it_means_to_megatron(tmp_path):
    path = write(
        tmp_path,
        """
[megatron]
lr = 3e-4
min_lr = 3e-5
train_iters = 1000
lr_warmup_fraction = 0.01
lr_decay_style = "cosine"
global_batch_size = 8
seq_length = 128
""",
    )
    schedule = load_schedule(path)
    assert schedule == from_megatron_args(
        argparse.Namespace(
            lr=3e-4,
            min_lr=3e-5,
            train_iters=1000,
            lr_warmup_fraction=0.01,
            lr_decay_style="cosine",
            global_batch_size=8,
        )
    )
    assert schedule.run.seq_length == 128 and schedule.run.total_samples == 8000


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "[lr]\nmax_lr = 1.0\nphases = [{ shape = 'linear', to = 1.0, until = '5 apples' }]",
            "lr.phases[0].until='5 apples' is not a quantity",
        ),
        (
            "[lr]\nmax_lr = 1.0\nphases = [{ shape = 'linear', to = 1.0, until = '5 tokens' }]",
            "is in tokens; expected seq_length",
        ),
        (
            "[run]\ntotal = '5 samples'\n[lr]\nmax_lr = 1.0\n"
            "phases = [{ shape = 'linear', to = 1.0, until = '60%' },"
            " { shape = 'constant', until = '50%' }]",
            "does not come after the previous end",
        ),
        (
            "[run]\nglobal_batch_size = 100\nrampup_batch_size = [16, 5, 1000]\n[lr]\nmax_lr = 1.0\n"
            "phases = []",
            "expected a multiple >= 0 of the increment 5",
        ),
        ("[lr]\nmax_lr = -1.0\nphases = []", "lr.max_lr=-1.0 is negative"),
        ("[lr\nmax_lr = 1.0", "not valid TOML"),
        (
            "[megatron]\nlr = 1.0\ntrain_iters = 10\nglobal_batch = 8",
            "megatron.global_batch is not a scheduling argument",
        ),
        ("[megatron]\nlr = 1.0\n[lr]\nmax_lr = 1.0", "a [megatron] table comes alone"),
    ],
    ids=["unit", "tokens", "order", "ramp", "negative", "toml", "megatron-key", "mixed"],
)
def test_bad_files_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ScheduleError) as info:
        load_schedule(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_an_unknown_megatron_key_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, "[megatron]\nlr = 1.0\ntrain_iters = 10\nlr_warmup_iter = 5\n")
    with pytest.raises(ScheduleError) as info:
        load_schedule(path)
    message = str(info.value)
    assert message.startswith(
        f"{path}: megatron.lr_warmup_iter is not a scheduling argument; "
        "expected one of lr, min_lr, "
    )
    assert all(flag.name in message for flag in MEGATRON_FLAGS)
    assert message.endswith("(did you mean 'lr_warmup_iters'?)")


def test_missing_file(tmp_path):
    with pytest.raises(ScheduleError, match="no such file"):
        load_schedule(tmp_path / "nothing.toml")


def test_recipes_ship_with_sources_and_load():
    found = {recipe.name: recipe for recipe in recipes()}
    assert {"llama2-7b", "minicpm-wsd", "deepseek-v3"} <= set(found)
    for recipe in found.values():
        assert recipe.source and recipe.description
        schedule = load_schedule(recipe.path)
        total = schedule.run.total_samples
        # Megatron's WSD holds min_lr + 1.0 * (max_lr - min_lr), which may round one ulp up.
        assert 0 < schedule.lr(total / 2) <= schedule.max_lr * (1 + 2**-52)
    assert isinstance(load_schedule(found["minicpm-wsd"].path), Schedule)
    deepseek = load_schedule(found["deepseek-v3"].path)
    assert deepseek.run.batch_size_at(0) == 3072
    assert deepseek.lr(deepseek.run.total_samples) == 7.3e-6
    with pytest.raises(ScheduleError, match="recipe 'llama' is not one of"):
        recipe_path("llama")


@pytest.mark.parametrize(
    "path,error,message",
    [
        (123, ScheduleTypeError, "path=123 is of type int; expected a schedule file's name"),
        (None, ScheduleTypeError, "path=None is of type NoneType"),
        ("", ScheduleError, "'' is not a file name; expected a schedule file (TOML)"),
        ("a\0.toml", ScheduleError, "'a\\x00.toml' is not a file name"),
    ],
    ids=["int", "none", "empty", "nul"],
)
def test_what_is_not_a_file_name_is_refused(path, error, message):
    with pytest.raises(error) as info:
        load_schedule(path)
    assert message in str(info.value)


def test_a_file_too_large_to_be_a_schedule_is_refused_unread(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_bytes(b"# padding\n" * 110_000)
    with pytest.raises(ScheduleError, match="huge.toml: larger than 1,048,576 bytes"):
        load_schedule(path)


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "[lr]\nmax_lr = 1" + "0" * 5000 + "\n",
            "holds an integer of more than 4300 digits; expected numbers of at most 1e18 in size",
        ),
        (
            "[megatron]\nlr = 1e-3\ntrain_samples = 100\nrampup_batch_size = 5\n",
            "megatron.rampup_batch_size=5 is of type int; expected [start, increment, ramp length]",
        ),
    ],
    ids=["integer-too-long-to-read", "ramp-not-a-list"],
)
def test_values_python_cannot_take_are_refused_by_name(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScheduleError) as info:
        load_schedule(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_branch_file_branches_from_a_file_or_a_recipe(tmp_path):

    (tmp_path / "base.toml").write_text(
        '[run]\nglobal_batch_size = 10\ntotal = "1000 steps"\n'
        "[lr]\nmax_lr = 1.0\nmin_lr = 0.1\nphases = [\n"
        '  { shape = "linear", to = "max_lr", until = "100 steps" },\n'
        '  { shape = "constant", until = "100%" },\n]\n'
    )
    (tmp_path / "cooldown.toml").write_text(
        '[branch]\nfrom = "base.toml"\nat = "600 steps"\n'
        '[lr]\nphases = [{ shape = "cosine", to = "min_lr", until = "700 steps" }]\n'
    )
    (tmp_path / "longer.toml").write_text(
        '[branch]\nfrom = "cooldown.toml"\nat = "650 steps"\n[run]\ntotal = "2000 steps"\n'
        '[lr]\nphases = [{ shape = "linear", to = "max_lr", until = "700 steps" },\n'
        '  { shape = "linear", to = 0.0, until = "100%" }]\n'
    )
    base = load_schedule(tmp_path / "base.toml")
    cooldown = load_schedule(tmp_path / "cooldown.toml")
    longer = load_schedule(tmp_path / "longer.toml")
    assert cooldown == base.branch(
        "600 steps", [{"shape": "cosine", "to": "min_lr", "until": "700 steps"}]
    )
    assert cooldown.lr(6000) == base.lr(6000) == 1.0 and cooldown.lr(7000) == 0.1
    assert longer.parent == cooldown and longer.run.total_samples == 20_000
    assert longer.lr(20_000) == 0.0 and longer.lr(7000) == 1.0
    recipe = tmp_path / "from-recipe.toml"
    recipe.write_text(
        '[branch]\nfrom = "minicpm-wsd"\nat = "50%"\n'
        '[lr]\nphases = [{ shape = "linear", to = "min_lr", until = "60%" }]\n'
    )
    parent = load_schedule(recipe_path("minicpm-wsd"))
    branched = load_schedule(recipe)
    half = parent.run.samples("50%")
    assert branched.lr(half) == parent.lr(half) and branched.parent == parent


@pytest.mark.parametrize(
    "text,message",
    [
        (
            '[branch]\nfrom = "loop.toml"\nat = "1 steps"\n[lr]\nphases = []\n',
            "goes round in a circle: ",
        ),
        (
            '[branch]\nfrom = "missing.toml"\nat = "1 steps"\n[lr]\nphases = []\n',
            "branch.from='missing.toml': ",
        ),
        ('[branch]\nfrom = "no-such-recipe"\nat = "1 steps"\n', "is not one of"),
        ('[branch]\nat = "1 steps"\n', "branch has no 'from'"),
        (
            '[branch]\nfrom = "minicpm-wsd"\nat = "1 steps"\n[run]\nseq_length = 8\n',
            "run.seq_length is not allowed in a branch file",
        ),
        (
            '[branch]\nfrom = "minicpm-wsd"\nat = "1 steps"\n[megatron]\nlr = 1.0\n',
            "a branch file has a [megatron] table",
        ),
        ('[branch]\nfrom = "minicpm-wsd"\nat = "50%"\n', "has no [lr] table"),
        ('[branch]\nfrom = "a\\u0000.toml"\nat = "50%"\n', "is not a file name or a recipe name"),
        ('[branch]\nfrom = 3\nat = "50%"\n', "branch.from=3; expected a file or a recipe name"),
        ('[branch]\nfrom = "minicpm-wsd"\nat = [1]\n[lr]\nphases = []\n', "branch.at=[1]"),
    ],
    ids=[
        "circle",
        "missing",
        "unknown-recipe",
        "no-from",
        "run-key",
        "megatron",
        "no-lr",
        "nul",
        "not-a-name",
        "at-a-list",
    ],
)
def test_a_branch_file_that_cannot_be_is_refused_naming_the_file(tmp_path, text, message):
    path = tmp_path / "loop.toml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=re.escape(message)) as info:
        load_schedule(path)
    assert str(path) in str(info.value)


BRANCH_OF_VALUES = """\
[branch]
from = "values.toml"
at = "200 steps"

[lr]
phases = [{ shape = "linear", to = "min_lr", until = "300 steps" }]
"""


def test_a_branch_file_continues_group_and_loop_values_from_the_branch_point(tmp_path):
    (tmp_path / "values.toml").write_text(VALUES_TOML)
    path = write(
        tmp_path,
        BRANCH_OF_VALUES + '\n[group."betas[1]"]\nphases = [{ shape = '
        '"linear", to = 0.999, until = "300 steps" }]\n\n[loop.grad_clip]\nphases = '
        '[{ shape = "constant", until = "300 steps", value = 0.5 }]\n',
        "branch.toml",
    )
    parent, branch = load_schedule(tmp_path / "values.toml"), load_schedule(path)
    for n in range(0, 1601, 8):  # 200 steps of 8 samples
        assert branch.value("betas[1]", n) == parent.value("betas[1]", n)
        assert branch.value("grad_clip", n) == parent.value("grad_clip", n)
    assert branch.value("betas[1]", 2400) == 0.999 and branch.value("grad_clip", 1608) == 0.5


@pytest.mark.parametrize(
    "tables,message",
    [
        (
            '[loop."betas[1]"]\nphases = [{ shape = "constant", until = "300 steps" }]\n',
            "[loop.betas[1]]: the parent schedules 'betas[1]' in [group]; expected [group.betas[1]]",
        ),
        (
            '[group.grad_clip]\nphases = [{ shape = "constant", until = "300 steps" }]\n',
            "[group.grad_clip]: the parent schedules 'grad_clip' in [loop]; expected [loop.grad_clip]",
        ),
        (
            '[loop."betas[1]"]\nphases = [{ shape = "constant", until = "300 steps" }]\n'
            '[group."betas[1]"]\nphases = [{ shape = "constant", until = "300 steps" }]\n',
            "[group.betas[1]]: 'betas[1]' is in [loop] too; expected it in one place, once",
        ),
    ],
    ids=["group-value-as-loop", "loop-value-as-group", "both"],
)
def test_a_branch_file_that_puts_a_value_in_the_other_place_is_refused(tmp_path, tables, message):
    # Accepted, the value silently stayed where the parent had it; with both tables, one
    # table's phases silently replaced the other's.
    (tmp_path / "values.toml").write_text(VALUES_TOML)
    path = write(tmp_path, BRANCH_OF_VALUES + "\n" + tables, "branch.toml")
    with pytest.raises(ScheduleError, match=re.escape(message)):
        load_schedule(path)


BRANCH = (
    '[branch]\nfrom = "{}"\nat = "50%"\n[lr]\nphases = [{{ shape = "linear", to = 0.0, '
    'until = "100%" }}]\n'
)


def test_branches_that_go_round_in_a_circle_are_refused_naming_the_files(tmp_path):
    (tmp_path / "a.toml").write_text(BRANCH.format("b.toml"))
    (tmp_path / "b.toml").write_text(BRANCH.format("a.toml"))
    (tmp_path / "via-link.toml").symlink_to("a.toml")
    (tmp_path / "c.toml").write_text(BRANCH.format("via-link.toml"))
    with pytest.raises(ScheduleError) as info:
        load_schedule(tmp_path / "a.toml")
    assert str(info.value).endswith(
        f"branch.from='a.toml' goes round in a circle: "
        f"{tmp_path}/a.toml -> {tmp_path}/b.toml -> "
        f"{tmp_path}/a.toml; expected branches that end in a "
        "schedule"
    )
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            f"goes round in a circle: {tmp_path}/via-link.toml -> {tmp_path}/b.toml -> "
            f"{tmp_path}/a.toml"
        ),
    ):
        load_schedule(tmp_path / "c.toml")


@pytest.mark.parametrize(
    "links",
    [{"self.toml": "self.toml"}, {"one.toml": "two.toml", "two.toml": "one.toml"}],
    ids=["itself", "two"],
)
def test_a_loop_of_links_is_one_error_naming_the_files(tmp_path, links):
    for name, target in links.items():
        (tmp_path / name).symlink_to(target)
    first = next(iter(links))
    with pytest.raises(
        ScheduleError,
        match=re.escape(f"{tmp_path}/{first}: cannot be read: Too many levels of symbolic links"),
    ):
        load_schedule(tmp_path / first)
    (tmp_path / "branch.toml").write_text(BRANCH.format(first))
    with pytest.raises(ScheduleError) as info:
        load_schedule(tmp_path / "branch.toml")
    assert str(info.value) == (
        f"{tmp_path}/branch.toml: {tmp_path}/{first}: cannot be read: "
        "Too many levels of symbolic links"
    )


@pytest.mark.parametrize(
    "text,line,depth",
    [
        ("[lr]\nmax_lr = " + "[" * 600 + "]" * 600 + "\n", 2, 65),
        ("[lr]\nmax_lr = " + "{a = " * 600 + "1" + "}" * 600 + "\n", 2, 65),
        ("[" + ".".join(["a"] * 100_000) + "]\n", 1, 100_000),
        ("# a comment\n" + ".".join(["a"] * 100_000) + " = 1\n", 2, 65),
        (
            "[" + ".".join(["a"] * 40) + "]\n" + ".".join(["b"] * 20) + " = { c.c.c.c.c = 1 }\n",
            2,
            65,
        ),
        ("x = [\n" + "  [\n" * 64 + "]" * 65 + "\n", 64, 65),
    ],
    ids=[
        "arrays",
        "inline-tables",
        "dotted-header",
        "dotted-key",
        "within-one-another",
        "across-lines",
    ],
)
def test_a_file_nested_too_deep_is_refused_before_it_is_parsed(tmp_path, text, line, depth):
    path = write(tmp_path, text)
    with pytest.raises(ScheduleError) as info:
        load_schedule(path)
    assert str(info.value) == (
        f"{path}: line {line} nests {depth} levels deep; expected at most "
        "64 (tables, arrays, inline tables and the parts of dotted keys, "
        "within one another)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 63 + "]" * 63 + "\n",
        "[" + ".".join(["a"] * 64) + "]\nx = 1\n",
        ".".join(["a"] * 64) + " = 1\n",
        'x = "' + "[" * 100 + "\"\ny = '" + "{" * 100 + "'\n",
        'x = """' + "[." * 100 + '""""\ny = \'\'\'' + "{" * 100 + "'''''\n",
        "# " + "[" * 100 + "\n[lr] # a.b.c\nx = [" + "1.5, " * 1000 + "1979-05-27T07:32:00.999]\n",
        '["' + ".".join(["a"] * 100) + '"]\nx = 1\n',
    ],
    ids=[
        "63-arrays",
        "64-part-header",
        "64-part-key",
        "strings",
        "multi-line-strings",
        "comments-and-numbers",
        "a-quoted-key",
    ],
)
def test_what_is_not_nested_too_deep_is_read(tmp_path, text):
    import tomllib

    from paramsched.recipe import _nesting  # the scan, against the parser itself

    assert _nesting(text) is None
    assert tomllib.loads(text) is not None


def test_a_byte_order_mark_is_read_as_nothing(tmp_path):
    plain = write(tmp_path, ISSUE_EXAMPLE, "plain.toml")
    marked = tmp_path / "marked.toml"
    marked.write_bytes(b"\xef\xbb\xbf" + ISSUE_EXAMPLE.encode())
    assert load_schedule(marked) == load_schedule(plain)
    utf16 = tmp_path / "utf16.toml"
    utf16.write_bytes(ISSUE_EXAMPLE.encode("utf-16"))
    with pytest.raises(
        ScheduleError,
        match=re.escape(
            f"{utf16}: starts with a UTF-16 byte-order mark; expected a TOML file in UTF-8"
        ),
    ):
        load_schedule(utf16)


def test_iterations_are_steps_in_a_schedule_file(tmp_path):
    steps = load_schedule(write(tmp_path, ISSUE_EXAMPLE, "steps.toml"))
    iters = load_schedule(
        write(tmp_path, ISSUE_EXAMPLE.replace('"2000 steps"', '"2000 iterations"'))
    )
    assert iters == steps
