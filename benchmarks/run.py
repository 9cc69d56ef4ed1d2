"""paramsched's benchmarks, measured side by side in one process.

Run ``python benchmarks/run.py`` (``--quick`` for tiny sizes, as the test suite
does). Every comparison is interleaved: each repeat runs every candidate once, and
the table reports medians over the repeats, and ratios, since absolute times on a
shared machine are noisy. Times are the CPU time of the benchmark's thread where
the clock is precise (`CLOCK`).
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from importlib import metadata

import numpy as np

from paramsched import OptimizerParamScheduler, Schedule

#: Megatron's cosine decay and linear weight-decay increment. Every step timed is inside
#: the decay: past lr_decay_steps megatron-core returns min_lr at once, which would time
#: only that shortcut (`host_step` checks it).
MEGATRON_CONFIG = dict(
    init_lr=0.0,
    max_lr=3e-4,
    min_lr=3e-5,
    lr_warmup_steps=100,
    lr_decay_steps=10**9,
    lr_decay_style="cosine",
    start_wd=0.0,
    end_wd=0.1,
    wd_incr_steps=10**9,
    wd_incr_style="linear",
)
DECOUPLED_LR, DECOUPLED_MIN_LR = 1e-3, 1e-4


class Groups:
    """A stand-in optimizer: nothing but param_groups, so only the scheduler is timed."""

    def __init__(self, count: int):
        self.param_groups = megatron_groups(count)


def megatron_groups(count: int) -> list[dict]:
    """`count` parameter groups as megatron-core 0.16 builds them: its own
    ``_get_param_groups`` run on a small model, so every group has its keys
    (``wd_mult``, ``lr_mult``, ``max_lr``, ``min_lr``, ``is_expert_parallel``,
    ``is_decoupled_lr``, ``default_config``, ``params``).

    1 group: no overrides (``config_overrides={}``). 2: Megatron's default overrides,
    decayed weights and undecayed biases and norms (``wd_mult`` 0). 4: the same with
    ``--decoupled-lr``, the embedding and output layer having their own ``max_lr`` and
    ``min_lr``. More: also a learning rate per block of layers (a config override per
    block, as a layer-wise learning rate is given), each decayed and undecayed.
    """
    return [dict(group) for group in _megatron_groups(count)]


@functools.lru_cache(maxsize=None)
def _megatron_groups(count: int) -> tuple:
    import torch
    import torch.distributed as dist

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.optimizer import (
            OptimizerConfig,
            _get_param_groups,
            get_standard_config_overrides,
        )
        from megatron.core.optimizer.optimizer_config import ParamKey
    if count != 1 and (count % 2 or count < 2):
        raise ValueError(f"count={count}; expected 1 or an even number of groups")
    blocks = max(0, count // 2 - 2)  # learning rates of their own, besides default and decoupled
    model = torch.nn.Module()
    model.embedding = torch.nn.Embedding(4, 2)
    model.layers = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(blocks))
    model.final = torch.nn.Linear(2, 2)
    model.output = torch.nn.Linear(2, 4)
    for param in (model.embedding.weight, *model.output.parameters()):
        param.is_embedding_or_output_parameter = True
    decoupled = count >= 4
    config = OptimizerConfig(
        lr=MEGATRON_CONFIG["max_lr"],
        min_lr=MEGATRON_CONFIG["min_lr"],
        decoupled_lr=DECOUPLED_LR if decoupled else None,
        decoupled_min_lr=DECOUPLED_MIN_LR if decoupled else None,
    )
    overrides = {} if count == 1 else get_standard_config_overrides(config)
    for block in range(blocks):
        scale = 0.9 ** (blocks - block)
        overrides[ParamKey(name=f"layers.{block}.*")] = {
            "max_lr": config.lr * scale,
            "min_lr": config.min_lr * scale,
        }
    started = not dist.is_initialized()
    if started:  # the layout is gathered across ranks: one rank here
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        groups = _get_param_groups([model], config, overrides)
    finally:
        if started:
            dist.destroy_process_group()
    assert len(groups) == count, (count, len(groups))
    return tuple(groups)


class HandWritten:
    """The floor: a step written by hand for one plan of `megatron_groups`, with
    paramsched's guarantees and nothing else.

    Per step: Megatron's cosine and linear formulas inline (the cosine once), and per
    group the seven reads the guarantees need (the five overrides Megatron re-reads,
    ``max_lr``, ``min_lr``, ``start_wd``, ``end_wd``, ``wd_mult``, and what ``lr`` and
    ``weight_decay`` hold, whose type tells a tensor put there), one tuple comparison
    with the plan's, each group's two values (``min_lr + coeff * delta_lr``, the weight
    decay times ``wd_mult``) and two writes. It refuses a group not as planned, where
    paramsched would plan afresh.
    """

    def __init__(self, optimizer, num_steps: int):
        self.optimizer, self.num_steps = optimizer, num_steps
        c = MEGATRON_CONFIG  # the formulas' constants, as Megatron computes them
        self.constants = (
            c["lr_warmup_steps"],
            float(c["lr_decay_steps"] - c["lr_warmup_steps"]),
            c["start_wd"],
            float(c["wd_incr_steps"]),
            c["end_wd"] - c["start_wd"],
        )
        self.rows = []
        for group in optimizer.param_groups:
            max_lr = group.get("max_lr", MEGATRON_CONFIG["max_lr"])
            min_lr = group.get("min_lr", MEGATRON_CONFIG["min_lr"])
            key = (
                group.get("max_lr"),
                group.get("min_lr"),
                group.get("start_wd"),
                group.get("end_wd"),
                group.get("wd_mult"),
                float,
                float,
            )
            self.rows.append((key, min_lr, max_lr - min_lr, group.get("wd_mult", 1.0)))
        for group in optimizer.param_groups:  # lr and weight_decay hold floats
            group["lr"] = group["weight_decay"] = 0.0
        self.step(0)

    def step(self, increment: int = 1) -> None:
        num_steps = self.num_steps + increment
        self.num_steps = num_steps
        warmup, decay_steps, start_wd, wd_incr_steps, delta_wd = self.constants
        coeff = 0.5 * (math.cos(math.pi * (float(num_steps - warmup) / decay_steps)) + 1.0)
        wd = start_wd + float(num_steps) / wd_incr_steps * delta_wd
        groups = self.optimizer.param_groups
        if len(groups) != len(self.rows):
            raise RuntimeError("the groups changed; paramsched would plan afresh")
        for group, (key, min_lr, delta_lr, wd_mult) in zip(groups, self.rows):
            if (
                group.get("max_lr"),
                group.get("min_lr"),
                group.get("start_wd"),
                group.get("end_wd"),
                group.get("wd_mult"),
                group["lr"].__class__,
                group["weight_decay"].__class__,
            ) != key:
                raise RuntimeError("a group changed; paramsched would plan afresh")
            group["lr"] = min_lr + coeff * delta_lr
            group["weight_decay"] = wd * wd_mult


#: CPU time of this thread where it is precise (other processes do not count), else
#: wall time.
CLOCK = (
    time.thread_time if time.get_clock_info("thread_time").resolution <= 1e-6 else time.perf_counter
)


def interleaved(candidates: dict, repeats: int, calls: int) -> dict[str, float]:
    """Median seconds per call of each candidate, the candidates taking turns."""
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, call in candidates.items():
            gc.disable()
            start = CLOCK()
            for _ in range(calls):
                call()
            times[name].append((CLOCK() - start) / calls)
            gc.enable()
    return {name: statistics.median(values) for name, values in times.items()}


def host_step(sizes, repeats) -> list[list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.optimizer_param_scheduler import (
            OptimizerParamScheduler as MegatronScheduler,
        )
    rows = []
    for count in sizes:
        theirs, ours, hand = Groups(count), Groups(count), Groups(count)
        start = 1000  # into the cosine decay, where the work is
        reference = MegatronScheduler(theirs, **MEGATRON_CONFIG)
        scheduler = OptimizerParamScheduler(ours, **MEGATRON_CONFIG)
        reference.step(start)
        scheduler.step(start)
        floor = HandWritten(hand, start)
        calls = max(10, 4_000 // count)
        t = interleaved(
            {
                "megatron": lambda: reference.step(1),
                "ours": lambda: scheduler.step(1),
                "floor": lambda: floor.step(1),
            },
            repeats,
            calls,
        )
        assert (
            MEGATRON_CONFIG["lr_warmup_steps"] < start
            and scheduler.num_steps <= MEGATRON_CONFIG["lr_decay_steps"]
        )  # inside the decay
        identical = (
            all(
                a["lr"] == b["lr"] == c["lr"]
                and a["weight_decay"] == b["weight_decay"] == c["weight_decay"]
                for a, b, c in zip(theirs.param_groups, ours.param_groups, hand.param_groups)
            )
            and reference.num_steps == scheduler.num_steps == floor.num_steps
        )
        classes = len({(g["max_lr"], g["min_lr"], g["wd_mult"]) for g in ours.param_groups})
        rows.append(
            [
                str(count),
                str(classes),
                f"{t['megatron'] * 1e6:.2f}",
                f"{t['ours'] * 1e6:.2f}",
                f"{t['floor'] * 1e6:.2f}",
                f"{t['megatron'] / t['ours']:.2f}x",
                f"{t['ours'] / t['floor']:.2f}x",
                f"{t['megatron'] / t['floor']:.2f}x",
                "yes" if identical else "NO",
            ]
        )
    return rows


CURVES = {
    "linear": dict(lr_decay_style="linear"),
    "cosine": dict(lr_decay_style="cosine"),
    "constant": dict(lr_decay_style="constant"),
    "inverse-square-root": dict(lr_decay_style="inverse-square-root"),
    "WSD linear": dict(lr_decay_style="WSD", lr_wsd_decay_style="linear"),
    "WSD cosine": dict(lr_decay_style="WSD", lr_wsd_decay_style="cosine"),
    "WSD exponential": dict(lr_decay_style="WSD", lr_wsd_decay_style="exponential"),
    "WSD minus_sqrt": dict(lr_decay_style="WSD", lr_wsd_decay_style="minus_sqrt"),
    "wd linear": dict(lr_decay_style="constant", wd_incr_style="linear"),
    "wd cosine": dict(lr_decay_style="constant", wd_incr_style="cosine"),
}
#: Phase shapes Megatron's styles do not have: one phase over the whole curve.
PHASE_CURVES = {
    "phase polynomial 1.5": {"shape": "polynomial", "power": 1.5},
    "phase exponential": {"shape": "exponential"},
    "phase inverse-square-root": {"shape": "inverse-square-root"},
}


def curves(points: int, sample: int, repeats: int) -> list[list[str]]:
    """Whole-curve evaluation against the scalar path called in a loop.

    WSD anneals over the whole decay (``wsd_decay_steps = lr_decay_steps``), the
    worst case for the exponential shape, whose ``pow`` is taken per element.
    """
    steps = np.arange(points, dtype=np.int64)
    rows = []
    from paramsched import PhaseSchedule

    for name, style in {**CURVES, **PHASE_CURVES}.items():
        if name in PHASE_CURVES:
            schedule = PhaseSchedule.from_dict(
                {
                    "lr": {
                        "max_lr": 3e-4,
                        "min_lr": 3e-5,
                        "phases": [
                            {
                                **style,
                                "from": "max_lr",
                                "to": "min_lr",
                                "until": f"{points} samples",
                            }
                        ],
                    }
                }
            )
        else:
            rising_wd = "wd_incr_style" in style
            schedule = Schedule(
                max_lr=3e-4,
                min_lr=3e-5,
                lr_warmup_steps=points // 100,
                lr_decay_steps=points,
                start_wd=0.0,
                end_wd=0.1 if rising_wd else 0.0,
                wd_incr_steps=points,
                wsd_decay_steps=points,
                **style,
            )
        curve = schedule.wd if name.startswith("wd") else schedule.lr
        picks = [int(s) for s in np.linspace(0, points - 1, sample)]
        t = interleaved(
            {
                "array": lambda: curve(steps),
                "scalar": lambda: [curve(s) for s in picks],
            },
            repeats,
            1,
        )
        exact = curve(np.array(picks, dtype=np.int64)).tolist() == [curve(s) for s in picks]
        per_point = t["scalar"] / sample
        rows.append(
            [
                name,
                f"{points:,}",
                f"{t['array']:.3f}",
                f"{per_point * 1e6:.2f}",
                f"{per_point * points / t['array']:.0f}x",
                "yes" if exact else "NO",
            ]
        )
    return rows


def multi_phase(points: int, repeats: int) -> list[list[str]]:
    """A schedule of 2 phases and one of 64, over the same points: cost per point."""
    from paramsched import PhaseSchedule

    steps = np.arange(points, dtype=np.int64)
    rows, times = [], {}
    for count in (2, 8, 64):
        shapes = ["linear", "cosine", "constant", "minus_sqrt"]
        phases = [{"shape": "linear", "to": "max_lr", "until": f"{points // 100} samples"}]
        for index in range(1, count):
            shape = shapes[index % len(shapes)]
            phase = {
                "shape": shape,
                "until": f"{points // 100 + index * (points // count)} samples",
            }
            if shape == "constant":
                phase["value"] = 3e-4 * (1 - index / count)
            else:
                phase["to"] = 3e-4 * (1 - index / count)
            phases.append(phase)
        schedule = PhaseSchedule.from_dict({"lr": {"max_lr": 3e-4, "phases": phases}})
        times[count] = interleaved({"array": lambda: schedule.lr(steps)}, repeats, 1)["array"]
    for count, seconds in times.items():
        rows.append(
            [
                str(count),
                f"{points:,}",
                f"{seconds:.3f}",
                f"{seconds / points * 1e9:.1f}",
                f"{seconds / times[2]:.2f}x",
            ]
        )
    return rows


def tensor_lrs(sizes, repeats) -> list[list[str]]:
    """Tensor learning rates: dispatched torch operations per step, and host time per step
    against Megatron-Core main's way, an in-place fill_ of each group's tensor."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            return func(*args, **(kwargs or {}))

    rows = []
    for count in sizes:

        def make():
            groups = megatron_groups(count)
            for group in groups:
                group["lr"] = torch.tensor(0.0, dtype=torch.float64)
            return type("Tensors", (), {"param_groups": groups})()

        ours, theirs = make(), make()
        scheduler = OptimizerParamScheduler(ours, **MEGATRON_CONFIG)
        scheduler.step(1000)
        values = [scheduler.get_lr(group) for group in theirs.param_groups]

        def fill_each():
            for group, value in zip(theirs.param_groups, values):
                group["lr"].fill_(value)

        with Count() as counted:
            scheduler.step(1)
        with Count() as filled:
            fill_each()
        calls = max(1, 2_000 // count)
        t = interleaved({"ours": lambda: scheduler.step(1), "fill": fill_each}, repeats, calls)
        rows.append(
            [
                str(count),
                str(counted.ops),
                str(filled.ops),
                f"{t['ours'] * 1e6:.1f}",
                f"{t['fill'] * 1e6:.1f}",
                f"{t['fill'] / t['ours']:.2f}x",
            ]
        )
    return rows


#: Megatron's GPT-3 175B example's scheduling flags at 16 data-parallel ranks, without its
#: --global-batch-size (which Megatron main refuses beside the step schedule).
GPT3_175B = [
    "--micro-batch-size", "1", "--lr", "6.0e-5", "--min-lr", "6.0e-6",
    "--lr-decay-style", "cosine", "--lr-decay-iters", "430000", "--lr-warmup-fraction", ".001",
    "--train-iters", "500000", "--seq-length", "2048", "--data-parallel-size", "16",
    "--step-batch-size-schedule", "0:16 2.4B:320 4.8B:624 7.2B:928 9.6B:1232 12B:1536",
]  # fmt: skip


def check_runs(iterations: int, repeats: int) -> list[list[str]]:
    """Seconds per ``paramsched check --json --megatron ...`` (the whole command: parse,
    read, every rule, the report), in process, for runs of `iterations` iterations."""
    import contextlib
    import io

    from paramsched.cli import main as paramsched

    scale = iterations / 500_000
    step_schedule = [
        str(round(int(word) * scale)) if word in ("430000", "500000") else word
        for word in GPT3_175B
    ]
    constant = [
        "--lr", "3e-4", "--min-lr", "3e-5", "--lr-decay-style", "WSD",
        "--lr-wsd-decay-style", "minus_sqrt", "--lr-wsd-decay-iters", str(iterations // 10),
        "--lr-warmup-iters", "2000", "--train-iters", str(iterations),
        "--global-batch-size", "1024", "--micro-batch-size", "4", "--data-parallel-size", "64",
    ]  # fmt: skip
    runs = {"step batch-size schedule (GPT-3 175B)": step_schedule, "WSD, constant batch": constant}

    def command(words):
        def call():
            with contextlib.redirect_stdout(io.StringIO()):
                paramsched(["check", "--json", "--megatron", *words])

        return call

    times = interleaved({name: command(words) for name, words in runs.items()}, repeats, 1)
    return [[name, f"{iterations:,}", f"{seconds:.3f}"] for name, seconds in times.items()]


def footprint(obj, seen=None, stop=()) -> int:
    """Bytes held by `obj` and what it references, not counting objects in `stop`."""
    seen = set() if seen is None else seen
    if id(obj) in seen or any(obj is s for s in stop):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(footprint(k, seen, stop) + footprint(v, seen, stop) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(footprint(item, seen, stop) for item in obj)
    elif hasattr(obj, "__dict__"):
        size += footprint(vars(obj), seen, stop)
    elif hasattr(obj, "__slots__"):
        size += sum(
            footprint(getattr(obj, s), seen, stop) for s in obj.__slots__ if hasattr(obj, s)
        )
    return size


def memory(steps: int, groups: int) -> list[list[str]]:
    optimizer = Groups(groups)
    scheduler = OptimizerParamScheduler(optimizer, **MEGATRON_CONFIG)
    # Collected before the warm-up, not between it and tracing: a full collection right
    # before tracemalloc starts makes tracemalloc's own bookkeeping (a line-number
    # search per traced allocation, through the long step function) twenty times the
    # step's cost, for as long as the trace runs.
    gc.collect()
    for _ in range(1000):
        scheduler.step()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(steps):
        scheduler.step()
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    own = footprint(scheduler, stop=(optimizer, *optimizer.param_groups))
    return [[f"{steps:,}", str(groups), f"{after - before:+,}", f"{peak - before:,}", f"{own:,}"]]


def prediction(steps: int, points: int, repeats: int) -> list[list[str]]:
    """CPU seconds to fit the multi-power law on the paper's three 25M fit curves, to
    predict a cosine schedule of `steps` steps at `points` points, and the largest gap
    between that prediction (far drops gathered) and the exact sum, at 50 of the points."""
    from predict_accuracy import FIT, PAPER_PARAMS, run

    from paramsched.predict import MultiPowerLaw, fit

    law = MultiPowerLaw(**PAPER_PARAMS)

    def cosine(total):
        t = np.arange(total - 2000)
        tail = 3e-5 + 0.5 * 2.7e-4 * (1 + np.cos(np.pi * t / (total - 2000)))
        return np.concatenate([np.linspace(0, 3e-4, 2000), tail])

    def cpu(work):
        start = time.thread_time()
        work()
        return time.thread_time() - start

    rows = []
    try:
        import scipy  # noqa: F401

        runs = [run(name) for name in FIT]
        seconds = statistics.median(cpu(lambda: fit(runs)) for _ in range(repeats))
        rows.append(
            ["fit: 3 curves (cosine_24000, constant_24000, wsdcon_9)", f"{seconds:.2f}", "-"]
        )
    except ImportError:
        rows.append(["fit: needs SciPy (pip install paramsched[predict])", "-", "-"])
    lrs = cosine(steps)
    at = np.linspace(2000, steps - 1, points).astype(np.int64)
    seconds = statistics.median(cpu(lambda: law.loss(lrs, at)) for _ in range(repeats))
    few = at[:: max(1, points // 50)]  # the exact sum at 50 of the points
    gap = np.max(np.abs(law.loss(lrs, few) - law.loss(lrs, few, exact=True)))
    rows.append(
        [f"predict: cosine of {steps:,} steps at {points:,} points", f"{seconds:.3f}", f"{gap:.1e}"]
    )
    return rows


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"### {title}", "", line(header), rule, *map(line, rows), ""])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    versions = []
    for package in ("paramsched", "numpy", "megatron-core", "torch"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    options = parser.parse_args(argv)
    quick = options.quick
    print(f"machine: {machine()}\n")
    print(
        table(
            "Host step cost: microseconds per step() in the cosine decay (median of interleaved "
            "repeats)",
            [
                "groups",
                "classes",
                "megatron-core",
                "paramsched",
                "hand-written floor",
                "megatron / paramsched",
                "paramsched / floor",
                "megatron / floor",
                "bit-identical",
            ],
            host_step([1, 2, 8] if quick else [1, 2, 4, 8, 64, 512], 5 if quick else 41),
        )
    )
    points = 20_000 if quick else 10_000_000
    print(
        table(
            f"Curve evaluation: Schedule.lr / wd over {points:,} steps",
            [
                "shape",
                "steps",
                "array (s)",
                "scalar loop (us/step)",
                "array vs scalar loop",
                "bit-identical",
            ],
            curves(points, 200 if quick else 20_000, 1 if quick else 3),
        )
    )
    print(
        table(
            f"Multi-phase curves: PhaseSchedule.lr over {points:,} steps, by number of phases",
            ["phases", "steps", "array (s)", "ns per step", "vs 2 phases"],
            multi_phase(points, 1 if quick else 3),
        )
    )
    print(
        table(
            "Tensor learning rates: torch ops dispatched per step() and host time per step",
            [
                "groups",
                "ops (paramsched)",
                "ops (fill_ per group)",
                "paramsched (us)",
                "fill_ per group (us)",
                "fill_ / ours",
            ],
            tensor_lrs([1, 8] if quick else [1, 64, 512], 3 if quick else 9),
        )
    )
    iterations = 5_000 if quick else 500_000
    print(
        table(
            f"paramsched check: seconds per check of a {iterations:,}-iteration Megatron run "
            "(median of interleaved repeats)",
            ["run", "iterations", "seconds"],
            check_runs(iterations, 3 if quick else 11),
        )
    )
    print(
        table(
            "Memory: growth over many steps (tracemalloc) and the scheduler's own footprint",
            ["steps", "groups", "growth (bytes)", "peak during (bytes)", "scheduler (bytes)"],
            memory(2_000 if quick else 1_000_000, 64),
        )
    )
    print(
        table(
            "Loss prediction: CPU seconds (median of repeats), and the gathered sum's largest "
            "gap to the exact one",
            ["work", "seconds", "largest gap to the exact sum"],
            prediction(20_000 if quick else 1_000_000, 100 if quick else 1_000, 1 if quick else 3),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
