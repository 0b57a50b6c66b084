"""Provisioning: device-type templates and the provisioner that applies them.

template = parse_template(yaml_text)                  # validated, versioned
plan = template.render(name="press-7", external_id="00:1b:44:11:3a:b7", variables={})
provisioned = await provisioner.provision(org_id, ProvisionRequest(...))   # all or nothing
"""

from ._errors import (
    InvalidProvisionRequest,
    InvalidTemplate,
    ProvisionError,
    TemplateConflict,
    TemplateNotFound,
)
from ._provision import (
    Provisioned,
    Provisioner,
    ProvisionRequest,
)
from ._store import MIGRATIONS, StoredTemplate, TemplateStore, parse_reference
from ._templates import ChannelPlan, Plan, Template, parse_duration, parse_template

__all__ = [
    "MIGRATIONS",
    "ChannelPlan",
    "InvalidProvisionRequest",
    "InvalidTemplate",
    "Plan",
    "ProvisionError",
    "ProvisionRequest",
    "Provisioned",
    "Provisioner",
    "StoredTemplate",
    "Template",
    "TemplateConflict",
    "TemplateNotFound",
    "TemplateStore",
    "parse_duration",
    "parse_reference",
    "parse_template",
]
