"""Provisioning failures (a subtree of `shopfloor.core`'s error tree).

ProvisionError                  every failure of provisioning a device; nothing is left
│                               behind by a failed provisioning
├── InvalidTemplate             a template that does not parse or validate (invalid)
├── TemplateNotFound            no template (version) of that name (not_found)
├── TemplateConflict            that version exists with other content (conflict)
└── InvalidProvisionRequest     a request the template cannot be rendered for (invalid)
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = [
    "InvalidProvisionRequest",
    "InvalidTemplate",
    "ProvisionError",
    "TemplateConflict",
    "TemplateNotFound",
]


class ProvisionError(ShopfloorError):
    code = "provision_failed"
    kind = ErrorKind.UNAVAILABLE


class InvalidTemplate(ProvisionError):
    code = "invalid_template"
    kind = ErrorKind.INVALID


class TemplateNotFound(ProvisionError):
    code = "template_not_found"
    kind = ErrorKind.NOT_FOUND


class TemplateConflict(ProvisionError):
    code = "template_version_exists"
    kind = ErrorKind.CONFLICT


class InvalidProvisionRequest(ProvisionError):
    code = "invalid_provision_request"
    kind = ErrorKind.INVALID
