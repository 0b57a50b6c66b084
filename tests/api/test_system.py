"""Health, metrics and the API docs served without any outside network."""

from __future__ import annotations

import re

from .conftest import Api


async def test_health_reports_every_service(api: Api) -> None:
    response = await api.http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"] == {
        "registry": True,
        "bus": True,
        "timeseries": True,
        "pki": True,
        "writer": True,
        "mqtt": True,
        "agents": True,
        "relations": True,
        "aas": True,
        "flows": True,
        "console": True,
    }


async def test_health_is_unavailable_when_a_service_is_not_ready(api: Api) -> None:
    async def broken() -> bool:
        return False

    api.platform.health.add("broken", broken)
    response = await api.http.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["services"]["broken"] is False
    assert "problems" not in response.json()  # nothing said why


async def test_health_says_why_a_service_is_not_ready(api: Api) -> None:
    ready = False

    async def check() -> bool:
        return ready

    api.platform.health.add("broker", check, lambda: "the broker refused the admin login")
    response = await api.http.get("/health")
    assert response.status_code == 503
    assert response.json()["problems"] == {"broker": "the broker refused the admin login"}
    ready = True
    assert "problems" not in (await api.http.get("/health")).json()


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    await api.http.get("/api/v1/things/123")  # 401, but counted under its template
    text = (await api.http.get("/metrics")).text
    labels = 'method="GET",route="/api/v1/things/{thing_id}",status="401"'
    assert f"shopfloor_http_requests_total{{{labels}}} 1.0" in text
    assert "shopfloor_http_request_seconds_bucket" in text


async def test_metrics_can_be_narrowed_to_named_samples(api: Api) -> None:
    await api.http.get("/api/v1/things/123")
    wanted = "shopfloor_http_requests_total"
    response = await api.http.get("/metrics", params=[("name[]", wanted)])
    samples = [line for line in response.text.splitlines() if not line.startswith("#")]
    assert samples, response.text
    assert all(line.startswith(f"{wanted}{{") for line in samples), samples
    assert "shopfloor_http_request_seconds_bucket" not in response.text


async def test_docs_load_only_local_assets(api: Api) -> None:
    page = await api.http.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)
    assert urls, "the page references its assets"
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"/docs loads {url} from outside"
        assert (await api.http.get(url)).status_code == 200, url
    spec = (await api.http.get("/openapi.json")).json()
    assert "/api/v1/things" in spec["paths"]
    assert "/api/v1/auth/token" in spec["paths"]


async def test_the_data_dir_is_readable_by_its_owner_only(api: Api) -> None:
    # password hashes (registry), keys (secrets) and telemetry (time series) live there
    data_dir = api.platform.settings.data_dir
    await api.http.post(
        "/api/v1/orgs", json={"name": "Plant"}, headers=await api.root()
    )  # something written, so that the WAL files exist

    modes = {
        str(path.relative_to(data_dir.parent)): path.stat().st_mode & 0o777
        for path in [data_dir, *data_dir.rglob("*")]
    }

    assert {"data/registry.db", "data/registry.db-wal", "data/secrets"} <= set(modes), modes
    assert any(name.startswith("data/timeseries") for name in modes), modes
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


async def test_the_front_page_links_the_docs_health_and_metrics(api: Api) -> None:
    page = await api.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = re.findall(r"""href="([^"]+)\"""", page.text)
    assert {"/docs", "/health", "/metrics", "/openapi.json"} <= set(links)
    assert not re.search(r"""(?:src|href)="(?:https?:)?//""", page.text), "no outside request"
    for link in links:
        assert (await api.http.get(link)).status_code in (200, 503), link
