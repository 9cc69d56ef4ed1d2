"""PyTorch Lightning: ParamScheduler from configure_optimizers, stopped and resumed from a
checkpoint (ckpt_path), gives the same learning rate at every step as an uninterrupted run;
resumed from the parent's checkpoint with the scheduler on a branch, it gives the branch's.
Its metrics, logged from on_train_batch_end, are the values each optimizer step used, and
a token clock fed from on_train_batch_start counts the tokens of every batch, resumed too.

Lightning's order in a batch: on_train_batch_start, training_step (in the optimizer's
closure), on_before_optimizer_step, configure_gradient_clipping, optimizer.step(), the
scheduler's step() (interval "step"), on_train_batch_end, then the loggers."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import logging
import warnings

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

lightning = pytest.importorskip("lightning")  # a test dependency; installed in CI
from conftest import check_branch_rates  # noqa: E402
from frameworks import (  # noqa: E402
    BATCH_SIZE,
    BY_SAMPLES,
    BY_TOKENS,
    Sequences,
    Used,
    groups,
    held,
    masked_loss,
    pad,
    running_sums,
)
from lightning.pytorch import LightningModule, Trainer  # noqa: E402
from lightning.pytorch.callbacks import Callback, ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import Logger  # noqa: E402

from paramsched import Schedule  # noqa: E402
from paramsched.torch import ParamScheduler  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SCHEDULE = Schedule(
    max_lr=1e-3,
    min_lr=1e-4,
    lr_warmup_steps=5,
    lr_decay_steps=30,
    lr_decay_style="WSD",
    wsd_decay_steps=12,
    lr_wsd_decay_style="cosine",
    start_wd=0.0,
    end_wd=0.1,
    wd_incr_steps=30,
    wd_incr_style="linear",
)


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
        optimizer = torch.optim.AdamW(
            [
                {"params": [self.layer.weight]},
                {"params": [self.layer.bias], "wd_mult": 0.0, "max_lr": 2e-3, "min_lr": 0.0},
            ]
        )
        scheduler = ParamScheduler(optimizer, self.schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(0)
        data = torch.utils.data.TensorDataset(
            torch.randn(256, 4, generator=generator), torch.randn(256, 1, generator=generator)
        )
        return torch.utils.data.DataLoader(data, batch_size=4)


class Record(Callback):
    """The lr and weight decay each optimizer step uses, by global step; the scheduler's
    clock position they are for; each group's lr overrides."""

    def __init__(self):
        self.seen, self.positions, self.overrides = {}, {}, []

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.seen[trainer.global_step] = [
            (g["lr"], g["weight_decay"]) for g in optimizer.param_groups
        ]
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.positions[trainer.global_step] = scheduler.num_steps
        self.overrides = [
            {k: g[k] for k in ("max_lr", "min_lr") if k in g} for g in optimizer.param_groups
        ]


def fit(max_steps, ckpt_path=None, save_to=None, module=None, record=None):
    record = Record() if record is None else record
    trainer = Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record],
    )
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
    branch = SCHEDULE.branch(12, [{"shape": "linear", "to": "min_lr", "until": "20 steps"}])
    checkpoint = tmp_path / "parent.ckpt"
    fit(9, save_to=checkpoint)  # the parent, to step 9, before the branch point
    record = Record()
    fit(40, ckpt_path=str(checkpoint), module=Tiny(branch), record=record)
    assert sorted(record.seen) == list(range(9, 40))
    assert [record.positions[step] for step in range(9, 40)] == list(range(9, 40))
    # Past the branch point the two differ, for every group, and the resumed run is the
    # branch's: the checkpoint's schedule did not replace it.
    assert check_branch_rates(record, branch, SCHEDULE, 12) == list(range(13, 30))


