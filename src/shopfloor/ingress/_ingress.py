"""The one path every protocol adapter takes to put a thing's message on the bus.

Authenticate the key, check the channel connection, validate subtopic, size, content
type and payload, then publish the envelope and return only once the bus holds it.
A refusal is an `IngressError` with a stable code and a kind; each adapter turns it
into its own answer at its edge (HTTP a status, MQTT an `_errors` report or a
withheld PUBACK when the error is transient, WebSocket an error frame).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from shopfloor.auth import AuthenticatedThing, ThingAccess
from shopfloor.core import ErrorKind
from shopfloor.messaging import (
    Bus,
    Envelope,
    MessageTooLarge,
    TransientBusError,
    is_valid_subtopic,
    new_message_id,
    now_ns,
)
from shopfloor.registry import Permission
from shopfloor.senml import SUPPORTED_CONTENT_TYPES, SenMLError, normalize

from ._errors import IngressError

__all__ = [
    "ERRORS_SUBTOPIC",
    "Incoming",
    "Ingress",
    "IngressMetrics",
    "media_type",
    "sniff_content_type",
]

logger = logging.getLogger(__name__)

#: Subtopic on which adapters report refused messages to their publisher; never stored.
ERRORS_SUBTOPIC = "_errors"


@dataclass(frozen=True, slots=True)
class IngressMetrics:
    accepted: Counter
    rejected: Counter
    # Label children by protocol: `labels()` on every message showed in profiles.
    _accepted: dict[str, Counter] = field(default_factory=dict, init=False, repr=False)

    def count_accepted(self, protocol: str, count: int = 1) -> None:
        child = self._accepted.get(protocol)
        if child is None:
            child = self._accepted[protocol] = self.accepted.labels(protocol)
        child.inc(count)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngressMetrics:
        return cls(
            accepted=Counter(
                "shopfloor_messages_accepted",
                "Messages accepted onto the bus, by protocol.",
                ["protocol"],
                registry=registry,
            ),
            rejected=Counter(
                "shopfloor_messages_rejected",
                "Messages refused by an adapter, by protocol and error code.",
                ["protocol", "code"],
                registry=registry,
            ),
        )


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def sniff_content_type(payload: bytes) -> str:
    """The content type of a payload that came without one (MQTT 3.1.1, WebSocket frames).

    A JSON array is SenML JSON, any other JSON plain JSON, a CBOR array (major type 4)
    SenML CBOR; anything else is announced as SenML JSON and refused by its parser.
    """
    head = payload.lstrip()[:1]
    if head == b"[":
        return "application/senml+json"
    if head == b"{" or head[:1].isdigit() or head in (b'"', b"-", b"t", b"f", b"n"):
        return "application/json"
    if head and 0x80 <= head[0] <= 0x9F:
        return "application/senml+cbor"
    return "application/senml+json"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message of `Ingress.publish_many`: the arguments of `Ingress.publish`."""

    thing: AuthenticatedThing
    channel_id: str
    subtopic: str
    payload: bytes
    content_type: str
    message_id: str | None = None


