"""The mosquitto.conf Shopfloor needs, and the first dynamic-security file.

docs/mosquitto.md explains every setting; the short reasons are next to each line.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._access import BRIDGE_USERNAME
from ._errors import DynsecInitError

__all__ = [
    "MosquittoConfig",
    "MosquittoTls",
    "find_dynsec_plugin",
    "init_dynsec_config",
    "render_config",
]

#: Where distributions install the dynamic-security plugin that ships with Mosquitto.
_DYNSEC_PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/lib64/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MosquittoTls:
    """A listener for devices with client certificates (docs/mtls.md).

    Every client must present a certificate of `cafile` not in `crlfile`, and logs in
    with username = thing id and password = thing key as on the plain listener.
    `use_identity_as_username` (the CN, which the platform's CA makes the thing id, as
    username and no password) is off by default: on Mosquitto 2.0.11 such a client
    connects, but dynamic security applies none of its roles and refuses every PUBLISH
    and SUBSCRIBE (measured, tests/mosquitto/test_mosquitto_tls.py). Mosquitto reads
    `crlfile` at start and on SIGHUP only: the platform rewrites it and signals
    Mosquitto (`SHOPFLOOR_MOSQUITTO_CRL_FILE`, `_PID_FILE`).
    """

    port: int = 8883
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path | None = None
    use_identity_as_username: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MosquittoConfig:
    """Settings of a Mosquitto 2.0 broker serving Shopfloor.

    Mosquitto silently drops QoS 1 messages for a client whose queue is full, and the
    bridge must never lose one, so the queue is made very long (`max_queued_bytes=0`
    is no byte limit). `max_queued_messages` cannot be 0 ("no limit") although the
    manual allows it: Mosquitto 2.0 then treats every client as over quota whenever
    one of its publishes is refused, and disconnects it.

    `bind_address=None` listens on every address of the host; `persistence_dir=None`
    turns persistence off, and with it the bridge's queue across broker restarts.
    Every path must be open to the broker's user (`user`, else Mosquitto's own when
    started as root), which `check_broker_files` checks.
    """

    dynsec_plugin: Path
    dynsec_config: Path
    publisher_plugin: Path
    port: int = 1883
    bind_address: str | None = None
    persistence_dir: Path | None = None
    autosave_interval: int = 30
    max_queued_messages: int = 1_000_000
    max_queued_bytes: int = 0
    max_inflight_messages: int = 1000
    user: str | None = None
    tls: MosquittoTls | None = None
    #: Written by Mosquitto at start; the platform sends SIGHUP there after a CRL update.
    pid_file: Path | None = None
    #: The client whose `shopfloor-*` user properties the publisher plugin keeps.
    bridge_username: str = BRIDGE_USERNAME

    def __post_init__(self) -> None:
        if self.max_queued_messages < 1:
            raise ValueError(
                "max_queued_messages must be at least 1: Mosquitto 2.0 disconnects clients "
                "after a refused publish when it is 0"
            )


def render_config(config: MosquittoConfig) -> str:
    """The text of mosquitto.conf (`shopfloor mosquitto config` writes it to a file)."""
    listener = f"listener {config.port}"
    if config.bind_address:
        listener += f" {config.bind_address}"
    lines = [
        "# Mosquitto for Shopfloor: see docs/mosquitto.md for why each line is here.",
        "per_listener_settings false",
        listener,
        "allow_anonymous false",
        "set_tcp_nodelay true",
        "",
        "# Listed first: it must see every permission check before dynamic security.",
        f"plugin {config.publisher_plugin}",
        "# The bridge republishes HTTP and WebSocket messages naming their publisher itself.",
        f"plugin_opt_bridge_username {config.bridge_username}",
        f"plugin {config.dynsec_plugin}",
        f"plugin_opt_config_file {config.dynsec_config}",
        "",
        "# Never drop a QoS 1 message queued for a slow or offline subscriber.",
        f"max_queued_messages {config.max_queued_messages}",
        f"max_queued_bytes {config.max_queued_bytes}",
        f"max_inflight_messages {config.max_inflight_messages}",
    ]
    if config.tls is not None:
        tls = config.tls
        tls_listener = f"listener {tls.port}"
        if config.bind_address:
            tls_listener += f" {config.bind_address}"
        lines += [
            "",
            "# Devices with client certificates (and their thing id and key).",
            tls_listener,
            f"cafile {tls.cafile}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            "require_certificate true",
            f"use_identity_as_username {str(tls.use_identity_as_username).lower()}",
        ]
        if tls.crlfile is not None:
            lines.append(f"crlfile {tls.crlfile}")
    if config.pid_file is not None:
        lines += ["", f"pid_file {config.pid_file}"]
    if config.persistence_dir is not None:
        lines += [
            "",
            "# Keep sessions, subscriptions and queued messages across restarts.",
            "persistence true",
            f"persistence_location {config.persistence_dir}{os.sep}",
            f"autosave_interval {config.autosave_interval}",
        ]
    if config.user is not None:
        lines += ["", f"user {config.user}"]
    return "\n".join(lines) + "\n"


def find_dynsec_plugin() -> Path:
    """The installed mosquitto_dynamic_security.so; FileNotFoundError if there is none."""
    for pattern in _DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    raise FileNotFoundError(
        "mosquitto_dynamic_security.so not found; install Mosquitto 2.0 or newer"
    )


def init_dynsec_config(
    path: Path,
    admin_username: str,
    admin_password: str,
    *,
    mosquitto_ctrl: str = "mosquitto_ctrl",
) -> None:
    """Create a dynamic-security file holding one admin client.

    The password goes through standard input (mosquitto_ctrl asks for it twice), so
    it never shows in the process list. The file holds a password hash: it is made
    readable by its owner only.
    """
    if path.exists():
        # mosquitto_ctrl only prints a complaint and exits 0 when the file exists.
        raise DynsecInitError(f"{path} exists; remove it or choose another path")
    executable = shutil.which(mosquitto_ctrl)
    if executable is None:
        raise DynsecInitError(f"{mosquitto_ctrl} not found; install the mosquitto-clients package")
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [executable, "dynsec", "init", str(path), admin_username],
        input=f"{admin_password}\n{admin_password}\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0 or not path.is_file():
        output = (result.stdout + result.stderr).strip()
        raise DynsecInitError(f"mosquitto_ctrl dynsec init failed: {output}")
    path.chmod(0o600)
