"""A capability added as one folder: a service with a router, a setting, a migration with
one table and a health check runs under `shopfloor serve`, with no other file edited.

The folder is written by the test into its own temporary directory and named in
`SHOPFLOOR_CAPABILITIES`, as an operator would install a plug-in.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

CAPABILITY = '''
"""Gauges: a throwaway capability for the test."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import sqlalchemy as sa
from pydantic import Field

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService


class GaugeSettings(Section, section="gauges", env_prefix="SHOPFLOOR_GAUGES_"):
    greeting: str = Field(default="hello", description="What the gauges say.")


class GaugeService(Service, name="gauges", needs=("database",)):
    """Gauges of the plant (a test capability)."""

    health = "gauges"
    routes = ("gauges.routes:router",)
    migrations = Path(__file__).parent / "migrations"

    async def _start(self, stack: AsyncExitStack) -> None:
        engine = self.platform.get(DatabaseService).engine
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO gauges (name) VALUES ('boiler')"))

    async def count(self) -> int:
        engine = self.platform.get(DatabaseService).engine
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM gauges"))).scalar_one())
'''

ROUTES = """
from fastapi import APIRouter, Request

from .capability import GaugeService, GaugeSettings

router = APIRouter(prefix="/api/v1")


@router.get("/gauges")
async def gauges(request: Request) -> dict[str, object]:
    platform = request.app.state.platform
    service = platform.get(GaugeService)
    return {
        "greeting": platform.settings.section(GaugeSettings).greeting,
        "rows": await service.count(),
    }
"""

REVISION = '''
"""Gauges table.

Revision ID: g0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gauges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gauges")
'''


def _write_capability(root: Path) -> None:
    package = root / "gauges"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "capability.py").write_text(textwrap.dedent(CAPABILITY))
    (package / "routes.py").write_text(textwrap.dedent(ROUTES))
    (package / "migrations" / "g0001_gauges.py").write_text(textwrap.dedent(REVISION))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(root: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(root), env.get("PYTHONPATH", "")]),
        "SHOPFLOOR_CAPABILITIES": "gauges.capability",
        "SHOPFLOOR_SERVICES": "api,gauges",
        "SHOPFLOOR_GAUGES_GREETING": "moin",
        "SHOPFLOOR_DATA_DIR": str(data),
        "SHOPFLOOR_LOG_FORMAT": "text",
        "COLUMNS": "300",  # help on one line per option
    }
    return env


def test_a_capability_in_one_folder_runs_under_serve(tmp_path: Path) -> None:
    root, data = tmp_path / "plugins", tmp_path / "data"
    _write_capability(root)
    env = _env(root, data)
    helped = subprocess.run(
        [sys.executable, "-m", "shopfloor", "serve", "--help"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "gauges: Gauges of the plant" in " ".join(helped.stdout.split())

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "shopfloor", "serve", "--http-host", "127.0.0.1",
             "--http-port", str(port)],
            env=env, stdout=output, stderr=output,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                health = httpx.get(f"{url}/health")
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert health.json()["services"]["gauges"] is True
        assert httpx.get(f"{url}/api/v1/gauges").json() == {"greeting": "moin", "rows": 1}
        assert "/api/v1/gauges" in httpx.get(f"{url}/openapi.json").json()["paths"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()

    with sqlite3.connect(data / "registry.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT version_num FROM alembic_version_gauges").fetchall()
    assert {"gauges", "things", "alembic_version", "alembic_version_gauges"} <= tables
    assert version == [("g0001",)]
