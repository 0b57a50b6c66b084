"""`docs/benchmarks.md`: the machine, the command, one row per figure beside its anchor.

The file is rewritten by every full run. Blocks written by people (the reading of the
profile, what is not measured yet) sit between `<!-- keep:NAME -->` markers and are
carried over from the previous file, so a new run refreshes the numbers without losing
the prose; the profile tables beside that prose always come from the run itself.
"""

from __future__ import annotations

import math
import os
import platform
import re
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # psutil ships no type information

from bench._profile import ProfileSummary
from bench._scenario import Figure, ScenarioResult

__all__ = ["Machine", "now", "render", "write_report"]

_KEEP = re.compile(r"<!-- keep:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /keep:(?P=name) -->", re.S)

_DEFAULT_BLOCKS = {
    "where-the-time-goes": "_Not written yet: read the profile tables below._\n",
    "not-measured": "_Nothing listed yet._\n",
}


@dataclass(frozen=True, slots=True)
class Machine:
    cores: int
    physical_cores: int | None
    cpu: str
    ram_gib: float
    system: str
    python: str
    sqlite: str
    tools: str
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def describe(cls) -> Machine:
        return cls(
            cores=os.cpu_count() or 0,
            physical_cores=psutil.cpu_count(logical=False),
            cpu=_cpu_model(),
            ram_gib=psutil.virtual_memory().total / 2**30,
            system=f"{platform.system()} {platform.release()}",
            python=platform.python_version(),
            sqlite=sqlite3.sqlite_version,
            tools=", ".join(
                v for v in (_version(["wrk", "--version"]), _version([_py_spy(), "--version"])) if v
            ),
            load_average=os.getloadavg(),
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _py_spy() -> str:
    return str(Path(sys.executable).parent / "py-spy")


def _version(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    text = (completed.stdout or completed.stderr).strip().splitlines()
    # `wrk debian/4.1.0-3+b2 [epoll] Copyright ...` → `wrk debian/4.1.0-3+b2`
    return text[0].split(" [", 1)[0].split(" Copyright", 1)[0][:60] if text else ""


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _result(figure: Figure, valid: bool) -> str:
    passed = figure.passed
    if passed is None:
        return "—"
    verdict = "pass" if passed else "**FAIL**"
    return verdict if valid else f"{verdict} (invalid run)"


def _figure_row(figure: Figure, valid: bool) -> str:
    anchor = figure.anchor
    ratio = figure.ratio
    cells = [
        figure.label,
        f"{_number(figure.value)} {figure.unit}",
        f"{_number(anchor.value)} {figure.unit}" if anchor else "—",
        anchor.label if anchor else "—",
        f"{ratio:.2f}x" if ratio is not None else "—",
        figure.goal.describe(figure.unit) if figure.goal else "—",
        _result(figure, valid),
    ]
    return "| " + " | ".join(cells) + " |"


def _profile_section(profile: ProfileSummary) -> list[str]:
    lines = [
        f"py-spy sampled the server at {profile.rate} Hz for {profile.seconds:.0f} s under the "
        f"same wrk load ({profile.samples:,} samples of busy threads, about "
        f"{profile.busy:.0%} of one core). Raw collapsed stacks: `{profile.raw_file}` in the "
        "artifacts folder (`var/bench/` by default; open it in speedscope).",
        "",
        "Self time by library (the frame on top of the stack):",
        "",
        "| library | share of samples |",
        "|---|---|",
    ]
    lines += [f"| {area} | {share:.1%} |" for area, share in profile.areas if share >= 0.005]
    lines += ["", "Shopfloor functions on the stack in the most samples (inclusive):", ""]
    lines += ["| function | share of samples |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile.ours]
    lines += ["", "Functions on top of the stack in the most samples (self):", ""]
    lines += ["| function | share of samples |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile.self_time]
    return lines


def _kept_blocks(previous: str) -> dict[str, str]:
    blocks = dict(_DEFAULT_BLOCKS)
    for match in _KEEP.finditer(previous):
        blocks[match["name"]] = match["body"]
    return blocks


def _keep(name: str, blocks: dict[str, str]) -> list[str]:
    return [f"<!-- keep:{name} -->", blocks[name].rstrip("\n"), f"<!-- /keep:{name} -->"]


def render(
    results: Sequence[ScenarioResult],
    *,
    machine: Machine,
    command: str,
    quick: bool,
    started: datetime,
    seconds: float,
    previous: str = "",
) -> str:
    blocks = _kept_blocks(previous)
    physical = f" ({machine.physical_cores} physical)" if machine.physical_cores else ""
    lines = [
        "# Benchmarks",
        "",
        "Written by the benchmark runner (`bench/`); do not edit by hand, except the blocks "
        "marked `keep`, which the next run carries over. Every figure and its anchor below "
        "come from the one run described here, on the same machine.",
        "",
        "## Run",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}, {seconds / 60:.1f} minutes",
        f"- command: `{command}`" + (" (quick mode: bounded, not for goals)" if quick else ""),
        f"- machine: {machine.cores} cores{physical}, {machine.cpu}, "
        f"{machine.ram_gib:.1f} GiB RAM, {machine.system}",
        f"- software: Python {machine.python}, SQLite {machine.sqlite}, {machine.tools}",
        "- load generators run on the same machine as the server, in their own processes; "
        "load average (1, 5, 15 min) when the run ended: "
        + ", ".join(f"{x:.2f}" for x in machine.load_average),
        "",
        "## Results",
        "",
        "| figure | Shopfloor | anchor | anchor is | ratio | goal | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        if result.error:
            lines.append(f"| {result.title} | error | — | — | — | — | **ERROR** |")
        lines += [_figure_row(figure, result.valid) for figure in result.figures]
    lines += ["", "## Scenarios", ""]
    for result in results:
        lines += [f"### {result.name}: {result.title}", ""]
        lines += [f"`{result.command}`, {result.seconds:.0f} s.", ""]
        if result.error:
            lines += [f"**Error:** `{result.error}`", ""]
        lines += [
            f"- {figure.label}: {figure.detail}" for figure in result.figures if figure.detail
        ]
        lines += [f"- {note}" for note in result.notes]
        lines += [
            f"- check {'ok' if c.ok else '**FAILED**'}: {c.label}"
            + (f" ({c.detail})" if c.detail else "")
            for c in result.checks
        ]
        lines.append("")
    lines += ["## Where the time goes", ""]
    lines += _keep("where-the-time-goes", blocks)
    profiles = [r for r in results if r.profile is not None]
    for result in profiles:
        assert result.profile is not None
        lines += ["", f"### Profile of this run ({result.name} scenario)", ""]
        lines += _profile_section(result.profile)
    lines += ["", "## Not measured yet", ""]
    lines += _keep("not-measured", blocks)
    return "\n".join(lines) + "\n"


def write_report(
    path: Path,
    results: Sequence[ScenarioResult],
    *,
    command: str,
    quick: bool,
    started: datetime,
    seconds: float,
) -> None:
    previous = path.read_text() if path.exists() else ""
    text = render(
        results,
        machine=Machine.describe(),
        command=command,
        quick=quick,
        started=started,
        seconds=seconds,
        previous=previous,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def now() -> datetime:
    return datetime.now(UTC)
