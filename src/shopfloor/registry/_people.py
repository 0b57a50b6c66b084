"""Organisations and users: the people side of the registry."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import _tables as t
from ._entities import new_id, utcnow
from ._errors import Conflict, NotFound
from ._events import ChangeKind
from ._rows import count_rows, fields_of, org_from, user_from
from ._types import USER_SORT_KEYS, Org, Page, Role, User, UserSortKey


class PeopleMixin:
    """Organisation and user operations of `Registry` (which provides the engine)."""

    _engine: AsyncEngine
    #: `Registry._announce`: tells the listeners of a change (after its commit).
    _announce: Callable[..., None]

    def _begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """The connection of one write: a transaction of its own (`RegistryTransaction`
        hands out its shared one instead)."""
        return self._engine.begin()

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._engine.connect()

    async def _require_org(self, conn: AsyncConnection, org_id: str) -> None:
        found = await conn.scalar(sa.select(t.orgs.c.id).where(t.orgs.c.id == org_id))
        if found is None:
            raise NotFound(f"organisation {org_id} not found", code="org_not_found")

    # -- organisations -------------------------------------------------------------------

    async def create_org(self, name: str) -> Org:
        org = Org(id=new_id(), name=name, created_at=utcnow())
        try:
            async with self._begin() as conn:
                await conn.execute(sa.insert(t.orgs).values(**fields_of(org)))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"an organisation named {name!r} exists", code="name_taken") from exc
        return org

    async def get_org(self, org_id: str) -> Org:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.orgs).where(t.orgs.c.id == org_id))).first()
        if row is None:
            raise NotFound(f"organisation {org_id} not found", code="org_not_found")
        return org_from(row)

    async def find_org(self, name_or_id: str) -> Org | None:
        query = sa.select(t.orgs).where((t.orgs.c.name == name_or_id) | (t.orgs.c.id == name_or_id))
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else org_from(row)

    async def list_orgs(self, *, offset: int = 0, limit: int = 100) -> Page[Org]:
        async with self._read() as conn:
            total = await count_rows(conn, t.orgs, sa.true())
            rows = await conn.execute(
                sa.select(t.orgs).order_by(t.orgs.c.name).offset(offset).limit(limit)
            )
            return Page(total=total, offset=offset, limit=limit, items=[org_from(r) for r in rows])

    # -- users ---------------------------------------------------------------------------

    async def count_users(self) -> int:
        async with self._read() as conn:
            return await count_rows(conn, t.users, sa.true())

    async def create_user(
        self,
        *,
        email: str,
        password_hash: str,
        org_id: str | None,
        role: Role | None,
        platform_admin: bool = False,
    ) -> User:
        if (org_id is None) != (role is None):
            raise ValueError("a user has both an organisation and a role, or neither")
        user = User(
            id=new_id(),
            email=email.lower(),
            org_id=org_id,
            role=role,
            platform_admin=platform_admin,
            password_hash=password_hash,
            created_at=utcnow(),
        )
        try:
            async with self._begin() as conn:
                if org_id is not None:
                    await self._require_org(conn, org_id)
                await conn.execute(sa.insert(t.users).values(**fields_of(user)))
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"a user with e-mail {email!r} exists", code="email_taken") from exc
        return user

    async def get_user(self, user_id: str) -> User:
        user = await self._user_where(t.users.c.id == user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found", code="user_not_found")
        return user

    async def find_user_by_email(self, email: str) -> User | None:
        return await self._user_where(t.users.c.email == email.lower())

    async def list_users(
        self,
        *,
        org_id: str | None,
        offset: int = 0,
        limit: int = 100,
        email: str | None = None,
        role: Role | None = None,
        sort: UserSortKey = "email",
    ) -> Page[User]:
        """Users of one organisation, or of all when `org_id` is None; `email` is a part
        of the address, `sort` one of `USER_SORT_KEYS` (`-` first: descending)."""
        if sort not in USER_SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(USER_SORT_KEYS)}")
        condition = sa.true() if org_id is None else t.users.c.org_id == org_id
        if email:
            escaped = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            condition = sa.and_(condition, t.users.c.email.ilike(pattern, escape="\\"))
        if role is not None:
            condition = sa.and_(condition, t.users.c.role == role.value)
        column = t.users.c[sort.removeprefix("-")]
        order = column.desc() if sort.startswith("-") else column.asc()
        async with self._read() as conn:
            total = await count_rows(conn, t.users, condition)
            rows = await conn.execute(
                sa.select(t.users)
                .where(condition)
                .order_by(order, t.users.c.id)
                .offset(offset)
                .limit(limit)
            )
            return Page(total=total, offset=offset, limit=limit, items=[user_from(r) for r in rows])

    async def update_user(
        self,
        user_id: str,
        *,
        org_id: str | None = None,
        role: Role | None = None,
        password_hash: str | None = None,
    ) -> User:
        """Change what is given; a new password also ends every token issued before."""
        values: dict[str, Any] = {}
        if org_id is not None:
            values["org_id"] = org_id
        if role is not None:
            values["role"] = role.value
        if password_hash is not None:
            values["password_hash"] = password_hash
            # In the same UPDATE: no process can see the new password with the old generation.
            values["token_generation"] = t.users.c.token_generation + 1
        async with self._begin() as conn:
            if org_id is not None:
                await self._require_org(conn, org_id)
            if values:
                result = await conn.execute(
                    sa.update(t.users).where(t.users.c.id == user_id).values(**values)
                )
                if result.rowcount == 0:
                    raise NotFound(f"user {user_id} not found", code="user_not_found")
        return await self.get_user(user_id)

    async def set_platform_admin(self, user_id: str, platform_admin: bool) -> None:
        async with self._begin() as conn:
            result = await conn.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(platform_admin=platform_admin)
            )
        if result.rowcount == 0:
            raise NotFound(f"user {user_id} not found", code="user_not_found")

    async def delete_user(self, user_id: str) -> None:
        """Delete the user; a member of an organisation is announced (`user_deleted`)."""
        async with self._begin() as conn:
            org_id = await conn.scalar(sa.select(t.users.c.org_id).where(t.users.c.id == user_id))
            result = await conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))
        if result.rowcount == 0:
            raise NotFound(f"user {user_id} not found", code="user_not_found")
        if org_id is not None:
            self._announce(ChangeKind.USER_DELETED, str(org_id), user_id=user_id)

    async def _user_where(self, condition: sa.ColumnElement[bool]) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.users).where(condition))).first()
        return None if row is None else user_from(row)
