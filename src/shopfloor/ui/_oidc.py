"""Sign-in to the console at the configured OIDC issuer: the authorization-code flow with
PKCE (S256), through authlib's httpx client.

`start` draws a `state`, a `nonce` and a PKCE code verifier, keeps them in the platform
database under the SHA-256 of a random id that only the browser's `shopfloor_oidc`
cookie holds (HttpOnly, ten minutes, the sign-in paths only), and returns the issuer's
authorization URL. `finish` (the callback) takes that row once, whatever follows:
the `state` sent back must be the one kept for this browser, the code is exchanged with
the verifier, and the ID token is checked by the identity service against the issuer's
JWKS (issuer, audience = client id, expiry, nonce) and mapped to a principal as its
access tokens are. Nothing of the flow lives in a process, so any process of a split
deployment can take the callback.

Errors have stable codes (docs/api.md) that the sign-in page shows in the user's
language: `oidc_unavailable`, `oidc_state_mismatch`, `oidc_denied`, `oidc_failed`,
`oidc_unknown_role`, `oidc_no_organisation`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import authlib.deprecate  # noqa: F401  (imported first: it puts an "always show" filter first)
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfloor.auth import Authenticator, OidcVerifier, Principal, Unauthenticated
from shopfloor.core import ErrorKind, client_ssl_context

from . import _tables as t
from ._errors import ConsoleError

with warnings.catch_warnings():
    # authlib 1.9 warns at import (at every start) that it prefers the httpx2 fork; the
    # platform's HTTP client is httpx, which authlib supports as it is.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

__all__ = ["OIDC_ERRORS", "OidcSignIn", "OidcSignInFailed"]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: How long a sign-in may stay at the issuer before its callback is refused.
FLOW_SECONDS = 600

#: The codes the sign-in page explains (`oidc_errors.<code>` in the catalogues).
OIDC_ERRORS = (
    "oidc_unavailable",
    "oidc_state_mismatch",
    "oidc_denied",
    "oidc_failed",
    "oidc_unknown_role",
    "oidc_no_organisation",
)


class OidcSignInFailed(ConsoleError):
    """The issuer's answer does not sign anybody in (shown on the sign-in page)."""

    code = "oidc_failed"
    kind = ErrorKind.UNAUTHENTICATED


class StateMismatch(OidcSignInFailed):
    code = "oidc_state_mismatch"


class SignInDenied(OidcSignInFailed):
    code = "oidc_denied"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    flow_id: str  # for the cookie, kept nowhere else
    authorization_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    principal: Principal
    next: str


class OidcSignIn:
    def __init__(
        self,
        engine: AsyncEngine,
        auth: Authenticator,
        verifier: OidcVerifier,
        *,
        client_id: str,
        client_secret: str,
        scope: str,
        label: str,
        redirect_url: str = "",
        session_ttl_seconds: int = 3600,
        clock: Clock = _utcnow,
    ) -> None:
        self._engine = engine
        self._auth = auth
        self._verifier = verifier
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self.label = label
        #: The callback URL registered at the issuer; empty: the one the browser used.
        self.redirect_url = redirect_url
        #: Longest life of a session it starts (`create_oidc`).
        self.session_ttl_seconds = session_ttl_seconds
        self._clock = clock

    def _client(self, redirect_url: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret or None,
            token_endpoint_auth_method="client_secret_basic" if self._client_secret else "none",
            scope=self._scope,
            redirect_uri=redirect_url,
            code_challenge_method="S256",
            timeout=10.0,
            verify=client_ssl_context(),
        )

    async def start(self, *, redirect_url: str, next: str) -> Started:
        metadata = await self._verifier.metadata()
        flow_id, state, nonce = (secrets.token_urlsafe(32) for _ in range(3))
        code_verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43-128
        async with self._client(redirect_url) as client:
            url, _state = client.create_authorization_url(
                str(metadata["authorization_endpoint"]),
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
            )
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(t.oidc_sign_ins).where(t.oidc_sign_ins.c.expires_at <= now)
            )
            await conn.execute(
                sa.insert(t.oidc_sign_ins).values(
                    id_hash=_digest(flow_id),
                    state=state,
                    nonce=nonce,
                    code_verifier=code_verifier,
                    next=next,
                    expires_at=now + timedelta(seconds=FLOW_SECONDS),
                )
            )
        return Started(flow_id=flow_id, authorization_url=url)

    async def finish(self, flow_id: str, *, params: dict[str, str], redirect_url: str) -> Finished:
        """The principal of a callback's `params` (`state`, `code` or `error`) for the
        browser holding `flow_id`; the flow is used up either way."""
        flow = await self._take(flow_id) if flow_id else None
        state = params.get("state", "")
        if flow is None or not hmac.compare_digest(state.encode(), str(flow.state).encode()):
            raise StateMismatch(
                "this sign-in was not started in this browser or has expired: start again"
            )
        if params.get("error"):
            raise SignInDenied(f"the identity provider refused: {params['error']}")
        code = params.get("code", "")
        if not code:
            raise OidcSignInFailed("the identity provider sent no authorization code")
        metadata = await self._verifier.metadata()
        try:
            async with self._client(redirect_url) as client:
                token: dict[str, Any] = await client.fetch_token(
                    str(metadata["token_endpoint"]),
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=str(flow.code_verifier),
                )
        except httpx.TransportError as exc:
            raise Unauthenticated(
                "the identity provider cannot be reached", code="oidc_unavailable"
            ) from exc
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            logger.warning("the OIDC token exchange failed: %s", exc)
            raise OidcSignInFailed("the identity provider did not hand out a token") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcSignInFailed("the identity provider sent no ID token")
        try:
            principal = await self._auth.oidc_sign_in(
                id_token, audience=self._client_id, nonce=str(flow.nonce)
            )
        except Unauthenticated as exc:
            if exc.code == "oidc_unavailable":
                raise
            raise OidcSignInFailed(f"the ID token was refused: {exc.message}") from exc
        return Finished(principal=principal, next=str(flow.next))

    async def end_session_url(self, post_logout_url: str) -> str | None:
        """The issuer's sign-out page (RP-initiated logout), if it has one."""
        try:
            metadata = await self._verifier.metadata()
        except Unauthenticated:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None
        query = urlencode(
            {"client_id": self._client_id, "post_logout_redirect_uri": post_logout_url}
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def _take(self, flow_id: str) -> Any:
        now = self._clock()
        key = _digest(flow_id)
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(t.oidc_sign_ins).where(t.oidc_sign_ins.c.id_hash == key)
                )
            ).first()
            await conn.execute(sa.delete(t.oidc_sign_ins).where(t.oidc_sign_ins.c.id_hash == key))
        if row is None:
            return None
        expires_at = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        return row if expires_at > now else None
