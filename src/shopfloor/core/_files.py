"""Files and folders of the data dir, readable by their owner only.

The data dir holds password hashes (the SQLite registry), the keys that sign tokens and
protect thing keys (`secrets/`) and the telemetry (the SQLite time series): nobody but
the service account has any business reading them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]


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
