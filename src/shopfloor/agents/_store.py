"""The `agents` table: desired specs (as engineers wrote them), what was provisioned,
and what the reconciler last observed. Every change of a spec bumps `generation`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ._errors import AgentConflict, AgentNotFound
from ._runtime import ObservedState
from ._spec import AgentSpec
from ._tables import agent_logs, agent_states, agents

__all__ = ["AgentPage", "AgentRecord", "AgentStatus", "AgentStore", "Rollout"]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStatus:
    """What the reconciler last saw of an agent."""

    state: ObservedState = ObservedState.PENDING
    version: str = ""
    restarts: int = 0
    exit_code: int | None = None
    error: str = ""
    endpoint: str = ""
    started_at: datetime | None = None
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    """An upgrade under watch: rolled back unless `to_version` is healthy in time."""

    from_version: str
    to_version: str
    started_at: datetime
    deadline: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "started_at": self.started_at.isoformat(),
            "deadline": self.deadline.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rollout:
        return cls(
            from_version=str(data["from_version"]),
            to_version=str(data["to_version"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            deadline=datetime.fromisoformat(data["deadline"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRecord:
    org_id: str
    spec: AgentSpec
    generation: int
    created_at: datetime
    updated_at: datetime
    previous_spec: AgentSpec | None = None
    rollout: Rollout | None = None
    deleting: bool = False
    restarts_asked: int = 0
    provisioned: tuple[str, ...] = ()
    credentials: str | None = None  # sealed
    cert_serial: str | None = None
    cert_expires_at: datetime | None = None
    status: AgentStatus = field(default_factory=AgentStatus)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        return f"{self.org_id}/{self.spec.name}"


@dataclass(frozen=True, slots=True)
class AgentPage:
    total: int
    offset: int
    limit: int
    items: list[AgentRecord]


def _record(row: Any) -> AgentRecord:
    return AgentRecord(
        org_id=row.org_id,
        spec=AgentSpec.model_validate(row.spec),
        previous_spec=None
        if row.previous_spec is None
        else AgentSpec.model_validate(row.previous_spec),
        rollout=None if row.rollout is None else Rollout.from_json(row.rollout),
        generation=row.generation,
        deleting=bool(row.deleting),
        restarts_asked=row.restarts_asked,
        provisioned=tuple(row.provisioned or ()),
        credentials=row.credentials,
        cert_serial=row.cert_serial,
        cert_expires_at=_utc(row.cert_expires_at),
        status=AgentStatus(
            state=ObservedState(row.observed_state),
            version=row.observed_version,
            restarts=row.restarts,
            exit_code=row.exit_code,
            error=row.error,
            endpoint=row.endpoint,
            started_at=_utc(row.started_at),
            observed_at=_utc(row.observed_at),
        ),
        created_at=_utc(row.created_at) or datetime.now(UTC),
        updated_at=_utc(row.updated_at) or datetime.now(UTC),
    )


def _spec_json(spec: AgentSpec | None) -> dict[str, Any] | None:
    return None if spec is None else spec.model_dump(mode="json")


def _status_values(status: AgentStatus) -> dict[str, Any]:
    return {
        "observed_state": status.state.value,
        "observed_version": status.version,
        "restarts": status.restarts,
        "exit_code": status.exit_code,
        "error": status.error[:4000],
        "endpoint": status.endpoint[:255],
        "started_at": status.started_at,
        "observed_at": status.observed_at,
    }


class AgentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, org_id: str, spec: AgentSpec) -> AgentRecord:
        now = datetime.now(UTC)
        record = AgentRecord(org_id=org_id, spec=spec, generation=1, created_at=now, updated_at=now)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    agents.insert().values(
                        org_id=org_id,
                        name=spec.name,
                        spec=_spec_json(spec),
                        generation=1,
                        deleting=False,
                        restarts_asked=0,
                        provisioned=[],
                        created_at=now,
                        updated_at=now,
                        **_status_values(record.status),
                    )
                )
        except sa.exc.IntegrityError:
            raise AgentConflict(
                f"an agent named {spec.name!r} exists in this organisation",
                code="agent_exists",
            ) from None
        return record

    async def get(self, org_id: str, name: str) -> AgentRecord:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(agents).where(agents.c.org_id == org_id, agents.c.name == name)
                )
            ).first()
        if row is None:
            raise AgentNotFound(f"no agent {name!r} in this organisation")
        return _record(row)

    async def all(self) -> list[AgentRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(agents))).all()
        return [_record(row) for row in rows]

    async def page(
        self,
        org_id: str,
        *,
        offset: int,
        limit: int,
        state: ObservedState | None = None,
        label: tuple[str, str] | None = None,
    ) -> AgentPage:
        where: list[sa.ColumnElement[bool]] = [agents.c.org_id == org_id]
        if state is not None:
            where.append(agents.c.observed_state == state.value)
        query = sa.select(agents).where(*where).order_by(agents.c.name)
        async with self._engine.connect() as conn:
            if label is None:
                total = await conn.scalar(
                    sa.select(sa.func.count()).select_from(agents).where(*where)
                )
                rows = (await conn.execute(query.offset(offset).limit(limit))).all()
                items = [_record(row) for row in rows]
                return AgentPage(total=total or 0, offset=offset, limit=limit, items=items)
            rows = (await conn.execute(query)).all()
        # Labels live in the JSON spec: filtered here, within one organisation.
        records = [r for r in map(_record, rows) if r.spec.labels.get(label[0]) == label[1]]
        return AgentPage(
            total=len(records), offset=offset, limit=limit,
            items=records[offset : offset + limit],
        )  # fmt: skip

    async def change_spec(
        self,
        record: AgentRecord,
        spec: AgentSpec,
        *,
        previous_spec: AgentSpec | None,
        rollout: Rollout | None,
    ) -> AgentRecord:
        """Store a new spec if nobody changed the agent since `record` was read."""
        now = datetime.now(UTC)
        values = {
            "spec": _spec_json(spec),
            "previous_spec": _spec_json(previous_spec),
            "rollout": None if rollout is None else rollout.to_json(),
            "generation": record.generation + 1,
            "updated_at": now,
        }
        await self._update_if_current(record, values)
        return replace(
            record, spec=spec, previous_spec=previous_spec, rollout=rollout,
            generation=record.generation + 1, updated_at=now,
        )  # fmt: skip

    async def mark_deleting(self, record: AgentRecord) -> AgentRecord:
        now = datetime.now(UTC)
        values = {"deleting": True, "generation": record.generation + 1, "updated_at": now}
        await self._update_if_current(record, values)
        return replace(record, deleting=True, generation=record.generation + 1, updated_at=now)

    async def ask_restart(self, org_id: str, name: str) -> AgentRecord:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                agents.update()
                .where(
                    agents.c.org_id == org_id, agents.c.name == name, agents.c.deleting.is_(False)
                )
                .values(restarts_asked=agents.c.restarts_asked + 1)
            )
        if result.rowcount != 1:
            raise AgentNotFound(f"no agent {name!r} in this organisation")
        return await self.get(org_id, name)

    async def _update_if_current(self, record: AgentRecord, values: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                agents.update()
                .where(
                    agents.c.org_id == record.org_id,
                    agents.c.name == record.name,
                    agents.c.generation == record.generation,
                    agents.c.deleting.is_(False),
                )
                .values(**values)
            )
        if result.rowcount != 1:
            raise AgentConflict(
                f"agent {record.name!r} changed meanwhile (or is being deleted): read it again",
                code="agent_changed",
            )

    # -- written by the reconciler only: they never bump the generation ---------------

    async def set_credentials(
        self, org_id: str, name: str, *, provisioned: Sequence[str], credentials: str | None,
        cert_serial: str | None, cert_expires_at: datetime | None,
    ) -> None:  # fmt: skip
        await self._set(
            org_id, name, provisioned=list(provisioned), credentials=credentials,
            cert_serial=cert_serial, cert_expires_at=cert_expires_at,
        )  # fmt: skip

    async def set_status(self, org_id: str, name: str, status: AgentStatus) -> None:
        await self._set(org_id, name, **_status_values(status))

    async def end_rollout(
        self, record: AgentRecord, *, spec: AgentSpec | None = None
    ) -> AgentRecord:
        """The rollout is over: kept (`spec` None) or rolled back to `spec`; an agent
        changed meanwhile (a newer upgrade) is left as it is (`AgentConflict`)."""
        values: dict[str, Any] = {"rollout": None, "previous_spec": None}
        if spec is not None:
            values |= {"spec": _spec_json(spec), "generation": record.generation + 1}
        await self._update_if_current(record, values)
        if spec is None:
            return replace(record, rollout=None, previous_spec=None)
        return replace(
            record, spec=spec, rollout=None, previous_spec=None, generation=record.generation + 1
        )

    async def _set(self, org_id: str, name: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                agents.update()
                .where(agents.c.org_id == org_id, agents.c.name == name)
                .values(**values)
            )

    async def delete(self, org_id: str, name: str) -> None:
        async with self._engine.begin() as conn:
            for table in (agent_logs, agent_states):
                await conn.execute(
                    table.delete().where(table.c.org_id == org_id, table.c.name == name)
                )
            await conn.execute(
                agents.delete().where(agents.c.org_id == org_id, agents.c.name == name)
            )
