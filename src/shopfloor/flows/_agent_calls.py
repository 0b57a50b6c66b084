"""The engine's `AgentCaller` inside the platform: an `agent.call` task calls an agent
as the flow itself, over the agents' gRPC `Call`, as the SDK's `AgentClient` does.

**Who calls.** A flow publishing without a thing is `flow:<flow_id>`; calling an agent
it is the same: a certificate of entity type `flow`, SAN URI
`urn:shopfloor:flow:<org_id>/<flow_id>` (CN and OU as every certificate's), issued by
the pki service of this process through `Certificates.issue` as an agent's is, so by
the CA the agents trust. It is a client certificate (clientAuth, no host names: a flow
serves nothing), made on the flow's first call, of `ttl` (short: an hour by default),
made again past two thirds of its life and when this process's gate says it was
revoked (a flow's key never leaves this process: a revocation asks for a new key, and
the way to stop a flow calling is the relation graph). Its key is made here and kept in
memory only (`MemoryCredentials`), never written to disk, and gRPC is handed it as bytes
(`grpc.ssl_channel_credentials`).

**What the agent checks** (docs/sdk.md): the certificate is of its CA, not on the
platform's CRL, of its organisation, and its relation graph lets `flow:<flow_id>` call
it (`flow:line-3 calls agent:mill-1`, or `controls`, which implies it).

**Where the agent is.** The task's `address` ("host:port"); without one the agents
service of this process says: the host of the agent's status `endpoint` where the
runtime gives one (Swarm: the service's name; Kubernetes: the pod's address), else
127.0.0.1 (the process runtime runs agents on this host), and the port of its config's
`grpc_port`. An agent without a fixed port (0, or none) cannot be found.

**Channels** are kept per flow and target (one `AgentClient` per flow of an
organisation, its channels per agent, made again when the address or the certificate
changes) and closed when the flows service stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfloor.agents import AgentNotFound, AgentRecord
from shopfloor.pki import Certificates, Entity, EntityType
from shopfloor.sdk import (
    AgentClient,
    AgentError,
    AgentRefused,
    AgentTimeout,
    AgentUnreachable,
    CallFailed,
    MemoryCredentials,
    Peers,
    PeerUnknown,
)

from ._errors import FlowRunError

__all__ = ["PlatformAgentCalls", "agent_address"]

logger = logging.getLogger(__name__)

#: `lookup(org_id, name)`: the agent's record (`AgentNotFound` when there is none).
Lookup = Callable[[str, str], Awaitable[AgentRecord]]
#: The host of the process runtime's agents: this one.
LOCAL_HOST = "127.0.0.1"


def agent_address(record: AgentRecord) -> str:
    """Where an agent of the agents service takes gRPC calls, or `FlowRunError`."""
    port = record.spec.config.get("grpc_port")
    if type(port) is not int or not 0 < port <= 65535:
        raise FlowRunError(
            f"agent {record.name!r} has no fixed gRPC port: set grpc_port in its config, "
            "or the task's address",
            code="flow_agent_unreachable",
        )
    host = _host(record.status.endpoint) or LOCAL_HOST
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host(endpoint: str) -> str:
    """The host of a status endpoint: a name or address, maybe with a port of its own."""
    endpoint = endpoint.strip()
    if endpoint.startswith("[") and "]" in endpoint:  # [v6]:port
        return endpoint[1 : endpoint.index("]")]
    head, colon, tail = endpoint.rpartition(":")
    if colon and head.count(":") == 0 and tail.isdigit():  # name:port, v4:port
        return head
    return endpoint  # a name, an IPv4 or IPv6 address


@dataclass(slots=True)
class _FlowCaller:
    """One flow's certificate and its client (its channels, one per agent)."""

    credentials: MemoryCredentials
    client: AgentClient
    addresses: dict[str, str]
    serial: int
    renew_at: datetime


