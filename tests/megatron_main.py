"""A reference for Megatron main (Megatron-Core 0.18 on): its step batch-size
schedule, the lengths its training script gives the scheduler, and its training loop.

Written for the tests from the behaviour of Megatron-LM's published code
(``megatron/core/num_microbatches_calculator.py``, ``megatron/training/arguments.py``
and ``megatron/training/training.py`` of August 2026), independently of paramsched:
megatron-core 0.16.1 has no step schedule, so it cannot be the oracle for these;
its ``OptimizerParamScheduler``, whose formulas main keeps, computes the values.
Megatron's refusals are its ``assert`` statements and ``ValueError``s; here each is a
`Refused`.
"""

from __future__ import annotations

from types import SimpleNamespace


class Refused(Exception):
    """Megatron stops: an assertion or a ValueError of its own."""


def number(text: str) -> int:
    """One number of the schedule string as Megatron reads it."""
    text = text.strip().upper()
    scale = 1
    for suffix, value in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if text.endswith(suffix):
            scale, text = value, text[:-1]
            break
    try:
        return int(float(text) * scale)
    except (ValueError, OverflowError) as error:
        raise Refused(f"cannot read {text!r}") from error


def parse(schedule: str, seq_length: int | None) -> list[tuple[int, int]]:
    """``(threshold in samples, batch size)`` pairs, sorted and validated."""
    pairs = []
    for entry in schedule.strip().replace(",", " ").split():
        if ":" not in entry:
            raise Refused(f"no ':' in {entry!r}")
        threshold, batch = entry.split(":", 1)
        threshold, batch = number(threshold), number(batch)
        if seq_length is not None:
            threshold //= seq_length
        pairs.append((threshold, batch))
    pairs.sort(key=lambda pair: pair[0])
    if not pairs or pairs[0][0] != 0:
        raise Refused("the first threshold must be 0")
    for index in range(1, len(pairs)):
        if pairs[index][0] <= pairs[index - 1][0]:
            raise Refused("thresholds must increase strictly")
    if any(batch <= 0 for _, batch in pairs):
        raise Refused("batch sizes must be positive")
    return pairs


def batch_size(pairs, consumed: int) -> int:
    """The batch size after `consumed` samples: the last stage whose threshold is reached."""
    size = pairs[0][1]
    for threshold, batch in pairs:
        if consumed < threshold:
            break
        size = batch
    return size


def train_iters(args, pairs) -> int:
    """``update_train_iters``: counted until the consumed samples reach --train-samples."""
    if args.train_iters:
        return args.train_iters
    iterations, consumed = 0, 0
    while consumed < args.train_samples:
        consumed += batch_size(pairs, consumed)
        iterations += 1
    return iterations


def validate(args) -> SimpleNamespace:
    """The arguments as ``validate_args`` leaves them, or `Refused`."""
    args = SimpleNamespace(**vars(args))
    if args.step_batch_size_schedule is not None and args.global_batch_size is not None:
        raise Refused("both --step-batch-size-schedule and --global-batch-size")
    if args.global_batch_size is None:
        args.global_batch_size = args.micro_batch_size * args.data_parallel_size
    if args.train_iters:
        if (
            args.train_samples is not None
            or args.lr_decay_samples is not None
            or args.lr_warmup_samples != 0
        ):
            raise Refused("expected iteration-based training")
        if args.lr_warmup_fraction is not None and args.lr_warmup_iters != 0:
            raise Refused("one of lr-warmup-fraction and lr-warmup-iters")
    if args.train_samples:
        if (
            args.train_iters is not None
            or args.lr_decay_iters is not None
            or args.lr_warmup_iters != 0
        ):
            raise Refused("expected sample-based training")
        if args.lr_warmup_fraction is not None and args.lr_warmup_samples != 0:
            raise Refused("one of lr-warmup-fraction and lr-warmup-samples")
    if args.weight_decay_incr_style == "constant":
        if args.start_weight_decay is not None or args.end_weight_decay is not None:
            raise Refused("a constant weight decay takes --weight-decay")
        args.start_weight_decay = args.end_weight_decay = args.weight_decay
    return args


def scheduler_arguments(args, pairs) -> dict:
    """What ``get_optimizer_param_scheduler`` passes to ``OptimizerParamScheduler``."""
    if args.train_iters:
        decay_iters = args.train_iters if args.lr_decay_iters is None else args.lr_decay_iters
        decay = decay_iters * args.global_batch_size
        wd_steps = args.train_iters * args.global_batch_size
        wsd = (
            None
            if args.lr_wsd_decay_iters is None
            else args.lr_wsd_decay_iters * args.global_batch_size
        )
        warmup = args.lr_warmup_iters * args.global_batch_size
    else:
        decay = args.train_samples if args.lr_decay_samples is None else args.lr_decay_samples
        wd_steps, wsd, warmup = (
            args.train_samples,
            args.lr_wsd_decay_samples,
            args.lr_warmup_samples,
        )
    if args.lr_warmup_fraction is not None:
        warmup = args.lr_warmup_fraction * decay
    return dict(
        init_lr=args.lr_warmup_init,
        max_lr=args.lr,
        min_lr=args.min_lr,
        lr_warmup_steps=warmup,
        lr_decay_steps=decay,
        lr_decay_style=args.lr_decay_style,
        start_wd=args.start_weight_decay,
        end_wd=args.end_weight_decay,
        wd_incr_steps=wd_steps,
        wd_incr_style=args.weight_decay_incr_style,
        wsd_decay_steps=wsd,
        lr_wsd_decay_style=args.lr_wsd_decay_style,
    )


def train(args, scheduler_class, optimizer) -> list[list[float]]:
    """Megatron's loop: each group's learning rate after each iteration (0 included),
    or `Refused` where Megatron stops."""
    args = validate(args)
    pairs = parse(args.step_batch_size_schedule, args.seq_length)
    iterations = train_iters(args, pairs)
    try:
        scheduler = scheduler_class(optimizer, **scheduler_arguments(args, pairs))
    except AssertionError as error:
        raise Refused("the scheduler's arguments") from error
    per_micro_batches = args.micro_batch_size * args.data_parallel_size
    lrs = [[group["lr"] for group in optimizer.param_groups]]
    consumed, micro_batches = 0, None
    for iteration in range(iterations):
        size = batch_size(pairs, consumed)
        if (
            micro_batches is not None
            and iteration != 0
            and size // per_micro_batches < micro_batches
        ):
            raise Refused(f"the number of micro-batches decreases at iteration {iteration}")
        if size % per_micro_batches:
            raise Refused(f"batch size {size} is not divisible at iteration {iteration}")
        micro_batches = size // per_micro_batches
        increment = micro_batches * per_micro_batches
        scheduler.step(increment=increment)
        consumed += increment
        lrs.append([group["lr"] for group in optimizer.param_groups])
    return lrs
