"""What the agents tests share."""

from __future__ import annotations

from shopfloor.agents.capability import AgentsService
from shopfloor.core import Platform


async def remove_all_agents(platform: Platform) -> None:
    """Agents outlive the platform by design: a test ends every one it started. Deleted
    through the reconciler (which would start again an agent whose process alone was
    removed), then whatever the runtime still has."""
    service = platform.get(AgentsService)
    for record in await service.agents.store.all():
        await service.agents.delete(record.org_id, record.name, wait=30)
    for key in await service.runtime.observe():
        await service.runtime.remove(key)
