"""The servicer of `shopfloor.agent.v1.AgentService`: ping, state, follow and call.

Every call reaches it through `AccessInterceptor`, so the caller is known
(`current_caller()`) and allowed the method's relation. Two checks happen here:
a `Call` of a method registered with a relation of its own needs that relation too,
and every state published is checked once more per follower (`reads`, and the
follower's certificate against the revocation list): a follower that lost the right
gets its stream ended with `PERMISSION_DENIED` (or `UNAUTHENTICATED`) instead of the
state.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc

from ._access import Access, Caller, Refusal, current_caller
from ._client import StateChange
from ._errors import CallFailed
from ._wire import CALL, FOLLOW, SERVICE, pb

__all__ = ["AgentService", "CallHandler"]

logger = logging.getLogger(__name__)

#: A `Call` method: keyword arguments from the caller's JSON, a JSON-able result (or an
#: awaitable of one); `CallFailed` answers an error.
CallHandler = Callable[..., Any]
#: States a follower has not taken yet; past this the oldest is dropped (a follower
#: wants the newest state, not every one).
FOLLOW_BACKLOG = 64
_END = object()

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"  # generic in the stubs only


@dataclass(frozen=True, slots=True)
class _Method:
    handler: CallHandler
    relation: str
    signature: inspect.Signature


class _Follower:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=FOLLOW_BACKLOG)
        self.dropped = 0

    def push(self, item: object) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


class AgentService:
    """The agent's side of the built-in services, as agent `name`."""

    def __init__(self, name: str, *, run: str = "") -> None:
        self.name = name
        self.run = run
        self._access: Access | None = None
        self.methods: dict[str, _Method] = {}
        self.last: pb.StateChange | None = None
        self._sequence = 0
        self._followers: set[_Follower] = set()

    def bind(self, name: str, access: Access) -> None:
        """Serve as agent `name`, with `access` for the checks of its own (at start)."""
        self.name = name
        self._access = access

    @property
    def access(self) -> Access:
        if self._access is None:
            raise RuntimeError("the service is not bound to a started agent")
        return self._access

    @property
    def followers(self) -> int:
        return len(self._followers)

    def register(self, name: str, handler: CallHandler, *, relation: str = "calls") -> None:
        if name in self.methods:
            raise ValueError(f"a method {name!r} is registered already")
        self.methods[name] = _Method(handler, relation, inspect.signature(handler))

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Ping": grpc.unary_unary_rpc_method_handler(
                    self._ping,
                    request_deserializer=pb.PingRequest.FromString,
                    response_serializer=pb.PingReply.SerializeToString,
                ),
                "GetState": grpc.unary_unary_rpc_method_handler(
                    self._get_state,
                    request_deserializer=pb.GetStateRequest.FromString,
                    response_serializer=pb.StateChange.SerializeToString,
                ),
                "Follow": grpc.unary_stream_rpc_method_handler(
                    self._follow,
                    request_deserializer=pb.FollowRequest.FromString,
                    response_serializer=pb.StateChange.SerializeToString,
                ),
                "Call": grpc.unary_unary_rpc_method_handler(
                    self._call,
                    request_deserializer=pb.CallRequest.FromString,
                    response_serializer=pb.CallReply.SerializeToString,
                ),
            },
        )

    async def publish(self, state: Mapping[str, Any]) -> StateChange:
        """Keep `state` as the last one and hand it to every follower still allowed."""
        text = json.dumps(dict(state))
        self._sequence += 1
        message = pb.StateChange(
            agent=self.name, sequence=self._sequence, state_json=text,
            time_unix_nano=time.time_ns(), run=self.run,
        )  # fmt: skip
        self.last = message
        followers = list(self._followers)
        if followers:
            await asyncio.gather(*(self._deliver(f, message) for f in followers))
        return StateChange.from_message(message)

    def end_follows(self) -> None:
        """End every open `Follow` stream (the agent stops): the followers see it end."""
        for follower in self._followers:
            follower.push(_END)

    async def _deliver(self, follower: _Follower, message: pb.StateChange) -> None:
        try:
            await self.access.authorise(follower.caller, self.access.relations.get(FOLLOW))
        except Refusal as refusal:
            logger.info("follower %s refused: %s", follower.caller.name, refusal.reason)
            follower.push(refusal)
            return
        follower.push(message)

    async def _ping(self, request: pb.PingRequest, context: Context) -> pb.PingReply:
        return pb.PingReply(agent=self.name, payload=request.payload, time_unix_nano=time.time_ns())

    async def _get_state(self, request: pb.GetStateRequest, context: Context) -> pb.StateChange:
        return self.last if self.last is not None else pb.StateChange(agent=self.name)

    async def _follow(
        self, request: pb.FollowRequest, context: Context
    ) -> AsyncIterator[pb.StateChange]:
        caller = current_caller()
        assert caller is not None, "the access interceptor admitted the call"
        follower = _Follower(caller)
        self._followers.add(follower)  # before the last state: a change between is not lost
        logger.info("%s follows", caller.name)
        sent = 0
        try:
            if self.last is not None:
                sent = self.last.sequence
                yield self.last
            while True:
                item = await follower.queue.get()
                if item is _END:
                    return
                if isinstance(item, Refusal):
                    await context.abort(item.status, item.reason)
                assert isinstance(item, pb.StateChange)
                if item.sequence > sent:
                    sent = item.sequence
                    yield item
        finally:
            self._followers.discard(follower)
            logger.info("%s stopped following", caller.name)

    async def _call(self, request: pb.CallRequest, context: Context) -> pb.CallReply:
        method = self.methods.get(request.method)
        if method is None:
            return _error("method_not_found", f"no method {request.method!r}")
        caller = current_caller()
        assert caller is not None, "the access interceptor admitted the call"
        if method.relation != self.access.relations.get(CALL):  # that one was checked
            try:
                await self.access.authorise(caller, method.relation)
            except Refusal as refusal:
                await context.abort(refusal.status, refusal.reason)
        try:
            arguments = json.loads(request.arguments_json) if request.arguments_json else {}
            if not isinstance(arguments, dict):
                raise TypeError("the arguments are not a JSON object")
            method.signature.bind(**arguments)
        except (TypeError, ValueError) as exc:
            return _error("invalid_arguments", str(exc))
        try:
            result = method.handler(**arguments)
            if inspect.isawaitable(result):
                result = await result
        except CallFailed as exc:
            return _error(exc.code, exc.message)
        except Exception:
            logger.exception("method %s failed for %s", request.method, caller.name)
            return _error("internal", f"{request.method} failed")
        try:
            return pb.CallReply(result_json=json.dumps(result))
        except (TypeError, ValueError):
            logger.exception("method %s returned what JSON cannot hold", request.method)
            return _error("internal", f"{request.method} returned no JSON value")


def _error(code: str, message: str) -> pb.CallReply:
    return pb.CallReply(error=pb.CallError(code=code, message=message))
