"""Every module has docstring examples, and they run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import paramsched

MODULES = sorted(
    f"paramsched.{m.name}"
    for m in pkgutil.iter_modules(paramsched.__path__)
    if m.name != "__main__"
)
NEEDS_TORCH = {
    "paramsched.torch",
    "paramsched.distributed",
    "paramsched.rules",
    "paramsched._tensors",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{name} has no docstring example"
    assert failures == 0
