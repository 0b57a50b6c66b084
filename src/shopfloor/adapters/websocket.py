"""WebSocket adapter: `/ws/channels/{channel_id}/messages[/{subtopic}]`.

A thing authenticates with `Authorization: Thing <key>` on the upgrade request or with
its key as the first text frame. With `subscribe` permission it receives every message
of the channel (of the subtopic, when the URL names one) from any protocol, as the raw
payload: a text frame for UTF-8 payloads, a binary frame otherwise; `?format=envelope`
sends JSON objects with the publisher, subtopic and protocol instead. With `publish`
permission each frame it sends is a message (content type detected like MQTT's);
a refused frame is answered with `{"error": {"code", "message"}}` and the socket stays
open.

Over HTTPS a client certificate naming the thing stands in for the key (no header, no
first frame needed; the key wins when one is sent); revoking the certificate closes the
session with 4401 at once.

A session ends when its credentials do, whichever process made the change: a registry
event about its thing or its channel (key rotated, thing deleted, disconnected,
permissions changed, channel deleted) makes it check its key and permissions again,
and it closes with 4401 (the key no longer authenticates the thing) or 4403 (a
permission the session uses is gone) within milliseconds of the change.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from shopfloor.auth import AuthenticatedThing, thing_key
from shopfloor.core import ErrorKind
from shopfloor.ingress import Ingress, IngressError, sniff_content_type
from shopfloor.ingress.capability import IngressService
from shopfloor.messaging import Envelope, Event, channel_filters, is_valid_subtopic
from shopfloor.messaging.capability import BusService
from shopfloor.pki import CertificateGate, CertificateRefused, Revoked
from shopfloor.registry import Permission, RegistryChange

from .http import client_certificate
from .tls import CertifiedThing, admit_thing

logger = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT = 10.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_INVALID = 4400


@router.websocket("/ws/channels/{channel_id}/messages")
async def channel_socket(websocket: WebSocket, channel_id: str, format: str = "raw") -> None:
    await _serve(websocket, channel_id, "", format)


@router.websocket("/ws/channels/{channel_id}/messages/{subtopic:path}")
async def subtopic_socket(
    websocket: WebSocket, channel_id: str, subtopic: str, format: str = "raw"
) -> None:
    await _serve(websocket, channel_id, subtopic, format)


async def _serve(websocket: WebSocket, channel_id: str, subtopic: str, fmt: str) -> None:
    ingress = websocket.app.state.platform.get(IngressService).ingress
    await websocket.accept()
    if not is_valid_subtopic(subtopic) or fmt not in ("raw", "envelope"):
        await websocket.close(CLOSE_INVALID, "invalid subtopic or format")
        return
    authenticated = await _authenticate(websocket, ingress)
    if authenticated is None:
        return
    thing, key = authenticated
    gate = _gate(websocket)
    permissions = await ingress.access.permissions(thing.id, channel_id)
    if not permissions:
        await websocket.close(CLOSE_FORBIDDEN, "the thing is not connected to this channel")
        return
    changed = asyncio.Event()

    def on_change(event: Event) -> None:
        # Only a flag: the check runs in the session's task, once every listener of this
        # event (the credential cache among them) has seen it.
        try:
            change = RegistryChange.from_data(event.data)
        except (KeyError, ValueError):
            changed.set()  # cannot tell: check again, which costs one cached look-up
            return
        if thing.id in change.thing_ids or change.channel_id == channel_id:
            changed.set()

    def on_revoked(revoked: Revoked) -> None:
        if isinstance(key, CertifiedThing) and revoked.serial == key.serial:
            changed.set()

    events = websocket.app.state.platform.get(BusService).events
    unwatch = gate.on_revoked(on_revoked) if gate is not None else (lambda: None)
    try:
        with events.listen("registry.>", on_change):
            async with asyncio.TaskGroup() as tasks:
                session = [
                    tasks.create_task(
                        _receive(websocket, ingress, thing, channel_id, subtopic, permissions),
                        name=f"ws-receive-{thing.id}",
                    )
                ]
                if Permission.SUBSCRIBE in permissions:
                    session.append(tasks.create_task(
                        _forward(websocket, ingress, channel_id, subtopic, fmt),
                        name=f"ws-forward-{thing.id}",
                    ))  # fmt: skip
                session.append(tasks.create_task(
                    _revoke(websocket, ingress, key, thing, channel_id, permissions, changed, gate),
                    name=f"ws-credentials-{thing.id}",
                ))  # fmt: skip
                for task in session:
                    # The first to end (the client left, or its credentials did) ends all.
                    task.add_done_callback(lambda _done: [t.cancel() for t in session])
    except* WebSocketDisconnect:
        pass
    finally:
        unwatch()


async def _revoke(
    websocket: WebSocket,
    ingress: Ingress,
    key: str | CertifiedThing,
    thing: AuthenticatedThing,
    channel_id: str,
    permissions: frozenset[Permission],
    changed: asyncio.Event,
    gate: CertificateGate | None,
) -> None:
    """Close the socket once a registry change (or a revocation) takes away what the
    session relies on."""
    while True:
        await changed.wait()
        changed.clear()
        if isinstance(key, CertifiedThing):
            revoked = gate is None or gate.is_revoked(key.serial)
            current = None if revoked else await ingress.access.thing(thing.id)
        else:
            current = await ingress.access.authenticate(key)
        if current is None or current.id != thing.id:
            what = "certificate" if isinstance(key, CertifiedThing) else "key"
            await _close(websocket, CLOSE_UNAUTHENTICATED, f"the thing's {what} is no longer valid")
            return
        if not permissions <= await ingress.access.permissions(thing.id, channel_id):
            await _close(
                websocket, CLOSE_FORBIDDEN, "the thing's permissions on this channel changed"
            )
            return


def _gate(websocket: WebSocket) -> CertificateGate | None:
    from .capability import HttpService

    platform = websocket.app.state.platform
    return platform.get(HttpService).gate if platform.running(HttpService) else None


async def _authenticate(
    websocket: WebSocket, ingress: Ingress
) -> tuple[AuthenticatedThing, str | CertifiedThing] | None:
    key = thing_key(websocket.headers.get("authorization", ""))
    certificate, gate = client_certificate(websocket.scope), _gate(websocket)
    if not key and certificate is not None and gate is not None:
        try:
            certified = await admit_thing(gate, ingress.access, certificate)
        except CertificateRefused as exc:
            await _close(websocket, CLOSE_UNAUTHENTICATED, exc.code)
            return None
        return certified.thing, certified
    if not key:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT)
        except (TimeoutError, WebSocketDisconnect, KeyError):
            await _close(websocket, CLOSE_UNAUTHENTICATED, "send the thing key first")
            return None
        key = thing_key(first)
    try:
        return await ingress.authenticate(key), key
    except IngressError:
        await _close(websocket, CLOSE_UNAUTHENTICATED, "unknown thing key")
        return None


async def _receive(
    websocket: WebSocket,
    ingress: Ingress,
    thing: AuthenticatedThing,
    channel_id: str,
    subtopic: str,
    permissions: frozenset[Permission],
) -> None:
    """Publish each frame the thing sends; returns when the socket closes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        payload = message.get("bytes")
        if payload is None:
            payload = (message.get("text") or "").encode()
        try:
            if Permission.PUBLISH not in permissions:
                raise IngressError(
                    "the thing may not publish here",
                    code="publish_not_allowed",
                    kind=ErrorKind.FORBIDDEN,
                )
            await ingress.publish(
                thing, channel_id, subtopic, payload, sniff_content_type(payload),
                protocol="websocket",
            )  # fmt: skip
        except IngressError as exc:
            await websocket.send_text(
                json.dumps({"error": {"code": exc.code, "message": exc.message}})
            )


