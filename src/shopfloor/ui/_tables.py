"""Table definitions (SQLAlchemy Core); the schema itself is made by the migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TIMESTAMP = sa.DateTime(timezone=True)

sessions = sa.Table(
    "console_sessions",
    metadata,
    # SHA-256 of the session id in the cookie: a copy of the table signs nobody in.
    sa.Column("id_hash", sa.String(64), primary_key=True),
    # The local user; NULL for an account of the OIDC issuer (`source` "oidc").
    sa.Column("user_id", sa.String(36), nullable=True),
    # "local" (a platform account) or "oidc".
    sa.Column("source", sa.String(16), nullable=False),
    # The user's token generation at sign-in: a new password ends the session.
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    # OIDC sessions: the principal mapped from the ID token at sign-in (`OidcPrincipal`).
    sa.Column("principal", sa.JSON, nullable=True),
)

#: OIDC sign-ins on their way through the issuer: what the callback checks, keyed by the
#: SHA-256 of the random id in the browser's `shopfloor_oidc` cookie.
oidc_sign_ins = sa.Table(
    "console_oidc_sign_ins",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("next", sa.String(2000), nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)

#: A user's own choices in the console (their language), kept across sign-ins; the row
#: goes with the user (the foreign key cascades).
preferences = sa.Table(
    "console_preferences",
    metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)
