"""Errors raised by the message bus (a subtree of `shopfloor.core`'s error tree).

    MessagingError                  any failure of the bus (code, kind as below)
    ├── TransientBusError           the message was NOT taken; retry after `retry_after` s
    │   ├── BusUnavailable          no connection, closed bus, or no answer in time:
    │   │                           adapters answer HTTP 503 + Retry-After or withhold
    │   │                           the MQTT PUBACK; a retry with the same envelope id
    │   │                           is deduplicated, so retrying is always safe
    │   └── BusFull                 backpressure: a bounded buffer or backlog is full
    ├── BusMisconfigured            the bus settings conflict with the server or are
    │   │                           invalid; retrying will not help, fix the settings
    │   │                           (kind `unavailable` to callers: the platform cannot
    │   │                           take messages, and that is not the client's fault)
    │   └── InvalidBusUrl           a bus URL cannot be parsed (also a ValueError)
    ├── InvalidSubject              a channel id, subtopic, filter or durable name is not
    │                               a valid subject token (also a ValueError)
    ├── MessageTooLarge             the encoded message exceeds the bus limit (also a
    │                               ValueError); adapters answer 413
    └── EnvelopeDecodeError         bytes on the wire are not an envelope (also a ValueError)

Foreign exceptions (nats-py, asyncio timeouts, OS errors) are translated at the
boundary of each backend, most specific first, with the original kept as `__cause__`.
"""

from __future__ import annotations

__all__ = [
    "BusFull",
    "BusMisconfigured",
    "BusUnavailable",
    "EnvelopeDecodeError",
    "InvalidBusUrl",
    "InvalidSubject",
    "MessageTooLarge",
    "MessagingError",
    "TransientBusError",
]

from shopfloor.core import ErrorKind, ShopfloorError

DEFAULT_RETRY_AFTER = 1.0


class MessagingError(ShopfloorError):
    """The bus failed to do what was asked."""

    code = "bus_error"
    kind = ErrorKind.UNAVAILABLE


class TransientBusError(MessagingError):
    """The bus did not take the message now; the same call may succeed later."""

    code = "bus_unavailable"

    def __init__(self, message: str, *, retry_after: float = DEFAULT_RETRY_AFTER) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after: float = retry_after


class BusUnavailable(TransientBusError):
    """The bus is not connected, is closed, or did not confirm in time."""


class BusFull(TransientBusError):
    """A bounded buffer or a durable backlog is full; publishing must slow down."""

    code = "bus_full"
    kind = ErrorKind.BUSY


class BusMisconfigured(MessagingError):
    """The configuration of the bus is invalid or conflicts with the server's."""

    code = "bus_misconfigured"


class InvalidBusUrl(BusMisconfigured, ValueError):
    """A bus URL has an unknown scheme or an invalid option."""

    code = "invalid_bus_url"
    kind = ErrorKind.INVALID


class InvalidSubject(MessagingError, ValueError):
    """A name that must be a subject token (or a filter) is not one."""

    code = "invalid_subject"
    kind = ErrorKind.INVALID


class MessageTooLarge(MessagingError, ValueError):
    """The message is larger than the bus accepts."""

    code = "payload_too_large"
    kind = ErrorKind.TOO_LARGE


class EnvelopeDecodeError(MessagingError, ValueError):
    """A message received from the bus is not a valid envelope."""

    code = "invalid_envelope"
    kind = ErrorKind.INVALID
