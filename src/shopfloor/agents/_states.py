"""The states agents report: `publish_state`'s path through the platform, beside gRPC.

An agent built on `shopfloor.sdk.Agent` sends each state it publishes to
`PUT /api/v1/agents/{name}/state`, signed in as itself (an agent assertion, see
`shopfloor.pki`). The platform keeps the last one per agent and announces it on the
bus (`agents.<org>.<name>.reported`), so a follower that cannot reach the agent over
gRPC follows `GET /api/v1/agents/{name}/state?follow=true` in any process of the
deployment instead: the last state, then each new one, and the agent's observed state
(`status`) at the start and whenever the reconciler sees it change. A follower takes
an agent that is not running as gone, whatever it said last.

A run of an agent (one start of its process) numbers its states 1, 2, ...; a report
of the run held with a sequence not above the held one arrives late and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfloor.core import ErrorKind
from shopfloor.messaging import Event, EventHub

from ._errors import AgentNotFound, InvalidAgentState
from ._store import AgentStore
from ._tables import agent_states

__all__ = ["MAX_STATE_BYTES", "AgentStates", "ReportedState", "StateFeedItem", "reported_subject"]

#: The largest state an agent may report, as JSON.
MAX_STATE_BYTES = 64 * 1024
KEEPALIVE_SECONDS = 15.0
_QUEUED = 256


def reported_subject(org_id: str, name: str) -> str:
    return f"agents.{org_id}.{name}.reported"


@dataclass(frozen=True, slots=True)
class ReportedState:
    name: str
    run: str
    sequence: int
    state: dict[str, Any]
    published_at: datetime
    reported_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.name, "run": self.run, "sequence": self.sequence,
            "state": self.state, "published_at": self.published_at.isoformat(),
            "reported_at": self.reported_at.isoformat(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportedState:
        return cls(
            name=str(data["agent"]), run=str(data["run"]), sequence=int(data["sequence"]),
            state=dict(data["state"]),
            published_at=datetime.fromisoformat(data["published_at"]),
            reported_at=datetime.fromisoformat(data["reported_at"]),
        )  # fmt: skip


#: What a follower gets: ("state", ReportedState), ("status", the observed state and
#: what the reconciler said with it), or None (a keep-alive).
StateFeedItem = tuple[str, Any] | None


class AgentStates:
    """Reported states: kept in `agent_states`, announced on the bus, followed."""

    def __init__(self, engine: AsyncEngine, store: AgentStore, events: EventHub) -> None:
        self._engine = engine
        self._store = store
        self._events = events
        self._closed = asyncio.Event()

    def close(self) -> None:
        """End the feeds being followed (the service stops)."""
        self._closed.set()

    async def report(
        self, org_id: str, name: str, *, run: str, sequence: int,
        state: dict[str, Any], published_at: datetime,
    ) -> tuple[ReportedState, bool]:  # fmt: skip
        """Keep `state` as agent `name`'s last, unless one held is newer; the one held
        after, and whether it is this one."""
        if len(json.dumps(state)) > MAX_STATE_BYTES:
            raise InvalidAgentState(
                f"a state is at most {MAX_STATE_BYTES // 1024} KiB of JSON",
                code="agent_state_too_large", kind=ErrorKind.TOO_LARGE,
            )  # fmt: skip
        await self._store.get(org_id, name)  # AgentNotFound
        reported = ReportedState(
            name, run, sequence, state, published_at.astimezone(UTC), datetime.now(UTC)
        )
        values = {
            "run": run, "sequence": sequence, "state": state,
            "published_at": reported.published_at, "reported_at": reported.reported_at,
        }  # fmt: skip
        table = agent_states
        where = sa.and_(table.c.org_id == org_id, table.c.name == name)
        newer = sa.or_(table.c.run != run, table.c.sequence < sequence)
        for _ in range(2):  # a first report racing another: the insert loses, update again
            async with self._engine.begin() as conn:
                updated = await conn.execute(table.update().where(where, newer).values(**values))
                if updated.rowcount:
                    break
                held = (await conn.execute(sa.select(table).where(where))).first()
                if held is not None:
                    return _reported(name, held), False
                try:
                    await conn.execute(table.insert().values(org_id=org_id, name=name, **values))
                except IntegrityError:
                    continue
                break
        self._events.emit(reported_subject(org_id, name), {"org_id": org_id, **reported.to_json()})
        return reported, True

    async def last(self, org_id: str, name: str) -> ReportedState | None:
        table = agent_states
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(table).where(table.c.org_id == org_id, table.c.name == name)
                )
            ).first()
        return None if row is None else _reported(name, row)

    async def follow(
        self, org_id: str, name: str, *, keepalive: float = KEEPALIVE_SECONDS
    ) -> AsyncIterator[StateFeedItem]:
        """The agent's status and last state, then each change of either, until the
        agent is deleted or the service stops."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=_QUEUED)

        def heard(event: Event) -> None:
            if queue.full():  # a slow follower wants the newest, not every one
                queue.get_nowait()
            queue.put_nowait(event)

        with self._events.listen(f"agents.{org_id}.{name}.>", heard):  # before reading
            try:
                record = await self._store.get(org_id, name)
            except AgentNotFound:  # deleted since the route looked
                yield "status", {"state": "deleted"}
                return
            yield "status", {"state": record.status.state.value, "version": record.status.version}
            held = await self.last(org_id, name)
            if held is not None:
                yield "state", held
            while not self._closed.is_set():
                event = await _next(queue, self._closed, keepalive)
                if event is None:
                    yield None
                elif event.subject.endswith(".reported"):
                    try:
                        change = ReportedState.from_json(dict(event.data))
                    except (KeyError, TypeError, ValueError):
                        continue
                    if held is None or change.run != held.run or change.sequence > held.sequence:
                        held = change
                        yield "state", change
                elif event.subject.endswith(".state"):
                    data = {k: v for k, v in event.data.items() if k not in ("org_id", "name")}
                    yield "status", data
                    if data.get("state") == "deleted":
                        return


async def _next(
    queue: asyncio.Queue[Event], closed: asyncio.Event, wait_seconds: float
) -> Event | None:
    if not queue.empty():
        return queue.get_nowait()
    getting = asyncio.ensure_future(queue.get())
    closing = asyncio.ensure_future(closed.wait())
    try:
        await asyncio.wait(
            {getting, closing}, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        closing.cancel()
        if not getting.done():
            getting.cancel()
    if getting.done() and not getting.cancelled():
        return getting.result()
    with contextlib.suppress(asyncio.CancelledError):
        await getting
    return None


def _reported(name: str, row: Any) -> ReportedState:
    def utc(value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    return ReportedState(
        name, row.run, int(row.sequence), dict(row.state), utc(row.published_at),
        utc(row.reported_at),
    )  # fmt: skip
