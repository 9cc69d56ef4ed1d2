"""The benchmark script runs end to end at tiny sizes (speed is a benchmark, not a test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the benchmark compares with both
pytest.importorskip("megatron.core")
pytestmark = [pytest.mark.slow, pytest.mark.megatron, pytest.mark.torch]  # a subprocess

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "run.py"


def test_benchmarks_run_and_report_identical_results():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("machine: ")
    for title in ("Host step cost", "Curve evaluation", "paramsched check", "Memory"):
        assert f"### {title}" in out
    host = out.split("### Host step cost")[1].split("###")[0]
    assert "| megatron-core | paramsched | hand-written floor |" in host
    assert [
        line.split("|")[1].strip()
        for line in host.splitlines()
        if line.startswith("| ") and not line.startswith("| groups")
    ] == ["1", "2", "8"]
    for title in ("Host step cost", "Curve evaluation"):  # every row bit-identical
        section = out.split(f"### {title}")[1].split("###")[0]
        rows = [
            line
            for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| groups", "| shape"))
        ]
        assert rows and all(row.rstrip(" |").endswith("yes") for row in rows), section
