"""Argon2id cost: the settings reach every new hash, old hashes keep verifying."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from shopfloor.app import create_app
from shopfloor.auth import Passwords, hash_password
from shopfloor.auth.capability import IdentityService
from tests.serving import lifespan


def test_a_hash_carries_its_cost_and_verifies_at_any_setting() -> None:
    cheap = Passwords(time_cost=1, memory_kib=64)
    made = cheap.hash("press-line-7")
    assert "$m=64,t=1," in made
    assert cheap.verify(made, "press-line-7")
    assert not cheap.verify(made, "press-line-8")
    # A hash made at the default cost before the setting changed still signs in.
    old = hash_password("press-line-7")
    assert "$m=65536,t=3," in old
    assert cheap.verify(old, "press-line-7")
    assert not cheap.verify(None, "press-line-7")
    assert not cheap.verify("not-a-hash", "press-line-7")


async def test_the_settings_reach_the_first_admin_new_users_and_sign_in(
    make_settings: Callable[..., Any],
) -> None:
    app = create_app(make_settings(password_time_cost=2, password_memory_kib=128))
    async with lifespan(app) as started:
        transport = httpx.ASGITransport(app=started.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            registry = app.state.platform.get(IdentityService).registry
            admin = await registry.find_user_by_email("root@plant.example")
            assert admin is not None and "$m=128,t=2," in (admin.password_hash or "")
            token = await http.post(
                "/api/v1/auth/token",
                json={"email": "root@plant.example", "password": "root-password"},
            )
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            org = await http.post("/api/v1/orgs", json={"name": "press shop"}, headers=headers)
            created = await http.post(
                "/api/v1/users",
                json={
                    "email": "op@plant.example",
                    "password": "operator-1",
                    "org_id": org.json()["id"],
                    "role": "operator",
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
            user = await registry.find_user_by_email("op@plant.example")
            assert user is not None and "$m=128,t=2," in (user.password_hash or "")
