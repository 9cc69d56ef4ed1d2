"""Branch cooldowns from a WSD run's checkpoints, resume them, and train each to its end.

The tiny language model of ``train_tiny_lm.py`` trains on the CPU with a
warmup-stable-decay schedule (Megatron's WSD, counted in samples) and saves
checkpoints at 60% and 80% of the run. From each, a cooldown branches
(``schedule.branch("60%", ...)``): a minus_sqrt anneal to min_lr over the next 20%
of the run. Each cooldown resumes from the parent's checkpoint in fresh objects, on
a `ParamScheduler` built on the branch (a checkpoint written at or before the branch
point loads into it), and trains to the end of its anneal. The script checks that
every learning rate each cooldown used is ``branch.lr(position)`` exactly, for every
group, and the parent's up to the branch point; it prints the final losses, plots
the three learning-rate curves with --out, and exits with status 1 if a check fails.

    python examples/branch_cooldown.py --out cooldowns.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from train_tiny_lm import BATCH, model_and_optimizer, restore, save, train

import paramsched
from paramsched.torch import ParamScheduler

#: Where each cooldown branches and where its anneal ends, in percent of the run.
BRANCHES = ((60, 80), (80, 100))


def wsd(steps: int) -> paramsched.Schedule:
    """The parent: warmup over 10% of the run, stable, a minus_sqrt anneal over the last
    10%; in samples (`BATCH` sequences a step), as Megatron counts."""
    return paramsched.Schedule(
        max_lr=1e-3,
        min_lr=1e-4,
        lr_warmup_steps=steps // 10 * BATCH,
        lr_decay_steps=steps * BATCH,
        lr_decay_style="WSD",
        wsd_decay_steps=steps // 10 * BATCH,
        lr_wsd_decay_style="minus_sqrt",
        start_wd=0.1,
        end_wd=0.1,
        run=paramsched.Run(global_batch_size=BATCH, total=f"{steps} steps"),
    )


def follows(schedule, lrs, positions, groups) -> bool:
    """Whether each step's learning rates are `schedule`'s at its position, for every
    group (with its own max_lr and min_lr), to the bit."""
    return all(
        lr == schedule.lr(position, max_lr=group.get("max_lr"), min_lr=group.get("min_lr"))
        for step_lrs, position in zip(lrs, positions)
        for lr, group in zip(step_lrs, groups)
    )


def plot(path, parent_lrs, cooldowns) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.plot(
        range(len(parent_lrs)),
        [lr[0] for lr in parent_lrs],
        linewidth=2.5,
        color="0.3",
        label="parent: WSD to the end of the run",
    )
    for (point, stop, lrs), color in zip(cooldowns, ("tab:orange", "tab:blue")):
        axis.plot(
            range(stop, stop + len(lrs)),
            [lr[0] for lr in lrs],
            "o-",
            markersize=3,
            color=color,
            label=f"cooldown branched at {point} (step {stop}), resumed",
        )
        axis.axvline(stop, color=color, linestyle=":", alpha=0.6)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("learning rate (default group)")
    axis.set_title("Tiny LM: cooldowns branched from a WSD run's checkpoints")
    axis.legend(fontsize=8, loc="lower left")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=50, help="the parent run's steps, a multiple of 5 (default 50)"
    )
    parser.add_argument("--out", help="write a plot of the three learning-rate curves (PNG)")
    options = parser.parse_args(argv)
    steps = options.steps
    if steps < 10 or steps % 5:
        parser.error(f"--steps={steps}; expected a multiple of 5, at least 10")
    parent = wsd(steps)

    cooldowns, finals = [], []  # finals: (run, its last step, that step's loss)
    claims = []  # (what is claimed, whether it holds)
    with tempfile.TemporaryDirectory() as directory:
        # The parent, with a checkpoint where each cooldown branches.
        model, optimizer = model_and_optimizer()
        scheduler = ParamScheduler(optimizer, parent)
        parent_lrs, parent_losses, parent_positions = [], [], []
        stops = [steps * point // 100 for point, _ in BRANCHES]
        for first, last in zip([0, *stops], [*stops, steps]):
            lrs, step_losses, positions = train(model, optimizer, scheduler, first, last)
            parent_lrs += lrs
            parent_losses += step_losses
            parent_positions += positions
            if last in stops:
                save(os.path.join(directory, f"step-{last}.pt"), model, optimizer, scheduler)
        claims.append(
            (
                "the parent's learning rates are parent.lr(position)",
                follows(parent, parent_lrs, parent_positions, optimizer.param_groups),
            )
        )
        finals.append(("parent", steps, parent_losses[-1]))

        # Each cooldown: fresh objects on the branch, the parent's checkpoint loaded.
        for point, end in BRANCHES:
            stop, last = steps * point // 100, steps * end // 100
            branch = parent.branch(
                f"{point}%", [{"shape": "minus_sqrt", "to": "min_lr", "until": f"{end}%"}]
            )
            model, optimizer = model_and_optimizer()
            scheduler = ParamScheduler(optimizer, branch)
            restore(os.path.join(directory, f"step-{stop}.pt"), model, optimizer, scheduler)
            lrs, step_losses, positions = train(model, optimizer, scheduler, stop, last)
            groups = optimizer.param_groups
            shared = [n for n, p in enumerate(parent_positions) if p <= branch.branch_point]
            claims += [
                (f"{where}, branched at {point}%", holds)
                for where, holds in [
                    (
                        "the scheduler runs the branch after loading the parent's checkpoint",
                        scheduler.schedule == branch,
                    ),
                    (
                        "the checkpoint is at the branch point",
                        positions[0] == branch.branch_point == stop * BATCH,
                    ),
                    (
                        "every resumed step's learning rates are branch.lr(position)",
                        follows(branch, lrs, positions, groups),
                    ),
                    (
                        "the parent's learning rates up to the branch point are branch.lr(position)",
                        follows(
                            branch,
                            [parent_lrs[n] for n in shared],
                            [parent_positions[n] for n in shared],
                            groups,
                        ),
                    ),
                    (
                        "the first resumed step's learning rates are the parent's",
                        lrs[0] == parent_lrs[stop],
                    ),
                    (
                        "after the branch point the learning rates differ from the parent's",
                        any(lr != parent_lrs[n] for n, lr in enumerate(lrs, stop)),
                    ),
                ]
            ]
            cooldowns.append((f"{point}%", stop, lrs))
            finals.append((f"cooldown from step {stop}", last, step_losses[-1]))

    exact = all(holds for _, holds in claims)
    print(
        f"parent: WSD over {steps} steps of {BATCH} sequences, checkpoints at steps "
        + " and ".join(str(stop) for _, stop, _ in cooldowns)
    )
    for name, last, loss in finals:
        print(f"loss at step {last}, the end of the {name}: {loss:.3f}")
    last = finals[1][1]
    print(f"loss at step {last} of the parent, for comparison: {parent_losses[last - 1]:.3f}")
    print(
        "each cooldown's learning rates equal branch.lr(position) at every step, and the "
        f"parent's up to its branch point: {exact}"
    )
    for claim, holds in claims:
        if not holds:
            print(f"failed: {claim}", file=sys.stderr)
    if options.out:
        plot(options.out, parent_lrs, cooldowns)
        print(f"wrote {options.out}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
