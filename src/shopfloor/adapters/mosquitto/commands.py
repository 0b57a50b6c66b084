"""`shopfloor mosquitto ...`: prepare a Mosquitto broker for Mosquitto mode and check it.

The operator's steps of docs/mosquitto.md are these commands (a test runs that page's
commands as written), so the page and the code cannot drift apart.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from shopfloor.console import console, out

from ._check import Finding, Severity, check_broker_files, check_broker_logins, read_broker_files
from ._config import MosquittoConfig, find_dynsec_plugin, render_config
from ._errors import MosquittoError
from ._plugin import build_plugin

__all__ = ["mosquitto_app"]

mosquitto_app = typer.Typer(
    help="Prepare and check an external Mosquitto broker (docs/mosquitto.md).",
    no_args_is_help=True,
)

_MARKS = {Severity.OK: "[green]ok[/green]", Severity.WARNING: "[yellow]warning[/yellow]",
          Severity.PROBLEM: "[red]problem[/red]"}  # fmt: skip


@mosquitto_app.command("config")
def config_command(
    output: Annotated[Path, typer.Option(help="mosquitto.conf to write (replaced if present).")],
    plugin_dir: Annotated[
        Path, typer.Option(help="Folder the publisher plugin is compiled into (needs gcc).")
    ],
    dynsec_file: Annotated[
        Path, typer.Option(help="Dynamic-security file (from mosquitto_ctrl dynsec init).")
    ],
    persistence_dir: Annotated[
        Path, typer.Option(help="Folder of mosquitto.db, writable by the broker's user.")
    ],
    bind_address: Annotated[
        str,
        typer.Option(help="Address the listener binds; 0.0.0.0 for every address of the host."),
    ],
    port: Annotated[int, typer.Option(help="Port of the listener.")] = 1883,
    user: Annotated[
        str | None,
        typer.Option(help="User a broker started as root switches to (Mosquitto: mosquitto)."),
    ] = None,
    pid_file: Annotated[Path | None, typer.Option(help="pid_file, for CRL reloads.")] = None,
) -> None:
    """Compile the publisher plugin and write mosquitto.conf for Mosquitto mode."""
    try:
        plugin = build_plugin(plugin_dir)
        dynsec_plugin = find_dynsec_plugin()
    except (MosquittoError, FileNotFoundError) as exc:
        console.print(f"[red]Cannot write the configuration:[/red] {exc}")
        raise typer.Exit(1) from exc
    config = MosquittoConfig(
        dynsec_plugin=dynsec_plugin,
        dynsec_config=dynsec_file.absolute(),
        publisher_plugin=plugin.absolute(),
        port=port,
        bind_address=bind_address,
        persistence_dir=persistence_dir.absolute(),
        user=user,
        pid_file=pid_file,
    )
    try:
        _write(output, render_config(config))
    except OSError as exc:
        console.print(f"[red]Cannot write {output}:[/red] {exc.strerror}")
        raise typer.Exit(1) from exc
    out.print(f"wrote {output} (publisher plugin {plugin})", markup=False)


def _write(path: Path, text: str) -> None:
    """Replace `path` whole or not at all; readable by all (it holds no secret)."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".mosquitto-",
                                     delete=False) as draft:  # fmt: skip
        draft.write(text)
    os.chmod(draft.name, 0o644)
    os.replace(draft.name, path)


@mosquitto_app.command("check")
def check_command(
    config: Annotated[Path, typer.Option(help="The broker's mosquitto.conf.")] = Path(
        "/etc/mosquitto/mosquitto.conf"
    ),
    broker_user: Annotated[
        str | None,
        typer.Option(
            help="User the broker runs as (default: its `user` line, else mosquitto "
            "when this runs as root, else the current user)."
        ),
    ] = None,
    broker_url: Annotated[
        str,
        typer.Option(
            envvar="SHOPFLOOR_MQTT_BROKER_URL",
            show_default=False,
            help="Admin URL (env SHOPFLOOR_MQTT_BROKER_URL).",
        ),
    ] = "",
    bridge_password: Annotated[
        str,
        typer.Option(
            envvar="SHOPFLOOR_MQTT_BRIDGE_PASSWORD",
            show_default=False,
            help="Bridge password (env SHOPFLOOR_MQTT_BRIDGE_PASSWORD).",
        ),
    ] = "",
) -> None:
    """Check the broker's files for its user, then the admin and bridge logins.

    Exits 1 when anything would stop Mosquitto mode or lose messages; each problem
    says what to fix.
    """  # fmt: skip
    try:
        findings = check_broker_files(read_broker_files(config), broker_user=broker_user)
    except OSError as exc:
        findings = [Finding.problem(f"cannot read {config}: {exc.strerror}; give --config")]
    if not broker_url:
        findings.append(Finding.problem("SHOPFLOOR_MQTT_BROKER_URL is not set; fix: export "
                                        "SHOPFLOOR_MQTT_BROKER_URL=mqtt://<admin>:<password>"
                                        "@<host>:<port>"))  # fmt: skip
    else:
        findings += asyncio.run(check_broker_logins(broker_url, bridge_password))
    for finding in findings:
        out.print(f"{_MARKS[finding.severity]} ", end="")
        out.print(finding.message, markup=False, highlight=False)
    if any(finding.severity is Severity.PROBLEM for finding in findings):
        raise typer.Exit(1)
