"""Publishing as a thing: the protocol-neutral way onto the bus every adapter shares.

ingress = platform.get(IngressService).ingress
thing = await ingress.authenticate(key)                  # IngressError if unknown
envelope = await ingress.publish(thing, channel_id, subtopic, payload, content_type,
                                 protocol="http")        # once the bus holds it
"""

from ._errors import IngressError
from ._ingress import (
    ERRORS_SUBTOPIC,
    Incoming,
    Ingress,
    IngressMetrics,
    media_type,
    sniff_content_type,
)

__all__ = [
    "ERRORS_SUBTOPIC",
    "Incoming",
    "Ingress",
    "IngressError",
    "IngressMetrics",
    "media_type",
    "sniff_content_type",
]
