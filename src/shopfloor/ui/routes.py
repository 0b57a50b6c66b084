"""The console's frame: sign-in and sign-out, the language, its own and the vendored
assets. The pages are in `overview.py` and `things.py`.

Sign-in methods: the platform's own accounts (`Authenticator.check_password`, throttled
as the API's token route is) and, when the console has a client at the OIDC issuer,
the issuer's own sign-in (`_oidc.py`): `GET /console/sign-in/oidc` redirects there (a
link, not a form: the CSP's `form-action 'self'` would stop a form's redirect to the
issuer) and `GET /console/sign-in/oidc/callback` starts a session with `source="oidc"`.
Its refusals come back to the sign-in page as `?error=<code>`, told in the user's
language.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from shopfloor.auth.capability import IdentityService
from shopfloor.core import ShopfloorError

from ._errors import CsrfRefused, InvalidForm
from ._oidc import FLOW_SECONDS, OIDC_ERRORS, OidcSignIn
from ._pages import PREFIX
from ._web import (
    CSRF_COOKIE,
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    SignedFormDep,
    asset_response,
    check_csrf,
    console_of,
    platform_of,
    redirect,
    render,
    secure,
    signed_in,
)

router = APIRouter(include_in_schema=False)

OIDC_COOKIE = "shopfloor_oidc"
OIDC_PATH = PREFIX + "/sign-in/oidc"

_ASSET_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get(PREFIX + "/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    """The console's own CSS, script and icons (a flat folder in the package)."""
    folder = console_of(request).static_dir
    path = folder / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return asset_response(request, path, _ASSET_TYPES.get(path.suffix, "application/octet-stream"))


@router.get(PREFIX + "/vendor/{name}")
async def vendor_file(name: str, request: Request) -> Response:
    """An installed npm package's file (`VENDOR_FILES`), from the assets folder."""
    path = console_of(request).asset(name)
    if path is None:
        return Response(status_code=404)
    return asset_response(request, path, "text/javascript")


def _local(target: str) -> str:
    """`target` if it is a path of this server, else `/` (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get(PREFIX + "/sign-in")
async def sign_in_page(
    request: Request, next: str = "/", error: str = "", signed_out: str = ""
) -> Response:
    if await signed_in(request) is not None:
        return redirect(request, _local(next))
    oidc = console_of(request).oidc
    context = {
        "next": _local(next),
        "oidc_label": oidc.label if oidc else None,
        "oidc_error": error if error in OIDC_ERRORS else None,
        "issuer_sign_out": (
            await oidc.end_session_url(_base(request) + PREFIX + "/sign-in")
            if oidc and signed_out == "oidc"
            else None
        ),
    }
    return render(request, "console/sign_in.html", context, caller=None)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _oidc_of(request: Request) -> OidcSignIn:
    oidc = console_of(request).oidc
    if oidc is None:
        raise InvalidForm(
            "the console has no OIDC sign-in configured",
            details=[{"field": "oidc", "problem": "not configured"}],
        )
    return oidc


def _callback_url(request: Request, oidc: OidcSignIn) -> str:
    return oidc.redirect_url or _base(request) + OIDC_PATH + "/callback"


def _refused(request: Request, error: ShopfloorError, next: str = "/") -> Response:
    code = error.code if error.code in OIDC_ERRORS else "oidc_failed"
    query = urlencode({"error": code, "next": _local(next)})
    response = redirect(request, f"{PREFIX}/sign-in?{query}")
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
    return response


@router.get(OIDC_PATH)
async def oidc_sign_in(request: Request, next: str = "/") -> Response:
    """To the issuer's sign-in, this browser's flow kept under the `shopfloor_oidc`
    cookie (HttpOnly, `SameSite=Lax` so that the issuer's redirect back carries it)."""
    oidc = _oidc_of(request)
    try:
        started = await oidc.start(redirect_url=_callback_url(request, oidc), next=_local(next))
    except ShopfloorError as exc:
        return _refused(request, exc, next)
    response = Response(status_code=303, headers={"Location": started.authorization_url})
    response.set_cookie(
        OIDC_COOKIE, started.flow_id, max_age=FLOW_SECONDS, path=OIDC_PATH, httponly=True,
        samesite="lax", secure=secure(request),
    )  # fmt: skip
    return response


@router.get(OIDC_PATH + "/callback")
async def oidc_callback(request: Request) -> Response:
    """The issuer's answer: a session for the principal its ID token maps to."""
    oidc = _oidc_of(request)
    params = {key: value for key, value in request.query_params.items()}
    try:
        finished = await oidc.finish(
            request.cookies.get(OIDC_COOKIE, ""),
            params=params,
            redirect_url=_callback_url(request, oidc),
        )
    except ShopfloorError as exc:
        return _refused(request, exc)
    console = console_of(request)
    session_id, _session = await console.sessions.create_oidc(
        finished.principal,
        language=console.anonymous_language(request),
        ttl_seconds=oidc.session_ttl_seconds,
    )
    response = redirect(request, _local(finished.next))
    _set_session_cookie(request, response, session_id, max_age=min(
        console.sessions.ttl_seconds, oidc.session_ttl_seconds
    ))  # fmt: skip
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
    return response


def _set_session_cookie(
    request: Request, response: Response, session_id: str, *, max_age: int
) -> None:
    """The session's cookie, expiring with the session."""
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=max_age, httponly=True, samesite="lax",
        secure=secure(request),
    )  # fmt: skip
    response.delete_cookie(CSRF_COOKIE)


