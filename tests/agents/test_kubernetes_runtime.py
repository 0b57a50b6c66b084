"""The Kubernetes runtime, through the official client, against the fake API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from shopfloor.agents import (
    AgentRuntime,
    Workload,
)
from shopfloor.agents._kubernetes import KubernetesRuntime

from .fake_kubernetes import FakeKubernetes
from .runtime_contract import *  # noqa: F403
from .runtime_contract import Programs

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


def _workload(image: str) -> Callable[..., Workload]:
    def make(key: str, name: str, version: str, **fields: Any) -> Workload:
        return Workload(key=key, name=name, version=version, image=f"{image}:{version}", **fields)

    return make


@pytest.fixture
def programs() -> Programs:
    return Programs(
        serve=_workload("registry.example/echo"), fail=_workload("registry.example/fail")
    )
