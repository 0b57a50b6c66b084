"""The `influxdb` label provisioner: a database and a user of the agent's own on InfluxDB 1.x.

Everything goes through the 1.x HTTP API's `/query` endpoint, one InfluxQL statement per
request: when a request holds several and one fails, InfluxDB 1.x may answer "not
executed" for it instead of its own error.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final, NoReturn
from urllib.parse import unquote, urlsplit

import httpx

from ._errors import InvalidAgentSpec, RuntimeUnavailable
from ._provisioners import AgentRef, Grant, Provisioner

__all__ = ["InfluxdbProvisioner"]

# The label's value: `true`, or the retention of the database's default policy. Hours,
# days or weeks: InfluxDB keeps no policy shorter than an hour, and four digits of weeks
# stay inside its duration range (about 292 years).
_RETENTION: Final = re.compile(r"[1-9][0-9]{0,3}[hdw]")
_POLICY: Final = "autogen"  # the policy InfluxDB creates with a database
_TIMEOUT: Final = 10.0
# InfluxDB's authorization errors quote the statement they refused (passwords redacted).
_QUOTED_STATEMENT: Final = re.compile(r"statement '.*'", re.DOTALL)


class InfluxdbProvisioner(Provisioner, name="influxdb"):
    """A database and a user with ALL privileges on it, of the agent's own, on InfluxDB 1.x.

    The label's value is `true`, or a retention like `30d` (`<n>h`, `<n>d` or `<n>w`):
    the duration of the database's default policy, set again on every provisioning
    (`true` keeps data forever, InfluxDB's default). The database is always the agent's
    own, `sf_db_...`; the user is `sf_agent_...`, with a new random password each time.
    Deprovisioning drops the user, then the database.

    The administrative URL (`http://admin:secret@host:8086`, or `https://`) needs an
    InfluxDB admin user; its credentials are sent with basic auth and never handed to
    an agent. The agent gets `agent_url`, by default the same URL without credentials.
    The server must run with `auth-enabled = true`, or the agent's credentials check
    nothing.
    """

    def __init__(self, admin_url: str, *, agent_url: str | None = None) -> None:
        base, username, password = _split_url(
            admin_url, "the influxdb provisioner needs SHOPFLOOR_AGENT_INFLUXDB_URL "
            "(http://user:password@host:8086 or https://...)",
        )  # fmt: skip
        self._base_url = base
        self._auth = None if username is None else httpx.BasicAuth(username, password)
        self._admin_password = password
        self._agent_url = base
        if agent_url is not None:
            self._agent_url, agent_user, agent_password = _split_url(
                agent_url, "the influxdb provisioner's agent URL must be http(s)://host:port"
            )
            if agent_user is not None or agent_password:
                raise InvalidAgentSpec(
                    "the influxdb provisioner's agent URL must hold no credentials",
                    code="provisioner_unconfigured",
                )

    async def provision(self, agent: AgentRef, value: str) -> Grant:
        retention = _retention(value)
        name = agent.slug("sf_agent")
        database, user = _ident(agent.slug("sf_db")), _ident(name)
        password = secrets.token_hex(24)
        async with self._session(password) as run:
            await run(f"CREATE DATABASE {database}", "create the database")  # idempotent
            policies = await run(f"SHOW RETENTION POLICIES ON {database}", "read its policies")
            if any(row[0] == _POLICY for row in _rows(policies)):
                # SHARD DURATION 0s: the shard length InfluxDB picks for that retention.
                await run(
                    f"ALTER RETENTION POLICY {_ident(_POLICY)} ON {database} "
                    f"DURATION {retention} SHARD DURATION 0s DEFAULT", "set its retention",
                )  # fmt: skip
            else:  # a server with retention-autocreate off made none
                await run(
                    f"CREATE RETENTION POLICY {_ident(_POLICY)} ON {database} "
                    f"DURATION {retention} REPLICATION 1 DEFAULT", "set its retention",
                )  # fmt: skip
            users = {row[0]: row[1] for row in _rows(await run("SHOW USERS", "list users"))}
            # The password is hex: an InfluxQL string literal needs no escaping for it.
            if name not in users:
                await run(f"CREATE USER {user} WITH PASSWORD '{password}'", "create the user")
            else:
                await run(f"SET PASSWORD FOR {user} = '{password}'", "renew the password")
                if users[name]:  # an admin by that name: an agent gets no admin rights
                    await run(f"REVOKE ALL PRIVILEGES FROM {user}", "revoke admin rights")
            await run(f"GRANT ALL ON {database} TO {user}", "grant the database")
        env = {
            "SHOPFLOOR_INFLUXDB_URL": self._agent_url,
            "SHOPFLOOR_INFLUXDB_DATABASE": agent.slug("sf_db"),
            "SHOPFLOOR_INFLUXDB_USERNAME": name,
            "SHOPFLOOR_INFLUXDB_PASSWORD": password,
        }
        return Grant(env=env, secrets=frozenset({password}))

    async def deprovision(self, agent: AgentRef) -> None:
        database, name = agent.slug("sf_db"), agent.slug("sf_agent")
        async with self._session() as run:
            users = _rows(await run("SHOW USERS", "list users"))
            if any(row[0] == name for row in users):  # DROP USER of none is an error
                await run(f"DROP USER {_ident(name)}", "drop the user")
            await run(f"DROP DATABASE {_ident(database)}", "drop the database")  # idempotent

    def _session(self, *hidden: str) -> _Session:
        return _Session(self._base_url, self._auth, (*hidden, self._admin_password))


class _Session:
    """One HTTP client for a series of statements; `run(statement, what)` is the result."""

    def __init__(
        self, base_url: str, auth: httpx.BasicAuth | None, hidden: tuple[str, ...]
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=_TIMEOUT)
        self._hidden = [value for value in hidden if value]

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def __call__(self, statement: str, what: str) -> dict[str, Any]:
        # POST with `q` in the body: statements (and passwords) stay out of request lines.
        try:
            response = await self._client.post("/query", data={"q": statement})
        except httpx.HTTPError as exc:
            self._fail(what, f"InfluxDB unreachable ({type(exc).__name__}: {exc})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._fail(what, f"InfluxDB answered {response.status_code}: {response.text[:200]}")
        if response.status_code != 200 or "error" in body:
            self._fail(what, f"{body.get('error', '')} ({response.status_code})")
        results = body.get("results")
        if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
            self._fail(what, "InfluxDB answered no result")
        result: dict[str, Any] = results[0]
        if "error" in result:
            self._fail(what, str(result["error"]))
        return result

    def _fail(self, what: str, reason: str) -> NoReturn:
        # InfluxDB's message only, never the statement; a parse error quotes the token it
        # stumbled on, so anything secret is blotted out as well.
        reason = _QUOTED_STATEMENT.sub("the statement", reason)
        for value in self._hidden:
            reason = reason.replace(value, "[REDACTED]")
        raise RuntimeUnavailable(f"the influxdb provisioner could not {what}: {reason}")


def _rows(result: dict[str, Any]) -> list[list[Any]]:
    return [row for series in result.get("series", []) for row in series.get("values", [])]


def _retention(value: str) -> str:
    value = value.strip().lower()
    if value == "true":
        return "INF"
    if _RETENTION.fullmatch(value):
        return value
    raise InvalidAgentSpec(
        "shopfloor.provision.influxdb is `true` or a retention like 30d (hours h, days d, "
        "weeks w; at least 1h)", code="invalid_provisioning_label",
    )  # fmt: skip


def _split_url(url: str, message: str) -> tuple[str, str | None, str]:
    """The URL without credentials, and the username (None without one) and password."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise InvalidAgentSpec(message, code="provisioner_unconfigured")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{parts.scheme}://{host}" + ("" if port is None else f":{port}")
    username = None if parts.username is None else unquote(parts.username)
    return base, username, unquote(parts.password or "")


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
