"""Other stacks' own schedulers, run to give the rates paramsched's readers must equal.

Each function builds the stack's scheduler from its own code, unmodified, steps it, and
returns the learning rate it has set after 0, 1, ..., `steps` steps. Imported by the
tests of `paramsched.formats` once the stack is known to be installed.
"""

from __future__ import annotations

import torch


def optimizer_of(lr: float, groups: int = 1) -> torch.optim.Optimizer:
    """An SGD optimizer of `groups` groups, group ``i`` at ``lr * (i + 1)``."""
    params = [
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * (i + 1)} for i in range(groups)
    ]
    return torch.optim.SGD(params, lr=lr)


def hf_rates(steps: int, groups: int = 1, **arguments) -> list[list[float]]:
    """transformers' ``get_scheduler(**arguments)`` (``lr`` is the optimizer's): each
    group's rate after 0..`steps` calls of ``scheduler.step()``."""
    from transformers import get_scheduler

    optimizer = optimizer_of(arguments.pop("lr"), groups)
    scheduler = get_scheduler(optimizer=optimizer, **arguments)
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates


def timm_scheduler():
    """timm's own ``timm.scheduler`` package, unmodified, without running ``timm/__init__``.

    timm's package module imports torchvision (for its models), and the package index's
    torchvision cannot load beside the CPU build of torch; its scheduler modules import
    only torch, NumPy and one another. A bare ``timm`` package module whose ``__path__`` is
    the installed timm directory is registered (only if timm is not imported already), so
    that ``import timm.scheduler`` runs timm's scheduler files and nothing else.
    """
    import importlib
    import importlib.util
    import sys
    import types

    if "timm" not in sys.modules:
        spec = importlib.util.find_spec("timm")
        if spec is None:
            import pytest

            pytest.skip("timm is not installed (pip install --no-deps timm==1.0.31)")
        package = types.ModuleType("timm")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        sys.modules["timm"] = package
    return importlib.import_module("timm.scheduler")


