"""The API as a service: identity, registry and readers routes (and the pki service,
which serves the certificates routes, with it)."""

from __future__ import annotations

from shopfloor.core import Service

__all__ = ["ApiService"]


class ApiService(Service, name="api", needs=("identity", "timeseries", "pki")):
    """Identity, registry and readers routes (`/api/v1`)."""

    routes = (
        "shopfloor.api.identity:router",
        "shopfloor.api.registry:router",
        "shopfloor.api.readers:router",
    )
