"""Secure bootstrap: challenge + secure round trips per second, over HTTP.

N configurations are made through the API of a real `shopfloor serve` (services api and
bootstrap, the device limits raised out of the way); then `CONCURRENCY` simulated
devices bootstrap in turn for a fixed time, each doing what a device does: ask for a
challenge, derive the keys, send the proof, open the sealed answer. Only answers that
open and carry the configured thing id count.

Two anchors, measured in the same run on the same machine:

- the bare ASGI endpoint of `bench.anchor` answering the same two POSTs per exchange
  from the same client: what uvicorn and the HTTP client cost without Shopfloor;
- the bare cryptography of one exchange (both sides: two HKDF derivations each, the
  proof made and checked, AES-GCM seal and open) in a loop: what it costs without I/O.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._servers import anchor_server, create_plant, shopfloor_server
from shopfloor.bootstrap import b64decode, b64encode, derive_keys, open_document, seal_document

__all__ = ["BootstrapScenario"]

CONCURRENCY = 8
UNLIMITED = {
    "SHOPFLOOR_BOOTSTRAP_ID_REQUESTS_PER_MINUTE": "1000000000",
    "SHOPFLOOR_BOOTSTRAP_ID_BURST": "1000000",
    "SHOPFLOOR_BOOTSTRAP_ADDRESS_REQUESTS_PER_MINUTE": "1000000000",
    "SHOPFLOOR_BOOTSTRAP_ADDRESS_BURST": "1000000",
}
DOCUMENT = b'{"mainflux_id":"00000000-0000-0000-0000-000000000000","content":""}' * 8


def _crypto_rate(seconds: float) -> tuple[float, int]:
    key = secrets.token_urlsafe(24)
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        challenge = secrets.token_bytes(32)
        device = derive_keys("bench-0", key, challenge)
        server = derive_keys("bench-0", key, challenge)
        assert server.proof_matches(device.proof())
        sealed = seal_document(server, DOCUMENT)
        open_document(device, b64decode(sealed["nonce"]), b64decode(sealed["ciphertext"]))
        done += 1
    return done / (time.perf_counter() - started), done


async def _devices(
    url: str, devices: list[tuple[str, str, str]], seconds: float, *, bare: bool
) -> tuple[int, int]:
    """(exchanges that opened with the right thing id, failures) in `seconds`."""
    ok = failed = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def device(http: httpx.AsyncClient, index: int) -> None:
        nonlocal ok, failed
        n = index
        while time.perf_counter() < deadline:
            external_id, key, thing_id = devices[n % len(devices)]
            n += CONCURRENCY
            try:
                if bare:
                    first = await http.post(f"/bootstrap/{external_id}/challenge")
                    second = await http.post(f"/bootstrap/{external_id}/secure", json={})
                    good = first.status_code == second.status_code == 202
                else:
                    answer = (await http.post(f"/bootstrap/{external_id}/challenge")).json()
                    challenge = b64decode(answer["challenge"])
                    keys = derive_keys(external_id, key, challenge)
                    body = {"challenge": answer["challenge"], "proof": b64encode(keys.proof())}
                    sealed = (await http.post(f"/bootstrap/{external_id}/secure", json=body)).json()
                    opened = open_document(
                        keys, b64decode(sealed["nonce"]), b64decode(sealed["ciphertext"])
                    )
                    good = thing_id.encode() in opened
            except (httpx.HTTPError, KeyError, ValueError):
                good = False
            if good:
                ok += 1
            else:
                failed += 1

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        await asyncio.gather(*(device(http, i) for i in range(CONCURRENCY)))
    return ok, failed


def _configure(url: str, count: int) -> list[tuple[str, str, str]]:
    plant = create_plant(url)
    devices = []
    with httpx.Client(base_url=url, headers=plant.user, timeout=30) as http:
        for i in range(count):
            external_id, key = f"bench-{i:05d}", secrets.token_urlsafe(24)
            response = http.post(
                "/api/v1/bootstrap/configs",
                json={
                    "external_id": external_id,
                    "external_key": key,
                    "name": external_id,
                    "channels": [plant.channel],
                    "content": '{"interval": 5}',
                },
            )
            response.raise_for_status()
            devices.append((external_id, key, response.json()["thing_id"]))
    return devices


class BootstrapScenario(Scenario, name="bootstrap"):
    title = "Secure bootstrap: exchanges per second"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        seconds = ctx.pick(2.0, 20.0)
        configs = ctx.pick(20, 1000)

        crypto_rate, crypto_done = _crypto_rate(ctx.pick(0.5, 5.0))
        with anchor_server(ctx.python, ctx.work_dir) as anchor:
            bare_ok, bare_failed = asyncio.run(
                _devices(anchor.url, [("bench-0", "", "")], seconds, bare=True)
            )
        with shopfloor_server(
            ctx.python,
            ctx.work_dir / "bootstrap-data",
            services="api,bootstrap",
            settings=UNLIMITED,
        ) as server:
            devices = _configure(server.url, configs)
            ok, failed = asyncio.run(_devices(server.url, devices, seconds, bare=False))
            metrics = httpx.get(f"{server.url}/metrics", timeout=10).text

        rate, bare_rate = ok / seconds, bare_ok / seconds
        result.check("every secure answer opened with the thing id", failed == 0 and ok > 0,
                     f"{ok} opened, {failed} failed")  # fmt: skip
        result.check("the bare endpoint answered every request", bare_failed == 0 and bare_ok > 0,
                     f"{bare_ok} pairs, {bare_failed} failed")  # fmt: skip
        result.check("the server counted the exchanges", 'outcome="ok"' in metrics)
        result.check("the crypto loop ran", crypto_done > 0, f"{crypto_done} exchanges")
        result.figures.append(
            Figure(
                key="bootstrap.secure_rate",
                label=f"secure bootstraps/s ({CONCURRENCY} devices, {configs} configs)",
                value=rate,
                unit="requests/s",
                anchor=Anchor(label="bare ASGI endpoint, same two POSTs", value=bare_rate),
                detail=f"{ok} exchanges in {seconds:g} s",
            )
        )
        result.figures.append(
            Figure(
                key="bootstrap.crypto_rate",
                label="bare exchange cryptography (both sides), exchanges/s",
                value=crypto_rate,
                unit="requests/s",
                detail=f"{crypto_done} exchanges",
            )
        )
        result.notes.append(
            "Each secure bootstrap is two HTTP requests (challenge, secure) and two database "
            "transactions for the challenge, a configuration read, the thing read and its "
            "channels; the client's own crypto runs in the same process as the load."
        )
