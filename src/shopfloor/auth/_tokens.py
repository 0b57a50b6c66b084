"""Shopfloor's own bearer tokens: short-lived JWTs signed with Ed25519 (EdDSA).

A token carries the user's token generation (`gen`) at the time of issue; the
authenticator refuses it once the user's generation has moved on (a new password).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._errors import Unauthenticated

ISSUER = "shopfloor"
ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user_id: str
    #: The user's token generation when the token was issued (0 for tokens without `gen`).
    generation: int


class TokenIssuer:
    def __init__(self, signing_key: Ed25519PrivateKey, *, ttl_seconds: int) -> None:
        self._private = signing_key
        self._public = signing_key.public_key()
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: str, *, generation: int = 0) -> IssuedToken:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "gen": generation,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._private, algorithm=ALGORITHM)
        return IssuedToken(access_token=token, expires_in=self.ttl_seconds)

    def verify(self, token: str) -> VerifiedToken:
        """Who a valid token was issued to, and under which token generation."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token is not valid", code="invalid_token") from exc
        generation = claims.get("gen", 0)
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise Unauthenticated("the token is not valid", code="invalid_token")
        return VerifiedToken(user_id=str(claims["sub"]), generation=generation)


def unverified_issuer(token: str) -> str | None:
    """The `iss` a token claims, to route it to the right verifier (it is verified there)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
