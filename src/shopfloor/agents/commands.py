"""`shopfloor agents ...`: agents from the command line, on the platform's database.

The CLI changes desired state only; the server running the `agents` service acts on it
at its next reconcile pass (`SHOPFLOOR_AGENT_RECONCILE_INTERVAL`, 2 s by default).
Logs are the API's (`GET /api/v1/agents/{name}/logs`): the runtime's capture is the
server's to read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.table import Table

from shopfloor._logging import configure_logging
from shopfloor.console import console, load_settings, out
from shopfloor.core import ShopfloorError, create_engine, migrate
from shopfloor.core.capability import database_url

from ._agents import plan_change
from ._spec import DesiredState, parse_spec
from ._store import AgentRecord, AgentStore
from ._tables import MIGRATIONS

__all__ = ["agents_app"]

agents_app = typer.Typer(help="Deploy, list and operate agents.", no_args_is_help=True)
T = TypeVar("T")
Org = Annotated[str, typer.Option("--org", help="Organisation id.")]


@asynccontextmanager
async def _store() -> AsyncIterator[AgentStore]:
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")
    engine = create_engine(database_url(settings))
    try:
        await migrate(engine, [MIGRATIONS])
        yield AgentStore(engine)
    finally:
        await engine.dispose()


def _settle() -> float:
    from .capability import AgentsSettings

    return load_settings().section(AgentsSettings).upgrade_settle_seconds


def _run(work: Callable[[AgentStore], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _store() as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except ShopfloorError as exc:
        console.print(f"[red]{exc}[/red] ({exc.code})")
        raise typer.Exit(1) from None


def _summary(record: AgentRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "desired_state": record.spec.desired_state.value,
        "state": record.status.state.value,
        "version": record.status.version or record.spec.version,
        "restarts": record.status.restarts,
        "error": record.status.error,
        "deleting": record.deleting,
    }


@agents_app.command("list")
def list_agents(org: Org) -> None:
    """The organisation's agents and what was last seen of them."""

    async def work(store: AgentStore) -> list[AgentRecord]:
        return (await store.page(org, offset=0, limit=10_000)).items

    records = _run(work)
    table = Table("name", "desired", "state", "version", "restarts", "error")
    for record in records:
        row = _summary(record)
        table.add_row(
            row["name"], row["desired_state"], row["state"] + (" (deleting)" * record.deleting),
            row["version"], str(row["restarts"]), row["error"][:60],
        )  # fmt: skip
    out.print(table)


@agents_app.command("show")
def show(org: Org, name: str) -> None:
    """One agent's spec and status, as JSON."""
    record = _run(lambda store: store.get(org, name))
    spec = record.spec.model_dump(mode="json")
    out.print_json(json.dumps({**_summary(record), "spec": spec}, default=str))


@agents_app.command("apply")
def apply(
    org: Org,
    spec_file: Annotated[Path, typer.Option("--file", "-f", help="A spec, YAML or JSON.")],
) -> None:
    """Create the agent the file describes, or change it to the file (an upgrade when
    its version, image, command or module differ)."""
    data = yaml.safe_load(spec_file.read_text())
    if not isinstance(data, dict):
        console.print("[red]the file holds no spec (a mapping)[/red]")
        raise typer.Exit(1)

    async def work(store: AgentStore) -> str:
        spec = parse_spec(data)
        try:
            record = await store.get(org, spec.name)
        except ShopfloorError:
            await store.create(org, spec)
            return "created"
        changed, previous, rollout = plan_change(record, data, settle=_settle())
        await store.change_spec(record, changed, previous_spec=previous, rollout=rollout)
        return "changed"

    console.print(f"agent {data.get('name')} {_run(work)}")


def _desired(org: str, name: str, state: DesiredState) -> None:
    async def work(store: AgentStore) -> None:
        record = await store.get(org, name)
        changes = {"desired_state": state.value}
        spec, previous, rollout = plan_change(record, changes, settle=_settle())
        await store.change_spec(record, spec, previous_spec=previous, rollout=rollout)

    _run(work)
    console.print(f"agent {name}: desired state {state.value}")


@agents_app.command("sleep")
def sleep(org: Org, name: str) -> None:
    """Stop the agent and keep it."""
    _desired(org, name, DesiredState.STOPPED)


@agents_app.command("wake")
def wake(org: Org, name: str) -> None:
    """Start a sleeping agent again."""
    _desired(org, name, DesiredState.RUNNING)


@agents_app.command("restart")
def restart(org: Org, name: str) -> None:
    """Restart the agent's current version."""
    _run(lambda store: store.ask_restart(org, name))
    console.print(f"agent {name}: restart asked")


@agents_app.command("upgrade")
def upgrade(
    org: Org,
    name: str,
    version: Annotated[str, typer.Option(help="The new version.")],
    image: Annotated[str | None, typer.Option(help="A new image.")] = None,
) -> None:
    """Roll the agent to a new version; rolled back unless healthy in time."""

    async def work(store: AgentStore) -> None:
        record = await store.get(org, name)
        changes: dict[str, Any] = {"version": version}
        if image:
            changes["image"] = image
        spec, previous, rollout = plan_change(record, changes, settle=_settle())
        await store.change_spec(record, spec, previous_spec=previous, rollout=rollout)

    _run(work)
    console.print(f"agent {name}: upgrade to {version} asked")


@agents_app.command("delete")
def delete(org: Org, name: str) -> None:
    """Stop the agent and remove its credentials (done by the running server)."""

    async def work(store: AgentStore) -> None:
        record = await store.get(org, name)
        if not record.deleting:
            await store.mark_deleting(record)

    _run(work)
    console.print(f"agent {name}: deletion asked")
