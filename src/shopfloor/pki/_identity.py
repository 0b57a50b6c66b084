"""Whose a certificate is: the entity named in its SAN URI `urn:shopfloor:<type>:<id>`.

The CN carries the entity id too (Mosquitto's `use_identity_as_username` reads the
CN). The SAN URI says the entity's type; a certificate without any Shopfloor SAN URI
may say it in its subject instead, `OU=urn:shopfloor:<type>` beside `CN=<id>`: the
CFSSL build of Debian (2016) copies no URI into what it signs, only the subject.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from ._errors import CertificateRefused, InvalidCertificateRequest

__all__ = ["URN_PREFIX", "Entity", "EntityType", "entity_of"]

URN_PREFIX = "urn:shopfloor:"
#: Entity ids: what the registry uses (uuids, names), no separators.
_ENTITY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: An agent of the agents service is `<org_id>/<name>` (the name a DNS label).
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
#: A flow is `<org_id>/<flow_id>` (a flow document's id: docs/flows.md).
_FLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: The types whose ids are `<org_id>/<name>`, and the shape of the name.
_SCOPED_IDS = {"agent": _AGENT_ID, "flow": _FLOW_ID}


class EntityType(enum.StrEnum):
    THING = "thing"
    AGENT = "agent"
    SERVICE = "service"
    #: A flow of the flows service, calling agents as itself (`flow:<flow_id>`): its
    #: certificate is made by the flows service, held in memory, never handed out.
    FLOW = "flow"


@dataclass(frozen=True, slots=True)
class Entity:
    """Who a certificate is issued to."""

    type: EntityType
    id: str

    def __post_init__(self) -> None:
        if _ENTITY_ID.fullmatch(self.id):
            return
        scoped = _SCOPED_IDS.get(self.type.value)
        if scoped is not None and scoped.fullmatch(self.id):
            return
        shapes = _ENTITY_ID.pattern
        if scoped is not None:
            shapes += f" or {scoped.pattern}"
        raise InvalidCertificateRequest(
            f"a {self.type.value} id must match {shapes}", code="invalid_entity_id"
        )

    @property
    def uri(self) -> str:
        return f"{URN_PREFIX}{self.type.value}:{self.id}"

    @classmethod
    def from_uri(cls, uri: str) -> Entity | None:
        if not uri.startswith(URN_PREFIX):
            return None
        kind, _, entity_id = uri[len(URN_PREFIX) :].partition(":")
        try:
            return cls(EntityType(kind), entity_id)
        except (ValueError, InvalidCertificateRequest):
            return None


def entity_of(certificate: x509.Certificate) -> Entity:
    """The entity a certificate names, or `CertificateRefused` (certificate_unknown_entity)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        uris: list[str] = []
    else:
        uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    entities = {entity for entity in map(Entity.from_uri, uris) if entity is not None}
    if not entities:
        entities = _subject_entities(certificate.subject)
    if len(entities) != 1:
        raise CertificateRefused(
            "the certificate names no single Shopfloor entity",
            code="certificate_unknown_entity",
        )
    return entities.pop()


def _subject_entities(subject: x509.Name) -> set[Entity]:
    units = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    typed = [str(unit.value) for unit in units if str(unit.value).startswith(URN_PREFIX)]
    if len(typed) != 1 or len(names) != 1:
        return set()
    entity = Entity.from_uri(f"{typed[0]!s}:{names[0].value!s}")
    return {entity} if entity is not None else set()
