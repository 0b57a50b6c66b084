"""Shopfloor benchmarks: each figure measured side by side with its bare anchor.

`python -m bench` runs every scenario in full and writes `docs/benchmarks.md`
(`make bench`); `python -m bench --quick` runs bounded versions, as the test suite does.
See `bench/_scenario.py` for how to add a scenario.
"""

from bench import anchor
from bench._report import Machine, render
from bench._scenario import (
    Anchor,
    BenchContext,
    Check,
    Figure,
    Goal,
    Scenario,
    ScenarioResult,
    scenarios,
)
from bench.run import run_scenario

__all__ = [
    "Anchor",
    "BenchContext",
    "Check",
    "Figure",
    "Goal",
    "Machine",
    "Scenario",
    "ScenarioResult",
    "anchor",
    "render",
    "run_scenario",
    "scenarios",
]
