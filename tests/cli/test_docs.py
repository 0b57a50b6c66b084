"""The documentation names every setting and every error code the API can return."""

from __future__ import annotations

import re
from pathlib import Path

from shopfloor.core import env_names
from shopfloor.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
SRC = Path(__file__).resolve().parents[2] / "src" / "shopfloor"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "settings.md").read_text()
    names = env_names(Settings)
    assert "SHOPFLOOR_BUS_URL" in names and "SHOPFLOOR_DATABASE_URL" in names
    for name in names:
        assert f"`{name}`" in text, name


def test_every_api_error_code_is_documented() -> None:
    text = (DOCS / "api.md").read_text()
    sources = "\n".join(p.read_text() for p in (SRC / "api").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "auth").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "registry").glob("*.py"))
    codes = set(re.findall(r'code="([a-z_]+)"', sources))
    codes |= set(re.findall(r'(?:ApiError|IngressError)\(\s*\d+,\s*"([a-z_]+)"', sources))
    edges = "\n".join(p.read_text() for p in (SRC / "adapters").glob("*.py"))
    edges += "\n".join(p.read_text() for p in (SRC / "ingress").glob("*.py"))
    codes |= set(re.findall(r'code="([a-z_]+)"', edges))
    errors = "\n".join(p.read_text() for p in SRC.glob("*/_errors.py"))
    codes |= set(re.findall(r'^    code = "([a-z_]+)"', errors, re.M))
    codes |= set(
        re.findall(r'InvalidQuery\(\s*"([a-z_]+)"', (SRC / "storage" / "_query.py").read_text())
    )
    assert codes, "found the codes in the sources"
    missing = sorted(c for c in codes if f"`{c}`" not in text)
    assert not missing, f"undocumented error codes: {missing}"
