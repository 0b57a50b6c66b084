"""The authenticator holds back repeated failed sign-ins before checking any password."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shopfloor.auth import (
    Authenticator,
    Forbidden,
    SignInThrottle,
    SignInThrottled,
    ThingKeys,
    TokenIssuer,
    Unauthenticated,
    hash_password,
)
from shopfloor.registry import Registry

from .test_sign_in_throttle import Clock

EMAIL, PASSWORD = "ann@plant.example", "password-123"


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    registry = await Registry.open(f"sqlite:///{tmp_path / 'registry.db'}", ThingKeys(b"k" * 32))
    await registry.create_user(
        email=EMAIL, password_hash=hash_password(PASSWORD), org_id=None, role=None
    )
    try:
        yield registry
    finally:
        await registry.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(registry: Registry, clock: Clock) -> Authenticator:
    tokens = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    return Authenticator(registry, tokens, throttle=SignInThrottle(clock=clock))


async def test_200_wrong_passwords_at_nine_a_second_are_held_back(
    auth: Authenticator, clock: Clock
) -> None:
    answers = []
    for _ in range(200):
        try:
            await auth.login(EMAIL, "wrong-password", source="203.0.113.9")
        except SignInThrottled:
            answers.append(429)
        except Unauthenticated:
            answers.append(401)
        clock.advance(1 / 9)
    assert answers[:5] == [401] * 5
    # 22 s of guessing: 5 free guesses, then one after each doubling delay (1, 2, 4, 8 s)
    assert answers.count(401) == 10
    # the right password during the lockout is refused too: otherwise the lockout would
    # only slow down wrong guesses, and the attacker would learn the right one at once
    with pytest.raises(SignInThrottled) as refused:
        await auth.login(EMAIL, PASSWORD, source="203.0.113.9")
    clock.advance(refused.value.retry_after)
    assert (await auth.login(EMAIL, PASSWORD, source="203.0.113.9")).access_token


async def test_wrong_current_passwords_count_as_failed_sign_ins(
    auth: Authenticator, registry: Registry
) -> None:
    user = await registry.find_user_by_email(EMAIL)
    assert user is not None
    for _ in range(6):
        with pytest.raises(Forbidden) as wrong:
            await auth.change_password(user.id, "guess-guess", "new-password-1", source="x")
        assert wrong.value.code == "wrong_password"
    with pytest.raises(SignInThrottled):
        await auth.change_password(user.id, PASSWORD, "new-password-1", source="x")
