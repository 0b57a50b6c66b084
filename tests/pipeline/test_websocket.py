"""WebSocket adapter against a real server: subscribe, publish, authenticate, refuse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from shopfloor.app import create_app
from shopfloor.httpserver import server_config
from shopfloor.settings import Settings

from ..api.conftest import Api
from ..serving import served_app
from .conftest import Plant, build_plant


@pytest.fixture
async def served(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Plant, str]]:
    """A platform served by uvicorn on a free port; yields the plant and ws://host:port."""
    settings = make_settings()
    app = create_app(settings)
    async with (
        served_app(server_config(app, settings)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        plant = await build_plant(Api(http, app.state.platform))
        yield plant, f"ws://127.0.0.1:{port}"


def _url(base: str, plant: Plant, suffix: str = "") -> str:
    return f"{base}/ws/channels/{plant.channel}/messages{suffix}"


async def _next_json(ws: Any) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_subscriber_receives_http_messages(served: tuple[Plant, str]) -> None:
    plant, base = served
    async with websockets.connect(
        _url(base, plant, "?format=envelope"), additional_headers=plant.key("reader")
    ) as ws:
        got = await _first_delivery(plant, ws)
    assert got["publisher"] == plant.things["press"]["id"]
    assert got["protocol"] == "http"
    assert json.loads(got["payload"]) == [{"n": "probe", "v": 1}]


async def _first_delivery(plant: Plant, ws: Any) -> Any:
    """Publish until one reaches the socket: its bus subscription is made asynchronously."""
    for _ in range(50):
        assert (await plant.publish("press", '[{"n": "probe", "v": 1}]')).status_code == 202
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 0.2))
        except TimeoutError:
            continue
    raise AssertionError("the subscription never delivered")


async def test_publisher_frames_are_stored(served: tuple[Plant, str]) -> None:
    plant, base = served
    async with websockets.connect(_url(base, plant, "/line-a")) as ws:
        await ws.send(f"Thing {plant.things['press']['key']}")  # key as the first frame
        await ws.send('[{"n": "ws-temp", "v": 21.5}]')
        await ws.send("not json at all")
        error = await _next_json(ws)
        assert error["error"]["code"] == "invalid_json"
        await ws.send(b'{"depth": 3.5}')
    stored = await plant.wait_for(2, subtopic="line-a")
    assert {(m["name"], m["value"], m["protocol"]) for m in stored["messages"]} == {
        ("ws-temp", 21.5, "websocket"),
        ("depth", 3.5, "websocket"),
    }
    assert {m["publisher"] for m in stored["messages"]} == {plant.things["press"]["id"]}


async def test_subscribe_only_thing_cannot_publish(served: tuple[Plant, str]) -> None:
    plant, base = served
    async with websockets.connect(_url(base, plant), additional_headers=plant.key("reader")) as ws:
        await ws.send('[{"n": "x", "v": 1}]')
        frame = await _next_json(ws)
        if "error" not in frame:  # a message from the channel may come first
            frame = await _next_json(ws)
        assert frame["error"]["code"] == "publish_not_allowed"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authorization": "Thing wrong-key-wrong-key"}, 4401),
        (None, 4403),  # the stranger thing: valid key, not connected
    ],
)
async def test_refused_sockets_are_closed_with_a_code(
    served: tuple[Plant, str], headers: dict[str, str] | None, code: int
) -> None:
    plant, base = served
    async with websockets.connect(
        _url(base, plant), additional_headers=headers or plant.key("stranger")
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def _closed_within(ws: Any, seconds: float) -> int:
    """The close code the server sends within `seconds`, reading past channel messages."""
    deadline = asyncio.get_running_loop().time() + seconds
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, "the socket is still open"
            await asyncio.wait_for(ws.recv(), remaining)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def _reader_connection(plant: Plant) -> str:
    return f"/api/v1/channels/{plant.channel}/things/{plant.things['reader']['id']}"


@pytest.mark.parametrize(
    ("change", "code"),
    [("rotate", 4401), ("delete", 4401), ("disconnect", 4403), ("delete channel", 4403)],
)
async def test_a_subscriber_is_closed_when_its_credentials_end(
    served: tuple[Plant, str], change: str, code: int
) -> None:
    plant, base = served
    reader = plant.things["reader"]
    http = plant.api.http
    async with websockets.connect(
        _url(base, plant, "?format=envelope"), additional_headers=plant.key("reader")
    ) as ws:
        await _first_delivery(plant, ws)  # subscribed and receiving
        if change == "rotate":
            answer = await http.post(f"/api/v1/things/{reader['id']}/key", headers=plant.user)
        elif change == "delete":
            answer = await http.delete(f"/api/v1/things/{reader['id']}", headers=plant.user)
        elif change == "disconnect":
            answer = await http.delete(_reader_connection(plant), headers=plant.user)
        else:
            answer = await http.delete(f"/api/v1/channels/{plant.channel}", headers=plant.user)
        assert answer.status_code in (200, 204), answer.text
        assert await _closed_within(ws, 1.0) == code


async def test_a_publisher_is_closed_when_its_key_is_rotated(served: tuple[Plant, str]) -> None:
    plant, base = served
    press = plant.things["press"]
    async with websockets.connect(_url(base, plant), additional_headers=plant.key("press")) as ws:
        await ws.send('[{"n": "before", "v": 1}]')
        await plant.wait_for(1, name="before")
        rotated = await plant.api.http.post(f"/api/v1/things/{press['id']}/key", headers=plant.user)
        assert rotated.status_code == 200
        assert await _closed_within(ws, 1.0) == 4401


async def test_a_socket_whose_thing_keeps_its_permissions_stays_open(
    served: tuple[Plant, str],
) -> None:
    plant, base = served
    async with websockets.connect(
        _url(base, plant, "?format=envelope"), additional_headers=plant.key("reader")
    ) as ws:
        await _first_delivery(plant, ws)
        # Another thing's key changes, and the reader's own connection is granted again.
        press = plant.things["press"]
        rotated = await plant.api.http.post(f"/api/v1/things/{press['id']}/key", headers=plant.user)
        press["key"] = rotated.json()["key"]
        regranted = await plant.api.http.put(
            _reader_connection(plant), json={"permissions": ["subscribe"]}, headers=plant.user
        )
        assert regranted.status_code in (200, 201, 204), regranted.text
        assert (await _first_delivery(plant, ws))["publisher"] == press["id"]
