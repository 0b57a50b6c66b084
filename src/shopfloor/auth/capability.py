"""Identity as a service: the registry, sign-in (passwords, tokens, OIDC) and thing access.

Registry changes committed in this process are emitted as platform events; the
thing-access cache follows the events of every process on the bus.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator, model_validator

from shopfloor.core import Section, Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging import RECONNECTED, Event
from shopfloor.messaging.capability import BusService
from shopfloor.registry import MIGRATIONS, Conflict, Registry, RegistryChange

from ._authenticator import Authenticator
from ._oidc import OidcClaimsMapping, OidcVerifier
from ._passwords import DEFAULT_MEMORY_KIB, DEFAULT_TIME_COST, Passwords
from ._secrets import SecretFiles
from ._thing_access import ThingAccess
from ._thing_keys import ThingKeys
from ._throttle import SignInThrottle
from ._tokens import TokenIssuer

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["IdentityService", "IdentitySettings"]

logger = logging.getLogger(__name__)


class IdentitySettings(Section, section="identity"):
    admin_email: str = Field(default="", description="First platform admin, on an empty database.")
    admin_password: SecretStr = Field(default=SecretStr(""), description="Its password.")
    token_ttl_seconds: int = Field(default=900, ge=30, le=86400, description="Bearer token life.")
    oidc_issuer: str = Field(default="", description="OIDC issuer URL, e.g. a Keycloak realm.")
    oidc_audience: str = Field(default="", description="Required `aud` of OIDC tokens, if set.")
    oidc_role_claim: str = Field(
        default="realm_access.roles", description="Dotted path of the roles claim."
    )
    oidc_org_claim: str = Field(default="groups", description="Dotted path of the org claim.")
    oidc_email_claim: str = Field(default="email", description="Claim holding the user's e-mail.")
    oidc_platform_admin_role: str = Field(
        default="shopfloor-admin", description="Role value that makes a platform admin."
    )
    oidc_jwks_ttl_seconds: int = Field(default=300, ge=10, description="JWKS cache life.")
    oidc_jwks_min_refresh_seconds: float = Field(
        default=10.0, ge=0, description="Least time between two JWKS refetches for unknown keys."
    )
    sign_in_free_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins of one account before it must wait."
    )
    sign_in_address_free_failures: int = Field(
        default=20, ge=1, description="Failed sign-ins from one address before it must wait."
    )
    sign_in_max_delay_seconds: float = Field(
        default=300.0, ge=1, description="Longest wait after repeated failed sign-ins."
    )
    password_time_cost: int = Field(
        default=DEFAULT_TIME_COST, ge=1, le=64, description="Argon2id passes of a new hash."
    )
    password_memory_kib: int = Field(
        default=DEFAULT_MEMORY_KIB,
        ge=64,
        le=4194304,
        description="Argon2id memory of a new hash, in KiB.",
    )

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("oidc_issuer must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _admin_pair(self) -> IdentitySettings:
        if bool(self.admin_email) != bool(self.admin_password.get_secret_value()):
            raise ValueError("set both SHOPFLOOR_ADMIN_EMAIL and SHOPFLOOR_ADMIN_PASSWORD, or none")
        return self

    def passwords(self) -> Passwords:
        return Passwords(time_cost=self.password_time_cost, memory_kib=self.password_memory_kib)

    def oidc(self) -> OidcVerifier | None:
        if not self.oidc_issuer:
            return None
        return OidcVerifier(
            self.oidc_issuer,
            audience=self.oidc_audience,
            jwks_ttl_seconds=self.oidc_jwks_ttl_seconds,
            min_refresh_seconds=self.oidc_jwks_min_refresh_seconds,
            mapping=OidcClaimsMapping(
                role_claim=self.oidc_role_claim,
                org_claim=self.oidc_org_claim,
                email_claim=self.oidc_email_claim,
                platform_admin_role=self.oidc_platform_admin_role,
            ),
        )


class IdentityService(Service, name="identity", needs=("database", "bus"), internal=True):
    """Registry, users and sign-in, thing keys and their channel permissions."""

    health = "registry"
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table
    commands = {"users": "shopfloor.auth.commands:users_app"}

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        settings = platform.settings.section(IdentitySettings)
        self._settings = settings
        self.secrets = SecretFiles(platform.settings.data_dir)
        engine = platform.get(DatabaseService).engine
        self.registry = Registry(engine, ThingKeys(self.secrets.thing_key_secret()))
        tokens = TokenIssuer(self.secrets.signing_key(), ttl_seconds=settings.token_ttl_seconds)
        throttle = SignInThrottle(
            account_free_failures=settings.sign_in_free_failures,
            address_free_failures=settings.sign_in_address_free_failures,
            max_delay_seconds=settings.sign_in_max_delay_seconds,
            metrics_registry=platform.metrics,
        )
        self.auth = Authenticator(
            self.registry,
            tokens,
            settings.oidc(),
            throttle=throttle,
            passwords=settings.passwords(),
        )
        self.access = ThingAccess(self.registry, follow_registry=False)
        self._events = platform.get(BusService).events

    async def _start(self, stack: AsyncExitStack) -> None:
        stack.push_async_callback(self.auth.close)
        events = self._events

        def announce(change: RegistryChange) -> None:
            events.emit(change.subject, change.to_data())

        stack.callback(self.registry.add_listener(announce))
        stack.enter_context(events.listen("registry.>", self._on_event))
        # Changes made elsewhere while this process was cut off from the bus are unknown.
        stack.enter_context(events.listen(RECONNECTED, lambda _event: self.access.forget_all()))
        await self._ensure_first_admin()

    def _on_event(self, event: Event) -> None:
        try:
            change = RegistryChange.from_data(event.data)
        except (KeyError, ValueError):
            logger.warning("ignoring a malformed registry event %s", event.subject)
            return
        self.access.on_change(change)

    async def check(self) -> bool:
        return await self.registry.ping()

    async def _ensure_first_admin(self) -> None:
        email = self._settings.admin_email
        password = self._settings.admin_password.get_secret_value()
        if not email or await self.registry.count_users() > 0:
            return
        try:
            await self.registry.create_user(
                email=email,
                password_hash=await asyncio.to_thread(self.auth.passwords.hash, password),
                org_id=None,
                role=None,
                platform_admin=True,
            )
        except Conflict:
            return  # another process starting at the same time created it
        logger.info("created the first platform admin %s", email)
