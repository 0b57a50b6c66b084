"""Files written whole and file locks: what the flows, pki and other data-dir files share."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shopfloor.core import file_lock, held_file_lock, write_atomically


def test_a_file_is_replaced_whole_with_its_mode_and_private_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "key.pem"
    write_atomically(path, b"first")
    write_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    write_atomically(tmp_path / "ca.pem", b"public", mode=0o644)
    assert (tmp_path / "ca.pem").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.pem"]


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "flow.json"
    write_atomically(path, b"old")

    def full(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["flow.json"]


def test_threads_writing_one_path_never_leave_a_mixed_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    contents = [bytes([65 + n]) * 100_000 for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda data: write_atomically(path, data), contents))
    assert path.read_bytes() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]


def test_a_file_lock_is_held_alone(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / ".lock"
    trying = threading.Event()
    released = threading.Event()
    saw_released: list[bool] = []

    def second() -> None:
        trying.set()
        with file_lock(lock):
            saw_released.append(released.is_set())

    with file_lock(lock):
        thread = threading.Thread(target=second)
        thread.start()
        assert trying.wait(5)
        # a broken lock lets the second holder in now, while this one holds it
        thread.join(0.2)
        released.set()
    thread.join(5)
    assert saw_released == [True]


async def test_the_coroutine_lock_waits_in_a_thread(tmp_path: Path) -> None:
    lock = tmp_path / ".lock"
    async with held_file_lock(lock):
        assert lock.exists()
    with file_lock(lock):  # released: taken again at once
        pass
