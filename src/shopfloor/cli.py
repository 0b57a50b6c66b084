"""`shopfloor` command line: run the server and administer it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

import typer

from shopfloor import __version__
from shopfloor._logging import configure_logging
from shopfloor.adapters.capability import MqttService, MqttSettings
from shopfloor.console import capability_modules, console, load_settings, out
from shopfloor.core import CoreSettings, DataDirInUse, Platform, Service, discover, lock_data_dir
from shopfloor.demo import DemoPlant
from shopfloor.httpserver import DrainingServer, server_config

app = typer.Typer(
    name="shopfloor",
    help="Shopfloor: an open industrial agent and IoT platform.",
    no_args_is_help=True,
    add_completion=False,
)

# Plug-ins first: their services and commands belong in the help and the command tree.
try:
    discover(capability_modules())
except ImportError as exc:
    console.print(f"[red]Cannot load the capabilities in SHOPFLOOR_CAPABILITIES:[/red] {exc}")
    raise SystemExit(2) from exc

# Help texts use parentheses: Typer's rich markup would take "[env: ...]" for a tag.
_SERVICES_HELP = "Comma-separated services to run (env SHOPFLOOR_SERVICES; default all): " + (
    "; ".join(
        f"{cls.name}: {cls.summary().rstrip('.')}"
        for cls in sorted(Service.backends, key=lambda c: c.name)
        if not cls.internal
    )
    + "."
)


class PortInUse(Exception):
    pass


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
        Path | None, typer.Option(help="Data folder (env SHOPFLOOR_DATA_DIR; default var/data).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port (env SHOPFLOOR_HTTP_PORT; default 8000).")
    ] = None,
    http_host: Annotated[
        str | None,
        typer.Option(help="HTTP bind address (env SHOPFLOOR_HTTP_HOST; default 0.0.0.0)."),
    ] = None,
    mqtt_port: Annotated[
        int | None,
        typer.Option(
            help="Embedded MQTT broker port, 0 for a free one (env SHOPFLOOR_MQTT_PORT; "
            "default 1883)."
        ),
    ] = None,
    mqtts_port: Annotated[
        int | None,
        typer.Option(
            help="Embedded broker's MQTT-over-TLS port, 0 for a free one, -1 for none "
            "(env SHOPFLOOR_MQTTS_PORT; default 8883, when a server certificate is known)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="Server certificate (PEM) to serve HTTPS (env SHOPFLOOR_TLS_CERT)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="Private key (PEM) of --tls-cert (env SHOPFLOOR_TLS_KEY)."),
    ] = None,
    services: Annotated[str | None, typer.Option(help=_SERVICES_HELP)] = None,
    demo: Annotated[
        bool, typer.Option(help="Seed a demo plant on an empty data dir and print its keys.")
    ] = False,
    stop_with_parent: Annotated[
        bool,
        typer.Option(
            help="Stop when the parent process (make) is interrupted, as with Ctrl-C "
            "(used by make run; Linux only)."
        ),
    ] = False,
) -> None:
    """Run the Shopfloor server (embedded defaults: SQLite, in-process bus)."""
    settings = load_settings(
        data_dir=data_dir,
        http_port=http_port,
        http_host=http_host,
        mqtt_port=mqtt_port,
        mqtts_port=mqtts_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
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
        mqtt = settings.section(MqttSettings)
        if "mqtt" in settings.services and mqtt.embedded and mqtt.mqtt_port:
            # Checked now, so a taken MQTT port fails in milliseconds, not after start-up.
            bind_socket(
                mqtt.mqtt_host,
                mqtt.mqtt_port,
                option="--mqtt-port",
                env="SHOPFLOOR_MQTT_PORT",
            ).close()
    except PortInUse as exc:
        console.print(f"[red]Cannot start:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        # Held until the process ends (the descriptor is never closed on purpose).
        lock_data_dir(settings.data_dir, exclusive=demo)
    except DataDirInUse as exc:
        sock.close()
        console.print(
            f"[red]Cannot start:[/red] {exc}; choose another with --data-dir "
            "(SHOPFLOOR_DATA_DIR, or DATA_DIR=... for make run)"
        )
        raise typer.Exit(2) from exc
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was installed before it; this one lets the process exit with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped_by_signal)
    if stop_with_parent:
        _stop_when_parent_is_interrupted()
    _use_uvloop()
    try:
        asyncio.run(_serve(settings, sock, demo=demo))
    finally:
        sock.close()


def _stop_when_parent_is_interrupted() -> None:
    """Stop as on SIGINT once the parent stops catching SIGINT.

    `make run` runs the server as make's child. A SIGINT sent to make alone (not to the
    whole terminal job, as Ctrl-C does) never reaches the server: GNU make forwards only
    SIGTERM, and on SIGINT resets its own handler and waits for its children, forever.
    That reset is visible in `/proc/<parent>/status` (`SigCgt` loses the SIGINT bit), so a
    thread watches for it and interrupts this process, which then stops gracefully.
    """
    parent = os.getppid()
    status = Path(f"/proc/{parent}/status")
    sigint = 1 << (signal.SIGINT - 1)

    def catches_sigint() -> bool | None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & sigint)
        except (OSError, ValueError):
            return None  # no /proc, or the parent is gone
        return None

    if not catches_sigint():
        return  # nothing to watch: the parent ignores SIGINT, or this is not Linux

    def watch() -> None:
        while os.getppid() == parent and catches_sigint():
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-interrupt", daemon=True).start()


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


async def _serve(settings: CoreSettings, sock: socket.socket, *, demo: bool) -> None:
    from shopfloor.app import create_app

    platform = Platform(settings)
    port = sock.getsockname()[1]
    scheme = "https" if settings.tls_cert is not None else "http"
    url = f"{scheme}://{_display_host(settings.http_host)}:{port}"
    run = _DemoRun()
    platform.on_started.append(lambda: _announce(platform, url, demo=demo, run=run))
    platform.on_started.append(_freeze_startup_objects)
    config = server_config(create_app(settings, platform=platform), settings)
    server = DrainingServer(config, platform.draining)
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


#: The collector's thresholds once the server runs. Python's (700, 10, 10) suit short
#: scripts; a server whose bus holds a backlog of messages (each an envelope, its
#: records, a delivery) ran a full collection over all of it about once a second:
#: in Mosquitto mode a third of the event loop's time went to the collector. With these
#: a young collection comes every 50,000 new objects and a full one about a hundred
#: times more rarely; the collector took a tenth of the loop instead, and the same run
#: stored 1.4 times as many records per second.
GC_THRESHOLDS: Final = (50_000, 20, 10)


async def _freeze_startup_objects() -> None:
    """Keep what start-up built (app, routes, models, connections) out of garbage
    collection: a full collection scanning it all paused the loop for tens of
    milliseconds under load, and that pause was the publish → readable p99. Then
    collect rarely (GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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


async def _demo_dashboard(platform: Platform, url: str, plant: DemoPlant) -> None:
    """The demo's dashboard of live telemetry, seeded once, and where it is."""
    from shopfloor.dashboards.capability import DashboardsService
    from shopfloor.dashboards.demo import seed_demo_dashboard

    if not platform.running(DashboardsService):
        return
    dashboard = await seed_demo_dashboard(platform.get(DashboardsService).store, plant)
    out.print(f"  live telemetry of the demo: {url}/console/dashboards/{dashboard.id}")


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


async def _announce(platform: Platform, url: str, *, demo: bool, run: _DemoRun) -> None:
    from shopfloor.auth.capability import IdentitySettings

    identity = platform.settings.section(IdentitySettings)
    if demo:
        from shopfloor.auth.capability import IdentityService
        from shopfloor.demo import seed_demo

        registry = platform.get(IdentityService).registry
        plant = await seed_demo(registry, admin_email=identity.admin_email)
        run.plant = plant
        run.announced.set()
        out.print(f"[bold]Demo Plant[/bold] (org {plant.org_id})")
        out.print(f"  channel telemetry  id={plant.channel_id}")
        for thing in plant.things:
            out.print(f"  thing {thing.name:<14} id={thing.id}  key={thing.key}")
        if identity.admin_email:
            out.print(
                f"admin: {identity.admin_email} / "
                f"{identity.admin_password.get_secret_value()}  (demo credentials)"
            )
    out.print(f"Shopfloor {__version__} is serving at {url}  (API docs: {url}/docs)")
    if any(service.name == "console" for service in platform.plan):
        who = " with the admin credentials above" if demo and identity.admin_email else ""
        out.print(f"Console: open {url}/ in a browser and sign in{who}")
        if demo and run.plant is not None:
            await _demo_dashboard(platform, url, run.plant)
    if platform.settings.http_host in ("127.0.0.1", "::1", "localhost"):
        out.print("  on loopback only: other machines reach it with --http-host 0.0.0.0 "
                  "(HOST=0.0.0.0 make run)")  # fmt: skip
    mqtt = platform.get(MqttService) if platform.running(MqttService) else None
    if mqtt is not None and mqtt.port is not None:
        host = _display_host(mqtt.options.mqtt_host)
        out.print(f"MQTT broker: mqtt://{host}:{mqtt.port}  (username = thing id, "
                  "password = thing key, topic channels/<channel id>/messages)")  # fmt: skip


@app.command("simulate")
def simulate_command(
    server: Annotated[str, typer.Option(help="Shopfloor server URL.")] = "http://127.0.0.1:8000",
    channel: Annotated[str, typer.Option(help="Channel id to publish on.")] = "",
    thing: Annotated[
        list[str],
        typer.Option(
            help="PROFILE:NAME:KEY of a machine (profiles: press, oven, compressor, mill)."
        ),
    ] = [],  # noqa: B006 - Typer needs a list default for repeatable options
    interval: Annotated[float, typer.Option(help="Seconds between two packs.")] = 1.0,
    count: Annotated[int, typer.Option(help="Rounds to send; 0 runs until stopped.")] = 0,
    bootstrap: Annotated[
        str, typer.Option(help="Bootstrap URL: start from bootstrap credentials alone.")
    ] = "",
    external_id: Annotated[str, typer.Option(help="External id, with --bootstrap.")] = "",
    external_key: Annotated[str, typer.Option(help="External key, with --bootstrap.")] = "",
    profile: Annotated[str, typer.Option(help="Machine profile, with --bootstrap.")] = "press",
) -> None:
    """Publish realistic machine telemetry through the HTTP adapter of any server."""
    from shopfloor.simulate import Machine, SimulatedThing, simulate, simulate_bootstrapped

    if bootstrap:
        if not external_id or not external_key or profile not in Machine.profiles:
            profiles = ", ".join(sorted(Machine.profiles))
            console.print(
                "[red]--bootstrap needs --external-id, --external-key and a "
                f"--profile among {profiles}[/red]"
            )
            raise typer.Exit(2)
        from shopfloor.bootstrap import BootstrapError

        configure_logging(fmt="text", level="INFO")
        try:
            stats = asyncio.run(
                simulate_bootstrapped(
                    bootstrap,
                    external_id,
                    external_key,
                    profile=profile,
                    interval=interval,
                    count=count or None,
                )
            )
        except KeyboardInterrupt:
            return
        except (BootstrapError, ValueError) as exc:
            console.print(f"[red]bootstrap failed: {exc}[/red]")
            raise typer.Exit(1) from exc
        out.print(f"sent {stats.sent} packs, {stats.refused} refused {stats.errors or ''}")
        raise typer.Exit(1 if stats.refused or stats.errors else 0)
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
    """Validate the settings and reach the database (and the OIDC issuer if set).

    Secrets are masked (passwords inside URLs too); nothing is created or written.
    """
    settings = load_settings()
    for info in settings.describe():
        out.print(f"{info.env}={info.shown}", markup=False)
    problems = asyncio.run(_probe(settings))
    for problem in problems:
        console.print(f"[red]problem:[/red] {problem}")
    if problems:
        raise typer.Exit(1)
    out.print("[green]configuration ok[/green]")


async def _probe(settings: CoreSettings) -> list[str]:
    from shopfloor.core.capability import probe_database
    from shopfloor.core.checks import probe_data_dir, probe_http

    problems = [p for p in [probe_data_dir(settings.data_dir)] if p]
    problem = await probe_database(settings)
    if problem:
        problems.append(problem)
    from shopfloor.auth.capability import IdentitySettings

    issuer = settings.section(IdentitySettings).oidc_issuer
    if issuer:
        problem = await probe_http(f"{issuer}/.well-known/openid-configuration", "OIDC discovery")
        if problem:
            problems.append(problem)
    return problems


def _add_service_commands() -> None:
    """Sub-commands contributed by services (`shopfloor users ...`)."""
    import importlib

    for service in Service.backends:
        for name, path in service.commands.items():
            module, _, attribute = path.partition(":")
            sub = getattr(importlib.import_module(module), attribute)
            app.add_typer(sub, name=name)


_add_service_commands()


def main() -> None:
    logging.captureWarnings(True)
    app()


if __name__ == "__main__":
    main()
