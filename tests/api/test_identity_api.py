"""Sign-in, organisations and users through the HTTP API."""

from __future__ import annotations

import pytest

from .conftest import ROOT, Api


async def test_first_admin_signs_in(api: Api) -> None:
    response = await api.http.post(
        "/api/v1/auth/token", json={"email": ROOT[0], "password": ROOT[1]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 86400
    me = await api.http.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["email"] == ROOT[0]
    assert me.json()["platform_admin"] is True


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": ROOT[0], "password": "wrong-password"},
        {"email": "nobody@plant.example", "password": ROOT[1]},
    ],
)
async def test_wrong_credentials_are_refused_alike(api: Api, credentials: dict[str, str]) -> None:
    response = await api.http.post("/api/v1/auth/token", json=credentials)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_platform_admin_creates_orgs_and_users(api: Api) -> None:
    org_id = await api.org("Plant North")
    root = await api.root()
    listed = await api.http.get("/api/v1/orgs", headers=root)
    assert [o["name"] for o in listed.json()["items"]] == ["Plant North"]
    duplicate = await api.http.post("/api/v1/orgs", json={"name": "Plant North"}, headers=root)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "name_taken"

    created = await api.http.post(
        "/api/v1/users",
        json={"email": "eve@plant.example", "password": "password-123", "org_id": org_id,
              "role": "engineer"},
        headers=root,
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json()["role"] == "engineer"
    assert "password" not in created.text and "hash" not in created.text
    again = await api.http.post(
        "/api/v1/users",
        json={"email": "EVE@plant.example", "password": "password-123", "org_id": org_id},
        headers=root,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


async def test_only_platform_admins_create_orgs(api: Api) -> None:
    org_id = await api.org("Plant")
    admin = await api.member(org_id, "admin")
    response = await api.http.post("/api/v1/orgs", json={"name": "Mine"}, headers=admin)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "platform_admin_required"


async def test_org_admin_manages_own_users_only(api: Api) -> None:
    plant = await api.org("Plant")
    other = await api.org("Other")
    admin = await api.member(plant, "admin")
    made = await api.http.post(
        "/api/v1/users",
        json={"email": "op@plant.example", "password": "password-123", "role": "operator"},
        headers=admin,
    )
    assert made.status_code == 201
    assert made.json()["org_id"] == plant
    foreign = await api.http.post(
        "/api/v1/users",
        json={"email": "x@other.example", "password": "password-123", "org_id": other},
        headers=admin,
    )
    assert foreign.status_code == 404
    listed = await api.http.get("/api/v1/users", headers=admin)
    assert sorted(u["email"] for u in listed.json()["items"]) == [
        f"admin-{plant[:8]}@plant.example",
        "op@plant.example",
    ]
    user_id = made.json()["id"]
    promoted = await api.http.patch(
        f"/api/v1/users/{user_id}", json={"role": "engineer"}, headers=admin
    )
    assert promoted.json()["role"] == "engineer"
    outsider = await api.member(other, "admin")
    hidden = await api.http.get(f"/api/v1/users/{user_id}", headers=outsider)
    assert hidden.status_code == 404
    deleted = await api.http.delete(f"/api/v1/users/{user_id}", headers=admin)
    assert deleted.status_code == 204


@pytest.mark.parametrize("role", ["engineer", "operator", "viewer"])
async def test_non_admins_cannot_manage_users(api: Api, role: str) -> None:
    plant = await api.org("Plant")
    caller = await api.member(plant, role)
    listed = await api.http.get("/api/v1/users", headers=caller)
    assert listed.status_code == 403
    assert listed.json()["error"]["code"] == "insufficient_role"
    made = await api.http.post(
        "/api/v1/users",
        json={"email": "new@plant.example", "password": "password-123"},
        headers=caller,
    )
    assert made.status_code == 403


async def test_users_change_their_own_password(api: Api) -> None:
    plant = await api.org("Plant")
    me_headers = await api.member(plant, "viewer", email="vic@plant.example")
    me = (await api.http.get("/api/v1/users/me", headers=me_headers)).json()
    changed = await api.http.patch(
        f"/api/v1/users/{me['id']}",
        json={"password": "new-password-1", "current_password": "password-123"},
        headers=me_headers,
    )
    assert changed.status_code == 200
    me_headers = await api.headers("vic@plant.example", "new-password-1")
    self_promotion = await api.http.patch(
        f"/api/v1/users/{me['id']}", json={"role": "admin"}, headers=me_headers
    )
    assert self_promotion.status_code == 403


async def test_short_password_is_a_validation_error(api: Api) -> None:
    plant = await api.org("Plant")
    response = await api.http.post(
        "/api/v1/users",
        json={"email": "a@plant.example", "password": "short", "org_id": plant},
        headers=await api.root(),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "body.password"
    assert "short" not in response.text  # input is never echoed back


async def test_deleted_user_token_stops_working(api: Api) -> None:
    plant = await api.org("Plant")
    headers = await api.member(plant, "viewer", email="gone@plant.example")
    me = (await api.http.get("/api/v1/users/me", headers=headers)).json()
    await api.http.delete(f"/api/v1/users/{me['id']}", headers=await api.root())
    response = await api.http.get("/api/v1/things", headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "email", ["ops@plant.local", "x@corp.internal", "qa@lab.test", "shift@hmi", "Ops@Hall-2.LOCAL"]
)
async def test_on_premises_addresses_are_accepted_and_sign_in(api: Api, email: str) -> None:
    plant = await api.org("Plant")

    headers = await api.member(plant, "viewer", email=email)

    me = await api.http.get("/api/v1/users/me", headers=headers)
    assert me.json()["email"] == email.lower()


@pytest.mark.parametrize(
    "email", ["ops@", "@plant.local", "ops@@plant.local", "ops@plant..local", "o ps@plant.local"]
)
async def test_malformed_addresses_are_still_refused(api: Api, email: str) -> None:
    response = await api.http.post(
        "/api/v1/users",
        json={"email": email, "password": "password-123", "org_id": await api.org("Plant")},
        headers=await api.root(),
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "body.email"
