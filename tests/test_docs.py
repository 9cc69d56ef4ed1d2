"""Every module has docstring examples, and they run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import paramsched

# Every module, in subpackages too; a package's __init__ only names its modules.
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(paramsched.__path__, "paramsched.")
    if not m.ispkg and m.name not in ("paramsched.__main__", "paramsched.megatron")
)
NEEDS_TORCH = {
    "paramsched.torch",
    "paramsched.distributed",
    "paramsched.rules",
    "paramsched.runtime._tensors",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{name} has no docstring example"
    assert failures == 0
