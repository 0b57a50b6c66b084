"""Prometheus metrics of the embedded MQTT broker (the ingress counts accepted messages)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["MqttMetrics"]


@dataclass(frozen=True, slots=True)
class MqttMetrics:
    rejected: Counter
    retries: Counter
    refused_connections: Counter
    delivered: Counter
    dropped: Counter
    connections: Gauge
    taken_over: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MqttMetrics:
        return cls(
            rejected=Counter(
                "shopfloor_mqtt_rejected",
                "PUBLISH messages not put on the bus, by error code.",
                ["code"],
                registry=registry,
            ),
            retries=Counter(
                "shopfloor_mqtt_publish_retries",
                "Bus publishes retried because the bus was full or unavailable.",
                registry=registry,
            ),
            refused_connections=Counter(
                "shopfloor_mqtt_connections_refused",
                "CONNECTs refused, by reason.",
                ["reason"],
                registry=registry,
            ),
            delivered=Counter(
                "shopfloor_mqtt_delivered",
                "Messages sent to MQTT subscribers.",
                registry=registry,
            ),
            dropped=Counter(
                "shopfloor_mqtt_dropped",
                "Messages not sent to an MQTT subscriber, by reason.",
                ["reason"],
                registry=registry,
            ),
            connections=Gauge(
                "shopfloor_mqtt_connections",
                "Authenticated MQTT connections.",
                registry=registry,
            ),
            taken_over=Counter(
                "shopfloor_mqtt_connections_taken_over",
                "Connections closed because a new one came with the same client id.",
                registry=registry,
            ),
        )
