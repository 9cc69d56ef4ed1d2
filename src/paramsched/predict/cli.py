"""The command line's ``fit``, ``predict`` and ``optimize``, and ``--law`` for ``compare``
and ``preview``.

``paramsched fit RUN.csv[=SCHEDULE.toml] ... --law multi-power --out law.json`` fits a
law on CSVs of ``step,lr,loss`` (rates from the schedule file when one is named,
else interpolated from the logged rates); ``paramsched predict law.json
SCHEDULE.toml ...`` prints the predicted loss at each phase end and at the end;
``paramsched optimize law.json --steps N --peak-lr X --warmup W [--min-lr Y] --out
best.toml`` writes the schedule whose predicted final loss is least.

Examples:
    >>> from paramsched.cli import main
    >>> main(["predict", "/nonexistent/law.json", "schedule.toml"])
    2
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from .laws import LAWS, PredictError, law_from_dict
from .runs import LossRun, rates_of, read_csv, read_text


def add_commands(commands) -> None:
    """Registers ``fit``, ``predict`` and ``optimize`` on the command line's subparsers."""
    fit = commands.add_parser(
        "fit",
        help="fit a loss law (multi-power or annealing) to logged runs",
        description="Fits a law of the loss as a function of the learning-rate schedule to "
        "runs: CSV files with the columns step, lr and loss (W&B and TensorBoard exports). "
        "RUN.csv=SCHEDULE.toml takes each step's exact rate from the schedule file; a CSV "
        "alone has its rates interpolated between the logged ones.",
        epilog="example: paramsched fit cosine.csv=cosine.toml wsd.csv --law multi-power "
        "--out law.json",
    )
    fit.add_argument("runs", nargs="+", metavar="RUN.csv[=SCHEDULE.toml]")
    fit.add_argument(
        "--law", default="multi-power", choices=tuple(LAWS), help="default multi-power"
    )
    fit.add_argument(
        "--ridge",
        type=_ridge,
        metavar="R",
        help="fit by least squares to convergence, with this ridge (0: none); default: the "
        "multi-power law by its paper's procedure, the annealing law with a cross-validated ridge",
    )
    fit.add_argument("--out", metavar="JSON", help="write the fitted law to this file")
    predict = commands.add_parser(
        "predict",
        help="predict the loss of schedules from a fitted law",
        description="Prints the loss a fitted law predicts at each phase end and at the end of "
        "each schedule file.",
        epilog="example: paramsched predict law.json cosine.toml wsd.toml",
    )
    predict.add_argument("law", metavar="LAW.json")
    predict.add_argument("schedules", nargs="+", metavar="SCHEDULE.toml")
    optimize = commands.add_parser(
        "optimize",
        help="write the schedule whose predicted final loss is least",
        description="Finds the schedule of --steps optimizer steps (a linear warmup of --warmup "
        "steps to --peak-lr, then never rising and never below --min-lr) whose final loss the "
        "law predicts lowest, and writes it as a schedule file.",
        epilog="example: paramsched optimize law.json --steps 24000 --peak-lr 3e-4 --warmup "
        "2160 --out best.toml",
    )
    optimize.add_argument("law", metavar="LAW.json")
    optimize.add_argument("--steps", type=int, required=True)
    optimize.add_argument("--peak-lr", type=float, required=True)
    optimize.add_argument("--warmup", type=int, required=True)
    optimize.add_argument("--min-lr", type=float, default=0.0, help="default 0")
    optimize.add_argument("--out", metavar="TOML", required=True)


def add_law_option(parser) -> None:
    """``--law LAW.json`` for ``compare`` and ``preview``."""
    parser.add_argument(
        "--law",
        metavar="LAW.json",
        help="a fitted law (paramsched fit): add the predicted loss, and draw it in the plot",
    )


def read_law(path: str):
    """The law in the JSON file `path`; errors name the file."""
    text = read_text(path, 1 << 20, "a JSON law")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PredictError(
            f"{path}: line {error.lineno}: {error.msg}; expected a JSON law"
        ) from None
    except (ValueError, RecursionError) as error:  # a number JSON cannot hold, deep nesting
        raise PredictError(
            f"{path}: {type(error).__name__}: {error}; expected a JSON law"
        ) from None
    return law_from_dict(data, where=path)


def _runs(options) -> list[LossRun]:
    from ..recipe import load_schedule

    runs = []
    for given in options.runs:
        csv_path, _, schedule_path = given.partition("=")
        schedule = load_schedule(schedule_path) if schedule_path else None
        runs.append(read_csv(csv_path, schedule))
    return runs


def _ridge(text: str) -> float:
    """``--ridge``: a number >= 0 and at most 1e18 (``-0`` is 0)."""
    from .fitting import RIDGE_LIMIT

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= RIDGE_LIMIT):
        raise argparse.ArgumentTypeError(
            f"{text!r}; expected a finite number >= 0 and at most 1e18, e.g. 0"
        )
    return value + 0.0


def fit_command(options) -> str:
    from .fitting import fit

    _check_out(options, {path.partition("=")[0]: f"the run {path!r}" for path in options.runs})
    runs = _runs(options)
    law = fit(runs, law=options.law, ridge=options.ridge)
    lines = [
        f"{run.name}: {run.steps.size} points, rates "
        + (
            "from the schedule file"
            if run.rates_from == "schedule"
            else "interpolated from the logged lr"
        )
        for run in runs
    ]
    lines.append(law.describe())
    text = json.dumps(law.to_dict(), indent=2)
    if options.out is not None:
        _write(options.out, text + "\n")
        lines.append(f"wrote the law to {options.out}")
    else:
        lines.append(text)
    return "\n".join(lines)


