"""The influxdb label provisioner against a real InfluxDB 1.x with authentication on.

The module starts its own `influxd` on free loopback ports, with its own configuration
and data, and creates the admin user first (1.x lets the first admin in without
credentials). Without `influxd` these tests fail (`make test` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopfloor.agents import AgentRef, InfluxdbProvisioner, InvalidAgentSpec, RuntimeUnavailable

from ..serving import free_port, stop_process

ADMIN_USER = "sf-admin"
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex
INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


@dataclass(frozen=True)
class Influx:
    url: str  # no credentials

    @property
    def admin_url(self) -> str:
        return self.url.replace("http://", f"http://{ADMIN_USER}:{ADMIN_PASSWORD}@")


def _config(folder: Path, http_port: int, rpc_port: int) -> str:
    return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{folder / "meta"}"
[data]
  dir = "{folder / "data"}"
  wal-dir = "{folder / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = true
  log-enabled = false
"""


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    assert Path(INFLUXD).is_file(), "influxd is not installed (make test installs influxdb)"
    folder = tmp_path_factory.mktemp("influxdb")
    port = free_port()
    (folder / "influxdb.conf").write_text(_config(folder, port, free_port()))
    url = f"http://127.0.0.1:{port}"
    log_path = folder / "influxd.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [INFLUXD, "-config", str(folder / "influxdb.conf")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 204:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        created = httpx.post(
            f"{url}/query",
            data={"q": f"CREATE USER \"{ADMIN_USER}\" WITH PASSWORD '{ADMIN_PASSWORD}' "
                  "WITH ALL PRIVILEGES"},
        )  # fmt: skip
        assert created.status_code == 200 and "error" not in created.text, created.text
        yield Influx(url)
    finally:
        stop_process(process)
        log.close()


def _client(env: Mapping[str, str]) -> httpx.AsyncClient:
    """An HTTP client of InfluxDB with an agent's own credentials, from its grant."""
    auth = httpx.BasicAuth(env["SHOPFLOOR_INFLUXDB_USERNAME"], env["SHOPFLOOR_INFLUXDB_PASSWORD"])
    return httpx.AsyncClient(base_url=env["SHOPFLOOR_INFLUXDB_URL"], auth=auth, timeout=10)


async def _admin(influx: Influx, statement: str) -> list[list[Any]]:
    async with httpx.AsyncClient(auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=10) as client:
        response = await client.post(f"{influx.url}/query", data={"q": statement})
    result = response.json()["results"][0]
    assert response.status_code == 200 and "error" not in result, response.text
    return [row for series in result.get("series", []) for row in series.get("values", [])]


async def _write(client: httpx.AsyncClient, database: str, line: str) -> httpx.Response:
    return await client.post("/write", params={"db": database}, content=line)


async def _select(client: httpx.AsyncClient, database: str) -> httpx.Response:
    return await client.post("/query", params={"db": database}, data={"q": "SELECT * FROM m"})


def _values(response: httpx.Response) -> list[float]:
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    return [row[1] for series in result.get("series", []) for row in series["values"]]


async def test_an_agent_gets_a_database_of_its_own_and_loses_it(influx: Influx) -> None:
    provisioner = InfluxdbProvisioner(influx.admin_url)
    press, oven = AgentRef("org-1", "press-7"), AgentRef("org-1", "oven-2")
    try:
        granted = await provisioner.provision(press, "true")
        other = await provisioner.provision(oven, "true")
        env = granted.env
        database = env["SHOPFLOOR_INFLUXDB_DATABASE"]
        assert database == press.slug("sf_db")
        assert env["SHOPFLOOR_INFLUXDB_USERNAME"] == press.slug("sf_agent")
        assert env["SHOPFLOOR_INFLUXDB_URL"] == influx.url  # the admin's, less credentials
        assert granted.secrets == {env["SHOPFLOOR_INFLUXDB_PASSWORD"]}
        for value in (*env.values(), *granted.files.values(), *granted.secrets):
            assert ADMIN_PASSWORD not in str(value) and ADMIN_USER not in str(value)
        async with _client(env) as own:
            assert (await _write(own, database, "m v=1.5 1000000000")).status_code == 204
            assert _values(await _select(own, database)) == [1.5]
            # Not another agent's database: InfluxDB refuses, both ways.
            foreign = other.env["SHOPFLOOR_INFLUXDB_DATABASE"]
            refused = await _write(own, foreign, "m v=9 1000000000")
            assert refused.status_code == 403 and "not authorized" in refused.text
            refused = await _select(own, foreign)
            assert refused.status_code == 403 and "not authorized" in refused.text
            shown = await own.post("/query", data={"q": "SHOW DATABASES"})
            assert database in shown.text and foreign not in shown.text
        async with _client(other.env) as theirs:
            assert _values(await _select(theirs, foreign)) == []
        # Provisioning again: the same user and database, the data kept, a new password
        # that works while the old one stops working.
        again = await provisioner.provision(press, "true")
        assert again.env["SHOPFLOOR_INFLUXDB_USERNAME"] == env["SHOPFLOOR_INFLUXDB_USERNAME"]
        assert again.env["SHOPFLOOR_INFLUXDB_DATABASE"] == database
        assert again.env["SHOPFLOOR_INFLUXDB_PASSWORD"] != env["SHOPFLOOR_INFLUXDB_PASSWORD"]
        async with _client(env) as stale:
            assert (await _select(stale, database)).status_code == 401
        async with _client(again.env) as renewed:
            assert _values(await _select(renewed, database)) == [1.5]
        users = await _admin(influx, "SHOW USERS")
        assert sum(row[0] == press.slug("sf_agent") for row in users) == 1
    finally:
        await provisioner.deprovision(press)
        await provisioner.deprovision(oven)
    async with _client(again.env) as gone:
        assert (await _select(gone, database)).status_code == 401
        assert (await gone.get("/ping")).status_code == 204  # the server is still there
    databases = [row[0] for row in await _admin(influx, "SHOW DATABASES")]
    users = [row[0] for row in await _admin(influx, "SHOW USERS")]
    assert database not in databases and foreign not in databases
    assert press.slug("sf_agent") not in users and oven.slug("sf_agent") not in users
    await provisioner.deprovision(press)  # nothing left to remove: no error
    await provisioner.deprovision(AgentRef("org-9", "never-provisioned"))


