"""Tests for paramsched._oldnames: every module keeps the name it had, as the same object."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import pytest

from paramsched._oldnames import _MOVED


@pytest.mark.parametrize("old, new", sorted(_MOVED.items()), ids=sorted(_MOVED))
def test_the_old_name_is_the_same_module(old, new):
    if old in ("torch", "distributed", "rules"):
        pytest.importorskip("torch")
    assert importlib.import_module(f"paramsched.{old}") is importlib.import_module(
        f"paramsched.{new}"
    )


def test_from_imports_and_attributes_by_the_old_names():
    import paramsched
    from paramsched.scheduler import OptimizerParamScheduler
    from paramsched.units import Run

    assert OptimizerParamScheduler is paramsched.OptimizerParamScheduler
    assert paramsched.units.Run is Run


def test_a_pickle_that_names_the_old_module_loads():
    from paramsched import Run

    old = pickle.dumps(Run(global_batch_size=8, total="10 steps"), protocol=0).replace(
        b"paramsched.core.units", b"paramsched.units"
    )
    assert b"paramsched.units" in old
    assert pickle.loads(old) == Run(global_batch_size=8, total="10 steps")


def test_an_old_name_imported_first_in_a_fresh_interpreter():
    code = "import paramsched.phases as p, paramsched.core.phases as q; print(p is q)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr


def test_an_unknown_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("paramsched.no_such_module")
