"""`shopfloor mosquitto check`: what an operator got wrong, each with its fix.

Mosquitto started as root switches to its `user` (default `mosquitto`) *before* it
loads plugins and opens files, so a file root can read may be closed to the broker:
an unreadable plugin stops the broker at start, an unreadable dynamic-security file
makes it refuse every client (CONNACK 0x87, the admin too, with no other hint than
one line of its log), and a persistence folder it cannot write fails at every
autosave, silently, which loses the queued messages at the next restart. These are
file modes, so they are checked here from the modes, for the broker's user; the rest
(admin and bridge logins) against the running broker.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.core import lazy_import

from . import _dynsec as dynsec
from ._access import BRIDGE_USERNAME
from ._client import BrokerUrl, DynsecClient, login_hint
from ._errors import InvalidBrokerUrl, MosquittoError

if TYPE_CHECKING:
    import aiomqtt
else:
    aiomqtt = lazy_import("aiomqtt")  # with paho and dnspython: when first used

__all__ = [
    "BrokerFiles",
    "Finding",
    "Severity",
    "check_broker_files",
    "check_broker_logins",
    "read_broker_files",
]

#: The user Mosquitto switches to when started as root without a `user` line.
DEFAULT_BROKER_USER = "mosquitto"


class Severity(Enum):
    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of the check: what was checked and, unless ok, what to do."""

    severity: Severity
    message: str

    @classmethod
    def ok(cls, message: str) -> Finding:
        return cls(Severity.OK, message)

    @classmethod
    def warning(cls, message: str) -> Finding:
        return cls(Severity.WARNING, message)

    @classmethod
    def problem(cls, message: str) -> Finding:
        return cls(Severity.PROBLEM, message)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What a mosquitto.conf says about the files and listeners Shopfloor relies on."""

    path: Path
    user: str | None = None
    plugins: tuple[Path, ...] = ()
    dynsec_file: Path | None = None
    persistence: bool = False
    persistence_dir: Path | None = None
    #: (port, bind address or None) of every `listener` line.
    listeners: tuple[tuple[str, str | None], ...] = ()
    includes: tuple[str, ...] = ()
    #: The `plugin_opt_bridge_username` given to the publisher plugin, if any.
    bridge_username: str | None = None


def read_broker_files(path: Path) -> BrokerFiles:
    """Parse the lines of mosquitto.conf the check needs (OSError if unreadable)."""
    values: dict[str, str] = {}
    plugins: list[Path] = []
    listeners: list[tuple[str, str | None]] = []
    includes: list[str] = []
    bridge_username = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        if key == "plugin":
            plugins.append(Path(rest))
        elif key == "listener":
            port, _, address = rest.partition(" ")
            listeners.append((port, address.strip() or None))
        elif key == "include_dir":
            includes.append(rest)
        elif key == "plugin_opt_bridge_username" and plugins:
            # Mosquitto hands a plugin the options below its own line.
            if plugins[-1].name.startswith("shopfloor_publisher"):
                bridge_username = rest
        else:
            values[key] = rest
    location = values.get("persistence_location")
    return BrokerFiles(
        path=path,
        user=values.get("user"),
        plugins=tuple(plugins),
        dynsec_file=Path(values["plugin_opt_config_file"])
        if "plugin_opt_config_file" in values
        else None,
        persistence=values.get("persistence", "false").lower() == "true",
        persistence_dir=Path(location) if location else None,
        listeners=tuple(listeners),
        includes=tuple(includes),
        bridge_username=bridge_username,
    )


@dataclass(frozen=True, slots=True)
class _User:
    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def named(cls, name: str) -> _User:
        entry = pwd.getpwnam(name)
        return cls(name, entry.pw_uid, frozenset(os.getgrouplist(name, entry.pw_gid)))

    def may(self, path: Path, want: int) -> bool:
        """Whether the mode bits of `path` grant `want` (a mask of R, W, X) to this user."""
        if self.uid == 0:
            return True
        info = path.stat()
        if info.st_uid == self.uid:
            granted = (info.st_mode >> 6) & 7
        elif info.st_gid in self.gids:
            granted = (info.st_mode >> 3) & 7
        else:
            granted = info.st_mode & 7
        return granted & want == want

    def blocking_folder(self, path: Path) -> Path | None:
        """The first folder above `path` this user may not enter, if any."""
        for folder in reversed(path.absolute().parents):
            if not self.may(folder, _X):
                return folder
        return None


_R, _W, _X = 4, 2, 1


def _broker_user(files: BrokerFiles, override: str | None) -> str:
    if override:
        return override
    if files.user:
        return files.user
    # A broker started by another user stays that user; as root it becomes `mosquitto`.
    return DEFAULT_BROKER_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def _owner_fix(path: Path, user: _User, mode: str) -> str:
    group = grp.getgrgid(pwd.getpwnam(user.name).pw_gid).gr_name
    return f"chown {user.name}:{group} {path} && chmod {mode} {path}"


def _access(path: Path, user: _User, want: int, what: str, mode: str) -> Iterator[Finding]:
    words = {_R: "read", _R | _W: "read and write", _R | _W | _X: "write into"}[want]
    if not path.exists():
        yield Finding.problem(f"{what} {path} does not exist")
        return
    blocked = user.blocking_folder(path)
    if blocked is not None:
        yield Finding.problem(
            f"{what} {path}: the broker runs as {user.name}, who cannot enter {blocked}; "
            f"fix: chmod o+x {blocked} (or move the file to a folder {user.name} can reach)"
        )
    elif not user.may(path, want):
        yield Finding.problem(
            f"{what} {path}: the broker runs as {user.name}, who cannot {words} it; "
            f"fix: {_owner_fix(path, user, mode)}"
        )
    else:
        yield Finding.ok(f"{what} {path}: {user.name} can {words} it")


def check_broker_files(files: BrokerFiles, *, broker_user: str | None = None) -> list[Finding]:
    """Plugins, dynamic-security file, persistence folder and listeners of one config."""
    name = _broker_user(files, broker_user)
    try:
        user = _User.named(name)
    except KeyError:
        return [Finding.problem(f"the broker's user {name!r} does not exist; set `user` in "
                                f"{files.path} or create it")]  # fmt: skip
    findings = [Finding.ok(f"{files.path}: the broker runs as {name}")]
    for include in files.includes:
        findings.append(Finding.warning(f"include_dir {include}: not checked; keep listeners, "
                                        "plugins and persistence in this file"))  # fmt: skip
    names = [plugin.name for plugin in files.plugins]
    publisher = next((i for i, n in enumerate(names) if n.startswith("shopfloor_publisher")), None)
    dynsec_plugin = next((i for i, n in enumerate(names) if "dynamic_security" in n), None)
    if publisher is None:
        findings.append(Finding.problem("no publisher plugin (shopfloor_publisher-*.so): "
                                        "the bridge drops every message; fix: shopfloor "
                                        "mosquitto config"))  # fmt: skip
    if dynsec_plugin is None:
        findings.append(Finding.problem("no dynamic-security plugin line; fix: shopfloor "
                                        "mosquitto config"))  # fmt: skip
    if publisher is not None and dynsec_plugin is not None and publisher > dynsec_plugin:
        findings.append(Finding.problem("the publisher plugin must come before the "
                                        "dynamic-security plugin (forged wills)"))  # fmt: skip
    if publisher is not None and files.bridge_username != BRIDGE_USERNAME:
        findings.append(Finding.warning(
            f"no plugin_opt_bridge_username {BRIDGE_USERNAME} right after the publisher "
            "plugin: MQTT subscribers then see the bridge as the publisher of HTTP and "
            "WebSocket messages; fix: shopfloor mosquitto config"
        ))  # fmt: skip
    for plugin in files.plugins:
        findings += _access(plugin, user, _R, "plugin", "644")
    if files.dynsec_file is None:
        findings.append(Finding.problem("no plugin_opt_config_file for dynamic security"))
    else:
        # The plugin rewrites the file in place on every change.
        findings += _access(files.dynsec_file, user, _R | _W, "dynamic-security file", "600")
        if files.dynsec_file.exists() and files.dynsec_file.stat().st_mode & stat.S_IROTH:
            findings.append(Finding.problem(
                f"dynamic-security file {files.dynsec_file} is readable by every user of the "
                f"host (it holds password hashes); fix: chmod 600 {files.dynsec_file}"
            ))  # fmt: skip
    if not files.persistence:
        findings.append(Finding.problem(
            "persistence is off: the bridge's session and queued messages are lost when "
            "the broker restarts; fix: persistence true, persistence_location <folder>"
        ))  # fmt: skip
    elif files.persistence_dir is None:
        findings.append(Finding.warning(
            "persistence_location is not set: Mosquitto writes mosquitto.db in the folder it "
            "was started from; set it to a folder of the broker's user"
        ))  # fmt: skip
    else:
        # Mosquitto writes mosquitto.db.new there and renames it over mosquitto.db.
        findings += _access(files.persistence_dir, user, _R | _W | _X, "persistence folder", "700")
    for port, address in files.listeners:
        if address is None:
            findings.append(Finding.warning(
                f"listener {port} listens on every address of the host; give it one "
                "(shopfloor mosquitto config --bind-address) unless that is meant"
            ))  # fmt: skip
    if not files.listeners:
        findings.append(Finding.warning("no listener line: Mosquitto 2.0 then listens on "
                                        "localhost:1883 only"))  # fmt: skip
    return findings


async def check_broker_logins(
    broker_url: str, bridge_password: str, *, seconds: float = 5.0
) -> list[Finding]:
    """The admin login and a dynsec round trip, then the bridge's password, if it exists.

    `seconds` bounds each login and the dynsec answer.
    """
    if len(bridge_password) < 16:
        findings = [Finding.problem(
            "SHOPFLOOR_MQTT_BRIDGE_PASSWORD is not set (or shorter than 16 characters): the "
            "server refuses to start; fix: export SHOPFLOOR_MQTT_BRIDGE_PASSWORD=\"$(openssl "
            "rand -hex 24)\" and give every platform process the same value"
        )]  # fmt: skip
    else:
        findings = [Finding.ok("SHOPFLOOR_MQTT_BRIDGE_PASSWORD is set")]
    try:
        broker = BrokerUrl.parse(broker_url)
    except InvalidBrokerUrl as exc:
        return [*findings, Finding.problem(f"SHOPFLOOR_MQTT_BROKER_URL: {exc}")]
    where = f"{broker.host}:{broker.port}"
    problem = await _login(broker.host, broker.port, broker.username, broker.password, seconds)
    if problem is not None:
        return [*findings, Finding.problem(f"admin login {broker.username} at {where}: {problem}")]
    try:
        async with DynsecClient.from_url(broker_url, timeout=seconds) as client:
            (answer,) = await client.execute([dynsec.get_client(BRIDGE_USERNAME)])
    except MosquittoError as exc:
        return [*findings, Finding.problem(
            f"admin {broker.username} at {where} logs in but gets no dynamic-security answer "
            f"({exc}): give it the role admin of `mosquitto_ctrl dynsec init`"
        )]  # fmt: skip
    findings.append(Finding.ok(f"admin {broker.username} at {where}: logged in, dynsec answers"))
    if answer.error or len(bridge_password) < 16:
        findings.append(Finding.ok(f"no client {BRIDGE_USERNAME} yet: the platform creates it"))
        return findings
    problem = await _login(broker.host, broker.port, BRIDGE_USERNAME, bridge_password, seconds)
    if problem is None:
        findings.append(Finding.ok(f"bridge {BRIDGE_USERNAME} logs in with the bridge password"))
    else:
        findings.append(Finding.warning(
            f"bridge {BRIDGE_USERNAME}: {problem}; the platform sets this password when it "
            "starts, so every platform process must have the same SHOPFLOOR_MQTT_BRIDGE_PASSWORD"
        ))  # fmt: skip
    return findings


async def _login(host: str, port: int, username: str, password: str, seconds: float) -> str | None:
    """None when the broker accepts the login, else why not, with what to check."""
    client = aiomqtt.Client(
        host, port, username=username, password=password,
        protocol=aiomqtt.ProtocolVersion.V5, timeout=seconds,
    )  # fmt: skip
    try:
        async with asyncio.timeout(seconds + 1), client:
            return None
    except aiomqtt.MqttCodeError as exc:
        return f"refused ({exc}){login_hint(exc)}"
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        return f"cannot connect ({exc or 'timeout'}): is the broker running, on this port?"
