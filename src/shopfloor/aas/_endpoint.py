"""One side of a shell's topic: what the Manager and every Core built on the SDK share.

An `Endpoint` writes its side's partition and reads the other's, as
docs/aas-protocol.md lays out:

- on start it reads its own partition back: the requests it answered already (so a
  replay of the other side's partition does not run them again) and the highest
  interaction id it used (so new ids never repeat one);
- it publishes `booting`, starts reading the other partition from the earliest
  record, publishes `booted`, and becomes `running` once the other side is `booted`
  or `running` (publishing that too): neither side works before both booted;
- requests of the other side wait until then, run concurrently, and are answered
  once each; a request whose requester's timeout passed is not run;
- `request(...)` waits for both sides to be `running`, publishes, and awaits the
  response matched by interaction id; it fails with `AasUnavailable` when the other
  side is not running in time, does not answer in time, or this side stops;
- on close it publishes `stopping`, lets running handlers finish (up to `grace`
  seconds), then publishes `idle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from shopfloor.core import Backoff, Lifecycle

from ._errors import AasError, AasUnavailable, InvalidAasMessage
from .protocol import (
    Decoded,
    InteractionIds,
    MessageKind,
    Request,
    Response,
    ResponseStatus,
    Side,
    SmiaContext,
    State,
    Status,
    decode,
    encode,
    message_key,
)
from .transports import Transport

__all__ = ["Endpoint", "Handler", "Reply"]

logger = logging.getLogger(__name__)

#: Seconds a closing endpoint lets running handlers finish before it cancels them.
DEFAULT_GRACE = 10.0
PUBLISH_RETRY = Backoff(base=0.1, cap=5.0, min_fraction=0.5)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler answers: the response's status, result and error."""

    status: ResponseStatus = ResponseStatus.COMPLETED
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Reply:
        return cls(ResponseStatus.FAILED, {}, error)


#: Runs a request of the other side; an exception is a `Failed` response.
Handler = Callable[[Request], Awaitable[Reply]]


