"""The front page, health, Prometheus metrics and the OpenAPI UI served from local assets.

FastAPI's default `/docs` loads Swagger UI from a public CDN; plants are often
air-gapped, so the assets come from the `fastapi-offline` package and are served here.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shopfloor import __version__

from ._deps import PlatformDep

router = APIRouter()
DOCS_ASSETS = "/docs/assets"

# Until the console lands, `/` is a page of plain HTML with no assets at all: it names
# the version and the services of this process and links what a newcomer looks for.
_FRONT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shopfloor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;
padding:0 1rem;color:#1d2733}}a{{color:#0b5cad}}code{{background:#eef1f4;padding:0 .2em}}
</style></head><body>
<h1>Shopfloor {version}</h1>
<p>This process runs the services <code>{services}</code>.</p>
<ul>
<li><a href="/docs">API documentation</a> (sign in with <code>POST /api/v1/auth/token</code>)</li>
<li><a href="/health">Health</a> of every service</li>
<li><a href="/metrics">Metrics</a> for Prometheus</li>
<li><a href="/openapi.json">OpenAPI description</a></li>
</ul>
</body></html>
"""


@router.get("/", include_in_schema=False)
async def front_page(platform: PlatformDep) -> HTMLResponse:
    services = ",".join(service.name for service in platform.plan if not service.internal)
    return HTMLResponse(_FRONT_PAGE.format(version=__version__, services=services))


@router.get("/health", tags=["system"], summary="Readiness of every service of this process")
async def health(platform: PlatformDep) -> JSONResponse:
    services = await platform.health.report()
    ready = platform.started and all(services.values())
    body: dict[str, object] = {
        "status": "ok" if ready else "unavailable", "version": __version__, "services": services,
    }  # fmt: skip
    if problems := platform.health.problems(services):
        body["problems"] = problems
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", tags=["system"], summary="Prometheus metrics")
async def metrics(platform: PlatformDep, request: Request) -> Response:
    """Every metric, or only the samples named by `name[]` parameters (as Prometheus's
    own client serves them): a scrape of everything costs the server about 5 ms."""
    registry: Any = platform.metrics
    if names := request.query_params.getlist("name[]"):
        registry = registry.restricted_registry(names)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def mount_docs(app: FastAPI) -> None:
    """`/docs` with Swagger UI from local assets; `app` must be built with docs_url=None."""
    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    # The app comes from the request, not from this closure: FastAPI caches what it
    # learns of each endpoint function (4,096 of them), and a closure over the app would
    # keep every app ever built alive (a test suite builds hundreds).
    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        served: FastAPI = request.app
        return get_swagger_ui_html(
            openapi_url=served.openapi_url or "/openapi.json",
            title=f"{served.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=oauth2_redirect,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
