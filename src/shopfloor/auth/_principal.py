"""The authenticated caller of a user-facing route: a user, or an agent."""

from __future__ import annotations

from dataclasses import dataclass

from shopfloor.registry import Role

from ._errors import Forbidden
from ._roles import Action, allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """A signed-in user (a Shopfloor token, the configured OIDC issuer), or an agent
    (an assertion signed with its certificate's key: `shopfloor.pki`'s
    `AgentAssertions`)."""

    subject: str  # user id, the issuer's `sub` for OIDC users, `agent:<name>` for agents
    email: str
    org_id: str | None
    role: Role | None
    platform_admin: bool
    source: str  # "local", "oidc" or "agent"
    #: What the caller may do when no role says it (agents): `AGENT_GRANTS`.
    grants: frozenset[Action] = frozenset()

    def can(self, action: Action) -> bool:
        return action in self.grants or allowed(self.role, action)

    @property
    def agent(self) -> str | None:
        """The agent's name, when the caller is an agent of `org_id`."""
        if self.source != "agent":
            return None
        return self.subject.removeprefix("agent:")

    def require(self, action: Action) -> str:
        """The caller's organisation id, if its role allows `action`; Forbidden otherwise."""
        if self.org_id is None:
            raise Forbidden("this account belongs to no organisation", code="no_organisation")
        if not self.can(action):
            who = f"agent {self.agent}" if self.agent is not None else f"role {self.role}"
            raise Forbidden(
                f"{who} may not {action.value.replace('_', ' ')}",
                code="insufficient_role",
            )
        return self.org_id

    def require_org(self) -> str:
        return self.require(Action.READ)
