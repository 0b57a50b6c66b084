"""Request dependencies: the running services, the signed-in caller, paging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shopfloor.auth import Authenticator, Principal, ThingAccess, Unauthenticated
from shopfloor.auth.capability import IdentityService
from shopfloor.core import Platform
from shopfloor.registry import Registry
from shopfloor.storage import TimeseriesStore
from shopfloor.storage.capability import TimeseriesService

MAX_LIMIT = 1000

# auto_error=False: we answer a missing credential with our own error shape.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <access_token>`")


@dataclass(frozen=True, slots=True)
class Services:
    """The services routes call, typed; each raises `ServiceError` if not running here."""

    platform: Platform

    @property
    def registry(self) -> Registry:
        return self.platform.get(IdentityService).registry

    @property
    def auth(self) -> Authenticator:
        return self.platform.get(IdentityService).auth

    @property
    def access(self) -> ThingAccess:
        return self.platform.get(IdentityService).access

    @property
    def store(self) -> TimeseriesStore:
        return self.platform.get(TimeseriesService).store


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_services(request: Request) -> Services:
    return Services(get_platform(request))


PlatformDep = Annotated[Platform, Depends(get_platform)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "sign in: send `Authorization: Bearer <token>`", code="missing_credentials"
        )
    return await services.auth.principal(credentials.credentials)


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
