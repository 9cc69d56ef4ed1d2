"""The modules' old names: ``paramsched.units`` is ``paramsched.core.units``.

The package grew subpackages (``core``, ``runtime``, ``formats``); every module keeps
the name it had, as the same module object, so that code and pickles naming the old
place still work.

Examples:
    >>> import paramsched.units, paramsched.core.units
    >>> paramsched.units is paramsched.core.units
    True
"""

import importlib.abc
import importlib.util
import sys

# ------------------------------------------------------------- modules' old names
#: Modules by the names they have always had: ``paramsched.units`` is
#: ``paramsched.core.units`` (the same module object), so code and pickles that name
#: the old place still work.
_MOVED = {
    "megatron": "formats.megatron",
    **{name: f"core.{name}" for name in ("shapes", "units", "schedule", "phases", "overrides")},
    **{name: f"runtime.{name}" for name in ("scheduler", "torch", "distributed", "rules")},
}


_PACKAGE = "paramsched"


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``paramsched.X`` of `_MOVED` as the module it names."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix == _PACKAGE and name in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(f"{_PACKAGE}.{_MOVED[spec.name.partition('.')[2]]}")

    def exec_module(self, module) -> None:
        pass  # imported as itself


sys.meta_path.insert(0, _OldNames())
