"""The protocol adapters as services: `http` (HTTP and WebSocket) and `mqtt`.

Both are edges: they start after everything they feed and stop first, so nothing
is accepted while the writer drains.

TLS (docs/mtls.md): the certificates come from files named in the settings or from the
`pki` service of the process. This module alone talks to that service (`_pki_tls`); the
broker, the Mosquitto CRL publisher and the HTTP adapter take plain objects (an
`ssl.SSLContext`, file paths, a `CertificateGate`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, model_validator

from shopfloor.auth.capability import IdentityService
from shopfloor.core import EDGE_STAGE, Section, Service
from shopfloor.ingress.capability import IngressService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.pki import CertificateGate
from shopfloor.pki.capability import PkiService
from shopfloor.registry import RegistryChange

if TYPE_CHECKING:
    from shopfloor.core import Platform

    from .mosquitto import MosquittoService
    from .mqtt import BrokerTls, EmbeddedBroker

__all__ = ["HttpService", "MqttService", "MqttSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PkiTls:
    """What the edges take from the pki service of the process."""

    gate: CertificateGate
    #: The CA client certificates are checked against (PEM).
    ca_file: Path
    #: `await server_identity(name, hostnames)` → (cert file, key file) for a listener.
    server_identity: Callable[[str, Sequence[str]], Awaitable[tuple[Path, Path]]]
    #: `await crl_pem()` → the CA's current CRL (PEM).
    crl_pem: Callable[[], Awaitable[str]]


def _pki_tls(platform: Platform) -> PkiTls | None:
    """The pki service's gate, CA and certificates; None when this process runs none."""
    if not platform.running(PkiService):
        return None
    pki = platform.get(PkiService)

    async def server_identity(name: str, hostnames: Sequence[str]) -> tuple[Path, Path]:
        files = await pki.server_identity(name, hostnames)
        return Path(files.cert_file), Path(files.key_file)

    async def crl_pem() -> str:
        return str(await pki.certs.crl_pem())

    return PkiTls(pki.gate, Path(pki.ca_file), server_identity, crl_pem)


def _server_hostnames(host: str) -> list[str]:
    """Names a listener's server certificate covers: this host, and the bind address."""
    names = [socket.getfqdn(), socket.gethostname(), "localhost", "127.0.0.1"]
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        names.insert(0, host)
    return list(dict.fromkeys(name for name in names if name))


class HttpService(Service, name="http", needs=("ingress", "pki")):
    """HTTP and WebSocket adapters: things publish and subscribe over the HTTP port."""

    stage = EDGE_STAGE
    routes = ("shopfloor.adapters.http:router", "shopfloor.adapters.websocket:router")

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        #: Admits HTTPS client certificates (None: plain HTTP, no certificate login).
        self.gate: CertificateGate | None = None

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
            gate=lambda: platform.get(HttpService).gate,
        )

        async def trust_pki_ca() -> None:
            # The HTTPS context is made before the platform starts; the pki service's CA
            # is known only now, and uvicorn serves only after the start.
            context = getattr(app.state, "tls_context", None)
            pki = _pki_tls(platform)
            if context is not None and pki is not None and not platform.settings.tls_client_ca:
                context.load_verify_locations(cafile=str(pki.ca_file))

        platform.on_started.append(trust_pki_ca)

    async def _start(self, stack: AsyncExitStack) -> None:
        pki = _pki_tls(self.platform)
        if pki is not None:
            self.gate = pki.gate
        elif self.platform.settings.tls_cert is not None:
            # Client certificates of the operator's own CA: entity and validity are
            # checked; revocations reach only a pki service's gate.
            self.gate = CertificateGate()


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
    mqtts_port: int = Field(
        default=8883,
        ge=-1,
        le=65535,
        description="Embedded broker's MQTT-over-TLS port; 0 takes a free one, -1 turns it off.",
    )
    mqtt_tls_cert: Path | None = Field(
        default=None,
        description="Server certificate (PEM) of the TLS listener; default: from the CA.",
    )
    mqtt_tls_key: Path | None = Field(
        default=None, description="Private key (PEM) of SHOPFLOOR_MQTT_TLS_CERT."
    )
    mqtt_tls_client_ca: Path | None = Field(
        default=None,
        description="CA (PEM) client certificates are checked against; default: the CA's.",
    )
    mosquitto_crl_file: Path | None = Field(
        default=None,
        description="Mosquitto mode: CRL file the platform keeps current (Mosquitto crlfile).",
    )
    mosquitto_pid_file: Path | None = Field(
        default=None,
        description="Mosquitto mode: Mosquitto's pid file; SIGHUP after each CRL update.",
    )
    mosquitto_reload_command: str = Field(
        default="",
        description="Mosquitto mode: command run after each CRL update (instead of SIGHUP).",
    )

    @model_validator(mode="after")
    def _mosquitto_mode(self) -> MqttSettings:
        if self.mqtt_broker_url and len(self.mqtt_bridge_password.get_secret_value()) < 16:
            raise ValueError(
                "Mosquitto mode needs SHOPFLOOR_MQTT_BRIDGE_PASSWORD (at least 16 random "
                "characters, the same in every process, e.g. from openssl rand -hex 24)"
            )
        if (self.mqtt_tls_cert is None) != (self.mqtt_tls_key is None):
            raise ValueError("set both SHOPFLOOR_MQTT_TLS_CERT and SHOPFLOOR_MQTT_TLS_KEY, or none")
        return self

    @property
    def embedded(self) -> bool:
        return not self.mqtt_broker_url


