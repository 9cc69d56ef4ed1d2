"""Hugging Face Trainer: optimizers=(optimizer, ParamScheduler), stopped and resumed with
resume_from_checkpoint (which reloads the scheduler with torch.load(weights_only=True)),
gives the same learning rate at every step as an uninterrupted run; resumed from the
parent's checkpoint with the scheduler on a branch, it gives the branch's."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import logging
import os
import warnings

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

transformers = pytest.importorskip("transformers")  # a test dependency; installed in CI
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from conftest import check_branch_rates  # noqa: E402
from paramsched import Schedule  # noqa: E402
from paramsched.torch import ParamScheduler  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SCHEDULE = Schedule(max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=4, lr_decay_steps=24,
                    lr_decay_style="cosine", start_wd=0.0, end_wd=0.1, wd_incr_steps=24,
                    wd_incr_style="cosine")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x, labels):
        return {"loss": torch.nn.functional.mse_loss(self.layer(x), labels)}


class Data(torch.utils.data.Dataset):
    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(512, 4, generator=generator)
        self.y = torch.randn(512, 1, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return {"x": self.x[index], "labels": self.y[index]}


class Record(TrainerCallback):
    """The lr and weight decay each optimizer step uses, by the step about to happen; the
    scheduler's clock position they are for; each group's lr overrides."""

    def __init__(self):
        self.seen, self.positions, self.overrides = {}, {}, []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, lr_scheduler=None,
                              **kwargs):
        self.seen[state.global_step] = [(g["lr"], g["weight_decay"])
                                        for g in optimizer.param_groups]
        self.positions[state.global_step] = lr_scheduler.num_steps
        self.overrides = [{k: g[k] for k in ("max_lr", "min_lr") if k in g}
                          for g in optimizer.param_groups]


def train(output, max_steps, resume=None, schedule=SCHEDULE, record=None):
    model = Tiny()
    optimizer = torch.optim.AdamW([
        {"params": [model.layer.weight]},
        {"params": [model.layer.bias], "wd_mult": 0.0, "max_lr": 2e-3, "min_lr": 0.0},
    ])
    scheduler = ParamScheduler(optimizer, schedule)
    arguments = TrainingArguments(
        output_dir=str(output), max_steps=max_steps, per_device_train_batch_size=4,
        save_strategy="steps", save_steps=11, logging_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, remove_unused_columns=False, seed=0,
        dataloader_num_workers=0,
    )
    record = Record() if record is None else record
    trainer = Trainer(model=model, args=arguments, train_dataset=Data(),
                      optimizers=(optimizer, scheduler), callbacks=[record])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=resume)
    return record.seen


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("WANDB_DISABLED", "true")
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def test_resumed_run_has_the_uninterrupted_runs_learning_rates(tmp_path):
    straight = train(tmp_path / "straight", 30)
    assert sorted(straight) == list(range(30))
    stopped = train(tmp_path / "stopped", 11)  # saves checkpoint-11 and stops
    checkpoint = tmp_path / "stopped" / "checkpoint-11"
    assert os.path.exists(checkpoint / "scheduler.pt")
    resumed = train(tmp_path / "stopped", 30, resume=str(checkpoint))
    assert sorted(resumed) == list(range(11, 30))
    assert {**stopped, **resumed} == straight
    assert len({v[0][0] for v in straight.values()}) >= 20


def test_a_branch_resumed_from_the_parents_checkpoint_has_the_branchs_learning_rates(tmp_path):
    # A cooldown from step 15 of the cosine decay, to min_lr at step 20. SCHEDULE has no
    # run and counts optimizer steps, and so does its branch.
    branch = SCHEDULE.branch(15, [{"shape": "linear", "to": "min_lr", "until": "20 samples"}])
    train(tmp_path, 11)  # the parent, to checkpoint-11, before the branch point
    record = Record()
    train(tmp_path, 30, resume=str(tmp_path / "checkpoint-11"), schedule=branch, record=record)
    assert sorted(record.seen) == list(range(11, 30))
    assert [record.positions[step] for step in range(11, 30)] == list(range(11, 30))
    # Past the branch point the two differ, for every group, and the resumed run is the
    # branch's: the checkpoint's schedule did not replace it.
    assert check_branch_rates(record, branch, SCHEDULE, 15) == list(range(16, 24))
