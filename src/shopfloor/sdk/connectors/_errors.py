"""Errors raised by machine connectors (a subtree of `shopfloor.core`'s error tree).

    ConnectorError                  any failure of a connector (code, kind as below)
    ├── ConnectorUnavailable        no link to the machine now, it broke during the
    │   │                           request, or the connector is closed; retry after
    │   │                           `retry_after` s (the connector reconnects by itself)
    │   └── ConnectorTimeout        the machine did not answer within the timeout
    ├── InvalidConnectorUrl         a connector URL has an unknown scheme, a bad option
    │                               or a missing host (also a ValueError): fix the URL
    ├── InvalidAddress              an address is malformed for its protocol, or the
    │                               machine says there is no such thing (also a
    │                               ValueError): fix the address
    ├── NotSupported                the protocol has no such operation (`call` on
    │                               Modbus, `read` of an MQTT wildcard): do not retry
    ├── WriteRefused                the machine refused a write: not writable, access
    │                               denied, out of range, the wrong type
    └── CallFailed                  the machine refused or failed a method call

Foreign exceptions (asyncua, pymodbus, aiomqtt, httpx, OS errors, asyncio timeouts)
are translated at the boundary of each connector, most specific first, with the
original kept as `__cause__`. A `ConnectorUnavailable` from a request also tells the
connector its link is gone, so it reconnects.
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "CallFailed",
    "ConnectorError",
    "ConnectorTimeout",
    "ConnectorUnavailable",
    "InvalidAddress",
    "InvalidConnectorUrl",
    "NotSupported",
    "WriteRefused",
]


class ConnectorError(ShopfloorError):
    """A connector failed to do what was asked."""

    code = "connector_error"
    kind = ErrorKind.UNAVAILABLE


class ConnectorUnavailable(ConnectorError):
    """The machine cannot be reached now; the same call may succeed later."""

    code = "connector_unavailable"


class ConnectorTimeout(ConnectorUnavailable):
    """The machine did not answer in time."""

    code = "connector_timeout"


class InvalidConnectorUrl(ConnectorError, ValueError):
    """A connector URL names no known protocol, or has an invalid option."""

    code = "invalid_connector_url"
    kind = ErrorKind.INVALID


class InvalidAddress(ConnectorError, ValueError):
    """An address is not valid for the protocol, or names nothing on the machine."""

    code = "invalid_address"
    kind = ErrorKind.INVALID


class NotSupported(ConnectorError):
    """The protocol (or this connector of it) has no such operation."""

    code = "not_supported"
    kind = ErrorKind.INVALID


class WriteRefused(ConnectorError):
    """The machine did not take the value."""

    code = "write_refused"
    kind = ErrorKind.INVALID


class CallFailed(ConnectorError):
    """The machine refused a method call or reported that it failed."""

    code = "call_failed"
    kind = ErrorKind.INVALID
