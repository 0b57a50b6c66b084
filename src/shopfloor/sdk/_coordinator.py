"""`CoordinatorAgent`: an agent whose state is the aggregate of its members' states.

    {"members": ["mill-1", "mill-2", "press-1"], "peers": {...}}      # its config.json

It follows each member (`Follow`, from the member's last state on), keeps the last
state of each (None while a member cannot be followed: not started, stopped, refused;
it tries again with a capped, randomised backoff), and publishes `aggregate(states)`
as its own state whenever that changes. The default aggregate groups the members by
the `state` key of their states and counts availability, the share of members whose
state says `running`; override `aggregate` for another. A coordinator `call`s its
members as any agent does, and needs `reads` to each of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from shopfloor.core import Backoff

from ._agent import Agent
from ._context import AgentContext, AgentContextError
from ._errors import AgentError

__all__ = ["CoordinatorAgent"]

MemberState = Mapping[str, Any] | None


class CoordinatorAgent(Agent):
    """Follows `config.members` and publishes the aggregate of their states."""

    #: Pacing of the attempts to follow a member again.
    backoff = Backoff(base=0.2, cap=10.0)

    def __init__(self, context: AgentContext, **options: Any) -> None:
        super().__init__(context, **options)
        members = context.config.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            raise AgentContextError('config.members is a list of agent names: ["mill-1", ...]')
        self.members: tuple[str, ...] = tuple(dict.fromkeys(members))
        #: The last state of each member; None while it is not followed.
        self.member_states: dict[str, MemberState] = dict.fromkeys(self.members)
        self._aggregate: dict[str, Any] | None = None

    def aggregate(self, states: Mapping[str, MemberState]) -> dict[str, Any]:
        """The coordinator's state from its members'. By default: `groups` (member names
        by the `state` their state says, `unknown` for none), `running`, `members`,
        `availability` (running / members) and `state`: `running` when all run,
        `degraded` when some do, `down` when none does (or there are no members)."""
        groups: dict[str, list[str]] = {}
        for name, state in states.items():
            value = state.get("state") if state is not None else None
            groups.setdefault(value if isinstance(value, str) else "unknown", []).append(name)
        running = len(groups.get("running", ()))
        total = len(states)
        overall = "down" if not running else "running" if running == total else "degraded"
        return {
            "state": overall,
            "members": total,
            "running": running,
            "availability": running / total if total else 0.0,
            "groups": groups,
        }

    async def setup(self) -> None:
        """Publish the first aggregate (every member unknown) and follow the members;
        a subclass that overrides `setup` calls this one."""
        await self._member_changed(None, None)
        for member in self.members:
            self.background(self._follow(member), f"follow {member}")

    async def _follow(self, member: str) -> None:
        attempt = 0
        while True:
            try:
                async for change in self.follow(member):
                    attempt = 0
                    await self._member_changed(member, change.state)
                self.log.info("member %s ended its stream", member)
            except AgentError as exc:
                if attempt == 0:
                    self.log.warning("cannot follow member %s: %s", member, exc)
            await self._member_changed(member, None)
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _member_changed(self, member: str | None, state: MemberState) -> None:
        if member is not None:
            self.member_states[member] = state
        aggregate = self.aggregate(dict(self.member_states))
        if aggregate != self._aggregate:
            self._aggregate = aggregate
            await self.publish_state(aggregate)
