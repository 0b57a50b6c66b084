"""HTTP through httpx: polled JSON endpoints, writes and calls, and webhooks.

    http://user:password@host:8080/base?health=/health    also https://

Addresses are `[METHOD] /path[#/json/pointer]` relative to the URL: `GET /status#/temperature`
reads the `temperature` member of `/status`'s JSON answer (JSON pointers, RFC 6901;
without one the whole answer). Reads of several addresses fetch each path once. A
member that is absent reads as a `bad` reading; so does an answer 5xx; 404 is
`InvalidAddress`. Bodies that are not JSON are text.

`write(address, value)` sends the value as JSON with PUT (or the address's method);
`call(address, *args)` POSTs (or the address's method) no body, the one argument, or
the arguments as a JSON array, and returns the answer (at the pointer, if given).
Subscriptions poll, except for webhook paths: after `url = await http.webhook("/hooks/press")`
the machine POSTs JSON to `url`, and `subscribe(["/hooks/press#/temperature"])` yields
a reading per POST. The heartbeat GETs `health` and wants a 2xx (without `health`, any
answer from `/` below 500 will do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlunsplit

import httpx

from shopfloor.core import ErrorKind

from ._connector import Connector, Emit
from ._errors import (
    CallFailed,
    ConnectorError,
    ConnectorTimeout,
    ConnectorUnavailable,
    InvalidAddress,
    InvalidConnectorUrl,
    WriteRefused,
)
from ._payload import decode_payload, parse_pointer, resolve_pointer
from ._types import ConnectorOptions, Quality, Reading
from ._url import ConnectorUrl
from ._webhook import WebhookReceiver

__all__ = ["HttpConnector"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True, slots=True)
class HttpAddress:
    text: str
    method: str | None
    path: str
    pointer: tuple[str, ...]
    has_pointer: bool


class HttpConnector(Connector[HttpAddress], protocol="http", aliases=("https",)):
    """A machine's HTTP API (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        health: str | None = None,
        auth: tuple[str, str] | None = None,
        options: ConnectorOptions | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name or base_url, options=options)
        self.base_url = base_url.rstrip("/")
        self.health = health
        self._auth = auth
        self._client: httpx.AsyncClient | None = None
        self._receiver: WebhookReceiver | None = None

    @classmethod
    def from_url(cls, url: str) -> Self:
        parsed = ConnectorUrl(url, schemes=("http", "https"))
        host, port = parsed.endpoint(443 if parsed.parts.scheme == "https" else 80)
        username, password = parsed.credentials()
        health = parsed.text("health", "") or None
        if health is not None and not health.startswith("/"):
            raise InvalidConnectorUrl(f"the health option is a path, not {health!r}")
        options = parsed.options()
        parsed.finish()
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        base = urlunsplit((parsed.parts.scheme, netloc, parsed.parts.path, "", ""))
        auth = (username, password or "") if username else None
        return cls(
            base, health=health, auth=auth, options=options,
            name=parsed.label,
        )  # fmt: skip

    def _parse(self, address: str) -> HttpAddress:
        text = address.strip()
        method, _, rest = text.partition(" ")
        if not rest:
            method, rest = "", text
        elif method.upper() not in METHODS:
            raise InvalidAddress(f"HTTP address {address!r}: unknown method {method!r}")
        path, hash_, pointer = rest.strip().partition("#")
        if not path.startswith("/"):
            raise InvalidAddress(f"HTTP address {address!r}: a path starts with '/'")
        try:
            tokens = parse_pointer(pointer)
        except ValueError as exc:
            raise InvalidAddress(f"HTTP address {address!r}: {exc}") from None
        return HttpAddress(text, method.upper() or None, path, tokens, bool(hash_))

    def _connected(self) -> httpx.AsyncClient:
        if self._client is None:
            raise ConnectorUnavailable(f"connector {self.name}: not connected")
        return self._client

    async def _open(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=self.options.timeout, auth=self._auth
        )
        await self._probe()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _probe(self) -> None:
        response = await self._connected().get(self.health or "/")
        if self.health is not None and not response.is_success:
            raise ConnectorUnavailable(
                f"connector {self.name}: {self.health} answered {response.status_code}"
            )
        if response.status_code >= 500:
            raise ConnectorUnavailable(f"connector {self.name}: / answered {response.status_code}")

    async def _fetch(self, method: str, path: str, *body: Any) -> httpx.Response:
        """One request; `body`, when given, is the JSON to send."""
        client = self._connected()
        if body:
            return await client.request(method, path, json=body[0])
        return await client.request(method, path)

    async def _read(self, addresses: Sequence[HttpAddress]) -> list[Reading]:
        answers: dict[tuple[str, str], Any] = {}
        readings = []
        for address in addresses:
            key = (address.method or "GET", address.path)
            if key not in answers:
                answers[key] = await self._answer_of(key, address)
            readings.append(self._reading(address, answers[key]))
        return readings

    async def _answer_of(self, key: tuple[str, str], address: HttpAddress) -> httpx.Response:
        response = await self._fetch(*key)
        if response.status_code in (404, 405, 410):
            raise InvalidAddress(f"{address.text}: the machine answered {response.status_code}")
        if 400 <= response.status_code < 500:
            raise ConnectorError(
                f"{address.text}: the machine answered {response.status_code}",
                kind=_client_error_kind(response.status_code),
            )
        return response

    def _reading(self, address: HttpAddress, response: httpx.Response) -> Reading:
        if not response.is_success:
            return Reading(address.text, None, quality=Quality.BAD)
        return self._at_pointer(address, decode_payload(response.content))

    def _at_pointer(self, address: HttpAddress, document: Any) -> Reading:
        try:
            return Reading(address.text, resolve_pointer(document, address.pointer))
        except LookupError:
            return Reading(address.text, None, quality=Quality.BAD)

    async def _write(self, address: HttpAddress, value: Any) -> None:
        if address.has_pointer:
            raise InvalidAddress(f"{address.text}: a write sends a whole body, not a member")
        response = await self._fetch(address.method or "PUT", address.path, value)
        if response.status_code in (404, 405, 410):
            raise InvalidAddress(f"{address.text}: the machine answered {response.status_code}")
        if not response.is_success:
            raise WriteRefused(f"{address.text}: the machine answered {response.status_code}")

    async def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        address = self._parse(method)
        body = () if not args else (args[0],) if len(args) == 1 else (list(args),)
        response = await self._fetch(address.method or "POST", address.path, *body)
        if response.status_code in (404, 405, 410):
            raise InvalidAddress(f"{address.text}: the machine answered {response.status_code}")
        if not response.is_success:
            raise CallFailed(f"{address.text}: the machine answered {response.status_code}")
        if not response.content:
            return None
        reading = self._at_pointer(address, decode_payload(response.content))
        if not reading.good:
            raise CallFailed(f"{address.text}: the answer has nothing at the pointer")
        return reading.value

    async def webhook(self, path: str, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Take POSTs to `path` (for `subscribe`); returns the URL to give the machine.

        The first call starts the receiver on `host:port` (0: a free port); it stops
        when the connector closes.
        """
        if not self._entered or self.stopping:
            raise RuntimeError("webhooks are taken while the connector is open (async with)")
        if not path.startswith("/") or "#" in path or "?" in path:
            raise InvalidAddress(f"a webhook path starts with '/' and is only a path: {path!r}")
        if self._receiver is None:
            receiver = WebhookReceiver()
            await receiver.start(host, port)
            self._stack.push_async_callback(receiver.close)
            self._receiver = receiver
        return self._receiver.declare(path)

    def _hooked(self, address: HttpAddress) -> bool:
        return (
            self._receiver is not None
            and address.method in (None, "POST")
            and self._receiver.declared(address.path)
        )

    async def _feed(self, addresses: Sequence[HttpAddress], interval: float, emit: Emit) -> None:
        hooked = [address for address in addresses if self._hooked(address)]
        polled = [address for address in addresses if not self._hooked(address)]
        detach = []
        if hooked and self._receiver is not None:
            for address in hooked:

                def sink(body: bytes, address: HttpAddress = address) -> None:
                    emit(self._at_pointer(address, decode_payload(body)))

                detach.append(self._receiver.attach(address.path, sink))
        try:
            if polled:
                await super()._feed(polled, interval, emit)
            else:
                await asyncio.get_running_loop().create_future()
        finally:
            for each in detach:
                each()

    def _translate(self, exc: Exception) -> ConnectorError:
        if isinstance(exc, httpx.TimeoutException):
            return ConnectorTimeout(f"connector {self.name}: no answer in time")
        if isinstance(exc, httpx.TransportError):
            return ConnectorUnavailable(f"connector {self.name}: {type(exc).__name__}: {exc}")
        return super()._translate(exc)


def _client_error_kind(status: int) -> ErrorKind:
    return {401: ErrorKind.UNAUTHENTICATED, 403: ErrorKind.FORBIDDEN}.get(status, ErrorKind.INVALID)
