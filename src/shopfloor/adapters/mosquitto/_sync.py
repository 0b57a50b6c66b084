"""Keeping Mosquitto's dynamic-security clients and roles equal to the registry.

`DynsecSync.sync_all` makes the broker match a full registry snapshot (run it at start
and now and then); the other methods apply one registry change at once, so a thing
can connect as soon as the API has answered. Every method is safe to repeat: a
lost answer (`DynsecUnavailable`) is handled by calling it again, and `sync_all`
repairs whatever an interrupted incremental call left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from shopfloor.registry import Connection, Thing

from . import _dynsec as dynsec
from ._access import (
    DEFAULT_ACL_ACCESS,
    ManagedClient,
    bridge_client,
    channel_topics,
    thing_acls,
    thing_client,
    thing_role,
)
from ._dynsec import Acl, ClientInfo, DynsecCommand, DynsecResponse, RoleInfo
from ._plan import plan_sync

__all__ = ["DynsecCommands", "DynsecSync", "SyncReport", "ThingAccess"]

logger = logging.getLogger(__name__)

#: One thing as the reconciler needs it: the thing, its plain key, its connections.
ThingAccess = tuple[Thing, str, Sequence[Connection]]

_NOT_FOUND = frozenset({"Client not found", "Role not found"})
#: What a concurrent `sync_all` elsewhere (another platform process) can cause; the
#: other run did the same change, and the next run repairs any difference.
_RACED = _NOT_FOUND | {"Client already exists", "Role already exists"}


class DynsecCommands(Protocol):
    """What the reconciler needs from a broker connection (`DynsecClient` has it)."""

    async def execute(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]: ...


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What `sync_all` changed, by client username (the bridge included)."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: int
    commands: int

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


class DynsecSync:
    """Applies the registry to Mosquitto through dynamic-security commands."""

    def __init__(self, dynsec: DynsecCommands, *, bridge_password: str) -> None:
        if len(bridge_password) < 16:
            raise ValueError("the bridge password must be a random string of 16+ characters")
        self._dynsec = dynsec
        self._bridge = bridge_client(bridge_password)
        # Incremental changes read a role, change it and write it back: one at a time.
        self._role_lock = asyncio.Lock()

    async def sync_all(self, things: AsyncIterable[ThingAccess]) -> SyncReport:
        """Make the broker hold exactly these things, the bridge and Shopfloor's defaults.

        Thing clients and `thing:` roles that are not in `things` are deleted; clients
        and roles without that mark are never touched.
        """
        default_access, clients, roles = await self._read(
            [dynsec.get_default_acl_access(), dynsec.list_clients(), dynsec.list_roles()]
        )
        wanted: list[ManagedClient] = [self._bridge]
        async for thing, key, connections in things:
            wanted.append(thing_client(thing.id, thing.name, key, connections))
        plan = plan_sync(
            dynsec.parse_clients(clients.data),
            dynsec.parse_roles(roles.data),
            wanted,
            delete_stale=True,
        )
        commands = self._with_defaults(default_access, plan.commands)
        await self._run(commands, tolerate=_RACED)
        report = SyncReport(
            created=plan.created,
            updated=plan.updated,
            deleted=plan.deleted,
            unchanged=plan.unchanged,
            commands=len(commands),
        )
        logger.info(
            "mosquitto sync: %d created, %d updated, %d deleted, %d unchanged",
            len(report.created), len(report.updated), len(report.deleted), report.unchanged,
        )  # fmt: skip
        return report

    async def ensure_defaults(self) -> None:
        """Set the default ACL access and the bridge client, touching no thing."""
        default_access, client, role = await self._dynsec.execute(
            [
                dynsec.get_default_acl_access(),
                dynsec.get_client(self._bridge.username),
                dynsec.get_role(self._bridge.rolename),
            ]
        )
        default_access.raise_for_error()
        clients, roles = self._found(client, role)
        plan = plan_sync(clients, roles, [self._bridge], delete_stale=False)
        await self._run(self._with_defaults(default_access, plan.commands))

    async def upsert_thing(
        self, thing: Thing, key: str, connections: Iterable[Connection] | None = None
    ) -> None:
        """Create or repair one thing's client and role.

        With `connections=None` the role keeps the ACLs it has (a key rotation or a
        rename does not need the connections).
        """
        async with self._role_lock:
            client, role = await self._dynsec.execute(
                [dynsec.get_client(thing.id), dynsec.get_role(thing_role(thing.id))]
            )
            clients, roles = self._found(client, role)
            wanted = thing_client(thing.id, thing.name, key, connections or ())
            if connections is None and roles:
                wanted = replace(wanted, acls=roles[0].acls)
            plan = plan_sync(clients, roles, [wanted], delete_stale=False)
            await self._run(plan.commands)

    async def thing_created(
        self, thing: Thing, key: str, connections: Iterable[Connection] = ()
    ) -> None:
        await self.upsert_thing(thing, key, connections)

    async def key_rotated(self, thing: Thing, key: str) -> None:
        """Set the new key; Mosquitto disconnects sessions that used the old one."""
        await self.upsert_thing(thing, key)

    async def thing_deleted(self, thing_id: str) -> None:
        """Remove the thing's client (disconnecting it) and its role."""
        responses = await self._dynsec.execute(
            [dynsec.delete_client(thing_id), dynsec.delete_role(thing_role(thing_id))]
        )
        for response in responses:
            if response.error not in _NOT_FOUND:
                response.raise_for_error()

    async def kick(self, thing_id: str) -> None:
        """Disconnect every session of the thing now; it may log in again at once (a
        revoked certificate then fails the handshake against the reloaded CRL)."""
        responses = await self._dynsec.execute(
            [dynsec.disable_client(thing_id), dynsec.enable_client(thing_id)]
        )
        for response in responses:
            if response.error not in _NOT_FOUND:
                response.raise_for_error()

    async def set_connections(self, thing_id: str, connections: Iterable[Connection]) -> None:
        """Replace the thing's ACLs by those of exactly these connections."""
        async with self._role_lock:
            await self._write_role(thing_id, thing_acls(thing_id, connections))

    async def connected(self, connection: Connection) -> None:
        """Grant (or change) the thing's permissions on one channel."""
        await self._change_channel(connection.thing_id, connection.channel_id, connection)

    async def disconnected(self, thing_id: str, channel_id: str) -> None:
        """Withdraw the thing's permissions on one channel."""
        await self._change_channel(thing_id, channel_id, None)

    async def _change_channel(
        self, thing_id: str, channel_id: str, connection: Connection | None
    ) -> None:
        topics = set(channel_topics(channel_id))
        async with self._role_lock:
            (answer,) = await self._dynsec.execute([dynsec.get_role(thing_role(thing_id))])
            if answer.error in _NOT_FOUND:
                current: frozenset[Acl] = thing_acls(thing_id, ())
            else:
                answer.raise_for_error()
                current = dynsec.parse_role(answer.data).acls
            kept = {acl for acl in current if acl.topic not in topics}
            if connection is not None:
                kept |= thing_acls(thing_id, [connection])
            await self._write_role(thing_id, frozenset(kept | thing_acls(thing_id, ())))

    async def _write_role(self, thing_id: str, acls: frozenset[Acl]) -> None:
        rolename = thing_role(thing_id)
        (answer,) = await self._dynsec.execute([dynsec.modify_role(rolename, acls)])
        if answer.error == "Role not found":
            await self._run([dynsec.create_role(rolename, acls)])
        else:
            answer.raise_for_error()

    @staticmethod
    def _found(
        client: DynsecResponse, role: DynsecResponse
    ) -> tuple[list[ClientInfo], list[RoleInfo]]:
        """The client and role of getClient/getRole answers; none where not found."""
        clients, roles = [], []
        if client.error not in _NOT_FOUND:
            client.raise_for_error()
            clients.append(dynsec.parse_client(client.data))
        if role.error not in _NOT_FOUND:
            role.raise_for_error()
            roles.append(dynsec.parse_role(role.data))
        return clients, roles

    @staticmethod
    def _with_defaults(
        default_access: DynsecResponse, commands: Sequence[DynsecCommand]
    ) -> list[DynsecCommand]:
        """The commands, after setDefaultACLAccess if the broker's defaults differ."""
        current = dynsec.parse_default_acl_access(default_access.data)
        if all(current.get(kind) == allow for kind, allow in DEFAULT_ACL_ACCESS.items()):
            return list(commands)
        return [dynsec.set_default_acl_access(DEFAULT_ACL_ACCESS), *commands]

    async def _read(self, commands: Sequence[DynsecCommand]) -> list[DynsecResponse]:
        responses = await self._dynsec.execute(commands)
        for response in responses:
            response.raise_for_error()
        return responses

    async def _run(
        self, commands: Sequence[DynsecCommand], *, tolerate: frozenset[str] = frozenset()
    ) -> None:
        if not commands:
            return
        for response in await self._dynsec.execute(commands):
            if response.error not in tolerate:
                response.raise_for_error()
