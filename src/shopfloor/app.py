"""Assembles the FastAPI app of a platform: the routes and hooks of its services."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shopfloor import __version__
from shopfloor.api import (
    BodyLimitMiddleware,
    HttpMetrics,
    MetricsMiddleware,
    install_error_handlers,
    mount_docs,
    system_router,
)
from shopfloor.core import CoreSettings, Platform, ServiceError

DESCRIPTION = """\
Shopfloor: things, channels and telemetry for industrial plants.

Sign in with `POST /api/v1/auth/token` and send `Authorization: Bearer <access_token>`.
Errors are `{"error": {"code": "...", "message": "..."}}` with stable codes.
"""


class ShopfloorApp(FastAPI):
    """FastAPI with an optional fast path in front of everything else.

    The HTTP adapter answers device messages before FastAPI's own entry (its telemetry
    hooks and middleware stack cost about a tenth of each publish in profiles); every
    other request, and the lifespan, go through FastAPI as usual.
    """

    fast_path: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None:
            await self.fast_path(scope, receive, send)
        else:
            await self._call_fastapi(scope, receive, send)

    async def _call_fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def load_router(path: str) -> APIRouter:
    """The router named "module:attribute"."""
    module, _, attribute = path.partition(":")
    router = getattr(importlib.import_module(module), attribute, None)
    if not isinstance(router, APIRouter):
        raise ServiceError(f"{path} is not an APIRouter")
    return router


def create_app(settings: CoreSettings, *, platform: Platform | None = None) -> ShopfloorApp:
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
    for service in platform.plan:
        for path in service.routes:
            app.include_router(load_router(path))
    # After the services' routes: the console's `/`, when it runs, is the front page.
    app.include_router(system_router)
    mount_docs(app)
    limits: dict[str, int] = {}
    for service in platform.plan:
        limits.update(service.body_limits(settings))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, limits=limits)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    for service in platform.plan:
        service.install(app, platform)
    return app
