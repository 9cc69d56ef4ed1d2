"""torch.distributed on the CPU (gloo, 2 ranks, started with torch.multiprocessing): a
torch.distributed.checkpoint save and a restart continue with the same learning rates, and
check_consistent names the ranks and fields that disagree."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import json
import os
import socket

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from paramsched import PhaseSchedule, Schedule, ScheduleError
from paramsched.distributed import check_consistent
from paramsched.torch import ParamScheduler

pytestmark = [pytest.mark.torch, pytest.mark.slow]

WORLD = 2


def schedule(max_lr=1e-3):
    return Schedule(
        max_lr=max_lr,
        min_lr=1e-4,
        lr_warmup_steps=3,
        lr_decay_steps=20,
        lr_decay_style="cosine",
        start_wd=0.0,
        end_wd=0.1,
        wd_incr_steps=20,
        wd_incr_style="linear",
    )


TOKENS = PhaseSchedule.from_dict(
    {
        "run": {"clock": "tokens", "total": "1000 tokens"},
        "lr": {"max_lr": 1e-3, "phases": [{"shape": "linear", "to": "max_lr", "until": "100%"}]},
    }
)


def build(max_lr=1e-3):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(
        [{"params": [model.weight]}, {"params": [model.bias], "wd_mult": 0.0}]
    )
    return model, optimizer, ParamScheduler(optimizer, schedule(max_lr), samples_per_step=2)


def train(model, optimizer, scheduler, steps):
    seen = []
    for _ in range(steps):
        model(torch.ones(3, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
        seen.append([(g["lr"], g["weight_decay"]) for g in optimizer.param_groups])
    return seen


def worker(rank, port, task, directory):
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        if task == "save":
            model, optimizer, scheduler = build()
            train(model, optimizer, scheduler, 7)
            model_state, optimizer_state = get_state_dict(model, optimizer)
            dcp.save(
                {"model": model_state, "optimizer": optimizer_state, "scheduler": scheduler},
                checkpoint_id=os.path.join(directory, "ckpt"),
            )
        elif task == "resume":
            model, optimizer, scheduler = build()
            model_state, optimizer_state = get_state_dict(model, optimizer)
            state = {"model": model_state, "optimizer": optimizer_state, "scheduler": scheduler}
            dcp.load(state, checkpoint_id=os.path.join(directory, "ckpt"))
            set_state_dict(
                model,
                optimizer,
                model_state_dict=state["model"],
                optim_state_dict=state["optimizer"],
            )
            check_consistent(scheduler)
            seen = train(model, optimizer, scheduler, 10)
            with open(os.path.join(directory, f"rank{rank}.json"), "w") as file:
                json.dump({"num_steps": scheduler.num_steps, "seen": seen}, file)
        else:
            if task == "mismatch":  # one rank launched with another flag
                _, _, scheduler = build(max_lr=2e-3 if rank == 1 else 1e-3)
            else:  # both at 100 tokens, the coming step at 100 on rank 0 and 101 on rank 1
                model = torch.nn.Linear(4, 2)
                scheduler = ParamScheduler(torch.optim.SGD(model.parameters()), TOKENS)
                scheduler.step(tokens=100)
                for tokens in (0, 1)[: rank + 1]:
                    scheduler.add_tokens(tokens)
            try:
                check_consistent(scheduler)
                message = None
            except ScheduleError as error:
                message = str(error)
            with open(os.path.join(directory, f"rank{rank}.json"), "w") as file:
                json.dump({"error": message}, file)
    finally:
        dist.destroy_process_group()


def launch(task, directory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.start_processes(
        worker, args=(port, task, str(directory)), nprocs=WORLD, join=True, start_method="spawn"
    )


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "ERROR")


def test_checkpoint_and_restart_continue_with_the_same_learning_rates(tmp_path):
    expected = train(*build(), 17)
    launch("save", tmp_path)
    launch("resume", tmp_path)
    for rank in range(WORLD):
        with open(tmp_path / f"rank{rank}.json") as file:
            result = json.load(file)
        assert result["num_steps"] == 34
        assert [[tuple(pair) for pair in step] for step in result["seen"]] == expected[7:]


def errors_of_every_rank(kind: str, tmp_path) -> list[str]:
    """The error each rank of a launch of `kind` reported."""
    launch(kind, tmp_path)
    found = []
    for rank in range(WORLD):
        with open(tmp_path / f"rank{rank}.json") as file:
            found.append(json.load(file)["error"])
    return found


def test_a_rank_with_another_flag_is_named(tmp_path):
    assert errors_of_every_rank("mismatch", tmp_path) == WORLD * [
        "schedulers differ across ranks: max_lr: rank 0 has 0.001; rank 1 has 0.002; "
        "expected every rank launched with the same schedule"
    ]


def test_ranks_with_different_tokens_recorded_for_the_coming_step_are_named(tmp_path):
    # Both at 100 tokens, one with a token recorded for the coming step: the next step
    # would take them to 100 and 101, and check_consistent passed them.
    assert errors_of_every_rank("pending", tmp_path) == WORLD * [
        "schedulers differ across ranks: pending_tokens: rank 0 has 0; rank 1 has 1; "
        "expected every rank launched with the same schedule"
    ]


def test_outside_a_process_group():
    with pytest.raises(ScheduleError, match="check_consistent needs torch.distributed"):
        check_consistent(build()[2])
