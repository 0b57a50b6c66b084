"""The documentation names every setting and every error code the API can return."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from shopfloor.core import env_names
from shopfloor.senml import SenMLErrorCode, normalize
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
    sources += "\n".join(p.read_text() for p in (SRC / "auth").rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "registry").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "pki").glob("*.py"))
    # (the batch command's own result codes are in docs/provisioning.md, not API codes)
    sources += "\n".join(
        p.read_text() for p in (SRC / "bootstrap").rglob("*.py") if p.name != "commands.py"
    )
    sources += "\n".join(p.read_text() for p in (SRC / "sdk").glob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "aas").rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "agents").rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "flows").rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (SRC / "dashboards").rglob("*.py"))
    codes = set(re.findall(r'code="([a-z_]+)"', sources))
    codes |= set(re.findall(r'(?:ApiError|IngressError)\(\s*\d+,\s*"([a-z_]+)"', sources))
    edges = "\n".join(p.read_text() for p in (SRC / "adapters").glob("*.py"))
    edges += "\n".join(p.read_text() for p in (SRC / "ingress").glob("*.py"))
    codes |= set(re.findall(r'code="([a-z_]+)"', edges))
    error_files = [
        *SRC.glob("*/_errors.py"),
        *(SRC / "bootstrap").rglob("_errors.py"),
        *(SRC / "auth").rglob("_errors.py"),
    ]
    errors = "\n".join(p.read_text() for p in dict.fromkeys(error_files))
    codes |= set(re.findall(r'^    code = "([a-z_]+)"', errors, re.M))
    codes |= set(
        re.findall(r'InvalidQuery\(\s*"([a-z_]+)"', (SRC / "storage" / "_query.py").read_text())
    )
    # the ingress answers `unsupported_media_type` (415) for an unknown content type
    codes |= set(get_args(SenMLErrorCode)) - {"unsupported_content_type"}
    assert codes, "found the codes in the sources"
    missing = sorted(c for c in codes if f"`{c}`" not in text)
    assert not missing, f"undocumented error codes: {missing}"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_api_examples_match_what_is_stored() -> None:
    text = (DOCS / "api.md").read_text()
    sending = _section(text, "Sending messages as a thing (HTTP adapter)")
    pack = re.search(r"senml\+json' \\\n\s+-d '(\[.*?\])'", sending, re.DOTALL)
    assert pack is not None, "the SenML example"
    records = normalize(pack.group(1).encode(), "application/senml+json", now=0.0)
    # a unit belongs to numbers only
    assert all(r.unit is None for r in records if r.value is None), records
    stored = {r.name for r in records}

    reading = _section(text, "Reading stored messages")
    queried = set(re.findall(r"[?&]name=([^&\"]+)", reading))
    assert queried and queried <= stored, queried - stored

    response = re.search(r"```json\n(.*?)```", reading, re.DOTALL)
    assert response is not None, "the reader response example"
    body = json.loads(response.group(1))
    assert body["total"] == len(body["messages"])
    shown = {kind for message in body["messages"] for kind in message}
    assert {"value", "string_value", "bool_value", "data_value"} <= shown
