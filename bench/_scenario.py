"""What a scenario is, what it returns, and the registry of scenarios by name.

A scenario measures one or more figures of Shopfloor and, in the same run and on the
same machine, the anchor each figure is compared with (a bare ASGI app, the bare
database). It also returns sanity checks: they say whether the measurement itself is
valid (every accepted message stored, latencies above zero...), never whether a goal
was met. Goals are judged by `Figure.passed` and only reported.

New scenarios subclass `Scenario` with a name, `class MqttScenario(Scenario,
name="mqtt")`, and are imported by `bench.scenarios` so that the runner and the quick
test find them.
"""

from __future__ import annotations

import abc
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

if TYPE_CHECKING:
    from bench._profile import ProfileSummary

__all__ = [
    "Anchor",
    "BenchContext",
    "Check",
    "Figure",
    "Goal",
    "Scenario",
    "ScenarioResult",
    "scenarios",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    """A target for a figure: its value (or its ratio to the anchor) against a threshold."""

    kind: Literal["at_most", "below", "at_least", "ratio_at_least"]
    threshold: float

    def met(self, figure: Figure) -> bool:
        if self.kind == "ratio_at_least":
            ratio = figure.ratio
            return ratio is not None and ratio >= self.threshold
        if not math.isfinite(figure.value):
            return False
        if self.kind == "at_most":
            return figure.value <= self.threshold
        if self.kind == "below":
            return figure.value < self.threshold
        return figure.value >= self.threshold

    def describe(self, unit: str) -> str:
        if self.kind == "ratio_at_least":
            return f"≥ {self.threshold:.0%} of anchor"
        sign = {"at_most": "≤", "below": "<", "at_least": "≥"}[self.kind]
        return f"{sign} {_number(self.threshold)} {unit}".rstrip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """The bare counterpart of a figure, measured in the same run."""

    label: str
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One measured number: `key` is stable (scenario.figure), `label` is for people."""

    key: str
    label: str
    value: float
    unit: str
    anchor: Anchor | None = None
    goal: Goal | None = None
    detail: str = ""

    @property
    def ratio(self) -> float | None:
        if self.anchor is None or not self.anchor.value or not math.isfinite(self.value):
            return None
        return self.value / self.anchor.value

    @property
    def passed(self) -> bool | None:
        """True or False against the goal; None for a figure reported without a goal."""
        return None if self.goal is None else self.goal.met(self)


@dataclass(frozen=True, slots=True)
class Check:
    """A condition the measurement needs to be valid, e.g. `stored == accepted`."""

    label: str
    ok: bool
    detail: str = ""


@dataclass(slots=True, kw_only=True)
class ScenarioResult:
    name: str
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: ProfileSummary | None = None
    seconds: float = 0.0
    error: str = ""

    def check(self, label: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(label, bool(ok), detail))
        return bool(ok)

    def figure(self, key: str) -> Figure:
        for figure in self.figures:
            if figure.key == key:
                return figure
        raise KeyError(key)

    @property
    def valid(self) -> bool:
        return not self.error and all(check.ok for check in self.checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchContext:
    """How this run goes: quick (bounded, for `make test`) or full, and where to work."""

    quick: bool
    work_dir: Path
    postgres_url: str
    artifacts_dir: Path | None = None
    profile: bool = True
    python: str = sys.executable

    def pick(self, quick: _T, full: _T) -> _T:
        return quick if self.quick else full

    def command(self, scenario: str) -> str:
        return f"python -m bench {'--quick ' if self.quick else ''}--scenarios {scenario}"


class Scenario(abc.ABC):
    """One benchmark. Subclass with `name="..."` to register it; `title` is for the report."""

    name: ClassVar[str]
    title: ClassVar[str]
    _registry: ClassVar[dict[str, type[Scenario]]] = {}

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:
            return
        taken = Scenario._registry.get(name)
        if taken is not None:
            raise TypeError(f"scenario {name!r} is already {taken.__qualname__}")
        Scenario._registry[name] = cls
        cls.name = name

    @abc.abstractmethod
    def run(self, ctx: BenchContext, result: ScenarioResult) -> None:
        """Measure, appending figures, checks and notes to `result`.

        Every server and load generator started here is stopped before returning, also
        when measuring fails.
        """


def scenarios() -> dict[str, type[Scenario]]:
    """Registered scenarios by name, in the order they were defined."""
    import bench.scenarios  # noqa: F401 - registers the built-in scenarios

    return dict(Scenario._registry)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"
