"""The Kubernetes runtime, through the official client, against the fake API server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import (
    AgentConflict,
    AgentNotFound,
    AgentRuntime,
    InvalidAgentSpec,
    ObservedState,
    RestartPolicy,
    RuntimeUnavailable,
    Workload,
)
from shopfloor.agents._kubernetes import KubernetesRuntime

from .fake_kubernetes import FakeKubernetes
from .runtime_contract import *  # noqa: F403
from .runtime_contract import Programs, image_programs, running, wait_for

NAMESPACE = "agents-test"


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with FakeKubernetes() as fake:
        yield fake


def _open(kube: FakeKubernetes) -> KubernetesRuntime:
    settings = {"kube_host": kube.url, "kube_namespace": NAMESPACE}
    return KubernetesRuntime.from_settings(settings, data_dir=Path("."))


@pytest.fixture
async def runtime(kube: FakeKubernetes) -> AsyncIterator[AgentRuntime]:
    async with _open(kube) as opened:
        yield opened
    async with _open(kube) as cleaner:
        for key in await cleaner.observe():
            await cleaner.remove(key)


@pytest.fixture
def reopen(kube: FakeKubernetes) -> Callable[[], AbstractAsyncContextManager[AgentRuntime]]:
    return lambda: _open(kube)


@pytest.fixture
def programs() -> Programs:
    return image_programs()


def _serve(version: str = "1", **fields: Any) -> Workload:
    return image_programs().serve("org/echo", "echo", version, **fields)


async def test_files_are_a_secret_volume_patched_in_place(
    runtime: AgentRuntime, kube: FakeKubernetes
) -> None:
    await runtime.apply(_serve(files={"cert.pem": b"old"}))
    before = await wait_for(runtime, "org/echo", running("1"))
    secret = kube.get("secrets", NAMESPACE, "sf-org-echo-files")
    assert secret is not None and base64.b64decode(secret["data"]["cert.pem"]) == b"old"
    deployment = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert deployment is not None
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["volumes"] == [
        {"name": "files", "secret": {"secretName": "sf-org-echo-files", "defaultMode": 0o400}}
    ]
    (container,) = pod_spec["containers"]
    assert container["volumeMounts"] == [
        {"name": "files", "mountPath": "/run/shopfloor/files", "readOnly": True}
    ]
    assert {"name": "SHOPFLOOR_AGENT_FILES", "value": "/run/shopfloor/files"} in container["env"]

    await runtime.update_files("org/echo", {"cert.pem": b"renewed"})
    secret = kube.get("secrets", NAMESPACE, "sf-org-echo-files")
    assert secret is not None and base64.b64decode(secret["data"]["cert.pem"]) == b"renewed"
    after = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert after is not None and after["metadata"]["generation"] == 1, "no rollout"
    seen = (await runtime.observe())["org/echo"]
    assert before is not None and seen.detail["pod"] == before.detail["pod"]
    assert seen.started_at == before.started_at and seen.restarts == 0


async def test_every_object_carries_the_labels(runtime: AgentRuntime, kube: FakeKubernetes) -> None:
    await runtime.apply(_serve(labels={"shopfloor.org": "org", "role": "line 4/cell"}))
    seen = await wait_for(runtime, "org/echo", running("1"))
    assert seen is not None and seen.detail["deployment"] == "sf-org-echo"
    objects = [
        kube.get("deployments", NAMESPACE, "sf-org-echo"),
        kube.get("secrets", NAMESPACE, "sf-org-echo-files"),
        *kube.items("pods", NAMESPACE),
    ]
    assert len(objects) == 3
    for obj in objects:
        assert obj is not None
        labels = obj["metadata"]["labels"]
        assert labels["shopfloor.managed"] == "true"
        assert labels["shopfloor.agent.key"] == "org.echo"
        assert labels["shopfloor.agent.version"] == "1"
        assert labels["shopfloor.org"] == "org" and labels["role"] == "line-4-cell"
        assert obj["metadata"]["annotations"]["shopfloor.agent/key"] == "org/echo"
    assert seen.endpoint.startswith("10.")


async def test_a_rollout_restart_changes_only_the_annotation(
    runtime: AgentRuntime, kube: FakeKubernetes
) -> None:
    await runtime.apply(_serve())
    await wait_for(runtime, "org/echo", running("1"))
    before = kube.get("deployments", NAMESPACE, "sf-org-echo")
    await runtime.restart("org/echo")
    after = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert before is not None and after is not None
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    del annotations["kubectl.kubernetes.io/restartedAt"]
    assert after["spec"]["template"] == before["spec"]["template"]
    assert (
        "PATCH",
        "/apis/apps/v1/namespaces/agents-test/deployments/sf-org-echo",
        "application/strategic-merge-patch+json",
    ) in kube.requests
    seen = await wait_for(
        runtime, "org/echo", lambda s: running()(s) and s is not None and s.restarts == 1
    )
    assert seen is not None


async def test_rollback_puts_the_previous_template_back(
    runtime: KubernetesRuntime, kube: FakeKubernetes
) -> None:
    await runtime.apply(_serve("1"))
    await wait_for(runtime, "org/echo", running("1"))
    first = kube.get("deployments", NAMESPACE, "sf-org-echo")
    await runtime.apply(_serve("2"))
    await wait_for(runtime, "org/echo", running("2"))
    second = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert first is not None and second is not None
    previous = json.loads(second["metadata"]["annotations"]["shopfloor.agent/previous-template"])
    assert previous == first["spec"]["template"]
    await runtime.rollback("org/echo")
    await wait_for(runtime, "org/echo", running("1"))
    rolled = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert rolled is not None and rolled["spec"]["template"] == first["spec"]["template"]
    assert rolled["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1")
    await runtime.apply(_serve("2"))  # the reconciler rolls forward again
    await wait_for(runtime, "org/echo", running("2"))


async def test_a_crashing_agent_under_always_is_restarted_by_the_kubelet(
    runtime: AgentRuntime, kube: FakeKubernetes, programs: Programs
) -> None:
    await runtime.apply(programs.fail("org/bad", "bad", "1", restart_policy=RestartPolicy.ALWAYS))
    seen = await wait_for(runtime, "org/bad", lambda s: s is not None and s.restarts >= 2)
    assert seen is not None and seen.state is ObservedState.FAILED and seen.exit_code == 3
    deployment = kube.get("deployments", NAMESPACE, "sf-org-bad")
    assert deployment is not None and deployment["spec"]["replicas"] == 1, "always: kept running"


async def test_the_apis_refusals_are_our_errors(
    runtime: KubernetesRuntime, kube: FakeKubernetes
) -> None:
    with pytest.raises(AgentNotFound):
        await runtime.restart("org/never-was")
    with pytest.raises(AgentNotFound):
        await runtime.rollback("org/never-was")
    await runtime.apply(_serve())
    with pytest.raises(AgentNotFound):
        await runtime.rollback("org/echo")  # nothing to go back to
    body = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert body is not None
    with pytest.raises(AgentConflict, match="already exists"):  # 409 AlreadyExists
        await runtime._call("apps", "create_namespaced_deployment", NAMESPACE, body)
    stale = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
    with pytest.raises(AgentConflict, match="has been modified"):  # 409 Conflict
        await runtime._call(
            "apps", "replace_namespaced_deployment", "sf-org-echo", NAMESPACE, stale
        )
    with pytest.raises(InvalidAgentSpec, match="Bad_Name"):  # 422 Invalid
        await runtime._call(
            "apps",
            "create_namespaced_deployment",
            NAMESPACE,
            {**body, "metadata": {"name": "Bad_Name"}},
        )
    with pytest.raises(InvalidAgentSpec):
        await runtime.apply(Workload(key="org/cmd", name="cmd", version="1", command=("x",)))


async def test_a_name_held_by_another_object_is_a_conflict(
    runtime: KubernetesRuntime, kube: FakeKubernetes
) -> None:
    await runtime.apply(_serve())
    body = kube.get("deployments", NAMESPACE, "sf-org-echo")
    assert body is not None
    body["metadata"]["annotations"]["shopfloor.agent/key"] = "someone/else"
    await runtime._call("apps", "replace_namespaced_deployment", "sf-org-echo", NAMESPACE, body)
    with pytest.raises(AgentConflict, match="not this agent's"):
        await runtime.apply(_serve("2"))


async def test_an_unreachable_api_is_unavailable(kube: FakeKubernetes) -> None:
    settings = {"kube_host": "http://127.0.0.1:9", "kube_namespace": NAMESPACE}
    async with KubernetesRuntime.from_settings(settings, data_dir=Path(".")) as runtime:
        with pytest.raises(RuntimeUnavailable):
            await runtime.observe()


async def test_following_the_log_streams_until_the_caller_stops(runtime: AgentRuntime) -> None:
    await runtime.apply(_serve())
    await wait_for(runtime, "org/echo", running("1"))
    async with asyncio.timeout(10):
        stream = runtime.logs("org/echo", tail=10, follow=True)
        async for line in stream:
            assert line.text == "hello from echo" and line.time.tzinfo is not None
            break
        await stream.aclose()  # type: ignore[attr-defined]
