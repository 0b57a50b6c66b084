"""A device from its label to stored data over MQTTS, and out again when revoked.

A real `shopfloor serve`; the device is played by the SDK (secure bootstrap) and by
Debian's `mosquitto_pub` / `mosquitto_sub` with the certificate bootstrap gave it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx

from shopfloor.sdk import abootstrap

from ..serving import ADMIN, free_port, serving
from ..tlskit import run_tool

TEMPLATE = """
name: meter
version: 1
thing: {name: "${name}", tags: [meter]}
channels: [{name: "${name} telemetry"}]
certificate: {issue: true, ttl: 24h}
bootstrap: {content: {interval_s: 5}}
"""
EXTERNAL_ID = "00:1b:44:11:3a:b7"
EXTERNAL_KEY = "printed-on-the-label-7f3a9c"


async def engineer(http: httpx.AsyncClient) -> dict[str, str]:
    root = await http.post("/api/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]})
    headers = {"Authorization": f"Bearer {root.json()['access_token']}"}
    org = (await http.post("/api/v1/orgs", json={"name": "Plant"}, headers=headers)).json()["id"]
    user = {"email": "eng@plant.example", "password": "password-123", "org_id": org,
            "role": "engineer"}  # fmt: skip
    assert (await http.post("/api/v1/users", json=user, headers=headers)).status_code == 201
    token = await http.post(
        "/api/v1/auth/token", json={"email": user["email"], "password": user["password"]}
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_a_device_onboards_publishes_over_mqtts_and_is_cut_off_when_revoked(
    tmp_path: Path,
) -> None:
    mqtts = free_port()
    settings = {
        "SHOPFLOOR_MQTTS_PORT": str(mqtts),
        "SHOPFLOOR_PUBLIC_MQTTS_URL": f"mqtts://127.0.0.1:{mqtts}",
    }
    with serving(tmp_path / "data", settings, name="onboarding") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # The operator: a template and the device's label.
            eng = await engineer(http)
            yaml = eng | {"Content-Type": "application/yaml"}
            made = await http.post("/api/v1/provision/templates", content=TEMPLATE, headers=yaml)
            assert made.status_code == 201, made.text
            provisioned = await http.post(
                "/api/v1/provision",
                json={"external_id": EXTERNAL_ID, "external_key": EXTERNAL_KEY,
                      "name": "meter-7", "template": "meter"},
                headers=eng,
            )  # fmt: skip
            assert provisioned.status_code == 201, provisioned.text
            serial = provisioned.json()["certificate"]["serial"]

            # The device: only its external id and key.
            config = await abootstrap(server.url, EXTERNAL_ID, EXTERNAL_KEY, secure=True)
            assert config.mqtts_url == f"mqtts://127.0.0.1:{mqtts}"
            assert json.loads(config.content) == {"interval_s": 5}
            files = config.write_credentials(tmp_path / "device")
            assert files.client_cert and files.client_key and files.ca_cert
            assert files.client_key.stat().st_mode & 0o777 == 0o600
            channel = config.channels[0].id
            tls = ["-h", "127.0.0.1", "-p", str(mqtts), "--cafile", str(files.ca_cert),
                   "--cert", str(files.client_cert), "--key", str(files.client_key)]  # fmt: skip
            topic = f"channels/{channel}/messages/power"
            payload = json.dumps([{"n": "kw", "u": "kW", "v": 41.5}])

            # It publishes with its certificate (no key), QoS 1; the reading is stored.
            code, output = await run_tool(
                "mosquitto_pub", *tls, "-t", topic, "-m", payload, "-q", "1"
            )
            assert code == 0, output
            reading = await _read_back(http, eng, channel)
            assert reading["value"] == 41.5 and reading["subtopic"] == "power"
            assert reading["publisher"] == config.thing_id and reading["protocol"] == "mqtt"

            # A live session with the same certificate, then the certificate is revoked.
            # stdbuf: mosquitto_sub buffers its output when it is not a terminal.
            sub = await asyncio.create_subprocess_exec(
                "stdbuf", "-oL", "mosquitto_sub", *tls, "-t", f"channels/{channel}/messages/#",
                "-q", "1", "-i", f"meter-{uuid.uuid4().hex[:6]}", "-d", "-V", "mqttv311",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                await _line_with(sub, "SUBACK", within=15)
                revoked = await http.delete(
                    f"/api/v1/certs/{serial}?reason=key_compromise", headers=eng
                )
                assert revoked.status_code == 200, revoked.text
                # Live sessions: hung up (documented: within 60 s; here, in-process, at once).
                await _line_with(sub, "Connection Refused: not authorised", within=60)
            finally:
                if sub.returncode is None:
                    sub.terminate()
                    await sub.wait()
            # New connections: refused at once.
            code, output = await run_tool(
                "mosquitto_pub", *tls, "-t", topic, "-m", payload, "-q", "1"
            )
            assert code != 0 and "not authorised" in output, output
            # The CRL, public, lists it.
            crl = await http.get("/api/v1/pki/crl.pem")
            (tmp_path / "crl.pem").write_text(crl.text)
            crl_file = str(tmp_path / "crl.pem")
            code, text = await run_tool("openssl", "crl", "-in", crl_file, "-noout", "-text")
            assert code == 0 and serial.upper().lstrip("0") in text.replace(":", ""), text


async def _read_back(http: httpx.AsyncClient, headers: dict[str, str], channel: str) -> dict:  # type: ignore[type-arg]
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        page = await http.get(f"/api/v1/channels/{channel}/messages", headers=headers)
        assert page.status_code == 200, page.text
        if page.json()["messages"]:
            message: dict = page.json()["messages"][0]  # type: ignore[type-arg]
            return message
        assert asyncio.get_running_loop().time() < deadline, "the reading was never stored"
        await asyncio.sleep(0.05)


async def _line_with(process: asyncio.subprocess.Process, text: str, *, within: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(within):
            while True:
                line = (await process.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError(f"mosquitto_sub ended before {text!r}: {seen}")
                seen.append(line)
                if text in line:
                    return line
    except TimeoutError:
        raise AssertionError(f"no {text!r} from mosquitto_sub: {seen}") from None
