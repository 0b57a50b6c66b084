"""Files and folders of the data dir, readable by their owner only, written whole, and
the file locks processes sharing a data dir take.

The data dir holds password hashes (the SQLite registry), the keys that sign tokens and
protect thing keys (`secrets/`) and the telemetry (the SQLite time series): nobody but
the service account has any business reading them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from ._errors import ErrorKind, ShopfloorError

__all__ = [
    "DataDirInUse",
    "file_lock",
    "held_file_lock",
    "lock_data_dir",
    "private_dir",
    "private_file",
    "sync_dir",
    "write_atomically",
]

LOCK_NAME = ".serve.lock"


class DataDirInUse(ShopfloorError):
    """Another running server holds the data dir in a way that excludes this one."""

    code = "data_dir_in_use"
    kind = ErrorKind.CONFLICT


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700.

    Folders that exist are left as they are (`Path.mkdir(parents=True, mode=...)` gives
    the parents the default mode, which is why this walks them itself).
    """
    missing: list[Path] = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (its folders with `private_dir`) if it is missing.

    For files another library creates on first use: SQLite makes a new database 0644,
    but it opens an existing one as it is, and gives the `-wal` and `-shm` files it
    creates the mode of the database file.
    """
    private_dir(path.parent)
    # No O_TRUNC: an existing file is kept as it is.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def lock_data_dir(data_dir: Path, *, exclusive: bool) -> int:
    """Hold the data dir for as long as the returned descriptor stays open.

    Servers of a split deployment may share a data dir (shared holds); a demo seeds and
    owns its data dir, so it takes it alone and is refused while any other server holds
    it, and the other way round. The lock goes with the process, however it ends.
    """
    private_dir(data_dir)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise DataDirInUse(
            f"the data dir {data_dir} is in use by another running shopfloor serve"
            + ("; a demo needs a data dir of its own" if exclusive else ", a demo")
        ) from exc
    return fd


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` by `data` at once: a reader sees the old file or the new one, and
    after a crash it is one of them (the file and its folder are synced). The file is
    created with `mode` (0600: keys); its folders with `private_dir`."""
    private_dir(path.parent)
    # Unique per call: two threads of one process may write the same path.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, mode)  # the umask may have narrowed it
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    sync_dir(path.parent)


def sync_dir(folder: Path) -> None:
    """Make a rename or removal in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _acquire(lock: Path) -> int:
    private_dir(lock.parent)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def file_lock(lock: Path) -> Iterator[None]:
    """Hold `lock` (a file beside what it guards) alone, against other processes and
    other opens in this one; blocks, so call it in a thread."""
    fd = _acquire(lock)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.asynccontextmanager
async def held_file_lock(lock: Path) -> AsyncIterator[None]:
    """`file_lock` for a coroutine: waits for the lock in a thread."""
    fd = await asyncio.to_thread(_acquire, lock)
    try:
        yield
    finally:
        os.close(fd)
