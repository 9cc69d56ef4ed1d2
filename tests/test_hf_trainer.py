"""Hugging Face Trainer: optimizers=(optimizer, ParamScheduler), stopped and resumed with
resume_from_checkpoint (which reloads the scheduler with torch.load(weights_only=True)),
gives the same learning rate at every step as an uninterrupted run; resumed from the
parent's checkpoint with the scheduler on a branch, it gives the branch's. Its metrics,
added to every training log by Trainer.log, are the values each optimizer step used,
and a token clock fed from training_step counts the tokens of every batch, resumed too.

The Trainer's order in an optimizer step: on_step_begin, training_step for each
micro-batch, gradient clipping (max_grad_norm), on_pre_optimizer_step,
optimizer.step(), on_optimizer_step, the scheduler's step(), global_step += 1,
on_step_end, then log (on_log, every callback in turn) and save."""

# ruff: noqa: E402  (the imports below need torch, checked first)
from __future__ import annotations

import logging
import os
import warnings

import pytest

torch = pytest.importorskip("torch")  # optional for paramsched; the rest needs it

transformers = pytest.importorskip("transformers")  # a test dependency; installed in CI
from conftest import check_branch_rates  # noqa: E402
from frameworks import (  # noqa: E402
    BATCH_SIZE,
    BY_SAMPLES,
    BY_TOKENS,
    Sequences,
    Used,
    groups,
    masked_loss,
    pad,
    running_sums,
)
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from paramsched import Schedule  # noqa: E402
from paramsched.torch import ParamScheduler  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SCHEDULE = Schedule(
    max_lr=1e-3,
    min_lr=1e-4,
    lr_warmup_steps=4,
    lr_decay_steps=24,
    lr_decay_style="cosine",
    start_wd=0.0,
    end_wd=0.1,
    wd_incr_steps=24,
    wd_incr_style="cosine",
)


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

    def on_pre_optimizer_step(
        self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs
    ):
        self.seen[state.global_step] = [
            (g["lr"], g["weight_decay"]) for g in optimizer.param_groups
        ]
        self.positions[state.global_step] = lr_scheduler.num_steps
        self.overrides = [
            {k: g[k] for k in ("max_lr", "min_lr") if k in g} for g in optimizer.param_groups
        ]


def train(output, max_steps, resume=None, schedule=SCHEDULE, record=None):
    model = Tiny()
    optimizer = torch.optim.AdamW(
        [
            {"params": [model.layer.weight]},
            {"params": [model.layer.bias], "wd_mult": 0.0, "max_lr": 2e-3, "min_lr": 0.0},
        ]
    )
    scheduler = ParamScheduler(optimizer, schedule)
    arguments = TrainingArguments(
        output_dir=str(output),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        save_strategy="steps",
        save_steps=11,
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        seed=0,
        dataloader_num_workers=0,
    )
    record = Record() if record is None else record
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Data(),
        optimizers=(optimizer, scheduler),
        callbacks=[record],
    )
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
    branch = SCHEDULE.branch(15, [{"shape": "linear", "to": "min_lr", "until": "20 steps"}])
    train(tmp_path, 11)  # the parent, to checkpoint-11, before the branch point
    record = Record()
    train(tmp_path, 30, resume=str(tmp_path / "checkpoint-11"), schedule=branch, record=record)
    assert sorted(record.seen) == list(range(11, 30))
    assert [record.positions[step] for step in range(11, 30)] == list(range(11, 30))
    # Past the branch point the two differ, for every group, and the resumed run is the
    # branch's: the checkpoint's schedule did not replace it.
    assert check_branch_rates(record, branch, SCHEDULE, 15) == list(range(16, 24))


class TokenModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x, labels, attention_mask):
        return {"loss": masked_loss(self.layer, x, labels, attention_mask)}


