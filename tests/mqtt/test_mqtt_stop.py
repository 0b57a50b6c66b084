"""SIGTERM while an MQTT client keeps publishing: the server stops within a bounded time,
and every message it acknowledged (PUBACK) is stored."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho

from ..serving import ServeProcess, free_port, plant, serving

#: The documented bound (docs/messaging.md): the broker closes its connections at once,
#: the writer drains what the bus holds (up to 30 s; here a few hundred messages).
STOP_WITHIN = 15.0


class Publisher:
    """A QoS 1 publisher that floods without pause and never stops on its own, counting
    PUBACKs (a steady stream is what kept amqtt's reader from seeing its cancellation)."""

    def __init__(self, port: int, thing: dict[str, object], channel: str) -> None:
        self.acked: set[int] = set()
        self.sent: dict[int, int] = {}  # mid -> value
        self._lock = threading.Lock()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        client.username_pw_set(str(thing["id"]), str(thing["key"]))
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client
        self.topic = f"channels/{channel}/messages/stop"
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_publish(self, _client: object, _userdata: object, mid: int, *_rest: object) -> None:
        with self._lock:
            self.acked.add(mid)

    def _run(self) -> None:
        value = 0
        # At most 60,000: paho's message ids wrap at 65,535, and each must name one value.
        while self._running and value < 60_000:
            info = self.client.publish(self.topic, f'[{{"n": "seq", "v": {value}}}]', qos=1)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                with self._lock:
                    self.sent[info.mid] = value
                value += 1
            else:
                time.sleep(0.001)  # paho's queue is full: let its loop send

    def acked_values(self) -> set[int]:
        with self._lock:
            return {self.sent[mid] for mid in self.acked if mid in self.sent}

    def stop(self) -> None:
        self._running = False
        self._thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()


async def test_sigterm_with_a_publishing_client_stops_in_time_and_keeps_what_it_acked(
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(_scenario, tmp_path)


class Flood:
    """`mosquitto_pub -l` fed as fast as it takes lines: a stream that never pauses."""

    def __init__(self, port: int, thing: dict[str, object], channel: str) -> None:
        self.process = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv311", "-q", "1",
             "-u", str(thing["id"]), "-P", str(thing["key"]),
             "-t", f"channels/{channel}/messages/flood", "-l"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._running = True
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        value = 0
        while self._running:
            try:
                stdin.write(f'[{{"n": "flood", "v": {value}}}]\n'.encode())
                stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            value += 1

    def stop(self) -> None:
        self._running = False
        self.process.kill()
        self.process.wait()
        self._thread.join(5)
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()


def _scenario(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.parent.mkdir(exist_ok=True)
    port = free_port()
    server = ServeProcess(data, {"SHOPFLOOR_MQTT_PORT": str(port)}, name="mqtt-stop")
    publisher: Publisher | None = None
    flood: Flood | None = None
    try:
        server.wait_healthy()
        channel, thing, user = plant(server.url)
        flood = Flood(port, thing, channel)
        publisher = Publisher(port, thing, channel)
        deadline = time.monotonic() + 20
        while len(publisher.acked) < 200:
            assert time.monotonic() < deadline, "the broker acknowledges nothing"
            time.sleep(0.05)
        stopping = time.monotonic()
        assert server.stop() == 0, server.log.read_text()
        took = time.monotonic() - stopping
        acked = publisher.acked_values()
    finally:
        if publisher is not None:
            publisher.stop()
        if flood is not None:
            flood.stop()
        server.stop()
    assert took < STOP_WITHIN, f"stopping took {took:.1f} s"

    with serving(data, {"SHOPFLOOR_SERVICES": "api"}, name="reader") as reader:
        stored: set[float] = set()
        for offset in range(0, len(acked) + 1000, 1000):
            page = httpx.get(
                f"{reader.url}/api/v1/channels/{channel}/messages",
                params={"limit": 1000, "offset": offset, "subtopic": "stop"},
                headers=user,
            ).json()
            stored |= {m["value"] for m in page["messages"]}
    assert acked <= {int(v) for v in stored}, "an acknowledged message was lost"
