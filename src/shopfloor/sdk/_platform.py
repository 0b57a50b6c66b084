"""The platform's API, as the agent: signed in with its certificate, no token to keep.

    assertion = AgentAssertion(credentials)        # {"Authorization": "Bearer <jwt>"}
    async with RelationCache(platform_url, assertion, verify=platform_tls(ca)) as cache:
        ...
    async with PlatformClient(platform_url, credentials) as platform:
        await platform.report("run-id", change)   # the state published, kept by the platform
        async for change in platform.follow("mill-1"):   # a state path beside gRPC
            ...

An assertion is a JWT the agent signs with its key, its certificate in the header
(`shopfloor.pki.mint_assertion`, docs/agents.md has the claims): made again when two
thirds of its life are gone, and at once after the certificate was renewed.

`follow(target)` reads `GET /api/v1/agents/{target}/state?follow=true`: the target's
last reported state and each new one, while the platform sees the target running; it
ends with `AgentUnreachable` when the platform sees it stop (or the feed is lost), as a
gRPC `Follow` does when the target goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import grpc
import httpx
from cryptography.hazmat.primitives import serialization

from shopfloor.core import Backoff, SseParser
from shopfloor.pki import AssertionKey, mint_assertion

from ._client import StateChange
from ._context import AgentContextError
from ._errors import (
    AgentError,
    AgentRefused,
    AgentUnreachable,
    PeerUnknown,
    PlatformRefused,
    PlatformUnreachable,
)
from ._tls import AgentCredentials, platform_tls

__all__ = ["AgentAssertion", "PlatformClient", "StateReporter"]

logger = logging.getLogger(__name__)

AGENTS = "/api/v1/agents"


class AgentAssertion:
    """`Authorization` headers for the platform's API, as the agent whose credentials
    these are: call it for each request (`RelationCache` takes it as `auth_headers`)."""

    def __init__(self, credentials: AgentCredentials, *, lifetime: int = 300) -> None:
        self.credentials = credentials
        self.lifetime = lifetime
        self._token = ""
        self._renew_at = 0.0
        self._generation = -1

    def __call__(self) -> dict[str, str]:
        material = self.credentials.material  # looks at the files now and then
        generation = self.credentials.generation
        now = time.time()
        if generation != self._generation or now >= self._renew_at:
            key = serialization.load_pem_private_key(material.key_pem, password=None)
            if not isinstance(key, AssertionKey):
                raise AgentContextError(f"key.pem holds a {type(key).__name__}: no JWS for it")
            self._token = mint_assertion(material.certificate, key, lifetime=self.lifetime, now=now)
            self._renew_at = now + self.lifetime * 2 / 3
            self._generation = generation
        return {"Authorization": f"Bearer {self._token}"}


class PlatformClient:
    """State reports and followed states through the platform, as this agent."""

    def __init__(
        self,
        base_url: str,
        credentials: AgentCredentials,
        *,
        timeout: float = 10.0,
        idle_timeout: float = 45.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.assertion = AgentAssertion(credentials)
        self._idle = httpx.Timeout(timeout, read=idle_timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            verify=platform_tls(credentials.files[2]),
        )  # fmt: skip

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def report(self, name: str, run: str, change: StateChange) -> bool:
        """Hand `change`, published by agent `name` (this one) in `run`, to the platform;
        False when it holds a newer one already."""
        body = {
            "run": run, "sequence": change.sequence, "state": change.state,
            "published_at": change.time.isoformat(),
        }  # fmt: skip
        try:
            answer = await self._http.put(
                f"{AGENTS}/{name}/state", json=body, headers=self.assertion()
            )
        except httpx.HTTPError as exc:
            raise PlatformUnreachable(f"cannot reach {self.base_url}: {exc}") from exc
        return bool(_json(answer)["accepted"])

    async def follow(self, target: str) -> AsyncIterator[StateChange]:
        """Agent `target`'s last reported state, then each new one, while it runs."""
        url = f"{AGENTS}/{target}/state"
        try:
            async with self._http.stream(
                "GET", url, params={"follow": "true"}, headers=self.assertion(),
                timeout=self._idle,
            ) as answer:  # fmt: skip
                if answer.status_code >= 400:
                    await answer.aread()
                    _refused(answer, target)
                parser = SseParser()
                async for line in answer.aiter_lines():
                    event = parser.line(line)
                    if event is None:
                        continue
                    data = event.json()
                    if event.event == "status" and data.get("state") != "running":
                        raise AgentUnreachable(
                            f"agent {target} is {data.get('state')} (so the platform sees it)"
                        )
                    if event.event == "state":
                        yield _change(data)
        except httpx.HTTPError as exc:
            raise AgentUnreachable(f"agent {target}'s state feed is lost: {exc}") from exc
        raise AgentUnreachable(f"the platform ended agent {target}'s state feed")


class StateReporter:
    """Reports the agent's newest state to the platform, in the background (`run`).

    Only the newest counts: states published while one is on its way, or while the
    platform cannot be reached, are replaced by the next; a failed report is tried again
    with a capped backoff, logged once per outage.
    """

    backoff = Backoff(base=0.5, cap=15.0)

    def __init__(self, platform: PlatformClient, name: str, run: str) -> None:
        self.platform = platform
        self.name = name
        self.run_id = run
        self._latest: StateChange | None = None
        self._wake = asyncio.Event()
        self.reported = 0

    def offer(self, change: StateChange) -> None:
        self._latest = change
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            change = self._latest
            if change is None:
                continue
            try:
                await self.platform.report(self.name, self.run_id, change)
            except AgentError as exc:
                if failures == 0:
                    logger.warning("agent %s: state not reported to the platform: %s",
                                   self.name, exc)  # fmt: skip
                failures += 1
                if self._latest is change:
                    self._wake.set()
                await asyncio.sleep(self.backoff.delay(failures))
                continue
            if failures:
                logger.info("agent %s reports its state to the platform again", self.name)
                failures = 0
            self.reported += 1


def _change(data: dict[str, Any]) -> StateChange:
    published = datetime.fromisoformat(data["published_at"]).astimezone(UTC)
    return StateChange(
        str(data["agent"]), int(data["sequence"]), dict(data["state"]), published,
        run=str(data["run"]), via="platform",
    )  # fmt: skip


def _refused(answer: httpx.Response, target: str) -> None:
    error = _error(answer)
    message = f"the platform refused agent {target}'s state: {error[1]}"
    if answer.status_code == 404:
        raise PeerUnknown(f"the platform has no agent {target}")
    if answer.status_code in (401, 403):
        status = (
            grpc.StatusCode.UNAUTHENTICATED
            if answer.status_code == 401
            else grpc.StatusCode.PERMISSION_DENIED
        )
        raise AgentRefused(message, status=status)
    raise PlatformRefused(message, status=answer.status_code, code=error[0])


def _error(answer: httpx.Response) -> tuple[str, str]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return (
        str(error.get("code") or f"http_{answer.status_code}"),
        str(error.get("message") or f"the platform answered {answer.status_code}"),
    )


def _json(answer: httpx.Response) -> Any:
    if answer.status_code >= 400:
        code, message = _error(answer)
        raise PlatformRefused(message, status=answer.status_code, code=code)
    try:
        return answer.json()
    except ValueError as exc:
        raise PlatformUnreachable(f"{answer.url} did not answer JSON") from exc
