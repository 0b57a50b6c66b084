"""The certificates routes through the real app (lifespan, SQLite, built-in CA)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from shopfloor.app import create_app
from shopfloor.pki import CertificateRefused, Entity, EntityType
from shopfloor.pki.capability import PkiService
from tests.api.conftest import Api
from tests.serving import lifespan

from .conftest import openssl_verify


@pytest.fixture
async def api(make_settings: Callable[..., Any]) -> AsyncIterator[Api]:
    app = create_app(make_settings(ca_max_ttl="1000h", ca_server_ttl="720h"))
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform, manager.app)


async def _thing(api: Api, user: dict[str, str]) -> str:
    response = await api.http.post("/api/v1/things", json={"name": "press"}, headers=user)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _csr_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> str:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


async def test_an_engineer_issues_lists_revokes_and_renews(api: Api, tmp_path: Path) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    thing = await _thing(api, engineer)

    issued = await api.http.post(
        "/api/v1/certs",
        json={"entity_type": "thing", "entity_id": thing, "ttl": "720h"},
        headers=engineer,
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert set(body) == {"serial", "cert_pem", "key_pem", "ca_pem", "expires_at"}
    openssl_verify(body["ca_pem"], body["cert_pem"], tmp_path)
    serial = body["serial"]

    listed = await api.http.get(f"/api/v1/certs?entity_id={thing}", headers=engineer)
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], page["offset"], page["limit"]) == (1, 0, 100)
    assert page["items"][0]["serial"] == serial
    assert "key_pem" not in page["items"][0]
    one = await api.http.get(f"/api/v1/certs/{serial.upper()}", headers=engineer)
    assert one.status_code == 200 and one.json()["revoked_at"] is None

    renewed = await api.http.post(f"/api/v1/certs/{serial}/renew", json={"ttl": 3600},
                                  headers=engineer)  # fmt: skip
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["serial"] != serial

    cert = x509.load_pem_x509_certificate(body["cert_pem"].encode())
    gate = api.platform.get(PkiService).gate
    assert gate.admit(cert).entity == Entity(EntityType.THING, thing)
    revoked = await api.http.request(
        "DELETE", f"/api/v1/certs/{serial}", json={"reason": "key_compromise"}, headers=engineer
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revocation_reason"] == "key_compromise"
    with pytest.raises(CertificateRefused):
        gate.admit(cert)
    again = await api.http.delete(f"/api/v1/certs/{serial}?reason=superseded", headers=engineer)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "certificate_already_revoked"
    renew_revoked = await api.http.post(f"/api/v1/certs/{serial}/renew", headers=engineer)
    assert renew_revoked.status_code == 409

    crl = await api.http.get("/api/v1/pki/crl.pem")  # no credentials
    assert crl.status_code == 200
    assert crl.headers["content-type"].startswith("application/x-pem-file")
    listed_serials = {entry.serial_number for entry in x509.load_pem_x509_crl(crl.content)}
    assert listed_serials == {int(serial, 16)}
    ca = await api.http.get("/api/v1/pki/ca.pem")
    assert ca.status_code == 200 and ca.text == body["ca_pem"]
    assert ca.headers["content-type"].startswith("application/x-pem-file")


async def test_a_csr_is_signed_and_no_key_is_returned(api: Api) -> None:
    org = await api.org("North")
    admin = await api.member(org, "admin")
    key = ec.generate_private_key(ec.SECP256R1())
    issued = await api.http.post(
        "/api/v1/certs",
        json={"entity_type": "agent", "entity_id": "edge-7", "csr": _csr_pem(key)},
        headers=admin,
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["key_pem"] is None
    cert = x509.load_pem_x509_certificate(issued.json()["cert_pem"].encode())
    assert cert.public_key() == key.public_key()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"entity_type": "agent", "entity_id": "a", "csr": "nope"}, 400, "invalid_csr"),
        ({"entity_type": "agent", "entity_id": "a",
          "csr": _csr_pem(ed25519.Ed25519PrivateKey.generate())}, 400, "unsupported_key_type"),
        ({"entity_type": "agent", "entity_id": "a", "ttl": "2000h"}, 400, "ttl_too_long"),
        ({"entity_type": "agent", "entity_id": "a", "ttl": "soon"}, 400, "invalid_ttl"),
        ({"entity_type": "agent", "entity_id": "a/b/c"}, 400, "invalid_entity_id"),
        ({"entity_type": "service", "entity_id": "a/b"}, 400, "invalid_entity_id"),
        ({"entity_type": "thing", "entity_id": "no-such-thing"}, 404, "thing_not_found"),
    ],
)  # fmt: skip
async def test_bad_requests_answer_their_code(
    api: Api, body: dict[str, str], status: int, code: str
) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    response = await api.http.post("/api/v1/certs", json=body, headers=engineer)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_another_organisations_thing_and_certificates_are_not_found(api: Api) -> None:
    north, south = await api.org("North"), await api.org("South")
    north_engineer = await api.member(north, "engineer")
    south_engineer = await api.member(south, "engineer")
    thing = await _thing(api, north_engineer)
    response = await api.http.post(
        "/api/v1/certs", json={"entity_type": "thing", "entity_id": thing}, headers=south_engineer
    )
    assert response.status_code == 404
    issued = await api.http.post(
        "/api/v1/certs", json={"entity_type": "thing", "entity_id": thing}, headers=north_engineer
    )
    serial = issued.json()["serial"]
    for method in ("GET", "DELETE"):
        answer = await api.http.request(method, f"/api/v1/certs/{serial}", headers=south_engineer)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "certificate_not_found"
    assert (await api.http.get("/api/v1/certs", headers=south_engineer)).json()["total"] == 0


async def test_an_agent_of_another_organisation_or_a_service_is_refused(api: Api) -> None:
    """An agent's peers believe the organisation its certificate names: an engineer gets
    certificates for the agents of their own organisation only, and none for the
    platform's services."""
    north, south = await api.org("North"), await api.org("South")
    south_engineer = await api.member(south, "engineer")
    theirs = {"entity_type": "agent", "entity_id": f"{north}/mill-1"}
    refused = await api.http.post("/api/v1/certs", json=theirs, headers=south_engineer)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "entity_of_another_organisation"
    ours = {"entity_type": "agent", "entity_id": f"{south}/mill-1"}
    assert (await api.http.post("/api/v1/certs", json=ours, headers=south_engineer)).is_success
    service = {"entity_type": "service", "entity_id": "mqtt"}
    refused = await api.http.post("/api/v1/certs", json=service, headers=south_engineer)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "platform_admin_required"


