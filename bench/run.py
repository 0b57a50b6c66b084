"""The benchmark runner: `python -m bench [--quick] [--scenarios a,b] [--output FILE]`.

A full run (the default, `make bench`) writes `docs/benchmarks.md`; a quick run writes
a report only when given `--output`, so that bounded numbers never replace full ones.
The exit status is 1 when a scenario failed to measure (error or failed sanity check),
not when a figure misses its goal: goals are reported, pass or fail, in the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._report import now, write_report
from bench._scenario import BenchContext, ScenarioResult, scenarios

__all__ = ["main", "run_scenario"]

logger = logging.getLogger("bench")

DEFAULT_OUTPUT = Path("docs/benchmarks.md")
DEFAULT_ARTIFACTS = Path("var/bench")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def run_scenario(name: str, ctx: BenchContext, *, catch: bool = True) -> ScenarioResult:
    """Run one registered scenario; with `catch`, an exception becomes `result.error`."""
    scenario = scenarios()[name]
    result = ScenarioResult(name=name, title=scenario.title, command=ctx.command(name))
    started = time.monotonic()
    try:
        scenario().run(ctx, result)
    except Exception as exc:
        if not catch:
            raise
        logger.exception("scenario %s failed", name)
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds = time.monotonic() - started
    return result


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="bounded runs of a few seconds")
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"report file (full runs default to {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=DEFAULT_ARTIFACTS,
        help="folder for profiles and server logs kept after the run",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SHOPFLOOR_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a database on the PostgreSQL server to connect to; the readers scenario "
        "creates and drops its own database there",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parse(args_list)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /metrics poll
    registered = scenarios()
    if args.list:
        for name, scenario in registered.items():
            print(f"{name:10} {scenario.title}")
        return
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()] or list(registered)
    unknown = [n for n in names if n not in registered]
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(registered)}")
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)
    started_at = now()
    started = time.monotonic()
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="shopfloor-bench-") as work:
        ctx = BenchContext(
            quick=args.quick,
            work_dir=Path(work),
            postgres_url=args.postgres_url,
            artifacts_dir=args.artifacts.resolve(),
            profile=not args.no_profile,
        )
        for name in names:
            logger.info("scenario %s (%s)", name, "quick" if args.quick else "full")
            result = run_scenario(name, ctx)
            results.append(result)
            _print(result)
    command = shlex.join(["python", "-m", "bench", *args_list])
    if output is not None:
        write_report(
            output,
            results,
            command=command,
            quick=args.quick,
            started=started_at,
            seconds=time.monotonic() - started,
        )
        logger.info("wrote %s", output)
    if not all(result.valid for result in results):
        sys.exit(1)


def _print(result: ScenarioResult) -> None:
    print(f"== {result.name}: {result.title} ({result.seconds:.0f} s)")
    if result.error:
        print(f"   ERROR {result.error}")
    for figure in result.figures:
        anchor = f" | anchor {figure.anchor.value:,.2f}" if figure.anchor else ""
        ratio = f" | ratio {figure.ratio:.2f}" if figure.ratio is not None else ""
        verdict = {None: "", True: " | pass", False: " | FAIL"}[figure.passed]
        print(f"   {figure.label}: {figure.value:,.2f} {figure.unit}{anchor}{ratio}{verdict}")
    for check in result.checks:
        print(f"   check {'ok' if check.ok else 'FAILED'}: {check.label} {check.detail}")
    sys.stdout.flush()
