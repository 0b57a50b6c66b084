"""Assembles the FastAPI app and the platform's services from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from shopfloor import __version__
from shopfloor.adapters.http import HttpAdapterFastPath
from shopfloor.adapters.http import router as http_adapter_router
from shopfloor.adapters.websocket import router as websocket_router
from shopfloor.api import (
    BodyLimitMiddleware,
    HttpMetrics,
    MetricsMiddleware,
    identity_router,
    install_error_handlers,
    mount_docs,
    readers_router,
    registry_router,
    system_router,
)
from shopfloor.services import Platform
from shopfloor.settings import Settings

DESCRIPTION = """\
Shopfloor: things, channels and telemetry for industrial plants.

Sign in with `POST /api/v1/auth/token` and send `Authorization: Bearer <access_token>`.
Errors are `{"error": {"code": "...", "message": "..."}}` with stable codes.
"""


class ShopfloorApp(FastAPI):
    """FastAPI with the HTTP adapter's fast path in front of everything else.

    Device messages are answered before FastAPI's own entry (its telemetry hooks and
    middleware stack cost about a tenth of each publish in profiles); every other
    request, and the lifespan, go through FastAPI as usual.
    """

    fast_path: HttpAdapterFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None:
            await self.fast_path(scope, receive, send)
        else:
            await self._call_fastapi(scope, receive, send)

    async def _call_fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, platform: Platform | None = None) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the platform's services."""
    platform = platform or Platform(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with platform:
            yield

    app = ShopfloorApp(
        title="Shopfloor",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.metrics = HttpMetrics(platform.metrics)
    install_error_handlers(app)
    app.include_router(system_router)
    app.include_router(identity_router)
    app.include_router(registry_router)
    services = set(settings.services)
    if "api" in services:
        app.include_router(readers_router)
    if "http" in services:
        app.include_router(http_adapter_router)
        app.include_router(websocket_router)
    mount_docs(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if "http" in services:
        # Ahead of FastAPI: device messages skip routing, the body-size and metrics
        # middleware (the fast path applies the same limit and records the same series).
        app.fast_path = HttpAdapterFastPath(
            app._call_fastapi,
            ingress=lambda: platform.ingress,
            max_body_bytes=settings.max_body_bytes,
            registry=platform.metrics,
        )
    return app
