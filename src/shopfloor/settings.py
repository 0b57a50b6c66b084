"""The settings of a process, read once at the edge (CLI) and passed in.

Every field can be set from the environment with the `SHOPFLOOR_` prefix
(`SHOPFLOOR_HTTP_PORT=8080`) or from the `shopfloor serve` options. The server's own
settings are `CoreSettings`; each capability adds its section
(`settings.section(MessagingSettings).bus_url`), and keeps the flat environment
names (`SHOPFLOOR_BUS_URL`). Backends are chosen by URL scheme; the defaults are the
embedded ones. `Settings` holds every built-in capability; `settings_class(extra)`
adds plug-in capabilities named in `SHOPFLOOR_CAPABILITIES`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shopfloor.core import CoreSettings, Section, discover, selectable_services, settings_model

__all__ = ["Settings", "settings_class"]


def settings_class(extra: Iterable[str] = ()) -> type[CoreSettings]:
    """The settings model of every capability found, built-in and `extra` modules."""
    return _settings_class(tuple(extra))


@functools.cache
def _settings_class(extra: tuple[str, ...]) -> type[CoreSettings]:
    # Built once per set of plug-ins: the CLI asks again after import, with the same ones.
    discover(extra)
    return settings_model(Section.backends, selectable_services())


if TYPE_CHECKING:
    Settings = CoreSettings
else:
    Settings = settings_class()
