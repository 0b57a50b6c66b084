"""The bootstrap tables, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import shopfloor.bootstrap
from shopfloor.auth import ThingKeys
from shopfloor.bootstrap import (
    Challenges,
    ConfigNotFound,
    ConfigStore,
    SealedFields,
    State,
    UnknownDevices,
)
from shopfloor.core import MigrationChain, create_engine, migrate
from shopfloor.registry import MIGRATIONS, NotFound, Registry

CHAIN = MigrationChain(
    "bootstrap",
    Path(shopfloor.bootstrap.__file__).parent / "migrations",
    "alembic_version_bootstrap",
)


@dataclass
class Db:
    engine: AsyncEngine
    registry: Registry
    store: ConfigStore
    org_id: str
    thing_id: str
    channel_id: str


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    engine = create_engine(database_url)
    try:
        await migrate(engine, [MIGRATIONS, CHAIN])
        await migrate(engine, [MIGRATIONS, CHAIN])  # idempotent
        registry = Registry(engine, ThingKeys(secrets.token_bytes(32)))
        org = await registry.create_org("Plant")
        thing, _ = await registry.create_thing(org.id, name="press")
        channel = await registry.create_channel(org.id, name="line")
        store = ConfigStore(engine, SealedFields(secrets.token_bytes(32)))
        yield Db(engine, registry, store, org.id, thing.id, channel.id)
    finally:
        await engine.dispose()


class _Rollback(Exception):
    pass


async def test_create_inside_the_callers_transaction(db: Db) -> None:
    key = secrets.token_urlsafe(24)
    with pytest.raises(_Rollback):
        async with db.engine.begin() as conn:
            made = await db.store.create(
                db.org_id, thing_id=db.thing_id, external_id="ext-1", external_key=key,
                channels=[db.channel_id], conn=conn,
            )  # fmt: skip
            assert (await db.store.get(db.org_id, db.thing_id, conn=conn)) == made
            raise _Rollback  # the provisioning step failed later on
    assert await db.store.by_external_id("ext-1") is None

    async with db.engine.begin() as conn:
        await db.store.create(
            db.org_id, thing_id=db.thing_id, external_id="ext-1", external_key=key,
            channels=[db.channel_id], conn=conn,
        )  # fmt: skip
        await db.store.set_state(db.org_id, db.thing_id, State.ACTIVE, conn=conn)
    config = await db.store.get(db.org_id, db.thing_id)
    assert config.name == "press" and config.state is State.ACTIVE
    assert config.channels == (db.channel_id,)
    assert db.store.external_key(config) == key
    assert db.store.sealed.matches(key, config.external_key_digest)
    page = await db.store.page(db.org_id, state=State.ACTIVE)
    assert page.total == 1 and page.items[0].thing_id == db.thing_id


async def test_keys_are_sealed_and_bound_to_their_row(db: Db) -> None:
    key = secrets.token_urlsafe(24)
    await db.store.create(
        db.org_id, thing_id=db.thing_id, external_id="ext-2", external_key=key,
        client_key="PRIVATE-KEY-PEM",
    )  # fmt: skip
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.text("SELECT * FROM bootstrap_configs"))).one()
    assert key not in repr(row) and "PRIVATE-KEY-PEM" not in repr(row)
    with pytest.raises(ValueError):  # a ciphertext moved to another column does not open
        db.store.sealed.open("client_key", db.thing_id, row.external_key_sealed)
    config = await db.store.get(db.org_id, db.thing_id)
    assert db.store.client_key(config) == "PRIVATE-KEY-PEM"


async def test_things_and_channels_of_the_org_only(db: Db) -> None:
    other = await db.registry.create_org("Other")
    theirs = await db.registry.create_channel(other.id, name="theirs")
    key = secrets.token_urlsafe(24)
    with pytest.raises(NotFound):
        await db.store.create(other.id, thing_id=db.thing_id, external_id="x", external_key=key)
    with pytest.raises(NotFound):
        await db.store.create(
            db.org_id, thing_id=db.thing_id, external_id="x", external_key=key,
            channels=[theirs.id],
        )  # fmt: skip
    await db.store.create(db.org_id, thing_id=db.thing_id, external_id="x", external_key=key)
    with pytest.raises(ConfigNotFound):
        await db.store.get(other.id, db.thing_id)


async def test_deleting_the_thing_deletes_the_config(db: Db) -> None:
    key = secrets.token_urlsafe(24)
    await db.store.create(db.org_id, thing_id=db.thing_id, external_id="x", external_key=key)
    await db.registry.delete_thing(db.org_id, db.thing_id)
    assert await db.store.by_external_id("x") is None


async def test_challenges_answer_once_and_expire(db: Db) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    challenges = Challenges(db.engine, ttl_seconds=60, clock=lambda: now[0])
    issued = await challenges.issue("dev")
    assert not await challenges.consume("other", issued)
    results = await asyncio.gather(*(challenges.consume("dev", issued) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]  # single use, also when raced
    late = await challenges.issue("dev")
    now[0] += timedelta(seconds=60)
    assert not await challenges.consume("dev", late)
    await challenges.issue("dev")  # prunes what expired
    async with db.engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM bootstrap_challenges")) == 1


async def test_unknown_devices_are_counted_and_capped(db: Db) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    unknown = UnknownDevices(db.engine, max_rows=10, clock=lambda: now[0])
    for i in range(25):
        now[0] += timedelta(seconds=1)
        await unknown.record(f"scan-{i:02d}", "10.0.0.9")
    now[0] += timedelta(seconds=1)
    await unknown.record("scan-24", "10.0.0.10")
    page = await unknown.page()
    assert page.total == 10
    assert [d.external_id for d in page.items][:2] == ["scan-24", "scan-23"]
    assert page.items[0].attempts == 2 and page.items[0].last_address == "10.0.0.10"
    assert {d.external_id for d in page.items} == {f"scan-{i:02d}" for i in range(15, 25)}
