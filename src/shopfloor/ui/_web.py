"""What every console route shares: the `Console` (templates, catalogue, sessions,
assets), the signed-in caller, CSRF checks and rendering.

Cookies: `shopfloor_session` holds the session id (HttpOnly, SameSite=Lax, Secure when
the page came over https, expiring with the session); before sign-in,
`shopfloor_csrf` holds the sign-in form's CSRF token (double submit) and
`shopfloor_language` the language chosen on the sign-in page. Signed in, every form
and every htmx request carries the session's CSRF token (a hidden `csrf_token` field,
the `X-CSRF-Token` header that the layout makes htmx send).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import FormData

from shopfloor.auth import Action, Principal, Unauthenticated
from shopfloor.auth.capability import IdentityService
from shopfloor.core import Platform, ShopfloorError, http_status

from ._errors import CsrfRefused, SignInRequired
from ._i18n import Catalogue
from ._oidc import OidcSignIn
from ._pages import PREFIX, pages
from ._sessions import ConsoleSession, SessionStore

if TYPE_CHECKING:
    from .capability import ConsoleService

__all__ = [
    "CSRF_HEADER",
    "VENDOR_FILES",
    "Console",
    "SignedForm",
    "SignedFormDep",
    "SignedIn",
    "SignedInDep",
    "asset_response",
    "console_of",
    "console_page",
    "error_page",
    "render",
    "signed_in",
]

SESSION_COOKIE = "shopfloor_session"
CSRF_COOKIE = "shopfloor_csrf"
LANGUAGE_COOKIE = "shopfloor_language"
CSRF_HEADER = "X-CSRF-Token"

#: The files of the npm packages that pages load, by the name they are served under
#: (`/console/vendor/<name>`): nothing else of `node_modules` is reachable.
VENDOR_FILES: Mapping[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "htmx-ext-sse.min.js": "htmx-ext-sse/dist/sse.min.js",
    "echarts.min.js": "echarts/dist/echarts.min.js",
}

#: Every page: nothing from elsewhere (the CSP forbids it), never framed, no sniffing.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Console:
    """Templates, texts, sessions and assets of the console (held by its service)."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        catalogue: Catalogue,
        assets_dir: Path,
        language: str,
        oidc: OidcSignIn | None = None,
    ) -> None:
        self.sessions = sessions
        #: The sign-in at the OIDC issuer, when one is configured for the console.
        self.oidc = oidc
        self.catalogue = catalogue
        self.assets_dir = assets_dir
        self.language = language if language in catalogue.languages else "en"
        self._loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("shopfloor.ui")]
        self.templates = jinja2.Environment(
            loader=jinja2.ChoiceLoader(self._loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["when"] = _when
        self.templates.globals["asset"] = self.asset_url
        self.static_dir = Path(str(files(__package__) / "static"))
        #: The folders of served files by URL (`<url>/<name>`), for `asset_url`.
        self._static_folders: dict[str, Path] = {PREFIX + "/static": self.static_dir}

    def add_static(self, url: str, folder: Path) -> None:
        """Let templates name the files of a capability's `folder`, served as `<url>/<name>`,
        through `asset()` (so that they are cached as the console's own are)."""
        self._static_folders[url] = folder

    def asset_url(self, url: str) -> str:
        """`url` of a served file with `?v=` its content's digest. The file's route answers
        a request with the current digest as cacheable for a year (`immutable`), so a page
        loads its scripts and styles from the browser's cache without asking again; a
        changed file gets a new URL."""
        folder, _, name = url.rpartition("/")
        if folder == PREFIX + "/vendor":
            path = self.asset(name)
        else:
            path = self._static_folders[folder] / name if folder in self._static_folders else None
        return f"{url}?v={file_digest(path)}" if path is not None and path.is_file() else url

    def add_templates(self, package: str, folder: str = "templates") -> None:
        """Let pages of another capability render templates from its own package."""
        self._loaders.append(jinja2.PackageLoader(package, folder))

    def asset(self, name: str) -> Path | None:
        """The installed file served as `/console/vendor/<name>`, if it is there."""
        relative = VENDOR_FILES.get(name)
        if relative is None:
            return None
        path = self.assets_dir / relative
        return path if path.is_file() else None

    def anonymous_language(self, request: Request) -> str:
        chosen = request.cookies.get(LANGUAGE_COOKIE, "")
        if chosen in self.catalogue.languages:
            return chosen
        header = request.headers.get("accept-language", "")
        return self.catalogue.best(header) if header else self.language


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the file: read again only when it changed."""
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest(path: Path, _mtime_ns: int, _size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def asset_response(request: Request, path: Path, media_type: str) -> Response:
    """A served script, style or icon: cacheable for a year when asked for by its current
    digest (`asset_url`), else revalidated each time (its ETag answers 304 when unchanged)."""
    current = request.query_params.get("v") == file_digest(path)
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})


def _when(value: datetime | float | None) -> str:
    """A time in UTC to the second, as every time is stored and compared."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def console_of(request: Request) -> Console:
    from .capability import ConsoleService  # the service module builds on this one

    service: ConsoleService = platform_of(request).get(ConsoleService)
    return service.console


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedIn:
    """The caller of a console page: the platform's principal and the session."""

    principal: Principal
    session: ConsoleSession
    session_id: str


async def signed_in(request: Request) -> SignedIn | None:
    """The signed-in caller, or None (no cookie, expired, ended, or the password
    changed since, or the OIDC account's organisation is gone: the session is removed
    then)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    console = console_of(request)
    session = await console.sessions.get(session_id)
    if session is None:
        return None
    auth = platform_of(request).get(IdentityService).auth
    if session.principal is not None:  # an OIDC account: as mapped at sign-in
        principal = session.principal
        if principal.org_id is not None and not await auth.organisation_exists(principal.org_id):
            await console.sessions.delete(session_id)
            return None
        return SignedIn(principal=principal, session=session, session_id=session_id)
    try:
        principal = await auth.user_principal(session.user_id or "", generation=session.generation)
    except Unauthenticated:
        await console.sessions.delete(session_id)
        return None
    return SignedIn(principal=principal, session=session, session_id=session_id)


async def require_signed_in(request: Request) -> SignedIn:
    caller = await signed_in(request)
    if caller is None:
        raise SignInRequired("the console session has expired or ended: sign in again")
    return caller


SignedInDep = Annotated[SignedIn, Depends(require_signed_in)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedForm:
    """A form sent by a signed-in caller with their session's CSRF token."""

    caller: SignedIn
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name, "")
        return value.strip() if isinstance(value, str) else ""


def check_csrf(request: Request, form: FormData, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER) or form.get("csrf_token") or ""
    if (
        not isinstance(sent, str)
        or not expected
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfRefused("the form is stale or did not come from this console: reload the page")


async def signed_form(request: Request) -> SignedForm:
    caller = await require_signed_in(request)
    form = await request.form()
    check_csrf(request, form, caller.session.csrf_token)
    return SignedForm(caller=caller, form=form)


SignedFormDep = Annotated[SignedForm, Depends(signed_form)]


def anonymous_csrf(request: Request) -> str:
    """The sign-in form's CSRF token: the cookie's, or a new one (set by `render`)."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    caller: SignedIn | None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page (or a fragment) in the caller's language, with what the layout needs."""
    console = console_of(request)
    platform = platform_of(request)
    running = {service.name for service in platform.plan}
    if caller is not None:
        language, csrf = caller.session.language, caller.session.csrf_token
        nav = pages.visible(caller.principal, running)
    else:
        language, csrf, nav = console.anonymous_language(request), anonymous_csrf(request), []
    values = {
        "t": partial(console.catalogue.text, language),
        "language": language,
        "languages": console.catalogue.languages,
        "caller": caller,
        "principal": caller.principal if caller else None,
        "nav": nav,
        "running": running,
        "csrf_token": csrf,
        "csrf_header": CSRF_HEADER,
        "path": request.url.path,
        "prefix": PREFIX,
        "Action": Action,
        **(context or {}),
    }
    body = console.templates.get_template(template).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    response.headers.update(SECURITY_HEADERS)
    if caller is None and CSRF_COOKIE not in request.cookies:
        response.set_cookie(
            CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure(request)
        )  # fmt: skip
    return response


def error_page(request: Request, caller: SignedIn, error: ShopfloorError) -> HTMLResponse:
    """A refusal of a whole page (an unknown channel, no organisation) as a page of the
    console in the caller's language, with the error's own message and status; htmx
    requests and forms get the API's JSON instead (the one error handler)."""
    status = http_status(error.kind)
    context = {"status": status, "code": error.code, "message": error.message}
    return render(request, "console/error.html", context, caller=caller, status_code=status)


PageBuilder = Callable[[SignedIn], Awaitable[Response]]


async def console_page(request: Request, build: PageBuilder) -> Response:
    """A whole page built for the signed-in caller: without one, the sign-in page (which
    comes back here); a refusal, as an error page (`error_page`)."""
    caller = await signed_in(request)
    if caller is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, f"{PREFIX}/sign-in?next={quote(back, safe='/')}")
    try:
        return await build(caller)
    except ShopfloorError as exc:
        if request.headers.get("hx-request"):
            raise  # htmx shows the API's JSON beside what asked
        return error_page(request, caller, exc)


def redirect(request: Request, url: str) -> Response:
    """To `url`: by `HX-Redirect` for htmx (which follows no 303 into a full page)."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})