async def test_operators_may_read_but_not_issue_or_revoke(api: Api) -> None:
    org = await api.org("North")
    operator = await api.member(org, "operator")
    body = {"entity_type": "agent", "entity_id": "edge-1"}
    assert (await api.http.post("/api/v1/certs", json=body, headers=operator)).status_code == 403
    assert (await api.http.get("/api/v1/certs", headers=operator)).status_code == 200
    assert (await api.http.post("/api/v1/certs", json=body)).status_code == 401


async def test_a_bad_revocation_reason_is_refused(api: Api) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    issued = await api.http.post(
        "/api/v1/certs", json={"entity_type": "agent", "entity_id": "edge-1"}, headers=engineer
    )
    serial = issued.json()["serial"]
    response = await api.http.delete(f"/api/v1/certs/{serial}?reason=bored", headers=engineer)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_revocation_reason"


async def test_deleting_a_thing_revokes_its_certificates(api: Api) -> None:
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    thing = await _thing(api, engineer)
    kept = await _thing_named(api, engineer, "other press")
    serials = []
    for entity_id in (thing, thing, kept):
        issued = await api.http.post(
            "/api/v1/certs",
            json={"entity_type": "thing", "entity_id": entity_id, "ttl": "24h"},
            headers=engineer,
        )
        serials.append(issued.json()["serial"])
    assert (await api.http.delete(f"/api/v1/things/{thing}", headers=engineer)).status_code == 204
    gate = api.platform.get(PkiService).gate
    deadline = asyncio.get_running_loop().time() + 10
    while not (gate.is_revoked(int(serials[0], 16)) and gate.is_revoked(int(serials[1], 16))):
        assert asyncio.get_running_loop().time() < deadline, "never revoked"
        await asyncio.sleep(0.02)
    record = (await api.http.get(f"/api/v1/certs/{serials[0]}", headers=engineer)).json()
    assert record["revocation_reason"] == "cessation_of_operation"
    assert not gate.is_revoked(int(serials[2], 16))  # another thing's certificate stays


async def _thing_named(api: Api, user: dict[str, str], name: str) -> str:
    response = await api.http.post("/api/v1/things", json={"name": name}, headers=user)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_flow_certificate_is_neither_issued_nor_renewed_through_the_api(api: Api) -> None:
    """The flows service makes a flow's certificate for its own calls, its key in memory
    (docs/flows.md): the API hands out none, not by a renewal either."""
    org = await api.org("North")
    engineer = await api.member(org, "engineer")
    asked = await api.http.post(
        "/api/v1/certs", json={"entity_type": "flow", "entity_id": f"{org}/line-3"},
        headers=engineer,
    )  # fmt: skip
    assert asked.status_code == 400, asked.text
    assert asked.json()["error"]["code"] == "invalid_entity_type"
    made = await api.platform.get(PkiService).certs.issue(
        Entity(EntityType.FLOW, f"{org}/line-3"), ttl=timedelta(hours=1), org_id=org
    )
    certificate = x509.load_pem_x509_certificate(made.cert_pem.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:shopfloor:flow:{org}/line-3"
    ]
    renewed = await api.http.post(f"/api/v1/certs/{made.serial}/renew", headers=engineer)
    assert renewed.status_code == 400, renewed.text
    assert renewed.json()["error"]["code"] == "invalid_entity_type"
    listed = await api.http.get(f"/api/v1/certs/{made.serial}", headers=engineer)
    assert listed.json()["entity_type"] == "flow"
