"""The message bus: one envelope, one subject scheme, backends chosen by URL.

bus = create_bus("memory://")            # or "nats://host:4222?stream=SHOPFLOOR"
async with bus:
    await bus.publish(envelope)          # returns once the bus holds it
    async with bus.subscribe(channel_filters(channel_id)) as subscription:
        async for envelope in subscription: ...
    async with bus.consume("writer", ["channels.>"]) as consumer:
        async for batch in consumer.batches(500, 1.0):
            ...; await asyncio.gather(*(d.ack() for d in batch))
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
from ._memory import MemoryBus
from ._nats import NatsBus
from ._nats_config import NatsBusConfig
from ._receivers import Consumer, Delivery, Subscription
from ._subjects import channel_filters, envelope_subject, parse_subject, subject_matches
from ._wire import decode_envelope, encode_envelope

__all__ = [
    "DEFAULT_BATCH",
    "MAX_SUBTOPIC_LENGTH",
    "Bus",
    "BusFull",
    "BusMisconfigured",
    "BusUnavailable",
    "Consumer",
    "Delivery",
    "Envelope",
    "EnvelopeDecodeError",
    "InvalidBusUrl",
    "InvalidSubject",
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
    "encode_envelope",
    "envelope_subject",
    "is_valid_subtopic",
    "new_message_id",
    "now_ns",
    "parse_subject",
    "subject_matches",
]
