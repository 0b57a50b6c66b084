"""Request dependencies: the platform, the signed-in caller, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopfloor.auth import Principal, Unauthenticated
from shopfloor.services import Platform

MAX_LIMIT = 1000

# auto_error=False: we answer a missing credential with our own error shape.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <access_token>`")


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_principal(
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "sign in: send `Authorization: Bearer <token>`", code="missing_credentials"
        )
    return await platform.auth.principal(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class Paging:
    offset: int
    limit: int


def get_paging(
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 100,
) -> Paging:
    return Paging(offset=offset, limit=limit)


PagingDep = Annotated[Paging, Depends(get_paging)]
