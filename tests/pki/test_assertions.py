"""Agent assertions (`shopfloor.pki.AgentAssertions`): what the platform accepts from an
agent signing in with its certificate, and every way one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shopfloor.auth import AGENT_GRANTS, Action, Unauthenticated
from shopfloor.pki import AgentAssertions, CertificateGate, Entity, EntityType, mint_assertion
from tests.sdk.agentkit import AgentCa, agent_ca


@pytest.fixture
async def ca(tmp_path: Path) -> AsyncIterator[AgentCa]:
    async with agent_ca(tmp_path / "one") as ca:
        yield ca


async def _agent(
    ca: AgentCa, name: str = "press-01", entity: Entity | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    _, key_pem, certificate = await ca.sign(name, entity=entity)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return certificate, key


def _verifier(ca: AgentCa, gate: CertificateGate | None = None) -> AgentAssertions:
    return AgentAssertions(gate or CertificateGate(), lambda: ca.authority.certificate)


def _refusal(verifier: AgentAssertions, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    return refused.value.code


async def test_an_agent_signs_in_as_itself_with_the_grants_of_an_agent(ca: AgentCa) -> None:
    certificate, key = await _agent(ca)
    principal = await _verifier(ca)(mint_assertion(certificate, key))
    assert principal.source == "agent"
    assert principal.agent == "press-01"
    assert principal.subject == "agent:press-01"
    assert principal.org_id == "org1"
    assert principal.role is None and not principal.platform_admin
    assert principal.grants == AGENT_GRANTS
    assert principal.can(Action.READ)
    assert not principal.can(Action.MANAGE_RELATIONS)
    assert not principal.can(Action.MANAGE_AGENTS)


async def test_refused_when_revoked_expired_or_of_another_ca(ca: AgentCa, tmp_path: Path) -> None:
    certificate, key = await _agent(ca)
    gate = CertificateGate()
    verifier = _verifier(ca, gate)
    token = mint_assertion(certificate, key)
    verifier.verify(token)
    gate.revoke(certificate.serial_number)
    assert _refusal(verifier, token) == "certificate_revoked"

    async with agent_ca(tmp_path / "other") as other:
        foreign, foreign_key = await _agent(other)
    assert _refusal(verifier, mint_assertion(foreign, foreign_key)) == "invalid_assertion"

    fresh, fresh_key = await _agent(ca, "mill-1")
    stale = mint_assertion(fresh, fresh_key, lifetime=60, now=time.time() - 3600)
    assert _refusal(verifier, stale) == "invalid_assertion"


async def test_refused_when_the_key_or_claims_are_not_the_agents(ca: AgentCa) -> None:
    certificate, key = await _agent(ca)
    _, other_key = await _agent(ca, "mill-1")
    verifier = _verifier(ca)
    der = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    uri = "urn:shopfloor:agent:org1/press-01"
    now = int(time.time())
    good = {"iss": uri, "sub": uri, "aud": "shopfloor", "iat": now, "exp": now + 60}

    def signed(claims: dict[str, object], signer: ec.EllipticCurvePrivateKey = key) -> str:
        return jwt.encode(claims, signer, algorithm="ES256", headers={"x5c": [der]})

    assert verifier.verify(signed(good)).agent == "press-01"
    # Someone else's key beside press-01's certificate.
    assert _refusal(verifier, signed(good, other_key)) == "invalid_assertion"
    # Claims naming another agent than the certificate does.
    other_uri = "urn:shopfloor:agent:org1/mill-1"
    assert _refusal(verifier, signed({**good, "iss": other_uri})) == "invalid_assertion"
    assert _refusal(verifier, signed({**good, "sub": other_uri})) == "invalid_assertion"
    assert _refusal(verifier, signed({**good, "aud": "elsewhere"})) == "invalid_assertion"
    assert _refusal(verifier, signed({**good, "exp": now + 3600})) == "invalid_assertion"
    assert _refusal(verifier, signed({**good, "iat": now + 600, "exp": now + 660})) == (
        "invalid_assertion"
    )
    missing = {key: value for key, value in good.items() if key != "exp"}
    assert _refusal(verifier, signed(missing)) == "invalid_assertion"
    # No certificate at all, or one that is not a certificate.
    bare = jwt.encode(good, key, algorithm="ES256")
    assert _refusal(verifier, bare) == "invalid_assertion"
    junk = jwt.encode(good, key, algorithm="ES256", headers={"x5c": ["bm90IGEgY2VydA=="]})
    assert _refusal(verifier, junk) == "invalid_assertion"
    # HS256 keyed with the certificate's public key (the old JWT algorithm confusion).
    public = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "x5c": [der]}).encode())
    body = _b64(json.dumps(good).encode())
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert _refusal(verifier, f"{head}.{body}.{_b64(mac)}") == "invalid_assertion"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_thing_certificate_is_not_an_agent(ca: AgentCa) -> None:
    certificate, key = await _agent(ca, entity=Entity(EntityType.THING, "7f9d3c1e-thing"))
    with pytest.raises(ValueError, match="not an agent"):
        mint_assertion(certificate, key)
    der = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    uri = "urn:shopfloor:thing:7f9d3c1e-thing"
    now = int(time.time())
    token = jwt.encode(
        {"iss": "urn:shopfloor:agent:org1/x", "sub": uri, "aud": "shopfloor", "iat": now,
         "exp": now + 60},
        key, algorithm="ES256", headers={"x5c": [der]},
    )  # fmt: skip
    assert _refusal(_verifier(ca), token) == "invalid_assertion"
