"""Provisioning as a service: templates and the provisioner, beside bootstrap and the CA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Service
from shopfloor.core.capability import DatabaseService
from shopfloor.messaging.capability import BusService
from shopfloor.pki.capability import PkiService

from .._bootstrap import CONFIG_CREATED
from ._provision import Provisioned, Provisioner
from ._store import MIGRATIONS, TemplateStore

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["ProvisionService"]


class ProvisionService(Service, name="provision", needs=("database", "bootstrap", "pki")):
    """Device-type templates and provisioning (thing, channels, bootstrap config, cert)."""

    routes = ("shopfloor.bootstrap.provisioning.routes:router",)
    commands = {"provision": "shopfloor.bootstrap.provisioning.commands:provision_app"}
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        from shopfloor.bootstrap.capability import BootstrapService

        directory = platform.settings.data_dir / "provision" / "templates"
        self.templates = TemplateStore(platform.get(DatabaseService).engine, directory)
        self._events = platform.get(BusService).events
        self.provisioner = Provisioner(
            platform.get(IdentityService).registry,
            self.templates,
            platform.get(BootstrapService).configs,
            platform.get(PkiService).certs,
            on_provisioned=self._announce,
        )

    def _announce(self, done: Provisioned) -> None:
        # The registry announced the thing, its channels and connections after the commit;
        # the bootstrap config is told the same way the bootstrap routes tell it.
        config = done.config
        self._events.emit(
            CONFIG_CREATED,
            {"org_id": config.org_id, "thing_id": config.thing_id,
             "external_id": config.external_id, "state": int(config.state)},
        )  # fmt: skip
