"""The protocol adapters as services: `http` (HTTP and WebSocket) and `mqtt`.

Both are edges: they start after everything they feed and stop first, so nothing
is accepted while the writer drains.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, model_validator

from shopfloor.auth.capability import IdentityService
from shopfloor.core import EDGE_STAGE, Section, Service
from shopfloor.ingress.capability import IngressService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.registry import RegistryChange

if TYPE_CHECKING:
    from shopfloor.core import Platform

    from .mosquitto import MosquittoService
    from .mqtt import EmbeddedBroker

__all__ = ["HttpService", "MqttService", "MqttSettings"]


class HttpService(Service, name="http", needs=("ingress",)):
    """HTTP and WebSocket adapters: things publish and subscribe over the HTTP port."""

    stage = EDGE_STAGE
    routes = ("shopfloor.adapters.http:router", "shopfloor.adapters.websocket:router")

    @classmethod
    def install(cls, app: Any, platform: Platform) -> None:
        from .http import HttpAdapterFastPath

        # Ahead of FastAPI: device messages skip routing, the body-size and metrics
        # middleware (the fast path applies the same limit and records the same series).
        app.fast_path = HttpAdapterFastPath(
            app._call_fastapi,
            ingress=lambda: platform.get(IngressService).ingress,
            max_body_bytes=platform.settings.max_body_bytes,
            registry=platform.metrics,
        )


class MqttSettings(Section, section="mqtt"):
    mqtt_host: str = Field(default="0.0.0.0", description="Address the MQTT broker binds.")  # noqa: S104
    mqtt_port: int = Field(default=1883, ge=0, le=65535, description="Embedded MQTT broker port.")
    mqtt_broker_url: str = Field(
        default="", description="Empty for the embedded broker, or mqtt://host:port (Mosquitto)."
    )
    mqtt_bridge_password: SecretStr = Field(
        default=SecretStr(""),
        description="Mosquitto mode: password of the platform's bridge identity (16+ chars, "
        "the same in every process).",
    )
    mqtt_bridge_client_id: str = Field(
        default="shopfloor-bridge",
        description="Mosquitto mode: MQTT client id of this process's bridge session.",
    )

    @model_validator(mode="after")
    def _mosquitto_mode(self) -> MqttSettings:
        if self.mqtt_broker_url and len(self.mqtt_bridge_password.get_secret_value()) < 16:
            raise ValueError(
                "Mosquitto mode needs SHOPFLOOR_MQTT_BRIDGE_PASSWORD (at least 16 characters)"
            )
        return self

    @property
    def embedded(self) -> bool:
        return not self.mqtt_broker_url


class MqttService(Service, name="mqtt", needs=("ingress",)):
    """MQTT: the embedded broker, or the bridge to Mosquitto when a broker URL is set."""

    stage = EDGE_STAGE

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.options = platform.settings.section(MqttSettings)
        self.broker: EmbeddedBroker | None = None
        self.mosquitto: MosquittoService | None = None

    health = "mqtt"

    def health_name(self) -> str:
        return "mqtt" if self.options.embedded else "mosquitto"

    @property
    def port(self) -> int | None:
        """The embedded broker's port (None in Mosquitto mode)."""
        return self.broker.port if self.broker is not None else None

    async def _start(self, stack: AsyncExitStack) -> None:
        platform, options = self.platform, self.options
        ingress = platform.get(IngressService).ingress
        bus = platform.get(BusService)
        identity = platform.get(IdentityService)
        if options.embedded:
            from .mqtt import EmbeddedBroker

            broker = EmbeddedBroker(
                ingress, bus.bus, identity.access,
                host=options.mqtt_host, port=options.mqtt_port, metrics_registry=platform.metrics,
            )  # fmt: skip
            self.broker = await stack.enter_async_context(broker)
            return
        from .mosquitto import MosquittoOptions, MosquittoService

        mosquitto = MosquittoService(
            options.mqtt_broker_url,
            options.mqtt_bridge_password.get_secret_value(),
            identity.registry,
            ingress,
            bus.bus,
            metrics_registry=platform.metrics,
            options=MosquittoOptions(client_id=options.mqtt_bridge_client_id),
            follow_registry=False,
        )
        self.mosquitto = await stack.enter_async_context(mosquitto)
        # Changes made in any process of the deployment keep this broker in step.
        stack.enter_context(bus.events.listen("registry.>", self._on_registry_event))
        stack.enter_context(
            bus.events.listen(
                RECONNECTED, lambda _event: mosquitto.request_resync("the bus reconnected")
            )
        )

    def _on_registry_event(self, event: Event) -> None:
        if self.mosquitto is not None:
            self.mosquitto.on_change(RegistryChange.from_data(event.data))

    @property
    def ready(self) -> bool:
        if self.broker is not None:
            return self.broker.ready
        return self.mosquitto is not None and self.mosquitto.ready
