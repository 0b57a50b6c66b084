"""The machine agent: a simulated CNC mill that sends its readings to the platform.

Every `interval` seconds (default 1) it samples the mill (`shopfloor.simulate.Mill`:
temperature, spindle speed, state, parts made) and

- publishes the SenML pack on its first provisioned channel through the platform's
  HTTP adapter (`SHOPFLOOR_HTTP_URL`, `Authorization: Thing <SHOPFLOOR_THING_KEY>`);
- when it has a database of its own (`SHOPFLOOR_POSTGRES_URL`, the `postgres`
  provisioner), inserts the reading into its table `readings`, created if missing.

Each destination has its own queue of readings waiting (an hour's worth at most, the
oldest dropped past that). While one is unreachable the agent logs it, retries with
a capped, randomised backoff and catches up once it is back; it never stops for it.
A reading the platform refuses (a 4xx answer) is logged and dropped. Readings still
waiting when the agent stops are lost.

Config: `interval` (seconds), `machine` (the SenML base name, default the agent's
name), `health_port` and `health_host` (as the echo agent's). On SIGHUP it reads its
config again and takes the new `interval`; the others apply at the next start.

Run it as a script, `python examples/agents/machine.py`, or from the repository's
root as `python -m shopfloor.sdk.run examples.agents.machine:main`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import httpx

from shopfloor.core import Backoff
from shopfloor.sdk import (
    AgentContext,
    AgentContextError,
    config_port,
    config_seconds,
    run_agent,
    serve_health,
)
from shopfloor.simulate import Mill

logger = logging.getLogger("machine")

Pack = list[dict[str, Any]]

DEFAULT_INTERVAL = 1.0
DEFAULT_HEALTH_HOST = "127.0.0.1"
#: Seconds of readings each destination keeps while it is unreachable, at most.
QUEUE_SECONDS = 3600
#: No retry waits longer, whatever a `Retry-After` asks.
RETRY_CAP = 60.0


@dataclass(frozen=True, slots=True)
class MachineConfig:
    machine: str
    interval: float = DEFAULT_INTERVAL
    health_port: int | None = None
    health_host: str = DEFAULT_HEALTH_HOST

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, default_name: str) -> MachineConfig:
        interval = config_seconds(config, "interval", DEFAULT_INTERVAL)
        port = config_port(config, "health_port")
        machine = config.get("machine", default_name)
        if not isinstance(machine, str) or not machine:
            raise ValueError(f"config.machine is a name, not {machine!r}")
        host = str(config.get("health_host", DEFAULT_HEALTH_HOST))
        return cls(machine, interval, port, host)


class Unavailable(Exception):
    """The destination cannot take the reading now; try again later."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Refused(Exception):
    """The destination will never take this reading."""


class Destination(Protocol):
    name: str

    async def send(self, pack: Pack) -> None:
        """Deliver one pack, or raise `Unavailable` or `Refused`."""


