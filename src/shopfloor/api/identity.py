"""Identity routes: tokens, organisations, users."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from shopfloor.auth import Action, Forbidden, Principal
from shopfloor.registry import NotFound, Org, User

from ._deps import PagingDep, PrincipalDep, ServicesDep
from ._errors import ApiError
from ._schemas import (
    MeOut,
    OrgCreate,
    OrgOut,
    PageOut,
    PasswordChange,
    TokenOut,
    TokenRequest,
    UserCreate,
    UserOut,
    UserUpdate,
)

router = APIRouter(prefix="/api/v1")


def _org_out(org: Org) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, created_at=org.created_at)


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        org_id=user.org_id,
        role=user.role,
        platform_admin=user.platform_admin,
        created_at=user.created_at,
    )


def _require_platform_admin(principal: Principal) -> None:
    if not principal.platform_admin:
        raise Forbidden("only platform admins may do this", code="platform_admin_required")


def _may_manage(principal: Principal, user: User) -> bool:
    if principal.platform_admin:
        return True
    return principal.org_id == user.org_id and principal.can(Action.MANAGE_USERS)


def _source(request: Request) -> str:
    # The peer address; behind a reverse proxy, uvicorn puts the X-Forwarded-For client
    # here for proxies listed in FORWARDED_ALLOW_IPS (127.0.0.1 by default).
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/token",
    response_model=TokenOut,
    tags=["identity"],
    responses={429: {"description": "Too many failed sign-ins (`Retry-After` says how long)."}},
)
async def issue_token(body: TokenRequest, platform: ServicesDep, request: Request) -> TokenOut:
    """Exchange an e-mail and password for a short-lived bearer token."""
    issued = await platform.auth.login(body.email, body.password, source=_source(request))
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/orgs", response_model=OrgOut, status_code=status.HTTP_201_CREATED, tags=["orgs"])
async def create_org(body: OrgCreate, platform: ServicesDep, principal: PrincipalDep) -> OrgOut:
    _require_platform_admin(principal)
    return _org_out(await platform.registry.create_org(body.name))


@router.get("/orgs", response_model=PageOut[OrgOut], tags=["orgs"])
async def list_orgs(
    platform: ServicesDep, principal: PrincipalDep, paging: PagingDep
) -> PageOut[OrgOut]:
    """All organisations for platform admins; the caller's own otherwise."""
    if principal.platform_admin:
        page = await platform.registry.list_orgs(offset=paging.offset, limit=paging.limit)
        return PageOut(
            total=page.total, offset=page.offset, limit=page.limit,
            items=[_org_out(o) for o in page.items],
        )  # fmt: skip
    org_id = principal.require_org()
    own = [await platform.registry.get_org(org_id)] if paging.offset == 0 else []
    return PageOut(
        total=1, offset=paging.offset, limit=paging.limit, items=[_org_out(o) for o in own]
    )


@router.get("/orgs/{org_id}", response_model=OrgOut, tags=["orgs"])
async def get_org(org_id: str, platform: ServicesDep, principal: PrincipalDep) -> OrgOut:
    if not principal.platform_admin and principal.org_id != org_id:
        raise NotFound(f"organisation {org_id} not found", code="org_not_found")
    return _org_out(await platform.registry.get_org(org_id))


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"])
async def create_user(body: UserCreate, platform: ServicesDep, principal: PrincipalDep) -> UserOut:
    """Platform admins create users in any organisation, org admins in their own."""
    if principal.platform_admin:
        org_id = body.org_id or principal.org_id
        if org_id is None:
            raise ApiError(422, "org_required", "org_id is required")
    else:
        org_id = principal.require(Action.MANAGE_USERS)
        if body.org_id not in (None, org_id):
            raise NotFound(f"organisation {body.org_id} not found", code="org_not_found")
    password_hash = await asyncio.to_thread(platform.auth.passwords.hash, body.password)
    user = await platform.registry.create_user(
        email=body.email, password_hash=password_hash, org_id=org_id, role=body.role
    )
    return _user_out(user)


