"""`Managers`: a Manager for every shell listed in the table `aas_topics`, and the
service's `Invoker` (an Operation goes to the Manager of the shell it belongs to).

A shell gets a Manager when it is added (`POST /api/v1/aas/managers`, `add`) and keeps
it until it is removed; the list lives in the database, so a restarted platform starts
the same Managers. The process that runs the aas service runs them all on one
transport: it starts or stops Managers at once for changes made through it, and finds
changes made through another process within `poll` seconds. A Manager that cannot
start (the broker is down, its shell was deleted) is `failed` and is tried again after
a capped, randomised backoff; so is the transport.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfloor.core import Backoff, Lifecycle, first_set

from ._errors import AasConflict, AasNotFound, AasUnavailable
from ._invoke import ExecutionState, Invocation, InvocationResult, Unmanaged
from ._manager import Manager
from ._store import AasStore, Kind
from ._tables import aas_topics
from .protocol import State, topic_for
from .transports import Transport, create_transport

__all__ = ["ManagerInfo", "Managers"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]
RETRY = Backoff(base=0.5, cap=30.0, min_fraction=0.5)


@dataclass(frozen=True, slots=True)
class ManagerInfo:
    org_id: str
    aas_id: str
    topic: str
    created_at: datetime
    #: The Manager's state; `failed` while it waits to start again, None before it tried.
    state: State | None
    #: The Core's last published state, None before it published one.
    core_state: State | None
    #: Why it failed, while `failed`.
    error: str | None = None
    #: The agent deployed as its Core (`shopfloor.provision.aas`), if one is.
    core_agent: str | None = None


class Managers(Lifecycle):
    def __init__(
        self, engine: AsyncEngine, store: AasStore, transport_url: str, *, poll: float = 10.0
    ) -> None:
        super().__init__()
        self._engine = engine
        self._store = store
        self._transport_url = transport_url
        self._poll = poll
        self._known: set[Key] = set()
        self._running: dict[Key, Manager] = {}
        self._failed: dict[Key, str] = {}
        #: Why the transport cannot be opened, while it cannot.
        self._transport_error: str | None = None
        self._changed = asyncio.Event()
        #: Notified whenever a Manager starts or stops.
        self._roster = asyncio.Condition()

    async def _start(self, stack: AsyncExitStack) -> None:
        await self.spawn("aas-managers", self._run)

    # -- the list --------------------------------------------------------------------

    async def add(self, org_id: str, aas_id: str) -> ManagerInfo:
        """Give the shell a Manager (`AasNotFound` without the shell, `AasConflict` if
        it has one already)."""
        await self._store.get(org_id, Kind.SHELL, aas_id)
        row = {
            "org_id": org_id,
            "aas_id": aas_id,
            "topic": topic_for(org_id, aas_id),
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(aas_topics.insert().values(**row))
        except IntegrityError as exc:
            raise AasConflict(
                f"the shell {aas_id!r} has a Manager already", code="aas_manager_exists"
            ) from exc
        self._known.add((org_id, aas_id))
        self._changed.set()
        return self._info(row)

    async def claim(self, org_id: str, aas_id: str, agent: str) -> ManagerInfo:
        """Make the agent `agent` the shell's Core: the Manager it has, or a new one
        that goes with the agent (`release`). `AasNotFound` without the shell,
        `AasConflict` (`aas_core_taken`) while another agent is its Core."""
        await self._store.get(org_id, Kind.SHELL, aas_id)
        t = aas_topics
        where = (t.c.org_id == org_id, t.c.aas_id == aas_id)
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(t).where(*where))).first()
            if row is None:
                values = {
                    "org_id": org_id,
                    "aas_id": aas_id,
                    "topic": topic_for(org_id, aas_id),
                    "created_at": datetime.now(UTC),
                    "core_agent": agent,
                    "for_agent": True,
                }
                try:
                    await conn.execute(t.insert().values(**values))
                except IntegrityError as exc:  # another process made it meanwhile
                    raise AasConflict(
                        f"the shell {aas_id!r} got a Manager meanwhile; try again",
                        code="aas_manager_exists",
                    ) from exc
            elif row.core_agent not in (None, agent):
                raise AasConflict(
                    f"the agent {row.core_agent!r} is the Core of {aas_id!r} already",
                    code="aas_core_taken",
                )
            else:
                await conn.execute(t.update().where(*where).values(core_agent=agent))
            stored = (await conn.execute(sa.select(t).where(*where))).one()
        self._known.add((org_id, aas_id))
        self._changed.set()
        return self._info(stored._asdict())

    async def release(self, org_id: str, agent: str) -> None:
        """The agent is no shell's Core any more: the Managers made for it are removed,
        the others stay, waiting for a Core."""
        t = aas_topics
        mine = (t.c.org_id == org_id, t.c.core_agent == agent)
        async with self._engine.begin() as conn:
            await conn.execute(t.delete().where(*mine, t.c.for_agent.is_(True)))
            await conn.execute(t.update().where(*mine).values(core_agent=None))
        self._changed.set()

    async def remove(self, org_id: str, aas_id: str) -> None:
        t = aas_topics
        async with self._engine.begin() as conn:
            deleted = await conn.execute(
                t.delete().where(t.c.org_id == org_id, t.c.aas_id == aas_id)
            )
        if not deleted.rowcount:
            raise AasNotFound(f"the shell {aas_id!r} has no Manager", code="aas_manager_not_found")
        self._changed.set()

    async def get(self, org_id: str, aas_id: str) -> ManagerInfo:
        t = aas_topics
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(t).where(t.c.org_id == org_id, t.c.aas_id == aas_id))
            ).first()
        if row is None:
            raise AasNotFound(f"the shell {aas_id!r} has no Manager", code="aas_manager_not_found")
        return self._info(row._asdict())

    async def list(self, org_id: str) -> list[ManagerInfo]:
        t = aas_topics
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(sa.select(t).where(t.c.org_id == org_id).order_by(t.c.aas_id))
            ).all()
        return [self._info(row._asdict()) for row in rows]

    def running(self, org_id: str, aas_id: str) -> Manager | None:
        return self._running.get((org_id, aas_id))

    def _info(self, row: dict[str, object]) -> ManagerInfo:
        key = (str(row["org_id"]), str(row["aas_id"]))
        manager = self._running.get(key)
        error = self._failed.get(key) or self._transport_error
        created = row["created_at"]
        assert isinstance(created, datetime)
        return ManagerInfo(
            org_id=key[0],
            aas_id=key[1],
            topic=str(row["topic"]),
            created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
            state=manager.state if manager else State.FAILED if error else None,
            core_state=manager.peer_state if manager else None,
            error=error if manager is None else None,
            core_agent=_optional(row.get("core_agent")),
        )

    # -- invoking --------------------------------------------------------------------

    async def invoke(self, invocation: Invocation) -> InvocationResult:
        org_id = invocation.org_id
        if invocation.aas_id is not None:
            key = (org_id, invocation.aas_id)
            manager = self._running.get(key)
            if manager is None and key in self._known:
                manager = await self._started(key, within=invocation.timeout)
            if manager is None and key in self._known:
                reason = self._failed.get(key) or self._transport_error or "it is starting"
                return InvocationResult(
                    execution_state=ExecutionState.FAILED,
                    success=False,
                    messages=(f"the Manager of {invocation.aas_id!r} is not running: {reason}",),
                )
        else:
            manager = None
            for (org, _), candidate in list(self._running.items()):
                if org == org_id and await candidate.serves(invocation.submodel_id):
                    manager = candidate
                    break
        if manager is None:
            return await Unmanaged().invoke(invocation)
        return await manager.invoke(invocation)

    async def _started(self, key: Key, *, within: float) -> Manager | None:
        """The Manager of `key` once it started, or None after `within` seconds."""
        async with self._roster:
            try:
                await asyncio.wait_for(self._roster.wait_for(lambda: key in self._running), within)
            except TimeoutError:
                return None
        return self._running[key]

    async def _tell_roster(self) -> None:
        async with self._roster:
            self._roster.notify_all()

    # -- running them ----------------------------------------------------------------

    async def _run(self, stopping: asyncio.Event) -> None:
        transport = create_transport(self._transport_url)
        try:
            await transport.open()
        except AasUnavailable as exc:
            self._transport_error = str(exc)
            raise
        self._transport_error = None
        stops: dict[Key, asyncio.Event] = {}
        try:
            async with asyncio.TaskGroup() as group:
                while not stopping.is_set():
                    self._changed.clear()
                    wanted = await self._wanted()
                    self._known = set(wanted)
                    for key, topic in wanted.items():
                        if key not in stops:
                            stops[key] = stop = asyncio.Event()
                            group.create_task(
                                self._run_one(transport, key, topic, stop),
                                name=f"aas-manager-{topic}",
                            )
                    for key in set(stops) - set(wanted):
                        stops.pop(key).set()
                    await first_set(self._changed, stopping, within=self._poll)
                # Each Manager says `stopping` and `idle` before the transport closes.
                for stop in stops.values():
                    stop.set()
        finally:
            await transport.close()

    async def _wanted(self) -> dict[Key, str]:
        t = aas_topics
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.c.org_id, t.c.aas_id, t.c.topic))).all()
        return {(row.org_id, row.aas_id): row.topic for row in rows}

    async def _run_one(
        self, transport: Transport, key: Key, topic: str, stop: asyncio.Event
    ) -> None:
        failures = 0
        while not stop.is_set():
            manager = Manager(self._store, transport, org_id=key[0], aas_id=key[1], topic=topic)
            try:
                async with manager:
                    self._running[key] = manager
                    self._failed.pop(key, None)
                    failures = 0
                    await self._tell_roster()
                    await stop.wait()
                return
            except Exception as exc:
                failures += 1
                self._failed[key] = str(exc)
                delay = RETRY.delay(failures)
                logger.warning("AAS Manager of %s failed (%s); again in %.1f s", key[1], exc, delay)
                await first_set(stop, within=delay)
            finally:
                if self._running.get(key) is manager:
                    del self._running[key]
        self._failed.pop(key, None)


def _optional(value: object) -> str | None:
    return None if value is None else str(value)
