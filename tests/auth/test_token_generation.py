"""Tokens issued before a password change stop working, in every process, at once."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shopfloor.auth import (
    Authenticator,
    SecretFiles,
    ThingKeys,
    TokenIssuer,
    Unauthenticated,
    hash_password,
)
from shopfloor.auth.commands import create_admin_account
from shopfloor.core.capability import database_url
from shopfloor.registry import Registry
from shopfloor.settings import Settings

KEY = Ed25519PrivateKey.generate()
THING_SECRET = secrets.token_bytes(32)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
async def registry(database: str) -> AsyncIterator[Registry]:
    registry = await Registry.open(database, ThingKeys(THING_SECRET))
    try:
        yield registry
    finally:
        await registry.close()


def _authenticator(registry: Registry) -> Authenticator:
    return Authenticator(registry, TokenIssuer(KEY, ttl_seconds=86400))


async def test_a_password_changed_in_another_process_ends_tokens_at_once(
    registry: Registry, database: str
) -> None:
    user = await registry.create_user(
        email="ann@plant.example",
        password_hash=hash_password("password-123"),
        org_id=None,
        role=None,
    )
    api = _authenticator(registry)
    token = (await api.login("ann@plant.example", "password-123", source="10.0.0.1")).access_token
    assert (await api.principal(token)).subject == user.id
    other_process = await Registry.open(database, ThingKeys(THING_SECRET))
    try:
        await other_process.update_user(user.id, password_hash=hash_password("new-password-1"))
    finally:
        await other_process.close()
    with pytest.raises(Unauthenticated) as refused:
        await api.principal(token)  # no cache to wait out: the next request is refused
    assert refused.value.code == "token_revoked"
    fresh = (await api.login("ann@plant.example", "new-password-1", source="10.0.0.1")).access_token
    assert (await api.principal(fresh)).subject == user.id


async def test_cli_reset_password_ends_the_admins_tokens(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_email="", log_format="text")
    created = await create_admin_account(
        settings, "ops@plant.example", "first-password", reset=False
    )
    assert created.startswith("created platform admin")
    registry = await Registry.open(
        database_url(settings), ThingKeys(SecretFiles(settings.data_dir).thing_key_secret())
    )
    try:
        api = _authenticator(registry)
        token = (
            await api.login("ops@plant.example", "first-password", source="10.0.0.1")
        ).access_token
        assert (await api.principal(token)).platform_admin
        await create_admin_account(settings, "ops@plant.example", "second-password", reset=True)
        with pytest.raises(Unauthenticated) as refused:
            await api.principal(token)
        assert refused.value.code == "token_revoked"
    finally:
        await registry.close()
