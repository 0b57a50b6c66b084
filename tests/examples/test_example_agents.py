"""The example agents as real processes, with only the environment the platform gives
an agent: the echo agent on its own, the machine agent against a real platform (its HTTP
adapter on a port, the readers API) and a real PostgreSQL database of its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from shopfloor.agents import AgentRef, MqttProvisioner, PostgresProvisioner, Provisioner
from shopfloor.app import create_app
from shopfloor.auth.capability import IdentityService
from shopfloor.simulate import Mill
from tests.serving import lifespan

from ..api.conftest import Api
from ..conftest import POSTGRES_ADMIN_URL
from ..serving import free_port, served_app
from ..tlskit import Issued, TestCa

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "examples" / "agents" / "echo.py"


class AgentProcess:
    """An agent started as the process runtime starts one: its own session, output in
    files, an environment of `PATH`, `PYTHONPATH` and what the platform hands it."""

    def __init__(self, process: asyncio.subprocess.Process, stdout: Path, stderr: Path) -> None:
        self.process = process
        self.stdout = stdout
        self.stderr = stderr

    @classmethod
    async def start(
        cls, command: list[str], env: dict[str, str], *, workdir: Path, python_path: str = ""
    ) -> AgentProcess:
        paths = [python_path, os.environ.get("PYTHONPATH", "")]
        base = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        stdout, stderr = _output_files(workdir)
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=workdir, env=base | env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        return cls(process, stdout, stderr)

    def output(self) -> str:
        return self.stdout.read_text()

    def report(self) -> str:
        return f"stdout:\n{self.output()}\nstderr:\n{self.stderr.read_text()}"

    async def line(self, pattern: str, *, after: int = 0, within: float = 20) -> str:
        """The first line of stdout past line `after` that matches `pattern`."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for line in self.output().splitlines()[after:]:
                if re.search(pattern, line):
                    return line
            assert self.process.returncode is None, self.report()
            assert asyncio.get_running_loop().time() < deadline, f"no {pattern!r}\n{self.report()}"
            await asyncio.sleep(0.05)

    def lines(self) -> int:
        return len(self.output().splitlines())

    async def stop(self, *, within: float = 10) -> int:
        """SIGTERM, then the exit status, which must come `within` seconds."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within):
            return await self.process.wait()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def _output_files(workdir: Path) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir / "stdout.log", workdir / "stderr.log"


def write_private(path: Path, data: bytes) -> None:
    """Write as the platform writes an agent's file: replaced whole, mode 0600."""
    staged = path.with_suffix(".tmp")
    staged.write_bytes(data)
    staged.chmod(0o600)
    staged.replace(path)


def give_certificate(files: Path, issued: Issued, ca: TestCa) -> None:
    write_private(files / "cert.pem", issued.cert_file.read_bytes())
    write_private(files / "key.pem", issued.key_file.read_bytes())
    write_private(files / "ca.pem", ca.ca_file.read_bytes())


def agent_files(tmp_path: Path, config: dict[str, Any]) -> Path:
    files = tmp_path / "files"
    files.mkdir(mode=0o700)
    write_private(files / "config.json", json.dumps(config).encode())
    return files


