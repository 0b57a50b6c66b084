"""Server-side sign-in sessions of the console, in the platform database.

The cookie holds a random session id (256 bits); the table holds only its SHA-256, so
whoever reads the table or a backup cannot sign in with it. A session ends when it
expires (`expires_at`, fixed at sign-in: no sliding renewal), at sign-out, when the
user is deleted (the foreign key cascades) and when their password changes (the
session keeps the user's token generation, which `Authenticator.user_principal`
checks on every request, as it does for tokens). Each session has its CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import _tables as t

__all__ = ["ConsoleSession", "SessionStore"]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSession:
    user_id: str
    source: str
    generation: int
    csrf_token: str
    language: str
    expires_at: datetime


class SessionStore:
    def __init__(self, engine: AsyncEngine, *, ttl_seconds: int, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self.ttl_seconds = ttl_seconds
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    async def create(
        self, user_id: str, *, generation: int, language: str, source: str = "local"
    ) -> tuple[str, ConsoleSession]:
        """A new session; returns the id for the cookie (kept nowhere else) and the
        session. Expired sessions of every user are removed on the way."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(
            user_id=user_id,
            source=source,
            generation=generation,
            csrf_token=secrets.token_urlsafe(32),
            language=language,
            expires_at=now + self._ttl,
        )
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(t.sessions).where(t.sessions.c.expires_at <= now))
            await conn.execute(
                sa.insert(t.sessions).values(
                    id_hash=_digest(session_id),
                    user_id=user_id,
                    source=source,
                    generation=generation,
                    csrf_token=session.csrf_token,
                    language=language,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return session_id, session

    async def get(self, session_id: str) -> ConsoleSession | None:
        """The session of a cookie's id, or None when there is none or it has expired."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.sessions).where(t.sessions.c.id_hash == _digest(session_id))
                )
            ).first()
        if row is None or _as_utc(row.expires_at) <= self._clock():
            return None
        return ConsoleSession(
            user_id=row.user_id,
            source=row.source,
            generation=row.generation,
            csrf_token=row.csrf_token,
            language=row.language,
            expires_at=_as_utc(row.expires_at),
        )

    async def set_language(self, session_id: str, language: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(t.sessions)
                .where(t.sessions.c.id_hash == _digest(session_id))
                .values(language=language)
            )

    async def user_language(self, user_id: str) -> str | None:
        """The language the user chose last, in any session (None: never chose)."""
        async with self._engine.connect() as conn:
            language = await conn.scalar(
                sa.select(t.preferences.c.language).where(t.preferences.c.user_id == user_id)
            )
        return None if language is None else str(language)

    async def remember_language(self, user_id: str, language: str) -> None:
        """Keep the user's choice for their next sign-in (one row a user)."""
        values = {"language": language, "updated_at": self._clock()}
        where = t.preferences.c.user_id == user_id
        async with self._engine.begin() as conn:
            changed = await conn.execute(sa.update(t.preferences).where(where).values(values))
        if changed.rowcount:
            return
        try:
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(t.preferences).values(user_id=user_id, **values))
        except sa.exc.IntegrityError:  # the first choice, made in two sessions at once
            async with self._engine.begin() as conn:
                await conn.execute(sa.update(t.preferences).where(where).values(values))

    async def delete(self, session_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(t.sessions).where(t.sessions.c.id_hash == _digest(session_id))
            )
