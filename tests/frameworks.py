"""Shared pieces of the framework tests (Lightning and the Hugging Face Trainer): schedules
with a group value and a loop value, data of sequences of many lengths, and what the
optimizer held each time it stepped. Imported once torch is known to be there."""

from __future__ import annotations

import torch

from paramsched import PhaseSchedule


def scheduled(run: dict) -> PhaseSchedule:
    """A schedule over `run` (its ``total`` is 100%) with a warmup and a cosine for lr,
    a rising weight decay, Adam's ``betas[1]`` in the groups and ``grad_clip`` for the
    loop, all moving over the whole run."""
    return PhaseSchedule.from_dict(
        {
            "run": run,
            "lr": {
                "max_lr": 1e-3,
                "min_lr": 1e-4,
                "phases": [
                    {"shape": "linear", "to": "max_lr", "until": "15%"},
                    {"shape": "cosine", "to": "min_lr", "until": "100%"},
                ],
            },
            "wd": {"start_wd": 0.0, "end_wd": 0.1, "style": "linear"},
            "group": {
                "betas[1]": {
                    "start": 0.95,
                    "end": 0.99,
                    "phases": [{"shape": "linear", "to": "end", "until": "100%"}],
                }
            },
            "loop": {
                "grad_clip": {
                    "start": 0.05,
                    "phases": [{"shape": "cosine", "to": 0.5, "until": "100%"}],
                }
            },
        }
    )


#: 40 steps of 4 samples: the clock counts samples.
BY_SAMPLES = scheduled({"global_batch_size": 4, "total": "40 steps"})
#: A live token clock: each step advances by the tokens its batch really held.
BY_TOKENS = scheduled({"clock": "tokens", "total": "1000 tokens"})

BATCH_SIZE = 4


def groups(weight, bias) -> list[dict]:
    """Two named groups, the bias without weight decay and with its own peak lr."""
    return [
        {"params": [weight], "name": "weights"},
        {"params": [bias], "name": "bias", "wd_mult": 0.0, "max_lr": 2e-3, "min_lr": 0.0},
    ]


def held(optimizer) -> dict:
    """What `optimizer` holds, named as `ParamScheduler.metrics` names it."""
    found = {}
    for group in optimizer.param_groups:
        name = group["name"]
        found[f"lr/{name}"] = group["lr"]
        found[f"weight_decay/{name}"] = group["weight_decay"]
        found[f"betas[1]/{name}"] = group["betas"][1]
    return found


class Used:
    """What the optimizer held each time it stepped, by the index of the step (`index`
    says it: the framework's count of steps taken before this one), captured by an
    optimizer step pre-hook: the values the step really used."""

    def __init__(self, index):
        self.index, self.steps = index, {}

    def attach(self, optimizer) -> None:
        optimizer.register_step_pre_hook(self)

    def __call__(self, optimizer, args, kwargs) -> None:
        self.steps[self.index()] = held(optimizer)


class Sequences(torch.utils.data.Dataset):
    """Sequences of 1 to 12 tokens of 4 features, each token with a target."""

    def __init__(self, count: int = 64):
        generator = torch.Generator().manual_seed(0)
        lengths = torch.randint(1, 13, (count,), generator=generator).tolist()
        self.items = [
            {
                "x": torch.randn(n, 4, generator=generator),
                "labels": torch.randn(n, 1, generator=generator),
            }
            for n in lengths
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def pad(items: list[dict]) -> dict:
    """A batch of `Sequences` items, padded to the longest, with an ``attention_mask``
    whose sum is the batch's real token count."""
    longest = max(len(item["x"]) for item in items)
    batch = {
        "x": torch.zeros(len(items), longest, 4),
        "labels": torch.zeros(len(items), longest, 1),
        "attention_mask": torch.zeros(len(items), longest, dtype=torch.long),
    }
    for row, item in enumerate(items):
        length = len(item["x"])
        batch["x"][row, :length] = item["x"]
        batch["labels"][row, :length] = item["labels"]
        batch["attention_mask"][row, :length] = 1
    return batch


def masked_loss(layer, x, labels, attention_mask):
    """The mean squared error over the real tokens."""
    mask = attention_mask.unsqueeze(-1).to(x.dtype)
    return ((layer(x) - labels) ** 2 * mask).sum() / mask.sum()


def running_sums(counts: list[int]) -> list[int]:
    """The clock after each of `counts`' steps, from 0."""
    sums, total = [], 0
    for count in counts:
        total += count
        sums.append(total)
    return sums
