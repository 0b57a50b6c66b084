"""A flow of the flows service calls an agent as itself: a certificate naming
`urn:shopfloor:flow:<org>/<flow_id>`, held in memory (`MemoryCredentials`), checked by
the agent as an agent's is (organisation, revocation list, the relation graph with
subject `flow:<flow_id>`), and `current_caller()` says it is a flow."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shopfloor.pki import Entity, EntityType, SigningRequest
from shopfloor.pki._x509 import new_key_and_request
from shopfloor.sdk import (
    AgentClient,
    AgentRefused,
    AgentTimeout,
    MemoryCredentials,
    Peers,
    current_caller,
)

from .agentkit import ORG, AgentCa, Fleet, Relations


async def flow_credentials(ca: AgentCa, flow_id: str, *, org_id: str = ORG) -> MemoryCredentials:
    """What the flows service makes for a flow: a client certificate of the CA."""
    entity = Entity(EntityType.FLOW, f"{org_id}/{flow_id}")
    made = new_key_and_request(entity)
    certificate = await ca.authority.sign(SigningRequest(made.csr, entity, timedelta(hours=1)))
    return MemoryCredentials(
        certificate.public_bytes(serialization.Encoding.PEM), made.key_pem.encode(), ca.ca_pem
    )


def who() -> dict[str, Any]:
    caller = current_caller()
    assert caller is not None
    return {"kind": caller.kind, "name": caller.name, "subject": caller.subject}


async def test_a_flow_calls_an_agent_when_the_graph_lets_flow_id_call_it(fleet: Fleet) -> None:
    relations = Relations(("flow:line-3", "calls", "agent:mill-1"))
    mill = await fleet.start("mill-1", checker=relations)
    mill.register("who", who)
    credentials = await flow_credentials(fleet.ca, "line-3")
    client = AgentClient(credentials, org_id=ORG, resolve=Peers(fleet.addresses))
    try:
        answer = await client.call("mill-1", "who", {})
        assert answer == {"kind": "flow", "name": "line-3", "subject": "flow:line-3"}
        assert relations.asked == [("flow:line-3", "calls", "agent:mill-1")]

        other = await flow_credentials(fleet.ca, "line-4")  # no tuple for it
        refused = AgentClient(other, org_id=ORG, resolve=Peers(fleet.addresses))
        try:
            with pytest.raises(AgentRefused) as denied:
                await refused.call("mill-1", "who", {})
        finally:
            await refused.aclose()
        assert denied.value.status is grpc.StatusCode.PERMISSION_DENIED
        assert "flow:line-4 has no relation 'calls' to agent:mill-1" in str(denied.value)
    finally:
        await client.aclose()


async def test_a_flow_of_another_organisation_is_refused(fleet: Fleet) -> None:
    relations = Relations(("flow:line-3", "calls", "agent:mill-1"))
    mill = await fleet.start("mill-1", checker=relations)
    mill.register("who", who)
    credentials = await flow_credentials(fleet.ca, "line-3", org_id="org2")
    client = AgentClient(credentials, org_id=ORG, resolve=Peers(fleet.addresses))
    try:
        with pytest.raises(AgentRefused) as refused:
            await client.call("mill-1", "who", {})
    finally:
        await client.aclose()
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert "flow line-3 is of another organisation" in str(refused.value)
    assert relations.asked == []


async def test_a_revoked_flow_certificate_is_refused(fleet: Fleet) -> None:
    mill = await fleet.start("mill-1", checker=Relations(("flow:line-3", "calls", "agent:mill-1")))
    mill.register("who", who)
    credentials = await flow_credentials(fleet.ca, "line-3")
    client = AgentClient(credentials, org_id=ORG, resolve=Peers(fleet.addresses))
    try:
        assert (await client.call("mill-1", "who", {}))["kind"] == "flow"
        fleet.ca.revoke(credentials.serial)
        fleet.crl.set(await fleet.ca.crl_pem())
        assert mill.revocations is not None
        await mill.revocations.refresh()
        with pytest.raises(AgentRefused) as refused:
            await client.call("mill-1", "who", {})
        assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in str(refused.value)

        # a new certificate (`replace`) makes a new channel that presents it
        credentials.replace(*await _fresh(fleet.ca, "line-3"))
        assert (await client.call("mill-1", "who", {}))["name"] == "line-3"
    finally:
        await client.aclose()


async def _fresh(ca: AgentCa, flow_id: str) -> tuple[bytes, bytes, bytes]:
    made = await flow_credentials(ca, flow_id)
    material = made.material
    return material.cert_pem, material.key_pem, material.ca_pem


async def test_a_call_past_its_deadline_is_a_timeout(fleet: Fleet) -> None:
    mill = await fleet.start("mill-1", checker=Relations(("flow:line-3", "calls", "agent:mill-1")))
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    mill.register("slow", slow)
    client = AgentClient(
        await flow_credentials(fleet.ca, "line-3"), org_id=ORG, resolve=Peers(fleet.addresses)
    )
    try:
        with pytest.raises(AgentTimeout):
            await client.call("mill-1", "slow", {}, timeout=0.2)
    finally:
        release.set()
        await client.aclose()


def test_a_flow_entity_names_its_organisation_and_id() -> None:
    flow_id = "6a3c1a8e-0000-4000-8000-000000000001/Line_3.temperature"
    entity = Entity(EntityType.FLOW, flow_id)
    assert entity.uri == f"urn:shopfloor:flow:{flow_id}"
    made = new_key_and_request(entity)
    names = made.csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    assert len(str(names[0].value)) <= 64  # shortened with a digest, as an agent's
