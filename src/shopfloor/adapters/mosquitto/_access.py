"""How Shopfloor's registry maps onto dynamic-security clients and roles (pure).

- a thing is a broker client whose username is the thing id and whose password is the
  thing key, holding exactly one role, `thing:<thing_id>`;
- that role allows, per connected channel, publishing (with `publish`) or subscribing
  and receiving (with `subscribe`) on `channels/<ch>/messages` and everything under it;
  a low-priority deny on receiving `channels/#` makes a revoked subscribe permission
  take effect on subscriptions the thing already holds;
- the `_errors` subtree of every channel belongs to the platform: things may not
  publish there, and each thing may subscribe to and receive only its own reports,
  `channels/+/messages/_errors/<thing_id>`, whatever its channel permissions;
- the bridge is the client `shopfloor-bridge` with the role `shopfloor-bridge`, allowed
  to subscribe to (also as a shared subscription), receive and publish on every
  channel: it republishes what reached the platform through other protocols.

The broker never reveals password hashes, so each client the platform manages keeps a
fingerprint of its secret in `textdescription`; re-syncing compares fingerprints and
sends a password only when it changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from shopfloor.registry import Connection, Permission

from ._dynsec import Acl

__all__ = [
    "BRIDGE_ROLE",
    "BRIDGE_USERNAME",
    "DEFAULT_ACL_ACCESS",
    "ERRORS_SUBTOPIC",
    "MESSAGE_ID_PROPERTY",
    "PROTOCOL_PROPERTY",
    "PUBLISHER_PROPERTY",
    "RESERVED_PROPERTY_PREFIX",
    "THING_ROLE_PREFIX",
    "ManagedClient",
    "bridge_acls",
    "bridge_client",
    "channel_topics",
    "errors_topic",
    "secret_fingerprint",
    "thing_acls",
    "thing_client",
    "thing_id_of_role",
    "thing_role",
]

THING_ROLE_PREFIX = "thing:"
BRIDGE_USERNAME = "shopfloor-bridge"
BRIDGE_ROLE = "shopfloor-bridge"
#: User properties with this prefix are the platform's: the broker plugin strips them from
#: every PUBLISH of a client other than the bridge, so a thing cannot forge them.
RESERVED_PROPERTY_PREFIX = "shopfloor-"
#: The MQTT v5 user property in which the broker plugin names the authenticated publisher.
PUBLISHER_PROPERTY = "shopfloor-publisher"
#: Unique per PUBLISH (stamped by the plugin; the envelope id on what the bridge sends).
MESSAGE_ID_PROPERTY = "shopfloor-message-id"
#: Set by the bridge only: the protocol that brought a message it republishes.
PROTOCOL_PROPERTY = "shopfloor-protocol"
#: The subtopic under which the platform reports refused messages to their publisher.
ERRORS_SUBTOPIC = "_errors"
#: What clients may do where no role says otherwise; receive/unsubscribe stay allowed.
DEFAULT_ACL_ACCESS = {"publishClientSend": False, "subscribe": False}

_FINGERPRINT_MARK = "shopfloor-secret:"
_ALLOW = 0
_FALLBACK = -1
#: Above the channel permissions, which cover `_errors` with `channels/<ch>/messages/#`.
_ERRORS_DENY = 1
_OWN_ERRORS = 2
_ALL_ERRORS = f"channels/+/messages/{ERRORS_SUBTOPIC}/#"


@dataclass(frozen=True, slots=True)
class ManagedClient:
    """The broker state the platform wants for one client and its own role."""

    username: str
    password: str
    textname: str
    rolename: str
    acls: frozenset[Acl]

    @property
    def fingerprint(self) -> str:
        return secret_fingerprint(self.username, self.password)


def thing_role(thing_id: str) -> str:
    return f"{THING_ROLE_PREFIX}{thing_id}"


def thing_id_of_role(rolename: str) -> str | None:
    """The thing id of a `thing:` role, or None for a role the platform does not own."""
    if rolename.startswith(THING_ROLE_PREFIX) and len(rolename) > len(THING_ROLE_PREFIX):
        return rolename[len(THING_ROLE_PREFIX) :]
    return None


def channel_topics(channel_id: str) -> tuple[str, str]:
    """The channel's topic and the filter of its subtopics."""
    base = f"channels/{channel_id}/messages"
    return base, f"{base}/#"


def errors_topic(channel_id: str, thing_id: str) -> str:
    """Where the platform reports a thing's refused messages on a channel."""
    return f"channels/{channel_id}/messages/{ERRORS_SUBTOPIC}/{thing_id}"


def thing_acls(thing_id: str, connections: Iterable[Connection]) -> frozenset[Acl]:
    own_errors = f"channels/+/messages/{ERRORS_SUBTOPIC}/{thing_id}"
    acls = {
        Acl("publishClientReceive", "channels/#", allow=False, priority=_FALLBACK),
        Acl("publishClientSend", _ALL_ERRORS, allow=False, priority=_ERRORS_DENY),
        Acl("subscribePattern", _ALL_ERRORS, allow=False, priority=_ERRORS_DENY),
        Acl("publishClientReceive", _ALL_ERRORS, allow=False, priority=_ERRORS_DENY),
        Acl("subscribePattern", own_errors, allow=True, priority=_OWN_ERRORS),
        Acl("publishClientReceive", own_errors, allow=True, priority=_OWN_ERRORS),
    }
    for connection in connections:
        for topic in channel_topics(connection.channel_id):
            if connection.allows(Permission.PUBLISH):
                acls.add(Acl("publishClientSend", topic, allow=True, priority=_ALLOW))
            if connection.allows(Permission.SUBSCRIBE):
                acls.add(Acl("subscribePattern", topic, allow=True, priority=_ALLOW))
                acls.add(Acl("publishClientReceive", topic, allow=True, priority=_ALLOW))
    return frozenset(acls)


def bridge_acls() -> frozenset[Acl]:
    return frozenset(
        {
            Acl("subscribePattern", "channels/#", allow=True),
            # Several bridge processes share the load with `$share/<group>/channels/#`;
            # Mosquitto checks the filter with its `$share/<group>/` prefix.
            Acl("subscribePattern", "$share/+/channels/#", allow=True),
            Acl("publishClientReceive", "channels/#", allow=True),
            Acl("publishClientSend", "channels/#", allow=True),
        }
    )


def thing_client(
    thing_id: str, name: str, key: str, connections: Iterable[Connection]
) -> ManagedClient:
    return ManagedClient(
        username=thing_id,
        password=key,
        textname=name,
        rolename=thing_role(thing_id),
        acls=thing_acls(thing_id, connections),
    )


def bridge_client(password: str) -> ManagedClient:
    return ManagedClient(
        username=BRIDGE_USERNAME,
        password=password,
        textname="Shopfloor bridge",
        rolename=BRIDGE_ROLE,
        acls=bridge_acls(),
    )


def secret_fingerprint(username: str, secret: str) -> str:
    """A non-reversible mark of a client's secret, stored in its `textdescription`.

    Thing keys and the bridge password are long random strings, so a salted SHA-256
    reveals nothing an attacker could brute-force, while it tells whether the broker
    already holds the current secret.
    """
    digest = hashlib.sha256(f"shopfloor\0{username}\0{secret}".encode()).hexdigest()
    return f"{_FINGERPRINT_MARK}{digest[:32]}"


def is_fingerprint(textdescription: str) -> bool:
    return textdescription.startswith(_FINGERPRINT_MARK)
