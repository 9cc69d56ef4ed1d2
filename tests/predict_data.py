"""The multi-power law's published 25M curves (tests/data/multi-power-law), for the
prediction tests: `benchmarks/predict_accuracy.py` holds their exact rates and the
paper's figures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from predict_accuracy import (  # noqa: E402
    DATA,
    FIT,
    HELD_OUT,
    METRICS,
    PAPER,
    PAPER_PARAMS,
    held_out_figures,
    rates,
    run,
)

__all__ = [
    "DATA",
    "FIT",
    "HELD_OUT",
    "METRICS",
    "PAPER",
    "PAPER_PARAMS",
    "held_out_figures",
    "rates",
    "run",
]


def schedule_file(tmp_path, name: str, phases: str, total: int, min_lr: float = 3e-5) -> Path:
    """A schedule file of `total` optimizer steps (one sample each) with `phases`."""
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[run]\nglobal_batch_size = 1\ntotal = "{total} steps"\n[lr]\nmax_lr = 3e-4\n'
        f"min_lr = {min_lr!r}\nphases = [\n"
        '  { shape = "linear", to = "max_lr", until = "2160 steps" },\n'
        f"{phases}]\n"
    )
    return path
