"""The running platform: the services one process starts, their lifecycle and readiness.

The API layer reads what it needs from a `Platform`; nothing here imports the API layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shopfloor.auth import (
    Authenticator,
    OidcClaimsMapping,
    OidcVerifier,
    SecretFiles,
    ThingKeys,
    TokenIssuer,
    hash_password,
)
from shopfloor.registry import Conflict, Registry
from shopfloor.settings import Settings

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]


@dataclass
class Health:
    """Readiness of every started service; `/health` is ok only when all are ready."""

    checks: dict[str, HealthCheck] = field(default_factory=dict)

    def add(self, name: str, check: HealthCheck) -> None:
        if name in self.checks:
            raise ValueError(f"health check {name!r} registered twice")
        self.checks[name] = check

    async def report(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(*(self.checks[n]() for n in names), return_exceptions=True)
        return {n: r is True for n, r in zip(names, results, strict=True)}


class Platform:
    """Owns the services of one process; `async with Platform(settings)` runs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health = Health()
        self._registry: Registry | None = None
        self._auth: Authenticator | None = None
        #: Awaited once every service has started (the CLI prints the demo plant here).
        self.on_started: list[Callable[[], Awaitable[None]]] = []
        self.started = False

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the platform is not started")
        return self._registry

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            raise RuntimeError("the platform is not started")
        return self._auth

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        settings = self.settings
        secrets = SecretFiles(settings.data_dir)
        self._registry = await Registry.open(
            settings.registry_url, ThingKeys(secrets.thing_key_secret())
        )
        self.health.add("registry", self._registry.ping)
        tokens = TokenIssuer(secrets.signing_key(), ttl_seconds=settings.token_ttl_seconds)
        oidc = None
        if settings.oidc_issuer:
            oidc = OidcVerifier(
                settings.oidc_issuer,
                audience=settings.oidc_audience,
                jwks_ttl_seconds=settings.oidc_jwks_ttl_seconds,
                min_refresh_seconds=settings.oidc_jwks_min_refresh_seconds,
                mapping=OidcClaimsMapping(
                    role_claim=settings.oidc_role_claim,
                    org_claim=settings.oidc_org_claim,
                    email_claim=settings.oidc_email_claim,
                    platform_admin_role=settings.oidc_platform_admin_role,
                ),
            )
        self._auth = Authenticator(self._registry, tokens, oidc)
        await self._ensure_first_admin()
        for callback in self.on_started:
            await callback()
        self.started = True
        logger.info("platform started with services %s", ",".join(settings.services))

    async def stop(self) -> None:
        if self._auth is not None:
            await self._auth.close()
        if self._registry is not None:
            await self._registry.close()
        self.started = False
        logger.info("platform stopped")

    async def _ensure_first_admin(self) -> None:
        email = self.settings.admin_email
        password = self.settings.admin_password.get_secret_value()
        if not email or await self.registry.count_users() > 0:
            return
        try:
            await self.registry.create_user(
                email=email,
                password_hash=await asyncio.to_thread(hash_password, password),
                org_id=None,
                role=None,
                platform_admin=True,
            )
        except Conflict:
            return  # another process starting at the same time created it
        logger.info("created the first platform admin %s", email)