class Ingress:
    """Publishing as a thing: every adapter's way onto the bus."""

    def __init__(
        self,
        access: ThingAccess,
        bus: Bus,
        metrics: IngressMetrics,
        *,
        max_payload_bytes: int,
        max_records: int = 10_000,
    ) -> None:
        self.access = access
        self.bus = bus
        self.metrics = metrics
        self.max_payload_bytes = max_payload_bytes
        self.max_records = max_records

    async def authenticate(self, key: str) -> AuthenticatedThing:
        thing = await self.access.authenticate(key)
        if thing is None:
            raise IngressError(
                "unknown thing key", code="invalid_credentials", kind=ErrorKind.UNAUTHENTICATED
            )
        return thing

    async def publish(
        self,
        thing: AuthenticatedThing,
        channel_id: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        *,
        protocol: str,
        message_id: str | None = None,
    ) -> Envelope:
        """Validate and publish; raises IngressError (and counts it) when refused.

        An adapter that retries the same message passes the same `message_id` each
        time, so a publish that did reach the bus before timing out is deduplicated.
        """
        try:
            envelope = await self._publish(
                thing, channel_id, subtopic, payload, content_type, protocol, message_id
            )
        except IngressError as exc:
            self.metrics.rejected.labels(protocol, exc.code).inc()
            raise
        self.metrics.count_accepted(protocol)
        return envelope

    async def publish_many(
        self, messages: Sequence[Incoming], *, protocol: str
    ) -> list[Envelope | Exception]:
        """Validate and publish several messages at once (an adapter that receives them in
        batches, as the Mosquitto bridge does); for each, in order, its envelope once the
        bus holds it, the `IngressError` that refused it (counted), or an unexpected error.

        Each message is checked exactly as `publish` checks it; the valid ones go to the
        bus in one `Bus.publish_many`.
        """
        results: list[Envelope | Exception] = []
        envelopes: list[Envelope] = []
        for message in messages:
            try:
                envelope = await self._envelope(
                    message.thing, message.channel_id, message.subtopic, message.payload,
                    message.content_type, protocol, message.message_id,
                )  # fmt: skip
            except IngressError as exc:
                self.metrics.rejected.labels(protocol, exc.code).inc()
                results.append(exc)
            except Exception as exc:
                results.append(exc)
            else:
                results.append(envelope)
                envelopes.append(envelope)
        if not envelopes:
            return results
        outcomes = iter(await self.bus.publish_many(envelopes))
        accepted = 0
        for index, result in enumerate(results):
            if not isinstance(result, Envelope):
                continue
            error = next(outcomes)
            if error is None:
                accepted += 1
                continue
            refusal = _bus_refusal(error)
            if isinstance(refusal, IngressError):
                self.metrics.rejected.labels(protocol, refusal.code).inc()
            results[index] = refusal
        if accepted:
            self.metrics.count_accepted(protocol, accepted)
        return results

    async def _publish(
        self,
        thing: AuthenticatedThing,
        channel_id: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        protocol: str,
        message_id: str | None,
    ) -> Envelope:
        envelope = await self._envelope(
            thing, channel_id, subtopic, payload, content_type, protocol, message_id
        )
        try:
            await self.bus.publish(envelope)
        except (TransientBusError, MessageTooLarge) as exc:
            refusal = _bus_refusal(exc)
            raise refusal from exc
        return envelope

    async def _envelope(
        self,
        thing: AuthenticatedThing,
        channel_id: str,
        subtopic: str,
        payload: bytes,
        content_type: str,
        protocol: str,
        message_id: str | None,
    ) -> Envelope:
        """The checked envelope of a message; raises IngressError (not counted here)."""
        if not is_valid_subtopic(subtopic) or subtopic.startswith(ERRORS_SUBTOPIC):
            raise IngressError(
                "subtopics are /-separated segments of [A-Za-z0-9_-]",
                code="invalid_subtopic", kind=ErrorKind.INVALID,
            )  # fmt: skip
        if not await self.access.allowed(thing.id, channel_id, Permission.PUBLISH):
            raise IngressError(
                "the thing may not publish on this channel",
                code="publish_not_allowed", kind=ErrorKind.FORBIDDEN,
            )  # fmt: skip
        if len(payload) > self.max_payload_bytes:
            raise IngressError(
                f"the payload exceeds {self.max_payload_bytes} bytes",
                code="payload_too_large", kind=ErrorKind.TOO_LARGE,
            )  # fmt: skip
        media = media_type(content_type)
        if media not in SUPPORTED_CONTENT_TYPES:
            supported = ", ".join(sorted(SUPPORTED_CONTENT_TYPES))
            raise IngressError(
                f"content type {media!r}; use one of {supported}",
                code="unsupported_media_type", kind=ErrorKind.UNSUPPORTED,
            )  # fmt: skip
        created = now_ns()
        try:
            # Parsed here to refuse a malformed message while the publisher is still
            # waiting for the answer; a writer in this process reuses the records.
            records = normalize(payload, media, now=created / 1e9, max_records=self.max_records)
        except SenMLError as exc:
            raise IngressError(exc.message, code=exc.code, kind=ErrorKind.INVALID) from exc
        return Envelope(
            channel=channel_id,
            subtopic=subtopic,
            publisher=thing.id,
            protocol=protocol,
            payload=payload,
            content_type=media,
            created=created,
            id=message_id or new_message_id(),
            decoded=records,
        )


def _bus_refusal(error: Exception) -> Exception:
    """The IngressError of a publish the bus refused; other errors unchanged."""
    refusal: Exception
    if isinstance(error, TransientBusError):
        refusal = IngressError(
            "the platform is busy; retry", code="unavailable", kind=error.kind,
            retry_after=error.retry_after,
        )  # fmt: skip
    elif isinstance(error, MessageTooLarge):
        refusal = IngressError(str(error), code="payload_too_large", kind=ErrorKind.TOO_LARGE)
    else:
        return error
    refusal.__cause__ = error
    return refusal