class Endpoint(Lifecycle):
    def __init__(
        self,
        transport: Transport,
        topic: str,
        side: Side,
        handler: Handler,
        *,
        grace: float = DEFAULT_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.transport = transport
        self.topic = topic
        self.side = side
        self.session = uuid.uuid4().hex
        self.state = State.BOOTING
        #: The other side's last published state (None before it published one).
        self.peer_state: State | None = None
        self._peer_session: str | None = None
        self._handler = handler
        self._grace = grace
        self._clock = clock
        self._ids = InteractionIds(side, clock=clock)
        self._handled: set[str] = set()
        self._running_handlers: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._changed = asyncio.Condition()
        self._gone = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def _start(self, stack: AsyncExitStack) -> None:
        await self.transport.ensure_topic(self.topic)
        for record in await self.transport.snapshot(self.topic, self.side.writes):
            decoded = self._decode(record.key, record.value)
            if decoded is None or decoded.side is not self.side:
                continue
            if isinstance(decoded.message, Request):
                self._ids.saw(decoded.message.interaction_id)
            elif isinstance(decoded.message, Response):
                self._handled.add(decoded.ref)
        await self._become(State.BOOTING)
        await self.spawn(f"aas-{self.side}-read-{self.topic}", self._read, cancel_on_stop=True)
        stack.push_async_callback(self._goodbye)
        await self._become(State.BOOTED)
        await self._maybe_run()

    async def _goodbye(self) -> None:
        self._gone.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AasUnavailable(f"the {self.side} is stopping"))
        with contextlib.suppress(AasError):
            await self._become(State.STOPPING)
        handlers = list(self._running_handlers.values())
        if handlers:
            _, late = await asyncio.wait(handlers, timeout=self._grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(AasError):
            await self._become(State.IDLE)

    async def wait_running(self, within: float) -> None:
        """Until both sides are `running`, or `AasUnavailable` after `within` seconds."""
        if not await self._until(self._both_running, within):
            raise AasUnavailable(
                f"the {self.side.other} is {self.peer_state or 'not connected'} after "
                f"{within:g} s; requests wait until it runs",
                code="aas_peer_not_running",
            )

    # -- requests to the other side --------------------------------------------------

    async def request(
        self,
        service_id: str,
        service_type: str,
        parameters: Mapping[str, Any],
        *,
        within: float,
        thread: str | None = None,
    ) -> Response:
        """Ask the other side; its response, or `AasUnavailable` after `within` seconds
        (which the request carries as its `timeout`)."""
        deadline = asyncio.get_running_loop().time() + within
        await self.wait_running(within)
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
        interaction_id = self._ids.next()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[interaction_id] = future
        try:
            request = Request(
                interaction_id=interaction_id,
                thread=thread,
                service_id=service_id,
                service_type=service_type,
                parameters=dict(parameters),
                timestamp=self._clock(),
                timeout=remaining,
            )
            await self._publish(MessageKind.REQUEST, request)
            try:
                return await asyncio.wait_for(asyncio.shield(future), remaining)
            except TimeoutError:
                raise AasUnavailable(
                    f"the {self.side.other} did not answer {service_id} within {within:g} s",
                    code="aas_peer_timeout",
                ) from None
        finally:
            self._pending.pop(interaction_id, None)
            if not future.done():
                future.cancel()

    # -- reading the other side ------------------------------------------------------

    async def _read(self, stopping: asyncio.Event) -> None:
        partition = self.side.other.writes
        async with contextlib.aclosing(self.transport.read(self.topic, partition)) as records:
            async for record in records:
                decoded = self._decode(record.key, record.value)
                if decoded is None or decoded.side is self.side:
                    continue
                if isinstance(decoded.message, Status):
                    await self._peer_status(decoded.message)
                elif isinstance(decoded.message, Request):
                    await self._take_request(decoded)
                else:
                    self._take_response(decoded.message)

    def _decode(self, key: str, value: bytes) -> Decoded | None:
        try:
            return decode(key, value)
        except InvalidAasMessage as exc:
            logger.warning("AAS topic %s: skipped a record: %s", self.topic, exc)
            return None

    async def _peer_status(self, status: Status) -> None:
        new_session = status.session != self._peer_session
        self._peer_session = status.session
        self.peer_state = status.state
        if new_session and status.state is State.BOOTING and self.state is State.RUNNING:
            # Tell the side that starts again that this one runs (and still lives).
            with contextlib.suppress(AasError):
                await self._publish(MessageKind.STATUS, self._status())
        await self._maybe_run()
        await self._notify()

    async def _maybe_run(self) -> None:
        if self.state is State.BOOTED and self.peer_state in (State.BOOTED, State.RUNNING):
            await self._become(State.RUNNING)

    async def _take_request(self, decoded: Decoded) -> None:
        ref = decoded.ref
        if ref in self._handled or ref in self._running_handlers:
            return
        tasks = await self.task_group()
        self._running_handlers[ref] = tasks.create_task(
            self._handle(decoded, ref), name=f"aas-{self.side}-handle-{ref}"
        )

    async def _handle(self, decoded: Decoded, ref: str) -> None:
        request = decoded.message
        assert isinstance(request, Request)
        try:
            await self._until(lambda: self.state is State.RUNNING or self._gone.is_set(), None)
            if self._gone.is_set():
                return  # not run, so not handled: the next start runs it
            if decoded.smia is None and request.timestamp + request.timeout < self._clock():
                logger.info(
                    "AAS topic %s: %s %s came too late to run", self.topic, request.service_id, ref
                )
                self._handled.add(ref)
                return
            reply = await self._run_handler(request)
            await self._answer(decoded, reply)
            self._handled.add(ref)
        except AasError as exc:
            logger.warning("AAS topic %s: could not answer %s: %s", self.topic, ref, exc)
        finally:
            self._running_handlers.pop(ref, None)

    async def _answer(self, decoded: Decoded, reply: Reply) -> None:
        """Publish the response, again after a failure of the transport until it is
        published or this side stops (a response lost would leave the request unanswered
        until the next start)."""
        request = decoded.message
        assert isinstance(request, Request)
        fields = {
            "interaction_id": request.interaction_id,
            "thread": request.thread,
            "service_id": request.service_id,
            "service_type": request.service_type,
        }
        response = Response(
            **fields,
            status=reply.status,
            result=dict(reply.result),
            error=reply.error,
            timestamp=self._clock(),
        )
        try:
            value = encode(response, smia=decoded.smia)
        except (TypeError, ValueError) as exc:
            failed = Reply.failed(f"the result of {request.service_id} is not JSON: {exc}")
            response = Response(
                **fields, status=failed.status, error=failed.error, timestamp=self._clock()
            )
            value = encode(response, smia=decoded.smia)
        key = message_key(self.side, MessageKind.RESPONSE)
        for attempt in itertools.count():
            try:
                await self.transport.publish(self.topic, self.side.writes, key, value)
                return
            except AasUnavailable:
                if self._gone.is_set():
                    raise
                await asyncio.sleep(PUBLISH_RETRY.delay(attempt + 1))

    async def _run_handler(self, request: Request) -> Reply:
        try:
            return await self._handler(request)
        except AasError as exc:
            return Reply.failed(str(exc))
        except Exception as exc:
            logger.exception("AAS topic %s: %s failed", self.topic, request.service_id)
            return Reply.failed(f"{type(exc).__name__}: {exc}")

    def _take_response(self, response: Response) -> None:
        future = self._pending.get(response.interaction_id)
        if future is not None and not future.done():
            future.set_result(response)

    # -- inside ----------------------------------------------------------------------

    def _both_running(self) -> bool:
        return (
            self.state is State.RUNNING
            and self.peer_state is State.RUNNING
            and not self._gone.is_set()
        )

    def _status(self) -> Status:
        return Status(state=self.state, session=self.session, timestamp=self._clock())

    async def _become(self, state: State) -> None:
        self.state = state
        await self._notify()
        await self._publish(MessageKind.STATUS, self._status())

    async def _publish(
        self,
        kind: MessageKind,
        message: Status | Request | Response,
        *,
        smia: SmiaContext | None = None,
    ) -> None:
        await self.transport.publish(
            self.topic, self.side.writes, message_key(self.side, kind), encode(message, smia=smia)
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _until(self, condition: Callable[[], bool], within: float | None) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(condition), within)
            except TimeoutError:
                return False
        return True