@router.get("/users/me", response_model=MeOut, tags=["users"])
async def me(principal: PrincipalDep, platform: ServicesDep) -> MeOut:
    created_at = None
    if principal.source == "local":
        created_at = (await platform.registry.get_user(principal.subject)).created_at
    return MeOut(
        id=principal.subject,
        email=principal.email,
        org_id=principal.org_id,
        role=principal.role,
        platform_admin=principal.platform_admin,
        created_at=created_at,
        source=principal.source,
    )


@router.post("/users/me/password", response_model=TokenOut, tags=["users"])
async def change_own_password(
    body: PasswordChange, platform: ServicesDep, principal: PrincipalDep, request: Request
) -> TokenOut:
    """Change one's own password, given the current one.

    Every token issued to the account before stops working; the answer is a fresh token,
    so the caller stays signed in.
    """
    if principal.source != "local":
        raise ApiError(
            409, "external_account", "the identity provider manages this account's password"
        )
    issued = await platform.auth.change_password(
        principal.subject, body.current_password, body.new_password, source=_source(request)
    )
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get("/users", response_model=PageOut[UserOut], tags=["users"])
async def list_users(
    platform: ServicesDep,
    principal: PrincipalDep,
    paging: PagingDep,
    org_id: Annotated[str | None, Query(description="Platform admins: one organisation.")] = None,
) -> PageOut[UserOut]:
    if not principal.platform_admin:
        org_id = principal.require(Action.MANAGE_USERS)
    page = await platform.registry.list_users(
        org_id=org_id, offset=paging.offset, limit=paging.limit
    )
    return PageOut(
        total=page.total, offset=page.offset, limit=page.limit,
        items=[_user_out(u) for u in page.items],
    )  # fmt: skip


async def _visible_user(platform: ServicesDep, principal: Principal, user_id: str) -> User:
    user = await platform.registry.get_user(user_id)
    if user.id != principal.subject and not _may_manage(principal, user):
        raise NotFound(f"user {user_id} not found", code="user_not_found")
    return user


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
async def get_user(user_id: str, platform: ServicesDep, principal: PrincipalDep) -> UserOut:
    return _user_out(await _visible_user(platform, principal, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(
    user_id: str,
    body: UserUpdate,
    platform: ServicesDep,
    principal: PrincipalDep,
    request: Request,
) -> UserOut:
    """Admins change roles and reset passwords of their users; anyone changes their own
    password with `current_password`. A new password ends every earlier token of the user."""
    user = await _visible_user(platform, principal, user_id)
    if body.role is not None:
        if not _may_manage(principal, user):
            raise Forbidden("you may not change roles", code="insufficient_role")
        if user.org_id is None:
            raise ApiError(409, "no_organisation", "this account belongs to no organisation")
    password_hash = None
    if body.password is not None and user.id == principal.subject:
        # Also for admins: a stolen token alone must not be enough to take an account over.
        if body.current_password is None:
            raise Forbidden(
                "send current_password to change your own password",
                code="current_password_required",
            )
        await platform.auth.change_password(
            user.id, body.current_password, body.password, source=_source(request)
        )
    elif body.password is not None:
        password_hash = await asyncio.to_thread(platform.auth.passwords.hash, body.password)
    updated = await platform.registry.update_user(
        user.id, role=body.role, password_hash=password_hash
    )
    return _user_out(updated)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
async def delete_user(user_id: str, platform: ServicesDep, principal: PrincipalDep) -> None:
    user = await _visible_user(platform, principal, user_id)
    if not _may_manage(principal, user):
        raise Forbidden("you may not delete users", code="insufficient_role")
    if user.id == principal.subject:
        raise ApiError(409, "cannot_delete_self", "you cannot delete your own account")
    await platform.registry.delete_user(user.id)
