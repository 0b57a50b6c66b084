"""The Manager ↔ Core protocol as pure codecs (docs/aas-protocol.md): topic names, message
keys, the native and SMIA v0.1 message shapes, interaction ids.

    topic = topic_for(org_id, aas_id)                 # "aas.<readable>.<hash>"
    key = message_key(Side.CORE, MessageKind.REQUEST)  # "core-service-request"
    decoded = decode(key, value)                      # or InvalidAasMessage
    value = encode(Response(...), smia=decoded.smia)  # answered in kind
"""

from ._ids import InteractionIds
from ._messages import (
    Decoded,
    Message,
    MessageKind,
    Request,
    Response,
    ResponseStatus,
    Side,
    SmiaContext,
    State,
    Status,
    decode,
    encode,
    message_key,
    schemas,
)
from ._topics import TOPIC_PATTERN, topic_for

__all__ = [
    "TOPIC_PATTERN",
    "Decoded",
    "InteractionIds",
    "Message",
    "MessageKind",
    "Request",
    "Response",
    "ResponseStatus",
    "Side",
    "SmiaContext",
    "State",
    "Status",
    "decode",
    "encode",
    "message_key",
    "schemas",
    "topic_for",
]
