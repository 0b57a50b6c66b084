"""`RelationCache`: an organisation's relation graph inside an agent, answered locally.

    headers = {"Authorization": f"Bearer {token}"}
    async with RelationCache("https://plant.example", headers) as cache:
        result = cache.check("agent:cell-1", "controls", "agent:press-01")
        if not result.allowed: ...

Entering loads every tuple (paged by cursor) and the schema over HTTP, then follows
`/api/v1/relations/changes?follow=true` in the background: each revision is applied
whole when its `revision` event arrives, so a check never sees half a write. A lost
connection is followed again with capped, jittered backoff from the last revision
received (`since`); a `reset` (the platform no longer keeps changes that old) loads
everything again. Meanwhile checks answer from the last state (`connected` says
whether the cache follows now). `check` is the platform's own algorithm
(`shopfloor.auth.relations.RelationGraph`) and costs microseconds: no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx

from shopfloor.auth.relations import (
    DEFAULT_MAX_DEPTH,
    Change,
    Checkpoint,
    CheckResult,
    RelationError,
    RelationGraph,
    RelationTuple,
    Reset,
    SchemaChange,
    SseDecoder,
    parse_schema,
)
from shopfloor.core import Backoff, Lifecycle

from ._errors import RelationsRefused, RelationsUnreachable

__all__ = ["RelationCache"]

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/relations"
Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]
Verify = bool | str | os.PathLike[str] | ssl.SSLContext


class RelationCache(Lifecycle):
    """The relation graph of the organisation `auth_headers` sign in to, kept current.

    `auth_headers` is a mapping, or a function returning one (called for every request,
    so a token can be renewed). `idle_timeout` is how long a followed feed may stay
    silent before the connection counts as lost: the platform sends a keep-alive every
    `SHOPFLOOR_RELATIONS_FEED_KEEPALIVE_SECONDS` (15 s by default).
    """

    def __init__(
        self,
        base_url: str,
        auth_headers: Headers,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        page_size: int = 1000,
        timeout: float = 10.0,
        idle_timeout: float = 45.0,
        verify: Verify = True,
        backoff: Backoff | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.max_depth = max_depth
        self._auth = auth_headers
        self._page_size = page_size
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._verify = verify
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._transport = transport
        self._graph: RelationGraph | None = None
        self._advanced = asyncio.Event()
        self.connected = False
        self.reconnects = 0

    async def _start(self, stack: AsyncExitStack) -> None:
        verify: Any = (
            self._verify
            if isinstance(self._verify, bool | ssl.SSLContext)
            else os.fspath(self._verify)
        )
        self._http = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, verify=verify,
                transport=self._transport,
            )
        )  # fmt: skip
        await self._load()
        await self.spawn("relation-cache-follow", self._follow, restart=False, cancel_on_stop=True)

    # -- answers ---------------------------------------------------------------------------

    @property
    def graph(self) -> RelationGraph:
        if self._graph is None:
            raise RelationsUnreachable("the relation cache is not loaded: enter it first")
        return self._graph

    @property
    def revision(self) -> int:
        return self.graph.revision

    def check(self, subject: str, relation: str, obj: str) -> CheckResult:
        """Whether `subject` holds `relation` on `obj`, from the cached graph."""
        return self.graph.check(subject, relation, obj, max_depth=self.max_depth)

    def allows(self, subject: str, relation: str, obj: str) -> bool:
        """`check(...).allowed`: the checker an `Agent` takes (`Agent(checker=cache.allows)`)."""
        return self.check(subject, relation, obj).allowed

    async def wait_for(self, revision: int, *, timeout: float) -> bool:  # noqa: ASYNC109
        """Until the cache holds `revision` (e.g. the one a write answered); False if it
        did not within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.revision < revision:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), timeout=left)
        return True

    # -- loading ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return dict(self._auth() if callable(self._auth) else self._auth)

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            response = await self._http.get(path, params=params, headers=self._headers())
        except httpx.HTTPError as exc:
            raise RelationsUnreachable(f"cannot reach {self.base_url}: {exc}") from exc
        return _json(response)

    async def _load(self) -> None:
        """Every tuple and the schema; the graph is swapped in whole."""
        items: list[RelationTuple] = []
        revision: int | None = None
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self._page_size}
            if after is not None:
                params["after"] = after
            page = await self._get(PREFIX, params)
            if revision is None:
                revision = int(page["revision"])  # the changes after it are followed
            items.extend(RelationTuple.from_json(item) for item in page["items"])
            after = page.get("next")
            if after is None:
                break
        # Read after the first page's revision: a later schema change is replayed too.
        schema = parse_schema((await self._get(f"{PREFIX}/schema"))["schema"])
        self._graph = RelationGraph(schema, items, revision=revision)
        self._tell()
        logger.info("relation cache loaded %d tuples at revision %d", len(items), revision)

    def _tell(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

    # -- following -------------------------------------------------------------------------

    async def _follow(self, stopping: asyncio.Event) -> None:
        failures = 0
        while not stopping.is_set():
            try:
                if await self._stream():
                    continue  # loaded again after a reset: follow from there at once
            except (httpx.HTTPError, RelationError) as exc:
                if failures == 0:
                    logger.warning("relation cache lost the change feed: %s", exc)
            # A feed that was followed starts the backoff afresh; failing ones climb it.
            failures = 0 if self.connected else failures + 1
            self.connected = False
            self.reconnects += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self._backoff.delay(failures))

    async def _stream(self) -> bool:
        """Follow the feed until it ends; True after a reset (loaded again)."""
        params: dict[str, str | int] = {"since": self.revision, "follow": "true"}
        timeout = httpx.Timeout(self._timeout, read=self._idle_timeout)
        async with self._http.stream(
            "GET", f"{PREFIX}/changes", params=params, headers=self._headers(), timeout=timeout
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                _json(response)
            decoder = SseDecoder()
            pending: list[Change | SchemaChange] = []
            async for line in response.aiter_lines():
                self.connected = True
                item = decoder.line(line)
                if isinstance(item, Change | SchemaChange):
                    pending.append(item)
                elif isinstance(item, Checkpoint):
                    self._commit(pending, item.revision)
                    pending = []
                elif isinstance(item, Reset):
                    logger.warning("relation cache is too far behind: loading again")
                    await self._load()
                    return True
        return False

    def _commit(self, pending: list[Change | SchemaChange], revision: int) -> None:
        graph = self.graph
        for change in pending:
            if isinstance(change, SchemaChange):
                graph.schema = change.schema
            else:
                graph.apply(change)
        if revision > graph.revision:
            graph.revision = revision
        self._tell()


def _json(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise RelationsRefused(
            str(error.get("message") or f"the server answered {response.status_code}"),
            status=response.status_code,
            code=str(error.get("code") or f"http_{response.status_code}"),
        )
    if body is None:
        raise RelationsUnreachable(f"{response.url} did not answer JSON")
    return body
