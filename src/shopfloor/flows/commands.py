"""`shopfloor flows check FILE...`: a flow document checked as the server would, offline.

Every problem of every file is printed (path, code, message); the exit status is 1 when
any file has one. It needs no server, no settings and no data dir, so a plant engineer
can check a flow before it is sent, or a hand-edited file before the server looks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shopfloor.console import console, out

from ._document import decode_flow, read_flow
from ._errors import InvalidFlow

__all__ = ["flows_app"]

flows_app = typer.Typer(help="Check flow documents.", no_args_is_help=True)


@flows_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Flow documents (.json, .yaml, .yml).")],
) -> None:
    """Check flow documents; print every problem, exit 1 if any file has one."""
    failed = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            console.print(f"[red]{escape(str(path))}: cannot be read: {escape(str(exc))}[/red]")
            failed = True
            continue
        media = "application/yaml" if path.suffix.lower() in (".yaml", ".yml") else None
        try:
            doc = read_flow(decode_flow(data, media))
        except InvalidFlow as exc:
            failed = True
            out.print(f"{escape(str(path))}: {len(exc.problems)} problem(s)")
            for problem in exc.problems:
                where = problem.path or "(document)"
                out.print(f"  {escape(where)}: {escape(problem.code)}: {escape(problem.message)}")
            continue
        out.print(f"{escape(str(path))}: flow {escape(doc.id)} is valid ({len(doc.tasks)} tasks)")
    if failed:
        raise typer.Exit(1)
