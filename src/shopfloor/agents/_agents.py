"""`Agents`: the agents of every organisation, and the reconciler that keeps them so.

Requests change the desired state only (the `agents` table) and wake the reconciler;
the reconciler alone talks to the runtime and the provisioners. One pass:

1. reads every agent (desired) and `runtime.observe()` (observed);
2. per agent: provisions what its labels ask for and what is missing, issues or renews
   its certificate, builds its `Workload` and applies it when it differs from what was
   last applied (the runtime's `apply` is idempotent, so after a platform restart every
   agent is applied once more and nothing restarts: that is the adoption);
3. restarts agents asked to restart, probes health URLs, rolls back an upgrade that is
   not healthy in time, removes deleted agents (runtime, credentials, certificates);
4. writes what it saw to the table and announces state changes on the bus
   (`agents.<org_id>.<name>.state`);
5. removes runtime objects labelled as the platform's that no agent owns any more.

The runtime applies restart policies itself (backoff included): the reconciler does not
restart crashed agents, it reports them. One reconciler owns a runtime: run the `agents`
service in one process of a deployment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from shopfloor.core import client_ssl_context

from ._errors import AgentConflict, AgentError, AgentNotFound, InvalidAgentSpec
from ._provisioners import AgentRef, Grant, Provisioner
from ._runtime import AgentRuntime, LogLine, Observed, ObservedState, Workload
from ._sealed import Sealer
from ._spec import AgentSpec, DesiredState, parse_spec, provisioning_labels
from ._store import AgentRecord, AgentStatus, AgentStore, Rollout

if TYPE_CHECKING:
    from shopfloor.pki import Certificates

__all__ = ["AgentOptions", "Agents", "dns_name", "plan_change", "redact", "state_subject"]

logger = logging.getLogger(__name__)

#: Files every agent finds in `SHOPFLOOR_AGENT_FILES`.
CONFIG_FILE = "config.json"
CERT_FILE, KEY_FILE, CA_FILE = "cert.pem", "key.pem", "ca.pem"
#: Runtimes that run commands; the others run images.
COMMAND_RUNTIMES = frozenset({"process"})
REDACTED = "[redacted]"
IMAGE_LABELS_SECONDS = 300.0


def state_subject(org_id: str, name: str) -> str:
    return f"agents.{org_id}.{name}.state"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOptions:
    reconcile_interval: float = 2.0
    cert_ttl: timedelta = timedelta(days=30)
    upgrade_settle: float = 5.0
    remove_orphans: bool = True
    provision_retry: float = 5.0
    delete_wait: float = 30.0
    probe_timeout: float = 5.0
    #: The platform's API, told to every agent as `SHOPFLOOR_PLATFORM_URL` (CRL, relation
    #: graph, state reports); empty: not told.
    platform_url: str = ""


@dataclass(slots=True)
class _Live:
    """What the reconciler keeps of an agent between passes (never stored)."""

    applied: str | None = None  # fingerprint of the workload last applied
    restarts_seen: int | None = None  # `restarts_asked` already acted on
    retry_at: float = 0.0  # provisioning failed: not before this (monotonic)
    problem: str = ""  # why the agent is not as desired (provisioning, rollback)
    probe_ok: bool | None = None
    probe_failures: int = 0
    next_probe: float = 0.0
    probing: bool = False
    healthy_since: float | None = None
    written: AgentStatus | None = None
    secrets: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Credentials:
    """What is sealed in the `credentials` column."""

    grants: Mapping[str, tuple[str, Grant]] = field(default_factory=dict)  # name → (value, grant)
    cert: Mapping[str, str] = field(default_factory=dict)  # serial, pems, issued/expires

    def to_json(self) -> dict[str, Any]:
        return {
            "grants": {
                name: {
                    "value": value,
                    "env": dict(grant.env),
                    "files": {n: base64.b64encode(d).decode() for n, d in grant.files.items()},
                    "secrets": sorted(grant.secrets),
                }
                for name, (value, grant) in self.grants.items()
            },
            "cert": dict(self.cert),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Credentials:
        grants = {
            name: (
                str(item["value"]),
                Grant(
                    env=dict(item["env"]),
                    files={n: base64.b64decode(d) for n, d in item["files"].items()},
                    secrets=frozenset(item["secrets"]),
                ),
            )
            for name, item in (data.get("grants") or {}).items()
        }
        return cls(grants=grants, cert=dict(data.get("cert") or {}))

    @property
    def secrets(self) -> frozenset[str]:
        found: set[str] = set()
        for _, grant in self.grants.values():
            found |= grant.secrets
        if self.cert.get("key_pem"):
            found.add(self.cert["key_pem"])
        return frozenset(found)


class Agents:
    """The API of agents (desired state) and their reconciler (`run`)."""

    def __init__(
        self,
        store: AgentStore,
        runtime: AgentRuntime,
        *,
        sealer: Sealer,
        provisioners: Mapping[str, Provisioner],
        certificates: Certificates | None,
        emit: Callable[[str, dict[str, Any]], object],
        options: AgentOptions,
        thing_check: Callable[[str, str], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self._sealer = sealer
        self._provisioners = dict(provisioners)
        self._certificates = certificates
        self._emit = emit
        self._thing_check = thing_check
        self.options = options
        self._live: dict[str, _Live] = {}
        self._wake = asyncio.Event()
        self._passes = 0
        self._pass_done = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None  # for health probes, while `run` runs
        self._removing: dict[str, asyncio.Task[None]] = {}
        self._images: dict[str, tuple[float, Mapping[str, str]]] = {}
        runtime.on_change(lambda _key: self._wake.set())

    # -- desired state (requests) ------------------------------------------------------

    def check(self, spec: AgentSpec) -> None:
        """Refuse what this platform cannot run: before anything is stored."""
        if self.runtime.name in COMMAND_RUNTIMES and spec.image:
            raise InvalidAgentSpec(
                f"image: the {self.runtime.name} runtime runs a command or a module, "
                "not an image", code="agent_runtime_mismatch",
            )  # fmt: skip
        if self.runtime.name not in COMMAND_RUNTIMES and not spec.image:
            raise InvalidAgentSpec(
                f"image: the {self.runtime.name} runtime runs images; this agent has none",
                code="agent_runtime_mismatch",
            )
        for name, value in provisioning_labels(spec.labels).items():
            provisioner = self._provisioners.get(name)
            if provisioner is None:
                known = ", ".join(sorted(self._provisioners)) or "none"
                raise InvalidAgentSpec(
                    f"labels: no provisioner {name!r} here (configured: {known})",
                    code="unknown_provisioner",
                )
            provisioner.validate(value)

    async def _check_thing(self, org_id: str, spec: AgentSpec) -> None:
        """The thing an agent stands for is one of its organisation (`thing_not_found`)."""
        if spec.thing_id is not None and self._thing_check is not None:
            await self._thing_check(org_id, spec.thing_id)

    async def create(self, org_id: str, spec: AgentSpec) -> AgentRecord:
        self.check(spec)
        await self._check_thing(org_id, spec)
        record = await self.store.create(org_id, spec)
        logger.info("agent %s created (version %s)", record.key, spec.version)
        self._wake.set()
        return record

    async def change(self, org_id: str, name: str, changes: Mapping[str, Any]) -> AgentRecord:
        """Apply a partial spec. A new version, image, command or module is an upgrade:
        watched, and rolled back unless healthy in time."""
        record = await self.store.get(org_id, name)
        spec, previous, rollout = plan_change(record, changes, settle=self.options.upgrade_settle)
        self.check(spec)
        if spec.thing_id != record.spec.thing_id:
            await self._check_thing(org_id, spec)
        changed = await self.store.change_spec(
            record, spec, previous_spec=previous, rollout=rollout
        )
        live = self._live.get(changed.key)
        if live is not None:
            live.problem = ""
        logger.info("agent %s changed (version %s)", changed.key, spec.version)
        self._wake.set()
        return changed

    async def set_desired(self, org_id: str, name: str, state: DesiredState) -> AgentRecord:
        record = await self.store.get(org_id, name)
        if record.spec.desired_state is state:
            return record
        return await self.change(org_id, name, {"desired_state": state.value})

    async def restart(self, org_id: str, name: str) -> AgentRecord:
        record = await self.store.ask_restart(org_id, name)
        self._wake.set()
        return record

    async def delete(self, org_id: str, name: str, *, wait: float | None = None) -> bool:
        """Mark for deletion; True once the reconciler removed it within `wait` seconds."""
        record = await self.store.get(org_id, name)
        if not record.deleting:
            await self.store.mark_deleting(record)
        self._wake.set()
        deadline = time.monotonic() + (self.options.delete_wait if wait is None else wait)
        while time.monotonic() < deadline:
            await self.wait_pass(seconds=max(0.0, deadline - time.monotonic()))
            try:
                await self.store.get(org_id, name)
            except AgentNotFound:
                return True
        return False

    async def wait_pass(self, *, seconds: float) -> None:
        """Until a reconcile pass that started after this call has ended."""
        async with self._pass_done:
            target = self._passes + 2  # the pass running now may have read the old state
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._pass_done.wait_for(lambda: self._passes >= target), seconds
                )

    async def logs(
        self, org_id: str, name: str, *, tail: int, since: datetime | None, follow: bool
    ) -> AsyncIterator[LogLine]:
        """The agent's output from the runtime, credentials redacted."""
        record = await self.store.get(org_id, name)
        secrets = self.secrets_of(record)
        while True:
            try:
                async for line in self.runtime.logs(
                    record.key, tail=tail, since=since, follow=follow
                ):
                    yield redact(line, secrets)
                return
            except AgentNotFound:  # not started by the runtime yet: nothing written
                if not follow:
                    return
            await asyncio.sleep(0.5)

    def secrets_of(self, record: AgentRecord) -> frozenset[str]:
        live = self._live.get(record.key)
        if live is not None and live.secrets:
            return live.secrets
        if record.credentials is None:
            return frozenset()
        opened = self._sealer.open(record.credentials, agent_key=record.key)
        return _Credentials.from_json(opened).secrets

    # -- the reconciler ----------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Reconcile on every change and every `reconcile_interval` until `stopping`."""
        self._http = httpx.AsyncClient(
            timeout=self.options.probe_timeout, verify=client_ssl_context()
        )
        try:
            while not stopping.is_set():
                busy = await self.reconcile()
                interval = 0.1 if busy else self.options.reconcile_interval
                stop = asyncio.ensure_future(stopping.wait())
                wake = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait(
                        {stop, wake}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    stop.cancel()
                    wake.cancel()
                self._wake.clear()
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            http, self._http = self._http, None
            await http.aclose()

    async def reconcile(self) -> bool:
        """One pass; True when something is in motion (look again soon)."""
        busy = False
        try:
            records = await self.store.all()
            observed = await self.runtime.observe()
            owned = {record.key for record in records}
            for record in records:
                try:
                    busy |= await self._reconcile_one(record, observed.get(record.key))
                except Exception as exc:
                    logger.exception("reconciling agent %s failed", record.key)
                    self._live.setdefault(record.key, _Live()).problem = _reason(exc)
            for key in observed.keys() - owned - self._removing.keys():
                await self._orphan(key)
            for key in self._live.keys() - owned:
                del self._live[key]
        finally:
            async with self._pass_done:
                self._passes += 1
                self._pass_done.notify_all()
        return busy

    async def _reconcile_one(self, record: AgentRecord, seen: Observed | None) -> bool:
        live = self._live.setdefault(record.key, _Live())
        if record.deleting:
            # In a task of its own: stopping waits for the agent (up to the grace period),
            # which must not hold up every other agent's pass.
            removing = self._removing.get(record.key)
            if removing is None or removing.done():
                task = asyncio.get_running_loop().create_task(
                    self._remove(record, live), name=f"agent-remove {record.key}"
                )
                self._removing[record.key] = task
                self._tasks.add(task)
                task.add_done_callback(self._removed)
            return False
        now = time.monotonic()
        if now < live.retry_at:
            await self._write_status(record, seen, live)
            return False
        try:
            record, credentials = await self._credentials(record, live)
        except AgentError as exc:
            live.problem = str(exc)
            live.retry_at = now + self.options.provision_retry
            logger.warning("agent %s: %s", record.key, exc)
            await self._write_status(record, seen, live)
            return False
        live.secrets = credentials.secrets
        workload = self._workload(record, credentials)
        fingerprint = _fingerprint(workload)
        busy = False
        if live.applied != fingerprint or seen is None:
            await self.runtime.apply(workload)
            live.applied = fingerprint
            busy = True
            if seen is not None and seen.version != workload.version:
                seen = None  # what was seen is of the old version
        if live.restarts_seen is None:
            live.restarts_seen = record.restarts_asked
        elif record.restarts_asked > live.restarts_seen:
            live.restarts_seen = record.restarts_asked
            if workload.replicas:
                await self.runtime.restart(record.key)
                logger.info("agent %s restarted on request", record.key)
                busy = True
        if record.rollout is not None:
            record = await self._watch_rollout(record, seen, live)
            busy = True
        self._probe(record, seen, live)
        await self._write_status(record, seen, live)
        state = live.written.state if live.written else ObservedState.PENDING
        return busy or state in (ObservedState.PENDING, ObservedState.STARTING)

    # -- credentials and certificates --------------------------------------------------

    async def _credentials(
        self, record: AgentRecord, live: _Live
    ) -> tuple[AgentRecord, _Credentials]:
        current = _Credentials()
        if record.credentials is not None:
            current = _Credentials.from_json(
                self._sealer.open(record.credentials, agent_key=record.key)
            )
        image = await self._image_labels(record.spec.image) if record.spec.image else {}
        wanted = provisioning_labels(image, record.spec.labels)  # the spec's win
        agent = AgentRef(record.org_id, record.name)
        grants = dict(current.grants)
        changed = False
        for name in [n for n in grants if n not in wanted]:
            await self._provisioners[name].deprovision(agent)
            del grants[name]
            changed = True
        for name, value in wanted.items():
            if name in grants and grants[name][0] == value:
                continue
            provisioner = self._provisioners.get(name)
            if provisioner is None:
                raise InvalidAgentSpec(f"no provisioner {name!r} here", code="unknown_provisioner")
            grants[name] = (value, await provisioner.provision(agent, value))
            changed = True
            logger.info("agent %s provisioned by %s", record.key, name)
        cert = dict(current.cert)
        old_serial = cert.get("serial")
        if self._certificates is not None and _cert_due(cert):
            cert = await self._issue(record)
            changed = True
        if not changed:
            return record, current
        credentials = _Credentials(grants=grants, cert=cert)
        sealed = self._sealer.seal(credentials.to_json(), agent_key=record.key)
        provisioned = sorted(set(grants) | set(record.provisioned))
        await self.store.set_credentials(
            record.org_id, record.name, provisioned=provisioned, credentials=sealed,
            cert_serial=cert.get("serial"),
            cert_expires_at=_when(cert.get("expires_at")),
        )  # fmt: skip
        record = replace(
            record, credentials=sealed, provisioned=tuple(provisioned),
            cert_serial=cert.get("serial"), cert_expires_at=_when(cert.get("expires_at")),
        )  # fmt: skip
        if old_serial and old_serial != cert.get("serial") and live.applied is not None:
            await self._hand_over_certificate(record, credentials, live, old_serial)
        return record, credentials

    async def _image_labels(self, image: str) -> Mapping[str, str]:
        """The image's own labels, as the runtime sees them; asked again every
        `IMAGE_LABELS_SECONDS` (an image may be pulled, or retagged, meanwhile)."""
        cached = self._images.get(image)
        if cached is not None and time.monotonic() - cached[0] < IMAGE_LABELS_SECONDS:
            return cached[1]
        labels = await self.runtime.image_labels(image)
        self._images[image] = (time.monotonic(), labels)
        return labels

    async def _issue(self, record: AgentRecord) -> dict[str, str]:
        from shopfloor.pki import Entity, EntityType

        assert self._certificates is not None
        issued = await self._certificates.issue(
            Entity(EntityType.AGENT, record.key),
            ttl=self.options.cert_ttl,
            org_id=record.org_id,
            hostnames=[dns_name(record.org_id, record.name)],
        )
        return {
            "serial": issued.serial,
            "cert_pem": issued.cert_pem,
            "key_pem": issued.key_pem or "",
            "ca_pem": issued.ca_pem,
            "issued_at": datetime.now(UTC).isoformat(),
            "expires_at": issued.expires_at.isoformat(),
        }

    async def _hand_over_certificate(
        self, record: AgentRecord, credentials: _Credentials, live: _Live, old_serial: str
    ) -> None:
        """A renewed certificate reaches the running agent as new files (it is told to
        reload), without a restart; the old one is revoked as superseded."""
        workload = self._workload(record, credentials)
        await self.runtime.update_files(record.key, _cert_files(credentials.cert))
        live.applied = _fingerprint(workload)
        assert self._certificates is not None
        try:
            await self._certificates.revoke(record.org_id, old_serial, "superseded")
        except Exception as exc:  # the new one is in place; the old one expires anyway
            logger.warning("agent %s: superseded certificate %s not revoked: %s",
                           record.key, old_serial, exc)  # fmt: skip
        logger.info("agent %s has a renewed certificate %s", record.key, credentials.cert["serial"])

    # -- workloads ---------------------------------------------------------------------

    def _workload(self, record: AgentRecord, credentials: _Credentials) -> Workload:
        spec = record.spec
        env: dict[str, str] = dict(spec.env)
        files: dict[str, bytes] = {
            CONFIG_FILE: json.dumps(spec.config, indent=2, sort_keys=True).encode()
        }
        for _, grant in credentials.grants.values():
            env.update(grant.env)
            files.update(grant.files)
        files.update(_cert_files(credentials.cert))
        env |= {
            "SHOPFLOOR_AGENT_NAME": spec.name,
            "SHOPFLOOR_AGENT_ORG": record.org_id,
            "SHOPFLOOR_AGENT_VERSION": spec.version,
        }
        if self.options.platform_url:
            env.setdefault("SHOPFLOOR_PLATFORM_URL", self.options.platform_url)
        command: tuple[str, ...] = spec.command
        if spec.module:
            command = (sys.executable, "-m", "shopfloor.sdk.run", spec.module)
        return Workload(
            key=record.key,
            name=spec.name,
            version=spec.version,
            image=spec.image,
            command=command,
            env=env,
            files=files,
            labels=spec.labels,
            restart_policy=spec.restart_policy,
            replicas=1 if spec.desired_state is DesiredState.RUNNING else 0,
        )

    # -- upgrades ----------------------------------------------------------------------

    async def _watch_rollout(
        self, record: AgentRecord, seen: Observed | None, live: _Live
    ) -> AgentRecord:
        rollout = record.rollout
        assert rollout is not None
        now = time.monotonic()
        failure = ""
        if seen is not None and seen.version == rollout.to_version:
            if seen.state in (ObservedState.FAILED, ObservedState.STOPPED) or seen.restarts:
                code = "unknown" if seen.exit_code is None else str(seen.exit_code)
                failure = f"version {rollout.to_version} exited (status {code})"
                if seen.error:
                    failure += f": {seen.error}"
            elif (
                seen.state is ObservedState.RUNNING
                and live.probe_ok is not False
                and (record.spec.health.url is None or live.probe_ok)
            ):
                live.healthy_since = live.healthy_since or now
                if now - live.healthy_since >= self.options.upgrade_settle:
                    live.healthy_since = None
                    with contextlib.suppress(AgentConflict):
                        record = await self.store.end_rollout(record)
                    logger.info("agent %s upgraded to %s", record.key, rollout.to_version)
                    return record
            else:
                live.healthy_since = None
        if not failure and datetime.now(UTC) > rollout.deadline:
            failure = f"version {rollout.to_version} was not healthy in time"
        if not failure or record.previous_spec is None:
            return record
        back = record.previous_spec.model_copy(update={"desired_state": record.spec.desired_state})
        try:
            record = await self.store.end_rollout(record, spec=back)
        except AgentConflict:
            return record  # changed meanwhile: the newer change wins
        live.problem = f"{failure}; rolled back to version {back.version}"
        live.healthy_since = None
        logger.warning("agent %s: %s", record.key, live.problem)
        self._emit(
            state_subject(record.org_id, record.name),
            {"org_id": record.org_id, "name": record.name, "state": "rolled_back",
             "version": back.version, "failed_version": rollout.to_version,
             "error": live.problem},
        )  # fmt: skip
        return record

    # -- health ------------------------------------------------------------------------

    def _probe(self, record: AgentRecord, seen: Observed | None, live: _Live) -> None:
        url = record.spec.health.url
        if url is None or seen is None or seen.state is not ObservedState.RUNNING:
            live.probe_ok, live.probe_failures = None, 0
            return
        now = time.monotonic()
        if live.probing or now < live.next_probe:
            return
        live.probing = True
        live.next_probe = now + record.spec.health.interval_seconds
        task = asyncio.get_running_loop().create_task(
            self._check_health(record, seen, live, url), name=f"agent-probe {record.key}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_health(
        self, record: AgentRecord, seen: Observed, live: _Live, url: str
    ) -> None:
        health = record.spec.health
        try:
            if self._http is None:
                return
            try:
                response = await self._http.get(url.replace("{endpoint}", seen.endpoint))
                ok = 200 <= response.status_code < 300
            except httpx.HTTPError:
                ok = False
            was = live.probe_ok
            live.probe_ok = ok
            live.probe_failures = 0 if ok else live.probe_failures + 1
            started = seen.started_at or datetime.now(UTC)
            in_grace = datetime.now(UTC) - started < timedelta(seconds=health.grace_seconds)
            if not ok and not in_grace and live.probe_failures >= health.failures:
                live.problem = f"health check failed {live.probe_failures} times: restarted"
                live.probe_failures, live.probe_ok = 0, None
                logger.warning("agent %s: %s", record.key, live.problem)
                await self.runtime.restart(record.key)
            if was != live.probe_ok:
                self._wake.set()
        finally:
            live.probing = False

    # -- status ------------------------------------------------------------------------

    async def _write_status(self, record: AgentRecord, seen: Observed | None, live: _Live) -> None:
        status = self._status(record, seen, live)
        before = live.written or record.status
        if replace(status, observed_at=None) == replace(before, observed_at=None):
            live.written = before
            return
        await self.store.set_status(record.org_id, record.name, status)
        live.written = status
        if status.state is not before.state or status.version != before.version:
            self._emit(
                state_subject(record.org_id, record.name),
                {"org_id": record.org_id, "name": record.name, "state": status.state.value,
                 "version": status.version, "restarts": status.restarts,
                 "exit_code": status.exit_code, "error": status.error},
            )  # fmt: skip

    def _status(self, record: AgentRecord, seen: Observed | None, live: _Live) -> AgentStatus:
        now = datetime.now(UTC)
        if seen is None:
            return AgentStatus(
                state=ObservedState.PENDING, version=record.spec.version,
                error=live.problem, observed_at=now,
            )  # fmt: skip
        state = seen.state
        if state is ObservedState.RUNNING and live.probe_ok is False:
            state = ObservedState.UNHEALTHY
        error = seen.error
        if live.problem:
            error = f"{live.problem}; {error}" if error else live.problem
        return AgentStatus(
            state=state,
            version=seen.version,
            restarts=seen.restarts,
            exit_code=seen.exit_code,
            error=error,
            endpoint=seen.endpoint,
            started_at=seen.started_at,
            observed_at=now,
        )

    # -- removal -----------------------------------------------------------------------

    def _removed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        key = task.get_name().removeprefix("agent-remove ")
        if self._removing.get(key) is task:
            del self._removing[key]
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            logger.warning("removing agent %s failed (tried again): %s", key, error)
            live = self._live.get(key)
            if live is not None and error is not None:
                live.problem = _reason(error)
        self._wake.set()

    async def _remove(self, record: AgentRecord, live: _Live) -> None:
        await self.runtime.remove(record.key)
        agent = AgentRef(record.org_id, record.name)
        for name in record.provisioned:
            provisioner = self._provisioners.get(name)
            if provisioner is not None:
                await provisioner.deprovision(agent)
        if self._certificates is not None and record.cert_serial is not None:
            from shopfloor.pki import Entity, EntityType

            await self._certificates.revoke_entity(
                Entity(EntityType.AGENT, record.key), "cessation_of_operation"
            )
        await self.store.delete(record.org_id, record.name)
        self._live.pop(record.key, None)
        logger.info("agent %s deleted", record.key)
        self._emit(
            state_subject(record.org_id, record.name),
            {"org_id": record.org_id, "name": record.name, "state": "deleted"},
        )

    async def _orphan(self, key: str) -> None:
        if not self.options.remove_orphans:
            return
        logger.warning("runtime object of agent %s has no agent any more: removed", key)
        await self.runtime.remove(key)


def plan_change(
    record: AgentRecord, changes: Mapping[str, Any], *, settle: float
) -> tuple[AgentSpec, AgentSpec | None, Rollout | None]:
    """The spec after a partial change, the spec to roll back to and the rollout to
    watch: a new version, image, command or module of a running agent is an upgrade."""
    if record.deleting:
        raise AgentConflict(f"agent {record.name!r} is being deleted", code="agent_deleting")
    if "name" in changes and changes["name"] != record.name:
        raise InvalidAgentSpec("name: an agent cannot be renamed", code="agent_rename")
    merged = record.spec.model_dump(mode="json")
    if any(key in changes for key in ("image", "command", "module")):
        merged.update(image=None, command=[], module=None)  # the new way to run replaces
    merged.update(changes)
    spec = parse_spec(merged)
    previous, rollout = record.previous_spec, record.rollout
    if _runs_differently(record.spec, spec):
        if spec.desired_state is DesiredState.RUNNING:
            now = datetime.now(UTC)
            # During a rollout the version to fall back to stays the last good one.
            previous = (record.previous_spec if record.rollout else None) or record.spec
            rollout = Rollout(
                from_version=previous.version,
                to_version=spec.version,
                started_at=now,
                deadline=now + timedelta(seconds=spec.health.grace_seconds + settle),
            )
        else:
            previous, rollout = None, None  # a sleeping agent has nothing running to keep
    return spec, previous, rollout


def dns_name(org_id: str, name: str) -> str:
    """The agent's DNS name in its certificate: `<name>.<org_id>.agents`."""
    return f"{name}.{org_id.lower()}.agents"


def redact(line: LogLine, secrets: frozenset[str]) -> LogLine:
    text = line.text
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return line if text is line.text else LogLine(line.time, line.stream, text)


def _runs_differently(old: AgentSpec, new: AgentSpec) -> bool:
    return (old.version, old.image, old.command, old.module) != (
        new.version, new.image, new.command, new.module,
    )  # fmt: skip


def _fingerprint(workload: Workload) -> str:
    digest = hashlib.sha256()
    shape = {
        "version": workload.version,
        "image": workload.image,
        "command": list(workload.command),
        "env": dict(sorted(workload.env.items())),
        "labels": dict(sorted(workload.labels.items())),
        "files": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(workload.files.items())},
        "restart_policy": str(workload.restart_policy),
        "replicas": workload.replicas,
    }
    digest.update(json.dumps(shape, sort_keys=True).encode())
    return digest.hexdigest()


def _cert_files(cert: Mapping[str, str]) -> dict[str, bytes]:
    if not cert:
        return {}
    files = {CERT_FILE: cert["cert_pem"].encode(), CA_FILE: cert["ca_pem"].encode()}
    if cert.get("key_pem"):
        files[KEY_FILE] = cert["key_pem"].encode()
    return files


def _cert_due(cert: Mapping[str, str]) -> bool:
    """No certificate yet, or past two thirds of its life."""
    if not cert:
        return True
    issued = datetime.fromisoformat(cert["issued_at"])
    expires = datetime.fromisoformat(cert["expires_at"])
    return datetime.now(UTC) >= issued + (expires - issued) * 2 / 3


def _when(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
