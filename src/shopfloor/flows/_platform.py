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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shopfloor.aas import AasStore, ExecutionState, Invocation, Invoker
from shopfloor.auth import AuthenticatedThing
from shopfloor.ingress import Ingress
from shopfloor.messaging import Bus, Envelope, channel_filters
from shopfloor.registry import Registry

from ._context import Message
from ._errors import FlowRunError

__all__ = ["AasOperations", "BusSubscriber", "PlatformPublisher"]


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
