"""Console dashboards: drawing, live latency, and what an open dashboard costs the server.

One `shopfloor serve --demo` (console, dashboards, embedded MQTT broker, HTTP adapter,
writer; the demo's simulator publishing its three machines every second, as `make run`
does), Debian's chromium driven by Playwright, and three measurements, each beside an
anchor from the same run:

- **render**: a dashboard of 10 line panels over 10,000 stored points each (published
  through the HTTP adapter first), from navigation until every panel has drawn (the
  page's `data-rendered`, set after ECharts' `finished` of every panel), beside the
  same points drawn by bare ECharts with the same series options from one static JSON
  file over a bare HTTP server: the floor that the browser and ECharts set;
- **live**: a value published over MQTT (QoS 1, a thing's own connection to the
  embedded broker) until the open dashboard shows it (the panel's `data-last-value`,
  seen by a MutationObserver at `Date.now()`), beside the same PUBLISH reaching a bare
  MQTT subscriber on the same broker; probes go one at a time, 0.3 s or more apart,
  so that each is the newest value of its live batch;
- **cost**: the server's CPU with K live dashboards open (the demo's own, in K pages)
  minus with none, per dashboard, beside the server's CPU with none open.

Both clocks of the live figure are the machine's wall clock (`time.time()` in the
publisher, `Date.now()` in the page).
"""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from paho.mqtt import client as mqtt
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import ADMIN, HOST, ServerProcess, free_port, shopfloor_server
from bench._stats import median, percentile

__all__ = ["DashboardsScenario"]

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download is never used: Debian's chromium, as the UI tests.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SERVICES = "api,http,mqtt,writer,console,dashboards"
PANELS = 10
RENDER_GOAL_MS = 1000.0
LIVE_GOAL_MS = 500.0
PROBE = "bench:probe"
#: Records per SenML pack while loading the render dashboard's points.
PACK = 1000

# Installed before any script of a page: when the dashboard (or the anchor page) says
# it has drawn, and when each panel first showed each value.
_WATCH = """
window.__seen = {};
new MutationObserver(function (changes) {
  const now = Date.now();
  changes.forEach(function (change) {
    const el = change.target;
    if (change.attributeName === "data-rendered" && window.__rendered === undefined) {
      window.__rendered = performance.now();
    } else if (change.attributeName === "data-last-value") {
      const value = el.getAttribute("data-last-value");
      if (value && !(value in window.__seen)) { window.__seen[value] = now; }
    }
  });
}).observe(document, { subtree: true, attributes: true,
                       attributeFilter: ["data-rendered", "data-last-value"] });
"""

# The anchor page: the same points and series options as the dashboard's line panels
# (`dashboards/static/dashboard.js`), drawn by ECharts alone.
_ANCHOR_HTML = """<!doctype html><html><head><meta charset="utf-8">
<style>body{margin:0;display:grid;grid-template-columns:1fr 1fr;gap:8px}
.panel{height:280px}</style></head><body><main id="root"></main>
<script src="echarts.min.js"></script><script src="anchor.js"></script></body></html>"""
_ANCHOR_JS = """
fetch("data.json").then((r) => r.json()).then(function (body) {
  const root = document.getElementById("root");
  const ids = Object.keys(body.panels);
  let pending = ids.length;
  ids.forEach(function (id) {
    const el = document.createElement("div");
    el.className = "panel";
    root.appendChild(el);
    const chart = echarts.init(el);
    chart.on("finished", function once() {
      chart.off("finished", once);
      pending -= 1;
      if (pending === 0) { root.dataset.rendered = "1"; }
    });
    const s = body.panels[id].series[0];
    chart.setOption({
      animation: false, grid: { left: 48, right: 16, top: 12, bottom: 24 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time", min: body.window.from, max: body.window.to },
      yAxis: { type: "value", scale: true },
      dataset: [{ dimensions: ["t", "v"], source: { t: s.t, v: s.v } }],
      series: [{ type: "line", name: s.name, showSymbol: false, sampling: "lttb",
                 datasetIndex: 0, encode: { x: "t", y: "v" } }],
    });
  });
});
"""


