"""Files of `<data_dir>/pki/`: written whole (a reader never sees half a key), keys 0600,
and a lock so processes sharing a data dir do not both create what is missing (the
platform's own, `shopfloor.core`'s, under the names this folder uses)."""

from __future__ import annotations

from shopfloor.core import file_lock as exclusive
from shopfloor.core import held_file_lock as held
from shopfloor.core import write_atomically

__all__ = ["exclusive", "held", "write_atomically"]