class Outbox:
    """Packs waiting for one destination, oldest first; past `limit` the oldest go."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self._packs: deque[Pack] = deque(maxlen=limit)
        self._waiting = asyncio.Event()
        self.delivered = 0
        self.dropped = 0  # refused, or pushed out by newer ones

    def __len__(self) -> int:
        return len(self._packs)

    def put(self, pack: Pack) -> None:
        if len(self._packs) == self._packs.maxlen:
            if not self.dropped:
                logger.warning("%s queue full: dropping its oldest readings", self.name)
            self.dropped += 1
        self._packs.append(pack)
        self._waiting.set()

    async def oldest(self) -> Pack:
        while not self._packs:
            self._waiting.clear()
            await self._waiting.wait()
        return self._packs[0]

    def remove(self, pack: Pack) -> None:
        if self._packs and self._packs[0] is pack:  # not already pushed out by `put`
            self._packs.popleft()


class Platform:
    """The platform's HTTP adapter, publishing as the agent's thing on one channel."""

    name = "platform"

    def __init__(self, http: httpx.AsyncClient, base_url: str, channel_id: str, key: str):
        self._http = http
        self._url = f"{base_url.rstrip('/')}/http/channels/{channel_id}/messages"
        self._headers = {"Authorization": f"Thing {key}", "Content-Type": "application/senml+json"}

    async def send(self, pack: Pack) -> None:
        try:
            response = await self._http.post(self._url, json=pack, headers=self._headers)
        except httpx.TransportError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 202:
            return
        reason = f"{response.status_code} {_error_code(response)}"
        if response.status_code in (429, 503) or response.status_code >= 500:
            raise Unavailable(reason, retry_after=_retry_after(response))
        raise Refused(reason)


class ReadingsTable:
    """The table `readings` in the agent's own PostgreSQL database, one row a reading."""

    name = "database"

    CREATE = """
        CREATE TABLE IF NOT EXISTS readings (
            id bigserial PRIMARY KEY,
            time timestamptz NOT NULL,
            machine text NOT NULL,
            temperature double precision,
            spindle_speed double precision,
            state text,
            parts integer
        )"""
    INSERT = """
        INSERT INTO readings (time, machine, temperature, spindle_speed, state, parts)
        VALUES ($1, $2, $3, $4, $5, $6)"""
    TIMEOUT = 10.0
    #: SQLSTATE classes that say "not now": connection, resources, operator intervention.
    TRANSIENT = ("08", "53", "57")

    def __init__(self, url: str, machine: str) -> None:
        self._url = url
        self._machine = machine
        self._connection: asyncpg.Connection | None = None

    async def send(self, pack: Pack) -> None:
        values = {record["n"]: record.get("v", record.get("vs")) for record in pack}
        row = (
            datetime.fromtimestamp(pack[0]["bt"], UTC), self._machine, values["temperature"],
            values["spindle-speed"], values["state"], values["parts"],
        )  # fmt: skip
        connection = self._connection or await self._connect()
        try:
            await connection.execute(self.INSERT, *row, timeout=self.TIMEOUT)
        except asyncpg.PostgresError as exc:
            if exc.sqlstate[:2] not in self.TRANSIENT:
                raise Refused(f"{type(exc).__name__}: {exc}") from exc
            await self.close()
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _connect(self) -> asyncpg.Connection:
        """A new connection, the table made; any failure is `Unavailable` (a database
        that is starting, missing or refusing the role may be fixed while we wait)."""
        try:
            connection = await asyncpg.connect(self._url, timeout=self.TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            await connection.execute(self.CREATE, timeout=self.TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            connection.terminate()
            raise Unavailable(f"cannot create the table: {type(exc).__name__}: {exc}") from exc
        self._connection = connection
        return connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.close(timeout=2)
        except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
            connection.terminate()


class MachineAgent:
    def __init__(self, context: AgentContext, config: MachineConfig) -> None:
        self.context = context
        self.config = config
        self.mill = Mill(config.machine)
        limit = max(1, int(QUEUE_SECONDS / config.interval))
        names = ["platform", "database"] if context.postgres_url else ["platform"]
        self.outboxes = {name: Outbox(name, limit) for name in names}

    async def run(self, destinations: list[Destination], hangups: asyncio.Queue[None]) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._sample(), name="sample")
            tasks.create_task(self._reload_on_hangup(hangups), name="reload")
            for destination in destinations:
                outbox = self.outboxes[destination.name]
                tasks.create_task(deliver(destination, outbox), name=f"to {destination.name}")

    def health(self) -> dict[str, object]:
        return {
            "machine": self.config.machine,
            "delivered": {name: box.delivered for name, box in self.outboxes.items()},
            "waiting": {name: len(box) for name, box in self.outboxes.items()},
            "dropped": {name: box.dropped for name, box in self.outboxes.items()},
        }

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            pack = self.mill.pack(time.time())
            for outbox in self.outboxes.values():
                outbox.put(pack)
            next_at = max(next_at + self.config.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _reload_on_hangup(self, hangups: asyncio.Queue[None]) -> None:
        while True:
            await hangups.get()
            try:
                self.context = self.context.reloaded()
                config = MachineConfig.from_config(
                    self.context.config, default_name=self.config.machine
                )
            except (AgentContextError, ValueError) as exc:
                logger.warning("could not reload the config, keeping the previous one: %s", exc)
                continue
            self.config = replace(self.config, interval=config.interval)
            logger.info("reloaded files; interval %g s", self.config.interval)


async def deliver(destination: Destination, outbox: Outbox) -> None:
    """Send what waits in `outbox` to `destination`, oldest first, until cancelled."""
    backoff = Backoff(base=0.5, cap=10.0)
    failures = 0
    while True:
        pack = await outbox.oldest()
        try:
            await destination.send(pack)
        except Unavailable as exc:
            delay = min(max(backoff.delay(failures), exc.retry_after or 0.0), RETRY_CAP)
            failures += 1
            logger.warning(
                "%s unavailable (%s); retrying in %.1f s; readings waiting: %d",
                destination.name, exc, delay, len(outbox),
            )  # fmt: skip
            await asyncio.sleep(delay)
            continue
        except Refused as exc:
            outbox.dropped += 1
            logger.warning("%s refused a reading, dropped: %s", destination.name, exc)
        else:
            outbox.delivered += 1
            if outbox.delivered == 1:
                logger.info("%s took the first reading", destination.name)
        if failures:
            logger.info("%s reachable again after %d failed tries", destination.name, failures)
            failures = 0
        outbox.remove(pack)


async def main() -> None:
    context = AgentContext.from_env()
    config = MachineConfig.from_config(context.config, default_name=context.name or "mill")
    if not (context.thing_key and context.channels and context.http_url):
        raise ValueError(
            "the machine agent publishes as its thing over HTTP: it needs SHOPFLOOR_THING_KEY, "
            "SHOPFLOOR_CHANNELS (the mqtt provisioner) and SHOPFLOOR_HTTP_URL"
        )
    channel = context.channels[0]
    agent = MachineAgent(context, config)
    hangups = _hangups()  # before anything else: an early SIGHUP must not end the agent
    logger.info(
        "machine %s started: every %g s to channel %s (%s) at %s%s; config keys: %s",
        config.machine, config.interval, channel.name, channel.id, context.http_url,
        ", and into its database" if context.postgres_url else "",
        ", ".join(sorted(context.config)) or "(none)",
    )  # fmt: skip
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        destinations: list[Destination] = [
            Platform(http, context.http_url, channel.id, context.thing_key)
        ]
        if context.postgres_url:
            table = ReadingsTable(context.postgres_url, config.machine)
            stack.push_async_callback(table.close)
            destinations.append(table)
        if config.health_port is not None:
            await stack.enter_async_context(
                serve_health(config.health_port, host=config.health_host, details=agent.health)
            )
        try:
            await agent.run(destinations, hangups)
        except asyncio.CancelledError:
            waiting = {name: len(box) for name, box in agent.outboxes.items()}
            logger.info("stopping; readings not sent: %s", waiting)
            raise


def _hangups() -> asyncio.Queue[None]:
    """A queue that gets an item for every SIGHUP this process receives."""
    queue: asyncio.Queue[None] = asyncio.Queue()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, queue.put_nowait, None)
    return queue


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


if __name__ == "__main__":
    sys.exit(run_agent(main))
