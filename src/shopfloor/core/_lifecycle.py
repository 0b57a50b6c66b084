"""The lifecycle every object that owns connections and background loops shares.

    class Poller(Lifecycle):
        async def _start(self, stack: AsyncExitStack) -> None:
            self.client = await stack.enter_async_context(Client(url))
            await self.spawn("poll", self._poll)    # runs until `stopping` is set

        async def _poll(self, stopping: asyncio.Event) -> None: ...

    async with Poller() as poller: ...

Entered once, closed once. What `_start` puts on the exit stack is released in
reverse on close, also when `_start` fails half-way. Background loops run in a
`TaskGroup` entered on the same stack at the first `spawn`, so on close they are
told to stop (their `stopping` event, or a cancellation) and awaited before anything
acquired earlier is released. A loop that fails is logged and started again after a
capped, jittered backoff; a loop never takes the process down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self, TypeVar

from ._backoff import Backoff

__all__ = ["Lifecycle", "Loop", "Opened", "first_set", "until_set"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def first_set(*events: asyncio.Event, within: float | None = None) -> None:
    """Until one of `events` is set, or `within` seconds passed (no error then).

    A loop that waits for work or a timer waits for its `stopping` this way too, so it
    ends at once when it is told to, not at the end of its wait.
    """
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def until_set(stop: asyncio.Event, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """`items` until `stop` is set; then the wait for the next item is cancelled and
    `items` closed (a followed feed ends when its server begins to stop). Cancelled
    itself (the client went away), it cancels that wait and closes `items` too."""
    stopped = asyncio.ensure_future(stop.wait())
    following: asyncio.Future[T] | None = None
    try:
        while not stop.is_set():
            following = asyncio.ensure_future(anext(items))
            await asyncio.wait((following, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            following = None
            yield item
    finally:
        stopped.cancel()
        if following is not None and not following.done():
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await following
        close = getattr(items, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


#: A background loop: runs until the event is set, then returns.
Loop = Callable[[asyncio.Event], Awaitable[None]]


class Lifecycle:
    """Base for async context managers that own resources and background loops."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self._entered = False
        self._closed = False
        self._stopping = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._cancel_on_stop: list[asyncio.Task[None]] = []

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _start(self, stack: AsyncExitStack) -> None:
        """Acquire what the object needs, registering its release on `stack`."""

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError(f"{type(self).__name__} can be entered only once")
        self._entered = True
        try:
            await self._start(self._stack)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        await self._stack.aclose()

    async def spawn(
        self, name: str, loop: Loop, *, restart: bool = True, cancel_on_stop: bool = False
    ) -> asyncio.Task[None]:
        """Run `loop` in the background until close (from `_start` on).

        `cancel_on_stop` cancels the loop on close instead of waiting for it to see
        `stopping`; `restart` runs it again, after a backoff, when it fails. The first
        call enters the task group on the stack: loops stop before everything acquired
        until then is released, and after what is acquired later.
        """
        tasks = await self.task_group()
        body: Coroutine[Any, Any, None] = (
            self._supervised(name, loop) if restart else _as_coroutine(loop(self._stopping))
        )
        task = tasks.create_task(body, name=name)
        if cancel_on_stop:
            self._cancel_on_stop.append(task)
        return task

    async def task_group(self) -> asyncio.TaskGroup:
        """The task group of this object's loops, entered on its stack at the first call.

        For objects that hand it on (a broker gives each connection a task in it).
        """
        if self._tasks is None:
            self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
            # Registered after the task group, so it runs first on close: the loops are
            # told to stop, then the task group's exit waits for them.
            self._stack.callback(self._signal_stop)
        return self._tasks

    def _signal_stop(self) -> None:
        self._stopping.set()
        for task in self._cancel_on_stop:
            task.cancel()

    async def _supervised(self, name: str, loop: Loop) -> None:
        backoff = Backoff(base=0.5, cap=30.0, min_fraction=0.5)
        failures = 0
        while not self._stopping.is_set():
            try:
                await loop(self._stopping)
                return
            except Exception:
                failures += 1
                delay = backoff.delay(failures)
                logger.exception("%s failed; restarting in %.1f s", name, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


class Opened(ABC):
    """A connection to an engine, opened by `open()` and closed by `close()`, or by
    `async with`, which closes it whatever happens inside: the bus and AAS transport
    backends. (Unlike a `Lifecycle` it may be opened again after a close.)"""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
