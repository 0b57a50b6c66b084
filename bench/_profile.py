"""Sampling profiles of a server under load with py-spy, summarised for the report.

`py-spy record --format raw` writes collapsed stacks (`frame;frame;... count`), one line
per distinct stack. The summary groups the samples by the library on top of the stack
(self time), lists the functions most often on top, and, for Shopfloor's own functions,
the share of samples in which each is anywhere on the stack (inclusive): that is what
"where the time goes" needs. The raw file stays for a flame graph (speedscope opens it
as it is).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

__all__ = ["ProfileSummary", "profile_during", "py_spy_path", "record", "summarise"]

# py-spy names a frame `function (path/to/file.py:line)`.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Libraries by a fragment of the file path, first match wins; order from specific to broad.
_AREAS: tuple[tuple[str, str], ...] = (
    ("shopfloor/senml", "shopfloor.senml (SenML parsing)"),
    ("shopfloor/storage", "shopfloor.storage (writer, stores)"),
    ("shopfloor/messaging", "shopfloor.messaging (bus)"),
    ("shopfloor/adapters", "shopfloor.adapters (HTTP, MQTT, WebSocket)"),
    ("shopfloor/ingress", "shopfloor.ingress (validation, envelope)"),
    ("shopfloor/core", "shopfloor.core (services, lifecycle)"),
    ("shopfloor/auth", "shopfloor.auth (thing keys)"),
    ("shopfloor/registry", "shopfloor.registry"),
    ("shopfloor/api", "shopfloor.api (middleware, routes)"),
    ("shopfloor/aas", "shopfloor.aas (Managers, Part 2 API, transports)"),
    ("shopfloor/", "shopfloor (other)"),
    ("aiosqlite", "aiosqlite (SQLite thread)"),
    ("sqlite3", "sqlite3"),
    ("sqlalchemy", "SQLAlchemy"),
    ("uvicorn", "uvicorn (HTTP protocol)"),
    ("httptools", "httptools"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("prometheus_client", "prometheus_client"),
    ("site-packages/nats/", "nats-py"),
    ("aiokafka", "aiokafka"),
    ("opentelemetry", "OpenTelemetry API (FastAPI telemetry)"),
    ("anyio", "anyio"),
    ("asyncio", "asyncio (event loop, streams)"),
    ("selectors", "asyncio (event loop, streams)"),
    ("json", "json"),
    ("threading", "threading"),
    ("concurrent", "threading"),
)


def py_spy_path() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("py-spy is not installed: run scripts/ensure-bench-tools.sh")
    return found


def record(pid: int, seconds: float, out: Path, *, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `out` (raw collapsed stacks); wait on it.

    Only the thread holding the GIL is sampled (`--gil`): one Python thread runs at a
    time, so that thread's work is what limits throughput. Without it, threads blocked
    in C (aiosqlite's worker waiting on its queue, idle executor threads) are counted
    as busy and hide the real work.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        py_spy_path(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--gil",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    samples: int
    seconds: float
    rate: int
    ours: list[tuple[str, float]]  # Shopfloor function, share of samples on the stack
    self_time: list[tuple[str, float]]
    areas: list[tuple[str, float]]
    raw_file: str

    @property
    def busy(self) -> float:
        """Samples per possible sample: the share of the time the GIL was held."""
        return self.samples / (self.seconds * self.rate) if self.seconds else 0.0


def profile_during(
    pid: int, seconds: float, raw: Path, load: Callable[[], T], *, rate: int = 200
) -> tuple[T, ProfileSummary | None, str]:
    """Sample `pid` (`record`) while `load()` runs: what `load` returned, the summary
    (None when py-spy failed) and py-spy's error output. py-spy is always ended."""
    sampler = record(pid, seconds, raw, rate=rate)
    try:
        time.sleep(0.5)  # lets py-spy attach before the load starts
        made = load()
        _, errors = sampler.communicate(timeout=seconds + 60)
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait()
    if sampler.returncode != 0:
        return made, None, errors.decode()[-500:]
    return made, summarise(raw, seconds=seconds, rate=rate), ""


def _parse_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["function"], match["file"]


def _short(file: str) -> str:
    """`.../site-packages/starlette/routing.py` → `starlette/routing.py`."""
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in file:
            file = file.rsplit(marker, 1)[1]
    if file.startswith("3."):  # lib/python3.11/asyncio/... → asyncio/...
        file = file.split("/", 1)[-1]
    return file


def _area(file: str) -> str:
    for fragment, area in _AREAS:
        if fragment in file:
            return area
    return "other"


def summarise(raw: Path, *, seconds: float, rate: int, top: int = 15) -> ProfileSummary:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_parse_frame(f) for f in stack.split(";")]
        seen = set()
        for function, file in frames:
            name = f"{function} ({_short(file)})"
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
        function, file = frames[-1]
        self_time[f"{function} ({_short(file)})"] += count
        areas[_area(file)] += count

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, count / samples) for name, count in counter.most_common(n)]

    if not samples:
        raise RuntimeError(f"the profile {raw.name} holds no samples")
    # The CLI's entry frames are on every stack and say nothing.
    ours = Counter(
        {
            k: v
            for k, v in inclusive.items()
            if "(shopfloor/" in k
            and "shopfloor/cli.py" not in k
            and "shopfloor/__main__.py" not in k
        }
    )
    return ProfileSummary(
        samples=samples,
        seconds=seconds,
        rate=rate,
        ours=shares(ours, top),
        self_time=shares(self_time, top),
        areas=shares(areas, len(areas)),
        raw_file=raw.name,
    )
