"""The message bus: one envelope, one subject scheme, backends chosen by URL.

bus = create_bus("memory://")            # or "nats://host:4222?stream=SHOPFLOOR"
async with bus:
    await bus.publish(envelope)          # returns once the bus holds it
    async with bus.subscribe(channel_filters(channel_id)) as subscription:
        async for envelope in subscription: ...
    async with bus.consume("writer", ["channels.>"]) as consumer:
        async for batch in consumer.batches(500, 1.0):
            ...; await asyncio.gather(*(d.ack() for d in batch))

hub = EventHub(bus)                       # platform events, in this process and on the bus
async with hub:
    hub.listen("registry.>", on_change)
    hub.emit("registry.thing_deleted", {...})
"""

from ._bus import DEFAULT_BATCH, Bus, bus_schemes, create_bus
from ._envelope import MAX_SUBTOPIC_LENGTH, Envelope, is_valid_subtopic, new_message_id, now_ns
from ._errors import (
    BusFull,
    BusMisconfigured,
    BusUnavailable,
    EnvelopeDecodeError,
    InvalidBusUrl,
    InvalidSubject,
    MessageTooLarge,
    MessagingError,
    TransientBusError,
)
from ._events import (
    Event,
    EventSubscription,
    decode_event,
    encode_event,
    event_filter,
    event_wire_subject,
)
from ._hub import RECONNECTED, EventHub, Listening
from ._memory import MemoryBus
from ._nats import NatsBus
from ._nats_config import NatsBusConfig
from ._receivers import Consumer, Delivery, Subscription
from ._subjects import channel_filters, envelope_subject, parse_subject, subject_matches
from ._wire import decode_envelope, encode_envelope

__all__ = [
    "DEFAULT_BATCH",
    "MAX_SUBTOPIC_LENGTH",
    "RECONNECTED",
    "Bus",
    "BusFull",
    "BusMisconfigured",
    "BusUnavailable",
    "Consumer",
    "Delivery",
    "Envelope",
    "EnvelopeDecodeError",
    "Event",
    "EventHub",
    "EventSubscription",
    "InvalidBusUrl",
    "InvalidSubject",
    "Listening",
    "MemoryBus",
    "MessageTooLarge",
    "MessagingError",
    "NatsBus",
    "NatsBusConfig",
    "Subscription",
    "TransientBusError",
    "bus_schemes",
    "channel_filters",
    "create_bus",
    "decode_envelope",
    "decode_event",
    "encode_envelope",
    "encode_event",
    "envelope_subject",
    "event_filter",
    "event_wire_subject",
    "is_valid_subtopic",
    "new_message_id",
    "now_ns",
    "parse_subject",
    "subject_matches",
]
