"""`Agent`: the base class of an agent that serves and calls the other agents over gRPC.

    class Press(Agent):
        async def setup(self) -> None:
            self.register("start", self.start)

        async def run(self) -> None:
            while True:
                await self.publish_state({"state": "running", "parts": self.parts})
                await asyncio.sleep(1)

        async def start(self, program: str) -> dict[str, str]:
            return {"started": program}

    # spec: "module": "plant.press:Press.main"

`Agent.main` reads what the platform handed the agent (`AgentContext.from_env()`),
serves `AgentService` with the agent's certificate (mTLS, renewed without a restart),
answers the health check, runs `setup()`, `run()` until it returns or SIGTERM comes,
then stops gracefully: it ends the open `Follow` streams, stops taking calls, gives
the calls in flight `grace_seconds` to finish, and calls `shutdown()`. SIGHUP reads
the files again. The same agent runs under the process, Swarm and Kubernetes runtimes:
it reads only the contract of docs/agents.md. docs/sdk.md has the config keys.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, ClassVar, Self

import grpc

from ._access import METHOD_RELATIONS, Access, AccessInterceptor, Checker, same_organisation
from ._client import AgentClient, Peers, Resolver, StateChange
from ._context import AgentContext, AgentContextError
from ._errors import AgentUnreachable, PeerUnknown
from ._health import serve_health
from ._platform import PlatformClient, StateReporter
from ._relations import RelationCache
from ._revocation import CrlSource, HttpCrlSource, RevocationList
from ._service import AgentService, CallHandler
from ._settings import AgentSettings
from ._tls import AgentCredentials, AgentIdentity, platform_tls

__all__ = ["Agent"]

try:  # optional: grpcio-health-checking
    from grpc_health.v1 import health as grpc_health
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError:  # pragma: no cover - installed with the dev extras
    grpc_health = None  # type: ignore[assignment]


class Agent:
    """An agent: override `setup`, `run`, `shutdown`; `register` methods for `Call`.

    `checker(subject, relation, object)` decides who may call (docs/sdk.md, the ACL
    table); without one, and without `config.access = "organisation"`, every call is
    refused. `crl_source` replaces the platform's CRL (tests); `resolver` replaces
    `config.peers` / `config.proxy`.
    """

    #: The relation a caller needs, per gRPC method path (`METHOD_RELATIONS`).
    relations: ClassVar[Mapping[str, str | None]] = METHOD_RELATIONS

    def __init__(
        self,
        context: AgentContext,
        *,
        checker: Checker | None = None,
        crl_source: CrlSource | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.context = context
        try:
            self.settings = AgentSettings.from_config(context.config)
            self._resolve: Resolver = resolver or Peers.from_config(context.config)
        except ValueError as exc:
            raise AgentContextError(str(exc)) from exc
        if checker is None and self.settings.access == "organisation":
            checker = same_organisation
        self.checker = checker
        self.log = logging.getLogger(f"shopfloor.agent.{context.name or type(self).__name__}")
        self._crl_source = crl_source
        #: This run (start) of the agent: its states are numbered 1, 2, ... within it.
        self.run_id = uuid.uuid4().hex
        self._service = AgentService(context.name, run=self.run_id)
        #: The platform's API as this agent, when its URL is known (after start).
        self.platform: PlatformClient | None = None
        self.relation_cache: RelationCache | None = None
        self._reporter: StateReporter | None = None
        self._via_platform: set[str] = set()
        self._stack: AsyncExitStack | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._reload_asked = asyncio.Event()
        self._client: AgentClient | None = None
        self._server: grpc.aio.Server | None = None
        self._health: Any = None
        self.credentials: AgentCredentials | None = None
        self.revocations: RevocationList | None = None
        self.identity: AgentIdentity | None = None
        #: The bound gRPC port, once started.
        self.port: int | None = None
        self.health_port: int | None = None

    # -- what a subclass overrides ------------------------------------------------------

    async def setup(self) -> None:
        """Before the agent takes calls: register methods, open what it needs."""

    async def run(self) -> None:
        """The agent's work, until it returns (the agent then stops) or is cancelled
        (SIGTERM). By default it waits to be stopped."""
        await asyncio.Event().wait()

    async def shutdown(self) -> None:
        """After the last call has ended: close what `setup` opened."""

    # -- identity and state ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.identity.name if self.identity is not None else self.context.name

    @property
    def org_id(self) -> str:
        return self.identity.org_id if self.identity is not None else self.context.org_id

    @property
    def state(self) -> dict[str, Any] | None:
        """The last state published (None before the first)."""
        last = self._service.last
        return StateChange.from_message(last).state if last is not None else None

    @property
    def followers(self) -> int:
        return self._service.followers

    def register(self, name: str, handler: CallHandler, *, relation: str = "calls") -> None:
        """Serve `handler(**arguments)` as `Call` method `name`; its result is sent as
        JSON. A caller needs `relation` (and `calls`) to this agent."""
        self._service.register(name, handler, relation=relation)

    async def publish_state(self, state: Mapping[str, Any]) -> StateChange:
        """Make `state` (a JSON object) the agent's state: `GetState` answers it, every
        follower still allowed to read this agent gets it, and the platform keeps it for
        those that cannot reach this agent (`report_state`)."""
        change = await self._service.publish(state)
        if self._reporter is not None:
            self._reporter.offer(change)
        return change

    # -- calling other agents ----------------------------------------------------------

    async def call(self, target: str, method: str, /, **arguments: Any) -> Any:
        """Run `method` of agent `target` with `arguments`; its JSON result. `CallFailed`
        when it answers an error, `AgentRefused`, `AgentUnreachable`, `PeerUnknown`."""
        return await self._clients().call(target, method, arguments)

    async def ping(self, target: str) -> float:
        """The round trip to agent `target`, in seconds."""
        started = time.perf_counter()
        await self._clients().ping(target)
        return time.perf_counter() - started

    async def get_state(self, target: str) -> StateChange:
        return await self._clients().get_state(target)

    async def follow(self, target: str) -> AsyncIterator[StateChange]:
        """Agent `target`'s last state, then each it publishes, until it stops.

        Over gRPC from the target; when it cannot be reached (no address, no answer) and
        the platform can (`follow_via_platform`), through the platform (`via` says which),
        trying the target again every `direct_retry_seconds`. `AgentUnreachable` when
        neither path has it running."""
        last: StateChange | None = None
        while True:
            try:
                async for change in self._clients().follow(target):
                    self._via_platform.discard(target)
                    if change.newer_than(last):
                        last = change
                        yield change
                return
            except (AgentUnreachable, PeerUnknown) as direct:
                if self.platform is None or not self.settings.follow_via_platform:
                    raise
                if target not in self._via_platform:  # once, until it is reached again
                    self._via_platform.add(target)
                    self.log.info("following %s through the platform: %s", target, direct)
            async for change in self._follow_via_platform(target):
                if change.newer_than(last):
                    last = change
                    yield change

    async def _follow_via_platform(self, target: str) -> AsyncIterator[StateChange]:
        """The platform's feed of `target` for `direct_retry_seconds` at most."""
        assert self.platform is not None
        loop = asyncio.get_running_loop()
        until = loop.time() + self.settings.direct_retry_seconds
        feed = aiter(self.platform.follow(target))
        try:
            while (left := until - loop.time()) > 0:
                try:
                    change = await asyncio.wait_for(anext(feed), timeout=left)
                except TimeoutError:
                    return
                except StopAsyncIteration:
                    return
                yield change
        finally:
            await feed.aclose()  # type: ignore[attr-defined]

    def channel(self, target: str) -> grpc.aio.Channel:
        """The mTLS channel to agent `target`, for services of one's own."""
        return self._clients().channel(target)

    # -- running -----------------------------------------------------------------------

    @classmethod
    async def main(cls) -> None:
        """Run an agent of this class on what the platform hands it: a spec's
        `module: package.module:MyAgent.main` (or `run_agent(MyAgent.main)`)."""
        await cls(AgentContext.from_env()).serve()

    async def serve(self, *, reload_on_sighup: bool = True) -> None:
        """Start, `run()`, stop: until `run` returns or the task is cancelled."""
        async with self:
            installed = reload_on_sighup and self._on_sighup()
            try:
                await self.run()
            finally:
                if installed:
                    asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    async def reload(self) -> None:
        """Read the files again, as SIGHUP asks: a renewed certificate is served to new
        connections and used by new channels; `config.json` becomes `context.config`;
        the revocation list is fetched."""
        if self.credentials is not None:
            self.credentials.reload()
        try:
            self.context = self.context.reloaded()
        except AgentContextError as exc:
            self.log.warning("config.json not reloaded: %s", exc)
        if self.revocations is not None:
            self.revocations.refresh_soon()

    def background(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coroutine` while the agent runs; it is cancelled when the agent stops."""
        if self._tasks is None:
            coroutine.close()
            raise RuntimeError("the agent is not started")
        task = self._tasks.create_task(coroutine, name=f"{self.name}: {name}")
        self._background.append(task)
        return task

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _start(self, stack: AsyncExitStack) -> None:
        credentials = self.credentials = AgentCredentials.from_context(self.context)
        identity = self.identity = credentials.material.identity
        for field, given, named in (
            ("SHOPFLOOR_AGENT_NAME", self.context.name, identity.name),
            ("SHOPFLOOR_AGENT_ORG", self.context.org_id, identity.org_id),
        ):
            if given and given != named:
                raise AgentContextError(f"{field} is {given!r}, cert.pem names {named!r}")
        self.log = logging.getLogger(f"shopfloor.agent.{identity.name}")
        source = self._revocation_source(stack, credentials)  # closed after the tasks end
        await self._open_platform(stack, credentials)
        self._tasks = await stack.enter_async_context(asyncio.TaskGroup())
        stack.callback(self._cancel_background)
        self.revocations = await self._revocation_list(source, credentials)
        access = Access(
            identity, checker=self.checker, revocations=self.revocations,
            relations=self.relations,
        )  # fmt: skip
        self._service.bind(identity.name, access)
        self._client = AgentClient(
            credentials, org_id=identity.org_id, resolve=self._resolve,
            timeout=self.settings.call_timeout,
        )  # fmt: skip
        stack.push_async_callback(self._client.aclose)
        self.background(self._reloads(), "reloads")
        if self.platform is not None and self.settings.report_state:
            self._reporter = StateReporter(self.platform, identity.name, self.run_id)
            self.background(self._reporter.run(), "state reports")
        await self.setup()
        stack.push_async_callback(self.shutdown)
        await self._serve_grpc(stack, access, credentials)
        if self.settings.health_port is not None:
            self.health_port = await stack.enter_async_context(
                serve_health(
                    self.settings.health_port, host=self.settings.health_host,
                    details=self._health_details,
                )
            )  # fmt: skip

    @property
    def platform_url(self) -> str | None:
        """The platform's API: `config.platform_url`, `SHOPFLOOR_PLATFORM_URL`, then
        `SHOPFLOOR_HTTP_URL`."""
        context = self.context
        return self.settings.platform_url or context.platform_url or context.http_url

    async def _open_platform(self, stack: AsyncExitStack, credentials: AgentCredentials) -> None:
        """The platform client, and the relation cache when `access` is `relations`."""
        url = self.platform_url
        relations = self.settings.access == "relations" and self.checker is None
        if url is None:
            if relations:
                raise AgentContextError(
                    'config.access "relations" needs the platform\'s URL: set '
                    "config.platform_url (or SHOPFLOOR_PLATFORM_URL)"
                )
            return
        self.platform = PlatformClient(url, credentials, timeout=self.settings.call_timeout)
        stack.push_async_callback(self.platform.aclose)
        if relations:
            cache = RelationCache(
                url, self.platform.assertion, verify=platform_tls(credentials.files[2])
            )
            self.relation_cache = await stack.enter_async_context(cache)
            self.checker = cache.allows

    def _revocation_source(
        self, stack: AsyncExitStack, credentials: AgentCredentials
    ) -> CrlSource | None:
        if self._crl_source is not None or not self.settings.revocation_check:
            return self._crl_source
        url = self.platform_url
        if url is None:
            raise AgentContextError(
                "revoked certificates cannot be refused without the platform's URL: set "
                "config.platform_url (or config.revocation_check = false)"
            )
        http = HttpCrlSource(url, ca_file=credentials.files[2])
        stack.push_async_callback(http.aclose)
        return http

    async def _revocation_list(
        self, source: CrlSource | None, credentials: AgentCredentials
    ) -> RevocationList | None:
        if source is None:
            self.log.warning("revocation_check is off: revoked certificates are accepted")
            return None
        revocations = RevocationList(
            source, ca=credentials.material.ca, refresh_seconds=self.settings.crl_refresh_seconds
        )
        try:
            await revocations.refresh()
        except Exception as exc:  # the platform may come later: refused until then
            self.log.warning("no revocation list yet (%s): calls are refused until one", exc)
        self.background(revocations.run(), "revocation list")
        return revocations

    async def _serve_grpc(
        self, stack: AsyncExitStack, access: Access, credentials: AgentCredentials
    ) -> None:
        server = self._server = grpc.aio.server(interceptors=[AccessInterceptor(access)])
        server.add_generic_rpc_handlers([self._service.generic_handler()])
        if grpc_health is not None:
            self._health = grpc_health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self.port = server.add_secure_port(address, credentials.server_credentials())
        await server.start()
        stack.push_async_callback(self._stop_grpc)
        if self._health is not None:
            await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.log.info(
            "agent %s serving gRPC on %s:%d as %s (certificate %x)", self.name,
            self.settings.grpc_host, self.port, credentials.material.identity.dns_name,
            credentials.material.serial,
        )  # fmt: skip

    async def _stop_grpc(self) -> None:
        assert self._server is not None
        grace = self.settings.grace_seconds
        self.log.info("stopping: ending %d follows, calls in flight have %.3g s",
                      self._service.followers, grace)  # fmt: skip
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        self._service.end_follows()
        await self._server.stop(grace)
        self.log.info("agent %s stopped taking calls", self.name)

    def _cancel_background(self) -> None:
        for task in self._background:
            task.cancel()
        self._background.clear()

    def _clients(self) -> AgentClient:
        if self._client is None:
            raise RuntimeError("the agent is not started: call it within `async with agent`")
        return self._client

    def _on_sighup(self) -> bool:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload_asked.set)
        except (RuntimeError, ValueError):  # not the main thread: the caller reloads
            return False
        return True

    async def _reloads(self) -> None:
        while True:
            await self._reload_asked.wait()
            self._reload_asked.clear()
            self.log.info("SIGHUP: reading the agent's files again")
            await self.reload()

    def _health_details(self) -> dict[str, object]:
        credentials = self.credentials
        return {
            "agent": self.name,
            "grpc_port": self.port,
            "certificate_serial": (
                f"{credentials.material.serial:x}" if credentials is not None else None
            ),
            "followers": self._service.followers,
            "revocation_list": self.revocations is None or self.revocations.ready,
        }
