"""The plant overview (the landing page `/`) and the simple lists of agents and flows.

Last seen and rate come from the stored telemetry (the readers' store), the only place
the platform keeps them: a thing's latest record on any of its channels, and the records
it published in the last five minutes, per minute. A store that is down shows "—" with
a note, never a made-up number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shopfloor.auth.capability import IdentityService
from shopfloor.registry import Registry, Thing
from shopfloor.storage import Query, StorageError, TimeseriesStore
from shopfloor.storage.capability import TimeseriesService

from ._pages import PREFIX
from ._web import SignedIn, console_page, platform_of, render, signed_in
from .routes import sign_in_page

__all__ = ["Activity", "activity_of", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

#: Things and channels the overview lists (the things page has them all).
OVERVIEW_ITEMS = 20
#: The window of the message rate, in seconds.
RATE_WINDOW = 300.0
#: Channels of one thing looked at for its last message.
CHANNELS_PER_THING = 20


@dataclass(frozen=True, slots=True)
class Activity:
    """What the stored telemetry tells of a thing (None: nothing stored, or unknown)."""

    last_seen: float | None
    per_minute: float | None


async def activity_of(
    registry: Registry, store: TimeseriesStore, thing: Thing, *, now: float
) -> Activity:
    """The latest record the thing published on any of its channels, and its records
    per minute over the last `RATE_WINDOW` seconds."""
    channels = await registry.thing_channels(thing.org_id, thing.id, limit=CHANNELS_PER_THING)
    last_seen: float | None = None
    records = 0.0
    for channel, _connection in channels.items:
        latest = await store.query(Query(channel=channel.id, publisher=thing.id, limit=1))
        if latest.messages:
            seen = latest.messages[0].time
            last_seen = seen if last_seen is None else max(last_seen, seen)
        counted = await store.query(
            Query(
                channel=channel.id,
                publisher=thing.id,
                from_=now - RATE_WINDOW,
                aggregation="count",
                limit=1000,
            )
        )
        records += sum(row.value or 0.0 for row in counted.messages)
    return Activity(last_seen=last_seen, per_minute=records * 60.0 / RATE_WINDOW)


@router.get("/")
async def overview(request: Request) -> Response:
    caller = await signed_in(request)
    if caller is None:  # a newcomer's first page: sign in right here
        return await sign_in_page(request)
    principal = caller.principal
    platform = platform_of(request)
    context: dict[str, object] = {
        "things": [], "channels": [], "agents": None, "flows": None, "certificates": None,
        "dashboards": None,
    }  # fmt: skip
    if principal.org_id is None:
        return render(request, "console/overview.html", context, caller=caller)
    org_id = principal.org_id
    registry = platform.get(IdentityService).registry
    things = await registry.list_things(org_id, limit=OVERVIEW_ITEMS)
    channels = await registry.list_channels(org_id, limit=OVERVIEW_ITEMS)
    store = platform.get(TimeseriesService).store
    now = time.time()
    store_down = False
    try:
        activities = await asyncio.gather(
            *(activity_of(registry, store, thing, now=now) for thing in things.items)
        )
    except StorageError as exc:
        logger.warning("the overview shows no activity: %s", exc)
        activities = [Activity(None, None) for _ in things.items]
        store_down = True
    connected = await asyncio.gather(
        *(registry.channel_things(org_id, channel.id, limit=1) for channel in channels.items)
    )
    context |= {
        "things": list(zip(things.items, activities, strict=True)),
        "things_total": things.total,
        "channels": [
            (channel, page.total) for channel, page in zip(channels.items, connected, strict=True)
        ],
        "channels_total": channels.total,
        "store_down": store_down,
        "rate_window": int(RATE_WINDOW / 60),
        "agents": await _agents(request, org_id),
        "flows": _flows(request, org_id),
        "certificates": await _certificates(request, org_id),
        "dashboards": await _dashboards(request, org_id),
    }
    return render(request, "console/overview.html", context, caller=caller)


async def _agents(request: Request, org_id: str) -> list[tuple[str, str]] | None:
    """(name, observed state) of the organisation's agents; None: no agents service here."""
    # Imported here: a console process without agents need not load their runtimes.
    from shopfloor.agents.capability import AgentsService

    platform = platform_of(request)
    if not platform.running(AgentsService):
        return None
    page = await platform.get(AgentsService).agents.store.page(
        org_id, offset=0, limit=OVERVIEW_ITEMS
    )
    return [(record.name, str(record.status.state)) for record in page.items]


def _flows(request: Request, org_id: str) -> list[tuple[str, str, str]] | None:
    """(id, name, state) of the organisation's flows; None: no flows service here."""
    from shopfloor.flows.capability import FlowsService

    platform = platform_of(request)
    if not platform.running(FlowsService):
        return None
    service = platform.get(FlowsService)
    states = (
        {state.flow_id: state.state for state in service.manager.statuses(org_id)}
        if service.manager is not None
        else {}
    )
    return [
        (doc.id, doc.name, states.get(doc.id, "stopped"))
        for doc in service.configs.flows(org_id)[:OVERVIEW_ITEMS]
    ]


async def _certificates(request: Request, org_id: str) -> tuple[int, object] | None:
    """How many certificates the organisation has, and the next one in force to expire;
    None: no certificate authority in this process."""
    from shopfloor.pki.capability import PkiService

    platform = platform_of(request)
    if not platform.running(PkiService):
        return None
    certs = platform.get(PkiService).certs
    total = (await certs.list(org_id, limit=1)).total
    soonest = await certs.list(org_id, limit=1, sort="expires_at", in_force_at=datetime.now(UTC))
    return total, (soonest.items[0] if soonest.items else None)


async def _dashboards(request: Request, org_id: str) -> list[tuple[str, str]] | None:
    """(id, title) of the organisation's dashboards; None: no dashboards service here."""
    from shopfloor.dashboards.capability import DashboardsService

    platform = platform_of(request)
    if not platform.running(DashboardsService):
        return None
    page = await platform.get(DashboardsService).store.page(org_id, limit=OVERVIEW_ITEMS)
    return [(dashboard.id, dashboard.document.title) for dashboard in page.items]


@router.get(PREFIX + "/agents")
async def agents_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        agents = await _agents(request, caller.principal.require_org())
        return render(request, "console/agents.html", {"agents": agents or []}, caller=caller)

    return await console_page(request, build)


@router.get(PREFIX + "/flows")
async def flows_page(request: Request) -> Response:
    async def build(caller: SignedIn) -> Response:
        flows = _flows(request, caller.principal.require_org())
        return render(request, "console/flows.html", {"flows": flows or []}, caller=caller)

    return await console_page(request, build)
