"""The console's frame: sign-in and sign-out, the language, its own and the vendored
assets. The pages are in `overview.py` and `things.py`.

Sign-in methods: the platform's own accounts (`Authenticator.check_password`, throttled
as the API's token route is). OIDC sign-in (the authorization-code flow with PKCE,
through authlib) is to come as a second method beside it: `GET /console/sign-in/oidc`
redirecting to the issuer and `/console/sign-in/oidc/callback` starting a session
with `source="oidc"` (the sessions table has the column); nothing of it exists yet.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response

from shopfloor.auth.capability import IdentityService

from ._errors import CsrfRefused, InvalidForm
from ._pages import PREFIX
from ._web import (
    CSRF_COOKIE,
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    SignedFormDep,
    check_csrf,
    console_of,
    platform_of,
    redirect,
    render,
    secure,
    signed_in,
)

router = APIRouter(include_in_schema=False)

_ASSET_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get(PREFIX + "/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    """The console's own CSS, script and icons (a flat folder in the package)."""
    folder = console_of(request).static_dir
    path = folder / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    suffix = path.suffix
    return FileResponse(path, media_type=_ASSET_TYPES.get(suffix, "application/octet-stream"))


@router.get(PREFIX + "/vendor/{name}")
async def vendor_file(name: str, request: Request) -> Response:
    """An installed npm package's file (`VENDOR_FILES`), from the assets folder."""
    path = console_of(request).asset(name)
    if path is None:
        return Response(status_code=404)
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"}
    )


def _local(target: str) -> str:
    """`target` if it is a path of this server, else `/` (no open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get(PREFIX + "/sign-in")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    if await signed_in(request) is not None:
        return redirect(request, _local(next))
    return render(request, "console/sign_in.html", {"next": _local(next)}, caller=None)


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
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=console.sessions.ttl_seconds, httponly=True,
        samesite="lax", secure=secure(request),
    )  # fmt: skip
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post(PREFIX + "/sign-out")
async def sign_out(request: Request, sent: SignedFormDep) -> Response:
    await console_of(request).sessions.delete(sent.caller.session_id)
    response = redirect(request, "/")
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
