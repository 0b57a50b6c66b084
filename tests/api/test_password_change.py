"""Changing and resetting passwords ends the tokens issued before."""

from __future__ import annotations

import pytest

from .conftest import Api


async def _me(api: Api, headers: dict[str, str]) -> dict[str, object]:
    response = await api.http.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _refused(api: Api, headers: dict[str, str]) -> str:
    response = await api.http.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401, response.text
    return str(response.json()["error"]["code"])


async def test_changing_ones_password_ends_earlier_tokens(api: Api) -> None:
    plant = await api.org("Plant")
    first = await api.member(plant, "operator", email="olga@plant.example")
    second = await api.headers("olga@plant.example", "password-123")  # another device
    changed = await api.http.post(
        "/api/v1/users/me/password",
        json={"current_password": "password-123", "new_password": "new-password-1"},
        headers=first,
    )
    assert changed.status_code == 200, changed.text
    assert await _refused(api, first) == "token_revoked"
    assert await _refused(api, second) == "token_revoked"
    # the answer carries a fresh token, so the device that changed it stays signed in
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await _me(api, fresh))["email"] == "olga@plant.example"
    assert await api.token("olga@plant.example", "new-password-1")
    old = await api.http.post(
        "/api/v1/auth/token", json={"email": "olga@plant.example", "password": "password-123"}
    )
    assert old.status_code == 401


async def test_wrong_current_password_changes_nothing(api: Api) -> None:
    plant = await api.org("Plant")
    headers = await api.member(plant, "viewer", email="vic@plant.example")
    response = await api.http.post(
        "/api/v1/users/me/password",
        json={"current_password": "not-my-password", "new_password": "new-password-1"},
        headers=headers,
    )
    # 403, not 401: the token is fine, and a client must not sign out over a typo
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "wrong_password"
    assert (await _me(api, headers))["email"] == "vic@plant.example"
    assert await api.token("vic@plant.example", "password-123")


async def test_own_password_through_patch_needs_the_current_one(api: Api) -> None:
    plant = await api.org("Plant")
    headers = await api.member(plant, "viewer", email="vic@plant.example")
    user_id = (await _me(api, headers))["id"]
    bare = await api.http.patch(
        f"/api/v1/users/{user_id}", json={"password": "new-password-1"}, headers=headers
    )
    assert bare.status_code == 403
    assert bare.json()["error"]["code"] == "current_password_required"
    wrong = await api.http.patch(
        f"/api/v1/users/{user_id}",
        json={"password": "new-password-1", "current_password": "guess-guess"},
        headers=headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "wrong_password"
    right = await api.http.patch(
        f"/api/v1/users/{user_id}",
        json={"password": "new-password-1", "current_password": "password-123"},
        headers=headers,
    )
    assert right.status_code == 200, right.text
    assert await _refused(api, headers) == "token_revoked"
    assert await api.token("vic@plant.example", "new-password-1")


@pytest.mark.parametrize("resetter", ["org admin", "platform admin"])
async def test_admin_reset_ends_the_users_tokens(api: Api, resetter: str) -> None:
    plant = await api.org("Plant")
    admin = await api.member(plant, "admin") if resetter == "org admin" else await api.root()
    user = await api.member(plant, "engineer", email="eng@plant.example")
    user_id = (await _me(api, user))["id"]
    reset = await api.http.patch(
        f"/api/v1/users/{user_id}", json={"password": "given-by-admin"}, headers=admin
    )
    assert reset.status_code == 200, reset.text
    assert await _refused(api, user) == "token_revoked"
    assert await _me(api, admin)  # the admin's own token is untouched
    assert await api.token("eng@plant.example", "given-by-admin")


async def test_role_change_keeps_tokens(api: Api) -> None:
    plant = await api.org("Plant")
    admin = await api.member(plant, "admin")
    user = await api.member(plant, "viewer", email="vic@plant.example")
    user_id = (await _me(api, user))["id"]
    changed = await api.http.patch(
        f"/api/v1/users/{user_id}", json={"role": "operator"}, headers=admin
    )
    assert changed.status_code == 200
    assert (await _me(api, user))["role"] == "operator"


async def test_org_admin_cannot_reset_users_of_another_org(api: Api) -> None:
    plant, other = await api.org("Plant"), await api.org("Other")
    admin = await api.member(plant, "admin")
    stranger = await api.member(other, "viewer", email="far@other.example")
    stranger_id = (await _me(api, stranger))["id"]
    response = await api.http.patch(
        f"/api/v1/users/{stranger_id}", json={"password": "taken-over-1"}, headers=admin
    )
    assert response.status_code == 404
    assert await _me(api, stranger)
