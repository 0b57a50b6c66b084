"""Calling other agents: one mTLS channel per target, named by its DNS name (SNI).

An agent is reached by name in its organisation. `Peers` says where (`config.peers`,
`{name: "host:port"}`, else every call through `config.proxy`); the channel connects
there and asks for `<name>.<org_id>.agents`: grpc's `ssl_target_name_override` is the
name it sends as SNI, so a TLS proxy (nginx `ssl_preread`, envoy's `tls_inspector`)
routes by it, and the name the target's certificate must carry, so whatever the
address, only that agent is accepted. `:authority` is that name too.

Channels are kept per target and made again after a certificate renewal, so new
connections present the new certificate, and when the target's address changes (an
agent restarted elsewhere); the replaced ones close with the client.

The caller is whoever `credentials` name: an agent (`AgentCredentials`, its files), or
a flow of the flows service (`MemoryCredentials`, a certificate it holds in memory).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import grpc

from ._errors import (
    AgentError,
    AgentRefused,
    AgentTimeout,
    AgentUnreachable,
    CallFailed,
    PeerUnknown,
)
from ._tls import agent_dns_name
from ._wire import CALL, FOLLOW, GET_STATE, PING, pb

__all__ = ["AgentClient", "ClientCredentials", "Peers", "Resolver", "StateChange"]

#: How soon a channel tries its target again after a failed connection. gRPC's own
#: backoff grows to 120 s, for the internet; an agent that restarts on a plant's network
#: is back in seconds, and a call meanwhile would fail on the old failure.
RECONNECT_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)

#: `resolve(agent_name) -> "host:port"`, or `PeerUnknown`.
Resolver = Callable[[str], str]


class ClientCredentials(Protocol):
    """The certificate a client presents: `AgentCredentials`, `MemoryCredentials`."""

    def channel_generation(self) -> int:
        """The current certificate's generation (a new one: new channels)."""
        ...

    def channel_credentials(self) -> grpc.ChannelCredentials: ...


@dataclass(frozen=True, slots=True)
class StateChange:
    """A state an agent published."""

    agent: str
    #: 1, 2, ... per run of the publishing agent; 0 before its first.
    sequence: int
    state: dict[str, Any]
    time: datetime
    #: The run (start) of the agent that published it: its sequence starts again with each.
    run: str = ""
    #: How it came: "agent" (gRPC, from the agent) or "platform" (reported to the platform
    #: and relayed by it, when the agent could not be reached).
    via: str = "agent"

    @classmethod
    def from_message(cls, message: pb.StateChange) -> StateChange:
        state = json.loads(message.state_json) if message.state_json else {}
        when = datetime.fromtimestamp(message.time_unix_nano / 1e9, UTC)
        return cls(message.agent, message.sequence, state, when, run=message.run)

    def newer_than(self, other: StateChange | None) -> bool:
        """Whether this one follows `other` (of another run, or later in the same)."""
        return other is None or self.run != other.run or self.sequence > other.sequence


@dataclass(frozen=True, slots=True)
class Peers:
    """Addresses of the organisation's agents: `peers` by name, else `proxy` for all."""

    peers: Mapping[str, str]
    proxy: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Peers:
        peers = config.get("peers", {})
        proxy = config.get("proxy")
        if not isinstance(peers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in peers.items()
        ):
            raise ValueError('config.peers is {"<agent name>": "host:port", ...}')
        if proxy is not None and (not isinstance(proxy, str) or not proxy):
            raise ValueError('config.proxy is "host:port"')
        return cls(dict(peers), proxy)

    def __call__(self, name: str) -> str:
        address = self.peers.get(name, self.proxy)
        if address is None:
            raise PeerUnknown(f"no address for agent {name!r}: not in config.peers, no proxy")
        return address


