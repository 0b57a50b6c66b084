"""The documentation names every setting and every error code the API can return."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from shopfloor.senml import SenMLErrorCode
from shopfloor.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
SRC = Path(__file__).resolve().parents[2] / "src" / "shopfloor"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"SHOPFLOOR_{name.upper()}" in text, name


def test_every_api_error_code_is_documented() -> None:
    text = (DOCS / "api.md").read_text()
    sources = "\n".join(p.read_text() for p in (SRC / "api").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "auth").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "registry").glob("*.py"))
    codes = set(re.findall(r'code="([a-z_]+)"', sources))
    codes |= set(re.findall(r'(?:ApiError|IngressError)\(\s*\d+,\s*"([a-z_]+)"', sources))
    adapters = "\n".join(p.read_text() for p in (SRC / "adapters").glob("*.py"))
    codes |= set(re.findall(r'IngressError\(\s*\d+,\s*"([a-z_]+)"', adapters))
    codes |= set(
        re.findall(r'InvalidQuery\(\s*"([a-z_]+)"', (SRC / "storage" / "_query.py").read_text())
    )
    # the ingress answers `unsupported_media_type` (415) for an unknown content type
    codes |= set(get_args(SenMLErrorCode)) - {"unsupported_content_type"}
    assert codes, "found the codes in the sources"
    missing = sorted(c for c in codes if f"`{c}`" not in text)
    assert not missing, f"undocumented error codes: {missing}"
