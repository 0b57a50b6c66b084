"""The anchor of the embedded-broker figures: a bare amqtt broker, no platform behind it.

It is the amqtt that `shopfloor serve` embeds (the same installed version), with the
stock TCP listener and amqtt's own anonymous-access plugin, and none of the default
configuration's packet logging or `$SYS` topics (the embedded broker has none either).
Messages are routed by amqtt itself, so what the figures compare is the platform's work
per message (authentication, ingress, bus, store) against amqtt's own routing.

It runs on the event loop `shopfloor serve` uses (uvloop when installed). The runner
starts this file by path, not with `-m`, so that the process imports neither the
`bench` package nor Shopfloor: its RSS is the floor of Python and amqtt alone.

    python bench/amqtt_anchor.py --host 127.0.0.1 --port 1884
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from amqtt.broker import Broker

ANONYMOUS = "amqtt.plugins.authentication.AnonymousAuthPlugin"


def config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {ANONYMOUS: {"allow_anonymous": True}},
    }


async def serve(host: str, port: int) -> None:
    broker = Broker(config(host, port))
    await broker.start()
    try:
        await asyncio.Event().wait()  # until the runner stops the process
    finally:
        await broker.shutdown()


def _loop_policy() -> None:
    # The same choice as `shopfloor.cli._use_uvloop`, without importing Shopfloor.
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # Shopfloor logs at INFO; amqtt's per-connection lines are few, and so they stay.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    _loop_policy()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
