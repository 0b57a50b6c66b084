"""Shipped logs: the output of agents labelled `shopfloor.provision.logs=true`, copied
from the runtime into the `agent_logs` table, credentials redacted, searchable.

One follower per such agent reads `runtime.logs(follow=True)` from the last line
shipped; lines are written in batches (every quarter second, or 500 lines). After a
platform restart shipping resumes after the newest stored line: lines stamped with
exactly that instant (microseconds) and not yet stored are skipped, the one loss
possible. The oldest lines beyond `retention_lines` per agent are pruned every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ._agents import Agents, redact
from ._errors import AgentError
from ._runtime import LogLine
from ._spec import provisioning_labels
from ._store import AgentRecord
from ._tables import agent_logs

__all__ = ["LogShipper", "ships_logs"]

logger = logging.getLogger(__name__)

BATCH_LINES = 500
BATCH_SECONDS = 0.25
PRUNE_SECONDS = 60.0


def ships_logs(record: AgentRecord) -> bool:
    return "logs" in provisioning_labels(record.spec.labels)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LogShipper:
    def __init__(self, engine: AsyncEngine, agents: Agents, *, retention_lines: int) -> None:
        self._engine = engine
        self._agents = agents
        self._retention = retention_lines
        self._followers: dict[str, asyncio.Task[None]] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        pruned = time.monotonic()
        try:
            while not stopping.is_set():
                records = await self._agents.store.all()
                wanted = {r.key: r for r in records if ships_logs(r) and not r.deleting}
                for key in self._followers.keys() - wanted.keys():
                    self._followers.pop(key).cancel()
                for key, record in wanted.items():
                    follower = self._followers.get(key)
                    if follower is None or follower.done():
                        self._followers[key] = asyncio.get_running_loop().create_task(
                            self._follow(record), name=f"agent-logs {key}"
                        )
                if time.monotonic() - pruned > PRUNE_SECONDS:
                    pruned = time.monotonic()
                    await self._prune(list(wanted.values()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=1.0)
        finally:
            followers = list(self._followers.values())
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            self._followers.clear()

    async def _follow(self, record: AgentRecord) -> None:
        last = await self._newest(record)
        lines: asyncio.Queue[LogLine] = asyncio.Queue(maxsize=BATCH_LINES * 4)

        async def read() -> None:
            while True:
                try:
                    async for line in self._agents.runtime.logs(
                        record.key, tail=100_000, since=last, follow=True
                    ):
                        if last is None or line.time > last:
                            await lines.put(line)
                    return
                except AgentError:
                    await asyncio.sleep(1.0)  # not in the runtime yet

        reader = asyncio.get_running_loop().create_task(
            read(), name=f"agent-logs-read {record.key}"
        )
        try:
            while not reader.done() or not lines.empty():
                batch = [await lines.get()]
                deadline = time.monotonic() + BATCH_SECONDS
                while len(batch) < BATCH_LINES and time.monotonic() < deadline:
                    try:
                        batch.append(lines.get_nowait())
                    except asyncio.QueueEmpty:
                        await asyncio.sleep(BATCH_SECONDS / 5)
                await self._store(record, batch)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _store(self, record: AgentRecord, batch: list[LogLine]) -> None:
        secrets = self._agents.secrets_of(record)
        rows = [
            {"org_id": record.org_id, "name": record.name, "time": line.time,
             "stream": line.stream, "text": redact(line, secrets).text}
            for line in batch
        ]  # fmt: skip
        async with self._engine.begin() as conn:
            await conn.execute(agent_logs.insert(), rows)

    async def _newest(self, record: AgentRecord) -> datetime | None:
        async with self._engine.connect() as conn:
            newest = await conn.scalar(
                sa.select(sa.func.max(agent_logs.c.time)).where(*_of(record.org_id, record.name))
            )
        return None if newest is None else _utc(newest)

    async def _prune(self, records: list[AgentRecord]) -> None:
        for record in records:
            async with self._engine.begin() as conn:
                keep_from = await conn.scalar(
                    sa.select(agent_logs.c.id)
                    .where(*_of(record.org_id, record.name))
                    .order_by(agent_logs.c.id.desc())
                    .offset(self._retention)
                    .limit(1)
                )
                if keep_from is not None:
                    await conn.execute(
                        agent_logs.delete().where(
                            *_of(record.org_id, record.name), agent_logs.c.id <= keep_from
                        )
                    )

    async def read(
        self,
        org_id: str,
        name: str,
        *,
        tail: int,
        since: datetime | None,
        search: str | None,
        follow: bool,
        poll: float = 0.5,
    ) -> AsyncIterator[LogLine]:
        """Shipped lines, oldest first: the last `tail` (after `since`, holding `search`),
        then with `follow` new ones as they are stored."""
        where = list(_of(org_id, name))
        if since is not None:
            where.append(agent_logs.c.time >= since)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(agent_logs.c.text.like(f"%{escaped}%", escape="\\"))
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(agent_logs).where(*where).order_by(agent_logs.c.id.desc()).limit(tail)
                )
            ).all()
        last_id = 0
        for row in reversed(rows):
            last_id = max(last_id, row.id)
            yield LogLine(_utc(row.time), row.stream, row.text)
        if not follow:
            return
        if not rows:
            async with self._engine.connect() as conn:
                last_id = await conn.scalar(sa.select(sa.func.max(agent_logs.c.id))) or 0
        while True:
            await asyncio.sleep(poll)
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.select(agent_logs)
                        .where(*where, agent_logs.c.id > last_id)
                        .order_by(agent_logs.c.id)
                        .limit(1000)
                    )
                ).all()
            for row in rows:
                last_id = row.id
                yield LogLine(_utc(row.time), row.stream, row.text)


def _of(org_id: str, name: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (agent_logs.c.org_id == org_id, agent_logs.c.name == name)
