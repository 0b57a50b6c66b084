"""Stored records/s over MQTT, embedded broker and Mosquitto mode, each against its bare broker.

The same publishers load all four brokers: `PUBLISHERS` `mosquitto_pub -l` processes
sending identical one-record SenML messages at QoS 1 (see `bench._mqtt`).

- Embedded broker: Shopfloor's figure is records the writer stored (its own counter)
  over the time from the first message sent to the last record stored, drain
  included, as in the HTTP scenario. Its anchor is a bare amqtt broker of the same
  version (`bench/amqtt_anchor.py`), anonymous, routing the messages to one
  `mosquitto_sub`: messages that subscriber received over the same span.
- Mosquitto mode: a real Mosquitto configured by Shopfloor's `render_config` (both
  plugins, dynamic security, the queue limits docs/mosquitto.md requires), the same
  figure, and as anchor the same broker process before Shopfloor connects to it,
  passing the same load to one `mosquitto_sub`.
- Server RSS while the embedded broker takes its load: idle after start (before any
  thing exists) and the peak, sampled every 0.1 s; the bare amqtt broker's, idle and
  under the same load, are the anchors.

Each side first runs a warm-up that also sizes the measured run: it is repeated with
more messages until it lasts `warmup` seconds, and its rate then sets the message
count that lasts about `load` seconds. A fixed count would last a second on Mosquitto
and minutes through the platform.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._mqtt import (
    BATCH,
    MAX_INFLIGHT,
    MQTT_VERSION,
    PAYLOAD,
    MqttTarget,
    PublishRun,
    Subscriber,
    grant_anchor_client,
    publish,
    publish_one,
)
from bench._scenario import Anchor, BenchContext, Figure, Goal, Scenario, ScenarioResult
from bench._servers import (
    Counts,
    RssSampler,
    ServerProcess,
    amqtt_anchor_server,
    create_plant,
    free_port,
    metrics,
    mosquitto_broker,
    shopfloor_server,
    wait_drained,
)
from bench._stats import median
from bench.scenarios.memory import IDLE_GOAL_MB, PEAK_GOAL_MB

__all__ = ["MqttScenario"]

PUBLISHERS = 4
SERVICES = "api,http,mqtt,writer"
EMBEDDED_GOAL = Goal(kind="ratio_at_least", threshold=0.8)
MOSQUITTO_GOAL = Goal(kind="ratio_at_least", threshold=0.5)
MB = 1e6
#: Bounds of a sized run, whatever the warm-up's rate: enough to time, not a runaway.
MIN_MESSAGES = 100 * PUBLISHERS
MAX_MESSAGES = 2_000_000
#: Seconds without progress after which lost messages are given up on.
QUIET = 10.0
ANCHOR_USER = "bench-anchor"
ANCHOR_TOPIC = "channels/bench-anchor/messages"
#: Counters of the embedded broker and of the Mosquitto bridge that say where messages
#: went other than the store (rejected, dropped, retried, received twice).
EMBEDDED_COUNTERS = (
    "shopfloor_messages_rejected_total",
    "shopfloor_mqtt_rejected_total",
    "shopfloor_mqtt_publish_retries_total",
    "shopfloor_mqtt_connections_refused_total",
)
BRIDGE_COUNTERS = (
    "shopfloor_messages_rejected_total",
    "shopfloor_mqtt_rejected_total",
    "shopfloor_mqtt_dropped_total",
    "shopfloor_mqtt_duplicates_total",
    "shopfloor_mqtt_bridge_connects_total",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    load: float  # seconds a measured run should last
    warmup: float  # seconds the last warm-up run must last
    settle: float  # seconds of idle RSS samples
    work_dir: Path

    @property
    def timeout(self) -> float:
        """Longest a publish run may take before its publishers are killed."""
        return 4 * self.load + 60

    def publish(self, target: MqttTarget, messages: int) -> PublishRun:
        """`messages` from the scenario's publishers to `target`, as every run sends them."""
        return publish(
            target,
            messages=messages,
            publishers=PUBLISHERS,
            work_dir=self.work_dir,
            timeout=self.timeout,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """One run: what the publishers sent, and what reached the far end, by when."""

    run: PublishRun
    arrived: int  # records stored (Shopfloor) or messages received (anchor)
    accepted: int  # messages Shopfloor's ingress accepted (anchor: what arrived)
    last_at: float  # time.monotonic() when the last of them arrived
    complete: bool  # nothing more was awaited when the run ended
    cpu_share: float  # CPU seconds per second of the run, of the server or anchor broker
    broker_cpu_share: float = 0.0  # of Mosquitto, in Mosquitto mode
    counters: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.last_at - self.run.started

    @property
    def rate(self) -> float:
        return self.arrived / self.seconds if self.seconds > 0 else 0.0

    @property
    def ack_rate(self) -> float:
        """Messages acknowledged to the publishers per second of their run."""
        return self.run.published / self.run.seconds if self.run.seconds > 0 else 0.0

    @property
    def publisher_cpu_share(self) -> float:
        return self.run.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    @property
    def stored_all(self) -> bool:
        """QoS 1, one record per message: every acknowledged message stored, once."""
        run = self.run
        return (
            not run.failures
            and self.complete
            and self.arrived == self.accepted == run.published == run.messages > 0
        )


def _measured(measure: Callable[[int], Load], plan: Plan) -> Load:
    """Warm up until a run lasts `plan.warmup` s, then run about `plan.load` s and return it."""
    messages = MIN_MESSAGES
    while True:
        warm = measure(messages)
        if warm.run.failures or not warm.complete:
            raise RuntimeError(
                f"warm-up of {messages} messages failed: {warm.arrived} of "
                f"{warm.run.messages} arrived; publishers: {'; '.join(warm.run.failures)}"
            )
        if warm.seconds >= plan.warmup or messages >= MAX_MESSAGES:
            break
        wanted = int(warm.rate * plan.warmup * 1.3)
        messages = min(MAX_MESSAGES, max(2 * messages, wanted))
    sized = int(warm.rate * plan.load) // PUBLISHERS * PUBLISHERS
    return measure(min(MAX_MESSAGES, max(MIN_MESSAGES, sized)))


def _anchor_run(
    broker: ServerProcess,
    target: MqttTarget,
    subscriber: Subscriber,
    messages: int,
    plan: Plan,
) -> Load:
    base = subscriber.received
    cpu = broker.cpu_seconds()
    run = plan.publish(target, messages)
    delivery = subscriber.wait_for(base + run.published, quiet=QUIET, timeout=plan.timeout)
    cpu = broker.cpu_seconds() - cpu
    received = delivery.received - base
    last_at = delivery.last_at if received else run.ended
    return Load(
        run=run,
        arrived=received,
        accepted=received,
        last_at=last_at,
        complete=delivery.complete,
        cpu_share=cpu / max(last_at - run.started, 1e-9),
    )


def _wait_accepted(url: str, since: Counts, count: int, timeout: float) -> None:
    """Wait until the ingress accepted `count` messages since `since`, or they stop coming.

    In Mosquitto mode the publishers are done long before the bridge has taken their
    messages; `wait_drained` alone could see stored == accepted while both lag. Each
    poll of `/metrics` is work for the server under test, so it polls rarely while the
    end is far (a quarter of the time left at the current pace, at most 0.25 s apart)
    and `wait_drained` then times the end closely.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as http:
        first = last = Counts.read(url, http)
        began = moved_at = time.monotonic()
        while (done := last.accepted - since.accepted) < count:
            pace = (last.accepted - first.accepted) / max(time.monotonic() - began, 1e-3)
            left = (count - done) / pace if pace > 0 else 1.0
            time.sleep(min(max(left / 4, 0.005), 0.25))
            now_counts = Counts.read(url, http)
            now = time.monotonic()
            if now_counts.accepted != last.accepted:
                moved_at = now
            last = now_counts
            if now - moved_at > QUIET or now > deadline:
                return


def _platform_run(
    server: ServerProcess,
    target: MqttTarget,
    messages: int,
    plan: Plan,
    *,
    counters: tuple[str, ...],
    broker: ServerProcess | None = None,
) -> Load:
    before = Counts.read(server.url)
    counted = metrics(server.url, counters)
    cpu = server.cpu_seconds()
    broker_cpu = broker.cpu_seconds() if broker is not None else 0.0
    run = plan.publish(target, messages)
    _wait_accepted(server.url, before, run.published, plan.timeout)
    drain = wait_drained(server.url, before, timeout=plan.timeout)
    seconds = max(drain.last_stored_at - run.started, 1e-9)
    cpu = server.cpu_seconds() - cpu
    broker_cpu = broker.cpu_seconds() - broker_cpu if broker is not None else 0.0
    after = metrics(server.url, counters)
    return Load(
        run=run,
        arrived=drain.stored,
        accepted=drain.accepted,
        last_at=drain.last_stored_at,
        complete=drain.drained,
        # CPU up to the end of the drain's settling, a little past the last record.
        cpu_share=cpu / seconds,
        broker_cpu_share=broker_cpu / seconds,
        counters={name: after[name] - counted[name] for name in counters},
    )


def _idle_rss(pid: int, settle: float) -> float:
    with RssSampler(pid, 0.2) as rss:
        time.sleep(settle)
    return median([value for _, value in rss.samples]) / MB


def _log_problems(log: Path, pattern: str) -> list[str]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if re.search(pattern, line)]


def _thing_target(port: int, server: ServerProcess) -> MqttTarget:
    plant = create_plant(server.url)
    return MqttTarget(
        port=port,
        topic=f"channels/{plant.channel}/messages",
        username=plant.thing_id,
        password=plant.key,
    )


@dataclass(slots=True)
class _Embedded:
    anchor: Load
    load: Load
    anchor_idle_mb: float
    anchor_peak_mb: float
    idle_mb: float
    peak_mb: float
    log_problems: list[str]


@dataclass(slots=True)
class _Mosquitto:
    anchor: Load
    load: Load
    log_problems: list[str]
    broker_problems: list[str]


class MqttScenario(Scenario, name="mqtt"):
    title = "MQTT: stored records/s (embedded broker, Mosquitto mode), server RSS"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        plan = Plan(
            load=ctx.pick(3.0, 30.0),
            warmup=ctx.pick(0.5, 3.0),
            settle=ctx.pick(1.0, 5.0),
            work_dir=ctx.work_dir / "mqtt-load",
        )
        embedded = self._embedded(ctx, plan)
        mosquitto = self._mosquitto(ctx, plan)
        self._report(result, plan, embedded, mosquitto)

    def _embedded(self, ctx: BenchContext, plan: Plan) -> _Embedded:
        with amqtt_anchor_server(ctx.python, ctx.work_dir) as broker:
            anchor_idle = _idle_rss(broker.pid, plan.settle)
            target = MqttTarget(
                port=broker.port,
                topic=ANCHOR_TOPIC,
                username=ANCHOR_USER,
                password=secrets.token_urlsafe(18),
            )
            with (
                Subscriber(target, work_dir=plan.work_dir) as subscriber,
                RssSampler(broker.pid, 0.1) as anchor_rss,
            ):
                anchor = _measured(lambda n: _anchor_run(broker, target, subscriber, n, plan), plan)
        mqtt_port = free_port()
        with shopfloor_server(
            ctx.python,
            ctx.work_dir / "mqtt-embedded-data",
            services=SERVICES,
            mqtt_port=mqtt_port,
            log_name="shopfloor-mqtt-embedded",
        ) as server:
            idle = _idle_rss(server.pid, plan.settle)
            target = _thing_target(mqtt_port, server)
            with RssSampler(server.pid, 0.1) as rss:
                load = _measured(
                    lambda n: _platform_run(server, target, n, plan, counters=EMBEDDED_COUNTERS),
                    plan,
                )
            log = server.log
        return _Embedded(
            anchor=anchor,
            load=load,
            anchor_idle_mb=anchor_idle,
            anchor_peak_mb=anchor_rss.peak / MB,
            idle_mb=idle,
            peak_mb=rss.peak / MB,
            log_problems=_log_problems(log, r"\b(WARNING|ERROR|CRITICAL)\b|Traceback"),
        )

    def _mosquitto(self, ctx: BenchContext, plan: Plan) -> _Mosquitto:
        with mosquitto_broker(ctx.work_dir / "mosquitto") as broker:
            password = secrets.token_urlsafe(18)
            grant_anchor_client(broker.admin_url, ANCHOR_USER, password, "channels/#")
            target = MqttTarget(
                port=broker.port, topic=ANCHOR_TOPIC, username=ANCHOR_USER, password=password
            )
            # The anchor first, while no platform is connected: the same broker process,
            # the same configuration, nothing behind it but one subscriber.
            with Subscriber(target, work_dir=plan.work_dir) as subscriber:
                anchor = _measured(
                    lambda n: _anchor_run(broker.server, target, subscriber, n, plan), plan
                )
            with shopfloor_server(
                ctx.python,
                ctx.work_dir / "mqtt-mosquitto-data",
                services=SERVICES,
                settings=broker.settings(),
                log_name="shopfloor-mqtt-mosquitto",
            ) as server:
                target = _thing_target(broker.port, server)
                self._wait_authorised(server, target)
                load = _measured(
                    lambda n: _platform_run(
                        server, target, n, plan, counters=BRIDGE_COUNTERS, broker=broker.server
                    ),
                    plan,
                )
                log = server.log
            broker_log = broker.server.log
        return _Mosquitto(
            anchor=anchor,
            load=load,
            log_problems=_log_problems(log, r"\b(WARNING|ERROR|CRITICAL)\b|Traceback"),
            # Not the warning that it runs as root, which it does in containers.
            broker_problems=[
                line
                for line in _log_problems(broker_log, r"(?i)drop|error|warning|denied")
                if "run as root" not in line
            ],
        )

    @staticmethod
    def _wait_authorised(server: ServerProcess, target: MqttTarget) -> None:
        """Wait until the new thing's credentials reached Mosquitto's dynamic security.

        The platform applies registry changes to the broker in the background; one
        message is published as soon as the broker takes the thing's key, then drained.
        """
        before = Counts.read(server.url)
        deadline = time.monotonic() + 30
        while not publish_one(target):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Mosquitto refused thing {target.username} for 30 s")
            time.sleep(0.1)
        _wait_accepted(server.url, before, 1, 30)
        wait_drained(server.url, before, timeout=30)

    def _report(
        self, result: ScenarioResult, plan: Plan, embedded: _Embedded, mosquitto: _Mosquitto
    ) -> None:
        for name, load in (("amqtt", embedded.anchor), ("Mosquitto", mosquitto.anchor)):
            result.check(
                f"{name} anchor: the subscriber received every message published",
                not load.run.failures and load.complete and load.arrived == load.run.messages > 0,
                f"{load.run.messages:,} sent, {load.run.published:,} acknowledged, "
                f"{load.arrived:,} received" + _failures(load.run),
            )
        for name, load in (("embedded broker", embedded.load), ("Mosquitto mode", mosquitto.load)):
            result.check(
                f"{name}: stored == published (QoS 1, one record per message)",
                load.stored_all,
                f"published {load.run.published:,} of {load.run.messages:,}, "
                f"accepted {load.accepted:,}, stored {load.arrived:,}" + _failures(load.run),
            )
        result.check(
            "RSS sampled idle and under the MQTT load",
            embedded.idle_mb > 0 and embedded.peak_mb > 0 and embedded.anchor_peak_mb > 0,
        )

        emb, emb_anchor = embedded.load, embedded.anchor
        mos, mos_anchor = mosquitto.load, mosquitto.anchor
        amqtt_label = "bare amqtt broker → 1 mosquitto_sub, messages/s"
        result.figures += [
            Figure(
                key="mqtt.embedded_stored_rate",
                label="MQTT, embedded broker, stored records/s (QoS 1, SQLite, memory bus)",
                value=emb.rate,
                unit="records/s",
                anchor=Anchor(label=amqtt_label, value=emb_anchor.rate),
                goal=EMBEDDED_GOAL,
                detail=f"{_load_detail(emb)}; anchor: {_anchor_detail(emb_anchor)}{_counters(emb)}",
            ),
            Figure(
                key="mqtt.embedded_ack_rate",
                label="MQTT, embedded broker, PUBACKs/s seen by the publishers",
                value=emb.ack_rate,
                unit="messages/s",
                anchor=Anchor(label="bare amqtt broker, PUBACKs/s", value=emb_anchor.ack_rate),
                detail="a PUBACK leaves once the bus holds the message; the writer stores "
                f"after it: the last record was stored {emb.last_at - emb.run.ended:.2f} s "
                "after the last PUBACK",
            ),
            Figure(
                key="mqtt.mosquitto_stored_rate",
                label="MQTT, Mosquitto mode, stored records/s (QoS 1, SQLite, memory bus)",
                value=mos.rate,
                unit="records/s",
                anchor=Anchor(
                    label="Mosquitto passthrough, mosquitto_pub → mosquitto_sub, messages/s",
                    value=mos_anchor.rate,
                ),
                goal=MOSQUITTO_GOAL,
                detail=f"{_load_detail(mos)}; Mosquitto CPU {mos.broker_cpu_share:.0%} of a "
                f"core; anchor: {_anchor_detail(mos_anchor)}{_counters(mos)}",
            ),
            Figure(
                key="mqtt.idle_rss",
                label=f"RSS idle after start, services {SERVICES} (embedded broker)",
                value=embedded.idle_mb,
                unit="MB",
                anchor=Anchor(label="bare amqtt broker idle", value=embedded.anchor_idle_mb),
                goal=Goal(kind="below", threshold=IDLE_GOAL_MB),
            ),
            Figure(
                key="mqtt.peak_rss",
                label="RSS peak under the MQTT load (embedded broker, warm-up and measured run)",
                value=embedded.peak_mb,
                unit="MB",
                anchor=Anchor(label="bare amqtt broker, same load", value=embedded.anchor_peak_mb),
                goal=Goal(kind="below", threshold=PEAK_GOAL_MB),
            ),
        ]
        result.notes.append(
            f"Load: {PUBLISHERS} `mosquitto_pub -l -q 1 -M {MAX_INFLIGHT} -V {MQTT_VERSION} "
            f"--nodelay` publishers (one connection each, a new process and connection "
            f"every {BATCH:,} messages) sending `{PAYLOAD}`, plus one "
            "`mosquitto_sub -q 1` for each anchor; all on the same machine as the brokers "
            "and the server. Each measured run was sized by its warm-up to last about "
            f"{plan.load:.0f} s; RSS by psutil, idle = median over {plan.settle:.0f} s "
            "after start, peak sampled every 0.1 s. MQTT 3.1.1: the embedded broker (amqtt) "
            "takes no other protocol version."
        )
        problems = [
            ("Shopfloor log (embedded broker)", embedded.log_problems),
            ("Shopfloor log (Mosquitto mode)", mosquitto.log_problems),
            ("Mosquitto log", mosquitto.broker_problems),
        ]
        for where, lines in problems:
            if lines:
                result.notes.append(
                    f"{where}: {len(lines)} warning or error lines, the first: `{lines[0][:300]}`"
                )


def _load_detail(load: Load) -> str:
    run = load.run
    return (
        f"{run.published:,} messages from {run.publishers} publishers, acknowledged "
        f"after {run.seconds:.1f} s, the last stored {load.last_at - run.ended:.2f} s later "
        f"({load.seconds:.1f} s in all); server CPU {load.cpu_share:.0%} of a core, "
        f"publishers {load.publisher_cpu_share:.0%}"
    )


def _anchor_detail(load: Load) -> str:
    return (
        f"{load.arrived:,} messages received in {load.seconds:.1f} s, broker CPU "
        f"{load.cpu_share:.0%} of a core, publishers {load.publisher_cpu_share:.0%}"
    )


def _counters(load: Load) -> str:
    moved = {name: value for name, value in load.counters.items() if value}
    if not moved:
        return "; no message rejected, dropped or retried"
    return "; " + ", ".join(f"{name} +{value:,.0f}" for name, value in moved.items())


def _failures(run: PublishRun) -> str:
    return f"; publishers: {'; '.join(run.failures)}" if run.failures else ""
