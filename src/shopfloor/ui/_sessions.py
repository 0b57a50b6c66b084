"""Server-side sign-in sessions of the console, in the platform database.

The cookie holds a random session id (256 bits); the table holds only its SHA-256, so
whoever reads the table or a backup cannot sign in with it. A session ends when it
expires (`expires_at`, fixed at sign-in: no sliding renewal), at sign-out, when the
user is deleted (the foreign key cascades) and when their password changes (the
session keeps the user's token generation, which `Authenticator.user_principal`
checks on every request, as it does for tokens). Each session has its CSRF token.

A session of an OIDC account (`source` "oidc", no local user: the issuer's users are
not copied into the registry) keeps the principal mapped from the ID token at sign-in
(subject, e-mail, organisation, role, platform admin). Every request re-checks that
its organisation still exists; what the issuer changes later (a role taken away, the
account disabled) counts from the next sign-in, so such a session lives at most
`oidc_session_ttl_seconds` (docs/console.md).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from shopfloor.auth import Principal
from shopfloor.registry import Role

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
    user_id: str | None  # None for an OIDC account
    source: str
    generation: int
    csrf_token: str
    language: str
    expires_at: datetime
    #: An OIDC account's principal, as mapped at sign-in; None for a local user.
    principal: Principal | None = None


def _principal_data(principal: Principal) -> dict[str, object]:
    return {
        "subject": principal.subject,
        "email": principal.email,
        "org_id": principal.org_id,
        "role": principal.role.value if principal.role else None,
        "platform_admin": principal.platform_admin,
    }


def _principal_of(data: dict[str, object] | None) -> Principal | None:
    if not data:
        return None
    role = data.get("role")
    org_id = data.get("org_id")
    return Principal(
        subject=str(data["subject"]),
        email=str(data.get("email", "")),
        org_id=org_id if isinstance(org_id, str) else None,
        role=Role(role) if isinstance(role, str) else None,
        platform_admin=bool(data.get("platform_admin")),
        source="oidc",
    )


class SessionStore:
    def __init__(self, engine: AsyncEngine, *, ttl_seconds: int, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self.ttl_seconds = ttl_seconds
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    async def create(
        self, user_id: str, *, generation: int, language: str
    ) -> tuple[str, ConsoleSession]:
        """A new session of a local user; returns the id for the cookie (kept nowhere
        else) and the session. Expired sessions of every user are removed on the way."""
        now = self._clock()
        return await self._insert(
            ConsoleSession(
                user_id=user_id,
                source="local",
                generation=generation,
                csrf_token=secrets.token_urlsafe(32),
                language=language,
                expires_at=now + self._ttl,
            )
        )

    async def create_oidc(
        self, principal: Principal, *, language: str, ttl_seconds: int
    ) -> tuple[str, ConsoleSession]:
        """A new session of an OIDC account, for at most `ttl_seconds` (and the store's
        own life, whichever ends first)."""
        now = self._clock()
        ttl = min(self._ttl, timedelta(seconds=ttl_seconds))
        return await self._insert(
            ConsoleSession(
                user_id=None,
                source="oidc",
                generation=0,
                csrf_token=secrets.token_urlsafe(32),
                language=language,
                expires_at=now + ttl,
                principal=principal,
            )
        )

    async def _insert(self, session: ConsoleSession) -> tuple[str, ConsoleSession]:
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(t.sessions).where(t.sessions.c.expires_at <= now))
            await conn.execute(
                sa.insert(t.sessions).values(
                    id_hash=_digest(session_id),
                    user_id=session.user_id,
                    source=session.source,
                    generation=session.generation,
                    csrf_token=session.csrf_token,
                    language=session.language,
                    created_at=now,
                    expires_at=session.expires_at,
                    principal=_principal_data(session.principal) if session.principal else None,
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
        return _session_of(row)

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


def _session_of(row: Row[tuple[object, ...]]) -> ConsoleSession:
    return ConsoleSession(
        user_id=row.user_id,
        source=row.source,
        generation=row.generation,
        csrf_token=row.csrf_token,
        language=row.language,
        expires_at=_as_utc(row.expires_at),
        principal=_principal_of(row.principal),
    )
