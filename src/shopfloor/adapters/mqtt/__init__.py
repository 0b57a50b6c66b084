"""The embedded MQTT broker: things publish and subscribe over MQTT 3.1.1 (amqtt).

async with EmbeddedBroker(ingress, bus, access, port=1883, metrics_registry=registry) as broker:
    ...                                  # broker.ready, broker.port

Contract
    topic       `channels/<channel_id>/messages[/<subtopic>]`
    username    the thing id; password: the thing key (anonymous clients are refused)
    TLS         optional second listener (`BrokerTls`): the same, or a client
                certificate naming the thing instead of the key (docs/mtls.md)
    QoS         0 and 1 (a QoS 2 subscription is granted QoS 1; a QoS 2 PUBLISH is
                taken at least once)

Publishing needs the `publish` permission on the channel, subscribing the `subscribe`
permission; a subscription filter names its channel literally and may use `+` and `#`
in the subtopic part only, anything else gets SUBACK failure 0x80. A PUBLISH never
reaches subscribers through amqtt: it goes through the same ingress as HTTP (the
envelope's publisher is the authenticated thing, its protocol "mqtt"), and every MQTT
subscriber receives what the bus carries, from MQTT, HTTP or WebSocket alike. A QoS 1
PUBACK is sent once the bus holds the message; while the bus is full or unavailable
the PUBACK is withheld and the message retried. A will is published like any other
message of the thing when it drops without DISCONNECT. The bus keeps no retained
messages, so the retain flag is ignored.

Content type
    MQTT 3.1.1 carries none, so it is read from the payload (as for WebSocket frames):
    first non-space byte `[` → application/senml+json; `{`, a digit, `"`, `-`, `t`,
    `f` or `n` (any other JSON) → application/json; a first byte 0x80 to 0x9f (a CBOR
    array, major type 4) → application/senml+cbor; anything else is parsed as SenML
    JSON and refused.

Refused messages
    A message that is malformed, too large, not allowed or outside the topic scheme
    is dropped (a QoS 1 message is still acknowledged: sending it again cannot help),
    counted in `shopfloor_mqtt_rejected_total{code}`, and reported to its publisher
    alone as `{"code", "message", "topic"}` on `channels/<channel_id>/messages/_errors`,
    a topic every thing may subscribe to for itself.
"""

from ._broker import BrokerTls, EmbeddedBroker
from ._errors import MqttBrokerError, MqttPortInUse
from ._gateway import BrokerLimits
from ._topics import errors_topic, message_topic

__all__ = [
    "BrokerLimits",
    "BrokerTls",
    "EmbeddedBroker",
    "MqttBrokerError",
    "MqttPortInUse",
    "errors_topic",
    "message_topic",
]
