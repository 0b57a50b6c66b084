"""The amqtt plugin that authenticates things and authorises their subscriptions.

amqtt asks every auth plugin whether a CONNECT may proceed (False → CONNACK "not
authorised") and every topic plugin whether a session may subscribe to a filter
(False → SUBACK failure 0x80), publish to a topic, or receive a message amqtt routes.
Only subscriptions are ever allowed here: things' PUBLISHes do not go through amqtt's
routing at all (the protocol handler hands them to the ingress), and messages reach
subscribers from the bus, not from amqtt, so the PUBLISH and RECEIVE checks refuse
whatever amqtt might still try to route itself (a QoS 2 message after its handshake).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from shopfloor.auth import AuthenticatedThing
from shopfloor.registry import Permission

from ..tls import CertifiedThing
from ._connection import Inbound
from ._gateway import CERTIFICATE_ATTRIBUTE, THING_ATTRIBUTE, WILL_ATTRIBUTE, Gateway
from ._topics import TopicError, parse_subscription

__all__ = ["ThingAccessPlugin", "plugin_path"]

logger = logging.getLogger(__name__)


# amqtt is untyped, so its base classes are `Any` to mypy.
class ThingAccessPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]
    """Username = thing id, password = thing key (or a client certificate the listener
    admitted); subscriptions need the channel's permission."""

    @dataclass
    class Config:
        #: The broker's `Gateway`; amqtt builds plugins itself, so it travels in the
        #: plugin configuration (amqtt hands the object over as it is).
        gateway: Any = None

    @property
    def _gateway(self) -> Gateway:
        gateway = self.config.gateway
        if not isinstance(gateway, Gateway):
            raise TypeError("ThingAccessPlugin needs the broker's Gateway in its config")
        return gateway

    async def authenticate(self, *, session: Any) -> bool:
        session.attributes.pop(THING_ATTRIBUTE, None)
        certified = session.attributes.get(CERTIFICATE_ATTRIBUTE)
        if isinstance(certified, CertifiedThing):
            # The listener admitted the certificate; only a revocation since then counts.
            gate = self._gateway.gate
            if gate is None or gate.is_revoked(certified.serial):
                return False
            session.attributes[THING_ATTRIBUTE] = certified.thing
            self._take_will(session)
            return True
        thing_id, key = session.username, session.password
        if not thing_id or not key:
            return False
        try:
            thing = await self._gateway.access.authenticate_as(thing_id, key)
        except Exception:
            logger.warning("cannot check the credentials of thing %s", thing_id, exc_info=True)
            return False
        if thing is None:
            return False
        session.attributes[THING_ATTRIBUTE] = thing
        self._take_will(session)
        return True

    @staticmethod
    def _take_will(session: Any) -> None:
        """Keep the will for the ingress and hide it from amqtt.

        amqtt would broadcast (and maybe retain) a will itself when the client drops,
        straight to subscribers, with no publisher identity; clearing the flag stops
        that, and the connection publishes the will through the ingress instead.
        """
        if session.will_flag and session.will_topic:
            will = Inbound(session.will_topic, bytes(session.will_message or b""), qos=0)
            session.attributes[WILL_ATTRIBUTE] = will
        else:
            session.attributes.pop(WILL_ATTRIBUTE, None)
        session.will_flag = False
        session.will_retain = False

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        if action != Action.SUBSCRIBE or session is None or topic is None:
            return False
        thing = session.attributes.get(THING_ATTRIBUTE)
        if not isinstance(thing, AuthenticatedThing):
            return False
        try:
            wanted = parse_subscription(topic)
        except TopicError:
            return False
        if wanted.errors:
            # Only the subscriber's own refused messages are ever sent there.
            return True
        try:
            return await self._gateway.access.allowed(
                thing.id, wanted.channel, Permission.SUBSCRIBE
            )
        except Exception:
            logger.warning("cannot check the permissions of thing %s", thing.id, exc_info=True)
            return False


def plugin_path() -> str:
    """The dotted path amqtt loads the plugin from."""
    return f"{ThingAccessPlugin.__module__}.{ThingAccessPlugin.__qualname__}"
