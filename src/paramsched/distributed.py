"""torch.distributed: every rank must run the same schedule at the same step.

Both schedulers are ``torch.distributed.checkpoint`` stateful objects as they
are (they have ``state_dict`` and ``load_state_dict``, and their state is plain
data). `check_consistent` catches the costly failure of a rank launched with a
different flag: it compares every rank's schedule and step.
"""

from __future__ import annotations

from .errors import ScheduleError
from .schedule import Schedule


def _fields(scheduler) -> dict:
    """What must agree across ranks, flattened to ``{path: value}``."""
    core = getattr(scheduler, "core", scheduler)  # a ParamScheduler wraps the core scheduler
    schedule = core.schedule
    data = schedule.to_dict() if isinstance(schedule, Schedule) else {
        "kind": "phases", **schedule.to_dict()}
    flat: dict = {}

    def walk(value, path):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        else:
            flat[path] = value

    walk(data, "")
    flat["num_steps"] = core.num_steps
    if hasattr(scheduler, "samples_per_step"):
        flat["samples_per_step"] = scheduler.samples_per_step
    return flat


def check_consistent(scheduler, group=None) -> None:
    """Raises unless every rank of `group` holds the same schedule at the same step.

    Args:
        scheduler: An `OptimizerParamScheduler` or a `paramsched.torch.ParamScheduler`.
        group: The process group; the default group if None.

    Raises:
        ScheduleError: (a ValueError) naming every field that differs and which ranks
            hold which value; or torch.distributed is not initialized.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ScheduleError("check_consistent needs torch.distributed initialized; expected a "
                            "call after init_process_group on every rank")
    mine = _fields(scheduler)
    gathered: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, mine, group=group)
    problems = []
    for path in sorted(set().union(*gathered)):
        holders: dict = {}
        for rank, fields in enumerate(gathered):
            holders.setdefault(repr(fields.get(path, "<missing>")), []).append(rank)
        if len(holders) > 1:
            problems.append(f"{path}: " + "; ".join(
                f"rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} "
                f"{'have' if len(ranks) > 1 else 'has'} {value}"
                for value, ranks in holders.items()))
    if problems:
        raise ScheduleError("schedulers differ across ranks: " + " | ".join(problems)
                            + "; expected every rank launched with the same schedule")
