"""The shell of the `aas_invoke` scenario and its Core, shared by every process of it.

One shell with one submodel holding the Operation `Controls.start` (input `speed`, an
xs:int; output `rpm`, an xs:int), and a Core (`shopfloor.aas.Core`) that runs it at once,
`rpm = speed * 100`, counting the calls it handled. The Core runs in a process of its own
(NATS, Kafka: `bench.scenarios.aas_invoke`'s `main(["core"])`) or inside the
platform's process (memory: `bench.aas_core_plugin`), always built by `press_core`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from basyx.aas import model
from basyx.aas.adapter.json import AASToJsonEncoder

from shopfloor.aas import Core

__all__ = ["AAS_ID", "OPERATION", "SUBMODEL_ID", "PressCore", "environment_json", "press_core"]

AAS_ID = "https://example.org/aas/press-7"
SUBMODEL_ID = "https://example.org/sm/press-7/controls"
OPERATION = "Controls.start"


def environment_json() -> bytes:
    """The shell and its submodel as an AAS JSON environment (the upload's body)."""
    start = model.Operation(
        "start",
        input_variable=[model.Property("speed", model.datatypes.Int)],
        output_variable=[model.Property("rpm", model.datatypes.Int)],
    )
    controls = model.SubmodelElementCollection("Controls", value=[start])
    submodel = model.Submodel(SUBMODEL_ID, id_short="Controls", submodel_element=[controls])
    shell = model.AssetAdministrationShell(
        model.AssetInformation(global_asset_id="https://example.org/assets/press-7"),
        AAS_ID,
        id_short="Press7",
        submodel={model.ModelReference.from_referable(submodel)},
    )
    body = {"assetAdministrationShells": [shell], "submodels": [submodel]}
    return json.dumps(body, cls=AASToJsonEncoder).encode()


@dataclass
class PressCore:
    core: Core
    #: Calls of `Controls.start` the Core handled.
    handled: int = field(default=0)


def press_core(topic: str, transport_url: str) -> PressCore:
    """A Core of the shell on `topic`, not yet started (`async with made.core`)."""
    made = PressCore(Core(topic=topic, transport=transport_url))

    @made.core.operation(OPERATION)
    async def start(arguments: dict[str, Any]) -> dict[str, Any]:
        made.handled += 1
        return {"rpm": int(arguments["speed"]) * 100}

    return made
