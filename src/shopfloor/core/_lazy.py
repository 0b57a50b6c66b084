"""Client libraries imported when first used, not when their capability is.

Every `shopfloor` command imports every capability, to find its settings section and
its commands, and so every module their services need. Some client libraries cost far
more than their use at that point: `kubernetes` about 0.3 s, the AAS adapters (through
lxml) 0.3 s, `aiomqtt` (through paho and dnspython) 0.2 s, `cel` (through its own
command line) 0.07 s, each paid by `shopfloor --help` and by every server start. The
standard library's `importlib.util.LazyLoader` defers running such a module until one
of its attributes is first read.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_import"]


def lazy_import(name: str) -> ModuleType:
    """The module `name`, run at the first read of one of its attributes.

    Its parent packages are imported now. A module already imported is returned as it
    is. Read an attribute of it once in the thread that starts a service, not first in
    a worker thread (Python 3.11's loader takes no lock).
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    if "." in name:  # as `import a.b` does: the parent package names its submodule
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    return module
