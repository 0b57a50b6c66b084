"""Label provisioners against the real services: PostgreSQL, and the registry."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from shopfloor.agents import AgentRef, InvalidAgentSpec, MqttProvisioner, PostgresProvisioner
from shopfloor.auth import ThingKeys
from shopfloor.core import create_engine
from shopfloor.registry import Registry

from ..conftest import POSTGRES_ADMIN_URL as POSTGRES_URL


async def test_an_agent_gets_a_database_of_its_own_and_loses_it() -> None:
    provisioner = PostgresProvisioner(POSTGRES_URL)
    press, oven = AgentRef("org-1", "press-7"), AgentRef("org-1", "oven-2")
    try:
        granted = await provisioner.provision(press, "true")
        await provisioner.provision(oven, "true")
        env = granted.env
        assert (
            env["PGPASSWORD"] in granted.secrets
            and env["SHOPFLOOR_POSTGRES_URL"] in granted.secrets
        )
        own = create_engine(env["SHOPFLOOR_POSTGRES_URL"])
        try:
            async with own.begin() as conn:
                await conn.execute(sa.text("CREATE TABLE readings (v float)"))
                await conn.execute(sa.text("INSERT INTO readings VALUES (1.5)"))
                assert await conn.scalar(sa.text("SELECT current_user")) == env["PGUSER"]
        finally:
            await own.dispose()
        # Not into another agent's database: CONNECT is the database owner's only. (The
        # test server trusts local connections, so passwords are not what is proven here.)
        other_db = oven.slug("sf_db")
        foreign = create_engine(env["SHOPFLOOR_POSTGRES_URL"].rsplit("/", 1)[0] + f"/{other_db}")
        try:
            with pytest.raises(sa.exc.DBAPIError):
                async with foreign.connect():
                    pass
        finally:
            await foreign.dispose()
        # Provisioning again: the same role and database, a working new password.
        again = await provisioner.provision(press, "true")
        assert again.env["PGUSER"] == env["PGUSER"] and again.env["PGPASSWORD"] != env["PGPASSWORD"]
        renewed = create_engine(again.env["SHOPFLOOR_POSTGRES_URL"])
        try:
            async with renewed.connect() as conn:
                assert await conn.scalar(sa.text("SELECT v FROM readings")) == 1.5
        finally:
            await renewed.dispose()
    finally:
        await provisioner.deprovision(press)
        await provisioner.deprovision(oven)
    admin = create_engine(POSTGRES_URL)
    try:
        async with admin.connect() as conn:
            roles = await conn.scalar(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname = :r"),
                {"r": press.slug("sf_agent")},
            )
            dbs = await conn.scalar(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :d"),
                {"d": press.slug("sf_db")},
            )
    finally:
        await admin.dispose()
    assert (roles, dbs) == (0, 0)
    await provisioner.deprovision(press)  # nothing left to remove: no error


def test_slugs_are_identifiers_and_never_shared() -> None:
    a, b = AgentRef("org-1", "press-7"), AgentRef("org-2", "press-7")
    assert a.slug("sf_db") != b.slug("sf_db")
    long = AgentRef("org-1", "x" * 63)
    assert len(long.slug("sf_agent")) <= 63
    assert all(c.isalnum() or c == "_" for c in long.slug("sf_agent"))


@pytest.fixture
async def registry(tmp_path: object) -> AsyncIterator[Registry]:
    registry = await Registry.open("sqlite://", ThingKeys(secrets.token_bytes(32)))
    try:
        yield registry
    finally:
        await registry.close()


async def test_an_agent_gets_a_thing_of_its_own_on_its_channels(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    existing = await registry.create_channel(org.id, name="alarms")
    provisioner = MqttProvisioner(registry, mqtt_url="mqtt://edge:1883")
    agent = AgentRef(org.id, "press-7")
    granted = await provisioner.provision(agent, "press-7 telemetry, alarms")
    env = granted.env
    thing = await registry.thing_by_key(env["SHOPFLOOR_THING_KEY"])
    assert thing is not None and thing.id == env["SHOPFLOOR_THING_ID"] and "agent" in thing.tags
    channels = json.loads(env["SHOPFLOOR_CHANNELS"])
    assert [c["name"] for c in channels] == ["press-7 telemetry", "alarms"]
    assert channels[1]["id"] == existing.id
    for channel in channels:
        assert await registry.connection(channel["id"], thing.id) is not None
    assert (
        env["SHOPFLOOR_MQTT_URL"] == "mqtt://edge:1883"
        and env["SHOPFLOOR_THING_KEY"] in granted.secrets
    )
    again = await provisioner.provision(agent, "press-7 telemetry, alarms")
    assert again.env["SHOPFLOOR_THING_ID"] == thing.id  # one identity per agent
    assert (await registry.list_things(org.id)).total == 1
    await provisioner.deprovision(agent)
    assert (await registry.list_things(org.id)).total == 0
    await provisioner.deprovision(agent)


async def test_the_mqtt_label_names_channels(registry: Registry) -> None:
    org = await registry.create_org("Plant")
    with pytest.raises(InvalidAgentSpec) as caught:
        await MqttProvisioner(registry).provision(AgentRef(org.id, "p"), "true")
    assert caught.value.code == "invalid_provisioning_label"
