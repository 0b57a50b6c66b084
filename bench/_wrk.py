"""Closed-loop HTTP load with wrk: persistent connections, a Lua script for POST and headers.

wrk runs in its own process (C, one event loop per thread), so the load generator is not
what limits a Python server on the same machine. Its Lua `done` hook prints one JSON
line that is parsed here instead of wrk's human-readable summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "run_wrk", "wrk_path"]

_MARK = "WRK_JSON "

_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/senml+json"
wrk.headers["Authorization"] = {authorization}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: run scripts/ensure-bench-tools.sh")
    return path


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # connect, read, write and timeouts
    non_2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_requests(self) -> int:
        return self.requests - self.non_2xx

    @property
    def ok_per_second(self) -> float:
        return self.ok_requests / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str,
    *,
    authorization: str,
    body: str,
    seconds: float,
    connections: int,
    threads: int,
    script_dir: Path,
) -> WrkResult:
    """POST `body` to `url` for `seconds` over `connections` keep-alive connections."""
    script = script_dir / "wrk-post.lua"
    script_dir.mkdir(parents=True, exist_ok=True)
    script.write_text(
        _SCRIPT.format(body=_lua_string(body), authorization=_lua_string(authorization), mark=_MARK)
    )
    argv = [
        wrk_path(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        url,
    ]
    # wrk stops by itself after --duration; the timeout only guards against a hang.
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            return WrkResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
                non_2xx=int(data["status"]),
                p50_ms=data["p50_us"] / 1e3,
                p99_ms=data["p99_us"] / 1e3,
            )
    raise RuntimeError(
        f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}"
    )
