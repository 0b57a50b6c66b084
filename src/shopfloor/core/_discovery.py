"""Finding the capabilities: every `capability.py` of the package, plus plug-ins.

A capability is a folder with a `capability.py` that defines its services and its
settings section (they register themselves when the module is imported). Extra
capabilities come from modules named in `SHOPFLOOR_CAPABILITIES` and from installed
distributions' entry points in the group `shopfloor.capabilities`; nothing else
needs editing to add one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["ENTRY_POINT_GROUP", "discover"]

ENTRY_POINT_GROUP = "shopfloor.capabilities"
_ROOT = Path(__file__).resolve().parents[1]
_imported: set[str] = set()


def builtin_modules() -> list[str]:
    """`shopfloor.<...>.capability` for every capability folder, core first."""
    found = sorted(
        path.relative_to(_ROOT.parent).with_suffix("").as_posix().replace("/", ".")
        for path in _ROOT.rglob("capability.py")
    )
    return sorted(found, key=lambda module: module != "shopfloor.core.capability")


def discover(extra: Iterable[str] = ()) -> None:
    """Import every built-in capability, the plug-ins installed, and `extra` modules."""
    modules = builtin_modules()
    modules += [point.value for point in entry_points(group=ENTRY_POINT_GROUP)]
    modules += list(extra)
    for module in modules:
        if module not in _imported:
            importlib.import_module(module)
            _imported.add(module)
