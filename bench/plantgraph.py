"""A plant-sized relation graph for the relations benchmark and its performance test:
about 100,000 tuples.

50 lines of 200 machines; lines in 5 halls, halls in the plant, and a cycle (the plant
is also a member of hall 0); a cell controller per line, an operators' group per line
reading it (through `#member`), calls and follows between neighbouring machines, and
seven tools writing each machine directly.
"""

from __future__ import annotations

import random

from shopfloor.auth.relations import RelationTuple

LINES, MACHINES, HALLS, TOOLS = 50, 200, 5, 7


def machine(line: int, index: int) -> str:
    return f"agent:l{line}-m{index}"


def plant_tuples() -> list[RelationTuple]:
    found: list[tuple[str, str, str]] = []
    for line in range(LINES):
        group = f"group:line-{line}"
        found.append((group, "member", f"group:hall-{line % HALLS}"))
        found.append((f"agent:cell-{line}", "controls", group))
        found.append((f"group:ops-{line}#member", "reads", group))
        found.extend((f"user:op-{line}-{k}", "member", f"group:ops-{line}") for k in range(20))
        for index in range(MACHINES):
            name = machine(line, index)
            found.append((name, "member", group))
            found.append((name, "calls", machine(line, (index + 1) % MACHINES)))
            found.append((name, "follows", machine(line, (index - 1) % MACHINES)))
            found.extend(
                (f"agent:tool-{(line * MACHINES + index + k) % 997}", "writes", name)
                for k in range(TOOLS)
            )
    found.extend((f"group:hall-{h}", "member", "group:plant") for h in range(HALLS))
    found.append(("group:plant", "member", "group:hall-0"))  # a cycle
    found.append(("agent:plant-lead", "reads", "group:plant"))
    return [RelationTuple(s, r, o) for s, r, o in found]


def questions(count: int, seed: int = 7) -> list[tuple[str, str, str, bool | None]]:
    """(subject, relation, object, expected or None) for a mix of allowed and refused."""
    rng = random.Random(seed)
    found: list[tuple[str, str, str, bool | None]] = []
    for n in range(count):
        line, index = rng.randrange(LINES), rng.randrange(MACHINES)
        other = (line + 1 + rng.randrange(LINES - 1)) % LINES
        target = machine(line, index)
        kind = n % 10
        if kind == 0:
            found.append((f"agent:cell-{line}", "controls", target, True))
        elif kind == 1:
            found.append((f"agent:cell-{other}", "controls", target, False))
        elif kind == 2:
            found.append((f"user:op-{line}-{rng.randrange(20)}", "reads", target, True))
        elif kind == 3:
            found.append((f"user:op-{other}-{rng.randrange(20)}", "writes", target, False))
        elif kind == 4:
            found.append((machine(line, (index - 1) % MACHINES), "calls", target, True))
        elif kind == 5:
            found.append(("agent:plant-lead", "reads", target, True))
        elif kind == 6:
            tool = f"agent:tool-{(line * MACHINES + index) % 997}"
            found.append((tool, "reads", target, True))
        elif kind == 7:
            found.append((target, "member", "group:plant", True))
        elif kind == 8:
            found.append(("agent:stranger", "calls", target, False))
        else:
            found.append((f"user:op-{line}-0", "member", "group:plant", False))
    return found
