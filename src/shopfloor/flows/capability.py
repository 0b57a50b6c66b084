"""Edge flows as a service: the flow documents of every organisation (ConfigManager),
the configuration server's routes (`/flows` and `/api/v1/flows`), and the FlowManager
that runs them (flows that were running when the platform stopped go on).

Each change is announced as `flows.<org_id>.changed` (`org_id`, `flow_id`, `rev`, `op`);
another process sharing the data dir looks at the folder when it hears one (and when
its bus connection comes back), else every `SHOPFLOOR_FLOWS_POLL` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

import httpx
from pydantic import Field

from shopfloor.aas.capability import AasService
from shopfloor.agents.capability import AgentsService
from shopfloor.auth.capability import IdentityService
from shopfloor.core import Section, Service, client_ssl_context, first_set
from shopfloor.ingress.capability import IngressService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.pki.capability import PkiService
from shopfloor.registry import RegistryChange

from ._config import ConfigManager
from ._context import AgentCaller
from ._engine import FlowEngine
from ._manager import FlowManager
from ._platform import AasOperations, BusSubscriber, PlatformPublisher

if TYPE_CHECKING:
    from shopfloor.core import CoreSettings, Platform

__all__ = ["FlowsService", "FlowsSettings"]

logger = logging.getLogger(__name__)


class FlowsSettings(Section, section="flows", env_prefix="SHOPFLOOR_FLOWS_"):
    poll: float = Field(
        default=5.0, gt=0,
        description="Seconds between looks at the flows folder for files changed by hand "
        "or by another process.",
    )  # fmt: skip
    history: int = Field(
        default=50, ge=1, le=10_000,
        description="Revisions of each flow kept in its history (the newest).",
    )  # fmt: skip
    max_document_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Largest flow document accepted (JSON or YAML).",
    )  # fmt: skip
    drain_timeout: float = Field(
        default=10.0, ge=0,
        description="Seconds a stopped flow's run in progress may take to finish before it "
        "is cancelled.",
    )  # fmt: skip
    queue_size: int = Field(
        default=1000, ge=1,
        description="Trigger events of one flow waiting to run (also while paused); more are "
        "dropped and counted.",
    )  # fmt: skip
    runs_kept: int = Field(
        default=50, ge=1, le=10_000, description="Recent runs of each flow kept for /runs."
    )
    dead_letters_kept: int = Field(
        default=100, ge=1, le=100_000, description="Failed runs of each flow kept for replay."
    )
    workers: int = Field(
        default=4, ge=1, le=256, description="Threads for the blocking work of flow tasks."
    )
    http_timeout: float = Field(
        default=30.0, gt=0, description="Seconds an `http` task's request may take."
    )
    agent_cert_ttl: float = Field(
        default=3600.0, ge=60, le=30 * 86400,
        description="Seconds of life of the certificate a flow calls agents with (`agent.call`; "
        "made again past two thirds of it).",
    )  # fmt: skip


class FlowsService(Service, name="flows", needs=("bus", "identity", "ingress")):
    """Edge flows: flow documents per organisation, their history, the configuration
    server (docs/flows.md)."""

    health = "flows"
    routes = ("shopfloor.flows.routes:router", "shopfloor.flows.routes:seed_router")
    commands = {"flows": "shopfloor.flows.commands:flows_app"}

    @classmethod
    def body_limits(cls, settings: CoreSettings) -> dict[str, int]:
        """Room for a document of the largest size and a little over, so that the routes
        themselves say a document is too large (`flow_too_large`)."""
        room = settings.section(FlowsSettings).max_document_bytes + 1024
        return {"/flows": room, "/api/v1/flows": room}

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.settings = platform.settings.section(FlowsSettings)
        self.events = platform.get(BusService).events
        self.configs = ConfigManager(
            platform.settings.data_dir / "flows", history_limit=self.settings.history
        )
        #: Set when another process announced a change: look at the folder now.
        self._wake = asyncio.Event()
        self._registry = platform.get(IdentityService).registry
        self._access = platform.get(IdentityService).access
        self._ingress = platform.get(IngressService).ingress
        self._bus = platform.get(BusService).bus
        self.manager: FlowManager | None = None

    async def _start(self, stack: AsyncExitStack) -> None:
        await asyncio.to_thread(self.configs.load)
        loop = asyncio.get_running_loop()

        def announce(org_id: str, flow_id: str, rev: int | None, op: str) -> None:
            # Changes are made in worker threads; the hub lives on the loop.
            data = {"org_id": org_id, "flow_id": flow_id, "rev": rev, "op": op}
            loop.call_soon_threadsafe(self.events.emit, f"flows.{org_id}.changed", data)

        self.configs.on_change = announce
        stack.callback(setattr, self.configs, "on_change", None)
        stack.enter_context(self.events.listen("flows.>", self._on_event))
        publisher = PlatformPublisher(self._registry, self._ingress, self._bus, self._access)
        stack.enter_context(
            self.events.listen(RECONNECTED, lambda _event: self._reconnected(publisher))
        )
        stack.enter_context(self.events.listen("registry.>", partial(_registry_changed, publisher)))
        await self.spawn("flows-rescan", self._rescan)
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=self.settings.http_timeout, verify=client_ssl_context())
        )
        operations = None
        if self.platform.running(AasService):  # it starts first when it runs here
            aas = self.platform.get(AasService)
            operations = AasOperations(aas.store, aas.invoker)
        agents = await self._agent_calls(stack)
        engine = FlowEngine(
            publisher=publisher,
            http=http, operations=operations, agents=agents, workers=self.settings.workers,
        )  # fmt: skip
        stack.callback(engine.close)
        self.manager = FlowManager(
            self.configs, self.configs.root, engine,
            subscriber=BusSubscriber(self._registry, self._bus),
            queue_size=self.settings.queue_size, drain_timeout=self.settings.drain_timeout,
            runs_kept=self.settings.runs_kept,
            dead_letters_kept=self.settings.dead_letters_kept,
        )  # fmt: skip
        stack.push_async_callback(self.manager.close)
        await self.manager.open()

    async def _agent_calls(self, stack: AsyncExitStack) -> AgentCaller | None:
        """`agent.call` through the agents and pki services of this process (they start
        first when they run here): a flow's certificate from the platform's CA, the
        agent's address from its status and config; None where either is not here."""
        if not (self.platform.running(AgentsService) and self.platform.running(PkiService)):
            return None
        from ._agent_calls import PlatformAgentCalls  # the SDK's gRPC only where it runs

        calls = PlatformAgentCalls(
            self.platform.get(PkiService).certs,
            self.platform.get(AgentsService).agents.store.get,
            ttl=timedelta(seconds=self.settings.agent_cert_ttl),
        )
        stack.push_async_callback(calls.aclose)  # after the manager: no run is left
        return calls

    def _reconnected(self, publisher: PlatformPublisher) -> None:
        # Changes made while this process was cut off from the bus are unknown.
        publisher.forget_all()
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.origin != self.events.origin:  # this process's own changes are held
            self._wake.set()
        if self.manager is not None and event.subject.endswith(".changed"):
            org_id, flow_id = event.data.get("org_id"), event.data.get("flow_id")
            if isinstance(org_id, str) and isinstance(flow_id, str):
                self.manager.changed(org_id, flow_id)

    async def _rescan(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await first_set(stopping, self._wake, within=self.settings.poll)
            if not stopping.is_set():
                self._wake.clear()
                await asyncio.to_thread(self.configs.rescan)


def _registry_changed(publisher: PlatformPublisher, event: Event) -> None:
    try:
        change = RegistryChange.from_data(event.data)
    except (KeyError, ValueError):
        return
    publisher.on_change(change)
