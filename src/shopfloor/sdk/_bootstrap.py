"""Bootstrapping a device: from an external id and key to its thing credentials.

    config = bootstrap("https://plant.example", "aa:bb:cc:dd:ee:ff", EXTERNAL_KEY)
    paths = config.write_credentials("/etc/device/tls")   # client key written 0600

`secure=True` (the default) runs Shopfloor's challenge exchange (docs/bootstrap.md):
the external key never travels, and an answer that was changed or replayed is refused
with `BootstrapResponseTampered`. `secure=False` is Mainflux's plain fetch, for servers
that speak only that; use it over HTTPS alone.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from shopfloor.bootstrap import ExchangeKeys, b64decode, b64encode, derive_keys, open_document

from ._errors import BootstrapRefused, BootstrapResponseTampered, BootstrapUnreachable

__all__ = ["CredentialPaths", "DeviceChannel", "DeviceConfig", "abootstrap", "bootstrap"]

Verify = bool | str | os.PathLike[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChannel:
    id: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialPaths:
    """Files written for an MQTTS client; None where the configuration had nothing."""

    client_cert: Path | None
    client_key: Path | None
    ca_cert: Path | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfig:
    """What bootstrap gave the device."""

    thing_id: str
    thing_key: str = field(repr=False)
    channels: tuple[DeviceChannel, ...]
    content: str
    client_cert: str
    client_key: str = field(repr=False)
    ca_cert: str
    mqtt_url: str = ""
    mqtts_url: str = ""
    http_url: str = ""
    #: 1 when the thing is connected to its channels; 0 until someone activates it.
    state: int = 0

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> DeviceConfig:
        """From the JSON a bootstrap server answers (Mainflux's fields; ours if present)."""
        extras = document.get("shopfloor") or {}
        return cls(
            thing_id=str(document["mainflux_id"]),
            thing_key=str(document["mainflux_key"]),
            channels=tuple(
                DeviceChannel(
                    id=str(c["id"]), name=str(c.get("name", "")), metadata=c.get("metadata") or {}
                )
                for c in document.get("mainflux_channels") or ()
            ),
            content=str(document.get("content") or ""),
            client_cert=str(document.get("client_cert") or ""),
            client_key=str(document.get("client_key") or ""),
            ca_cert=str(document.get("ca_cert") or ""),
            mqtt_url=str(extras.get("mqtt_url") or ""),
            mqtts_url=str(extras.get("mqtts_url") or ""),
            http_url=str(extras.get("http_url") or ""),
            state=int(extras.get("state") or 0),
        )

    def write_credentials(self, directory: str | os.PathLike[str]) -> CredentialPaths:
        """Write `client.crt`, `client.key` (0600) and `ca.crt` into `directory` (0700)."""
        folder = Path(directory)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return CredentialPaths(
            client_cert=_write(folder / "client.crt", self.client_cert, 0o644),
            client_key=_write(folder / "client.key", self.client_key, 0o600),
            ca_cert=_write(folder / "ca.crt", self.ca_cert, 0o644),
        )


def _write(path: Path, text: str, mode: int) -> Path | None:
    if not text:
        return None
    # A new file, created with its mode: a key is never readable by others, not even briefly.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path


# -- the exchange, without I/O ----------------------------------------------------------


def _paths(external_id: str) -> tuple[str, str, str]:
    quoted = quote(external_id, safe="")
    return f"/bootstrap/{quoted}", f"/bootstrap/{quoted}/challenge", f"/bootstrap/{quoted}/secure"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        retry = response.headers.get("Retry-After")
        raise BootstrapRefused(
            str(error.get("message") or f"the server answered {response.status_code}"),
            status=response.status_code,
            code=str(error.get("code") or f"http_{response.status_code}"),
            retry_after=float(retry) if retry and retry.isdigit() else None,
        )
    if not isinstance(body, dict):
        raise BootstrapUnreachable(f"{response.url} did not answer a bootstrap document")
    return body


def _secure_request(
    external_id: str, external_key: str, answer: Mapping[str, Any]
) -> tuple[ExchangeKeys, dict[str, str]]:
    try:
        challenge = b64decode(str(answer["challenge"]))
        keys = derive_keys(external_id, external_key, challenge)
    except (KeyError, ValueError) as exc:
        raise BootstrapUnreachable("the server's challenge is not one") from exc
    return keys, {"challenge": b64encode(challenge), "proof": b64encode(keys.proof())}


def open_answer(keys: ExchangeKeys, answer: Mapping[str, Any]) -> DeviceConfig:
    """The configuration in a secure answer; `BootstrapResponseTampered` if it does not open."""
    try:
        nonce = b64decode(str(answer["nonce"]))
        ciphertext = b64decode(str(answer["ciphertext"]))
        document = json.loads(open_document(keys, nonce, ciphertext))
    except (KeyError, ValueError) as exc:
        raise BootstrapResponseTampered(
            "the secure answer does not open under this exchange's key: changed on the way, "
            "or replayed"
        ) from exc
    return DeviceConfig.from_document(document)


def _ssl(verify: Verify) -> bool | ssl.SSLContext:
    if isinstance(verify, bool):
        return verify
    return ssl.create_default_context(cafile=os.fspath(verify))


# -- sync and async clients -------------------------------------------------------------


def bootstrap(
    url: str,
    external_id: str,
    external_key: str,
    *,
    secure: bool = True,
    timeout: float = 10.0,
    verify: Verify = True,
    transport: httpx.BaseTransport | None = None,
) -> DeviceConfig:
    """Ask the bootstrap server at `url` for this device's configuration.

    `verify` is True (system CAs), False, or the path of a CA file for the server's
    certificate; `transport` is for tests.
    """
    fetch, challenge, sealed = _paths(external_id)
    try:
        with httpx.Client(
            base_url=url, timeout=timeout, verify=_ssl(verify), transport=transport
        ) as http:
            if not secure:
                headers = {"Authorization": f"Thing {external_key}"}
                return DeviceConfig.from_document(_json(http.get(fetch, headers=headers)))
            keys, body = _secure_request(external_id, external_key, _json(http.post(challenge)))
            return open_answer(keys, _json(http.post(sealed, json=body)))
    except httpx.HTTPError as exc:
        raise BootstrapUnreachable(f"cannot reach {url}: {exc}") from exc


async def abootstrap(
    url: str,
    external_id: str,
    external_key: str,
    *,
    secure: bool = True,
    timeout: float = 10.0,  # noqa: ASYNC109 - httpx timeouts per request, as the sync twin
    verify: Verify = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> DeviceConfig:
    """`bootstrap`, for asyncio."""
    fetch, challenge, sealed = _paths(external_id)
    try:
        async with httpx.AsyncClient(
            base_url=url, timeout=timeout, verify=_ssl(verify), transport=transport
        ) as http:
            if not secure:
                headers = {"Authorization": f"Thing {external_key}"}
                return DeviceConfig.from_document(_json(await http.get(fetch, headers=headers)))
            answer = _json(await http.post(challenge))
            keys, body = _secure_request(external_id, external_key, answer)
            return open_answer(keys, _json(await http.post(sealed, json=body)))
    except httpx.HTTPError as exc:
        raise BootstrapUnreachable(f"cannot reach {url}: {exc}") from exc
