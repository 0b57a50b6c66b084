"""Bootstrap: configurations managed by people, fetched by devices.

Management calls keep the registry in step with a configuration's state (active: the
thing is connected to the configuration's channels; inactive: disconnected) and emit
`bootstrap.*` platform events after the change. Device calls are rate limited, compare
keys in constant time on a keyed digest, and answer an unknown external id exactly as
a wrong key, recording the id for the people who will configure it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from shopfloor.registry import NotFound, Registry

from ._devices import Challenges, UnknownDevices
from ._errors import ChallengeInvalid, ConfigConflict, DeviceDenied, RateLimited
from ._limits import DeviceLimits
from ._store import EXTERNAL_ID, ConfigStore, check_external_id
from ._types import BootstrapConfig, State
from ._wire import CHALLENGE_BYTES, b64decode, derive_keys, seal_document

__all__ = ["CONFIG_CREATED", "Bootstrap", "PublicUrls"]

logger = logging.getLogger(__name__)

Emit = Callable[[str, Mapping[str, Any]], object]

CONFIG_CREATED = "bootstrap.config_created"
CONFIG_UPDATED = "bootstrap.config_updated"
CONFIG_REMOVED = "bootstrap.config_removed"
STATE_CHANGED = "bootstrap.state_changed"
BOOTSTRAPPED = "bootstrap.bootstrapped"

_DUMMY_DIGEST = "0" * 64


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicUrls:
    """Where devices reach this platform (settings), told to them in `shopfloor`."""

    mqtt_url: str = ""
    mqtts_url: str = ""
    http_url: str = ""


class Bootstrap:
    def __init__(
        self,
        configs: ConfigStore,
        registry: Registry,
        *,
        challenges: Challenges,
        unknown: UnknownDevices,
        limits: DeviceLimits,
        public: PublicUrls,
        emit: Emit,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.configs = configs
        self.registry = registry
        self.challenges = challenges
        self.unknown = unknown
        self.limits = limits
        self.public = public
        self._emit = emit
        self._requests = Counter(
            "shopfloor_bootstrap_requests",
            "Device bootstrap requests by outcome (ok, denied, unknown, challenge_invalid, "
            "rate_limited).",
            ["outcome"],
            registry=metrics_registry or CollectorRegistry(),
        )
        for outcome in ("ok", "denied", "unknown", "challenge_invalid", "rate_limited"):
            self._requests.labels(outcome)

    # -- management ---------------------------------------------------------------------

    async def create(
        self,
        org_id: str,
        *,
        external_id: str,
        external_key: str,
        name: str,
        thing_id: str | None = None,
        channels: Iterable[str] = (),
        content: str = "",
        client_cert: str = "",
        client_key: str = "",
        ca_cert: str = "",
    ) -> BootstrapConfig:
        """Configure `thing_id`, or a new thing named `name` when it is None (inactive)."""
        channel_ids = list(channels)
        created_thing = False
        if thing_id is None:
            check_external_id(external_id)  # before a thing is made for it
            if await self.configs.by_external_id(external_id) is not None:
                raise ConfigConflict(
                    "another configuration has this external id",
                    code="bootstrap_external_id_taken",
                )
            thing, _key = await self.registry.create_thing(org_id, name=name)
            thing_id, created_thing = thing.id, True
        try:
            config = await self.configs.create(
                org_id,
                thing_id=thing_id,
                external_id=external_id,
                external_key=external_key,
                name=name,
                channels=channel_ids,
                content=content,
                client_cert=client_cert,
                client_key=client_key,
                ca_cert=ca_cert,
            )
        except BaseException:
            if created_thing:
                await self.registry.delete_thing(org_id, thing_id)
            raise
        self.announce(CONFIG_CREATED, config)
        return config

    async def update(
        self, org_id: str, thing_id: str, *, name: str | None = None, content: str | None = None
    ) -> BootstrapConfig:
        config = await self.configs.update(org_id, thing_id, name=name, content=content)
        self.announce(CONFIG_UPDATED, config)
        return config

    async def set_certs(
        self,
        org_id: str,
        thing_id: str,
        *,
        client_cert: str | None = None,
        client_key: str | None = None,
        ca_cert: str | None = None,
    ) -> BootstrapConfig:
        config = await self.configs.set_certs(
            org_id, thing_id, client_cert=client_cert, client_key=client_key, ca_cert=ca_cert
        )
        self.announce(CONFIG_UPDATED, config)
        return config

    async def delete(self, org_id: str, thing_id: str) -> None:
        """Remove the configuration; the thing and its connections stay (as Mainflux)."""
        config = await self.configs.delete(org_id, thing_id)
        self.announce(CONFIG_REMOVED, config)

    async def set_state(self, org_id: str, thing_id: str, state: State) -> BootstrapConfig:
        """Active: connect the thing to every channel of the configuration; inactive:
        disconnect it from them. The connections and the state commit together."""
        async with self.registry.transaction() as tx:
            config = await self.configs.get(org_id, thing_id, conn=tx.conn)
            if state is State.ACTIVE:
                await _connect(tx, config, config.channels)
            else:
                await _disconnect(tx, config, config.channels)
            config = await self.configs.set_state(org_id, thing_id, state, conn=tx.conn)
        self.announce(STATE_CHANGED, config)
        return config

    async def set_channels(
        self, org_id: str, thing_id: str, channels: Iterable[str]
    ) -> BootstrapConfig:
        """Replace the channel list; an active thing's connections follow it, in the same
        transaction."""
        async with self.registry.transaction() as tx:
            before = await self.configs.get(org_id, thing_id, conn=tx.conn)
            config = await self.configs.set_channels(org_id, thing_id, channels, conn=tx.conn)
            if config.state is State.ACTIVE:
                gone = [c for c in before.channels if c not in config.channels]
                await _disconnect(tx, config, gone)
                await _connect(tx, config, config.channels)
        self.announce(CONFIG_UPDATED, config)
        return config

    def announce(self, subject: str, config: BootstrapConfig) -> None:
        """Emit a `bootstrap.*` event of `config` (also for configs another capability
        wrote in its own transaction, as provisioning does)."""
        self._emit(
            subject,
            {
                "org_id": config.org_id,
                "thing_id": config.thing_id,
                "external_id": config.external_id,
                "state": int(config.state),
            },
        )

    # -- devices ------------------------------------------------------------------------

    def _admit(self, external_id: str, address: str) -> None:
        try:
            self.limits.admit(external_id, address)
        except RateLimited:
            self._requests.labels("rate_limited").inc()
            raise

    async def fetch(self, external_id: str, external_key: str, address: str) -> dict[str, Any]:
        """The Mainflux-compatible answer for a device presenting its external key."""
        self._admit(external_id, address)
        config = await self._known(external_id, address)
        if not self.configs.sealed.matches(external_key, config.external_key_digest):
            await self._denied(config)
        document = await self.document(config)
        self._bootstrapped(config)
        return document

    async def challenge(self, external_id: str, address: str) -> bytes:
        """A fresh single-use challenge; an unknown id gets one too (and is recorded), so
        the answer tells nothing about which ids exist."""
        self._admit(external_id, address)
        if not EXTERNAL_ID.fullmatch(external_id):
            self._requests.labels("unknown").inc()
            raise DeviceDenied("no bootstrap for this external id and key")
        if await self.configs.by_external_id(external_id) is None:
            self._requests.labels("unknown").inc()
            await self.unknown.record(external_id, address)
        return await self.challenges.issue(external_id)

    async def secure(
        self, external_id: str, challenge: str, proof: str, address: str
    ) -> dict[str, str]:
        """The document sealed under the challenge's keys, for a device proving its key."""
        self._admit(external_id, address)
        try:
            raw_challenge, raw_proof = b64decode(challenge), b64decode(proof)
        except ValueError:
            raw_challenge, raw_proof = b"", b""
        if len(raw_challenge) != CHALLENGE_BYTES or not await self.challenges.consume(
            external_id, raw_challenge
        ):
            self._requests.labels("challenge_invalid").inc()
            raise ChallengeInvalid("the challenge is unknown, used or expired: ask for a new one")
        config = await self.configs.by_external_id(external_id)
        if config is None:
            self._requests.labels("denied").inc()
            raise DeviceDenied("no bootstrap for this external id and key")
        keys = derive_keys(external_id, self.configs.external_key(config), raw_challenge)
        if not keys.proof_matches(raw_proof):
            await self._denied(config)
        document = json.dumps(await self.document(config), separators=(",", ":")).encode()
        sealed = seal_document(keys, document)
        self._bootstrapped(config)
        return sealed

    async def document(self, config: BootstrapConfig) -> dict[str, Any]:
        """What a device receives: Mainflux's fields, then Shopfloor's under `shopfloor`."""
        thing = await self.registry.get_thing(config.org_id, config.thing_id)
        return {
            "mainflux_id": thing.id,
            "mainflux_key": self.registry.thing_key(thing),
            "mainflux_channels": await self.configs.channel_details(config),
            "content": config.content,
            "client_cert": config.client_cert,
            "client_key": self.configs.client_key(config),
            "ca_cert": config.ca_cert,
            "shopfloor": {
                "state": int(config.state),
                "mqtt_url": self.public.mqtt_url,
                "mqtts_url": self.public.mqtts_url,
                "http_url": self.public.http_url,
            },
        }

    async def _known(self, external_id: str, address: str) -> BootstrapConfig:
        config = None
        if EXTERNAL_ID.fullmatch(external_id):
            config = await self.configs.by_external_id(external_id)
        if config is None:
            self.configs.sealed.matches("", _DUMMY_DIGEST)  # the time a digest takes
            self._requests.labels("unknown").inc()
            if EXTERNAL_ID.fullmatch(external_id):
                await self.unknown.record(external_id, address)
            raise DeviceDenied("no bootstrap for this external id and key")
        return config

    async def _denied(self, config: BootstrapConfig) -> None:
        self._requests.labels("denied").inc()
        await self.configs.count_failure(config.thing_id)
        logger.info("bootstrap of %s refused: wrong key or proof", config.external_id)
        raise DeviceDenied("no bootstrap for this external id and key")

    def _bootstrapped(self, config: BootstrapConfig) -> None:
        self._requests.labels("ok").inc()
        self.announce(BOOTSTRAPPED, config)


async def _connect(registry: Registry, config: BootstrapConfig, channels: Iterable[str]) -> None:
    for channel_id in channels:
        try:
            await registry.connect(config.org_id, channel_id, config.thing_id)
        except NotFound:
            if await registry.find_channel(channel_id) is not None:
                raise
            logger.info("channel %s of a bootstrap configuration is gone", channel_id)


async def _disconnect(registry: Registry, config: BootstrapConfig, channels: Iterable[str]) -> None:
    for channel_id in channels:
        # not connected (or the channel is gone): what was asked for
        with contextlib.suppress(NotFound):
            await registry.disconnect(config.org_id, channel_id, config.thing_id)
