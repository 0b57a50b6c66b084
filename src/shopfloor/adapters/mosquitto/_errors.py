"""Errors raised by the Mosquitto adapter.

    MosquittoError              any failure of Mosquitto mode
    ├── DynsecError             the dynamic-security plugin refused a command; carries the
    │                           command name and the broker's own message
    ├── DynsecUnavailable       no admin connection to the broker, or no answer in time;
    │                           the commands may or may not have been applied, and every
    │                           operation of `DynsecSync` is safe to repeat
    ├── InvalidBrokerUrl        SHOPFLOOR_MQTT_BROKER_URL cannot be used (also a ValueError)
    ├── PluginBuildError        the publisher plugin did not compile (compiler output kept)
    └── DynsecInitError         `mosquitto_ctrl dynsec init` failed

Foreign exceptions (aiomqtt, OS errors, timeouts) are translated at the boundary of
`DynsecClient`, with the original kept as `__cause__`.
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "DynsecError",
    "DynsecInitError",
    "DynsecUnavailable",
    "InvalidBrokerUrl",
    "MosquittoError",
    "PluginBuildError",
]


class MosquittoError(ShopfloorError):
    """Base of every error of the Mosquitto adapter."""

    code = "mosquitto_error"
    kind = ErrorKind.UNAVAILABLE


class DynsecError(MosquittoError):
    """The dynamic-security plugin answered a command with an error."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"dynsec {command} failed: {message}")
        self.command = command
        self.reason = message


class DynsecUnavailable(MosquittoError):
    """The broker cannot be reached as admin, or did not answer in time."""


class InvalidBrokerUrl(MosquittoError, ValueError):
    """The broker URL is not `mqtt://user:password@host:port`."""

    code = "invalid_broker_url"
    kind = ErrorKind.INVALID


class PluginBuildError(MosquittoError):
    """Compiling the publisher plugin failed."""


class DynsecInitError(MosquittoError):
    """Creating the dynamic-security configuration file failed."""
