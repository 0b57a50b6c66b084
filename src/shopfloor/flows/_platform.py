"""The engine's Publisher and Subscriber inside the platform (the bus and the registry).

A `publish` task with a `thing_id` goes through the ingress as that thing: the thing
must belong to the flow's organisation and be connected to the channel with publish
permission, and the message is checked as any thing's (`publish_not_allowed`,
`unsupported_media_type`, SenML …). Without one it is published as the flow itself:
the channel must be the organisation's, and the envelope's publisher is
`flow:<flow_id>` (protocol `flow`). A message trigger subscribes to a channel of the
flow's organisation (a channel of another one is `channel_not_found`).

An `aas.invoke` task goes through the aas service's invoker, as an HTTP `/invoke` of
the submodel's Operation does: to the Manager of the shell that refers to the submodel
(its Core runs it); a result other than `Completed` fails the task with the Manager's
messages (`flow_operation_failed`, `flow_operation_timeout`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shopfloor.aas import AasStore, ExecutionState, Invocation, Invoker
from shopfloor.auth import AuthenticatedThing, ThingAccess
from shopfloor.ingress import Ingress
from shopfloor.messaging import Bus, Envelope, channel_filters
from shopfloor.registry import ChangeKind, Registry, RegistryChange

from ._context import Message
from ._errors import FlowRunError

__all__ = ["AasOperations", "BusSubscriber", "PlatformPublisher"]


class PlatformPublisher:
    """Publishes for flows; what it checked is kept for `ttl` seconds, each entry dropped
    as soon as the registry says it changed (`on_change`, from the event hub, so a
    change made by any process reaches it), everything when the bus was away.

    A message flow publishes once per run, one run after another: a database query per
    publish to see the channel is the organisation's (or the thing is) was most of a
    run's time."""

    def __init__(
        self,
        registry: Registry,
        ingress: Ingress,
        bus: Bus,
        access: ThingAccess | None = None,
        *,
        ttl: float = 30.0,
    ) -> None:
        self.registry = registry
        self.ingress = ingress
        self.bus = bus
        self.access = access
        self.ttl = ttl
        #: (org_id, channel_id) → when the answer "it is the organisation's" expires.
        self._channels: dict[tuple[str, str], float] = {}

    async def publish(
        self,
        org_id: str,
        flow_id: str,
        channel_id: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        *,
        thing_id: str | None = None,
    ) -> None:
        if thing_id is not None:
            await self._thing(org_id, thing_id)
            await self.ingress.publish(
                AuthenticatedThing(id=thing_id, org_id=org_id), channel_id, subtopic,
                payload, content_type, protocol="flow",
            )  # fmt: skip
            return
        await self._channel(org_id, channel_id)
        await self.bus.publish(
            Envelope(
                channel=channel_id, subtopic=subtopic, publisher=f"flow:{flow_id}",
                protocol="flow", payload=payload, content_type=content_type,
            )
        )  # fmt: skip

    async def _thing(self, org_id: str, thing_id: str) -> None:
        """The thing must be the organisation's (`thing_not_found` otherwise)."""
        if self.access is not None:
            found = await self.access.thing(thing_id)  # cached, dropped on a change
            if found is not None and found.org_id == org_id:
                return
        await self.registry.get_thing(org_id, thing_id)  # raises thing_not_found

    async def _channel(self, org_id: str, channel_id: str) -> None:
        """The channel must be the organisation's (`channel_not_found` otherwise)."""
        key = (org_id, channel_id)
        now = time.monotonic()
        if self._channels.get(key, 0.0) > now:
            return
        await self.registry.get_channel(org_id, channel_id)
        if len(self._channels) >= 65_536:
            self._channels = {k: t for k, t in self._channels.items() if t > now}
        self._channels[key] = now + self.ttl

    def on_change(self, change: RegistryChange) -> None:
        if change.kind == ChangeKind.CHANNEL_DELETED and change.channel_id is not None:
            self._channels.pop((change.org_id, change.channel_id), None)

    def forget_all(self) -> None:
        self._channels.clear()


def _decoded(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


class BusSubscriber:
    def __init__(self, registry: Registry, bus: Bus) -> None:
        self.registry = registry
        self.bus = bus

    @asynccontextmanager
    async def subscribe(
        self, org_id: str, channel_id: str, subtopic: str | None
    ) -> AsyncIterator[AsyncIterator[Message]]:
        await self.registry.get_channel(org_id, channel_id)
        async with self.bus.subscribe(channel_filters(channel_id)) as subscription:

            async def messages() -> AsyncIterator[Message]:
                async for envelope in subscription:
                    if subtopic is not None and envelope.subtopic != subtopic:
                        continue
                    yield Message(
                        channel_id=envelope.channel, subtopic=envelope.subtopic,
                        publisher=envelope.publisher, payload=_decoded(envelope.payload),
                        content_type=envelope.content_type, created_ns=envelope.created,
                    )  # fmt: skip

            yield messages()


class AasOperations:
    """The engine's `OperationInvoker` on the aas service of this process."""

    def __init__(self, store: AasStore, invoker: Invoker) -> None:
        self.store = store
        self.invoker = invoker

    async def invoke(
        self,
        org_id: str,
        submodel_id: str,
        operation: str,
        arguments: dict[str, Any],
        *,
        within: float,
    ) -> dict[str, Any]:
        shells = await self.store.shells_referring(org_id, submodel_id)
        result = await self.invoker.invoke(
            Invocation(
                org_id=org_id, aas_id=shells[0] if shells else None, submodel_id=submodel_id,
                path=operation, input_arguments=arguments, timeout=within,
            )
        )  # fmt: skip
        if result.execution_state is ExecutionState.COMPLETED and result.success:
            return {**result.output_arguments, **result.inoutput_arguments}
        code = (
            "flow_operation_timeout"
            if result.execution_state is ExecutionState.TIMEOUT
            else "flow_operation_failed"
        )
        reasons = "; ".join(result.messages) or result.execution_state.value
        raise FlowRunError(f"{operation} of {submodel_id!r}: {reasons}", code=code)
