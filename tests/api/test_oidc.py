"""OIDC sign-in against a real HTTP issuer (discovery + JWKS) started by the test."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shopfloor.app import create_app
from tests.serving import lifespan

from .conftest import Api


@dataclass
class Issuer:
    """A tiny OIDC issuer: serves discovery and a JWKS of keys it generated."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    jwks_requests: int = 0

    def rotate(self, kid: str) -> None:
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}

    def token(self, *, kid: str | None = None, key: Any = None, **claims: Any) -> str:
        kid = kid or next(iter(self.keys))
        now = int(time.time())
        body = {"iss": self.url, "sub": "kc-user-1", "iat": now, "exp": now + 300,
                "email": "olga@plant.example", **claims}  # fmt: skip
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def app(self) -> Starlette:
        async def discovery(_request: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/certs"})

        async def certs(_request: Request) -> JSONResponse:
            self.jwks_requests += 1
            keys = []
            for kid, key in self.keys.items():
                jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
            return JSONResponse({"keys": keys})

        return Starlette(
            routes=[
                Route("/realms/plant/.well-known/openid-configuration", discovery),
                Route("/realms/plant/certs", certs),
            ]
        )


async def _until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 10.0
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the issuer did not start"
        await asyncio.sleep(0.01)  # uvicorn offers no 'started' event to wait on


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    issuer = Issuer()
    issuer.rotate("key-1")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    issuer.url = f"http://127.0.0.1:{sock.getsockname()[1]}/realms/plant"
    server = uvicorn.Server(uvicorn.Config(issuer.app(), log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _until(lambda: server.started)
        yield issuer
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def oidc_api(make_settings: Callable[..., Any], issuer: Issuer) -> AsyncIterator[Api]:
    settings = make_settings(
        oidc_issuer=issuer.url, oidc_jwks_min_refresh_seconds=0, oidc_audience=""
    )
    app = create_app(settings)
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            yield Api(http, app.state.platform)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_keycloak_token_signs_in_with_org_and_role(oidc_api: Api, issuer: Issuer) -> None:
    plant = await oidc_api.org("Demo Plant")
    token = issuer.token(realm_access={"roles": ["offline_access", "engineer"]},
                         groups=["/Demo Plant"])  # fmt: skip
    me = await oidc_api.http.get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json() | {"created_at": None} == {
        "id": "kc-user-1", "email": "olga@plant.example", "org_id": plant, "role": "engineer",
        "platform_admin": False, "source": "oidc", "created_at": None,
    }  # fmt: skip
    made = await oidc_api.http.post("/api/v1/things", json={"name": "p"}, headers=bearer(token))
    assert made.status_code == 201
    assert made.json()["org_id"] == plant


async def test_highest_role_wins_and_viewer_is_read_only(oidc_api: Api, issuer: Issuer) -> None:
    await oidc_api.org("Demo Plant")
    viewer = issuer.token(realm_access={"roles": ["viewer"]}, groups=["Demo Plant"])
    assert (await oidc_api.http.get("/api/v1/things", headers=bearer(viewer))).status_code == 200
    refused = await oidc_api.http.post("/api/v1/things", json={"name": "p"}, headers=bearer(viewer))
    assert refused.status_code == 403
    both = issuer.token(realm_access={"roles": ["viewer", "admin"]}, groups=["/x/Demo Plant"])
    me = await oidc_api.http.get("/api/v1/users/me", headers=bearer(both))
    assert me.json()["role"] == "admin"


async def test_unknown_org_gives_no_access(oidc_api: Api, issuer: Issuer) -> None:
    token = issuer.token(realm_access={"roles": ["admin"]}, groups=["/Nowhere"])
    response = await oidc_api.http.get("/api/v1/things", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_organisation"


async def test_platform_admin_role(oidc_api: Api, issuer: Issuer) -> None:
    token = issuer.token(realm_access={"roles": ["shopfloor-admin"]})
    made = await oidc_api.http.post("/api/v1/orgs", json={"name": "New"}, headers=bearer(token))
    assert made.status_code == 201


async def test_bad_signature_is_refused(oidc_api: Api, issuer: Issuer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = issuer.token(key=stranger, realm_access={"roles": ["admin"]})
    response = await oidc_api.http.get("/api/v1/users/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_other_issuer_is_refused(oidc_api: Api, issuer: Issuer) -> None:
    token = issuer.token(iss="http://127.0.0.1:1/realms/evil", realm_access={"roles": ["admin"]})
    response = await oidc_api.http.get("/api/v1/users/me", headers=bearer(token))
    assert response.status_code == 401


async def test_expired_token_is_refused(oidc_api: Api, issuer: Issuer) -> None:
    token = issuer.token(exp=int(time.time()) - 3600, realm_access={"roles": ["admin"]})
    response = await oidc_api.http.get("/api/v1/users/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def test_key_rotation_is_followed_and_jwks_is_cached(oidc_api: Api, issuer: Issuer) -> None:
    first = issuer.token(realm_access={"roles": ["viewer"]})
    for _ in range(3):
        assert (
            await oidc_api.http.get("/api/v1/users/me", headers=bearer(first))
        ).status_code == 200
    assert issuer.jwks_requests == 1  # cached
    issuer.rotate("key-2")
    second = issuer.token(realm_access={"roles": ["viewer"]})
    assert (await oidc_api.http.get("/api/v1/users/me", headers=bearer(second))).status_code == 200
    assert issuer.jwks_requests == 2
    # the old key is gone from the JWKS: its tokens stop working after the refetch
    old = await oidc_api.http.get("/api/v1/users/me", headers=bearer(first))
    assert old.status_code == 401
