"""Mosquitto mode as one service: the broker kept in step with the registry, and the bridge.

async with MosquittoService(url, bridge_password, registry, ingress, bus,
                            metrics_registry=metrics) as service:
    ...                                   # `service.ready` once synced and bridged

Registry changes come from the registry itself (`follow_registry`) or, in the
platform, from the event hub, which hears the changes of every process on the bus
(`on_change`); they are queued and one worker applies them in order, each read
afresh from the registry, so a change applied late or twice still leaves the broker
right. A change that keeps failing, a reconnection of the bridge (the broker may have
restarted, and changes may have been missed) and a timer all ask for a full
reconciliation, which repairs everything.
Nothing here ends the platform: failures are logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from shopfloor.core import Lifecycle
from shopfloor.ingress import Ingress
from shopfloor.messaging import Bus
from shopfloor.registry import ChangeKind, Connection, NotFound, Registry, RegistryChange, Thing

from ._access import BRIDGE_USERNAME
from ._bridge import MosquittoBridge
from ._bridge_support import BridgeMetrics
from ._client import BrokerUrl, DynsecClient, login_hint
from ._dynsec import DynsecCommand, DynsecResponse
from ._errors import DynsecUnavailable, MosquittoError
from ._options import MosquittoOptions
from ._snapshot import registry_snapshot
from ._sync import DynsecSync, SyncReport

__all__ = ["MosquittoService"]

logger = logging.getLogger(__name__)

_PAGE = 500
_CONNECTION_CHANGES = frozenset(
    {ChangeKind.CONNECTED, ChangeKind.DISCONNECTED, ChangeKind.CHANNEL_DELETED}
)


@dataclass(frozen=True, slots=True)
class _Resync:
    """A request for a full reconciliation, and why (for the log)."""

    reason: str


class _Stop:
    """Wakes the worker on stop.

    Cancelling alone is not enough on Python 3.11: `asyncio.wait_for`, which aiomqtt
    uses for every broker round trip, swallows a cancellation that arrives as the
    answer does, and the worker would carry on.
    """


class _CurrentAdmin:
    """The admin connection of the moment, for a `DynsecSync` that outlives connections."""

    def __init__(self) -> None:
        self.client: DynsecClient | None = None

    async def execute(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        if self.client is None:
            raise DynsecUnavailable("not connected to mosquitto as admin")
        return await self.client.execute(commands)


class MosquittoService(Lifecycle):
    """Keeps Mosquitto's clients and roles equal to the registry and bridges its messages."""

    def __init__(
        self,
        broker_url: str,
        bridge_password: str,
        registry: Registry,
        ingress: Ingress,
        bus: Bus,
        *,
        metrics_registry: CollectorRegistry,
        options: MosquittoOptions | None = None,
        follow_registry: bool = True,
    ) -> None:
        super().__init__()
        self._url = broker_url
        self._broker = BrokerUrl.parse(broker_url)
        self._registry = registry
        self._options = options or MosquittoOptions()
        self._admin = _CurrentAdmin()
        # Made now, so that an unfit bridge password fails here and not in a task.
        self._sync = DynsecSync(self._admin, bridge_password=bridge_password)
        self._sync_errors = Counter(
            "shopfloor_mqtt_sync_errors",
            "Failed attempts to apply the registry to Mosquitto.",
            registry=metrics_registry,
        )
        self._bridge = MosquittoBridge(
            host=self._broker.host,
            port=self._broker.port,
            password=bridge_password,
            ingress=ingress,
            bus=bus,
            channels=registry,
            metrics=BridgeMetrics.create(metrics_registry),
            options=self._options,
            on_reconnect=lambda: self.request_resync("the bridge reconnected"),
        )
        self._work: asyncio.Queue[RegistryChange | _Resync | _Stop] = asyncio.Queue()
        self._resync_queued = False
        self._synced = False
        self._last_sync: SyncReport | None = None
        self._running = False
        self._admin_problem: str | None = None
        self._backoff = self._options.backoff()
        self._unfollow = registry.add_listener(self.on_change) if follow_registry else None

    @property
    def ready(self) -> bool:
        """Whether the broker was reconciled once and the bridge is connected now."""
        return self._synced and self._bridge.connected

    def problem(self) -> str | None:
        """Why the service is not ready, with what to check; None when it is."""
        if self.ready:
            return None
        if self._admin_problem is not None:
            return self._admin_problem
        client = self._admin.client
        if client is not None and client.last_error is not None:
            error = client.last_error
            return f"the admin connection to Mosquitto was lost: {error}{login_hint(error)}"
        if not self._synced:
            return f"not reconciled with Mosquitto at {self._broker.host}:{self._broker.port} yet"
        return (
            f"the bridge is not connected to Mosquitto at {self._broker.host}:"
            f"{self._broker.port} as {BRIDGE_USERNAME}"
        )

    @property
    def last_sync(self) -> SyncReport | None:
        """What the latest full reconciliation changed."""
        return self._last_sync

    def request_resync(self, reason: str) -> None:
        """Reconcile the whole broker with the registry soon (once, however often asked)."""
        if not self._resync_queued:
            self._resync_queued = True
            self._work.put_nowait(_Resync(reason))

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        self._running = True
        self.request_resync("start")
        await stack.enter_async_context(self._bridge)
        await self.spawn("mosquitto-sync", self._run_sync, restart=False, cancel_on_stop=True)
        await self.spawn(
            "mosquitto-resync-timer", self._run_timer, restart=False, cancel_on_stop=True
        )
        # Registered after the loops, so it runs before they are cancelled.
        stack.callback(self._work.put_nowait, _Stop())

    async def aclose(self) -> None:
        self._running = False
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None
        await super().aclose()

    async def kick_thing(self, thing_id: str) -> None:
        """Disconnect the thing's live sessions (after its certificate was revoked)."""
        await self._sync.kick(thing_id)

    def on_change(self, change: RegistryChange) -> None:
        """Queue a registry change for the broker (must not block)."""
        if not self._running:
            return
        if change.kind is ChangeKind.CHANNEL_DELETED and change.channel_id:
            self._bridge.forget_channel(change.channel_id)
        self._work.put_nowait(change)

    async def _run_timer(self, _stopping: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self._options.resync_interval)
            self.request_resync("the resync interval")

    async def _run_sync(self, _stopping: asyncio.Event) -> None:
        attempt = 0
        while self._running:
            client = DynsecClient.from_url(
                self._url,
                timeout=self._options.timeout,
                backoff_base=self._options.backoff_base,
                backoff_cap=self._options.backoff_cap,
            )
            try:
                async with client:
                    attempt = 0
                    self._admin_problem = None
                    self._admin.client = client
                    while not isinstance(item := await self._work.get(), _Stop):
                        await self._apply(item)
                    return
            except MosquittoError as exc:
                self._admin_problem = str(exc)
                logger.warning("cannot reach mosquitto as admin: %s", exc)
            finally:
                self._admin.client = None
            attempt += 1
            await asyncio.sleep(self._backoff.delay(attempt))

    async def _apply(self, item: RegistryChange | _Resync) -> None:
        """Apply one item, retrying; a change that keeps failing becomes a resync."""
        attempt = 0
        while self._running:
            try:
                if isinstance(item, _Resync):
                    await self._resync(item.reason)
                else:
                    await self._apply_change(item)
                return
            except Exception as exc:
                # Broker or database trouble (or a bug): never let it end the worker.
                self._sync_errors.inc()
                attempt += 1
                what = item.reason if isinstance(item, _Resync) else item.kind.value
                if isinstance(exc, MosquittoError):
                    logger.warning("mosquitto sync (%s) failed: %s", what, exc)
                else:
                    logger.exception("mosquitto sync (%s) failed", what)
                if isinstance(item, RegistryChange) and attempt >= self._options.change_attempts:
                    self.request_resync(f"{item.kind.value} kept failing")
                    return
            await asyncio.sleep(self._backoff.delay(attempt))

    async def _resync(self, reason: str) -> None:
        # Cleared first: a request made while this runs may come after the snapshot was
        # read, so it must run again afterwards. A failed run is retried as it is.
        self._resync_queued = False
        await self._sync.ensure_defaults()
        report = await self._sync.sync_all(registry_snapshot(self._registry, page_size=_PAGE))
        self._last_sync = report
        logger.info(
            "mosquitto reconciled (%s): %d created, %d updated, %d deleted, %d unchanged",
            reason, len(report.created), len(report.updated), len(report.deleted),
            report.unchanged,
        )  # fmt: skip
        if not self._synced:
            self._synced = True
            self._bridge.allow_connect()  # the broker knows the bridge's client now

    async def _apply_change(self, change: RegistryChange) -> None:
        registry, sync = self._registry, self._sync
        for thing_id in change.thing_ids:
            if change.kind is ChangeKind.THING_DELETED:
                await sync.thing_deleted(thing_id)
                continue
            try:
                thing = await registry.get_thing(change.org_id, thing_id)
            except NotFound:
                await sync.thing_deleted(thing_id)  # deleted since: its deletion follows
                continue
            if change.kind in _CONNECTION_CHANGES:
                await sync.set_connections(thing_id, await self._connections(thing))
            elif change.kind is ChangeKind.THING_CREATED:
                key = registry.thing_key(thing)
                await sync.thing_created(thing, key, await self._connections(thing))
            elif change.kind is ChangeKind.THING_KEY_ROTATED:
                await sync.key_rotated(thing, registry.thing_key(thing))
            else:  # renamed: the client record carries the name
                await sync.upsert_thing(thing, registry.thing_key(thing))

    async def _connections(self, thing: Thing) -> list[Connection]:
        connections: list[Connection] = []
        while True:
            page = await self._registry.thing_channels(
                thing.org_id, thing.id, offset=len(connections), limit=_PAGE
            )
            connections.extend(connection for _, connection in page.items)
            if not page.items or len(connections) >= page.total:
                return connections
