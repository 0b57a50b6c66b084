"""Where templates live: an organisation's versions in the database, the plant's in files.

Files `<data_dir>/provision/templates/*.yaml` hold templates every organisation can
use (put there by whoever installs the edge box); they are read again when they
change. Versions created through the API belong to one organisation. A name is one
or the other: the API refuses a name a file holds, so `press@2` means one thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shopfloor.core import MigrationChain

from ._errors import InvalidTemplate, TemplateConflict, TemplateNotFound
from ._templates import Template, parse_template

__all__ = ["MIGRATIONS", "StoredTemplate", "TemplateStore", "parse_reference"]

logger = logging.getLogger(__name__)

MIGRATIONS = MigrationChain(
    "provision", Path(__file__).parent / "migrations", "alembic_version_provision"
)

_metadata = sa.MetaData()
templates_table = sa.Table(
    "provision_templates",
    _metadata,
    sa.Column("org_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(36), nullable=True),
)


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    template: Template
    source: str
    origin: str  # "file" (the plant's, every organisation's) or "api" (this organisation's)
    created_at: datetime | None


def parse_reference(reference: str) -> tuple[str, int | None]:
    """`press` (the latest version) or `press@2`."""
    name, at, version = reference.partition("@")
    if not at:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidTemplate(f"{reference!r}: a version is a positive integer, as in press@2")
    return name, int(version)


class TemplateStore:
    def __init__(self, engine: AsyncEngine, directory: Path) -> None:
        self._engine = engine
        self._directory = directory
        self._files: dict[str, dict[int, StoredTemplate]] = {}
        self._seen: dict[Path, float] = {}

    @property
    def directory(self) -> Path:
        return self._directory

    def file_templates(self) -> dict[str, dict[int, StoredTemplate]]:
        """The templates of the directory, re-read when a file changed, appeared or went."""
        try:
            current = {
                path: path.stat().st_mtime
                for path in sorted(self._directory.glob("*.y*ml"))
                if path.suffix in (".yaml", ".yml")
            }
        except OSError:
            current = {}
        if current != self._seen:
            self._files = self._load_files(current)
            self._seen = current
        return self._files

    def _load_files(self, paths: dict[Path, float]) -> dict[str, dict[int, StoredTemplate]]:
        found: dict[str, dict[int, StoredTemplate]] = {}
        for path in paths:
            try:
                source = path.read_text(encoding="utf-8")
                template = parse_template(source)
            except (OSError, UnicodeDecodeError, InvalidTemplate) as exc:
                logger.warning("skipping the provisioning template %s: %s", path.name, exc)
                continue
            versions = found.setdefault(template.name, {})
            if template.version in versions:
                logger.warning(
                    "skipping %s: %s v%d is defined twice", path.name, template.name,
                    template.version,
                )  # fmt: skip
                continue
            versions[template.version] = StoredTemplate(template, source, "file", None)
        return found

    async def get(self, org_id: str, reference: str) -> StoredTemplate:
        name, version = parse_reference(reference)
        files = self.file_templates().get(name)
        if files:
            chosen = files.get(version) if version is not None else files[max(files)]
            if chosen is None:
                raise TemplateNotFound(f"template {name} has no version {version}")
            return chosen
        query = sa.select(templates_table).where(
            (templates_table.c.org_id == org_id) & (templates_table.c.name == name)
        )
        if version is not None:
            query = query.where(templates_table.c.version == version)
        query = query.order_by(templates_table.c.version.desc()).limit(1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise TemplateNotFound(
                f"no template {reference!r}" + ("" if version is None else " (that version)")
            )
        return _stored(row)

    async def latest(self, org_id: str) -> list[StoredTemplate]:
        """The latest version of every template an organisation can use, by name."""
        chosen = {name: versions[max(versions)] for name, versions in self.file_templates().items()}
        newest = (
            sa.select(templates_table.c.name, sa.func.max(templates_table.c.version).label("v"))
            .where(templates_table.c.org_id == org_id)
            .group_by(templates_table.c.name)
            .subquery()
        )
        query = (
            sa.select(templates_table)
            .join(
                newest,
                (templates_table.c.name == newest.c.name)
                & (templates_table.c.version == newest.c.v),
            )
            .where(templates_table.c.org_id == org_id)
        )
        async with self._engine.connect() as conn:
            for row in await conn.execute(query):
                chosen.setdefault(
                    row.name,
                    _stored(row),
                )
        return [chosen[name] for name in sorted(chosen)]

    async def versions(self, org_id: str, name: str) -> list[StoredTemplate]:
        files = self.file_templates().get(name)
        if files:
            return [files[v] for v in sorted(files)]
        async with self._engine.connect() as conn:
            rows = list(
                await conn.execute(
                    sa.select(templates_table)
                    .where((templates_table.c.org_id == org_id) & (templates_table.c.name == name))
                    .order_by(templates_table.c.version)
                )
            )
        if not rows:
            raise TemplateNotFound(f"no template {name!r}")
        return [_stored(r) for r in rows]

    async def add(self, org_id: str, source: str, *, created_by: str | None) -> StoredTemplate:
        """Store a new version. Its `version` must be above every stored one of its name."""
        template = parse_template(source)
        if template.name in self.file_templates():
            raise TemplateConflict(
                f"template {template.name} is defined by a file on the server; "
                "choose another name", code="template_name_reserved",
            )  # fmt: skip
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            newest = await self._newest(conn, org_id, template.name)
            if newest is not None and template.version <= newest:
                raise TemplateConflict(
                    f"template {template.name} is at version {newest}; "
                    f"a new version must be above it (got {template.version})"
                )
            try:
                await conn.execute(
                    sa.insert(templates_table).values(
                        org_id=org_id,
                        name=template.name,
                        version=template.version,
                        source=source,
                        created_at=now,
                        created_by=created_by,
                    )
                )
            except sa.exc.IntegrityError as exc:
                raise TemplateConflict(
                    f"template {template.name} v{template.version} was just created"
                ) from exc
        return StoredTemplate(template, source, "api", now)

    async def delete(self, org_id: str, name: str, version: int | None = None) -> int:
        """Delete one version, or every version of a name; returns how many went."""
        if name in self.file_templates():
            raise TemplateConflict(
                f"template {name} is defined by a file on the server; remove the file",
                code="template_name_reserved",
            )
        condition = (templates_table.c.org_id == org_id) & (templates_table.c.name == name)
        if version is not None:
            condition = condition & (templates_table.c.version == version)
        async with self._engine.begin() as conn:
            deleted = (await conn.execute(sa.delete(templates_table).where(condition))).rowcount
        if not deleted:
            raise TemplateNotFound(
                f"no template {name!r}" + ("" if version is None else f" v{version}")
            )
        return int(deleted)

    @staticmethod
    async def _newest(conn: AsyncConnection, org_id: str, name: str) -> int | None:
        newest = await conn.scalar(
            sa.select(sa.func.max(templates_table.c.version)).where(
                (templates_table.c.org_id == org_id) & (templates_table.c.name == name)
            )
        )
        return None if newest is None else int(newest)


def _stored(row: sa.Row[Any]) -> StoredTemplate:
    """A template version of the database (an organisation's, made through the API)."""
    return StoredTemplate(parse_template(row.source), row.source, "api", row.created_at)
