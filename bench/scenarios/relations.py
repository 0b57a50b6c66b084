"""Relation checks on a plant-sized graph: about 100,000 tuples with nested groups.

`bench.plantgraph` builds the graph (50 lines of 200 machines, lines in halls, halls in
the plant, a cycle of groups, cell controllers, operators' groups reading through
`#member`, calls and follows between machines, tools writing machines) and a mix of
questions, allowed and refused, each with its expected answer. The figure: the check of
the in-memory `RelationGraph` every process and every agent's `RelationCache` answer
from (`check(subject, relation, object)`, the path found too), per question.

The anchor, in the same run: the same questions as a lookup of the `(subject,
relation, object)` triple in a Python set of the stored tuples — what a check would
cost if no relation were implied and no group nested, the floor of any answer.
"""

from __future__ import annotations

import time

from bench._scenario import Anchor, BenchContext, Figure, Scenario, ScenarioResult
from bench._stats import percentile
from bench.plantgraph import plant_tuples, questions
from shopfloor.auth.relations import RelationGraph

__all__ = ["RelationsScenario"]


class RelationsScenario(Scenario, name="relations"):
    title = "Relations: a check on 100,000 tuples with nested groups (in memory)"

    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        items = plant_tuples()
        started = time.perf_counter()
        graph = RelationGraph(tuples=items)
        built = time.perf_counter() - started
        asked = questions(ctx.pick(2_000, 50_000))
        stored = {(t.subject, t.relation, t.object) for t in items}
        for subject, relation, obj, _ in asked[:500]:  # warm up
            graph.check(subject, relation, obj)
        samples, floors, wrong = [], [], 0
        for subject, relation, obj, expected in asked:
            start = time.perf_counter_ns()
            answer = graph.check(subject, relation, obj)
            samples.append((time.perf_counter_ns() - start) / 1e3)
            wrong += answer.allowed is not expected
            start = time.perf_counter_ns()
            _ = (subject, relation, obj) in stored
            floors.append((time.perf_counter_ns() - start) / 1e3)
        for name, q in (("p50", 50), ("p99", 99)):
            result.figures.append(
                Figure(
                    key=f"relations.check_{name}",
                    label=f"check on {len(items):,} tuples, {name}",
                    value=percentile(samples, q),
                    unit="µs",
                    anchor=Anchor(
                        label=f"set lookup of the tuple, {name}", value=percentile(floors, q)
                    ),
                    detail=f"{len(asked):,} questions, about half refused; graph built "
                    f"in {built:.2f} s",
                )
            )
        result.check("every answer as expected", wrong == 0, f"{wrong} wrong")
        result.check("times are positive", min(samples) > 0 and len(items) >= 100_000)
