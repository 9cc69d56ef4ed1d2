"""The example trains, stops, resumes, and shows equal learning rates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the example trains with torch
pytestmark = [pytest.mark.slow, pytest.mark.torch]  # subprocesses

EXAMPLE = Path(__file__).parent.parent / "examples" / "train_tiny_lm.py"


def test_the_tiny_lm_example_resumes_exactly(tmp_path):
    plot = tmp_path / "resume.png"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "40", "--out", str(plot)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "equal the uninterrupted run's at every step: True" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_example_refuses_too_few_steps():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "3"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--steps=3; expected at least 10" in result.stderr
