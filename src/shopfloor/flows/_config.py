"""The ConfigManager: flow documents as files, one per flow, with their history.

    <data-dir>/flows/<org_id>/<flow_id>.json                 the revision in effect
    <data-dir>/flows/<org_id>/history/<flow_id>/<rev>.json   every revision stored

Every write goes to a temporary file that is synced and then renamed over the old one
(`os.replace`), and the folder is synced too: a crash leaves the old file or the new
one, never half of either. A revision is written to the history before it takes
effect, so the history always holds the file in effect.

`rev` is the flow's revision, set here: 1 when created, one more on each change. A
change names the revision it was made from; any other is a `flow_rev_conflict`
(optimistic concurrency, also between processes sharing the data dir: writes hold a
lock on the organisation's folder and read the file again when it changed on disk).

A file changed by hand is picked up by `rescan` (the service calls it every
`SHOPFLOOR_FLOWS_POLL` seconds): when it is a valid document it becomes the next
revision (the file is rewritten with its `rev`), otherwise it is refused with one log
line listing its problems and the revision in effect stays. A file another process of
the platform wrote (its revision is in the history already) is taken as it is. At
start, a file that is not valid is replaced in memory by the newest valid revision of
its history, if it has one. A document is never half-loaded: it is read whole and
checked before it replaces anything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shopfloor.core import file_lock, sync_dir, write_atomically

from ._document import FlowDocument, decode_flow, read_flow
from ._errors import FlowConflict, FlowNotFound, FlowStoreError, InvalidFlow, Problem

__all__ = ["ConfigManager", "OnChange", "Revision"]

logger = logging.getLogger(__name__)

#: Organisation ids name folders: nothing that could climb out of the flows folder.
_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_FLOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HISTORY = "history"
LOCK = ".lock"


#: `on_change(org_id, flow_id, rev, op)`: `op` is "put" (`rev` in effect) or "delete".
OnChange = Callable[[str, str, int | None, str], None]


@dataclass(frozen=True, slots=True)
class Revision:
    """One stored revision of a flow."""

    rev: int
    name: str
    saved_at: datetime


@dataclass(slots=True)
class _Held:
    doc: FlowDocument
    #: (inode, mtime_ns, size) of the file when it was last read or written: every
    #: atomic write is a new inode, so a change is seen even within one clock tick.
    stamp: tuple[int, int, int] | None


class ConfigManager:
    """The flow documents of every organisation, kept in `root` (thread-safe)."""

    def __init__(
        self, root: Path, *, history_limit: int = 50, on_change: OnChange | None = None
    ) -> None:
        self.root = root
        self.history_limit = history_limit
        #: Called after each change that took effect, from the thread that made it.
        self.on_change = on_change
        self._held: dict[tuple[str, str], _Held] = {}
        #: Files refused, by their stamp: each refusal is logged once.
        self._refused: dict[tuple[str, str], tuple[int, int, int] | None] = {}
        self._lock = threading.RLock()

    # -- reading ---------------------------------------------------------------------

    def load(self) -> None:
        """Read every organisation's files (at start)."""
        with self._lock:
            self._held.clear()
            self._refused.clear()
            for org_id in self._org_ids():
                with self._folder(org_id):
                    for flow_id, path in self._files(org_id):
                        self._pick_up(org_id, flow_id, path, starting=True)

    def flows(self, org_id: str) -> list[FlowDocument]:
        """The organisation's flows, by id."""
        with self._lock:
            return [held.doc for (org, _), held in sorted(self._held.items()) if org == org_id]

    def get(self, org_id: str, flow_id: str) -> FlowDocument:
        """The flow in effect; without the lock, so that the event loop may ask while a
        change is being written (a dict read is atomic, and entries are replaced whole)."""
        held = self._held.get((org_id, flow_id))
        if held is None:
            raise FlowNotFound(f"no flow {flow_id!r}")
        return held.doc

    def history(self, org_id: str, flow_id: str) -> list[Revision]:
        """The stored revisions of a flow, newest first (also of a deleted flow)."""
        _check_ids(org_id, flow_id)
        with self._lock:
            revisions = []
            for rev, path in self._history_files(org_id, flow_id):
                try:
                    doc = FlowDocument.model_validate_json(path.read_bytes())
                    saved = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                except (OSError, ValueError):
                    logger.warning("flow history file %s cannot be read; skipped", path)
                    continue
                revisions.append(Revision(rev=rev, name=doc.name, saved_at=saved))
        if not revisions:
            raise FlowNotFound(f"no flow {flow_id!r} and no history of one")
        return revisions

    def revision(self, org_id: str, flow_id: str, rev: int) -> FlowDocument:
        """One stored revision of a flow."""
        _check_ids(org_id, flow_id)
        path = self._history_dir(org_id, flow_id) / f"{rev}.json"
        try:
            return FlowDocument.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise FlowNotFound(f"flow {flow_id!r} has no revision {rev}") from None
        except (OSError, ValueError) as exc:
            raise FlowStoreError(f"revision {rev} of flow {flow_id!r} cannot be read") from exc

    # -- changing --------------------------------------------------------------------

    def create(self, org_id: str, doc: FlowDocument) -> FlowDocument:
        """Store a new flow as its revision 1 (or the one after its history's newest)."""
        _check_ids(org_id, doc.id)
        with self._writing(org_id, doc.id):
            if (org_id, doc.id) in self._held:
                raise FlowConflict(f"a flow {doc.id!r} exists already", code="flow_exists")
            return self._store(org_id, doc)

    def update(self, org_id: str, doc: FlowDocument, *, rev: int) -> FlowDocument:
        """Replace a flow made from its revision `rev`; any other is a conflict."""
        _check_ids(org_id, doc.id)
        with self._writing(org_id, doc.id):
            self._expect(org_id, doc.id, rev)
            return self._store(org_id, doc)

    def delete(self, org_id: str, flow_id: str, *, rev: int | None = None) -> None:
        """Remove a flow's file (its history stays, so it can be restored)."""
        _check_ids(org_id, flow_id)
        with self._writing(org_id, flow_id):
            if rev is not None:
                self._expect(org_id, flow_id, rev)
            elif (org_id, flow_id) not in self._held:
                raise FlowNotFound(f"no flow {flow_id!r}")
            path = self._file(org_id, flow_id)
            try:
                path.unlink(missing_ok=True)
                sync_dir(path.parent)
            except OSError as exc:
                raise FlowStoreError(f"flow {flow_id!r} cannot be removed: {exc}") from exc
            del self._held[(org_id, flow_id)]
            self._refused.pop((org_id, flow_id), None)
            logger.info("flow %s of %s deleted", flow_id, org_id)
            self._changed(org_id, flow_id, None, "delete")

    def restore(
        self, org_id: str, flow_id: str, rev: int, *, expected: int | None = None
    ) -> FlowDocument:
        """Store revision `rev` again, as the next revision (also of a deleted flow);
        `expected`, when given, is the revision in effect the caller saw."""
        _check_ids(org_id, flow_id)
        with self._writing(org_id, flow_id):
            if expected is not None:
                self._expect(org_id, flow_id, expected)
            old = self.revision(org_id, flow_id, rev)
            # Checked again: a revision stored under older task types may not hold now.
            return self._store(org_id, read_flow(old.stored()))

    def rescan(self) -> int:
        """Pick up what changed on disk since the last look; returns how many files
        changed (taken or refused)."""
        changed = 0
        with self._lock:
            seen: set[tuple[str, str]] = set()
            for org_id in self._org_ids():
                files = self._scan(org_id)
                seen.update((org_id, flow_id) for flow_id, _, _ in files)
                moved = [(f, p) for f, p, stamp in files if stamp != self._known_stamp(org_id, f)]
                if not moved:
                    continue
                with self._folder(org_id):
                    for flow_id, path in moved:
                        changed += 1
                        self._pick_up(org_id, flow_id, path)
            for key in [key for key in self._held if key not in seen]:
                changed += 1
                del self._held[key]
                logger.warning("flow %s of %s: its file was removed; the flow is gone", *key[::-1])
                self._changed(*key, None, "delete")
            for key in [key for key in self._refused if key not in seen]:
                del self._refused[key]
        return changed

    # -- inside ----------------------------------------------------------------------

    def _expect(self, org_id: str, flow_id: str, rev: int) -> None:
        held = self._held.get((org_id, flow_id))
        if held is None:
            raise FlowNotFound(f"no flow {flow_id!r}")
        if held.doc.rev != rev:
            raise FlowConflict(
                f"flow {flow_id!r} is at revision {held.doc.rev}, not {rev}: read it again "
                "and apply the change to that",
                code="flow_rev_conflict",
            )

    def _store(self, org_id: str, doc: FlowDocument) -> FlowDocument:
        stored = doc.model_copy(update={"rev": self._next_rev(org_id, doc.id)})
        data = _encode(stored)
        path = self._file(org_id, stored.id)
        try:
            write_atomically(self._history_dir(org_id, stored.id) / f"{stored.rev}.json", data)
            write_atomically(path, data)
            stamp = self._stamp(path)
        except OSError as exc:
            raise FlowStoreError(f"flow {stored.id!r} cannot be written: {exc}") from exc
        self._held[(org_id, stored.id)] = _Held(stored, stamp)
        self._refused.pop((org_id, stored.id), None)
        self._prune(org_id, stored.id)
        logger.info("flow %s of %s stored as revision %d", stored.id, org_id, stored.rev)
        self._changed(org_id, stored.id, stored.rev, "put")
        return stored

    def _changed(self, org_id: str, flow_id: str, rev: int | None, op: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(org_id, flow_id, rev, op)
        except Exception:  # a listener's failure is not the change's
            logger.exception("flow %s of %s: announcing the change failed", flow_id, org_id)

    def _next_rev(self, org_id: str, flow_id: str) -> int:
        held = self._held.get((org_id, flow_id))
        newest = max((rev for rev, _ in self._history_files(org_id, flow_id)), default=0)
        current = (held.doc.rev or 0) if held is not None else 0
        return max(newest, current) + 1

    def _prune(self, org_id: str, flow_id: str) -> None:
        for _rev, path in self._history_files(org_id, flow_id)[self.history_limit :]:
            with contextlib.suppress(OSError):
                path.unlink()

    def _pick_up(self, org_id: str, flow_id: str, path: Path, *, starting: bool = False) -> None:
        """Take the file at `path` if it is valid, else log why and keep what is held."""
        key = (org_id, flow_id)
        stamp = self._stamp(path)
        try:
            data = path.read_bytes()
            doc = read_flow(decode_flow(data))
            if doc.id != flow_id:
                raise InvalidFlow("", problems=[Problem("id", "flow_id_mismatch",
                                  f"the file of flow {flow_id!r} holds {doc.id!r}")])  # fmt: skip
        except (OSError, InvalidFlow) as exc:
            self._refuse(key, path, stamp, exc, starting=starting)
            return
        if doc.rev is not None and self._in_history(org_id, doc, data):
            # Written by this platform (another process, or before a restart).
            self._held[key] = _Held(doc, stamp)
            self._refused.pop(key, None)
            return
        held = self._held.get(key)
        if held is not None and held.doc.model_copy(update={"rev": doc.rev}) == doc:
            held.stamp = stamp  # touched, not changed
            return
        try:
            stored = self._store(org_id, doc)
        except FlowStoreError as exc:
            self._refuse(key, path, stamp, exc, starting=starting)
            return
        logger.warning(
            "flow %s of %s: the file changed on disk and is taken as revision %d",
            flow_id, org_id, stored.rev,
        )  # fmt: skip

    def _refuse(
        self, key: tuple[str, str], path: Path, stamp: tuple[int, int, int] | None, exc: Exception,
        *, starting: bool,
    ) -> None:  # fmt: skip
        self._refused[key] = stamp
        reasons = "; ".join(exc.reasons) if isinstance(exc, InvalidFlow) else str(exc)
        held = self._held.get(key)
        if held is None and starting:
            held = self._newest_valid(*key)
            if held is not None:
                self._held[key] = held
        kept = f"revision {held.doc.rev} stays in effect" if held else "the flow is not loaded"
        logger.error("flow file %s is refused (%s); %s", path, reasons, kept)

    def _newest_valid(self, org_id: str, flow_id: str) -> _Held | None:
        for _rev, path in self._history_files(org_id, flow_id):
            try:
                doc = read_flow(decode_flow(path.read_bytes()))
            except (OSError, InvalidFlow):
                continue
            return _Held(doc, None)
        return None

    def _in_history(self, org_id: str, doc: FlowDocument, data: bytes) -> bool:
        path = self._history_dir(org_id, doc.id) / f"{doc.rev}.json"
        try:
            return path.read_bytes() == data
        except OSError:
            return False

    def _known_stamp(self, org_id: str, flow_id: str) -> tuple[int, int, int] | None:
        refused = self._refused.get((org_id, flow_id))
        if refused is not None:
            return refused
        held = self._held.get((org_id, flow_id))
        return held.stamp if held else None

    @contextlib.contextmanager
    def _writing(self, org_id: str, flow_id: str) -> Iterator[None]:
        """The locks of a change, and the flow's file read again if another process
        changed it meanwhile."""
        with self._folder(org_id):
            path = self._file(org_id, flow_id)
            if self._stamp(path) != self._known_stamp(org_id, flow_id):
                if path.exists():
                    self._pick_up(org_id, flow_id, path)
                else:
                    self._held.pop((org_id, flow_id), None)
            yield

    @contextlib.contextmanager
    def _folder(self, org_id: str) -> Iterator[None]:
        """This process's lock and the organisation folder's, for other processes: held
        by every write, so one revision is never stored twice."""
        with self._lock, contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.root / org_id / LOCK))
            except OSError as exc:
                raise FlowStoreError(f"the flows folder cannot be written: {exc}") from exc
            yield

    def _org_ids(self) -> list[str]:
        try:
            return sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and _ORG_ID.match(p.name)
            )
        except FileNotFoundError:
            return []

    def _files(self, org_id: str) -> list[tuple[str, Path]]:
        return [(flow_id, path) for flow_id, path, _ in self._scan(org_id)]

    def _scan(self, org_id: str) -> list[tuple[str, Path, tuple[int, int, int]]]:
        """The organisation's flow files with their stamps, by id: one directory read
        and a stat per file (`os.scandir`; `Path.glob` and a `stat` per path took a
        tenth of a core every poll with a thousand flows)."""
        found = []
        try:
            entries = list(os.scandir(self.root / org_id))
        except OSError:
            return []
        for entry in entries:
            flow_id, dot, suffix = entry.name.rpartition(".")
            if not (dot and suffix == "json" and _FLOW_ID.match(flow_id)):
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:
                continue
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            found.append((flow_id, Path(entry.path), stamp))
        return sorted(found)

    def _history_files(self, org_id: str, flow_id: str) -> list[tuple[int, Path]]:
        """Revision files of a flow, newest first."""
        folder = self._history_dir(org_id, flow_id)
        try:
            files = [(int(p.stem), p) for p in folder.glob("*.json") if p.stem.isdigit()]
        except OSError:
            return []
        return sorted(files, reverse=True)

    def _file(self, org_id: str, flow_id: str) -> Path:
        return self.root / org_id / f"{flow_id}.json"

    def _history_dir(self, org_id: str, flow_id: str) -> Path:
        return self.root / org_id / HISTORY / flow_id

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int, int] | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _check_ids(org_id: str, flow_id: str) -> None:
    if not _ORG_ID.match(org_id):
        raise FlowStoreError(f"organisation id {org_id!r} cannot name a folder")
    if not _FLOW_ID.match(flow_id):
        raise FlowNotFound(f"no flow {flow_id!r}")


def _encode(doc: FlowDocument) -> bytes:
    return (json.dumps(doc.stored(), indent=2, ensure_ascii=False) + "\n").encode()
