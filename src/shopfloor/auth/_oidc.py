"""Accept access tokens of an OpenID Connect issuer (Keycloak realm or any other).

The issuer's keys come from its discovery document and JWKS, cached for a while; a token
signed with a key id we have not seen triggers one refetch (key rotation), rate-limited
so forged tokens with random key ids cannot make us hammer the issuer.

The console's sign-in (the authorization-code flow, `shopfloor.ui._oidc`) verifies the
issuer's ID tokens with the same keys and maps them with the same `OidcClaimsMapping`:
`verify_id_token` checks the audience (the console's client id) and the nonce too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from shopfloor.core import client_ssl_context

from ._errors import Unauthenticated

logger = logging.getLogger(__name__)

#: Asymmetric algorithms only: a symmetric `HS256` token would be "signed" with public data.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OidcClaimsMapping:
    role_claim: str = "realm_access.roles"
    org_claim: str = "groups"
    email_claim: str = "email"
    platform_admin_role: str = "shopfloor-admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class OidcIdentity:
    subject: str
    email: str
    roles: tuple[str, ...]
    orgs: tuple[str, ...]
    platform_admin: bool


def claim_at(claims: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def org_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Keycloak group paths (`/plants/Demo Plant`) name an org by their last segment."""
    return tuple(v.rstrip("/").rsplit("/", 1)[-1] for v in values if v.strip("/"))


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        *,
        audience: str = "",
        mapping: OidcClaimsMapping | None = None,
        jwks_ttl_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._audience = audience or None
        self._mapping = mapping or OidcClaimsMapping()
        self._ttl = jwks_ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._http = http or httpx.AsyncClient(timeout=10.0, verify=client_ssl_context())
        self._owns_http = http is None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._metadata: dict[str, Any] | None = None
        self._fetched_at = -math.inf  # never fetched
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def verify(self, token: str) -> OidcIdentity:
        return self._identity(await self._claims(token, audience=self._audience))

    async def verify_id_token(self, token: str, *, audience: str, nonce: str) -> OidcIdentity:
        """An ID token handed to the client `audience` for the sign-in that sent `nonce`."""
        claims = await self._claims(token, audience=audience)
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise Unauthenticated("the ID token is not of this sign-in", code="invalid_token")
        return self._identity(claims)

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (its endpoints), fetched once a process."""
        if self._metadata is None:
            try:
                self._metadata = await self._discover()
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("cannot fetch the OIDC issuer's discovery document: %s", exc)
                raise Unauthenticated(
                    "the identity provider cannot be reached", code="oidc_unavailable"
                ) from exc
        return self._metadata

    async def _claims(self, token: str, *, audience: str | None) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token is not valid", code="invalid_token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated("token algorithm not accepted", code="invalid_token")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": bool(audience)},
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token is not valid", code="invalid_token") from exc
        return claims

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        m = self._mapping
        roles = _strings(claim_at(claims, m.role_claim))
        email = claim_at(claims, m.email_claim) or claims.get("preferred_username") or ""
        return OidcIdentity(
            subject=str(claims["sub"]),
            email=str(email),
            roles=roles,
            orgs=org_names(_strings(claim_at(claims, m.org_claim))),
            platform_admin=m.platform_admin_role in roles,
        )

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        if now - self._fetched_at > self._ttl:
            await self._refresh(force=False)
        key = self._keys.get(kid) if kid else self._only_key()
        if key is None and time.monotonic() - self._fetched_at >= self._min_refresh:
            await self._refresh(force=True)  # the issuer may have rotated its keys
            key = self._keys.get(kid) if kid else self._only_key()
        if key is None:
            raise Unauthenticated("the token's signing key is unknown", code="invalid_token")
        return key

    def _only_key(self) -> jwt.PyJWK | None:
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            fresh = time.monotonic() - self._fetched_at
            if (not force and fresh <= self._ttl) or (force and fresh < self._min_refresh):
                return  # another request refreshed while we waited
            try:
                keys = await self._fetch_keys()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                logger.warning("cannot fetch the OIDC issuer's keys: %s", exc)
                if not self._keys:
                    raise Unauthenticated(
                        "the identity provider cannot be reached", code="oidc_unavailable"
                    ) from exc
                return  # keep serving with the keys we have
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _discover(self) -> dict[str, Any]:
        discovery = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
        discovery.raise_for_status()
        document: dict[str, Any] = discovery.json()
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise ValueError("the discovery document names another issuer")
        return document

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        document = await self._discover()
        self._metadata = document
        jwks = await self._http.get(str(document["jwks_uri"]))
        jwks.raise_for_status()
        keyset = jwt.PyJWKSet.from_dict(jwks.json())
        return {str(k.key_id or ""): k for k in keyset.keys if k.public_key_use in (None, "sig")}
