"""Turns credentials into a `Principal`: passwords, Shopfloor tokens and OIDC tokens.

A Shopfloor token is accepted only while the user's token generation is the one it was
issued under. The user row is read on every request anyway (a deleted user or a changed
role counts at once), so the check costs nothing extra and needs no cache: every process
of a split deployment reads the same row, and refuses an old token from the first
request after the new password is committed.

Password checks (sign-in and a user's current password) go through a `SignInThrottle`:
repeated failures for one account or from one address are refused before the password
is checked (see `_throttle.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shopfloor.registry import NotFound, Registry, Role, User

from ._errors import Forbidden, Unauthenticated
from ._oidc import OidcIdentity, OidcVerifier
from ._passwords import Passwords
from ._principal import Principal
from ._throttle import SignInThrottle
from ._tokens import ISSUER, IssuedToken, TokenIssuer, unverified_issuer

#: `verify(bearer) -> Principal` for the tokens of other issuers (`accept_issuer`).
BearerVerifier = Callable[[str], Awaitable[Principal]]

_ROLE_RANK = (Role.ADMIN, Role.ENGINEER, Role.OPERATOR, Role.VIEWER)


class Authenticator:
    def __init__(
        self,
        registry: Registry,
        tokens: TokenIssuer,
        oidc: OidcVerifier | None = None,
        *,
        throttle: SignInThrottle | None = None,
        passwords: Passwords | None = None,
    ) -> None:
        """`throttle` defaults to `SignInThrottle()`'s limits, its counters unexported;
        `passwords` to Argon2id at the default cost."""
        self.passwords = passwords or Passwords()
        self._registry = registry
        self._tokens = tokens
        self._oidc = oidc
        self._throttle = throttle or SignInThrottle()
        self._verifiers: list[tuple[str, BearerVerifier]] = []

    def accept_issuer(self, prefix: str, verify: BearerVerifier) -> Callable[[], None]:
        """Hand bearer tokens whose `iss` starts with `prefix` to `verify` (the pki
        service's agent assertions); returns its remover."""
        entry = (prefix, verify)
        self._verifiers.append(entry)

        def remove() -> None:
            if entry in self._verifiers:
                self._verifiers.remove(entry)

        return remove

    async def login(self, email: str, password: str, *, source: str) -> IssuedToken:
        """A token for a right e-mail and password sent from address `source`.

        Raises SignInThrottled while too many sign-ins have failed for the account or
        from the address, whatever the password.
        """
        user = await self.check_password(email, password, source=source)
        return self._tokens.issue(user.id, generation=user.token_generation)

    async def check_password(self, email: str, password: str, *, source: str) -> User:
        """The user of a right e-mail and password sent from address `source`, throttled
        as `login` is (the console's sign-in starts a session with it instead of a token)."""
        attempt = self._throttle.admit(email, source)
        user = await self._registry.find_user_by_email(email)
        known = user.password_hash if user else None
        if not await asyncio.to_thread(self.passwords.verify, known, password) or user is None:
            attempt.failed()
            raise Unauthenticated("wrong e-mail or password", code="invalid_credentials")
        attempt.succeeded()
        return user

    async def change_password(
        self, user_id: str, current_password: str, new_password: str, *, source: str
    ) -> IssuedToken:
        """Set a user's own password, given the current one; ends every earlier token.

        Returns a token of the new generation, so the device that made the change stays
        signed in while every other one has to sign in again. A wrong current password
        counts as a failed sign-in: a stolen token must not become a guessing oracle.
        """
        user = await self._registry.get_user(user_id)
        attempt = self._throttle.admit(user.email, source)
        if not await asyncio.to_thread(self.passwords.verify, user.password_hash, current_password):
            attempt.failed()
            raise Forbidden("the current password is wrong", code="wrong_password")
        attempt.succeeded()
        password_hash = await asyncio.to_thread(self.passwords.hash, new_password)
        updated = await self._registry.update_user(user.id, password_hash=password_hash)
        return self._tokens.issue(updated.id, generation=updated.token_generation)

    async def principal(self, bearer: str) -> Principal:
        issuer = unverified_issuer(bearer)
        if self._oidc is not None and issuer == self._oidc.issuer:
            return await self._oidc_principal(await self._oidc.verify(bearer))
        if issuer != ISSUER:
            for prefix, verify in self._verifiers:
                if issuer is not None and issuer.startswith(prefix):
                    return await verify(bearer)
            raise Unauthenticated("the token is not valid", code="invalid_token")
        token = self._tokens.verify(bearer)
        return await self.user_principal(token.user_id, generation=token.generation)

    async def user_principal(self, user_id: str, *, generation: int) -> Principal:
        """The principal of a local user signed in under token generation `generation`
        (a token's, or a console session's): refused once the account is gone or its
        password has changed since."""
        try:
            user = await self._registry.get_user(user_id)
        except NotFound as exc:
            raise Unauthenticated("the account no longer exists", code="invalid_token") from exc
        if generation != user.token_generation:
            raise Unauthenticated(
                "the password was changed after this token was issued; sign in again",
                code="token_revoked",
            )
        return Principal(
            subject=user.id,
            email=user.email,
            org_id=user.org_id,
            role=user.role,
            platform_admin=user.platform_admin,
            source="local",
        )

    @property
    def oidc(self) -> OidcVerifier | None:
        """The configured OIDC issuer's verifier (the console's sign-in uses its keys)."""
        return self._oidc

    async def oidc_sign_in(self, id_token: str, *, audience: str, nonce: str) -> Principal:
        """The principal of an ID token of the configured issuer, mapped as its access
        tokens are; refused when it maps to no organisation or no known role (a token
        would sign in with no organisation; a console session has no use for that),
        unless it names a platform admin."""
        if self._oidc is None:
            raise Unauthenticated("no OIDC issuer is configured", code="oidc_unavailable")
        identity = await self._oidc.verify_id_token(id_token, audience=audience, nonce=nonce)
        principal = await self._oidc_principal(identity)
        if principal.platform_admin or principal.org_id is not None:
            return principal
        if not any(role.value in identity.roles for role in _ROLE_RANK):
            raise Forbidden(
                "the identity provider gives this account no Shopfloor role",
                code="oidc_unknown_role",
            )
        raise Forbidden(
            "the identity provider names no organisation of this platform for this account",
            code="oidc_no_organisation",
        )

    async def organisation_exists(self, org_id: str) -> bool:
        try:
            await self._registry.get_org(org_id)
        except NotFound:
            return False
        return True

    async def _oidc_principal(self, identity: OidcIdentity) -> Principal:
        org_id = None
        for name in identity.orgs:
            org = await self._registry.find_org(name)
            if org is not None:
                org_id = org.id
                break
        role = next((r for r in _ROLE_RANK if r.value in identity.roles), None)
        return Principal(
            subject=identity.subject,
            email=identity.email,
            org_id=org_id if role else None,
            role=role if org_id else None,
            platform_admin=identity.platform_admin,
            source="oidc",
        )

    async def close(self) -> None:
        if self._oidc is not None:
            await self._oidc.close()
