"""The demo plant: seeded once, described the same at every start."""

from __future__ import annotations

from shopfloor.auth.capability import IdentityService
from shopfloor.demo import DEMO_CHANNEL, seed_demo

from .conftest import Api


async def test_the_demo_channel_is_found_by_its_own_name(api: Api) -> None:
    registry = api.platform.get(IdentityService).registry
    first = await seed_demo(registry, admin_email="")
    assert first.created and first.channel_id
    # An agent's channel whose name holds the demo channel's (and sorts before it).
    await registry.create_channel(first.org_id, name=f"mill-1 {DEMO_CHANNEL}")
    again = await seed_demo(registry, admin_email="")
    assert not again.created
    assert again.channel_id == first.channel_id
    assert {thing.name for thing in again.things} == {"press-01", "oven-02", "compressor-03"}
