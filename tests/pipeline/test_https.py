"""HTTPS with client certificates: a thing's certificate stands in for its key on the HTTP
adapter and the WebSocket adapter; a revoked certificate is refused at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from shopfloor.adapters.capability import HttpService
from shopfloor.app import create_app
from shopfloor.httpserver import server_config
from shopfloor.pki import CertificateGate
from shopfloor.settings import Settings

from ..api.conftest import Api
from ..serving import served_app
from ..tlskit import Issued, TestCa
from .conftest import Plant, build_plant

BODY = '[{"n": "temp", "v": 20.5}]'


@dataclass
class Https:
    plant: Plant
    ca: TestCa
    gate: CertificateGate
    port: int

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def cert(self, name: str) -> Issued:
        return self.ca.issue(self.plant.things[name]["id"])

    def client(self, issued: Issued | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base, verify=self.ca.client_context(issued), timeout=30
        )

    @property
    def path(self) -> str:
        return f"/http/channels/{self.plant.channel}/messages"


@pytest.fixture
async def https(make_settings: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[Https]:
    ca = TestCa(tmp_path / "ca")
    server = ca.server()
    settings = make_settings(
        tls_cert=server.cert_file, tls_key=server.key_file, tls_client_ca=ca.ca_file
    )
    app = create_app(settings)
    async with (
        served_app(server_config(app, settings)) as port,
        httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{port}", verify=ca.client_context(), timeout=30
        ) as http,
    ):
        plant = await build_plant(Api(http, app.state.platform))  # key and token logins work
        gate = app.state.platform.get(HttpService).gate
        assert isinstance(gate, CertificateGate)
        yield Https(plant, ca, gate, port)


async def test_a_thing_publishes_with_its_certificate_instead_of_a_key(https: Https) -> None:
    async with https.client(https.cert("press")) as press:
        response = await press.post(
            https.path, content=BODY, headers={"Content-Type": "application/senml+json"}
        )
    assert response.status_code == 202, response.text
    stored = await https.plant.wait_for(1)
    assert stored["messages"][0]["publisher"] == https.plant.things["press"]["id"]


async def test_curl_with_a_client_certificate(https: Https) -> None:
    press = https.cert("press")
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
        "--cacert", str(https.ca.ca_file), "--cert", str(press.cert_file),
        "--key", str(press.key_file), "-H", "Content-Type: application/senml+json",
        "--data", BODY, https.base + https.path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(15):
        out, err = await process.communicate()
    assert out.decode() == "202", err.decode()


@pytest.mark.parametrize(
    ("problem", "code"),
    [("revoked", "certificate_revoked"), ("agent", "certificate_not_a_thing")],
)
async def test_refused_certificates_are_401_with_their_code(
    https: Https, problem: str, code: str
) -> None:
    if problem == "agent":
        issued = https.ca.issue("agent-1", entity_type="agent")
    else:
        issued = https.cert("press")
        https.gate.revoke(issued.serial)
    async with https.client(issued) as client:
        response = await client.post(
            https.path, content=BODY, headers={"Content-Type": "application/senml+json"}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


async def test_without_key_or_certificate_https_asks_for_credentials(https: Https) -> None:
    async with https.client(None) as client:
        response = await client.post(https.path, content=BODY)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"


async def test_a_websocket_session_by_certificate_closes_when_it_is_revoked(
    https: Https,
) -> None:
    reader = https.cert("reader")
    url = f"wss://127.0.0.1:{https.port}/ws/channels/{https.plant.channel}/messages"
    async with websockets.connect(url, ssl=https.ca.client_context(reader)) as ws:
        for _ in range(50):  # its bus subscription is made asynchronously
            assert (await https.plant.publish("press", BODY)).status_code == 202
            try:
                received = await asyncio.wait_for(ws.recv(), 0.2)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("the subscription never delivered")
        assert json.loads(received) == json.loads(BODY)
        https.gate.revoke(reader.serial)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
