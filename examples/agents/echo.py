"""The echo agent: it shows what the platform hands an agent, and does nothing else.

It logs to stdout, one line per event with its time:

- at start, its name, version and the keys of its config (never the values, which
  may be credentials);
- every `interval` seconds (default 5), a heartbeat;
- on SIGHUP, that it reloaded its files, with the serial of `cert.pem` if there is one;
- on SIGTERM, "stopping"; then it exits 0.

With `health_port` in its config it answers `GET /health` there, on `health_host`
(default 127.0.0.1; in a container, 0.0.0.0).

Run it as a script, `python examples/agents/echo.py` (in a spec, `command: [python,
/path/to/examples/agents/echo.py]`), or from the repository's root as
`python -m shopfloor.sdk.run examples.agents.echo:main`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from shopfloor.sdk import (
    AgentContext,
    AgentContextError,
    config_port,
    config_seconds,
    run_agent,
    serve_health,
)

logger = logging.getLogger("echo")

DEFAULT_INTERVAL = 5.0
DEFAULT_HEALTH_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class EchoConfig:
    interval: float = DEFAULT_INTERVAL
    health_port: int | None = None
    health_host: str = DEFAULT_HEALTH_HOST

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EchoConfig:
        interval = config_seconds(config, "interval", DEFAULT_INTERVAL)
        port = config_port(config, "health_port")
        return cls(interval, port, str(config.get("health_host", DEFAULT_HEALTH_HOST)))


async def main() -> None:
    context = AgentContext.from_env()
    config = EchoConfig.from_config(context.config)
    hangups = _hangups()  # before anything else: an early SIGHUP must not end the agent
    logger.info(
        "echo agent %r (version %r) started; config keys: %s",
        context.name, context.version, _keys(context.config),
    )  # fmt: skip
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(config.interval)
            beats += 1
            logger.info("heartbeat %d", beats)

    async with AsyncExitStack() as stack:
        if config.health_port is not None:
            await stack.enter_async_context(
                serve_health(
                    config.health_port, host=config.health_host, details=lambda: {"beats": beats}
                )
            )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(heartbeat(), name="heartbeat")
                tasks.create_task(_reload_on_hangup(context, hangups), name="reload")
        except asyncio.CancelledError:
            logger.info("stopping")
            raise


async def _reload_on_hangup(context: AgentContext, hangups: asyncio.Queue[None]) -> None:
    while True:
        await hangups.get()
        try:
            context = context.reloaded()
            serial = certificate_serial(context.file("cert.pem"))
        except (AgentContextError, OSError, ValueError) as exc:
            logger.warning("could not reload the files, keeping the previous ones: %s", exc)
            continue
        certificate = f"cert.pem serial {serial}" if serial else "no cert.pem"
        logger.info("reloaded files: %s; config keys: %s", certificate, _keys(context.config))


def certificate_serial(path: Path | None) -> str | None:
    """The serial of the PEM certificate at `path`, in hex as the platform's API spells it."""
    if path is None:
        return None
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return format(certificate.serial_number, "x")


def _hangups() -> asyncio.Queue[None]:
    """A queue that gets an item for every SIGHUP this process receives."""
    queue: asyncio.Queue[None] = asyncio.Queue()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, queue.put_nowait, None)
    return queue


def _keys(config: Mapping[str, Any]) -> str:
    return ", ".join(sorted(config)) or "(none)"


if __name__ == "__main__":
    sys.exit(run_agent(main))
