"""The engine's Publisher and Subscriber inside the platform (the bus and the registry).

A `publish` task with a `thing_id` goes through the ingress as that thing: the thing
must belong to the flow's organisation and be connected to the channel with publish
permission, and the message is checked as any thing's (`publish_not_allowed`,
`unsupported_media_type`, SenML …). Without one it is published as the flow itself:
the channel must be the organisation's, and the envelope's publisher is
`flow:<flow_id>` (protocol `flow`). A message trigger subscribes to a channel of the
flow's organisation (a channel of another one is `channel_not_found`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shopfloor.auth import AuthenticatedThing
from shopfloor.ingress import Ingress
from shopfloor.messaging import Bus, Envelope, channel_filters
from shopfloor.registry import Registry

from ._context import Message

__all__ = ["BusSubscriber", "PlatformPublisher"]


class PlatformPublisher:
    def __init__(self, registry: Registry, ingress: Ingress, bus: Bus) -> None:
        self.registry = registry
        self.ingress = ingress
        self.bus = bus

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
            thing = await self.registry.get_thing(org_id, thing_id)  # not another org's
            await self.ingress.publish(
                AuthenticatedThing(id=thing.id, org_id=org_id), channel_id, subtopic,
                payload, content_type, protocol="flow",
            )  # fmt: skip
            return
        await self.registry.get_channel(org_id, channel_id)
        await self.bus.publish(
            Envelope(
                channel=channel_id, subtopic=subtopic, publisher=f"flow:{flow_id}",
                protocol="flow", payload=payload, content_type=content_type,
            )
        )  # fmt: skip


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
