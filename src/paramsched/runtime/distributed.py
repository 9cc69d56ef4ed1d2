"""torch.distributed: every rank must run the same schedule at the same step.

Both schedulers are ``torch.distributed.checkpoint`` (DCP) stateful objects as
they are (they have ``state_dict`` and ``load_state_dict``, and their state is
plain data). DCP loads into the structure of the *current* ``state_dict()``, so
paramsched keeps that structure fixed for each kind of schedule and stores a
schedule as one leaf: a checkpoint loads whole or not at all. Across kinds (a
Megatron `Schedule` saved, a phase schedule given, or the reverse) the keys
differ and DCP refuses; `read_checkpoint` then reads the saved state as it was
written, for ``load_state_dict`` and its checkpoint policy.

`check_consistent` catches the costly failure of a rank launched with a
different flag: it compares every rank's schedule and step (and, on a token
clock, the tokens recorded for the coming step).
"""

from __future__ import annotations

from ..errors import ScheduleError


def _fields(scheduler) -> dict:
    """What must agree across ranks, flat ``{path: value}``: the schedule's fields (its
    meaning, so two spellings of one schedule agree), its kind, the step, the clock and,
    on a token clock, the tokens recorded for the coming step (`ParamScheduler.add_tokens`)."""
    core = getattr(scheduler, "core", scheduler)  # a ParamScheduler wraps the core scheduler
    flat = {"kind": core.schedule.describe(), **core.schedule.fields(), "num_steps": core.num_steps}
    clock = getattr(scheduler, "clock", None)
    if clock is not None:
        flat["clock"] = clock.describe()
        if clock.counts_tokens:  # where the coming step goes: the position plus these
            flat["pending_tokens"] = scheduler.pending_tokens
            flat["tokens_recorded"] = scheduler._pending_tokens is not None
    return flat


def read_checkpoint(checkpoint_id, key: str = "scheduler") -> dict:
    """A scheduler's state as a DCP checkpoint holds it, whatever the current scheduler.

    For a checkpoint DCP will not load into the scheduler at hand (another kind of
    schedule, or a format older than the scheduler's): pass the result to
    ``scheduler.load_state_dict``, which applies the checkpoint policy.

    Args:
        checkpoint_id: The checkpoint's directory, as given to ``dcp.save``.
        key: Where the scheduler was saved in the saved dict (``"scheduler"`` for
            ``dcp.save({"scheduler": scheduler, ...})``).

    Raises:
        ScheduleError: the checkpoint holds nothing under `key`.
    """
    import torch.distributed.checkpoint as dcp

    metadata = dcp.FileSystemReader(str(checkpoint_id)).read_metadata()
    nested: dict = {}
    for fqn in metadata.state_dict_metadata:
        if not fqn.startswith(key + "."):
            continue
        *parents, leaf = fqn[len(key) + 1 :].split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None  # replaced by the saved value
    if not nested:
        raise ScheduleError(
            f"checkpoint {str(checkpoint_id)!r} holds nothing under key={key!r};"
            " expected the key the scheduler was saved under"
        )
    loaded = {key: nested}
    dcp.load(loaded, checkpoint_id=checkpoint_id)
    return loaded[key]


def check_consistent(scheduler, group=None) -> None:
    """Raises unless every rank of `group` holds the same schedule at the same step
    (on a token clock, with the same tokens recorded for the coming step).

    Args:
        scheduler: An `OptimizerParamScheduler` or a `paramsched.torch.ParamScheduler`.
        group: The process group; the default group if None.

    Raises:
        ScheduleError: (a ValueError) naming every field that differs and which ranks
            hold which value; or torch.distributed is not initialized.

    Examples:
        >>> from paramsched import OptimizerParamScheduler, Schedule
        >>> class Optimizer:
        ...     param_groups = [{"params": []}]
        >>> scheduler = OptimizerParamScheduler.from_schedule(
        ...     Optimizer(), Schedule(max_lr=1.0, lr_decay_steps=10, lr_decay_style="linear"))
        >>> check_consistent(scheduler)  # without init_process_group
        Traceback (most recent call last):
        ...
        paramsched.errors.ScheduleError: check_consistent needs torch.distributed initialized; expected a call after init_process_group on every rank
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ScheduleError(
            "check_consistent needs torch.distributed initialized; expected a "
            "call after init_process_group on every rank"
        )
    mine = _fields(scheduler)
    gathered: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, mine, group=group)
    problems = []
    missing = "<missing>"
    for path in sorted(set().union(*gathered)):
        holders: list = []  # [value, ranks], values compared with == (10 and 10.0 agree)
        for rank, fields in enumerate(gathered):
            value = fields.get(path, missing)
            for holder in holders:
                if holder[0] == value:
                    holder[1].append(rank)
                    break
            else:
                holders.append([value, [rank]])
        if len(holders) > 1:
            problems.append(
                f"{path}: "
                + "; ".join(
                    f"rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} "
                    f"{'have' if len(ranks) > 1 else 'has'} {value!r}"
                    for value, ranks in holders
                )
            )
    if problems:
        raise ScheduleError(
            "schedulers differ across ranks: "
            + " | ".join(problems)
            + "; expected every rank launched with the same schedule"
        )
