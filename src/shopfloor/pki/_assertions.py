"""Agent assertions: an agent signs in to the platform's API with its certificate.

An agent holds a certificate and key from the platform's CA, and no password or token.
It proves who it is to the API as OAuth's `private_key_jwt` client assertions do
(RFC 7523): a short-lived JWT signed with its key, its certificate in the `x5c` header
(RFC 7515 §4.1.6), sent as `Authorization: Bearer <assertion>`:

    header  {"alg": "ES256", "typ": "JWT", "x5c": ["<base64 DER of cert.pem>"]}
    claims  {"iss": "urn:shopfloor:agent:<org>/<name>", "sub": <the same>,
             "aud": "shopfloor", "iat": <now>, "exp": <now + 300>, "jti": <random>}

The platform accepts one when the certificate is signed by its CA, the gate admits it
(not revoked, within its validity: a revocation counts from the next request), it names
an agent whose URI is `iss` and `sub`, the JWT's signature is the certificate key's,
`aud` is `shopfloor`, and it expires within `MAX_LIFETIME` of its issue and not yet
(`LEEWAY` allowed for clocks). The caller is then `Principal(subject="agent:<name>",
source="agent", grants=AGENT_GRANTS)` of the organisation the certificate names.

Nothing is stored: no secret to provision, rotate or leak beyond the key the agent has
anyway. Like any bearer token, a captured assertion can be replayed until it expires:
where the network is not trusted, serve the API over HTTPS.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shopfloor.auth import AGENT_GRANTS, Principal, Unauthenticated

from ._errors import CertificateRefused
from ._gate import CertificateGate
from ._identity import URN_PREFIX, EntityType, entity_of

__all__ = ["AUDIENCE", "ISSUER_PREFIX", "AgentAssertions", "AssertionKey", "mint_assertion"]

AUDIENCE = "shopfloor"
ISSUER_PREFIX = f"{URN_PREFIX}{EntityType.AGENT.value}:"
#: The longest an assertion may live, from `iat` to `exp`.
MAX_LIFETIME = 600
LEEWAY = 30
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"]

AssertionKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _algorithm(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        algorithm = _CURVE_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ValueError(f"no JWS algorithm for curve {key.curve.name}")
        return algorithm
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ValueError(f"no JWS algorithm for a {type(key).__name__}")


def mint_assertion(
    certificate: x509.Certificate,
    key: AssertionKey,
    *,
    lifetime: int = 300,
    now: float | None = None,
) -> str:
    """An assertion that the holder of `key` is the agent `certificate` names."""
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"an assertion lives 1 to {MAX_LIFETIME} s, not {lifetime}")
    uri = _agent_uri(certificate)
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": uri, "sub": uri, "aud": AUDIENCE, "iat": issued, "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }  # fmt: skip
    der = certificate.public_bytes(serialization.Encoding.DER)
    header = {"x5c": [base64.b64encode(der).decode()]}
    return jwt.encode(claims, key, algorithm=_algorithm(key), headers=header)


def _agent_uri(certificate: x509.Certificate) -> str:
    entity = entity_of(certificate)
    if entity.type is not EntityType.AGENT:
        raise ValueError(f"the certificate names a {entity.type.value}, not an agent")
    return entity.uri


class AgentAssertions:
    """The pki service's verifier of agent assertions (`Authenticator.accept_issuer`).

    `ca` returns the CA certificate agents' certificates are signed by (the authority's,
    read at each call: it is only known once the authority is open).
    """

    def __init__(self, gate: CertificateGate, ca: Callable[[], x509.Certificate]) -> None:
        self._gate = gate
        self._ca = ca

    async def __call__(self, token: str) -> Principal:
        return self.verify(token)

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        certificate = self._certificate(token)
        try:
            certificate.verify_directly_issued_by(self._ca())
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise _refused("the certificate is not one of the platform's CA") from exc
        try:
            admitted = self._gate.admit(certificate)
        except CertificateRefused as exc:
            raise Unauthenticated(str(exc), code=exc.code) from exc
        entity = admitted.entity
        if entity.type is not EntityType.AGENT:
            raise _refused(f"the certificate names a {entity.type.value}, not an agent")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                certificate.public_key(),  # type: ignore[arg-type]
                algorithms=[_algorithm(certificate.public_key())],
                audience=AUDIENCE,
                issuer=entity.uri,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "iat", "exp"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise _refused(f"the assertion is not valid: {exc}") from exc
        if claims["sub"] != entity.uri:
            raise _refused("the assertion's sub is not its certificate's agent")
        if not isinstance(claims["iat"], int) or claims["exp"] - claims["iat"] > MAX_LIFETIME:
            raise _refused(f"an assertion may live {MAX_LIFETIME} s at most")
        if claims["iat"] > (now if now is not None else time.time()) + LEEWAY:
            raise _refused("the assertion is issued in the future")
        org_id, name = entity.id.split("/", 1)
        return Principal(
            subject=f"agent:{name}", email="", org_id=org_id, role=None,
            platform_admin=False, source="agent", grants=AGENT_GRANTS,
        )  # fmt: skip

    @staticmethod
    def _certificate(token: str) -> x509.Certificate:
        try:
            header = jwt.get_unverified_header(token)
            chain = header.get("x5c")
            if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
                raise _refused("the assertion carries no certificate (x5c)")
            return x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        except (jwt.PyJWTError, ValueError) as exc:
            raise _refused("the assertion's certificate cannot be read") from exc


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="invalid_assertion")
