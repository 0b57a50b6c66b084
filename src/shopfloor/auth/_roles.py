"""Who may do what. The same table, in words, is docs/roles.md."""

from __future__ import annotations

import enum

from shopfloor.registry import Role


class Action(enum.StrEnum):
    READ = "read"  # things, channels, connections, stored messages, relations of the org
    MANAGE_REGISTRY = "manage_registry"  # create, change, delete things/channels; connect
    MANAGE_THING_KEYS = "manage_thing_keys"  # see and rotate thing keys
    MANAGE_USERS = "manage_users"  # create, change, delete users of the organisation
    OPERATE_AGENTS = "operate_agents"  # sleep, wake and restart agents
    MANAGE_AGENTS = "manage_agents"  # create, change, upgrade and delete agents
    MANAGE_RELATIONS = "manage_relations"  # add and delete relation tuples, set the schema
    MANAGE_FLOWS = "manage_flows"  # create, change, delete and restore flow documents
    OPERATE_FLOWS = "operate_flows"  # start, stop, pause, resume flows; replay dead letters
    MANAGE_DASHBOARDS = "manage_dashboards"  # create, change, import and delete dashboards


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.ENGINEER: frozenset(
        {
            Action.READ,
            Action.MANAGE_REGISTRY,
            Action.MANAGE_THING_KEYS,
            Action.OPERATE_AGENTS,
            Action.MANAGE_AGENTS,
            Action.MANAGE_RELATIONS,
            Action.MANAGE_FLOWS,
            Action.OPERATE_FLOWS,
            Action.MANAGE_DASHBOARDS,
        }
    ),
    Role.OPERATOR: frozenset({Action.READ, Action.OPERATE_AGENTS, Action.OPERATE_FLOWS}),
    Role.VIEWER: frozenset({Action.READ}),
}


#: What an agent signed in with its certificate may do (docs/roles.md): read its
#: organisation (the relation graph above all, which its calls are checked against).
#: Reporting its own state is its own, not an action of a role.
AGENT_GRANTS: frozenset[Action] = frozenset({Action.READ})


def allowed(role: Role | None, action: Action) -> bool:
    return role is not None and action in PERMISSIONS[role]
