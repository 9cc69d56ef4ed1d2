"""The examples train, stop, resume (on a branch too), and show exact learning rates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the example trains with torch
pytestmark = [pytest.mark.slow, pytest.mark.torch]  # subprocesses

EXAMPLE = Path(__file__).parent.parent / "examples" / "train_tiny_lm.py"
BRANCHES = EXAMPLE.with_name("branch_cooldown.py")


def run(script: Path, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs an example script in a fresh interpreter; its status and output."""
    return subprocess.run(
        [sys.executable, str(script), *argv], capture_output=True, text=True, timeout=timeout
    )


def test_the_tiny_lm_example_resumes_exactly(tmp_path):
    plot = tmp_path / "resume.png"
    result = run(EXAMPLE, "--steps", "40", "--out", str(plot))
    assert result.returncode == 0, result.stderr
    assert "equal the uninterrupted run's at every step: True" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_example_refuses_too_few_steps():
    result = run(EXAMPLE, "--steps", "3", timeout=60)
    assert result.returncode == 2 and "--steps=3; expected at least 10" in result.stderr


def test_the_cooldown_example_resumes_each_branch_exactly(tmp_path):
    plot = tmp_path / "cooldowns.png"
    result = run(BRANCHES, "--steps", "20", "--out", str(plot))
    assert result.returncode == 0, result.stderr
    assert "checkpoints at steps 12 and 16" in result.stdout
    assert "the end of the cooldown from step 12" in result.stdout
    assert (
        "branch.lr(position) at every step, and the parent's up to its branch point: True"
        in result.stdout
    )
    assert result.stderr == ""  # no warning: the parent's checkpoints load into the branches
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_cooldown_example_refuses_steps_it_cannot_branch_at():
    result = run(BRANCHES, "--steps", "12", timeout=60)
    assert result.returncode == 2 and "--steps=12; expected a multiple of 5" in result.stderr


def test_the_every_value_example_trains_with_what_metrics_reports(tmp_path):
    plot = tmp_path / "values.png"
    result = run(EXAMPLE.with_name("every_value.py"), "--out", str(plot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "813 steps; resumed at step 406: every value and loss equal to the uninterrupted "
        "run's" in result.stdout
    )
    assert result.stderr == ""
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_prediction_example_fits_predicts_and_optimizes(tmp_path):
    pytest.importorskip("scipy")
    plot = tmp_path / "predict.png"
    result = run(EXAMPLE.with_name("predict_tiny_lm.py"), "--steps", "300", "--out", str(plot))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fitted on constant and cosine: multi-power law: L0=")
    assert [line.split()[0] for line in lines[2:6]] == ["constant", "cosine", "wsd", "optimized"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_prediction_example_refuses_too_few_steps():
    result = run(EXAMPLE.with_name("predict_tiny_lm.py"), "--steps", "50", timeout=60)
    assert result.returncode == 2 and "--steps=50; expected at least 100" in result.stderr
