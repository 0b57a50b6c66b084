"""Agent-to-agent unary calls over mTLS with the access check, beside bare gRPC.

Two agents, certificates from `shopfloor.pki`'s built-in authority signed as the agents
service signs them (SAN URI `urn:shopfloor:agent:<org>/<name>`, DNS
`<name>.<org>.agents`). The callee runs in a process of its own (`main(["agent", ...])`
of this module), so that the caller's client and the callee's
server do not take turns on one GIL; the caller is an `Agent` in the runner's process.
The callee registers `echo(value)`, which returns its argument, and is given a checker
that answers from an in-memory set of (subject, relation, object), asynchronously as
the relation graph's cache may; its revocation list (one unrelated serial revoked) is
the authority's CRL, held in memory (`StaticCrlSource`). So every call takes the full
path: the TLS handshake once per connection, then per call the caller's certificate
from `auth_context()`, its identity (cached per certificate), the revocation list, the
organisation, the checker (`calls`), the JSON arguments checked against the method's
signature, and the JSON result.

Measured: N sequential `Agent.call("callee", "echo", value=...)` (p50, p99 after a
warm-up on the same channel), then calls/s with C callers calling at once on the
caller's one channel for a fixed time.

The anchor, in the same run: a plain `grpc.aio` server in a process of its own, on an
insecure port, one generic unary method without interceptor or (de)serialisers that
answers the bytes of the callee's reply to the bytes of the caller's request (the same
bytes on the wire), and a plain insecure channel; same N, same C, same time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._servers import stop_counting
from bench._stats import percentile
from shopfloor.pki import BuiltinAuthority, Entity, EntityType, RevokedEntry, SigningRequest
from shopfloor.sdk import Agent, AgentContext, Peers, StaticCrlSource, agent_dns_name
from shopfloor.sdk._wire import pb

__all__ = ["AgentCallsScenario"]

ORG = "org1"
CALLER, CALLEE = "caller", "callee"
#: The argument every call carries, and the callee echoes.
VALUE = {"machine": "press-7", "program": "P-1042", "parts": 24, "run": True}
ANCHOR_METHOD = "/bench.Echo/Call"
WARM_UP = 50

Unary: TypeAlias = "grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]"  # generic in the stubs only
STARTUP_TIMEOUT = 30.0


class SetChecker:
    """`checker(subject, relation, object)` answering from a set, asynchronously."""

    def __init__(self, grants: set[tuple[str, str, str]]) -> None:
        self.grants = grants
        self.asked = 0

    async def __call__(self, subject: str, relation: str, object: str) -> bool:
        self.asked += 1
        return (subject, relation, object) in self.grants


def _wire_bytes() -> tuple[bytes, bytes]:
    """The request and reply of one `echo` call as they travel (for the anchor)."""
    request = pb.CallRequest(method="echo", arguments_json=json.dumps({"value": VALUE}))
    reply = pb.CallReply(result_json=json.dumps(VALUE))
    return request.SerializeToString(), reply.SerializeToString()


# -- the servers, each in a process of its own ------------------------------------------


async def _serve_until_terminated(port: int) -> None:
    """Tell the runner the port (the first line out), then serve until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"port {port}", flush=True)
    await stop.wait()


async def _serve_agent(folder: Path, crl: bytes) -> None:
    grants = {(f"agent:{CALLER}", "calls", f"agent:{CALLEE}")}
    grants |= {(f"agent:other-{n}", "calls", f"agent:{CALLEE}") for n in range(1000)}
    checker = SetChecker(grants)
    agent = Agent(
        _context(folder, CALLEE), checker=checker,
        crl_source=StaticCrlSource(crl), resolver=Peers({}),
    )  # fmt: skip

    def echo(value: Any) -> Any:
        return value

    agent.register("echo", echo)
    async with agent:
        assert agent.port is not None
        await _serve_until_terminated(agent.port)
    print(f"checked {checker.asked}", flush=True)


