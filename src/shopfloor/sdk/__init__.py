"""The device side of Shopfloor: bootstrap from an external id and key."""

from ._bootstrap import (
    CredentialPaths,
    DeviceChannel,
    DeviceConfig,
    abootstrap,
    bootstrap,
    open_answer,
)
from ._errors import BootstrapRefused, BootstrapResponseTampered, BootstrapUnreachable

__all__ = [
    "BootstrapRefused",
    "BootstrapResponseTampered",
    "BootstrapUnreachable",
    "CredentialPaths",
    "DeviceChannel",
    "DeviceConfig",
    "abootstrap",
    "bootstrap",
    "open_answer",
]
