"""The demo plant `make run` seeds on an empty data dir, so a newcomer sees data at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shopfloor.registry import Registry, Role

logger = logging.getLogger(__name__)

DEMO_ORG = "Demo Plant"
DEMO_CHANNEL = "telemetry"
DEMO_THINGS: dict[str, dict[str, object]] = {
    "press-01": {"kind": "hydraulic press", "line": "A", "vendor": "Schuler"},
    "oven-02": {"kind": "curing oven", "line": "A", "vendor": "Nabertherm"},
    "compressor-03": {"kind": "screw compressor", "line": "utilities", "vendor": "Atlas Copco"},
}


@dataclass(frozen=True, slots=True)
class DemoThing:
    id: str
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class DemoPlant:
    org_id: str
    channel_id: str
    things: tuple[DemoThing, ...]
    created: bool


async def seed_demo(registry: Registry, *, admin_email: str) -> DemoPlant:
    """Create the demo plant if the registry has no organisation yet; describe it either way."""
    org = await registry.find_org(DEMO_ORG)
    created = False
    if org is None:
        if (await registry.list_orgs(limit=1)).total > 0:
            raise RuntimeError("the registry holds other organisations; the demo is not seeded")
        org = await registry.create_org(DEMO_ORG)
        channel = await registry.create_channel(
            org.id, name=DEMO_CHANNEL, metadata={"description": "machine telemetry"}
        )
        for name, metadata in DEMO_THINGS.items():
            thing, _key = await registry.create_thing(
                org.id, name=name, metadata=metadata, tags=["demo", str(metadata["line"])]
            )
            await registry.connect(org.id, channel.id, thing.id)
        created = True
        logger.info("seeded the demo plant %s", org.id)
    admin = await registry.find_user_by_email(admin_email) if admin_email else None
    if admin is not None and admin.org_id is None:
        await registry.update_user(admin.id, org_id=org.id, role=Role.ADMIN)
    # By its exact name: a listing's `name` filter also matches "mill-1 telemetry".
    demo_channel = await registry.channel_named(org.id, DEMO_CHANNEL)
    things = await registry.list_things(org.id, tag="demo", limit=100)
    return DemoPlant(
        org_id=org.id,
        channel_id=demo_channel.id if demo_channel is not None else "",
        things=tuple(DemoThing(t.id, t.name, registry.thing_key(t)) for t in things.items),
        created=created,
    )
