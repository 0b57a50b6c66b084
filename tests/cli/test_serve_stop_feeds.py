"""`shopfloor serve` stopped while a client follows a feed: the feed ends as the server
begins to stop, so the stop does not wait out uvicorn's 10 s graceful timeout."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.serving import ServeProcess, plant


def test_a_followed_feed_ends_at_a_sigterm_and_the_server_stops_at_once(
    tmp_path: Path,
) -> None:
    server = ServeProcess(tmp_path / "data", {"SHOPFLOOR_SERVICES": "api,relations"},
                          name="feeds")  # fmt: skip
    try:
        server.wait_healthy()
        _, _, user = plant(server.url)
        opened, ended = threading.Event(), threading.Event()
        received: list[bytes] = []

        def follow() -> None:
            with httpx.stream(
                "GET", f"{server.url}/api/v1/relations/changes",
                params={"follow": "true"}, headers=user, timeout=60,
            ) as response:  # fmt: skip
                assert response.status_code == 200
                for chunk in response.iter_bytes():
                    received.append(chunk)
                    opened.set()
            ended.set()

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        assert opened.wait(30), "the feed did not open"
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(30)
        took = time.monotonic() - started
        assert ended.wait(10), "the feed did not end"
        assert code == 0, server.log.read_text()
        # Before, the server waited its 10 s graceful timeout for the follower.
        assert took < 5, f"the server took {took:.1f} s to stop"
        assert b"".join(received).startswith(b": following")
    finally:
        server.stop()
