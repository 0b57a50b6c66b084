"""The wire format of Mosquitto's dynamic-security plugin, as pure functions.

Commands are JSON objects published in a batch on `$CONTROL/dynamic-security/v1`
(`{"commands": [...]}`); the plugin answers every command of the batch, in order, in
one message on `$CONTROL/dynamic-security/v1/response`. Every admin connection
receives every answer, so each command carries a `correlationData` string that the
plugin echoes back: it is the only reliable way to pair answers with requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import DynsecError

__all__ = [
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "Acl",
    "ClientInfo",
    "DynsecCommand",
    "DynsecResponse",
    "RoleInfo",
    "create_client",
    "create_role",
    "decode_responses",
    "delete_client",
    "delete_role",
    "disable_client",
    "enable_client",
    "encode_commands",
    "get_client",
    "get_default_acl_access",
    "get_role",
    "list_clients",
    "list_roles",
    "modify_client",
    "modify_role",
    "parse_client",
    "parse_clients",
    "parse_default_acl_access",
    "parse_role",
    "parse_roles",
    "set_client_password",
    "set_default_acl_access",
]

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"

#: One command object, e.g. `{"command": "deleteClient", "username": "..."}`.
DynsecCommand = dict[str, Any]

#: Commands that only read; everything else changes the broker (and is persisted).
READ_COMMANDS = frozenset(
    {"getClient", "listClients", "getRole", "listRoles", "getDefaultACLAccess"}
)


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One access-control entry of a role.

    `acltype` is one of publishClientSend, publishClientReceive, subscribeLiteral,
    subscribePattern, unsubscribeLiteral, unsubscribePattern. Within a role the entry
    with the highest priority that matches a topic decides.
    """

    acltype: str
    topic: str
    allow: bool
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "acltype": self.acltype,
            "topic": self.topic,
            "priority": self.priority,
            "allow": self.allow,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Acl:
        return cls(
            acltype=str(value["acltype"]),
            topic=str(value["topic"]),
            allow=bool(value.get("allow", False)),
            priority=int(value.get("priority", 0)),
        )


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A broker client as `listClients`/`getClient` describe it (passwords never leave)."""

    username: str
    textname: str
    textdescription: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoleInfo:
    rolename: str
    acls: frozenset[Acl]


@dataclass(frozen=True, slots=True)
class DynsecResponse:
    """The answer to one command: `data` on success, `error` (the broker's text) if not."""

    command: str
    correlation_data: str | None = None
    data: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise DynsecError(self.command, self.error)


# -- command builders ----------------------------------------------------------------------


def _roles(rolenames: Iterable[str]) -> list[dict[str, Any]]:
    return [{"rolename": name} for name in sorted(rolenames)]


def _acls(acls: Iterable[Acl]) -> list[dict[str, Any]]:
    return [acl.to_json() for acl in sorted(acls)]


def create_client(
    username: str,
    password: str,
    *,
    textname: str = "",
    textdescription: str = "",
    roles: Iterable[str] = (),
) -> DynsecCommand:
    return {
        "command": "createClient",
        "username": username,
        "password": password,
        "textname": textname,
        "textdescription": textdescription,
        "roles": _roles(roles),
    }


def modify_client(
    username: str,
    *,
    textname: str | None = None,
    textdescription: str | None = None,
    roles: Iterable[str] | None = None,
) -> DynsecCommand:
    """Change the given fields only. Mosquitto disconnects the client's sessions."""
    command: DynsecCommand = {"command": "modifyClient", "username": username}
    if textname is not None:
        command["textname"] = textname
    if textdescription is not None:
        command["textdescription"] = textdescription
    if roles is not None:
        command["roles"] = _roles(roles)
    return command


def set_client_password(username: str, password: str) -> DynsecCommand:
    """Mosquitto disconnects the sessions logged in with the old password."""
    return {"command": "setClientPassword", "username": username, "password": password}


def disable_client(username: str) -> DynsecCommand:
    """Refuse the client's logins and disconnect its sessions (Mosquitto 2.0 has no
    kickClient: disabling is how a session is ended)."""
    return {"command": "disableClient", "username": username}


def enable_client(username: str) -> DynsecCommand:
    return {"command": "enableClient", "username": username}


def delete_client(username: str) -> DynsecCommand:
    return {"command": "deleteClient", "username": username}


def get_client(username: str) -> DynsecCommand:
    return {"command": "getClient", "username": username}


def list_clients(*, verbose: bool = True) -> DynsecCommand:
    return {"command": "listClients", "verbose": verbose, "count": -1, "offset": 0}


def create_role(rolename: str, acls: Iterable[Acl] = ()) -> DynsecCommand:
    return {"command": "createRole", "rolename": rolename, "acls": _acls(acls)}


def modify_role(rolename: str, acls: Iterable[Acl]) -> DynsecCommand:
    """Replace a role's ACL list. Unlike add/removeRoleACL it keeps clients connected."""
    return {"command": "modifyRole", "rolename": rolename, "acls": _acls(acls)}


def delete_role(rolename: str) -> DynsecCommand:
    return {"command": "deleteRole", "rolename": rolename}


def get_role(rolename: str) -> DynsecCommand:
    return {"command": "getRole", "rolename": rolename}


def list_roles(*, verbose: bool = True) -> DynsecCommand:
    return {"command": "listRoles", "verbose": verbose, "count": -1, "offset": 0}


def get_default_acl_access() -> DynsecCommand:
    return {"command": "getDefaultACLAccess"}


def set_default_acl_access(access: Mapping[str, bool]) -> DynsecCommand:
    return {
        "command": "setDefaultACLAccess",
        "acls": [{"acltype": acltype, "allow": allow} for acltype, allow in access.items()],
    }


# -- encoding and decoding -----------------------------------------------------------------


def encode_commands(commands: Sequence[DynsecCommand]) -> bytes:
    """The payload of one batch, to publish on `CONTROL_TOPIC`."""
    if not commands:
        raise ValueError("a dynsec batch needs at least one command")
    return json.dumps({"commands": list(commands)}, separators=(",", ":")).encode()


def decode_responses(payload: bytes) -> list[DynsecResponse]:
    """The answers in one message from `RESPONSE_TOPIC`; ValueError if it is not one."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"dynsec response is not JSON: {exc}") from exc
    responses = document.get("responses") if isinstance(document, dict) else None
    if not isinstance(responses, list):
        raise ValueError("dynsec response has no 'responses' list")
    decoded = []
    for item in responses:
        if not isinstance(item, dict):
            raise ValueError("dynsec response item is not an object")
        correlation = item.get("correlationData")
        data = item.get("data")
        error = item.get("error")
        decoded.append(
            DynsecResponse(
                command=str(item.get("command", "")),
                correlation_data=correlation if isinstance(correlation, str) else None,
                data=data if isinstance(data, dict) else None,
                error=None if error is None else str(error),
            )
        )
    return decoded


def _client_info(value: Mapping[str, Any]) -> ClientInfo:
    return ClientInfo(
        username=str(value["username"]),
        textname=str(value.get("textname") or ""),
        textdescription=str(value.get("textdescription") or ""),
        roles=frozenset(str(role["rolename"]) for role in value.get("roles") or ()),
    )


def parse_client(data: Mapping[str, Any] | None) -> ClientInfo:
    """The client of a `getClient` answer."""
    return _client_info((data or {})["client"])


def parse_clients(data: Mapping[str, Any] | None) -> list[ClientInfo]:
    """Clients of a verbose `listClients` answer."""
    return [_client_info(item) for item in (data or {}).get("clients") or ()]


def parse_role(data: Mapping[str, Any] | None) -> RoleInfo:
    """The role of a `getRole` answer."""
    return _role_info((data or {})["role"])


def _role_info(value: Mapping[str, Any]) -> RoleInfo:
    return RoleInfo(
        rolename=str(value["rolename"]),
        acls=frozenset(Acl.from_json(acl) for acl in value.get("acls") or ()),
    )


def parse_roles(data: Mapping[str, Any] | None) -> list[RoleInfo]:
    """Roles of a verbose `listRoles` answer."""
    return [_role_info(item) for item in (data or {}).get("roles") or ()]


def parse_default_acl_access(data: Mapping[str, Any] | None) -> dict[str, bool]:
    return {str(item["acltype"]): bool(item["allow"]) for item in (data or {}).get("acls") or ()}
