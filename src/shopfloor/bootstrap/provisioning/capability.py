"""Provisioning as a service: templates and the provisioner, beside bootstrap and the CA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopfloor.auth.capability import IdentityService
from shopfloor.core import Service
from shopfloor.core.capability import DatabaseService
from shopfloor.pki.capability import PkiService
from shopfloor.ui import PREFIX, ConsolePage, pages
from shopfloor.ui.capability import console_templates

from .._bootstrap import CONFIG_CREATED
from ._provision import Provisioned, Provisioner
from ._store import MIGRATIONS, TemplateStore

if TYPE_CHECKING:
    from shopfloor.core import Platform

__all__ = ["ProvisionService"]


pages.add(
    ConsolePage(
        capability="provision", path=PREFIX + "/device-templates", title="device_templates.title",
        order=74,
    )
)  # fmt: skip


class ProvisionService(Service, name="provision", needs=("database", "bootstrap", "pki")):
    """Device-type templates and provisioning (thing, channels, bootstrap config, cert)."""

    routes = (
        "shopfloor.bootstrap.provisioning.routes:router",
        "shopfloor.bootstrap.provisioning.console:router",
    )
    commands = {"provision": "shopfloor.bootstrap.provisioning.commands:provision_app"}
    migrations = MIGRATIONS.versions
    version_table = MIGRATIONS.version_table

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        from shopfloor.bootstrap.capability import BootstrapService

        directory = platform.settings.data_dir / "provision" / "templates"
        self.templates = TemplateStore(platform.get(DatabaseService).engine, directory)
        self._bootstrap = platform.get(BootstrapService).bootstrap
        self.provisioner = Provisioner(
            platform.get(IdentityService).registry,
            self.templates,
            self._bootstrap.configs,
            platform.get(PkiService).certs,
            on_provisioned=self._announce,
        )
        console_templates(platform, "shopfloor.bootstrap.provisioning")  # the templates page's

    def _announce(self, done: Provisioned) -> None:
        # The registry announced the thing, its channels and connections after the commit;
        # the bootstrap config is told the way the bootstrap routes tell it.
        self._bootstrap.announce(CONFIG_CREATED, done.config)
