"""The anchor of the HTTP figures: a bare ASGI endpoint that reads the body and answers 202.

It is served as `shopfloor serve` serves Shopfloor (see `bind_socket` and `_serve` in
`shopfloor/cli.py`): the same listening socket, then uvicorn with the same options, so
the ratio to it is the cost of Shopfloor's own code, not of the stack. Nothing of
Shopfloor is imported, so that its memory is the floor of Python and uvicorn alone;
`tests/bench` checks that the socket stays the same as the CLI's.

    python -m bench.anchor --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # Answered so that uvicorn runs with lifespan="on", as for Shopfloor.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 200 if scope["path"] == "/health" else 202
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, made by the very function `shopfloor serve` uses."""
    # Imported here, not at the top: `shopfloor serve` imports `bench` itself (the
    # aas_invoke scenario's plug-in) while `shopfloor.cli` is still being imported.
    from shopfloor.cli import bind_socket as cli_bind_socket

    return cli_bind_socket(host, port, option="--port", env="port")


def serve(host: str, port: int) -> None:
    from shopfloor.cli import _use_uvloop as use_uvloop

    sock = bind_socket(host, port)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    use_uvloop()  # the event loop `shopfloor serve` runs on
    try:
        asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