class PlatformAgentCalls:
    """Agents called as the flows of this process (`AgentCaller`)."""

    def __init__(
        self,
        certificates: Certificates,
        lookup: Lookup,
        *,
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.certificates = certificates
        self.lookup = lookup
        self.ttl = ttl
        self._callers: dict[tuple[str, str], _FlowCaller] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._closed = False

    async def call(
        self,
        org_id: str,
        flow_id: str,
        agent: str,
        method: str,
        arguments: dict[str, Any],
        *,
        address: str | None,
        within: float,
    ) -> Any:
        target = address or await self.address(org_id, agent)
        caller = await self._caller(org_id, flow_id)
        caller.addresses[agent] = target  # read by the client's resolver, before any await
        where = f"agent {agent} ({target})"
        try:
            return await caller.client.call(agent, method, arguments, timeout=within)
        except AgentTimeout as exc:
            raise FlowRunError(
                f"{where} did not answer {method} within {within:g} s", code="flow_call_timeout"
            ) from exc
        except (AgentUnreachable, PeerUnknown) as exc:
            raise FlowRunError(f"{where}: {exc}", code="flow_agent_unreachable") from exc
        except AgentRefused as exc:
            raise FlowRunError(
                f"{exc} (as flow:{flow_id})", code="flow_agent_refused",
                about={"agent_status": exc.status.name},
            ) from exc  # fmt: skip
        except CallFailed as exc:
            said = exc.message.partition(": ")[2]  # the client says "<agent>.<method>: …"
            raise FlowRunError(
                f"{agent}.{method} answered {exc.code}: {said}", code="flow_agent_call_failed",
                about={"agent_code": exc.code, "agent_message": said},
            ) from exc  # fmt: skip
        except AgentError as exc:  # another gRPC status
            raise FlowRunError(
                f"{where}: {exc}", code="flow_agent_call_failed", about={"agent_code": exc.code}
            ) from exc

    async def address(self, org_id: str, agent: str) -> str:
        """Where the agents service says agent `agent` takes calls."""
        try:
            record = await self.lookup(org_id, agent)
        except AgentNotFound as exc:
            raise FlowRunError(
                f"no agent {agent!r} in this organisation (deployed elsewhere: set the "
                "task's address)",
                code="flow_agent_unreachable",
            ) from exc
        return agent_address(record)

    async def _caller(self, org_id: str, flow_id: str) -> _FlowCaller:
        if self._closed:
            raise FlowRunError("the flows service is stopping", code="flow_agent_unreachable")
        key = (org_id, flow_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            held = self._callers.get(key)
            if held is not None and not self._due(held):
                return held
            made = await self._issue(org_id, flow_id)
            self._callers[key] = made
            if held is not None:  # the flow's runs take turns: nothing is in flight on it
                await held.client.aclose()
            return made

    def _due(self, held: _FlowCaller) -> bool:
        if self.certificates.gate.is_revoked(held.serial):
            logger.warning("the certificate %x of a flow is revoked: making another", held.serial)
            return True
        return datetime.now(UTC) >= held.renew_at

    async def _issue(self, org_id: str, flow_id: str) -> _FlowCaller:
        issued_at = datetime.now(UTC)
        issued = await self.certificates.issue(
            Entity(EntityType.FLOW, f"{org_id}/{flow_id}"), ttl=self.ttl, org_id=org_id
        )
        assert issued.key_pem is not None, "made without a CSR: the key is made here"
        credentials = MemoryCredentials(
            issued.cert_pem.encode(), issued.key_pem.encode(), issued.ca_pem.encode()
        )
        addresses: dict[str, str] = {}
        client = AgentClient(credentials, org_id=org_id, resolve=Peers(addresses))
        renew_at = issued_at + (issued.expires_at - issued_at) * 2 / 3
        logger.info("flow %s of %s calls agents with certificate %s until %s",
                    flow_id, org_id, issued.serial, renew_at.isoformat())  # fmt: skip
        return _FlowCaller(credentials, client, addresses, int(issued.serial, 16), renew_at)

    def held(self) -> Mapping[tuple[str, str], int]:
        """The serial of each flow's certificate held now, by (org_id, flow_id)."""
        return {key: caller.serial for key, caller in self._callers.items()}

    async def aclose(self) -> None:
        """Close every channel; the certificates (and their keys) are dropped."""
        self._closed = True
        callers = list(self._callers.values())
        self._callers.clear()
        for caller in callers:
            await caller.client.aclose()
