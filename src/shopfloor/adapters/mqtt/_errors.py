"""Errors raised by the embedded MQTT broker.

    MqttBrokerError         the broker could not start or run
    └── MqttPortInUse       the listening port is taken (also an OSError); the
                            message names the port so the operator knows what to change

Messages a thing publishes are never refused with an exception: they are counted and
reported to the publisher on `channels/<channel>/messages/_errors`.
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = ["MqttBrokerError", "MqttPortInUse"]


class MqttBrokerError(ShopfloorError):
    """The embedded MQTT broker could not start or run."""

    code = "mqtt_broker_error"
    kind = ErrorKind.UNAVAILABLE


class MqttPortInUse(MqttBrokerError, OSError):
    """Another process listens on the MQTT port."""

    code = "mqtt_port_in_use"

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"the MQTT port {port} on {host} is already in use")
        self.host = host
        self.port = port
