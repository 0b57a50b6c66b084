"""Mosquitto mode's CRL: the file Mosquitto's `crlfile` names, kept current by the platform.

async with CrlKeeper(path, crl_pem=certs.crl_pem, reload=signal_pid_file(pid_file),
                     kick=service.kick_thing) as keeper:
    gate.on_revoked(keeper.revoked)

Mosquitto 2.0 reads the CRL at start and on SIGHUP only, and checks it during the TLS
handshake only: a session that is already open stays open. So, at start and after each
revocation the keeper writes the CA's CRL (a temporary file renamed over the old one:
Mosquitto never reads half a file), makes Mosquitto reload it (`reload`), then ends the
revoked thing's live sessions (`kick`: dynamic security's `disableClient` disconnects
every session of a username; `enableClient` follows, and the reconnect then fails its
handshake). An expired CRL makes Mosquitto refuse every certificate, so the file is also
rewritten at half its remaining lifetime (at least hourly), and a CRL whose nextUpdate is
less than a day away is logged as a warning on every write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from shopfloor.core import Backoff, Lifecycle, first_set
from shopfloor.pki import EntityType, Revoked

__all__ = ["CrlKeeper", "reload_command", "signal_pid_file"]

logger = logging.getLogger(__name__)

Reload = Callable[[], Awaitable[None]]

#: A CRL closer than this to its nextUpdate is warned about.
WARN_WITHIN = timedelta(days=1)


def signal_pid_file(pid_file: Path) -> Reload:
    """A reload that sends SIGHUP to the process whose pid `pid_file` holds."""

    async def reload() -> None:
        pid = int((await asyncio.to_thread(pid_file.read_text)).strip())
        os.kill(pid, signal.SIGHUP)

    return reload


def reload_command(command: str) -> Reload:
    """A reload that runs `command` (split like a command line, no shell)."""
    argv = shlex.split(command)
    if not argv:
        raise ValueError("the reload command is empty")

    async def reload() -> None:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} exited with {process.returncode}: {stderr.decode(errors='replace')}"
            )

    return reload


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` in one rename (a reader sees the old file or the new one)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # a CRL is public; Mosquitto may run as another user
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class CrlKeeper(Lifecycle):
    def __init__(
        self,
        path: Path,
        *,
        crl_pem: Callable[[], Awaitable[str]],
        reload: Reload | None,
        kick: Callable[[str], Awaitable[None]] | None = None,
        max_interval: float = 3600.0,
    ) -> None:
        super().__init__()
        self.path = path
        self._crl_pem = crl_pem
        self._reload = reload
        self._kick = kick
        self._max_interval = max_interval
        self._wake = asyncio.Event()
        self._to_kick: set[str] = set()
        #: When the CRL written last stops being valid (None before the first write).
        self.next_update: datetime | None = None

    @property
    def expires_soon(self) -> bool:
        """Whether the CRL on disk is less than a day from its nextUpdate (or unknown)."""
        return self.next_update is None or self.next_update - datetime.now(UTC) < WARN_WITHIN

    def revoked(self, revoked: Revoked) -> None:
        """A `CertificateGate.on_revoked` listener: rewrite the CRL, then kick the thing."""
        if revoked.entity is not None and revoked.entity.type is EntityType.THING:
            self._to_kick.add(revoked.entity.id)
        self._wake.set()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        try:
            await self.refresh()
        except Exception:
            # Mosquitto keeps the CRL it has; the loop tries again.
            logger.exception("cannot write the Mosquitto CRL %s", self.path)
        await self.spawn("mosquitto-crl", self._run, restart=True, cancel_on_stop=True)

    async def refresh(self) -> None:
        """Write the CA's CRL, make Mosquitto read it, and kick the revoked things."""
        pem = await self._crl_pem()
        next_update = x509.load_pem_x509_crl(pem.encode()).next_update_utc
        await asyncio.to_thread(write_atomically, self.path, pem)
        self.next_update = next_update
        if self.expires_soon:
            logger.warning(
                "the CRL in %s expires %s: Mosquitto refuses every certificate after that",
                self.path, next_update.isoformat() if next_update else "(no nextUpdate)",
            )  # fmt: skip
        if self._reload is not None:
            await self._reload()
        # Only after the reload: a kicked device reconnects, and must meet the new CRL.
        # Mosquitto applies a SIGHUP at the end of its current loop pass, well before a
        # device's reconnect (the Mosquitto clients wait 1 s) reaches it.
        while self._to_kick and self._kick is not None:
            thing_id = self._to_kick.pop()
            try:
                await self._kick(thing_id)
            except Exception:
                self._to_kick.add(thing_id)
                raise

    def _interval(self) -> float:
        if self.next_update is None:
            return 60.0
        remaining = (self.next_update - datetime.now(UTC)).total_seconds()
        return max(60.0, min(self._max_interval, remaining / 2))

    async def _run(self, stopping: asyncio.Event) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        failures = 0
        while not stopping.is_set():
            delay = backoff.delay(failures) if failures else self._interval()
            await first_set(self._wake, stopping, within=delay)
            if stopping.is_set():
                return
            self._wake.clear()
            try:
                await self.refresh()
                failures = 0
            except Exception:
                failures += 1
                logger.exception("cannot update the Mosquitto CRL %s", self.path)