@router.post(PREFIX + "/sign-in")
async def sign_in(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the e-mail and password as `POST /api/v1/auth/token` does, then start a
    session (its cookie) instead of handing out a token."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        raise CsrfRefused("the sign-in form is stale: reload the page")
    problems = [
        {"field": field, "problem": "required"}
        for field, value in (("email", email), ("password", password))
        if not value.strip()
    ]
    if problems:
        raise InvalidForm("give the e-mail and the password", details=problems)
    auth = platform_of(request).get(IdentityService).auth
    source = request.client.host if request.client else "unknown"
    user = await auth.check_password(email.strip(), password, source=source)
    console = console_of(request)
    # The language the user chose before follows them; else this browser's.
    language = await console.sessions.user_language(user.id)
    if language not in console.catalogue.languages:
        language = console.anonymous_language(request)
    session_id, _session = await console.sessions.create(
        user.id, generation=user.token_generation, language=language
    )
    response = redirect(request, _local(next))
    _set_session_cookie(request, response, session_id, max_age=console.sessions.ttl_seconds)
    return response


@router.post(PREFIX + "/sign-out")
async def sign_out(request: Request, sent: SignedFormDep) -> Response:
    """Ends the session; an OIDC account's lands on the sign-in page, which offers the
    issuer's own sign-out (its `end_session_endpoint`) when it has one."""
    await console_of(request).sessions.delete(sent.caller.session_id)
    oidc_account = sent.caller.session.source == "oidc"
    response = redirect(request, f"{PREFIX}/sign-in?signed_out=oidc" if oidc_account else "/")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure(request))
    return response


@router.post(PREFIX + "/language")
async def set_language(request: Request) -> Response:
    """The console's language: kept in the session and for the user's next sign-ins
    when signed in, else in a cookie for the sign-in page (and the session that starts
    from it)."""
    form = await request.form()
    console = console_of(request)
    language = form.get("language", "")
    if language not in console.catalogue.languages or not isinstance(language, str):
        raise InvalidForm(
            "no such language",
            details=[{"field": "language", "problem": f"one of {console.catalogue.languages}"}],
        )
    caller = await signed_in(request)
    if caller is not None:
        check_csrf(request, form, caller.session.csrf_token)
        await console.sessions.set_language(caller.session_id, language)
        if caller.session.user_id is not None:  # an OIDC account's is the cookie's
            await console.sessions.remember_language(caller.session.user_id, language)
    else:
        check_csrf(request, form, request.cookies.get(CSRF_COOKIE, ""))
    back = form.get("back", "/")
    response = redirect(request, _local(back if isinstance(back, str) else "/"))
    response.set_cookie(
        LANGUAGE_COOKIE, language, max_age=365 * 86400, httponly=True, samesite="lax",
        secure=secure(request),
    )  # fmt: skip
    return response
