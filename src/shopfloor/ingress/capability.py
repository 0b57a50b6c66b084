"""The ingress as a service, for the adapters of a process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Service
from shopfloor.messaging.capability import BusService

from ._ingress import Ingress, IngressMetrics

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["IngressService"]


class IngressService(Service, name="ingress", needs=("identity", "bus"), internal=True):
    """Validates things' messages and puts them on the bus."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.ingress = Ingress(
            platform.get(IdentityService).access,
            platform.get(BusService).bus,
            IngressMetrics.create(platform.metrics),
            max_payload_bytes=platform.settings.max_body_bytes,
        )
