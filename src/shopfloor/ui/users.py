"""Users and roles of the caller's organisation, and each user's own account page.

Every change is the API's own route called with the same body and the same caller
(`shopfloor.api.identity`: `create_user`, `update_user`, `delete_user`,
`change_own_password`), so the console checks exactly what the API checks, in one
place, and a refusal is the API's error word for word, shown beside the form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shopfloor.api import PasswordChange, Services, UserCreate, UserUpdate
from shopfloor.api import identity as api
from shopfloor.auth import MIN_PASSWORD_LENGTH, Action, Principal
from shopfloor.registry import USER_SORT_KEYS, Role, User, UserSortKey

from ._forms import PAGE_SIZES, checked, paging, sort_of
from ._pages import PREFIX
from ._web import (
    SESSION_COOKIE,
    SignedForm,
    SignedFormDep,
    SignedIn,
    console_of,
    console_page,
    platform_of,
    redirect,
    render,
    secure,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _services(request: Request) -> Services:
    return Services(platform_of(request))


def _org_of(principal: Principal) -> str:
    """Whose users the page lists: the caller's organisation, if they may manage its
    users (as `GET /api/v1/users` checks for anyone but a platform admin)."""
    if principal.platform_admin:
        return principal.require_org()
    return principal.require(Action.MANAGE_USERS)


def _listing(request: Request) -> dict[str, Any]:
    query = request.query_params
    role = query.get("role", "")
    return {
        **paging(request),
        "sort": sort_of(request, USER_SORT_KEYS),
        "email": query.get("email", "").strip()[:320],
        "role": role if role in Role.__members__.values() else "",
        "also": ("email", "role"),
    }


@router.get(PREFIX + "/users")
async def users_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        org_id = _org_of(caller.principal)
        listing = _listing(request)
        sort: UserSortKey = listing["sort"]
        page = await _services(request).registry.list_users(
            org_id=org_id, offset=listing["offset"], limit=listing["limit"],
            email=listing["email"] or None, role=Role(listing["role"]) if listing["role"] else None,
            sort=sort,
        )  # fmt: skip
        context = {
            "page": page, "listing": listing, "page_sizes": PAGE_SIZES, "roles": list(Role),
            "min_password": MIN_PASSWORD_LENGTH,
        }  # fmt: skip
        return render(request, "console/users.html", context, caller=caller)

    return await console_page(request, build)


def _notice(request: Request, sent: SignedForm, key: str, email: str) -> Response:
    """A change done: a notice marked `data-changed` (the page's tables reload)."""
    context = {"key": key, "email": email}
    return render(request, "console/user_notice.html", context, caller=sent.caller)


@router.post(PREFIX + "/users")
async def create_user(request: Request, sent: SignedFormDep) -> Response:
    body: UserCreate = checked(
        UserCreate,
        {"email": sent.text("email"), "password": sent.form.get("password", ""),
         "role": sent.text("role") or Role.VIEWER.value},
    )  # fmt: skip
    created = await api.create_user(body, _services(request), sent.caller.principal)
    return _notice(request, sent, "users.created", created.email)


async def _update(request: Request, sent: SignedForm, user_id: str, body: UserUpdate) -> User:
    services = _services(request)
    await api.update_user(user_id, body, services, sent.caller.principal, request)
    return await services.registry.get_user(user_id)


@router.post(PREFIX + "/users/{user_id}/role")
async def change_role(user_id: str, request: Request, sent: SignedFormDep) -> Response:
    body: UserUpdate = checked(UserUpdate, {"role": sent.text("role")})
    user = await _update(request, sent, user_id, body)
    return _notice(request, sent, "users.role_changed", user.email)


@router.post(PREFIX + "/users/{user_id}/password")
async def reset_password(user_id: str, request: Request, sent: SignedFormDep) -> Response:
    body: UserUpdate = checked(UserUpdate, {"password": sent.form.get("password", "")})
    user = await _update(request, sent, user_id, body)
    return _notice(request, sent, "users.password_reset", user.email)


@router.post(PREFIX + "/users/{user_id}/delete")
async def delete_user(user_id: str, request: Request, sent: SignedFormDep) -> Response:
    services = _services(request)
    user = await api.get_user(user_id, services, sent.caller.principal)
    await api.delete_user(user_id, services, sent.caller.principal)
    return _notice(request, sent, "users.deleted", user.email)


# -- the caller's own account --------------------------------------------------------------


@router.get(PREFIX + "/account")
async def account_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        context = {
            "changed": request.query_params.get("changed") == "password",
            "min_password": MIN_PASSWORD_LENGTH,
        }
        return render(request, "console/account.html", context, caller=caller)

    return await console_page(request, build)


@router.post(PREFIX + "/account/password")
async def change_own_password(request: Request, sent: SignedFormDep) -> Response:
    """`POST /api/v1/users/me/password`: every earlier token and session of the user ends,
    this one too; a new session of the new generation takes its place, so the browser
    that made the change stays signed in (as the API hands back a fresh token)."""
    body: PasswordChange = checked(
        PasswordChange,
        {"current_password": sent.form.get("current_password", ""),
         "new_password": sent.form.get("new_password", "")},
    )  # fmt: skip
    services = _services(request)
    principal = sent.caller.principal
    await api.change_own_password(body, services, principal, request)
    user = await services.registry.get_user(principal.subject)
    sessions = console_of(request).sessions
    await sessions.delete(sent.caller.session_id)
    session_id, _session = await sessions.create(
        user.id, generation=user.token_generation, language=sent.caller.session.language
    )
    response = redirect(request, PREFIX + "/account?changed=password")
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=sessions.ttl_seconds, httponly=True,
        samesite="lax", secure=secure(request),
    )  # fmt: skip
    return response