class Scheduled(LightningModule):
    """Logs the scheduler's metrics for the step just taken (from on_train_batch_end, after
    Lightning stepped the scheduler), clips gradients at the scheduled grad_clip and, on a
    token clock, gives the scheduler each batch's tokens (from on_train_batch_start)."""

    def __init__(self, schedule):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)
        self.schedule = schedule
        self.used = Used(lambda: self.trainer.global_step)
        self.clips, self.tokens, self.positions, self.held_at_log = {}, {}, {}, {}

    def records(self):
        """By step: the values used, the clip, the tokens, the clock after the step."""
        return self.used.steps, self.clips, self.tokens, self.positions

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(groups(self.layer.weight, self.layer.bias))
        self.used.attach(optimizer)
        scheduler = ParamScheduler(optimizer, self.schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_train_batch_start(self, batch, batch_index):
        scheduler = self.lr_schedulers()
        if scheduler.clock.counts_tokens:
            tokens = int(batch["attention_mask"].sum())
            self.tokens[self.trainer.global_step] = tokens
            scheduler.add_tokens(tokens)

    def training_step(self, batch, batch_index):
        return masked_loss(self.layer, **batch)

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        clip = self.lr_schedulers().value("grad_clip")
        self.clips[self.trainer.global_step] = clip
        self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")

    def on_train_batch_end(self, outputs, batch, batch_index):
        scheduler = self.lr_schedulers()
        self.positions[self.trainer.global_step - 1] = scheduler.num_steps
        self.held_at_log[self.trainer.global_step - 1] = held(scheduler.optimizer)
        # As float64 tensors: self.log makes a Python float a float32 tensor.
        self.log_dict(
            {
                key: torch.tensor(value, dtype=torch.float64)
                for key, value in scheduler.metrics().items()
            }
        )

    def train_dataloader(self):
        return torch.utils.data.DataLoader(
            Sequences(32), batch_size=BATCH_SIZE, sampler=ByEpoch(32), collate_fn=pad
        )


class ByEpoch(torch.utils.data.Sampler):
    """Another order every epoch, the same in every run: Lightning sets the epoch, so a
    run resumed from a checkpoint saved at an epoch's end sees the batches of an
    uninterrupted one (resumed within an epoch, Lightning starts a plain DataLoader's
    epoch over: its batches would not be the uninterrupted run's)."""

    def __init__(self, count):
        self.count, self.epoch = count, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.count

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.epoch)
        return iter(torch.randperm(self.count, generator=generator).tolist())


class Logged(Logger):
    """A logger that keeps what Lightning logs, by step."""

    def __init__(self):
        super().__init__()
        self.steps = {}

    @property
    def name(self):
        return "kept"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.steps.setdefault(step, {}).update(
            {key: value for key, value in metrics.items() if key != "epoch"}
        )


def fit_scheduled(schedule, max_steps, ckpt_path=None, save_in=None):
    """A `Scheduled` module fitted to `max_steps`, logging every step and, with `save_in`,
    saving a checkpoint there every 8 steps (an epoch); the module and what was logged."""
    module, logged = Scheduled(schedule), Logged()
    saving = (
        []
        if save_in is None
        else [
            ModelCheckpoint(
                dirpath=save_in, filename="{step}", every_n_train_steps=8, save_top_k=-1
            )
        ]
    )
    trainer = Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=logged,
        log_every_n_steps=1,
        callbacks=saving,
        enable_checkpointing=bool(saving),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, ckpt_path=ckpt_path)
    return module, logged.steps


def test_logged_metrics_are_the_values_each_optimizer_step_used():
    module, logged = fit_scheduled(BY_SAMPLES, 40)
    assert sorted(logged) == sorted(module.used.steps) == list(range(40))
    for step, used in module.used.steps.items():
        assert logged[step] == {
            **used,
            "grad_clip": module.clips[step],
            "batch_size": BATCH_SIZE,
        }, step
        assert module.positions[step] == BATCH_SIZE * (step + 1)
    # When they were logged, the groups held the next step's values already (Lightning had
    # stepped the scheduler): logging what they held would have been a step ahead.
    for step in range(39):
        assert module.held_at_log[step] == module.used.steps[step + 1], step
    assert (
        sum(
            module.held_at_log[step]["lr/weights"] != logged[step]["lr/weights"]
            for step in range(40)
        )
        >= 35
    )
    assert len(set(module.clips.values())) == 40


def test_a_token_clock_counts_each_batchs_tokens_and_resumes_exactly(tmp_path):
    straight, logged = fit_scheduled(BY_TOKENS, 40, save_in=tmp_path)
    assert sorted(straight.tokens) == list(range(40))
    assert len(set(straight.tokens.values())) >= 10  # batches of many lengths
    counts = [straight.tokens[step] for step in range(40)]
    assert [straight.positions[step] for step in range(40)] == running_sums(counts)
    for step, used in straight.used.steps.items():
        assert logged[step] == {**used, "grad_clip": straight.clips[step]}, step
    # Resumed from the checkpoint the run saved at step 16, the end of an epoch.
    resumed, resumed_logged = fit_scheduled(BY_TOKENS, 40, str(tmp_path / "step=16.ckpt"))
    assert sorted(resumed.used.steps) == list(range(16, 40))
    for part, whole in zip(resumed.records(), straight.records()):
        assert part == {step: whole[step] for step in range(16, 40)}
    assert resumed_logged == {step: logged[step] for step in range(16, 40)}
