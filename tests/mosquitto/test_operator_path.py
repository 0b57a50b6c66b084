"""Mosquitto mode set up as docs/mosquitto.md tells an operator, command by command.

The shell blocks of the page marked `<!-- steps:... -->` run here as written, with
this test's folders, port and passwords in place of the page's, as root, on a fresh
broker started as root (which then runs as the user `mosquitto`). Then each misstep
the page warns of either works or is named, with its fix, by `shopfloor mosquitto
check` or by the platform's start-up log and `/health`.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from mosquitto_testkit import NOT_AUTHORIZED, RunningBroker, connected, free_port, subscribe
from tests.agents.agentkit import eventually
from tests.pipeline.conftest import Plant, build_plant, running

import shopfloor
from shopfloor.adapters.capability import MqttSettings
from shopfloor.adapters.mosquitto import (
    BrokerUrl,
    Finding,
    InvalidBrokerUrl,
    Severity,
    check_broker_files,
    check_broker_logins,
    read_broker_files,
)
from shopfloor.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "mosquitto.md"
SENML = '[{"n": "spindle-rpm", "v": 1480}]'


def doc_steps() -> dict[str, str]:
    """The page's marked shell blocks, by name, continuation lines joined."""
    blocks = re.findall(r"<!-- steps:(\w+) -->\n```sh\n(.*?)```", DOC.read_text(), re.S)
    return {name: body.replace("\\\n", " ") for name, body in blocks}


@dataclass
class Site:
    """The test's stand-ins for the page's folders, port and secrets."""

    root: Path
    port: int
    admin_password: str
    bridge_password: str

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def config(self) -> Path:
        return self.etc / "mosquitto.conf"

    @property
    def dynsec_file(self) -> Path:
        return self.etc / "dynsec.json"

    @property
    def plugin_dir(self) -> Path:
        return self.root / "lib" / "shopfloor" / "mosquitto"

    @property
    def data(self) -> Path:
        return self.root / "lib" / "mosquitto"

    @property
    def log(self) -> Path:
        return self.root / "mosquitto.log"

    def localise(self, script: str) -> str:
        replacements = {
            "/etc/mosquitto": str(self.etc),
            "/var/lib/shopfloor/mosquitto": str(self.plugin_dir),
            "/var/lib/mosquitto": str(self.data),
            "1883": str(self.port),
            "0.0.0.0": "127.0.0.1",  # noqa: S104 - the page's address, replaced
            "<admin password, percent-encoded>": quote(self.admin_password, safe=""),
            "<bridge password>": self.bridge_password,
        }
        for old, new in replacements.items():
            script = script.replace(old, new)
        return script

    def env(self) -> dict[str, str]:
        """The environment of an operator's shell, with `shopfloor` on the PATH."""
        bin_dir = self.root / "bin"
        if not bin_dir.exists():
            bin_dir.mkdir()
            shim = bin_dir / "shopfloor"
            shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m shopfloor "$@"\n')
            shim.chmod(0o755)
        source = str(Path(shopfloor.__file__).parents[1])
        path = os.pathsep.join([str(bin_dir), "/usr/sbin", os.environ.get("PATH", "")])
        keep = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
        return {**keep, "PATH": path, "PYTHONPATH": source}

    def run(self, script: str, *, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.localise(script)],
            input=stdin, capture_output=True, text=True, env=self.env(), cwd=self.root,
            timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture
def site() -> Iterator[Site]:
    # Not pytest's tmp_path: its folders are closed to other users, and the broker runs
    # as `mosquitto`.
    root = Path(tempfile.mkdtemp(prefix="shopfloor-operator-"))
    root.chmod(0o755)
    (root / "etc").mkdir(mode=0o755)
    try:
        yield Site(
            root=root,
            port=free_port(),
            # The characters that must be percent-encoded in the URL.
            admin_password="adm@n:pa/ss%" + uuid.uuid4().hex,
            bridge_password="bridge-" + uuid.uuid4().hex,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def broker_started(site: Site, start: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The page's start command, in the background, logging to the site's log."""
    with site.log.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", "exec " + site.localise(start).strip(),
            stdout=log, stderr=log, env=site.env(),
        )  # fmt: skip
    try:
        broker = RunningBroker("127.0.0.1", site.port, site.root)

        async def listening() -> bool:
            assert process.returncode is None, site.log.read_text()
            try:
                _, writer = await asyncio.open_connection(broker.host, broker.port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await eventually(listening, seconds=10)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def problems(findings: list[Finding]) -> list[str]:
    return [f.message for f in findings if f.severity is Severity.PROBLEM]


def mosquitto_pub(
    site: Site, thing: dict[str, str], topic: str, payload: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(site.port), "-V", "mqttv5", "-q", "1",
         "-u", thing["id"], "-P", thing["key"], "-t", topic, "-m", payload],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


async def test_the_documented_steps_as_root_store_a_things_message(
    site: Site, make_settings: Callable[..., Settings]
) -> None:
    assert os.geteuid() == 0, "the operator's path runs as root (chown to mosquitto)"
    steps = doc_steps()
    assert set(steps) == {"prepare", "start", "serve"}, steps
    password_twice = f"{site.admin_password}\n{site.admin_password}\n"
    prepared = site.run(steps["prepare"], stdin=password_twice)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert site.dynsec_file.stat().st_mode & 0o777 == 0o600

    serve = steps["serve"].strip().splitlines()
    assert serve[-1] == "shopfloor serve"  # run below as a platform in this process
    exports = "\n".join(serve[:-1])
    async with broker_started(site, steps["start"]) as broker:
        checked = await asyncio.to_thread(
            site.run, exports + '\nprintf "%s\\n" "$SHOPFLOOR_MQTT_BROKER_URL"'
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "problem" not in checked.stdout and "warning" not in checked.stdout
        url = checked.stdout.strip().splitlines()[-1]
        assert BrokerUrl.parse(url).password == site.admin_password

        settings = make_settings(mqtt_broker_url=url, mqtt_bridge_password=site.bridge_password)
        async with running(settings) as api:
            plant = await build_plant(api)
            await _a_thing_publishes_and_it_is_stored(site, plant)
            await _what_differs_from_the_embedded_broker(site, plant)
            # The bridge's client exists now, and its password is the platform's.
            logins = await check_broker_logins(url, site.bridge_password)
            assert problems(logins) == [] and Severity.WARNING not in {f.severity for f in logins}
            await _an_unreadable_dynsec_file_is_named_by_health(site, plant, broker, steps)
    assert "Error saving in-memory database" not in site.log.read_text()
    await _missteps_are_named_by_the_check(site)


async def _a_thing_publishes_and_it_is_stored(site: Site, plant: Plant) -> None:
    press = plant.things["press"]
    topic = f"channels/{plant.channel}/messages/line-a"

    # The live sync adds the thing's client, then its ACLs: until then Mosquitto
    # refuses the login or the publish.
    async def stored() -> bool:
        await asyncio.to_thread(mosquitto_pub, site, press, topic, SENML)
        return bool((await plant.read(subtopic="line-a")).json()["total"])

    await eventually(stored, seconds=30)
    message = (await plant.read(subtopic="line-a")).json()["messages"][0]
    assert (message["name"], message["value"]) == ("spindle-rpm", 1480)
    assert (message["publisher"], message["protocol"]) == (press["id"], "mqtt")


async def _what_differs_from_the_embedded_broker(site: Site, plant: Plant) -> None:
    press, reader = plant.things["press"], plant.things["reader"]
    broker = RunningBroker("127.0.0.1", site.port, site.root)
    channel_topic = f"channels/{plant.channel}/messages"
    async with connected(broker, press["id"], press["key"]) as own, \
            connected(broker, reader["id"], reader["key"]) as subscriber:  # fmt: skip
        # The embedded broker's `_errors` is refused here: reports go to `_errors/<id>`.
        assert await subscribe(own, f"{channel_topic}/_errors") == NOT_AUTHORIZED
        assert await subscribe(own, f"{channel_topic}/_errors/{press['id']}") == 1
        assert await subscribe(subscriber, f"{channel_topic}/#") == 1
        # A payload the platform refuses reaches MQTT subscribers all the same (the
        # broker routes it before the bridge sees it); it is reported and counted.
        await own.client.publish(f"{channel_topic}/t", b"[1]", qos=1)
        report = await own.wait_for(lambda m: "_errors" in m.topic.value)
        assert json.loads(report.payload)["code"] == "invalid_senml"
        await subscriber.wait_for(lambda m: m.payload == b"[1]")
    metrics = (await plant.api.http.get("/metrics")).text
    assert 'shopfloor_mqtt_rejected_total{code="invalid_senml"} 1.0' in metrics
    # A channel the thing is not connected to: Mosquitto's own PUBACK 0x87 (MQTT 5,
    # QoS 1); the platform never sees the message, so it neither reports nor counts it.
    other = (await plant.api.http.post("/api/v1/channels", json={"name": "other"},
                                       headers=plant.user)).json()  # fmt: skip
    refused = await asyncio.to_thread(
        mosquitto_pub, site, press, f"channels/{other['id']}/messages", SENML
    )
    assert "Not authorized" in refused.stderr


async def _an_unreadable_dynsec_file_is_named_by_health(
    site: Site, plant: Plant, broker: asyncio.subprocess.Process, steps: dict[str, str]
) -> None:
    broker.terminate()
    await broker.wait()
    os.chown(site.dynsec_file, 0, 0)  # root's, as mosquitto_ctrl run by root leaves it
    async with broker_started(site, steps["start"]):

        async def explained() -> str:
            body = (await plant.api.http.get("/health")).json()
            problem = str(body.get("problems", {}).get("mosquitto", ""))
            return problem if "dynamic-security file" in problem else ""

        problem = await eventually(explained, seconds=20)
        assert "Not authorized" in problem and "shopfloor mosquitto check" in problem
        assert (await plant.api.http.get("/health")).status_code == 503
        found = problems(check_broker_files(read_broker_files(site.config)))
        assert found == [f"dynamic-security file {site.dynsec_file}: the broker runs as "
                         "mosquitto, who cannot read and write it; fix: chown "
                         f"mosquitto:mosquitto {site.dynsec_file} && chmod 600 "
                         f"{site.dynsec_file}"]  # fmt: skip
    assert "Error loading Dynamic security plugin config" in site.log.read_text()


async def _missteps_are_named_by_the_check(site: Site) -> None:
    mosquitto = pwd.getpwnam("mosquitto")
    os.chown(site.dynsec_file, mosquitto.pw_uid, mosquitto.pw_gid)
    assert problems(check_broker_files(read_broker_files(site.config))) == []

    site.dynsec_file.chmod(0o644)  # mosquitto_ctrl's mode
    (found,) = problems(check_broker_files(read_broker_files(site.config)))
    assert found.endswith(f"fix: chmod 600 {site.dynsec_file}")
    site.dynsec_file.chmod(0o600)

    os.chown(site.data, 0, 0)  # a persistence folder made by root
    (found,) = problems(check_broker_files(read_broker_files(site.config)))
    assert f"persistence folder {site.data}" in found
    assert found.endswith(f"chown mosquitto:mosquitto {site.data} && chmod 700 {site.data}")
    os.chown(site.data, mosquitto.pw_uid, mosquitto.pw_gid)

    site.plugin_dir.chmod(0o700)  # built under a umask of 077
    (found,) = problems(check_broker_files(read_broker_files(site.config)))
    assert f"cannot enter {site.plugin_dir}; fix: chmod o+x {site.plugin_dir}" in found
    started = await asyncio.to_thread(
        subprocess.run, ["mosquitto", "-c", str(site.config)], env=site.env(),
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert started.returncode != 0 and "Permission denied" in started.stderr + started.stdout
    site.plugin_dir.chmod(0o755)

    everywhere = site.root / "everywhere.conf"
    everywhere.write_text(site.config.read_text().replace(" 127.0.0.1\n", "\n", 1))
    warnings = [f.message for f in check_broker_files(read_broker_files(everywhere))
                if f.severity is Severity.WARNING]  # fmt: skip
    assert warnings == [
        f"listener {site.port} listens on every address of the host; give it "
        "one (shopfloor mosquitto config --bind-address) unless that is meant"
    ]

    url = f"mqtt://shopfloor-admin:{quote(site.admin_password, safe='')}@127.0.0.1:{site.port}"
    # (The broker is stopped by now: its login is a second problem.)
    found = problems(await check_broker_logins(url, "", seconds=1))
    assert "export SHOPFLOOR_MQTT_BRIDGE_PASSWORD=" in found[0]
    with pytest.raises(ValueError, match="SHOPFLOOR_MQTT_BRIDGE_PASSWORD"):
        MqttSettings(mqtt_broker_url=url)
    raw = f"mqtt://shopfloor-admin:{site.admin_password}@127.0.0.1:{site.port}"
    with pytest.raises(InvalidBrokerUrl, match="percent-encode"):
        BrokerUrl.parse(raw)
