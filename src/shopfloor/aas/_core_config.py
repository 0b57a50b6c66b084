"""`CoreConfig`: where a Core finds its topic, its broker and its AAS definition, read at
its edge from what the platform hands it (docs/aas-protocol.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from basyx.aas import model

from ._errors import InvalidAasRequest

__all__ = ["CoreConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreConfig:
    """Where a Core finds its shell: what the platform hands it (the `core` of
    `POST /api/v1/aas/managers`), as environment variables or a JSON file."""

    transport_url: str
    topic: str
    aas_id: str
    #: The shell's AAS definition (XML or JSON environment), when the deployment has one.
    aas_file: str | None = None

    VARIABLES = {
        "transport_url": "SHOPFLOOR_CORE_TRANSPORT_URL",
        "topic": "SHOPFLOOR_CORE_TOPIC",
        "aas_id": "SHOPFLOOR_CORE_AAS_ID",
        "aas_file": "SHOPFLOOR_CORE_AAS_FILE",
    }
    #: Names a JSON file with the same fields (a mounted ConfigMap, say).
    FILE_VARIABLE = "SHOPFLOOR_CORE_CONFIG"
    #: A relative `aas_file` is in this folder: an agent's files (`shopfloor.sdk`).
    FILES_VARIABLE = "SHOPFLOOR_AGENT_FILES"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CoreConfig:
        """From `SHOPFLOOR_CORE_CONFIG`'s file, then `SHOPFLOOR_CORE_*` over it."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        path = env.get(cls.FILE_VARIABLE)
        if path:
            try:
                loaded = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidAasRequest(
                    f"cannot read the Core config {path}: {exc}", code="invalid_core_config"
                ) from exc
            if not isinstance(loaded, dict):
                raise InvalidAasRequest(
                    f"the Core config {path} is not a JSON object", code="invalid_core_config"
                )
            values.update({k: str(v) for k, v in loaded.items() if k in cls.VARIABLES})
        values.update({k: env[v] for k, v in cls.VARIABLES.items() if env.get(v)})
        missing = [
            cls.VARIABLES[k] for k in ("transport_url", "topic", "aas_id") if k not in values
        ]
        if missing:
            raise InvalidAasRequest(
                f"the Core needs {', '.join(missing)} (or {cls.FILE_VARIABLE})",
                code="invalid_core_config",
            )
        folder = env.get(cls.FILES_VARIABLE)
        if values.get("aas_file") and folder and not Path(values["aas_file"]).is_absolute():
            values["aas_file"] = str(Path(folder) / values["aas_file"])
        return cls(**values)

    def read_aas(self) -> list[model.Identifiable]:
        """The identifiables of `aas_file` (XML, or JSON by its `.json` suffix), read
        strictly: a definition the metamodel refuses is `InvalidAasRequest`."""
        if self.aas_file is None:
            raise InvalidAasRequest(
                "the Core was given no AAS file (SHOPFLOOR_CORE_AAS_FILE)",
                code="invalid_core_config",
            )
        path = Path(self.aas_file)
        # basyx's adapters import lxml (0.3 s at every command's start): imported when used
        from basyx.aas.adapter import json as aas_json
        from basyx.aas.adapter import xml as aas_xml

        read = (
            aas_json.read_aas_json_file
            if path.suffix.lower() == ".json"
            else aas_xml.read_aas_xml_file
        )
        try:
            return list(read(path, failsafe=False))
        # lxml's XMLSyntaxError is a SyntaxError; basyx raises the others.
        except (OSError, SyntaxError, ValueError, KeyError, TypeError) as exc:
            raise InvalidAasRequest(
                f"cannot read the AAS file {path}: {exc}", code="invalid_core_config"
            ) from exc

    def environment(self) -> dict[str, str]:
        """The variables `from_env` reads, for a container's environment."""
        fields = {
            "transport_url": self.transport_url,
            "topic": self.topic,
            "aas_id": self.aas_id,
            "aas_file": self.aas_file,
        }
        return {self.VARIABLES[k]: v for k, v in fields.items() if v is not None}
