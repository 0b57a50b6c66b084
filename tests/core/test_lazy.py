"""Client libraries are imported when first used: a command's start does not pay for
them (`shopfloor.core.lazy_import`, and imports inside the functions of `aas/`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shopfloor.core import lazy_import


def test_a_lazy_module_runs_at_the_first_read_of_an_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lazy_probe_module.py").write_text(
        "import builtins\nbuiltins.lazy_probe_runs = getattr(builtins, 'lazy_probe_runs', 0) + 1\n"
        "ANSWER = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_probe_module", raising=False)
    import builtins

    monkeypatch.setattr(builtins, "lazy_probe_runs", 0, raising=False)
    module = lazy_import("lazy_probe_module")
    assert builtins.lazy_probe_runs == 0  # type: ignore[attr-defined]
    assert module.ANSWER == 42
    assert builtins.lazy_probe_runs == 1  # type: ignore[attr-defined]
    assert lazy_import("lazy_probe_module") is module  # imported once
    assert module.ANSWER == 42 and builtins.lazy_probe_runs == 1  # type: ignore[attr-defined]


def test_a_missing_module_is_refused_at_once() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        lazy_import("no_such_module_here")


def test_a_command_start_imports_no_client_library_it_does_not_use() -> None:
    # What `shopfloor --help` (and every other command) imports: every capability.
    probe = (
        "import sys, shopfloor.cli\n"
        "from shopfloor.core import discover\n"
        "discover()\n"
        "print(' '.join(m for m in ('kubernetes.client', 'lxml.etree', 'paho.mqtt.client',"
        " 'dns.resolver', 'cel.cli', 'nats.aio.client', 'aiohttp', 'aiokafka.consumer',"
        " 'alembic.command', 'docker.api', 'requests.sessions', 'urllib3.connectionpool')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