def timm_rates(updates: int, groups: int = 1, **arguments) -> list:
    """timm's ``create_scheduler_v2(optimizer, **arguments)`` driven as timm's training
    loop drives it: ``step_update(num_updates)`` after each optimizer update, and
    ``step(epoch + 1)`` after each epoch of ``updates_per_epoch`` updates (one, when the
    arguments give none: then an update is an epoch). Each group's rate after
    0..`updates` updates."""
    scheduler_module = timm_scheduler()
    optimizer = optimizer_of(arguments.pop("lr"), groups)
    scheduler, _ = scheduler_module.create_scheduler_v2(optimizer, **arguments)
    per_epoch = arguments.get("updates_per_epoch") or 1
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for update in range(1, updates + 1):
        optimizer.step()
        scheduler.step_update(num_updates=update)
        if update % per_epoch == 0:
            scheduler.step(update // per_epoch)
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates


#: Megatron's defaults for its scheduling arguments (``megatron/training/arguments.py``).
MEGATRON_ARGUMENTS = dict(
    lr=None,
    min_lr=0.0,
    lr_warmup_init=0.0,
    lr_warmup_iters=0,
    lr_warmup_samples=0,
    lr_warmup_fraction=None,
    lr_decay_iters=None,
    lr_decay_samples=None,
    train_iters=None,
    train_samples=None,
    lr_decay_style="linear",
    lr_wsd_decay_style="exponential",
    lr_wsd_decay_iters=None,
    lr_wsd_decay_samples=None,
    weight_decay=0.01,
    start_weight_decay=None,
    end_weight_decay=None,
    weight_decay_incr_style="constant",
    global_batch_size=None,
    micro_batch_size=1,
    data_parallel_size=1,
    step_batch_size_schedule=None,
    seq_length=None,
    rampup_batch_size=None,
)


def megatron_arguments(flags: str):
    """A line of Megatron's ``--flag value`` words as Megatron's parser leaves them: each
    value as its flag's type (a number is an int if it reads as one, else a float)."""
    from types import SimpleNamespace

    values, words = dict(MEGATRON_ARGUMENTS), flags.split()
    for index, word in enumerate(words):
        if word.startswith("--"):
            value = words[index + 1]
            for kind in (int, float, str):
                try:
                    value = kind(value)
                    break
                except ValueError:
                    continue
            values[word[2:].replace("-", "_")] = value
    return SimpleNamespace(**values)


def megatron_rates(flags: str, groups: int = 1) -> list[list[float]]:
    """megatron-core's ``OptimizerParamScheduler``, given what Megatron's training script
    derives from `flags` (one batch size: no ramp-up), stepped by the global batch size
    once per iteration: each group's rate and weight decay after 0..N iterations."""
    import warnings

    import megatron_main
    from conftest import PlainOptimizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    args = megatron_main.validate(megatron_arguments(flags))
    optimizer = PlainOptimizer([{"params": []} for _ in range(groups)])
    scheduler = OptimizerParamScheduler(optimizer, **megatron_main.scheduler_arguments(args, None))
    iterations = args.train_iters or args.train_samples // args.global_batch_size
    rates = [[(g["lr"], g["weight_decay"]) for g in optimizer.param_groups]]
    for _ in range(iterations):
        scheduler.step(increment=args.global_batch_size)
        rates.append([(g["lr"], g["weight_decay"]) for g in optimizer.param_groups])
    return rates


def hf_call(name: str, lr: float, warmup, training, kwargs: dict) -> dict:
    """transformers' `get_scheduler` arguments as an ``[hf]`` table holds them (``constant``
    takes no warmup; `kwargs` are its ``scheduler_specific_kwargs``, if any)."""
    arguments = {"name": name, "lr": lr, "num_warmup_steps": None if name == "constant" else warmup}
    arguments["num_training_steps"] = training
    if kwargs:
        arguments["scheduler_specific_kwargs"] = kwargs
    return arguments


def refused_file(path, text: str, message: str) -> None:
    """A schedule file holding `text`, written at `path`, is refused with `message` (a
    regular expression) by the reader of schedule files."""
    import pytest

    from paramsched import ScheduleError, load_schedule

    path.write_text(text)
    with pytest.raises(ScheduleError, match=message):
        load_schedule(path)


def torchtitan_rates(groups: int = 1, **arguments) -> tuple[list[list[float]], list[str]]:
    """torchtitan's own scheduler, built through its public builder on plain torch SGD:
    ``LRSchedulersContainer.Config(**lr_scheduler fields).build(optimizers=[optimizer],
    training_steps=steps)``, stepped ``steps`` times after the optimizer as torchtitan's
    trainer steps it. Each group's rate after 0..``steps`` steps, and the WARNINGs
    torchtitan logged while building it."""
    import logging

    from torchtitan.components.optimizer.lr_scheduler import LRSchedulersContainer
    from torchtitan.tools.logging import logger

    lr, steps = arguments.pop("lr"), arguments.pop("steps")
    optimizer = optimizer_of(lr, groups)
    warnings: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    try:
        config = LRSchedulersContainer.Config(**arguments)
        schedulers = config.build(optimizers=[optimizer], training_steps=steps)
    finally:
        logger.removeHandler(keep)
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(steps):
        optimizer.step()
        schedulers.step()
        rates.append([g["lr"] for g in optimizer.param_groups])
    return rates, warnings


def olmo_core_scheduler(spec: dict):
    """OLMo-core's own scheduler object for a checked ``[olmo_core]`` table `spec` (its
    class's fields; stages, overrides and inner schedulers built as OLMo-core's classes)."""
    from olmo_core.optim import scheduler as olmo

    run_keys = ("scheduler", "lr", "units", "max_steps", "max_tokens", "tokens_per_batch")
    fields = {k: v for k, v in spec.items() if k not in run_keys}
    if "stages" in fields:
        fields["stages"] = [olmo.ComposableSchedulerStage(**s) for s in fields["stages"]]
    if fields.get("override_decay") is not None:
        fields["override_decay"] = olmo.OverrideDecay(**fields["override_decay"])
    if "schedulers" in fields:
        fields["schedulers"] = [olmo_core_scheduler(inner) for inner in fields["schedulers"]]
        fields["schedulers_max"] = list(fields["schedulers_max"])
    if "units" in spec:
        fields["units"] = spec["units"]
    return getattr(olmo, spec["scheduler"])(**fields)


def olmo_core_rates(spec: dict, groups: int = 1) -> list[list[float]]:
    """OLMo-core's scheduler for `spec` (a checked ``[olmo_core]`` table), driven as its
    trainer drives it: before optimizer step ``k`` the trainer has counted that step
    (``global_step = k``, and its tokens), and the train module calls
    ``scheduler.set_lr(group, trainer)``. Each group's rate for steps 1..max_steps, then
    that of the last step once more (the rate after the run)."""
    import math
    import warnings
    from types import SimpleNamespace

    scheduler = olmo_core_scheduler(spec)
    per = spec["tokens_per_batch"] or 1
    tokens = spec["units"] == "tokens"
    steps = math.ceil(spec["max_tokens"] / per) if tokens else spec["max_steps"]
    trainer = SimpleNamespace(
        global_step=0, global_train_tokens_seen=0, max_steps=None, max_tokens=None
    )
    if tokens:
        trainer.max_tokens = spec["max_tokens"]
    else:
        trainer.max_steps = spec["max_steps"]
    param_groups = [{"params": [], "lr": spec["lr"] * (i + 1)} for i in range(groups)]
    rates = []
    with warnings.catch_warnings():  # that ComposableScheduler ignores t_max, once per object
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            trainer.global_step += 1
            trainer.global_train_tokens_seen += per
            rates.append([scheduler.set_lr(group, trainer) for group in param_groups])
    return rates + rates[-1:]


def run_and_resume(schedule, other, expected: list, steps: int = 60, at: int = 25) -> None:
    """`ParamScheduler` over two groups (base rate 1e-3) writes `expected[n]` after each
    of `steps` steps, and its checkpoint at step `at`, loaded into a scheduler built on
    `other` over groups of another rate, resumes the same rates to the end."""
    from paramsched.torch import ParamScheduler

    optimizer = optimizer_of(1e-3, groups=2)
    scheduler = ParamScheduler(optimizer, schedule)
    seen = [[g["lr"] for g in optimizer.param_groups]]
    for n in range(1, steps + 1):
        optimizer.step()
        scheduler.step()
        seen.append([g["lr"] for g in optimizer.param_groups])
        if n == at:
            state, groups = scheduler.state_dict(), optimizer.state_dict()
    assert seen == expected
    resumed = optimizer_of(5e-4, groups=2)
    again = ParamScheduler(resumed, other)
    resumed.load_state_dict(groups)
    again.load_state_dict(state)
    assert [g["lr"] for g in resumed.param_groups] == expected[at]
    for n in range(at + 1, steps + 1):
        resumed.step()
        again.step()
        assert [g["lr"] for g in resumed.param_groups] == expected[n]