class MqttService(Service, name="mqtt", needs=("ingress", "pki")):
    """MQTT: the embedded broker, or the bridge to Mosquitto when a broker URL is set."""

    stage = EDGE_STAGE
    commands = {"mosquitto": "shopfloor.adapters.mosquitto.commands:mosquitto_app"}

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

    @property
    def tls_port(self) -> int | None:
        """The embedded broker's TLS port (None without a TLS listener)."""
        return self.broker.tls_port if self.broker is not None else None

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
                tls=await self._broker_tls(),
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
        await self._keep_mosquitto_crl(stack, mosquitto)
        # Changes made in any process of the deployment keep this broker in step.
        stack.enter_context(bus.events.listen("registry.>", self._on_registry_event))
        stack.enter_context(
            bus.events.listen(
                RECONNECTED, lambda _event: mosquitto.request_resync("the bus reconnected")
            )
        )

    async def _broker_tls(self) -> BrokerTls | None:
        """The embedded broker's TLS listener, if it has one (files, else the pki service)."""
        from .mqtt import BrokerTls
        from .tls import server_tls_context

        options = self.options
        if options.mqtts_port < 0:
            return None
        pki = _pki_tls(self.platform)
        if options.mqtt_tls_cert is not None and options.mqtt_tls_key is not None:
            cert_file, key_file = options.mqtt_tls_cert, options.mqtt_tls_key
        elif pki is not None:
            hostnames = _server_hostnames(options.mqtt_host)
            cert_file, key_file = await pki.server_identity("mqtt", hostnames)
        else:
            logger.info(
                "no MQTT TLS listener: set SHOPFLOOR_MQTT_TLS_CERT and SHOPFLOOR_MQTT_TLS_KEY "
                "or run the pki service (SHOPFLOOR_MQTTS_PORT=-1 says so explicitly)"
            )
            return None
        client_ca = options.mqtt_tls_client_ca or (pki.ca_file if pki is not None else None)
        context = server_tls_context(cert_file, key_file, client_ca=client_ca)
        # Without the pki service no revocation reaches this gate: it still checks the
        # entity and the validity of every certificate.
        gate = pki.gate if pki is not None else CertificateGate()
        return BrokerTls(context=context, gate=gate, port=options.mqtts_port)

    async def _keep_mosquitto_crl(self, stack: AsyncExitStack, mosquitto: MosquittoService) -> None:
        """Mosquitto mode with a TLS listener: keep its CRL file current (docs/mtls.md)."""
        from .mosquitto import CrlKeeper, reload_command, signal_pid_file

        options = self.options
        if options.mosquitto_crl_file is None:
            return
        pki = _pki_tls(self.platform)
        if pki is None:
            logger.warning(
                "SHOPFLOOR_MOSQUITTO_CRL_FILE is set but this process runs no pki service: "
                "the CRL is not kept"
            )
            return
        if options.mosquitto_reload_command:
            reload = reload_command(options.mosquitto_reload_command)
        elif options.mosquitto_pid_file is not None:
            reload = signal_pid_file(options.mosquitto_pid_file)
        else:
            reload = None
            logger.warning(
                "no SHOPFLOOR_MOSQUITTO_PID_FILE or _RELOAD_COMMAND: Mosquitto reads the "
                "updated CRL only when it restarts or gets SIGHUP"
            )
        keeper = CrlKeeper(
            options.mosquitto_crl_file, crl_pem=pki.crl_pem, reload=reload,
            kick=mosquitto.kick_thing,
        )  # fmt: skip
        await stack.enter_async_context(keeper)
        stack.callback(pki.gate.on_revoked(keeper.revoked))

    def _on_registry_event(self, event: Event) -> None:
        if self.mosquitto is not None:
            self.mosquitto.on_change(RegistryChange.from_data(event.data))

    @property
    def ready(self) -> bool:
        if self.broker is not None:
            return self.broker.ready
        return self.mosquitto is not None and self.mosquitto.ready

    def problem(self) -> str | None:
        return self.mosquitto.problem() if self.mosquitto is not None else None