@dataclass(frozen=True, slots=True)
class Plan:
    points: int
    renders: int
    probes: int
    cpu_window: float
    open_dashboards: int
    rounds: int


@dataclass(frozen=True, slots=True)
class Demo:
    """The demo plant as the bench sees it: the channel, a probe thing, the admin."""

    url: str
    channel: str
    thing_id: str
    key: str
    headers: dict[str, str]


class DashboardsScenario(Scenario, name="dashboards"):
    title = "Console dashboards: drawing, live latency, server CPU per open dashboard"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        if shutil.which(CHROMIUM) is None:
            raise RuntimeError(f"{CHROMIUM} is missing: scripts/ensure-chromium.sh installs it")
        plan = Plan(
            points=ctx.pick(2_000, 10_000), renders=ctx.pick(3, 10), probes=ctx.pick(15, 200),
            cpu_window=ctx.pick(3.0, 20.0), open_dashboards=ctx.pick(2, 5),
            rounds=ctx.pick(1, 2),
        )  # fmt: skip
        mqtt_port = free_port()
        with (
            shopfloor_server(
                ctx.python, ctx.work_dir / "dashboards-data", services=SERVICES,
                mqtt_port=mqtt_port, demo=True, log_name="dashboards",
            ) as server,
            sync_playwright() as playwright,
        ):  # fmt: skip
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                demo = _demo(server.url)
                context = _signed_in(browser, server.url)
                self._render(ctx, result, plan, demo, browser, context)
                self._live(result, plan, demo, context, mqtt_port)
                self._cost(result, plan, demo, server, context)
            finally:
                browser.close()

    # -- render -----------------------------------------------------------------------

    def _render(
        self, ctx: BenchContext, result: ScenarioResult, plan: Plan, demo: Demo,
        browser: Browser, context: BrowserContext,
    ) -> None:  # fmt: skip
        names = [f"bench:series-{i}" for i in range(PANELS)]
        started = time.monotonic()
        _load(demo, names, plan.points)
        load_seconds = time.monotonic() - started
        panels = [
            {"id": f"p{i}", "type": "line", "title": name,
             "grid": {"x": (i % 2) * 12, "y": (i // 2) * 8, "w": 12, "h": 8},
             "query": {"channel": demo.channel, "name": name, "limit": plan.points}}
            for i, name in enumerate(names)
        ]  # fmt: skip
        dashboard = _create_dashboard(demo, "Bench: 10 panels", panels)
        page_url = f"{demo.url}/console/dashboards/{dashboard}"
        data = context.request.get(f"{page_url}/data")
        if not data.ok:
            raise RuntimeError(f"the dashboard's data: {data.status} {data.text()}")
        # JSON lines, the window first and then each panel: one document for the anchor
        head, *lines = [json.loads(line) for line in data.text().splitlines()]
        body = {**head, "panels": {line.pop("panel"): line for line in lines}}
        counts = [
            sum(len(s["t"]) for s in body["panels"][p["id"]].get("series", [])) for p in panels
        ]
        result.check(
            f"every panel got its {plan.points:,} points",
            all(count == plan.points for count in counts),
            f"points per panel: {counts}",
        )
        with _anchor_site(ctx.work_dir / "echarts-anchor", body) as anchor_url:
            ours, bare = [], []
            for _ in range(plan.renders):  # alternating, one of each after the other
                ours.append(_time_render(context, page_url))
                bare.append(_time_render(browser, anchor_url))
        drawn, bare_drawn = [r.drawn for r in ours], [r.drawn for r in bare]
        label = f"Dashboard of {PANELS} line panels of {plan.points:,} points, navigation → drawn"
        result.figures.append(
            Figure(
                key="dashboards.render_ms", label=f"{label} (median of {plan.renders})",
                value=median(drawn), unit="ms",
                anchor=Anchor(label="bare ECharts, same points, static page",
                              value=median(bare_drawn)),
                goal=Goal(kind="below", threshold=RENDER_GOAL_MS),
            )
        )  # fmt: skip
        result.figures.append(
            Figure(
                key="dashboards.render_max_ms", label=f"{label} (slowest of {plan.renders})",
                value=max(drawn), unit="ms",
                anchor=Anchor(label="bare ECharts, slowest", value=max(bare_drawn)),
            )
        )  # fmt: skip

        def at(runs: list[Render], mark: str) -> str:
            return f"{median([getattr(r, mark) for r in runs]):.0f}"

        marks = ("page_done", "scripts_run", "data_asked", "data_first_byte", "data_done")
        result.notes.append(
            f"render: {PANELS * plan.points:,} points published through the HTTP adapter in "
            f"packs of {PACK:,} and stored in {load_seconds:.1f} s; each run a new page of "
            "one signed-in browser context, timed by `performance.now()` when the page set "
            "`data-rendered`; runs alternate with the anchor's. Medians from navigation "
            "(page received / scripts run / data asked / its first byte / all of it): ours "
            + " / ".join(at(ours, m) for m in marks)
            + " ms, the anchor's "
            + " / ".join(at(bare, m) for m in marks)
            + " ms"
        )

    # -- live -------------------------------------------------------------------------

    def _live(
        self, result: ScenarioResult, plan: Plan, demo: Demo, context: BrowserContext,
        mqtt_port: int,
    ) -> None:  # fmt: skip
        panels = [{"id": "probe", "type": "stat", "title": "probe",
                   "query": {"channel": demo.channel, "name": PROBE, "limit": 100}}]  # fmt: skip
        dashboard = _create_dashboard(demo, "Bench: probe", panels)
        page = context.new_page()
        page.add_init_script(_WATCH)
        page.goto(f"{demo.url}/console/dashboards/{dashboard}")
        page.wait_for_function(
            "() => document.querySelector('[data-live]')?.dataset.live === 'open'", timeout=30_000
        )
        topic = f"channels/{demo.channel}/messages/bench"
        received: dict[str, float] = {}
        subscriber = _mqtt_client(demo, mqtt_port, "bench-anchor-sub")
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *_: subscribed.set()

        def on_message(_client: Any, _data: Any, message: Any) -> None:
            value = str(json.loads(message.payload)[0]["v"])
            received.setdefault(value, time.time() * 1000)

        subscriber.on_message = on_message
        subscriber.subscribe(topic, qos=1)
        publisher = _mqtt_client(demo, mqtt_port, "bench-probe-pub")
        sent: dict[str, float] = {}
        try:
            if not subscribed.wait(10):
                raise RuntimeError("the anchor subscriber was not subscribed in 10 s")
            rng = random.Random(7)
            for probe in range(1, plan.probes + 1):
                payload = json.dumps([{"n": PROBE, "v": probe}])
                sent[str(probe)] = time.time() * 1000
                publisher.publish(topic, payload, qos=1).wait_for_publish(10)
                time.sleep(0.3 + rng.random() * 0.1)
            deadline = time.monotonic() + 5
            seen: dict[str, float] = {}
            while time.monotonic() < deadline:
                seen = page.evaluate("() => window.__seen")
                if all(key in seen for key in sent) and all(key in received for key in sent):
                    break
                time.sleep(0.1)
        finally:
            for client in (publisher, subscriber):
                client.disconnect()
                client.loop_stop()
            page.close()
        shown = [seen[key] - at for key, at in sent.items() if key in seen]
        bare = [received[key] - at for key, at in sent.items() if key in received]
        result.check(
            "every probe appeared on the open dashboard",
            len(shown) == len(sent),
            f"{len(shown)} of {len(sent)} shown, {len(bare)} of {len(sent)} received bare",
        )
        if not shown or not bare:
            return
        result.figures.append(
            Figure(
                key="dashboards.live_p99_ms",
                label=f"MQTT publish → value on an open dashboard, p99 of {len(shown)}",
                value=percentile(shown, 99), unit="ms",
                anchor=Anchor(label="same PUBLISH → bare MQTT subscriber, p99",
                              value=percentile(bare, 99)),
                goal=Goal(kind="below", threshold=LIVE_GOAL_MS),
            )
        )  # fmt: skip
        result.notes.append(
            f"live: p50 {median(shown):.0f} ms on the dashboard, {median(bare):.1f} ms bare; "
            "the dashboard's live batch waits at most SHOPFLOOR_DASHBOARDS_LIVE_BATCH_SECONDS"
        )

    # -- cost -------------------------------------------------------------------------

    def _cost(
        self, result: ScenarioResult, plan: Plan, demo: Demo, server: ServerProcess,
        context: BrowserContext,
    ) -> None:  # fmt: skip
        listing = httpx.get(f"{demo.url}/api/v1/dashboards", headers=demo.headers, timeout=30)
        listing.raise_for_status()
        seeded = [d for d in listing.json()["items"] if not d["title"].startswith("Bench")]
        if not seeded:
            raise RuntimeError("serve --demo seeded no dashboard")
        page_url = f"{demo.url}/console/dashboards/{seeded[0]['id']}"
        idle, busy = [], []
        for _ in range(plan.rounds):
            idle.append(_cpu_percent(server, plan.cpu_window))
            pages = [context.new_page() for _ in range(plan.open_dashboards)]
            try:
                for page in pages:
                    page.goto(page_url)
                for page in pages:
                    page.wait_for_function(
                        "() => document.querySelector('[data-live]')?.dataset.live === 'open'",
                        timeout=30_000,
                    )
                time.sleep(1.0)  # the first data answers drawn; then only live points
                busy.append(_cpu_percent(server, plan.cpu_window))
                applied = [int(p.evaluate(_LIVE_BATCHES)) for p in pages]
            finally:
                for page in pages:
                    page.close()
        result.check(
            "every open dashboard applied live batches",
            all(count > 0 for count in applied),
            f"live batches per page: {applied}",
        )
        base, loaded = median(idle), median(busy)
        per = (loaded - base) / plan.open_dashboards
        result.figures.append(
            Figure(
                key="dashboards.cpu_per_dashboard",
                label="Server CPU per open live dashboard (the demo's, at its message rate), "
                "% of a core",
                value=per, unit="%",
                anchor=Anchor(label="server CPU with no dashboard open, % of a core", value=base),
            )
        )  # fmt: skip
        result.notes.append(
            f"cost: the server at {base:.1f}% of a core with none open and {loaded:.1f}% with "
            f"{plan.open_dashboards} open (median of {plan.rounds} windows of "
            f"{plan.cpu_window:.0f} s each), the demo simulator's three machines publishing "
            "once a second"
        )


_LIVE_BATCHES = "() => document.querySelector('[data-live]')?.dataset.liveBatches || 0"


def _demo(url: str) -> Demo:
    """The demo's channel, and a probe thing connected to it, made through the API."""
    with httpx.Client(base_url=url, timeout=30) as http:
        token = http.post("/api/v1/auth/token", json={"email": ADMIN[0], "password": ADMIN[1]})
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        channels = http.get("/api/v1/channels", params={"name": "telemetry"}, headers=headers)
        channels.raise_for_status()
        channel = channels.json()["items"][0]["id"]
        thing = http.post("/api/v1/things", json={"name": "bench-probe"}, headers=headers)
        thing.raise_for_status()
        thing_id, key = thing.json()["id"], thing.json()["key"]
        http.put(f"/api/v1/channels/{channel}/things/{thing_id}", headers=headers)
    return Demo(url=url, channel=channel, thing_id=thing_id, key=key, headers=headers)


def _load(demo: Demo, names: list[str], points: int) -> None:
    """`points` points of every name over the last 50 minutes, stored before returning."""
    end = time.time() - 5
    step = 3000.0 / points
    records = [
        {"n": name, "t": round(end - (points - i) * step, 3), "v": round((i % 500) * 0.1, 1)}
        for name in names
        for i in range(points)
    ]
    auth = {"Authorization": f"Thing {demo.key}", "Content-Type": "application/senml+json"}
    path = f"/http/channels/{demo.channel}/messages"
    with httpx.Client(base_url=demo.url, timeout=60) as http:
        for start in range(0, len(records), PACK):
            pack = json.dumps(records[start : start + PACK])
            answer = http.post(path, content=pack, headers=auth)
            if answer.status_code >= 300:
                raise RuntimeError(f"loading: {answer.status_code} {answer.text}")
        deadline = time.monotonic() + 120
        read = f"/api/v1/channels/{demo.channel}/messages"
        for name in names:
            while True:
                page = http.get(read, params={"name": name, "limit": 1}, headers=demo.headers)
                page.raise_for_status()
                if page.json()["total"] >= points:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: {page.json()['total']} of {points} stored")
                time.sleep(0.2)


def _create_dashboard(demo: Demo, title: str, panels: list[dict[str, Any]]) -> str:
    document = {"schemaVersion": 1, "title": title, "time": {"from": "now-1h", "to": "now"},
                "panels": panels}  # fmt: skip
    answer = httpx.post(
        f"{demo.url}/api/v1/dashboards", json=document, headers=demo.headers, timeout=30
    )
    if answer.status_code >= 300:
        raise RuntimeError(f"creating {title!r}: {answer.status_code} {answer.text}")
    dashboard_id: str = answer.json()["id"]
    return dashboard_id


def _signed_in(browser: Browser, url: str) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/console/sign-in")
    page.fill("input[name=email]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("form[data-testid=sign-in-form] button[type=submit]")
    page.wait_for_url(lambda to: "/sign-in" not in to, timeout=30_000)
    page.close()
    return context


@dataclass(frozen=True, slots=True)
class Render:
    """Milliseconds from navigation: drawn, and the data answer's request and response."""

    drawn: float
    page_done: float
    scripts_run: float
    data_asked: float
    data_first_byte: float
    data_done: float


_DATA_TIMING = r"""() => {
  const entry = performance.getEntriesByType("resource")
    .find((e) => /\/data(\.json)?$/.test(new URL(e.name).pathname));
  const page = performance.getEntriesByType("navigation")[0];
  return [page.responseEnd, page.domContentLoadedEventEnd].concat(
    entry ? [entry.requestStart, entry.responseStart, entry.responseEnd] : [0, 0, 0]);
}"""


def _time_render(opener: Browser | BrowserContext, url: str) -> Render:
    """When a new page drew everything (and fetched its data), from navigation."""
    if isinstance(opener, Browser):
        context = opener.new_context(viewport={"width": 1600, "height": 1000})
        page: Page = context.new_page()
    else:
        context, page = None, opener.new_page()
    try:
        page.add_init_script(_WATCH)
        page.goto(url)
        page.wait_for_function("() => window.__rendered !== undefined", timeout=60_000)
        drawn: float = page.evaluate("() => window.__rendered")
        return Render(drawn, *page.evaluate(_DATA_TIMING))
    finally:
        page.close()
        if context is not None:
            context.close()


@contextmanager
def _anchor_site(folder: Path, body: dict[str, Any]) -> Iterator[str]:
    """A bare HTTP server of the anchor page, ECharts and the dashboard's own data."""
    from shopfloor.ui.capability import CHECKOUT_ASSETS

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CHECKOUT_ASSETS / "echarts/dist/echarts.min.js", folder / "echarts.min.js")
    (folder / "index.html").write_text(_ANCHOR_HTML)
    (folder / "anchor.js").write_text(_ANCHOR_JS)
    (folder / "data.json").write_text(json.dumps(body))
    handler = partial(_QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _mqtt_client(demo: Demo, port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(demo.thing_id, demo.key)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_client: Any, _data: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect(HOST, port)
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        why = refused[0] if refused else "no CONNACK in 10 s"
        raise RuntimeError(f"{client_id} could not connect to the embedded broker: {why}")
    return client


def _cpu_percent(server: ServerProcess, seconds: float) -> float:
    """The server's CPU over `seconds` of wall time, in % of one core."""
    before, started = server.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (server.cpu_seconds() - before) / (time.monotonic() - started) * 100