def _check_out(options, inputs: dict) -> None:
    """Refuses an ``--out`` that cannot be written, or is one of the `inputs`, before any work."""
    from ..cli import _check_outputs

    if options.out is not None:
        _check_outputs({"--out": options.out}, inputs)


def _write(path: str, text: str) -> None:
    """Writes `text` to `path` whole or not at all (beside it, then put in place)."""
    from ..cli import _write_outputs

    def write(where):
        with open(where, "w", encoding="utf-8") as file:
            file.write(text)

    _write_outputs({"--out": path}, {"--out": write})


def schedule_rates(schedule, name: str) -> np.ndarray:
    """Every step's rate under `schedule`, to its end."""
    from ..preview import run_of, total_samples

    run = run_of(schedule)
    if run.global_batch_size is None or run.counts_tokens:
        raise PredictError(
            f"{name} has no global_batch_size (or counts tokens); expected a run whose steps are "
            "known, to predict its loss"
        )
    last = run.step_at_samples(total_samples(schedule))
    return rates_of(schedule, int(last), name)


def predicted_final(law, schedule, name: str) -> float:
    lrs = schedule_rates(schedule, name)
    return float(law.loss(lrs, [len(lrs) - 1])[0])


def predict_command(options) -> str:
    from ..preview import phase_ends
    from ..recipe import load_schedule

    law = read_law(options.law)
    lines = [f"predicted by the {law.name} law of {options.law}"]
    for path in options.schedules:
        schedule = load_schedule(path)
        lrs = schedule_rates(schedule, path)
        steps = sorted({int(p["step"]) for p in phase_ends(schedule) if p.get("step")} | {len(lrs)})
        steps = [s for s in steps if 1 <= s <= len(lrs)]
        losses = law.loss(lrs, np.asarray(steps) - 1)
        lines.append(f"{path}:")
        lines += [f"  after step {s:>10,}  loss {v:.5f}" for s, v in zip(steps, losses)]
    return "\n".join(lines)


def optimize_command(options) -> str:
    from .optimize import optimize_text

    _check_out(options, {options.law: "the LAW.json"})
    law = read_law(options.law)
    schedule, text, final = optimize_text(
        law, options.steps, options.peak_lr, options.warmup, options.min_lr
    )
    _write(options.out, text)
    return f"predicted final loss {final:.5f}\nwrote the schedule to {options.out}"


def law_lines(options, named: list) -> list[str]:
    """``--law``'s lines for ``preview`` and ``compare``: each schedule's predicted final loss."""
    law = read_law(options.law)
    lines = ["", f"predicted final loss ({law.name} law of {options.law})"]
    width = max(len(name) for name, _ in named)
    for name, schedule in named:
        lines.append(f"  {name.ljust(width)}  {predicted_final(law, schedule, name):.5f}")
    return lines


def with_loss_column(table: str, options, named: list) -> str:
    """``compare``'s table with a column of each schedule's predicted final loss."""
    law = read_law(options.law)
    lines = table.split("\n")
    rows = len(named) + 2  # the header, the rule, a row per schedule
    width = max(len(line) for line in lines[:rows])
    column = [
        "predicted loss",
        "-" * 14,
        *(f"{predicted_final(law, schedule, name):.5f}" for name, schedule in named),
    ]
    body = [line.ljust(width) + "  " + cell for line, cell in zip(lines[:rows], column)]
    note = f"predicted loss: the final loss the {law.name} law of {options.law} predicts"
    return "\n".join([*body, *lines[rows:], note])


def plot_with_law(options, named: list, path: str, title: str) -> None:
    """The rates and, below them, the predicted loss of each schedule from its peak rate
    on (before, the law's power of a tiny area dwarfs the rest), against steps."""
    from . import laws

    quiet, laws.logger.disabled = laws.logger.disabled, True  # law_lines has warned
    try:
        _plot_with_law(options, named, path, title)
    finally:
        laws.logger.disabled = quiet


def _plot_with_law(options, named: list, path: str, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    law = read_law(options.law)
    figure = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(figure)
    rate_axis, loss_axis = figure.subplots(2, 1, sharex=True)
    for name, schedule in named:
        lrs = schedule_rates(schedule, name)
        step = np.arange(len(lrs))
        first = max(1, int(np.argmax(lrs)))  # from the peak on (the end of a warmup)
        shown = np.unique(np.linspace(first, len(lrs) - 1, 1000).astype(np.int64))
        line = rate_axis.plot(step + 1, lrs, linewidth=1.4, label=name)[0]
        loss_axis.plot(
            shown + 1, law.loss(lrs, shown), linewidth=1.4, color=line.get_color(), label=name
        )
    rate_axis.set_ylabel("lr")
    loss_axis.set_ylabel(f"predicted loss ({law.name})")
    loss_axis.set_xlabel("steps")
    rate_axis.set_title(title)
    rate_axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)


def check_law_options(options) -> None:
    """``--law`` plots against steps, and is not for ``--json``."""
    if getattr(options, "law", None) is None:
        return
    if options.x not in (None, "steps"):
        raise PredictError(f"--x {options.x} with --law; the predicted loss is drawn against steps")
    if options.json:
        raise PredictError("--json with --law; expected one of them")
    read_law(options.law)
