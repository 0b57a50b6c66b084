"""Every benchmark scenario, in quick mode, really measures something.

Each scenario runs bounded (a few seconds of load, small data) against real servers on
free loopback ports, with its anchor. The tests assert that the measurement is valid
(every accepted message stored, latencies above zero, anchors measured...), never that
a goal is met: goals are judged by `make bench` on full runs and reported in
`docs/benchmarks.md`.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import (
    Anchor,
    BenchContext,
    Figure,
    Goal,
    Machine,
    ScenarioResult,
    anchor,
    render,
    run_scenario,
    scenarios,
)
from shopfloor.cli import bind_socket as cli_bind_socket

from ..conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]

# Checks (label prefixes) each built-in scenario must make; a scenario added later
# brings its own.
REQUIRED_CHECKS = {
    "http": "stored == accepted (one record per message)",
    "latency": "every probe became readable",
    "readers": "SQLite: store timed 10 runs, all above 0 ms",
    "memory": "soak: stored == accepted",
    "mqtt": "embedded broker: stored == published (QoS 1, one record per message)",
    "agents": "API: every kill came back",
    "agent_calls": "the checker was asked once per call",
    "aas_invoke": "the Core handled every invoke exactly once: nats",
    "flows": "message flow: every message published arrived once",
    "dashboards": "every probe appeared on the open dashboard",
    "split": "writer SIGKILLed mid-run: 0 lost, 0 duplicated",
}


@pytest.fixture(scope="session")
def bench_tools() -> None:
    """wrk and the `bench` extra, installed when missing; the tests fail without them."""
    completed = subprocess.run(
        ["bash", "scripts/ensure-bench-tools.sh"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"cannot install the benchmark tools:\n{completed.stdout}{completed.stderr}")


@pytest.mark.parametrize("name", list(scenarios()))
def test_scenario_measures_in_quick_mode(name: str, bench_tools: None, tmp_path: Path) -> None:
    ctx = BenchContext(
        quick=True,
        work_dir=tmp_path,
        postgres_url=POSTGRES_ADMIN_URL,
        artifacts_dir=tmp_path / "artifacts",
    )
    result = run_scenario(name, ctx, catch=False)

    assert result.figures, "a scenario reports at least one figure"
    assert result.checks, "a scenario checks its own measurement"
    failed = [f"{c.label}: {c.detail}" for c in result.checks if not c.ok]
    assert not failed, failed
    if name in REQUIRED_CHECKS:
        assert any(c.label.startswith(REQUIRED_CHECKS[name]) for c in result.checks)
    for figure in result.figures:
        assert math.isfinite(figure.value), figure
        if figure.anchor is not None:
            assert figure.anchor.value > 0 and math.isfinite(figure.anchor.value), figure
        if figure.unit in ("ms", "MB", "records/s", "requests/s"):
            assert figure.value > 0, figure
    assert result.valid
    if name == "http":
        # py-spy saw the server handle the load, down to Shopfloor's own adapter.
        assert result.profile is not None and result.profile.samples > 0
        assert (tmp_path / "artifacts" / result.profile.raw_file).stat().st_size > 0
        assert any("shopfloor/adapters/http.py" in fn for fn, _ in result.profile.ours)


def test_anchor_listens_like_shopfloor_serve() -> None:
    """The anchor's socket is the CLI's: same family, type, protocol and options."""
    ours = anchor.bind_socket("127.0.0.1", 0)
    theirs = cli_bind_socket("127.0.0.1", 0, option="--http-port", env="SHOPFLOOR_HTTP_PORT")
    try:
        for sock in (ours, theirs):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)

        def shape(sock: socket.socket) -> tuple[object, ...]:
            return (
                sock.family,
                sock.type,
                sock.proto,
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                sock.getblocking(),
            )

        assert shape(ours) == shape(theirs)
    finally:
        ours.close()
        theirs.close()


def test_report_puts_each_figure_beside_its_anchor_and_keeps_prose() -> None:
    figures = [
        Figure(
            key="x.rate",
            label="stored records/s",
            value=600.0,
            unit="records/s",
            anchor=Anchor(label="bare endpoint", value=1000.0),
            goal=Goal(kind="ratio_at_least", threshold=0.6),
        ),
        Figure(
            key="x.p99", label="p99", value=70.0, unit="ms", goal=Goal(kind="below", threshold=50.0)
        ),
    ]
    result = ScenarioResult(
        name="x", title="X", command="python -m bench --scenarios x", figures=figures
    )
    result.check("measured", True)
    previous = "<!-- keep:where-the-time-goes -->\nRouting costs a third.\n"
    previous += "<!-- /keep:where-the-time-goes -->\n"
    machine = Machine(
        cores=2,
        physical_cores=1,
        cpu="cpu",
        ram_gib=4.0,
        system="Linux",
        python="3.11",
        sqlite="3.40",
        tools="wrk",
    )
    text = render(
        [result],
        machine=machine,
        command="python -m bench",
        quick=False,
        started=datetime(2026, 1, 1, tzinfo=UTC),
        seconds=60,
        previous=previous,
    )

    assert "| stored records/s | 600 records/s | 1,000 records/s | bare endpoint | 0.60x |" in text
    assert "≥ 60% of anchor | pass |" in text
    assert "| p99 | 70.0 ms | — | — | — | < 50 ms | **FAIL** |" in text
    assert "Routing costs a third." in text
    assert "`python -m bench`" in text
