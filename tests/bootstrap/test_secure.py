"""The secure exchange: round trip through the SDK over HTTP, tampering, replay, expiry."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from shopfloor.auth.capability import IdentityService
from shopfloor.bootstrap import (
    Bootstrap,
    b64decode,
    b64encode,
    context,
    derive_keys,
    open_document,
    seal_document,
)
from shopfloor.sdk import (
    BootstrapRefused,
    BootstrapResponseTampered,
    abootstrap,
    bootstrap,
    open_answer,
)

from ..api.conftest import Api
from ..serving import served_app
from .conftest import Plant, configure, new_key


@pytest.fixture
async def served(api: Api) -> AsyncIterator[str]:
    config = uvicorn.Config(api.app, lifespan="off", log_level="warning")
    async with served_app(config) as port:
        yield f"http://127.0.0.1:{port}"


async def _exchange(http: httpx.AsyncClient, external_id: str, key: str) -> tuple[bytes, dict]:
    answer = (await http.post(f"/bootstrap/{external_id}/challenge")).json()
    challenge = b64decode(answer["challenge"])
    keys = derive_keys(external_id, key, challenge)
    body = {"challenge": answer["challenge"], "proof": b64encode(keys.proof())}
    response = await http.post(f"/bootstrap/{external_id}/secure", json=body)
    assert response.status_code == 200, response.text
    return challenge, response.json()


async def test_sdk_round_trip_over_http(
    api: Api, plant: Plant, served: str, tmp_path: Path
) -> None:
    key = new_key()
    config = await configure(
        api, plant, "sdk-1", key, client_cert="CERT", client_key="KEY", ca_cert="CA"
    )
    registry = api.platform.get(IdentityService).registry
    thing = await registry.get_thing(plant.org_id, config["thing_id"])

    got = await abootstrap(served, "sdk-1", key)
    assert got.thing_id == thing.id and got.thing_key == registry.thing_key(thing)
    assert [c.id for c in got.channels] == plant.channels
    assert (got.client_cert, got.client_key, got.ca_cert) == ("CERT", "KEY", "CA")
    plain = await asyncio.to_thread(bootstrap, served, "sdk-1", key, secure=False)
    synced = await asyncio.to_thread(bootstrap, served, "sdk-1", key)
    assert plain == synced == got

    paths = got.write_credentials(tmp_path / "tls")
    assert paths.client_key is not None and paths.client_key.read_text() == "KEY"
    assert os.stat(paths.client_key).st_mode & 0o777 == 0o600
    assert paths.ca_cert is not None and paths.ca_cert.read_text() == "CA"

    with pytest.raises(BootstrapRefused) as refused:
        await abootstrap(served, "sdk-1", new_key())
    assert refused.value.code == "bootstrap_denied" and refused.value.status == 403


async def test_every_changed_byte_of_nonce_or_ciphertext_is_refused(api: Api, plant: Plant) -> None:
    key = new_key()
    await configure(api, plant, "tamper", key)
    challenge, answer = await _exchange(api.http, "tamper", key)
    keys = derive_keys("tamper", key, challenge)
    nonce, ciphertext = b64decode(answer["nonce"]), b64decode(answer["ciphertext"])
    assert json.loads(open_document(keys, nonce, ciphertext))["mainflux_channels"]

    for field, raw in (("nonce", nonce), ("ciphertext", ciphertext)):
        for position in range(len(raw)):
            changed = bytearray(raw)
            changed[position] ^= 0x01
            tampered = answer | {field: b64encode(bytes(changed))}
            with pytest.raises(BootstrapResponseTampered) as caught:
                open_answer(keys, tampered)
            assert caught.value.code == "bootstrap_response_tampered", (field, position)
    truncated = answer | {"ciphertext": b64encode(ciphertext[:-1])}
    with pytest.raises(BootstrapResponseTampered):
        open_answer(keys, truncated)


async def test_an_old_answer_does_not_open_under_a_new_challenge(api: Api, plant: Plant) -> None:
    key = new_key()
    await configure(api, plant, "replay", key)
    _old_challenge, old_answer = await _exchange(api.http, "replay", key)
    fresh = (await api.http.post("/bootstrap/replay/challenge")).json()
    keys = derive_keys("replay", key, b64decode(fresh["challenge"]))
    with pytest.raises(BootstrapResponseTampered):
        open_answer(keys, old_answer)  # an attacker answering the new request with the old one


async def test_a_challenge_answers_once(api: Api, plant: Plant) -> None:
    key = new_key()
    await configure(api, plant, "once", key)
    answer = (await api.http.post("/bootstrap/once/challenge")).json()
    assert answer["expires_in"] == 60 and len(b64decode(answer["challenge"])) == 32
    keys = derive_keys("once", key, b64decode(answer["challenge"]))
    body = {"challenge": answer["challenge"], "proof": b64encode(keys.proof())}
    assert (await api.http.post("/bootstrap/once/secure", json=body)).status_code == 200
    again = await api.http.post("/bootstrap/once/secure", json=body)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "bootstrap_challenge_invalid"
    # a challenge belongs to the id it was issued to
    other = (await api.http.post("/bootstrap/someone-else/challenge")).json()
    body = {"challenge": other["challenge"], "proof": b64encode(keys.proof())}
    assert (await api.http.post("/bootstrap/once/secure", json=body)).status_code == 401
    garbage = {"challenge": "not base64!", "proof": "x"}
    assert (await api.http.post("/bootstrap/once/secure", json=garbage)).status_code == 401


async def test_an_expired_challenge_is_refused(
    api: Api, plant: Plant, bootstrap: Bootstrap
) -> None:
    key = new_key()
    await configure(api, plant, "late", key)
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    bootstrap.challenges.clock = lambda: now[0]
    answer = (await api.http.post("/bootstrap/late/challenge")).json()
    keys = derive_keys("late", key, b64decode(answer["challenge"]))
    body = {"challenge": answer["challenge"], "proof": b64encode(keys.proof())}
    now[0] += timedelta(seconds=60)
    response = await api.http.post("/bootstrap/late/secure", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bootstrap_challenge_invalid"


async def test_a_wrong_proof_is_denied_and_counted(api: Api, plant: Plant) -> None:
    config = await configure(api, plant, "guess", new_key())
    answer = (await api.http.post("/bootstrap/guess/challenge")).json()
    keys = derive_keys("guess", new_key(), b64decode(answer["challenge"]))
    body = {"challenge": answer["challenge"], "proof": b64encode(keys.proof())}
    response = await api.http.post("/bootstrap/guess/secure", json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "bootstrap_denied"
    got = await api.http.get(
        f"/api/v1/bootstrap/configs/{config['thing_id']}", headers=plant.engineer
    )
    assert got.json()["failed_attempts"] == 1


def test_wire_vector() -> None:
    """The example of docs/bootstrap.md, recomputed: change one, change both."""
    external_id, external_key = "aa:bb:cc:dd:ee:ff", "device-secret-0123456789"
    challenge, nonce = bytes(range(32)), bytes(range(100, 112))
    keys = derive_keys(external_id, external_key, challenge)
    assert keys.context == context(external_id, challenge)
    assert keys.context[:23] == b"shopfloor-bootstrap-v1\x00"
    sealed = seal_document(keys, b'{"mainflux_id":"t"}', nonce=nonce)
    vector = {
        "challenge": b64encode(challenge),
        "k_auth": keys.auth.hex(),
        "k_enc": keys.enc.hex(),
        "proof": b64encode(keys.proof()),
        "nonce": sealed["nonce"],
        "ciphertext": sealed["ciphertext"],
    }
    docs = (Path(__file__).resolve().parents[2] / "docs" / "bootstrap.md").read_text()
    for name, value in vector.items():
        assert f"{name} = {value}" in docs, (name, value)