class ScheduledTrainer(Trainer):
    """Adds the scheduler's metrics to every training log, where every callback and
    log_history see them; clips gradients at the scheduled grad_clip; and, on a token
    clock, gives the scheduler each micro-batch's tokens before it trains on it."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.args.max_grad_norm = self.lr_scheduler.value("grad_clip")
        if self.lr_scheduler.clock.counts_tokens:
            self.lr_scheduler.add_tokens(int(inputs["attention_mask"].sum()))
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training step's log (not the summary at the end)
            logs.update(self.lr_scheduler.metrics())
        super().log(logs, *args, **kwargs)


class Counting(Trainer):
    """Counts each step's real tokens into `tokens`, touching nothing else."""

    def __init__(self, *args, tokens, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokens = tokens

    def training_step(self, model, inputs, num_items_in_batch=None):
        step = self.state.global_step
        self.tokens[step] = self.tokens.get(step, 0) + int(inputs["attention_mask"].sum())
        return super().training_step(model, inputs, num_items_in_batch)


class CountingScheduled(Counting, ScheduledTrainer):
    """A `ScheduledTrainer` that counts each step's tokens too."""


class Kept(TrainerCallback):
    """By step index: each training log, and what a callback would have read from the
    scheduler then (its get_last_lr(), its clock); each step's grad clip, and the
    tokens `Counting` counts."""

    def __init__(self):
        self.logs, self.last_lr, self.positions, self.clips, self.tokens = {}, {}, {}, {}, {}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.clips[state.global_step] = args.max_grad_norm

    def on_log(self, args, state, control, logs=None, lr_scheduler=None, **kwargs):
        if "loss" in logs:
            self.logs[state.global_step - 1] = dict(logs)
            self.last_lr[state.global_step - 1] = lr_scheduler.get_last_lr()
            self.positions[state.global_step - 1] = lr_scheduler.num_steps


def train_scheduled(output, schedule, max_steps, resume=None, callback=False):
    """A `ScheduledTrainer` on sequences of many lengths, logging every step and saving
    every 11; what was used, what was kept, and the trainer. With `callback`, a plain
    Trainer counting tokens itself, with `ScheduledValues` registered first instead."""
    model = TokenModel()
    model.main_input_name = "x"  # what the Trainer counts tokens of
    optimizer = torch.optim.AdamW(groups(model.layer.weight, model.layer.bias))
    counting = {"include_num_input_tokens_seen": "non_padding"} if callback else {}
    arguments = TrainingArguments(
        output_dir=str(output),
        max_steps=max_steps,
        per_device_train_batch_size=BATCH_SIZE,
        save_strategy="steps",
        save_steps=11,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        seed=0,
        dataloader_num_workers=0,
        **counting,
    )
    kept = Kept()  # with `callback`, it stands for an integration: registered after it
    trainer = (Counting if callback else CountingScheduled)(
        model=model,
        args=arguments,
        train_dataset=Sequences(),
        data_collator=pad,
        optimizers=(optimizer, ParamScheduler(optimizer, schedule)),
        callbacks=[kept],
        tokens=kept.tokens,
    )
    if callback:
        trainer.callback_handler.callbacks.insert(0, ScheduledValues())
    used = Used(lambda: trainer.state.global_step)
    used.attach(optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=resume)
    return used.steps, kept, trainer


def logged_metrics(logs: dict) -> dict:
    """The scheduler's part of a training log."""
    return {
        key: value
        for key, value in logs.items()
        if "/" in key or key in ("grad_clip", "batch_size")
    }


def test_logged_metrics_are_the_values_each_optimizer_step_used(tmp_path):
    used, kept, trainer = train_scheduled(tmp_path, BY_SAMPLES, 40)
    assert sorted(used) == sorted(kept.logs) == list(range(40))
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in history] == list(range(1, 41))
    for step, values in used.items():
        expected = {**values, "grad_clip": kept.clips[step], "batch_size": BATCH_SIZE}
        assert logged_metrics(kept.logs[step]) == expected, step
        assert logged_metrics(history[step]) == expected, step
        assert kept.positions[step] == BATCH_SIZE * (step + 1)
    assert len(set(kept.clips.values())) == 40
    # What a callback reading the scheduler in on_log gets, get_last_lr(), is the next
    # step's learning rates, already written: a step ahead of what was used.
    for step in range(39):
        assert kept.last_lr[step] == [used[step + 1]["lr/weights"], used[step + 1]["lr/bias"]]
    assert sum(kept.last_lr[step][0] != kept.logs[step]["lr/weights"] for step in range(40)) >= 35


def test_a_token_clock_counts_each_batchs_tokens_and_resumes_exactly(tmp_path):
    used, kept, _ = train_scheduled(tmp_path / "straight", BY_TOKENS, 40)
    assert sorted(kept.tokens) == list(range(40))
    assert len(set(kept.tokens.values())) >= 10  # batches of many lengths
    counts = [kept.tokens[step] for step in range(40)]
    assert [kept.positions[step] for step in range(40)] == running_sums(counts)
    for step, values in used.items():
        assert logged_metrics(kept.logs[step]) == {**values, "grad_clip": kept.clips[step]}
    train_scheduled(tmp_path / "stopped", BY_TOKENS, 11)  # saves checkpoint-11 and stops
    resumed_used, resumed, _ = train_scheduled(
        tmp_path / "stopped", BY_TOKENS, 40, resume=str(tmp_path / "stopped" / "checkpoint-11")
    )
    assert sorted(resumed_used) == list(range(11, 40))
    assert resumed_used == {step: used[step] for step in range(11, 40)}
    for name in ("logs", "positions", "clips", "tokens"):
        whole = getattr(kept, name)
        assert getattr(resumed, name) == {step: whole[step] for step in range(11, 40)}, name


