"""The registry contract: one suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from shopfloor.auth import ThingKeys
from shopfloor.core import create_engine, migrate
from shopfloor.registry import MIGRATIONS, Conflict, NotFound, Permission, Registry, Role


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[Registry]:
    registry = await Registry.open(database_url, ThingKeys(secrets.token_bytes(32)))
    try:
        yield registry
    finally:
        await registry.close()


async def test_migrations_are_idempotent(database_url: str) -> None:
    keys = ThingKeys(secrets.token_bytes(32))
    first = await Registry.open(database_url, keys)
    await first.create_org("Plant")
    await first.close()
    second = await Registry.open(database_url, keys)  # applies nothing, loses nothing
    try:
        assert (await second.list_orgs()).total == 1
    finally:
        await second.close()


async def test_concurrent_start_migrates_once(database_url: str) -> None:
    keys = ThingKeys(secrets.token_bytes(32))
    opened = await asyncio.gather(*(Registry.open(database_url, keys) for _ in range(3)))
    try:
        await opened[0].create_org("Plant")
        assert (await opened[2].list_orgs()).total == 1
    finally:
        for registry in opened:
            await registry.close()


async def test_upgrade_keeps_existing_users_signed_in(database_url: str) -> None:
    # A database at revision 0001 with a user, upgraded: the user is at generation 0,
    # the generation tokens without a `gen` claim count as.
    engine = create_engine(database_url)
    try:
        await migrate(engine, [MIGRATIONS], target="0001")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO users (id, email, password_hash, platform_admin, created_at)"
                    " VALUES ('u1', 'old@plant.example', 'h', false, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await engine.dispose()
    registry = await Registry.open(database_url, ThingKeys(secrets.token_bytes(32)))
    try:
        assert (await registry.get_user("u1")).token_generation == 0
        assert (await registry.update_user("u1", password_hash="h2")).token_generation == 1
    finally:
        await registry.close()


async def test_org_names_are_unique(registry: Registry) -> None:
    org = await registry.create_org("Plant A")
    assert (await registry.get_org(org.id)).name == "Plant A"
    assert (await registry.find_org("Plant A")) == org
    assert (await registry.find_org(org.id)) == org
    with pytest.raises(Conflict) as caught:
        await registry.create_org("Plant A")
    assert caught.value.code == "name_taken"


async def test_users_belong_to_an_org_with_a_role(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    user = await registry.create_user(
        email="Ann@Plant.Example", password_hash="h", org_id=org.id, role=Role.OPERATOR
    )
    assert user.email == "ann@plant.example"
    assert await registry.find_user_by_email("ANN@plant.example") == user
    with pytest.raises(Conflict):
        await registry.create_user(
            email="ann@plant.example", password_hash="h", org_id=org.id, role=Role.VIEWER
        )
    changed = await registry.update_user(user.id, role=Role.ENGINEER, password_hash="h2")
    assert (changed.role, changed.password_hash) == (Role.ENGINEER, "h2")
    page = await registry.list_users(org_id=org.id)
    assert [u.id for u in page.items] == [user.id]
    await registry.delete_user(user.id)
    with pytest.raises(NotFound):
        await registry.get_user(user.id)


async def test_users_are_paged_sorted_and_filtered(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    other = await registry.create_org("Elsewhere")
    for email, role in (("b_1@plant.example", Role.VIEWER), ("a@plant.example", Role.ADMIN),
                        ("b%1@plant.example", Role.ADMIN)):  # fmt: skip
        await registry.create_user(email=email, password_hash="h", org_id=org.id, role=role)
    await registry.create_user(email="b@else.example", password_hash="h", org_id=other.id,
                               role=Role.ADMIN)  # fmt: skip

    def emails(page: Any) -> list[str]:
        return [user.email for user in page.items]

    by_email = await registry.list_users(org_id=org.id, sort="-email", limit=2)
    assert (by_email.total, emails(by_email)) == (3, ["b_1@plant.example", "b%1@plant.example"])
    assert emails(await registry.list_users(org_id=org.id, email="B_")) == ["b_1@plant.example"]
    assert emails(await registry.list_users(org_id=org.id, email="%")) == ["b%1@plant.example"]
    admins = await registry.list_users(org_id=org.id, role=Role.ADMIN, sort="email")
    assert emails(admins) == ["a@plant.example", "b%1@plant.example"]
    by_role = await registry.list_users(org_id=org.id, sort="-role")
    assert [user.role for user in by_role.items] == [Role.VIEWER, Role.ADMIN, Role.ADMIN]
    with pytest.raises(ValueError, match="sort must be one of"):
        await registry.list_users(org_id=org.id, sort="password_hash")  # type: ignore[arg-type]


async def test_a_new_password_bumps_the_token_generation(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    user = await registry.create_user(
        email="ann@plant.example", password_hash="h", org_id=org.id, role=Role.OPERATOR
    )
    assert user.token_generation == 0
    assert (await registry.update_user(user.id, role=Role.VIEWER)).token_generation == 0
    assert (await registry.update_user(user.id, password_hash="h2")).token_generation == 1
    # the same hash again is still a reset: whoever asked wants the old sessions gone
    assert (await registry.update_user(user.id, password_hash="h2")).token_generation == 2
    assert (await registry.get_user(user.id)).token_generation == 2


async def test_user_in_missing_org_is_refused(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await registry.create_user(
            email="x@y.example", password_hash="h", org_id="missing", role=Role.VIEWER
        )


async def test_thing_keys_are_stored_hashed_and_encrypted(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    thing, key = await registry.create_thing(org.id, name="press-01", metadata={"line": "A"})
    assert len(key) >= 32  # 192 random bits, base64url
    assert key not in thing.key_ciphertext
    assert registry.thing_key(thing) == key
    assert (await registry.thing_by_key(key)) == thing
    assert await registry.thing_by_key(key + "x") is None
    rotated, new_key = await registry.rotate_thing_key(org.id, thing.id)
    assert new_key != key
    assert await registry.thing_by_key(key) is None
    assert (await registry.thing_by_key(new_key)) == rotated


async def test_a_database_copy_alone_does_not_reveal_keys(database_url: str) -> None:
    registry = await Registry.open(database_url, ThingKeys(secrets.token_bytes(32)))
    org = await registry.create_org("Plant")
    thing, key = await registry.create_thing(org.id, name="press-01")
    await registry.close()
    thief = await Registry.open(database_url, ThingKeys(secrets.token_bytes(32)))
    try:
        assert await thief.thing_by_key(key) is None
        stolen = await thief.get_thing(org.id, thing.id)
        with pytest.raises(ValueError):
            thief.thing_key(stolen)
    finally:
        await thief.close()


async def test_things_are_scoped_to_their_org(registry: Registry) -> None:
    mine = await registry.create_org("Mine")
    theirs = await registry.create_org("Theirs")
    thing, _ = await registry.create_thing(theirs.id, name="press-01")
    for call in (
        registry.get_thing(mine.id, thing.id),
        registry.update_thing(mine.id, thing.id, name="x"),
        registry.delete_thing(mine.id, thing.id),
        registry.rotate_thing_key(mine.id, thing.id),
    ):
        with pytest.raises(NotFound):
            await call
    # the same name is free in another organisation
    await registry.create_thing(mine.id, name="press-01")


async def test_thing_names_unique_within_org(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    await registry.create_thing(org.id, name="press-01")
    other, _ = await registry.create_thing(org.id, name="press-02")
    with pytest.raises(Conflict):
        await registry.create_thing(org.id, name="press-01")
    with pytest.raises(Conflict):
        await registry.update_thing(org.id, other.id, name="press-01")


async def test_listing_pages_and_filters(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    for i in range(12):
        await registry.create_thing(
            org.id, name=f"machine-{i:02d}", tags=["even" if i % 2 == 0 else "odd", "all"]
        )
    await registry.create_thing(org.id, name="weird_%_name", tags=["all"])
    page = await registry.list_things(org.id, offset=5, limit=4)
    assert page.total == 13
    assert [t.name for t in page.items] == [f"machine-{i:02d}" for i in range(5, 9)]
    evens = await registry.list_things(org.id, tag="even")
    assert evens.total == 6
    assert all("even" in t.tags for t in evens.items)
    by_name = await registry.list_things(org.id, name="INE-1")
    assert sorted(t.name for t in by_name.items) == ["machine-10", "machine-11"]
    literal = await registry.list_things(org.id, name="_%_")
    assert [t.name for t in literal.items] == ["weird_%_name"]


async def test_listings_sort_by_name_or_creation_either_way(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    names = ["mill", "press", "aligner"]  # created in this order
    for name in names:
        await registry.create_thing(org.id, name=name)
        await registry.create_channel(org.id, name=name)
    for listing in (registry.list_things, registry.list_channels):
        assert [e.name for e in (await listing(org.id, sort="-name")).items] == [
            "press", "mill", "aligner",
        ]  # fmt: skip
        assert [e.name for e in (await listing(org.id, sort="created_at")).items] == names
        newest = await listing(org.id, sort="-created_at", limit=2)
        assert [e.name for e in newest.items] == ["aligner", "press"] and newest.total == 3
    with pytest.raises(ValueError, match="sort"):
        await registry.list_things(org.id, sort="key_hash")  # type: ignore[arg-type]


async def test_update_changes_only_what_is_given(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    channel = await registry.create_channel(
        org.id, name="telemetry", metadata={"a": 1}, tags=["x", "y"]
    )
    renamed = await registry.update_channel(org.id, channel.id, name="tele")
    assert (renamed.name, renamed.metadata, renamed.tags) == ("tele", {"a": 1}, ("x", "y"))
    retagged = await registry.update_channel(org.id, channel.id, tags=["z"], metadata={})
    assert (retagged.name, retagged.metadata, retagged.tags) == ("tele", {}, ("z",))


async def test_connections_carry_permissions(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    channel = await registry.create_channel(org.id, name="telemetry")
    press, _ = await registry.create_thing(org.id, name="press-01")
    oven, _ = await registry.create_thing(org.id, name="oven-02")
    both = await registry.connect(org.id, channel.id, press.id)
    assert both.permissions == {Permission.PUBLISH, Permission.SUBSCRIBE}
    await registry.connect(org.id, channel.id, oven.id, [Permission.SUBSCRIBE])
    connection = await registry.connection(channel.id, oven.id)
    assert connection is not None
    assert connection.allows(Permission.SUBSCRIBE) and not connection.allows(Permission.PUBLISH)
    # connecting again replaces the permissions
    await registry.connect(org.id, channel.id, oven.id, [Permission.PUBLISH])
    again = await registry.connection(channel.id, oven.id)
    assert again is not None and again.permissions == {Permission.PUBLISH}

    things = await registry.channel_things(org.id, channel.id)
    assert [(t.name, c.permissions) for t, c in things.items] == [
        ("oven-02", {Permission.PUBLISH}),
        ("press-01", {Permission.PUBLISH, Permission.SUBSCRIBE}),
    ]
    channels = await registry.thing_channels(org.id, press.id)
    assert [c.name for c, _ in channels.items] == ["telemetry"]

    await registry.disconnect(org.id, channel.id, press.id)
    assert await registry.connection(channel.id, press.id) is None
    with pytest.raises(NotFound):
        await registry.disconnect(org.id, channel.id, press.id)


async def test_connections_never_cross_orgs(registry: Registry) -> None:
    mine = await registry.create_org("Mine")
    theirs = await registry.create_org("Theirs")
    channel = await registry.create_channel(mine.id, name="telemetry")
    foreign, _ = await registry.create_thing(theirs.id, name="spy")
    with pytest.raises(NotFound):
        await registry.connect(mine.id, channel.id, foreign.id)
    with pytest.raises(NotFound):
        await registry.connect(theirs.id, channel.id, foreign.id)


async def test_deleting_removes_connections(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    channel = await registry.create_channel(org.id, name="telemetry")
    thing, key = await registry.create_thing(org.id, name="press-01", tags=["a"])
    await registry.connect(org.id, channel.id, thing.id)
    await registry.delete_thing(org.id, thing.id)
    assert await registry.connection(channel.id, thing.id) is None
    assert await registry.thing_by_key(key) is None
    assert (await registry.list_things(org.id, tag="a")).total == 0
    await registry.delete_channel(org.id, channel.id)
    assert await registry.find_channel(channel.id) is None


async def test_timestamps_are_timezone_aware(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    thing, _ = await registry.create_thing(org.id, name="press-01")
    fetched = await registry.get_thing(org.id, thing.id)
    assert fetched.created_at.tzinfo is not None
    assert abs((fetched.created_at - thing.created_at).total_seconds()) < 1


async def test_changes_are_announced_after_commit(registry: Registry) -> None:
    from shopfloor.registry import ChangeKind, RegistryChange

    seen: list[RegistryChange] = []
    registry.add_listener(seen.append)
    org = await registry.create_org("Plant")
    channel = await registry.create_channel(org.id, name="telemetry")
    thing, _ = await registry.create_thing(org.id, name="press-01")
    await registry.connect(org.id, channel.id, thing.id)
    await registry.rotate_thing_key(org.id, thing.id)
    await registry.disconnect(org.id, channel.id, thing.id)
    await registry.connect(org.id, channel.id, thing.id)
    await registry.delete_channel(org.id, channel.id)
    await registry.delete_thing(org.id, thing.id)
    assert [(c.kind, c.thing_ids) for c in seen] == [
        (ChangeKind.THING_CREATED, (thing.id,)),
        (ChangeKind.CONNECTED, (thing.id,)),
        (ChangeKind.THING_KEY_ROTATED, (thing.id,)),
        (ChangeKind.DISCONNECTED, (thing.id,)),
        (ChangeKind.CONNECTED, (thing.id,)),
        (ChangeKind.CHANNEL_DELETED, (thing.id,)),
        (ChangeKind.THING_DELETED, (thing.id,)),
    ]
    assert all(c.org_id == org.id for c in seen)


async def test_failed_change_is_not_announced(registry: Registry) -> None:
    seen: list[object] = []
    registry.add_listener(seen.append)
    org = await registry.create_org("Plant")
    await registry.create_thing(org.id, name="press-01")
    with pytest.raises(Conflict):
        await registry.create_thing(org.id, name="press-01")
    assert len(seen) == 1


async def test_a_transaction_commits_together_and_announces_after(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    heard: list[str] = []
    remove = registry.add_listener(lambda change: heard.append(change.kind.value))
    try:
        async with registry.transaction() as tx:
            thing, key = await tx.create_thing(org.id, name="press-1", tags=["press"])
            channel = await tx.create_channel(org.id, name="press-1 telemetry")
            await tx.connect(org.id, channel.id, thing.id)
            # Read back inside the transaction: the same connection sees its own writes.
            assert (await tx.get_thing(org.id, thing.id)).tags == ("press",)
            assert (await tx.thing_channels(org.id, thing.id)).total == 1
            assert heard == []  # nothing is announced before the commit
        assert heard == ["thing_created", "connected"]
        assert (await registry.thing_by_key(key)) == await registry.get_thing(org.id, thing.id)
        assert (await registry.connection(channel.id, thing.id)) is not None
    finally:
        remove()


async def test_a_failed_transaction_leaves_nothing(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    heard: list[str] = []
    remove = registry.add_listener(lambda change: heard.append(change.kind.value))
    try:
        with pytest.raises(NotFound):
            async with registry.transaction() as tx:
                thing, _ = await tx.create_thing(org.id, name="press-1")
                await tx.create_channel(org.id, name="telemetry")
                await tx.connect(org.id, "no-such-channel", thing.id)
        assert heard == []
        assert (await registry.list_things(org.id)).total == 0
        assert (await registry.list_channels(org.id)).total == 0
    finally:
        remove()


async def test_a_channel_is_found_by_its_exact_name(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    other = await registry.create_org("Other plant")
    channel = await registry.create_channel(org.id, name="Press_1")
    await registry.create_channel(org.id, name="Press_10")
    assert await registry.channel_named(org.id, "Press_1") == channel
    assert await registry.channel_named(org.id, "Press_") is None  # no pattern matching
    assert await registry.channel_named(other.id, "Press_1") is None
