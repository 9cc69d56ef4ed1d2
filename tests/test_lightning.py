"""PyTorch Lightning: ParamScheduler from configure_optimizers, stopped and resumed from a
checkpoint (ckpt_path), gives the same learning rate at every step as an uninterrupted run;
resumed from the parent's checkpoint with the scheduler on a branch, it gives the branch's."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import logging
import warnings

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

lightning = pytest.importorskip("lightning")  # a test dependency; installed in CI
from lightning.pytorch import LightningModule, Trainer  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from conftest import check_branch_rates  # noqa: E402
from paramsched import Schedule  # noqa: E402
from paramsched.torch import ParamScheduler  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SCHEDULE = Schedule(max_lr=1e-3, min_lr=1e-4, lr_warmup_steps=5, lr_decay_steps=30,
                    lr_decay_style="WSD", wsd_decay_steps=12, lr_wsd_decay_style="cosine",
                    start_wd=0.0, end_wd=0.1, wd_incr_steps=30, wd_incr_style="linear")


class Tiny(LightningModule):
    def __init__(self, schedule=SCHEDULE):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)
        self.schedule = schedule

    def training_step(self, batch, batch_index):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW([
            {"params": [self.layer.weight]},
            {"params": [self.layer.bias], "wd_mult": 0.0, "max_lr": 2e-3, "min_lr": 0.0},
        ])
        scheduler = ParamScheduler(optimizer, self.schedule)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        data = torch.utils.data.TensorDataset(torch.randn(256, 4, generator=generator),
                                              torch.randn(256, 1, generator=generator))
        return torch.utils.data.DataLoader(data, batch_size=4)


class Record(Callback):
    """The lr and weight decay each optimizer step uses, by global step; the scheduler's
    clock position they are for; each group's lr overrides."""

    def __init__(self):
        self.seen, self.positions, self.overrides = {}, {}, []

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.seen[trainer.global_step] = [(g["lr"], g["weight_decay"])
                                          for g in optimizer.param_groups]
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.positions[trainer.global_step] = scheduler.num_steps
        self.overrides = [{k: g[k] for k in ("max_lr", "min_lr") if k in g}
                          for g in optimizer.param_groups]


def fit(max_steps, ckpt_path=None, save_to=None, module=None, record=None):
    record = Record() if record is None else record
    trainer = Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[record])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Tiny() if module is None else module, ckpt_path=ckpt_path)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return record.seen


@pytest.fixture(autouse=True)
def quiet():
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def test_resumed_run_has_the_uninterrupted_runs_learning_rates(tmp_path):
    straight = fit(40)
    assert len(straight) == 40
    checkpoint = tmp_path / "stop.ckpt"
    first = fit(17, save_to=checkpoint)
    resumed = fit(40, ckpt_path=str(checkpoint))
    assert sorted(resumed) == list(range(17, 40))
    assert {**first, **resumed} == straight
    # The schedule really moves over these steps: warmup, hold, anneal, floor.
    assert len({v[0][0] for v in straight.values()}) >= 18


def test_a_branch_resumed_from_the_parents_checkpoint_has_the_branchs_learning_rates(tmp_path):
    # A cooldown from step 12 of the stable phase, to min_lr at step 20. SCHEDULE has no
    # run and counts optimizer steps, and so does its branch.
    branch = SCHEDULE.branch(12, [{"shape": "linear", "to": "min_lr", "until": "20 samples"}])
    checkpoint = tmp_path / "parent.ckpt"
    fit(9, save_to=checkpoint)  # the parent, to step 9, before the branch point
    record = Record()
    fit(40, ckpt_path=str(checkpoint), module=Tiny(branch), record=record)
    assert sorted(record.seen) == list(range(9, 40))
    assert [record.positions[step] for step in range(9, 40)] == list(range(9, 40))
    # Past the branch point the two differ, for every group, and the resumed run is the
    # branch's: the checkpoint's schedule did not replace it.
    assert check_branch_rates(record, branch, SCHEDULE, 12) == list(range(13, 30))