async def _serve_anchor() -> None:
    _, reply = _wire_bytes()
    answered = 0

    async def call(request: bytes, context: Any) -> bytes:
        nonlocal answered
        answered += 1
        return reply

    server = grpc.aio.server()
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("bench.Echo", {"Call": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await _serve_until_terminated(port)
    finally:
        await server.stop(1)
    print(f"checked {answered}", flush=True)


_SERVE = "import sys; from bench.scenarios.agent_calls import main; main(sys.argv[1:])"


def _start(python: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([python, "-c", _SERVE, *args], stdout=subprocess.PIPE, text=True)


def _port(process: subprocess.Popen[str], name: str) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("port "):
        raise RuntimeError(f"the {name} server did not start: {line!r}")
    return int(line.split()[1])


# -- certificates --------------------------------------------------------------------------


def _context(folder: Path, name: str) -> AgentContext:
    config = json.loads((folder / "config.json").read_text())
    return AgentContext(name=name, org_id=ORG, files_dir=folder, config=config)


async def _issue(authority: BuiltinAuthority, name: str) -> tuple[bytes, bytes, int]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    certificate = await authority.sign(
        SigningRequest(
            csr, Entity(EntityType.AGENT, f"{ORG}/{name}"), timedelta(days=1), kind="server",
            hostnames=[agent_dns_name(ORG, name)],
        )
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return cert_pem, key_pem, certificate.serial_number


async def _agent_files(work: Path) -> Path:
    """Both agents' folders (`work/<name>`) and the CRL (`work/crl.pem`)."""
    authority = BuiltinAuthority(work / "ca", passphrase="", crl_next_update=timedelta(days=1))
    async with authority:
        ca_pem = authority.certificate.public_bytes(serialization.Encoding.PEM)
        for name in (CALLER, CALLEE):
            cert_pem, key_pem, _ = await _issue(authority, name)
            folder = work / name
            folder.mkdir(parents=True, exist_ok=True)
            settings = {"grpc_host": "127.0.0.1", "grpc_port": 0}
            (folder / "config.json").write_text(json.dumps(settings))
            for file, data in (("cert.pem", cert_pem), ("key.pem", key_pem), ("ca.pem", ca_pem)):
                (folder / file).write_bytes(data)
        _, _, retired = await _issue(authority, "retired")
        revoked = [RevokedEntry(retired, datetime.now(UTC), x509.ReasonFlags.key_compromise)]
        crl = work / "crl.pem"
        crl.write_text(await authority.crl(revoked))
    return crl


# -- the callers --------------------------------------------------------------------------


async def _measure(
    call: Callable[[], Awaitable[Any]], count: int, callers: int, seconds: float
) -> tuple[list[float], int, float]:
    """(latencies of `count` sequential calls, calls made by `callers` at once, their time)."""
    for _ in range(WARM_UP):
        await call()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    made = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal made
        while time.perf_counter() < deadline:
            await call()
            made += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies, made, time.perf_counter() - started


async def _agent_calls(
    work: Path, crl: bytes, port: int, count: int, callers: int, seconds: float
) -> tuple[list[float], int, float, bool]:
    agent = Agent(
        _context(work / CALLER, CALLER), crl_source=StaticCrlSource(crl),
        resolver=Peers({CALLEE: f"127.0.0.1:{port}"}),
    )  # fmt: skip
    async with agent:
        echoed = await agent.call(CALLEE, "echo", value=VALUE) == VALUE

        async def call() -> Any:
            return await agent.call(CALLEE, "echo", value=VALUE)

        return (*await _measure(call, count, callers, seconds), echoed)


async def _anchor_calls(
    port: int, count: int, callers: int, seconds: float
) -> tuple[list[float], int, float, bool]:
    request, reply = _wire_bytes()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method: Unary = channel.unary_unary(ANCHOR_METHOD)
        echoed = await method(request, timeout=10) == reply

        async def call() -> Any:
            return await method(request, timeout=10)

        return (*await _measure(call, count, callers, seconds), echoed)


class AgentCallsScenario(Scenario, name="agent_calls"):
    title = "Agent calls: unary `Agent.call` over mTLS with the ACL check, beside bare gRPC"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        count, callers = ctx.pick(200, 5000), 4
        seconds = ctx.pick(1.0, 10.0)
        work = ctx.work_dir / "agent-calls"
        crl = asyncio.run(_agent_files(work))
        # Both servers start together (each takes a second or two to import); they are
        # measured one after the other, the one waiting being idle.
        anchor = _start(ctx.python, "anchor")
        callee = _start(ctx.python, "agent", str(work / CALLEE), str(crl))
        try:
            anchor_port, callee_port = _port(anchor, "anchor"), _port(callee, "agent")
            bare = asyncio.run(_anchor_calls(anchor_port, count, callers, seconds))
            ours = asyncio.run(
                _agent_calls(work, crl.read_bytes(), callee_port, count, callers, seconds)
            )
        finally:
            bare_answered, checked = stop_counting(anchor), stop_counting(callee)
        latencies, made, took, echoed = ours
        bare_latencies, bare_made, bare_took, bare_echoed = bare
        for name, q in (("p50", 50), ("p99", 99)):
            result.figures.append(
                Figure(
                    key=f"agent_calls.latency_{name}",
                    label=f"agent → agent unary call, mTLS and ACL check, {name}",
                    value=percentile(latencies, q) * 1000,
                    unit="ms",
                    anchor=Anchor(
                        label=f"bare grpc.aio unary call, insecure, {name}",
                        value=percentile(bare_latencies, q) * 1000,
                    ),
                    detail=f"{count:,} calls one after the other, after {WARM_UP} on the "
                    "same channel"
                    if name == "p50"
                    else "",
                )
            )
        result.figures.append(
            Figure(
                key="agent_calls.rate",
                label=f"agent → agent unary calls/s, {callers} callers at once",
                value=made / took,
                unit="calls/s",
                anchor=Anchor(
                    label=f"bare grpc.aio unary calls/s, {callers} callers",
                    value=bare_made / bare_took,
                ),
                detail=f"{made:,} calls in {took:.1f} s on one channel; the anchor "
                f"{bare_made:,} in {bare_took:.1f} s",
            )
        )
        result.notes.append(
            "The callee and the anchor's server each run in a process of their own; the "
            "callers (the caller `Agent`, the anchor's channel) in the runner's process. "
            f"The argument is `{json.dumps({'value': VALUE})}`: the request is "
            f"{len(_wire_bytes()[0])} bytes, the reply {len(_wire_bytes()[1])}, the same "
            "for the anchor."
        )
        total = WARM_UP + count + made + 1
        bare_total = WARM_UP + count + bare_made + 1
        result.check("the callee echoed the argument", echoed and bare_echoed)
        result.check(
            "the checker was asked once per call",
            checked == total,
            f"{checked:,} checks for {total:,} calls",
        )
        result.check(
            "the anchor answered every call",
            bare_answered == bare_total,
            f"{bare_answered:,} of {bare_total:,}",
        )
        result.check("latencies are positive", min(latencies) > 0 and min(bare_latencies) > 0)


def main(argv: list[str]) -> None:
    if argv[:1] == ["agent"]:
        asyncio.run(_serve_agent(Path(argv[1]), Path(argv[2]).read_bytes()))
    elif argv[:1] == ["anchor"]:
        asyncio.run(_serve_anchor())
    else:
        sys.exit("usage: main(['agent', FOLDER, CRL]) or main(['anchor'])")