class AddMetrics(TrainerCallback):
    """The callback form: adds the metrics to each training log in on_log."""

    def on_log(self, args, state, control, logs=None, lr_scheduler=None, **kwargs):
        if "loss" in logs:
            logs.update(lr_scheduler.metrics())


def test_a_callback_adds_the_metrics_for_the_callbacks_after_it_only(tmp_path):
    # The Trainer puts the report_to integrations (TensorBoard, W&B...) before the
    # callbacks it is given, and log_history takes a copy before on_log: a callback's
    # additions reach neither, which is why ScheduledTrainer overrides Trainer.log.
    model = TokenModel()
    optimizer = torch.optim.AdamW(groups(model.layer.weight, model.layer.bias))
    arguments = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=5,
        per_device_train_batch_size=BATCH_SIZE,
        save_strategy="no",
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    before, after = Kept(), Kept()
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Sequences(),
        data_collator=pad,
        optimizers=(optimizer, ParamScheduler(optimizer, BY_SAMPLES)),
        callbacks=[before, AddMetrics(), after],
    )
    used = Used(lambda: trainer.state.global_step)
    used.attach(optimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    for step in range(5):
        metrics = logged_metrics(after.logs[step])
        assert set(metrics) == {*used.steps[step], "grad_clip", "batch_size"}
        assert {key: metrics[key] for key in used.steps[step]} == used.steps[step]
    assert all(logged_metrics(before.logs[step]) == {} for step in range(5))
    assert all(logged_metrics(entry) == {} for entry in trainer.state.log_history)


class ScheduledValues(TrainerCallback):
    """The callback form docs/how-to/log-the-rate.md shows: feeds a token clock the tokens the Trainer
    counts itself (include_num_input_tokens_seen), clips at the scheduled grad_clip, and
    adds what each step used to its log, for the callbacks after it (registered first,
    that is every report_to integration) and for log_history, which copied the log."""

    def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        self.tokens_before = state.num_input_tokens_seen
        args.max_grad_norm = lr_scheduler.value("grad_clip")

    def on_optimizer_step(self, args, state, control, lr_scheduler=None, **kwargs):
        if lr_scheduler.clock.counts_tokens:
            lr_scheduler.add_tokens(state.num_input_tokens_seen - self.tokens_before)

    def on_log(self, args, state, control, logs=None, lr_scheduler=None, **kwargs):
        if "loss" in logs:
            values = lr_scheduler.metrics()
            logs.update(values)
            state.log_history[-1].update(values)


@pytest.mark.parametrize("schedule", [BY_SAMPLES, BY_TOKENS], ids=["samples", "tokens"])
def test_the_callback_logs_what_each_step_used_and_feeds_the_token_clock(tmp_path, schedule):
    used, kept, trainer = train_scheduled(tmp_path / "straight", schedule, 40, callback=True)
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    batch = {"batch_size": BATCH_SIZE} if schedule is BY_SAMPLES else {}
    for step, values in used.items():
        expected = {**values, "grad_clip": kept.clips[step], **batch}
        assert logged_metrics(kept.logs[step]) == expected, step
        assert logged_metrics(history[step]) == expected, step
    if schedule is BY_TOKENS:
        counts = [kept.tokens[step] for step in range(40)]
        assert len(set(counts)) >= 10
        assert [kept.positions[step] for step in range(40)] == running_sums(counts)
    train_scheduled(tmp_path / "stopped", schedule, 11, callback=True)
    resumed_used, resumed, _ = train_scheduled(
        tmp_path / "stopped",
        schedule,
        40,
        resume=str(tmp_path / "stopped" / "checkpoint-11"),
        callback=True,
    )
    assert resumed_used == {step: used[step] for step in range(11, 40)}
    for name in ("logs", "positions", "clips"):
        whole = getattr(kept, name)
        got = getattr(resumed, name)
        if name == "logs":  # the Trainer's own timings differ; the scheduled values do not
            whole = {k: logged_metrics(v) for k, v in whole.items()}
            got = {k: logged_metrics(v) for k, v in got.items()}
        assert got == {step: whole[step] for step in range(11, 40)}, name
