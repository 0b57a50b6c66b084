"""The running platform: the services one process starts, their lifecycle and readiness.

The API layer reads what it needs from a `Platform`; nothing here imports the API layer.
Services start in dependency order and stop in reverse: adapters stop taking messages
first (the HTTP server stops before the lifespan ends), then the writer drains what the
bus holds, then the store, the bus and the registry close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry

from shopfloor.adapters._ingress import Ingress, IngressMetrics
from shopfloor.adapters.mosquitto import MosquittoOptions, MosquittoService
from shopfloor.adapters.mqtt import EmbeddedBroker
from shopfloor.auth import (
    Authenticator,
    OidcClaimsMapping,
    OidcVerifier,
    SecretFiles,
    ThingAccess,
    ThingKeys,
    TokenIssuer,
    hash_password,
)
from shopfloor.messaging import Bus, create_bus
from shopfloor.registry import Conflict, Registry
from shopfloor.settings import Settings
from shopfloor.storage import TimeseriesStore, create_store
from shopfloor.storage._writer import Writer, WriterMetrics

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]

#: Services that need the message bus / the time-series store.
BUS_SERVICES = frozenset({"http", "mqtt", "writer"})
STORE_SERVICES = frozenset({"api", "writer"})


@dataclass
class Health:
    """Readiness of every started service; `/health` is ok only when all are ready."""

    checks: dict[str, HealthCheck] = field(default_factory=dict)

    def add(self, name: str, check: HealthCheck) -> None:
        if name in self.checks:
            raise ValueError(f"health check {name!r} registered twice")
        self.checks[name] = check

    async def report(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(*(self.checks[n]() for n in names), return_exceptions=True)
        return {n: r is True for n, r in zip(names, results, strict=True)}


def _ready(flag: Callable[[], bool]) -> HealthCheck:
    async def check() -> bool:
        return flag()

    return check


class Platform:
    """Owns the services of one process; `async with Platform(settings)` runs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = Health()
        self.metrics = CollectorRegistry()
        #: Awaited once every service has started (the CLI prints the demo plant here).
        self.on_started: list[Callable[[], Awaitable[None]]] = []
        self.started = False
        self._registry: Registry | None = None
        self._auth: Authenticator | None = None
        self._access: ThingAccess | None = None
        self._bus: Bus | None = None
        self._store: TimeseriesStore | None = None
        self._ingress: Ingress | None = None
        self.writer: Writer | None = None
        self.mqtt: EmbeddedBroker | None = None
        self._stack = AsyncExitStack()
        self._stopping = asyncio.Event()

    @property
    def registry(self) -> Registry:
        return _started(self._registry, "registry")

    @property
    def auth(self) -> Authenticator:
        return _started(self._auth, "authenticator")

    @property
    def access(self) -> ThingAccess:
        return _started(self._access, "thing access")

    @property
    def bus(self) -> Bus:
        return _started(self._bus, "message bus (services http, writer)")

    @property
    def store(self) -> TimeseriesStore:
        return _started(self._store, "time-series store (services api, writer)")

    @property
    def ingress(self) -> Ingress:
        return _started(self._ingress, "message ingress (service http)")

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        for callback in self.on_started:
            await callback()
        self.started = True
        logger.info("platform started with services %s", ",".join(self.settings.services))

    async def stop(self) -> None:
        self.started = False
        self._stopping.set()
        await self._stack.aclose()
        logger.info("platform stopped")

    async def _start(self) -> None:
        settings = self.settings
        services = set(settings.services)
        stack = self._stack
        secrets = SecretFiles(settings.data_dir)
        registry = await Registry.open(settings.registry_url, ThingKeys(secrets.thing_key_secret()))
        stack.push_async_callback(registry.close)
        self._registry = registry
        self.health.add("registry", registry.ping)
        self._auth = Authenticator(registry, self._token_issuer(secrets), self._oidc())
        stack.push_async_callback(self._auth.close)
        self._access = ThingAccess(registry)
        await self._ensure_first_admin()

        if services & BUS_SERVICES:
            bus = create_bus(settings.bus_url)
            self._bus = await stack.enter_async_context(bus)
            self.health.add("bus", _ready(lambda: bus.ready))
        if services & STORE_SERVICES:
            store = create_store(settings.timeseries_url, data_dir=settings.data_dir)
            self._store = await stack.enter_async_context(store)
            self.health.add("timeseries", _ready(lambda: store.ready))
        if services & {"http", "mqtt"}:
            self._ingress = Ingress(
                self.access,
                self.bus,
                IngressMetrics.create(self.metrics),
                max_payload_bytes=settings.max_body_bytes,
            )
        if "writer" in services:
            writer = Writer(self.bus, self.store, WriterMetrics.create(self.metrics))
            await writer.declare()
            self.writer = writer
            tasks = await stack.enter_async_context(asyncio.TaskGroup())
            # Registered after the task group, so it runs first on stop: the writer
            # drains, then the task group's exit waits for it.
            stack.callback(self._stopping.set)
            tasks.create_task(self._supervise("writer", writer.run), name="writer")
            self.health.add("writer", _ready(lambda: writer.running))
        if "mqtt" in services and not settings.mqtt_broker_url:
            # Entered last, so it stops first: no new messages while the writer drains.
            broker = EmbeddedBroker(
                self.ingress,
                self.bus,
                self.access,
                host=settings.mqtt_host,
                port=settings.mqtt_port,
                metrics_registry=self.metrics,
            )
            self.mqtt = await stack.enter_async_context(broker)
            self.health.add("mqtt", _ready(lambda: broker.ready))
        if "mqtt" in services and settings.mqtt_broker_url:
            mosquitto = MosquittoService(
                settings.mqtt_broker_url,
                settings.mqtt_bridge_password.get_secret_value(),
                self.registry,
                self.ingress,
                self.bus,
                metrics_registry=self.metrics,
                options=MosquittoOptions(client_id=settings.mqtt_bridge_client_id),
            )
            await stack.enter_async_context(mosquitto)
            self.health.add("mosquitto", _ready(lambda: mosquitto.ready))

    async def _supervise(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Run a background service; restart it with back-off if it fails unexpectedly."""
        failures = 0
        while not self._stopping.is_set():
            try:
                await run(self._stopping)
                return
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures) * (0.5 + random.random() / 2)  # noqa: S311
                logger.exception("%s failed; restarting in %.1f s", name, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def _token_issuer(self, secrets: SecretFiles) -> TokenIssuer:
        return TokenIssuer(secrets.signing_key(), ttl_seconds=self.settings.token_ttl_seconds)

    def _oidc(self) -> OidcVerifier | None:
        settings = self.settings
        if not settings.oidc_issuer:
            return None
        return OidcVerifier(
            settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_ttl_seconds=settings.oidc_jwks_ttl_seconds,
            min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
            mapping=OidcClaimsMapping(
                role_claim=settings.oidc_role_claim,
                org_claim=settings.oidc_org_claim,
                email_claim=settings.oidc_email_claim,
                platform_admin_role=settings.oidc_platform_admin_role,
            ),
        )

    async def _ensure_first_admin(self) -> None:
        email = self.settings.admin_email
        password = self.settings.admin_password.get_secret_value()
        if not email or await self.registry.count_users() > 0:
            return
        try:
            await self.registry.create_user(
                email=email,
                password_hash=await asyncio.to_thread(hash_password, password),
                org_id=None,
                role=None,
                platform_admin=True,
            )
        except Conflict:
            return  # another process starting at the same time created it
        logger.info("created the first platform admin %s", email)


T = TypeVar("T")


def _started(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"the {what} is not running in this process")
    return value
