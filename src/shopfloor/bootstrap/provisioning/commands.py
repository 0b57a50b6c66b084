"""`shopfloor provision batch devices.csv`: provision many devices through the API.

It talks to a running server over HTTP, as an engineer's laptop would, so that every
process of the deployment hears of the new things. Each row is one device; a bad row
is recorded in the result file and never stops the others. Rows are sent a few at a
time; a busy or unavailable server (429, 503) is retried after its `Retry-After`.

CSV columns: `external_id`, `external_key`, `name`, optional `template`; every other
column is a template variable of that row (an empty cell is no variable).
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shopfloor.console import console, out

__all__ = ["BatchRow", "RowResult", "provision_app", "provision_rows", "read_rows"]

provision_app = typer.Typer(help="Provision devices from templates.", no_args_is_help=True)


@provision_app.callback()
def _group() -> None:
    """Provision devices from templates (through a running server's API)."""


KNOWN_COLUMNS = ("external_id", "external_key", "name", "template")
RESULT_COLUMNS = ("row", "external_id", "status", "thing_id", "http_status", "code", "message")
_RETRIES = 5


@dataclass(frozen=True, slots=True)
class BatchRow:
    number: int  # the line's number among the data rows, from 1
    fields: Mapping[str, str]

    @property
    def external_id(self) -> str:
        return self.fields.get("external_id", "").strip()

    def body(self, default_template: str | None) -> dict[str, Any] | str:
        """The provisioning request of this row, or why the row cannot be one."""
        missing = [c for c in ("external_id", "external_key", "name") if not self.fields.get(c)]
        if missing:
            return f"missing {', '.join(missing)}"
        template = self.fields.get("template") or default_template
        variables = {
            key: value for key, value in self.fields.items()
            if key not in KNOWN_COLUMNS and key and value
        }  # fmt: skip
        body: dict[str, Any] = {
            "external_id": self.external_id,
            "external_key": self.fields["external_key"].strip(),
            "name": self.fields["name"].strip(),
            "variables": variables,
        }
        if template:
            body["template"] = template
        return body


@dataclass(frozen=True, slots=True)
class RowResult:
    row: int
    external_id: str
    status: str  # "created" or "failed"
    thing_id: str = ""
    http_status: int | None = None
    code: str = ""
    message: str = ""

    def as_csv(self) -> dict[str, str]:
        return {
            "row": str(self.row),
            "external_id": self.external_id,
            "status": self.status,
            "thing_id": self.thing_id,
            "http_status": "" if self.http_status is None else str(self.http_status),
            "code": self.code,
            "message": self.message,
        }


def read_rows(path: Path) -> list[BatchRow]:
    with path.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        if reader.fieldnames is None or "external_id" not in reader.fieldnames:
            raise ValueError(f"{path}: the first line must name the columns, external_id first")
        return [
            BatchRow(number, {k.strip(): (v or "").strip() for k, v in row.items() if k})
            for number, row in enumerate(reader, start=1)
        ]


async def provision_rows(
    client: httpx.AsyncClient,
    rows: Iterable[BatchRow],
    *,
    default_template: str | None = None,
    concurrency: int = 4,
    on_result: Callable[[RowResult], None] = lambda _result: None,
) -> list[RowResult]:
    """Provision each row through `POST /api/v1/provision`; results in row order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(row: BatchRow) -> RowResult:
        async with gate:
            result = await _provision_one(client, row, default_template)
        on_result(result)
        return result

    return list(await asyncio.gather(*(one(row) for row in rows)))


async def _provision_one(
    client: httpx.AsyncClient, row: BatchRow, default_template: str | None
) -> RowResult:
    body = row.body(default_template)
    if isinstance(body, str):
        return RowResult(row.number, row.external_id, "failed", code="invalid_row", message=body)
    for attempt in range(_RETRIES + 1):
        try:
            response = await client.post("/api/v1/provision", json=body)
        except httpx.HTTPError as exc:
            if attempt == _RETRIES:
                return RowResult(
                    row.number, row.external_id, "failed", code="unreachable",
                    message=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
            await asyncio.sleep(min(0.2 * 2.0**attempt, 5.0))
            continue
        if response.status_code in (429, 503) and attempt < _RETRIES:
            await asyncio.sleep(_retry_after(response, attempt))
            continue
        break
    if response.status_code == 201:
        thing_id = str(response.json()["thing"]["id"])
        return RowResult(row.number, row.external_id, "created", thing_id, 201)
    code, message = _error_of(response)
    return RowResult(row.number, row.external_id, "failed", "", response.status_code, code, message)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(str(response.headers.get("retry-after", ""))), 30.0)
    except ValueError:
        return min(0.2 * 2.0**attempt, 5.0)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200]


def write_results(path: Path, results: Iterable[RowResult]) -> None:
    temporary = path.with_name(path.name + ".part")
    with temporary.open("w", newline="", encoding="utf-8") as target:
        writer = csv.DictWriter(target, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(result.as_csv() for result in results)
    temporary.replace(path)


@provision_app.command("batch")
def batch(
    devices: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV of devices.")],
    url: Annotated[
        str, typer.Option(envvar="SHOPFLOOR_URL", help="The server's base URL.")
    ] = "http://127.0.0.1:8000",
    template: Annotated[
        str | None, typer.Option(help="Template of rows without a `template` column value.")
    ] = None,
    results: Annotated[
        Path | None, typer.Option(help="Result file (default: <devices>.results.csv).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="SHOPFLOOR_TOKEN", help="A bearer token.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Sign in with this account instead.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Requests in flight.")] = 4,
) -> None:
    """Provision every device of a CSV file; one result line per row."""
    try:
        rows = read_rows(devices)
    except (OSError, ValueError, csv.Error) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    target = results or devices.with_name(devices.stem + ".results.csv")
    token = token or _sign_in(url, email)
    done = asyncio.run(_run(url, token, rows, template, concurrency))
    write_results(target, done)
    failed = sum(result.status != "created" for result in done)
    out.print(f"{len(done) - failed} created, {failed} failed; results in {target}")
    raise typer.Exit(1 if failed else 0)


async def _run(
    url: str, token: str, rows: list[BatchRow], template: str | None, concurrency: int
) -> list[RowResult]:
    columns = (
        TextColumn("provisioning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
    )
    headers = {"Authorization": f"Bearer {token}"}
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("rows", total=len(rows), failed=0)
        failed = 0

        def advance(result: RowResult) -> None:
            nonlocal failed
            failed += result.status != "created"
            progress.update(task, advance=1, failed=failed)

        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            return await provision_rows(
                client, rows, default_template=template, concurrency=concurrency,
                on_result=advance,
            )  # fmt: skip


def _sign_in(url: str, email: str | None) -> str:
    if not email:
        console.print("[red]Give --token (or SHOPFLOOR_TOKEN), or --email to sign in.[/red]")
        raise typer.Exit(2)
    password = os.environ.get("SHOPFLOOR_PASSWORD") or typer.prompt("Password", hide_input=True)
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/api/v1/auth/token",
            json={"email": email, "password": password},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]Cannot reach {url}: {exc}[/red]")
        raise typer.Exit(1) from exc
    if response.status_code != 200:
        console.print(f"[red]Sign-in refused: {_error_of(response)[1]}[/red]")
        raise typer.Exit(1)
    return str(response.json()["access_token"])