async def test_the_value_sets_the_retention_of_the_database(influx: Influx) -> None:
    provisioner = InfluxdbProvisioner(influx.admin_url, agent_url="https://influx.plant:8086")
    agent = AgentRef("org-1", "kiln-1")
    database = agent.slug("sf_db")
    try:
        granted = await provisioner.provision(agent, "30d")
        assert granted.env["SHOPFLOOR_INFLUXDB_URL"] == "https://influx.plant:8086"
        policies = await _admin(influx, f'SHOW RETENTION POLICIES ON "{database}"')
        assert [(row[0], row[1], row[4]) for row in policies] == [("autogen", "720h0m0s", True)]
        await provisioner.provision(agent, "true")  # back to InfluxDB's default: forever
        policies = await _admin(influx, f'SHOW RETENTION POLICIES ON "{database}"')
        assert [(row[0], row[1], row[4]) for row in policies] == [("autogen", "0s", True)]
        for value in ("forever", "30m", "0d", "", "sf_other_db"):
            with pytest.raises(InvalidAgentSpec) as caught:
                await provisioner.provision(agent, value)
            assert caught.value.code == "invalid_provisioning_label"
    finally:
        await provisioner.deprovision(agent)


async def test_an_admin_of_the_agents_name_loses_its_admin_rights(influx: Influx) -> None:
    provisioner = InfluxdbProvisioner(influx.admin_url)
    agent = AgentRef("org-1", "mill-3")
    user = agent.slug("sf_agent")
    await _admin(influx, f"CREATE USER \"{user}\" WITH PASSWORD 'x' WITH ALL PRIVILEGES")
    try:
        await provisioner.provision(agent, "true")
        assert [row[1] for row in await _admin(influx, "SHOW USERS") if row[0] == user] == [False]
    finally:
        await provisioner.deprovision(agent)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "influxdb://127.0.0.1:8086",
        "postgresql://admin:secret@127.0.0.1:5432",
        "http://",
        "http://127.0.0.1:port",
        "http://127.0.0.1:8086/some/path",
        "http://127.0.0.1:8086?u=admin&p=secret",
    ],
)
def test_a_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(InvalidAgentSpec) as caught:
        InfluxdbProvisioner(url)
    assert caught.value.code == "provisioner_unconfigured"
    assert "SHOPFLOOR_AGENT_INFLUXDB_URL" in str(caught.value)


def test_the_agent_url_holds_no_credentials() -> None:
    InfluxdbProvisioner("https://influx.plant")  # no credentials, auth off: accepted
    with pytest.raises(InvalidAgentSpec) as caught:
        InfluxdbProvisioner("http://127.0.0.1:8086", agent_url="http://a:b@influx.plant:8086")
    assert caught.value.code == "provisioner_unconfigured"


async def test_a_server_that_is_down_or_refuses_is_unavailable(influx: Influx) -> None:
    agent = AgentRef("org-1", "press-7")
    down = f"http://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{free_port()}"  # nothing listens
    wrong = influx.admin_url.replace(ADMIN_PASSWORD, "not-" + ADMIN_PASSWORD)
    cases = {down: "unreachable", wrong: "authorization failed"}
    for url, reason in cases.items():
        provisioner = InfluxdbProvisioner(url)
        with pytest.raises(RuntimeUnavailable) as caught:
            await provisioner.provision(agent, "true")
        assert reason in str(caught.value)
        assert ADMIN_PASSWORD not in str(caught.value)
        with pytest.raises(RuntimeUnavailable) as caught:
            await provisioner.deprovision(agent)
            assert reason in str(caught.value)
            assert ADMIN_PASSWORD not in str(caught.value)


async def test_refusals_name_neither_the_statement_nor_a_password(influx: Influx) -> None:
    # A user who is no admin: InfluxDB's refusals quote the statement they refused.
    plain, password = "sf-plain", uuid.uuid4().hex
    await _admin(influx, f"CREATE USER \"{plain}\" WITH PASSWORD '{password}'")
    try:
        provisioner = InfluxdbProvisioner(f"http://{plain}:{password}@{influx.url[7:]}")
        agent = AgentRef("org-1", "press-7")
        with pytest.raises(RuntimeUnavailable) as caught:
            await provisioner.provision(agent, "true")
        message = str(caught.value)
        assert "requires admin privilege" in message
        # Not even InfluxDB's own quote of it ('CREATE DATABASE sf_db_...').
        assert password not in message and agent.slug("sf_db") not in message
        assert "'" not in message, message
    finally:
        await _admin(influx, f'DROP USER "{plain}"')
