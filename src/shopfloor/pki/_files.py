"""Files of `<data_dir>/pki/`: written whole (a reader never sees half a key), keys 0600,
and a lock so processes sharing a data dir do not both create what is missing."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from shopfloor.core import private_dir

__all__ = ["exclusive", "held", "write_atomically"]


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
def exclusive(lock: Path) -> Iterator[None]:
    """Hold `lock` (a file beside what it guards) alone; blocks, so call it in a thread."""
    fd = _acquire(lock)
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.asynccontextmanager
async def held(lock: Path) -> AsyncIterator[None]:
    """`exclusive` for a coroutine: waits for the lock in a thread."""
    fd = await asyncio.to_thread(_acquire, lock)
    try:
        yield
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` by `data` at once; the file is created with `mode` (0600: keys)."""
    private_dir(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, mode)  # the umask may have narrowed or the file pre-existed
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
