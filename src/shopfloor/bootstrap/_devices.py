"""What devices leave behind: secure-bootstrap challenges and unknown external ids.

Both live in the platform database, so any process of a split deployment answers the
`secure` step of a challenge another issued, and every process adds to one list.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.registry import Page

from . import _tables as t
from ._store import Clock, as_utc, utcnow
from ._types import UnknownDevice
from ._wire import b64encode, new_challenge


class Challenges:
    """Single-use challenges with an expiry; expired ones are pruned as new ones are issued."""

    def __init__(self, engine: AsyncEngine, *, ttl_seconds: float, clock: Clock = utcnow) -> None:
        self._engine = engine
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    async def issue(self, external_id: str) -> bytes:
        challenge = new_challenge()
        now = self.clock()
        async with self._engine.begin() as c:
            await c.execute(sa.delete(t.challenges).where(t.challenges.c.expires_at <= now))
            await c.execute(
                sa.insert(t.challenges).values(
                    challenge=b64encode(challenge),
                    external_id=external_id,
                    expires_at=now + timedelta(seconds=self.ttl_seconds),
                )
            )
        return challenge

    async def consume(self, external_id: str, challenge: bytes) -> bool:
        """True once for a challenge issued to `external_id` and not expired; False after."""
        async with self._engine.begin() as c:
            result = await c.execute(
                sa.delete(t.challenges).where(
                    t.challenges.c.challenge == b64encode(challenge),
                    t.challenges.c.external_id == external_id,
                    t.challenges.c.expires_at > self.clock(),
                )
            )
        return bool(result.rowcount == 1)


class UnknownDevices:
    """External ids without a configuration that asked to bootstrap, at most `max_rows`.

    Past the cap the least recently seen are forgotten, so a scanner trying ids
    cannot fill the disk; it only pushes older entries out.
    """

    def __init__(self, engine: AsyncEngine, *, max_rows: int, clock: Clock = utcnow) -> None:
        self._engine = engine
        self.max_rows = max_rows
        self.clock = clock

    async def record(self, external_id: str, address: str) -> None:
        now = self.clock()
        address = address[:64]
        async with self._engine.begin() as c:
            updated = await c.execute(
                sa.update(t.unknown)
                .where(t.unknown.c.external_id == external_id)
                .values(last_seen=now, attempts=t.unknown.c.attempts + 1, last_address=address)
            )
            if updated.rowcount:
                return
            try:
                await c.execute(
                    sa.insert(t.unknown).values(
                        external_id=external_id,
                        first_seen=now,
                        last_seen=now,
                        attempts=1,
                        last_address=address,
                    )
                )
            except sa.exc.IntegrityError:
                return  # recorded concurrently: one attempt less counted is fine
            await self._prune(c)

    async def _prune(self, c: AsyncConnection) -> None:
        total = int(await c.scalar(sa.select(sa.func.count()).select_from(t.unknown)) or 0)
        extra = total - self.max_rows
        if extra <= 0:
            return
        oldest = (
            sa.select(t.unknown.c.external_id)
            .order_by(t.unknown.c.last_seen, t.unknown.c.external_id)
            .limit(extra)
        )
        await c.execute(sa.delete(t.unknown).where(t.unknown.c.external_id.in_(oldest)))

    async def page(self, *, offset: int = 0, limit: int = 100) -> Page[UnknownDevice]:
        async with self._engine.connect() as c:
            total = await c.scalar(sa.select(sa.func.count()).select_from(t.unknown))
            rows = await c.execute(
                sa.select(t.unknown)
                .order_by(t.unknown.c.last_seen.desc(), t.unknown.c.external_id)
                .offset(offset)
                .limit(limit)
            )
            items = [
                UnknownDevice(
                    external_id=r.external_id,
                    first_seen=as_utc(r.first_seen),
                    last_seen=as_utc(r.last_seen),
                    attempts=r.attempts,
                    last_address=r.last_address,
                )
                for r in rows
            ]
        return Page(total=int(total or 0), offset=offset, limit=limit, items=items)
