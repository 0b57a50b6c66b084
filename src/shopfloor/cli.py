"""`shopfloor` command line: run the server and administer it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from shopfloor import __version__
from shopfloor._logging import configure_logging
from shopfloor.demo import DemoPlant
from shopfloor.settings import Settings

app = typer.Typer(
    name="shopfloor",
    help="Shopfloor: an open industrial agent and IoT platform.",
    no_args_is_help=True,
    add_completion=False,
)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
console = Console(stderr=True)
# soft_wrap: ids and keys must print whole, whatever the terminal width.
out = Console(soft_wrap=True, highlight=False)


class PortInUse(Exception):
    pass


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line options taking precedence."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        console.print("[red]Invalid settings:[/red]")
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "settings"
            console.print(f"  SHOPFLOOR_{field.upper()}: {error['msg']}")
        raise typer.Exit(2) from exc


def bind_socket(host: str, port: int, *, option: str, env: str) -> socket.socket:
    """Bind now, before anything slow starts, so a taken port fails at once and clearly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; without it Nagle held every response body ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use; choose another with {option} or {env}"
            ) from exc
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


@app.command()
def serve(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder [env: SHOPFLOOR_DATA_DIR].")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port [env: SHOPFLOOR_HTTP_PORT; default 8000].")
    ] = None,
    http_host: Annotated[
        str | None, typer.Option(help="HTTP bind address [env: SHOPFLOOR_HTTP_HOST].")
    ] = None,
    mqtt_port: Annotated[
        int | None,
        typer.Option(help="Embedded MQTT broker port [env: SHOPFLOOR_MQTT_PORT; default 1883]."),
    ] = None,
    services: Annotated[
        str | None,
        typer.Option(help="Comma-separated services to run [env: SHOPFLOOR_SERVICES]."),
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Seed a demo plant on an empty data dir and print its keys.")
    ] = False,
) -> None:
    """Run the Shopfloor server (embedded defaults: SQLite, in-process bus)."""
    settings = load_settings(
        data_dir=data_dir,
        http_port=http_port,
        http_host=http_host,
        mqtt_port=mqtt_port,
        services=services,
    )
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        sock = bind_socket(
            settings.http_host,
            settings.http_port,
            option="--http-port",
            env="SHOPFLOOR_HTTP_PORT",
        )
        if "mqtt" in settings.services and not settings.mqtt_broker_url and settings.mqtt_port:
            # Checked now, so a taken MQTT port fails in milliseconds, not after start-up.
            bind_socket(
                settings.mqtt_host,
                settings.mqtt_port,
                option="--mqtt-port",
                env="SHOPFLOOR_MQTT_PORT",
            ).close()
    except PortInUse as exc:
        console.print(f"[red]Cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was installed before it; this one lets the process exit with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_by_signal)
    _use_uvloop()
    try:
        asyncio.run(_serve(settings, sock, demo=demo))
    finally:
        sock.close()


def _use_uvloop() -> None:
    """uvloop when installed (it comes with uvicorn[standard]): uvicorn's own loop setup
    does not run when the server is started from our `asyncio.run`."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _stopped_by_signal(signum: int, _frame: object) -> None:
    logging.getLogger(__name__).info("stopped by %s", signal.Signals(signum).name)


async def _serve(settings: Settings, sock: socket.socket, *, demo: bool) -> None:
    from shopfloor.app import create_app
    from shopfloor.services import Platform

    platform = Platform(settings)
    port = sock.getsockname()[1]
    url = f"http://{_display_host(settings.http_host)}:{port}"
    run = _DemoRun()
    platform.on_started.append(lambda: _announce(platform, url, demo=demo, run=run))
    platform.on_started.append(_freeze_startup_objects)
    config = uvicorn.Config(
        create_app(settings, platform=platform),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if not (demo and "http" in settings.services):
        await server.serve(sockets=[sock])
        return
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
    simulating = asyncio.create_task(_simulate_demo(url, run), name="demo-simulator")
    try:
        await serving
    finally:
        simulating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await simulating


async def _freeze_startup_objects() -> None:
    """Keep what start-up built (app, routes, models, connections) out of garbage
    collection: a full collection scanning it all paused the loop for tens of
    milliseconds under load, and that pause was the publish → readable p99."""
    gc.collect()
    gc.freeze()


@dataclass
class _DemoRun:
    """What the start-up hook learnt of the demo plant, for the simulator."""

    plant: DemoPlant | None = None
    announced: asyncio.Event = field(default_factory=asyncio.Event)


async def _simulate_demo(url: str, run: _DemoRun) -> None:
    """Bring the demo plant to life through the real HTTP adapter."""
    from shopfloor.simulate import SimulatedThing, profile_for, simulate

    # The socket already listens, so requests sent before uvicorn accepts just queue.
    await run.announced.wait()
    demo = run.plant
    if demo is None:
        return
    things = [SimulatedThing(t.name, t.key, profile_for(t.name)) for t in demo.things]
    logging.getLogger(__name__).info("simulating %d demo machines", len(things))
    await simulate(url, demo.channel_id, things, interval=1.0)


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


async def _announce(platform: Any, url: str, *, demo: bool, run: _DemoRun) -> None:
    settings: Settings = platform.settings
    if demo:
        from shopfloor.demo import seed_demo

        plant = await seed_demo(platform.registry, admin_email=settings.admin_email)
        run.plant = plant
        run.announced.set()
        out.print(f"[bold]Demo Plant[/bold] (org {plant.org_id})")
        out.print(f"  channel telemetry  id={plant.channel_id}")
        for thing in plant.things:
            out.print(f"  thing {thing.name:<14} id={thing.id}  key={thing.key}")
        if settings.admin_email:
            out.print(
                f"admin: {settings.admin_email} / "
                f"{settings.admin_password.get_secret_value()}  (demo credentials)"
            )
    out.print(f"Shopfloor {__version__} is serving at {url}  (API docs: {url}/docs)")
    if platform.mqtt is not None:
        host = _display_host(settings.mqtt_host)
        out.print(f"MQTT broker: mqtt://{host}:{platform.mqtt.port}  (username = thing id, "
                  "password = thing key, topic channels/<channel id>/messages)")  # fmt: skip


@app.command("simulate")
def simulate_command(
    server: Annotated[str, typer.Option(help="Shopfloor server URL.")] = "http://127.0.0.1:8000",
    channel: Annotated[str, typer.Option(help="Channel id to publish on.")] = "",
    thing: Annotated[
        list[str],
        typer.Option(help="PROFILE:NAME:KEY of a machine (profiles: press, oven, compressor)."),
    ] = [],  # noqa: B006 - Typer needs a list default for repeatable options
    interval: Annotated[float, typer.Option(help="Seconds between two packs.")] = 1.0,
    count: Annotated[int, typer.Option(help="Rounds to send; 0 runs until stopped.")] = 0,
) -> None:
    """Publish realistic machine telemetry through the HTTP adapter of any server."""
    from shopfloor.simulate import Machine, SimulatedThing, simulate

    if not channel or not thing:
        console.print("[red]Give --channel and at least one --thing PROFILE:NAME:KEY.[/red]")
        raise typer.Exit(2)
    things = []
    for spec in thing:
        profile, _, rest = spec.partition(":")
        name, _, key = rest.partition(":")
        if profile not in Machine.profiles or not name or not key:
            console.print(f"[red]--thing {profile}:...: expected PROFILE:NAME:KEY with a "
                          f"profile among {', '.join(sorted(Machine.profiles))}[/red]")  # fmt: skip
            raise typer.Exit(2)
        things.append(SimulatedThing(name, key, profile))
    configure_logging(fmt="text", level="INFO")
    try:
        stats = asyncio.run(
            simulate(server, channel, things, interval=interval, count=count or None)
        )
    except KeyboardInterrupt:
        return
    out.print(f"sent {stats.sent} packs, {stats.refused} refused {stats.errors or ''}")
    if stats.refused or stats.errors:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the Shopfloor version."""
    out.print(__version__)


@app.command("check-config")
def check_config() -> None:
    """Validate the settings and reach the database (and the OIDC issuer if set)."""
    settings = load_settings()
    table = Table(title="Shopfloor settings")
    table.add_column("setting")
    table.add_column("value")
    for name, value in settings.model_dump().items():
        shown = "[set]" if "password" in name and str(value) else str(value)
        table.add_row(f"SHOPFLOOR_{name.upper()}", shown)
    out.print(table)
    problems = asyncio.run(_probe(settings))
    for problem in problems:
        console.print(f"[red]problem:[/red] {problem}")
    if problems:
        raise typer.Exit(1)
    out.print("[green]configuration ok[/green]")


async def _probe(settings: Settings) -> list[str]:
    import httpx
    import sqlalchemy as sa

    from shopfloor.registry import create_engine

    problems: list[str] = []
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        problems.append(f"data dir {settings.data_dir} is not writable: {exc.strerror}")
    engine = create_engine(settings.registry_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        problems.append(f"registry database unreachable: {type(exc).__name__}: {exc}")
    finally:
        await engine.dispose()
    if settings.oidc_issuer:
        url = f"{settings.oidc_issuer}/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                (await http.get(url)).raise_for_status()
        except httpx.HTTPError as exc:
            problems.append(f"OIDC discovery at {url} failed: {exc}")
    return problems


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="E-mail of the platform admin.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SHOPFLOOR_NEW_ADMIN_PASSWORD",
            help="Password (prompted if not given) [env: SHOPFLOOR_NEW_ADMIN_PASSWORD].",
        ),
    ],
    reset_password: Annotated[
        bool, typer.Option(help="If the account exists, set its password and make it admin.")
    ] = False,
) -> None:
    """Create a platform admin (or reset an existing admin's password)."""
    from shopfloor.auth import MIN_PASSWORD_LENGTH

    if len(password) < MIN_PASSWORD_LENGTH:
        console.print(f"[red]The password needs at least {MIN_PASSWORD_LENGTH} characters.[/red]")
        raise typer.Exit(2)
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")
    try:
        message = asyncio.run(_create_admin(settings, email, password, reset=reset_password))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    out.print(message)


async def _create_admin(settings: Settings, email: str, password: str, *, reset: bool) -> str:
    from shopfloor.auth import SecretFiles, ThingKeys, hash_password
    from shopfloor.registry import Registry

    registry = await Registry.open(
        settings.registry_url, ThingKeys(SecretFiles(settings.data_dir).thing_key_secret())
    )
    try:
        password_hash = await asyncio.to_thread(hash_password, password)
        existing = await registry.find_user_by_email(email)
        if existing is None:
            user = await registry.create_user(
                email=email,
                password_hash=password_hash,
                org_id=None,
                role=None,
                platform_admin=True,
            )
            return f"created platform admin {user.email} ({user.id})"
        if not reset:
            raise ValueError(f"{email} exists; add --reset-password to set a new password")
        await registry.update_user(existing.id, password_hash=password_hash)
        await registry.set_platform_admin(existing.id, True)
        return f"reset the password of {existing.email}"
    finally:
        await registry.close()


def main() -> None:
    logging.captureWarnings(True)
    app()


if __name__ == "__main__":
    main()
