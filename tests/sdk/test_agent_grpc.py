"""Agents calling agents over gRPC with mTLS: real servers on 127.0.0.1, certificates
from the platform's built-in CA, the checks every incoming call passes."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopfloor.pki import Entity, EntityType
from shopfloor.sdk import (
    AgentRefused,
    AgentUnreachable,
    CallFailed,
    PeerUnknown,
    StateChange,
    StaticCrlSource,
    current_caller,
)
from shopfloor.sdk._wire import PING, pb

from .agentkit import AgentCa, AgentFiles, Fleet, Relations, SniProxy


async def served_serial(port: int, ca: AgentCa, client: AgentFiles, server_name: str) -> int:
    """The serial of the certificate a new TLS connection to `port` is served."""
    context = ssl.create_default_context(cadata=ca.ca_pem.decode())
    context.load_cert_chain(client.folder / "cert.pem", client.folder / "key.pem")
    context.set_alpn_protocols(["h2"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_name
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_an_agent_calls_another_over_mtls_when_the_relation_graph_allows(
    fleet: Fleet,
) -> None:
    relations = Relations(
        ("agent:alpha", "calls", "agent:beta"), ("agent:alpha", "reads", "agent:beta")
    )
    beta = await fleet.start("beta", checker=relations)

    def add(a: int, b: int) -> dict[str, Any]:
        caller = current_caller()
        assert caller is not None
        return {"sum": a + b, "caller": caller.name}

    beta.register("add", add)
    alpha = await fleet.start("alpha")

    assert await alpha.call("beta", "add", a=2, b=3) == {"sum": 5, "caller": "alpha"}
    assert await alpha.ping("beta") > 0
    assert relations.asked == [
        ("agent:alpha", "calls", "agent:beta"),
        ("agent:alpha", "reads", "agent:beta"),
    ]
    await beta.publish_state({"state": "running"})
    state = await alpha.get_state("beta")
    assert (state.agent, state.sequence, state.state) == ("beta", 1, {"state": "running"})


async def test_call_errors_reach_the_caller_with_their_code(fleet: Fleet) -> None:
    beta = await fleet.start("beta", config={"access": "organisation"})

    def refuse(part: str) -> None:
        raise CallFailed(f"no tool for {part}", code="no_tool")

    beta.register("refuse", refuse)
    alpha = await fleet.start("alpha")

    with pytest.raises(CallFailed) as failed:
        await alpha.call("beta", "refuse", part="gear")
    assert (failed.value.code, str(failed.value)) == ("no_tool", "beta.refuse: no tool for gear")
    with pytest.raises(CallFailed) as missing:
        await alpha.call("beta", "nothing")
    assert missing.value.code == "method_not_found"
    with pytest.raises(CallFailed) as wrong:
        await alpha.call("beta", "refuse", tool="gear")
    assert wrong.value.code == "invalid_arguments"


async def test_a_relation_the_graph_does_not_hold_is_permission_denied(fleet: Fleet) -> None:
    beta = await fleet.start("beta", checker=Relations(("agent:alpha", "reads", "agent:beta")))
    beta.register("stop", lambda: "stopped")
    beta.register("halt", lambda: "halted", relation="controls")
    alpha = await fleet.start("alpha")

    with pytest.raises(AgentRefused) as refused:
        await alpha.call("beta", "stop")
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert "agent:alpha has no relation 'calls' to agent:beta" in str(refused.value)
    assert await alpha.ping("beta") > 0  # reads: granted


async def test_a_method_registered_with_its_own_relation_needs_it(fleet: Fleet) -> None:
    relations = Relations(("agent:alpha", "calls", "agent:beta"))
    beta = await fleet.start("beta", checker=relations)
    beta.register("halt", lambda: "halted", relation="controls")
    alpha = await fleet.start("alpha")

    with pytest.raises(AgentRefused, match="no relation 'controls'"):
        await alpha.call("beta", "halt")
    relations.grants.add(("agent:alpha", "controls", "agent:beta"))
    assert await alpha.call("beta", "halt") == "halted"


async def test_without_a_checker_every_call_is_refused(fleet: Fleet) -> None:
    await fleet.start("beta")
    alpha = await fleet.start("alpha")

    with pytest.raises(AgentRefused) as refused:
        await alpha.ping("beta")
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED
    assert "no access checker" in str(refused.value)


async def test_an_agent_of_another_organisation_is_permission_denied(fleet: Fleet) -> None:
    relations = Relations(("agent:alpha", "reads", "agent:beta"))
    await fleet.start("beta", checker=relations)
    stranger = await fleet.start("alpha", org_id="org2")

    with pytest.raises(AgentUnreachable):
        await stranger.ping("beta")  # it asks for beta.org2.agents: not beta's name
    # Asking for beta's own name, the call is made and refused by organisation.
    rejected = await _ping_as_beta(
        fleet.addresses["beta"], stranger.credentials.channel_credentials()
    )  # type: ignore[union-attr]
    assert rejected.code() is grpc.StatusCode.PERMISSION_DENIED
    assert rejected.details() == "agent alpha is of another organisation"
    assert relations.asked == []


async def test_a_revoked_caller_is_unauthenticated(fleet: Fleet) -> None:
    beta = await fleet.start("beta", config={"access": "organisation"})
    alpha = await fleet.start("alpha")
    assert await alpha.ping("beta") > 0

    assert alpha.credentials is not None
    fleet.ca.revoke(alpha.credentials.material.serial)
    fleet.crl.set(await fleet.ca.crl_pem())
    assert beta.revocations is not None
    await beta.revocations.refresh()

    with pytest.raises(AgentRefused) as refused:
        await alpha.ping("beta")
    assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in str(refused.value)


async def test_without_a_revocation_list_calls_are_unauthenticated(fleet: Fleet) -> None:
    unreachable = StaticCrlSource()  # fetches fail: no list has ever been taken
    await fleet.start("beta", config={"access": "organisation"}, crl_source=unreachable)
    alpha = await fleet.start("alpha")

    with pytest.raises(AgentRefused) as refused:
        await alpha.ping("beta")
    assert refused.value.status is grpc.StatusCode.UNAUTHENTICATED
    assert "cannot check revocation" in str(refused.value)


async def test_a_client_without_a_certificate_cannot_connect(fleet: Fleet, ca: AgentCa) -> None:
    await fleet.start("beta", config={"access": "organisation"})
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.ca_pem)
    channel = grpc.aio.secure_channel(
        fleet.addresses["beta"],
        credentials,
        options=[("grpc.ssl_target_name_override", "beta.org1.agents")],
    )
    async with channel:
        ping = channel.unary_unary(
            PING,
            request_serializer=pb.PingRequest.SerializeToString,
            response_deserializer=pb.PingReply.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await ping(pb.PingRequest(), timeout=10)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE  # the handshake fails


async def test_a_certificate_naming_no_agent_is_unauthenticated(
    fleet: Fleet, ca: AgentCa, tmp_path: Path
) -> None:
    await fleet.start("beta", config={"access": "organisation"})
    cert, key, _ = await ca.sign("press", entity=Entity(EntityType.THING, "press-01"))
    rejected = await _ping_as_beta(
        fleet.addresses["beta"], grpc.ssl_channel_credentials(ca.ca_pem, key, cert)
    )
    assert rejected.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "not an agent" in (rejected.details() or "")


async def test_an_agent_at_an_address_is_taken_only_under_its_own_name(fleet: Fleet) -> None:
    await fleet.start("beta", config={"access": "organisation"})
    alpha = await fleet.start("alpha")
    fleet.addresses["gamma"] = fleet.addresses["beta"]  # a wrong address for gamma

    with pytest.raises(AgentUnreachable):
        await alpha.ping("gamma")  # beta's certificate does not name gamma
    with pytest.raises(PeerUnknown):
        await alpha.ping("delta")


async def test_calls_through_an_sni_proxy_reach_the_agent_named(fleet: Fleet) -> None:
    alpha = await fleet.start("alpha", config={"access": "organisation"})
    beta = await fleet.start("beta", config={"access": "organisation"})
    alpha.register("whoami", lambda: "alpha")
    beta.register("whoami", lambda: "beta")
    routes = {
        "alpha.org1.agents": ("127.0.0.1", alpha.port or 0),
        "beta.org1.agents": ("127.0.0.1", beta.port or 0),
    }
    async with SniProxy(routes) as proxy:
        caller = await fleet.start("caller", config={"proxy": proxy.address}, resolver=None)
        assert await caller.call("beta", "whoami") == "beta"
        assert await caller.call("alpha", "whoami") == "alpha"
        assert await caller.call("beta", "whoami") == "beta"  # the channel is kept
    assert proxy.seen == ["beta.org1.agents", "alpha.org1.agents"]


async def test_a_renewed_certificate_is_served_to_new_connections_without_a_restart(
    fleet: Fleet, ca: AgentCa
) -> None:
    beta = await fleet.start("beta", config={"access": "organisation"})
    beta.register("caller_serial", lambda: current_caller().serial)  # type: ignore[union-attr]
    alpha = await fleet.start("alpha")
    assert beta.port is not None and beta.credentials is not None
    first = beta.credentials.material.serial
    alpha_files = fleet.files["alpha"]
    assert await served_serial(beta.port, ca, alpha_files, "beta.org1.agents") == first

    # the reload a SIGHUP asks for
    renewed = await ca.renew(fleet.files["beta"])
    await beta.reload()
    assert await served_serial(beta.port, ca, alpha_files, "beta.org1.agents") == renewed
    assert await alpha.call("beta", "caller_serial") == alpha_files.serial

    # the caller's side: its next new channel presents the renewed certificate
    alpha_renewed = await ca.renew(alpha_files)
    await alpha.reload()
    assert await alpha.call("beta", "caller_serial") == alpha_renewed
    assert await served_serial(beta.port, ca, alpha_files, "beta.org1.agents") == renewed


async def test_follow_delivers_every_published_state(fleet: Fleet) -> None:
    beta = await fleet.start("beta", config={"access": "organisation"})
    alpha = await fleet.start("alpha")
    await beta.publish_state({"state": "setup"})

    changes: list[StateChange] = []
    stream = alpha.follow("beta")
    async with asyncio.timeout(10):
        changes.append(await anext(stream))  # the last state, once beta holds the follower
        assert beta.followers == 1
        await beta.publish_state({"state": "running", "parts": 1})
        await beta.publish_state({"state": "running", "parts": 2})
        changes.append(await anext(stream))
        changes.append(await anext(stream))
    await stream.aclose()
    assert [(c.sequence, c.state) for c in changes] == [
        (1, {"state": "setup"}),
        (2, {"state": "running", "parts": 1}),
        (3, {"state": "running", "parts": 2}),
    ]
    assert beta.state == {"state": "running", "parts": 2}


async def test_a_follower_that_loses_reads_is_refused_at_the_next_state(fleet: Fleet) -> None:
    relations = Relations(("agent:alpha", "reads", "agent:beta"))
    beta = await fleet.start("beta", checker=relations)
    alpha = await fleet.start("alpha")
    await beta.publish_state({"state": "setup"})
    stream = alpha.follow("beta")
    async with asyncio.timeout(10):
        assert (await anext(stream)).state == {"state": "setup"}
        relations.grants.clear()
        await beta.publish_state({"state": "running"})
        with pytest.raises(AgentRefused) as refused:
            await anext(stream)
    assert refused.value.status is grpc.StatusCode.PERMISSION_DENIED


async def test_grpc_health_answers_any_agent_of_the_organisation(fleet: Fleet) -> None:
    await fleet.start("beta")  # no checker: its own services are refused to everyone
    alpha = await fleet.start("alpha")
    health = health_pb2_grpc.HealthStub(alpha.channel("beta"))

    answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(AgentRefused):
        await alpha.ping("beta")


async def _ping_as_beta(address: str, credentials: grpc.ChannelCredentials) -> grpc.aio.AioRpcError:
    """A bare Ping to `address`, asking for beta's name: the refusal it gets."""
    channel = grpc.aio.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", "beta.org1.agents")]
    )
    async with channel:
        ping = channel.unary_unary(
            PING,
            request_serializer=pb.PingRequest.SerializeToString,
            response_deserializer=pb.PingReply.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ping(pb.PingRequest(), timeout=10)
    return refused.value
