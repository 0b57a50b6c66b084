"""One organisation's relation graph in memory, and the check and expand that walk it
(pure: no I/O; the platform and the agents' cache run this same code).

What a tuple grants (docs/relations.md has the examples):

1. **Direct.** `S r O` grants `S r O`.
2. **Implied.** A tuple of a relation that implies `r` (the schema's `implied_by`)
   grants `r` too: `S controls O` grants `S reads O`.
3. **Usersets.** `G#m r O` grants `r` on `O` to every subject that holds `m` on `G`
   (`group:line-a#member reads agent:press-01`: every member of line-a reads press-01).
   A plain subject grants only itself: `group:line-a reads agent:press-01` is about the
   group object, not its members.
4. **A relation on a group applies to its members.** `S r G` and `O member G` grant
   `S r O` (`agent:cell-1 controls group:line-a` + `agent:press-01 member group:line-a`
   ⇒ `agent:cell-1 controls agent:press-01`), for every relation but `member`.
5. **Nested groups.** Membership is transitive: `X member G` and `G member H` make `X`
   a member of `H`; `G#member member H` makes the members of `G` members of `H` (`G`
   itself only if it is a member otherwise). Rules 3 and 4 see these memberships.

`check` searches breadth-first from the object, with a set of what it visited (a cycle
of groups ends the search instead of looping) and a limit on the tuples of a path; the
answer names the stored tuples of one shortest-found path, read from the subject to the
object. The subject's own memberships are computed once per check, when a `#member`
userset asks for them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidRelationTuple
from ._model import Change, RelationTuple, parse_object, split_subject
from ._schema import DEFAULT_SCHEMA, MEMBER, RelationSchema

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_EXPAND",
    "DEPTH_LIMIT_EXCEEDED",
    "NOT_RELATED",
    "CheckResult",
    "ExpandNode",
    "RelationGraph",
]

DEFAULT_MAX_DEPTH = 25
DEFAULT_MAX_EXPAND = 2000
#: Why a check was refused: no stored tuples grant it ...
NOT_RELATED = "not_related"
#: ... or none within the depth limit, and the search stopped there.
DEPTH_LIMIT_EXCEEDED = "depth_limit_exceeded"

# tuples by object, relation and subject, in the order they were added
_ByObject = dict[str, dict[str, dict[str, RelationTuple]]]
# group → {outer group: the tuple that puts it there}
_Edges = dict[str, dict[str, RelationTuple]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    allowed: bool
    #: The stored tuples that grant it, from the subject to the object; empty if refused.
    path: tuple[RelationTuple, ...]
    #: None when allowed; `not_related` or `depth_limit_exceeded` when refused.
    reason: str | None
    #: The revision of the graph the answer was read from.
    revision: int

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "allowed": self.allowed,
            "path": [item.to_json() for item in self.path],
            "revision": self.revision,
        }
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(eq=False)
class ExpandNode:
    """Who holds `relation` on `object`: `subjects` by the tuples that name them, and the
    usersets and groups whose holders hold it too (`children`, each with its tuple)."""

    relation: str
    object: str
    subjects: list[RelationTuple] = field(default_factory=list)
    children: list[tuple[RelationTuple, ExpandNode]] = field(default_factory=list)
    #: Shown elsewhere in the tree already (a cycle or a shared group): not expanded here.
    repeated: bool = False
    #: Not expanded (further): the depth or size limit of the expansion was reached.
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "relation": self.relation,
            "object": self.object,
            "subjects": [{"subject": t.subject, "relation": t.relation} for t in self.subjects],
            "children": [
                {"tuple": t.to_json(), "node": node.to_json()} for t, node in self.children
            ],
        }
        if self.repeated:
            data["repeated"] = True
        if self.truncated:
            data["truncated"] = True
        return data


class RelationGraph:
    """The tuples of one organisation, indexed for `check` and `expand`."""

    def __init__(
        self,
        schema: RelationSchema = DEFAULT_SCHEMA,
        tuples: Iterable[RelationTuple] = (),
        *,
        revision: int = 0,
    ) -> None:
        self.schema = schema
        self.revision = revision
        self._on: _ByObject = {}
        self._sets: _ByObject = {}  # the same, for userset subjects only
        self._parents: _Edges = {}  # X → {G: "X member G"}
        self._nested: _Edges = {}  # G → {H: "G#member member H"}
        self._count = 0
        for item in tuples:
            self.add(item)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, RelationTuple):
            return False
        return item.subject in self._on.get(item.object, {}).get(item.relation, {})

    def __iter__(self) -> Iterator[RelationTuple]:
        for relations in self._on.values():
            for subjects in relations.values():
                yield from subjects.values()

    # -- changes ------------------------------------------------------------------------

    def add(self, item: RelationTuple) -> bool:
        """Add a tuple; False if it was there already."""
        subjects = self._on.setdefault(item.object, {}).setdefault(item.relation, {})
        if item.subject in subjects:
            return False
        subjects[item.subject] = item
        self._count += 1
        found, userset = split_subject(item.subject)
        if userset is not None:
            self._sets.setdefault(item.object, {}).setdefault(item.relation, {})[item.subject] = (
                item
            )
        if item.relation == MEMBER:
            edges = self._parents if userset is None else self._nested
            edges.setdefault(found, {})[item.object] = item
        return True

    def remove(self, item: RelationTuple) -> bool:
        """Remove a tuple; False if it was not there."""
        relations = self._on.get(item.object)
        subjects = relations.get(item.relation) if relations else None
        if relations is None or subjects is None or subjects.pop(item.subject, None) is None:
            return False
        self._count -= 1
        _drop(self._on, item)
        found, userset = split_subject(item.subject)
        if userset is not None:
            self._sets.get(item.object, {}).get(item.relation, {}).pop(item.subject, None)
            _drop(self._sets, item)
        if item.relation == MEMBER:
            edges = self._parents if userset is None else self._nested
            outer = edges.get(found)
            if outer is not None:
                outer.pop(item.object, None)
                if not outer:
                    del edges[found]
        return True

    def apply(self, change: Change) -> bool:
        """Apply one change of the feed (adding what is there, or removing what is not,
        changes nothing: replaying a change is harmless)."""
        if change.op == "add":
            return self.add(change.tuple)
        return self.remove(change.tuple)

    def clear(self) -> None:
        self._on.clear()
        self._sets.clear()
        self._parents.clear()
        self._nested.clear()
        self._count = 0

    # -- check --------------------------------------------------------------------------

    def check(
        self, subject: str, relation: str, obj: str, *, max_depth: int = DEFAULT_MAX_DEPTH
    ) -> CheckResult:
        """Whether `subject` holds `relation` on `obj`, and the tuples that say so."""
        if isinstance(subject, str) and "#" in subject:
            raise InvalidRelationTuple(
                f"{subject!r}: a check asks about one object (type:id), not a userset",
                code="invalid_relation_subject",
            )
        subject = parse_object(subject)
        obj = parse_object(obj)
        self.schema.require(relation)
        search = _Search(self, subject, max_depth)
        path = search.membership(obj) if relation == MEMBER else search.relation(relation, obj)
        if path is not None:
            return CheckResult(True, path, None, self.revision)
        reason = DEPTH_LIMIT_EXCEEDED if search.cut else NOT_RELATED
        return CheckResult(False, (), reason, self.revision)

    # -- expand -------------------------------------------------------------------------

    def expand(
        self,
        relation: str,
        obj: str,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_entries: int = DEFAULT_MAX_EXPAND,
    ) -> tuple[ExpandNode, bool]:
        """The tree of who holds `relation` on `obj` (Zanzibar's expand), breadth-first,
        at most `max_depth` levels and `max_entries` subjects and nodes; returns the tree
        and whether it was cut short anywhere."""
        obj = parse_object(obj)
        self.schema.require(relation)
        root = ExpandNode(relation, obj)
        # (node, inherited: reached through a membership, depth)
        queue: deque[tuple[ExpandNode, bool, int]] = deque([(root, False, 0)])
        seen = {(relation, obj, False)}
        entries = 1
        cut = False
        while queue:
            node, inherited, depth = queue.popleft()
            if depth >= max_depth or entries >= max_entries:
                node.truncated = cut = True
                continue
            for item, child, child_inherited in self._expand_edges(node, inherited):
                if entries >= max_entries:
                    node.truncated = cut = True
                    break
                entries += 1
                if child is None:
                    node.subjects.append(item)
                    continue
                node.children.append((item, child))
                key = (child.relation, child.object, child_inherited)
                if key in seen:
                    child.repeated = True
                    continue
                seen.add(key)
                queue.append((child, child_inherited, depth + 1))
        return root, cut

    def _expand_edges(
        self, node: ExpandNode, inherited: bool
    ) -> Iterator[tuple[RelationTuple, ExpandNode | None, bool]]:
        """(tuple, None) for a subject the tuple names; (tuple, child node, inherited)
        for a userset or a group whose holders hold the relation too."""
        on = self._on.get(node.object, {})
        if node.relation == MEMBER:
            for item in on.get(MEMBER, {}).values():
                member, userset = split_subject(item.subject)
                if userset is None:
                    yield item, None, False
                if userset is not None or MEMBER in self._on.get(member, {}):
                    yield item, ExpandNode(MEMBER, member), False
            return
        for granting in self.schema.grants(node.relation):
            for item in on.get(granting, {}).values():
                holder, userset = split_subject(item.subject)
                if userset is None:
                    yield item, None, False
                else:
                    yield item, ExpandNode(userset, holder), False
        for group, item in self._groups_of(node.object, inherited):
            yield item, ExpandNode(node.relation, group), True

    def _groups_of(self, obj: str, inherited: bool) -> Iterator[tuple[str, RelationTuple]]:
        """The groups `obj` is directly in: by its own membership, and (once `obj` was
        reached as a group of the checked object) by `obj#member member G`."""
        yield from self._parents.get(obj, {}).items()
        if inherited:
            yield from self._nested.get(obj, {}).items()


def _drop(index: _ByObject, item: RelationTuple) -> None:
    """Forget the emptied entries of `item`'s object and relation."""
    relations = index.get(item.object)
    if relations is not None and not relations.get(item.relation, True):
        del relations[item.relation]
        if not relations:
            del index[item.object]


@dataclass(slots=True)
class _Step:
    """A state of the search and how it was reached: the tuple and the state before."""

    depth: int  # tuples from the checked object to here
    via: RelationTuple | None = None
    previous: _Step | None = None

    def chain(self) -> list[RelationTuple]:
        """The tuples from here back to the checked object."""
        found: list[RelationTuple] = []
        step: _Step | None = self
        while step is not None and step.via is not None:
            found.append(step.via)
            step = step.previous
        return found


class _Search:
    """One check: breadth-first over (relation, object) states from the object, with the
    subject's memberships computed once, when a `#member` userset needs them."""

    def __init__(self, graph: RelationGraph, subject: str, max_depth: int) -> None:
        self.graph = graph
        self.subject = subject
        self.max_depth = max_depth
        self.cut = False
        self._groups: dict[str, _Step] | None = None

    def groups(self) -> dict[str, _Step]:
        """Every group the subject is in (transitively), with the shortest path there."""
        if self._groups is not None:
            return self._groups
        graph = self.graph
        start = _Step(0)
        found: dict[str, _Step] = {}
        queue: deque[str] = deque()
        for group, item in graph._parents.get(self.subject, {}).items():
            found[group] = _Step(1, item, start)
            queue.append(group)
        while queue:
            group = queue.popleft()
            step = found[group]
            outer = graph._parents.get(group, {}), graph._nested.get(group, {})
            for edges in outer:
                for bigger, item in edges.items():
                    if bigger in found:
                        continue
                    if step.depth >= self.max_depth:
                        self.cut = True
                        continue
                    found[bigger] = _Step(step.depth + 1, item, step)
                    queue.append(bigger)
        self._groups = found
        return found

    def membership(self, group: str) -> tuple[RelationTuple, ...] | None:
        step = self.groups().get(group)
        return None if step is None else tuple(reversed(step.chain()))

    def relation(self, relation: str, obj: str) -> tuple[RelationTuple, ...] | None:
        graph = self.graph
        schema = graph.schema
        subject = self.subject
        limit = self.max_depth
        root = _Step(0)
        # (relation, object, inherited) → how it was reached
        seen: set[tuple[str, str, bool]] = {(relation, obj, False)}
        queue: deque[tuple[str, str, bool, _Step]] = deque([(relation, obj, False, root)])
        while queue:
            wanted, target, inherited, step = queue.popleft()
            on = graph._on.get(target)
            if on:
                sets = graph._sets.get(target, {})
                for granting in schema.grants(wanted):
                    subjects = on.get(granting)
                    if not subjects:
                        continue
                    direct = subjects.get(subject)
                    if direct is not None:
                        if step.depth < limit:
                            return (direct, *step.chain())
                        self.cut = True
                    for holder, item in sets.get(granting, {}).items():
                        group, userset = split_subject(holder)
                        assert userset is not None
                        if userset == MEMBER:
                            found = self.groups().get(group)
                            if found is None:
                                continue
                            if found.depth + step.depth < limit:
                                return (*reversed(found.chain()), item, *step.chain())
                            self.cut = True
                            continue
                        key = (userset, group, False)
                        if key not in seen:
                            if step.depth + 2 > limit:
                                self.cut = True
                                continue
                            seen.add(key)
                            queue.append((userset, group, False, _Step(step.depth + 1, item, step)))
            for group, item in graph._groups_of(target, inherited):
                key = (wanted, group, True)
                if key in seen:
                    continue
                if step.depth + 2 > limit:
                    self.cut = True
                    continue
                seen.add(key)
                queue.append((wanted, group, True, _Step(step.depth + 1, item, step)))
        return None