async def _forward(
    websocket: WebSocket, ingress: Ingress, channel_id: str, subtopic: str, fmt: str
) -> None:
    """Send the channel's messages from the bus to the socket until cancelled."""
    filters = channel_filters(channel_id)
    if subtopic:
        filters = (f"{filters[0]}.{subtopic.replace('/', '.')}",)
    async with ingress.bus.subscribe(filters) as subscription:
        async for envelope in subscription:
            if envelope.subtopic.startswith("_"):
                continue  # platform subtopics (error reports) are for their addressee only
            if fmt == "envelope":
                await websocket.send_text(json.dumps(_envelope_json(envelope)))
            else:
                await _send_payload(websocket, envelope.payload)


async def _send_payload(websocket: WebSocket, payload: bytes) -> None:
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        await websocket.send_bytes(payload)
        return
    await websocket.send_text(text)


def _envelope_json(envelope: Envelope) -> dict[str, Any]:
    try:
        payload: Any = envelope.payload.decode()
        encoding = "utf-8"
    except UnicodeDecodeError:
        payload = base64.b64encode(envelope.payload).decode()
        encoding = "base64"
    return {
        "id": envelope.id,
        "channel": envelope.channel,
        "subtopic": envelope.subtopic,
        "publisher": envelope.publisher,
        "protocol": envelope.protocol,
        "created": envelope.created / 1e9,
        "content_type": envelope.content_type,
        "payload": payload,
        "payload_encoding": encoding,
    }


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code, reason)