async def wait_until(check: Callable[[], Any], *, within: float = 20, what: str = "") -> Any:
    """Poll the coroutine function `check` until it returns something true; that."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, f"{what}: last {result!r}"
        await asyncio.sleep(0.05)


# -- echo --------------------------------------------------------------------------


async def test_the_echo_agent_beats_reloads_answers_health_and_stops(tmp_path: Path) -> None:
    health_port = free_port()
    config = {"interval": 0.2, "health_port": health_port, "api_token": "do-not-log-me"}
    files = agent_files(tmp_path, config)
    ca = TestCa(tmp_path / "ca")
    give_certificate(files, ca.issue("echo", entity_type="agent"), ca)
    env = {
        "SHOPFLOOR_AGENT_NAME": "echo",
        "SHOPFLOOR_AGENT_ORG": "org-1",
        "SHOPFLOOR_AGENT_VERSION": "1.0.0",
        "SHOPFLOOR_AGENT_FILES": str(files),
    }
    agent = await AgentProcess.start([sys.executable, str(ECHO)], env, workdir=tmp_path / "echo")
    try:
        started = await agent.line(r"echo agent 'echo' \(version '1.0.0'\) started")
        assert started.endswith("config keys: api_token, health_port, interval")
        await agent.line(r"heartbeat 2$")
        stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +echo: heartbeat 1$")
        assert any(stamp.match(line) for line in agent.output().splitlines()), agent.report()

        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{health_port}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"

        renewed = ca.issue("echo", entity_type="agent")
        give_certificate(files, renewed, ca)
        write_private(files / "config.json", json.dumps({**config, "greeting": "hi"}).encode())
        seen = agent.lines()
        agent.process.send_signal(signal.SIGHUP)
        reloaded = await agent.line("reloaded files", after=seen)
        assert f"cert.pem serial {renewed.serial:x};" in reloaded
        assert reloaded.endswith("config keys: api_token, greeting, health_port, interval")
        await agent.line(r"heartbeat \d+$", after=agent.lines())  # still beating

        assert await agent.stop(within=10) == 0
        assert agent.output().splitlines()[-1].endswith("echo: stopping")
    finally:
        await agent.kill()
    assert "do-not-log-me" not in agent.report()
    assert agent.stderr.read_text() == ""


# -- machine -----------------------------------------------------------------------


@asynccontextmanager
async def running_platform(
    make_settings: Callable[..., Any],
) -> AsyncIterator[tuple[Api, str, dict[str, str]]]:
    """A running platform, not yet served on a port: (api, an org id, an engineer's headers)."""
    app = create_app(make_settings())
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            api = Api(http, app.state.platform, manager.app)
            org = await api.org("Plant")
            yield api, org, await api.member(org, "engineer")


@asynccontextmanager
async def provisioned(api: Api, agent: AgentRef, *, http_url: str) -> AsyncIterator[dict[str, str]]:
    """What the `mqtt` (a thing on the channel named as the agent) and `postgres` (a role
    and a database of its own) provisioners give `agent`; all of it removed afterwards."""
    registry = api.platform.get(IdentityService).registry
    provisioners: list[tuple[Provisioner, str]] = [
        (MqttProvisioner(registry, http_url=http_url), agent.name),
        (PostgresProvisioner(POSTGRES_ADMIN_URL), "true"),
    ]
    env: dict[str, str] = {}
    try:
        for provisioner, value in provisioners:
            env |= (await provisioner.provision(agent, value)).env
        yield env
    finally:
        for provisioner, _ in provisioners:
            await provisioner.deprovision(agent)


async def test_the_machine_agent_publishes_and_stores_and_waits_out_a_platform_that_is_down(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    http_port, health_port = free_port(), free_port()
    async with running_platform(make_settings) as (api, org, user):
        agent_ref = AgentRef(org, "mill-7")
        async with provisioned(api, agent_ref, http_url=f"http://127.0.0.1:{http_port}") as env:
            thing_id, channel = env["SHOPFLOOR_THING_ID"], json.loads(env["SHOPFLOOR_CHANNELS"])
            config = {"interval": 0.2, "machine": "mill-7", "health_port": health_port}
            env |= {
                "SHOPFLOOR_AGENT_NAME": "mill-7",
                "SHOPFLOOR_AGENT_ORG": org,
                "SHOPFLOOR_AGENT_VERSION": "1",
                "SHOPFLOOR_AGENT_FILES": str(agent_files(tmp_path, config)),
            }
            temperatures, came_up, status, agent = await _run_machine_agent(
                api, user, env, channel[0]["id"], tmp_path=tmp_path, health_port=health_port
            )
            assert status == 0, agent.report()
            assert min(m["time"] for m in temperatures) < came_up  # those that waited came too
            assert {(m["publisher"], m["protocol"], m["unit"]) for m in temperatures} == {
                (thing_id, "http", "Cel")
            }
            states = await api.http.get(
                f"/api/v1/channels/{channel[0]['id']}/messages",
                params={"name": "mill-7:state", "limit": 1000}, headers=user,
            )  # fmt: skip
            assert {m["string_value"] for m in states.json()["messages"]} <= {"running", "setup"}
            # The same readings in both places, in a table the agent's own role made.
            async with _connected(env["SHOPFLOOR_POSTGRES_URL"]) as database:
                rows = await database.fetch("SELECT time, temperature FROM readings")
                owner = await database.fetchval(
                    "SELECT tableowner FROM pg_tables WHERE tablename = 'readings'"
                )
            assert owner == env["PGUSER"]
            in_database = {round(row["time"].timestamp(), 3): row["temperature"] for row in rows}
            for message in temperatures:
                assert in_database[round(message["time"], 3)] == message["value"], message
    output = agent.report()
    assert "machine: stopping; readings not sent" in output
    for secret in (env["SHOPFLOOR_THING_KEY"], env["PGPASSWORD"]):
        assert secret not in output


async def _run_machine_agent(
    api: Api,
    user: dict[str, str],
    env: dict[str, str],
    channel: str,
    *,
    tmp_path: Path,
    health_port: int,
) -> tuple[list[dict[str, Any]], float, int, AgentProcess]:
    """Start the machine agent with the platform's port closed; open it once the agent
    has failed twice and stored readings anyway; stop the agent once the readers API has
    readings taken after the platform came up. (temperature records, when the platform
    came up, the agent's exit status, the agent.)"""
    command = [sys.executable, "-m", "shopfloor.sdk.run", "examples.agents.machine:main"]
    agent = await AgentProcess.start(
        command, env, workdir=tmp_path / "machine", python_path=str(ROOT)
    )
    try:
        await wait_until(
            lambda: _count(agent, "platform unavailable .*retrying in", 2),
            what="two failed tries",
        )

        async def stored() -> list[asyncpg.Record]:
            async with _connected(env["SHOPFLOOR_POSTGRES_URL"]) as database:
                if not await database.fetchval("SELECT to_regclass('readings') IS NOT NULL"):
                    return []
                return list(await database.fetch("SELECT * FROM readings ORDER BY time"))

        rows = await wait_until(
            lambda: _at_least(stored, 3), what="rows in readings while the platform is down"
        )
        assert {row["machine"] for row in rows} == {"mill-7"}
        assert all(row["state"] in ("running", "setup") for row in rows)
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{health_port}/health")
        assert health.status_code == 200
        assert health.json()["waiting"]["platform"] > 0

        came_up = time.time()
        served = uvicorn.Config(api.app, lifespan="off", log_level="warning")
        http_port = int(env["SHOPFLOOR_HTTP_URL"].rsplit(":", 1)[1])
        async with served_app(served, port=http_port):
            await agent.line("platform reachable again")

            async def published() -> list[dict[str, Any]]:
                response = await api.http.get(
                    f"/api/v1/channels/{channel}/messages",
                    params={"name": "mill-7:temperature", "dir": "asc", "limit": 1000},
                    headers=user,
                )
                assert response.status_code == 200, response.text
                messages: list[dict[str, Any]] = response.json()["messages"]
                return messages if any(m["time"] > came_up for m in messages) else []

            temperatures = await wait_until(published, what="records in the readers API")
            # New files (as the platform writes them on a renewal): read, not an end.
            files = Path(env["SHOPFLOOR_AGENT_FILES"])
            config = json.loads((files / "config.json").read_text()) | {"interval": 0.5}
            write_private(files / "config.json", json.dumps(config).encode())
            seen = agent.lines()
            agent.process.send_signal(signal.SIGHUP)
            await agent.line(r"reloaded files; interval 0.5 s$", after=seen)
            status = await agent.stop(within=10)
    finally:
        await agent.kill()
    return temperatures, came_up, status, agent


def test_the_mill_the_machine_agent_simulates_cuts_jobs_and_sets_up_between_them() -> None:
    mill = Mill("mill-7", seed=7)
    seconds = range(0, 101)  # two 50 s cycles: a 40 s job, then a 10 s setup
    samples = [
        {r["n"]: r.get("v", r.get("vs")) for r in mill.pack(mill.started + s)} for s in seconds
    ]
    states = [sample["state"] for sample in samples]
    assert states[:40] == ["running"] * 40 and states[40:50] == ["setup"] * 10
    assert all(sample["spindle-speed"] == 0 for sample in samples[40:50])
    assert all(sample["spindle-speed"] > 5000 for sample in samples[:40])
    assert samples[39]["temperature"] > samples[0]["temperature"] + 10  # warms while cutting
    assert samples[49]["temperature"] < samples[39]["temperature"]  # cools while set up
    assert [samples[s]["parts"] for s in (0, 49, 50, 100)] == [0, 0, 1, 2]
    first = mill.pack(mill.started + 101)[0]
    assert first["bn"] == "mill-7:" and first["n"] == "temperature" and first["u"] == "Cel"


async def test_the_machine_agent_without_a_thing_says_what_it_lacks(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "shopfloor.sdk.run", "examples.agents.machine:main"]
    agent = await AgentProcess.start(command, {}, workdir=tmp_path, python_path=str(ROOT))
    try:
        async with asyncio.timeout(20):
            status = await agent.process.wait()
    finally:
        await agent.kill()
    assert status == 1
    last = agent.stderr.read_text().splitlines()[-1]
    assert last.startswith("shopfloor.sdk.run: examples.agents.machine:main failed: ValueError")
    assert "SHOPFLOOR_THING_KEY" in last


async def _count(agent: AgentProcess, pattern: str, count: int) -> bool:
    assert agent.process.returncode is None, agent.report()
    return len(re.findall(pattern, agent.output())) >= count


async def _at_least(rows: Callable[[], Any], count: int) -> list[Any]:
    found: list[Any] = await rows()
    return found if len(found) >= count else []


@asynccontextmanager
async def _connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()
