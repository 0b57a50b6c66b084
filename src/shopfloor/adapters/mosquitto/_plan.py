"""The difference between the broker's clients and roles and the wanted ones (pure).

`plan_sync` compares what `listClients`/`listRoles` report with the clients the
registry wants and returns the commands that close the gap, nothing more: a broker
that already matches gets no command at all. Mosquitto disconnects a client whenever
its password or its client record changes, so unchanged things are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import _dynsec as dynsec
from ._access import ManagedClient, is_fingerprint, thing_id_of_role, thing_role
from ._dynsec import ClientInfo, DynsecCommand, RoleInfo

__all__ = ["SyncPlan", "plan_sync"]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Commands to send, in order, and which clients they create, update or delete."""

    commands: tuple[DynsecCommand, ...]
    created: tuple[str, ...]
    updated: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: int


def _owned_thing_client(client: ClientInfo) -> bool:
    """A thing client the platform made; foreign clients are never deleted."""
    return thing_role(client.username) in client.roles or is_fingerprint(client.textdescription)


def _role_commands(wanted: ManagedClient, role: RoleInfo | None) -> list[DynsecCommand]:
    if role is None:
        return [dynsec.create_role(wanted.rolename, wanted.acls)]
    if role.acls != wanted.acls:
        return [dynsec.modify_role(wanted.rolename, wanted.acls)]
    return []


def _client_commands(wanted: ManagedClient, client: ClientInfo) -> list[DynsecCommand]:
    commands: list[DynsecCommand] = []
    fingerprint = wanted.fingerprint
    if client.textdescription != fingerprint:
        commands.append(dynsec.set_client_password(wanted.username, wanted.password))
    textname = wanted.textname if client.textname != wanted.textname else None
    description = fingerprint if client.textdescription != fingerprint else None
    roles = [wanted.rolename] if client.roles != {wanted.rolename} else None
    if textname is not None or description is not None or roles is not None:
        commands.append(
            dynsec.modify_client(
                wanted.username, textname=textname, textdescription=description, roles=roles
            )
        )
    return commands


def plan_sync(
    clients: Iterable[ClientInfo],
    roles: Iterable[RoleInfo],
    wanted: Iterable[ManagedClient],
    *,
    delete_stale: bool,
) -> SyncPlan:
    """Commands that make the broker hold exactly the `wanted` clients and their roles.

    With `delete_stale`, thing clients and `thing:` roles that are not wanted are
    deleted; clients and roles the platform does not own are left alone either way.
    """
    current_clients = {client.username: client for client in clients}
    current_roles = {role.rolename: role for role in roles}
    role_commands: list[DynsecCommand] = []
    client_commands: list[DynsecCommand] = []
    created: list[str] = []
    updated: list[str] = []
    unchanged = 0
    wanted_users: set[str] = set()
    wanted_roles: set[str] = set()

    for item in wanted:
        if item.username in wanted_users:
            raise ValueError(f"client {item.username!r} is wanted twice")
        wanted_users.add(item.username)
        wanted_roles.add(item.rolename)
        for_role = _role_commands(item, current_roles.get(item.rolename))
        role_commands.extend(for_role)
        client = current_clients.get(item.username)
        if client is None:
            client_commands.append(
                dynsec.create_client(
                    item.username,
                    item.password,
                    textname=item.textname,
                    textdescription=item.fingerprint,
                    roles=[item.rolename],
                )
            )
            created.append(item.username)
            continue
        for_client = _client_commands(item, client)
        client_commands.extend(for_client)
        if for_role or for_client:
            updated.append(item.username)
        else:
            unchanged += 1

    delete_commands: list[DynsecCommand] = []
    deleted: set[str] = set()
    if delete_stale:
        for username, client in sorted(current_clients.items()):
            if username not in wanted_users and _owned_thing_client(client):
                delete_commands.append(dynsec.delete_client(username))
                deleted.add(username)
        for rolename in sorted(current_roles):
            thing_id = thing_id_of_role(rolename)
            if thing_id is not None and rolename not in wanted_roles:
                delete_commands.append(dynsec.delete_role(rolename))
                deleted.add(thing_id)

    # Roles first: a client can only be given a role that exists.
    return SyncPlan(
        commands=(*role_commands, *client_commands, *delete_commands),
        created=tuple(created),
        updated=tuple(updated),
        deleted=tuple(sorted(deleted)),
        unchanged=unchanged,
    )
