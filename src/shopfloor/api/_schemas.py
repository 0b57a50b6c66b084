"""Request and response bodies of the identity and registry routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Generic, TypeVar

import email_validator
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shopfloor.auth import MIN_PASSWORD_LENGTH
from shopfloor.registry import Permission, Role

from ._free_form import checked_free_form, readable_free_form

T = TypeVar("T")

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
Tag = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f,]+$"
    ),
]
Tags = Annotated[list[Tag], Field(max_length=50)]
# Free-form JSON sent by clients, bounded (see `_free_form`), and as read back.
FreeForm = Annotated[dict[str, Any], AfterValidator(checked_free_form)]
StoredFreeForm = Annotated[dict[str, Any], AfterValidator(readable_free_form)]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]
#: Checked, not set: a password from before the length rule must still be accepted here.
CurrentPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024)]

# A label email-validator has no objection to, put after a special-use domain while its
# syntax is checked (see `_email`).
_NEUTRAL_LABEL: Final = "example"


def _email(text: str) -> str:
    """`text` as a normalised e-mail address; ValueError when it is not one.

    Plants run mail on domains such as `plant.local`, `corp.internal` or `lab.test`.
    email-validator refuses the special-use names of RFC 6761 (`local`, `test`, ...)
    whatever its deliverability options, so such a domain is checked with a neutral
    label appended, which changes nothing about its syntax, and the label is dropped.
    """
    options: dict[str, Any] = {"check_deliverability": False, "globally_deliverable": False}
    local, _, domain = text.rpartition("@")
    probe = domain.rstrip(".").lower()
    special = any(
        probe == name or probe.endswith("." + name)
        for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
    )
    try:
        if not special:
            return email_validator.validate_email(text, **options).normalized
        checked = email_validator.validate_email(f"{local}@{domain}.{_NEUTRAL_LABEL}", **options)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    return checked.normalized.removesuffix(f".{_NEUTRAL_LABEL}")


Email = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email"}),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Body):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret
    expires_in: int


class OrgCreate(Body):
    name: Name


class OrgOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class UserCreate(Body):
    email: Email
    password: Password
    org_id: str | None = Field(default=None, description="Defaults to the caller's organisation.")
    role: Role = Role.VIEWER


class UserUpdate(Body):
    role: Role | None = None
    password: Password | None = None
    current_password: CurrentPassword | None = Field(
        default=None, description="Required to change one's own password; unused otherwise."
    )


class PasswordChange(Body):
    current_password: CurrentPassword
    new_password: Password


class UserOut(BaseModel):
    id: str
    email: str
    org_id: str | None
    role: Role | None
    platform_admin: bool
    created_at: datetime | None = None


class MeOut(UserOut):
    source: str = Field(description="`local` for Shopfloor accounts, `oidc` for the issuer's.")


class EntityCreate(Body):
    name: Name
    metadata: FreeForm = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)


class EntityUpdate(Body):
    name: Name | None = None
    metadata: FreeForm | None = None
    tags: Tags | None = None


class ChannelOut(BaseModel):
    id: str
    name: str
    metadata: StoredFreeForm
    tags: list[str]
    org_id: str
    created_at: datetime


class ThingOut(ChannelOut):
    key: str | None = Field(
        description="The thing's key; null for roles that may not see keys (see docs/roles.md)."
    )


class ConnectionBody(Body):
    permissions: Annotated[list[Permission], Field(min_length=1)] = Field(
        default_factory=lambda: [Permission.PUBLISH, Permission.SUBSCRIBE]
    )


class ConnectionOut(BaseModel):
    channel_id: str
    thing_id: str
    permissions: list[Permission]
    created_at: datetime


class ConnectedThingOut(ThingOut):
    permissions: list[Permission]


class ConnectedChannelOut(ChannelOut):
    permissions: list[Permission]


class PageOut(BaseModel, Generic[T]):
    total: int
    offset: int
    limit: int
    items: list[T]