class _Stubs:
    """A channel to one agent and its methods, made for one generation of credentials."""

    def __init__(self, channel: grpc.aio.Channel, generation: int, address: str) -> None:
        self.channel = channel
        self.generation = generation
        self.address = address
        self.ping = channel.unary_unary(
            PING,
            request_serializer=pb.PingRequest.SerializeToString,
            response_deserializer=pb.PingReply.FromString,
        )
        self.get_state = channel.unary_unary(
            GET_STATE,
            request_serializer=pb.GetStateRequest.SerializeToString,
            response_deserializer=pb.StateChange.FromString,
        )
        self.call = channel.unary_unary(
            CALL,
            request_serializer=pb.CallRequest.SerializeToString,
            response_deserializer=pb.CallReply.FromString,
        )
        self.follow = channel.unary_stream(
            FOLLOW,
            request_serializer=pb.FollowRequest.SerializeToString,
            response_deserializer=pb.StateChange.FromString,
        )


class AgentClient:
    """Calls to the agents of `org_id`, as the agent (or flow) whose `credentials` these
    are."""

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        org_id: str,
        resolve: Resolver,
        timeout: float = 10.0,
    ) -> None:
        self.credentials = credentials
        self.org_id = org_id
        self.resolve = resolve
        self.timeout = timeout
        self._targets: dict[str, _Stubs] = {}
        self._retired: list[grpc.aio.Channel] = []

    def channel(self, target: str) -> grpc.aio.Channel:
        """The channel to agent `target`, made anew after this agent's certificate was
        renewed."""
        return self._stubs(target).channel

    def _stubs(self, target: str) -> _Stubs:
        # (an agent's files are looked at again at most every check_interval)
        generation = self.credentials.channel_generation()
        address = self.resolve(target)
        held = self._targets.get(target)
        if held is not None and held.generation == generation and held.address == address:
            return held
        if held is not None:
            self._retired.append(held.channel)
        name = agent_dns_name(self.org_id, target)
        channel = grpc.aio.secure_channel(
            address,
            self.credentials.channel_credentials(),
            options=[
                ("grpc.ssl_target_name_override", name),
                ("grpc.default_authority", name),
                *RECONNECT_OPTIONS,
            ],
        )
        stubs = self._targets[target] = _Stubs(channel, generation, address)
        return stubs

    async def ping(self, target: str, payload: bytes = b"") -> pb.PingReply:
        try:
            reply: pb.PingReply = await self._stubs(target).ping(
                pb.PingRequest(payload=payload), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _translated(exc, target) from exc
        return reply

    async def get_state(self, target: str) -> StateChange:
        try:
            reply: pb.StateChange = await self._stubs(target).get_state(
                pb.GetStateRequest(), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _translated(exc, target) from exc
        return StateChange.from_message(reply)

    async def call(
        self,
        target: str,
        method: str,
        arguments: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - gRPC's deadline of the call
    ) -> Any:
        """`method` of `target` with `arguments`, within `timeout` seconds (the client's
        own by default): its JSON result, or `CallFailed` with the target's code."""
        request = pb.CallRequest(method=method, arguments_json=json.dumps(dict(arguments)))
        deadline = self.timeout if timeout is None else timeout
        try:
            reply: pb.CallReply = await self._stubs(target).call(request, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            raise _translated(exc, target) from exc
        if reply.WhichOneof("outcome") == "error":
            raise CallFailed(f"{target}.{method}: {reply.error.message}", code=reply.error.code)
        return json.loads(reply.result_json)

    async def follow(self, target: str) -> AsyncIterator[StateChange]:
        stream = self._stubs(target).follow(pb.FollowRequest())
        try:
            async for message in stream:
                yield StateChange.from_message(message)
        except grpc.aio.AioRpcError as exc:
            raise _translated(exc, target) from exc
        finally:
            stream.cancel()

    async def aclose(self) -> None:
        channels = [stubs.channel for stubs in self._targets.values()] + self._retired
        self._targets.clear()
        self._retired.clear()
        for channel in channels:
            await channel.close()


def _translated(exc: grpc.aio.AioRpcError, target: str) -> AgentError:
    status = exc.code()
    details = exc.details() or status.name
    if status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return AgentRefused(f"agent {target} refused the call: {details}", status=status)
    if status is grpc.StatusCode.DEADLINE_EXCEEDED:
        return AgentTimeout(f"agent {target} did not answer in time: {details}")
    if status is grpc.StatusCode.UNAVAILABLE:
        return AgentUnreachable(f"agent {target} is unreachable: {details}")
    return AgentError(f"agent {target} answered {status.name}: {details}", code="agent_failed")
