"""The authenticated caller of a user-facing route."""

from __future__ import annotations

from dataclasses import dataclass

from shopfloor.registry import Role

from ._errors import Forbidden
from ._roles import Action, allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """A signed-in user: from a Shopfloor token or from the configured OIDC issuer."""

    subject: str  # user id, or the issuer's `sub` for OIDC users
    email: str
    org_id: str | None
    role: Role | None
    platform_admin: bool
    source: str  # "local" or "oidc"

    def can(self, action: Action) -> bool:
        return allowed(self.role, action)

    def require(self, action: Action) -> str:
        """The caller's organisation id, if its role allows `action`; Forbidden otherwise."""
        if self.org_id is None:
            raise Forbidden("this account belongs to no organisation", code="no_organisation")
        if not self.can(action):
            raise Forbidden(
                f"role {self.role} may not {action.value.replace('_', ' ')}",
                code="insufficient_role",
            )
        return self.org_id

    def require_org(self) -> str:
        return self.require(Action.READ)
