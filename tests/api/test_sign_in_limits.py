"""Repeated failed sign-ins answer 429 with Retry-After, per account and per address."""

from __future__ import annotations

import httpx

from .conftest import ROOT, Api


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/auth/token", json={"email": email, "password": password})


def _assert_throttled(response: httpx.Response) -> None:
    assert response.json()["error"]["code"] == "too_many_attempts"
    assert int(response.headers["Retry-After"]) >= 1


async def test_repeated_wrong_passwords_are_answered_429(api: Api) -> None:
    statuses = []
    for _ in range(30):
        response = await _sign_in(api.http, ROOT[0], "wrong-password")
        statuses.append(response.status_code)
        if response.status_code == 429:
            _assert_throttled(response)
            break
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429  # the delay doubles with every failure: it is reached soon


async def test_the_address_limit_is_separate_from_the_account_limit(api: Api) -> None:
    async with api.client_from("203.0.113.9") as attacker:
        for n in range(60):  # one guess at each of many accounts
            response = await _sign_in(attacker, f"user{n}@plant.example", "password-123")
            if response.status_code == 429:
                _assert_throttled(response)
                break
        assert response.status_code == 429
        assert n >= 20  # twenty free failures per address
    async with api.client_from("10.0.0.1") as colleague:
        response = await _sign_in(colleague, f"user{n}@plant.example", "password-123")
        assert response.status_code == 401  # the account was never held back
        assert (await _sign_in(colleague, *ROOT)).status_code == 200
