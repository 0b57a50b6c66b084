"""Every user route refuses a missing, expired, forged or foreign credential."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shopfloor.auth import SecretFiles, TokenIssuer
from shopfloor.auth.capability import IdentityService

from .conftest import Api

ROUTES = [
    ("GET", "/api/v1/users/me"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/orgs"),
    ("POST", "/api/v1/orgs"),
    ("GET", "/api/v1/things"),
    ("POST", "/api/v1/things"),
    ("GET", "/api/v1/things/some-id"),
    ("PATCH", "/api/v1/things/some-id"),
    ("DELETE", "/api/v1/things/some-id"),
    ("POST", "/api/v1/things/some-id/key"),
    ("GET", "/api/v1/things/some-id/channels"),
    ("GET", "/api/v1/channels"),
    ("POST", "/api/v1/channels"),
    ("GET", "/api/v1/channels/some-id"),
    ("GET", "/api/v1/channels/some-id/things"),
    ("PUT", "/api/v1/channels/c/things/t"),
    ("DELETE", "/api/v1/channels/c/things/t"),
]


def _forge(claims: dict[str, object]) -> str:
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_missing_credentials(api: Api, method: str, path: str) -> None:
    response = await api.http.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "a.b.c",
        _forge(
            {"iss": "shopfloor", "sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60}
        ),
        jwt.encode(
            {"iss": "shopfloor", "sub": "x"},
            "a-guessable-shared-secret-of-32-bytes",
            algorithm="HS256",
        ),
    ],
)
async def test_forged_tokens(api: Api, token: str) -> None:
    for method, path in ROUTES:
        response = await api.http.request(
            method, path, json={}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "invalid_token"


async def test_expired_token(api: Api) -> None:
    # Signed with this installation's real key, but expired beyond the leeway.
    key = SecretFiles(api.platform.settings.data_dir).signing_key()
    registry = api.platform.get(IdentityService).registry
    user = await registry.find_user_by_email("root@plant.example")
    assert user is not None
    token = TokenIssuer(key, ttl_seconds=-120).issue(user.id).access_token
    response = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def test_token_of_another_data_dir_is_refused(api: Api) -> None:
    # A token signed by another installation's key looks right but is not ours.
    token = _forge({"iss": "shopfloor", "sub": "root", "iat": 1, "exp": 2**31})
    response = await api.http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_public_routes_need_no_credentials(api: Api) -> None:
    for path in ("/health", "/metrics", "/docs", "/openapi.json"):
        assert (await api.http.get(path)).status_code == 200, path
