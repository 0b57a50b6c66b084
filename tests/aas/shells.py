"""A shell with one submodel for the Manager and Core tests, and a platform whose aas
service talks over a given transport."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from basyx.aas import model

from shopfloor.aas.capability import AasService
from shopfloor.app import create_app
from tests.api.conftest import Api
from tests.serving import lifespan

AAS_ID = "https://example.org/aas/press-7"
SUBMODEL_ID = "https://example.org/sm/press-7/controls"


def press() -> tuple[model.AssetAdministrationShell, model.Submodel]:
    start = model.Operation(
        "start",
        input_variable=[model.Property("speed", model.datatypes.Int)],
        output_variable=[model.Property("rpm", model.datatypes.Int)],
    )
    controls = model.SubmodelElementCollection(
        "Controls",
        value=[
            start,
            model.Property("speed", model.datatypes.Int, value=10),
            model.Range("limits", model.datatypes.Double, min=0.0, max=1.5),
            model.MultiLanguageProperty(
                "label", model.MultiLanguageTextType({"en": "Press", "de": "Presse"})
            ),
            model.File("manual", content_type="application/pdf"),
        ],
    )
    submodel = model.Submodel(SUBMODEL_ID, id_short="Controls", submodel_element=[controls])
    shell = model.AssetAdministrationShell(
        model.AssetInformation(global_asset_id="https://example.org/assets/press-7"),
        AAS_ID,
        id_short="Press7",
        submodel={model.ModelReference.from_referable(submodel)},
    )
    return shell, submodel


def encoded(identifier: str) -> str:
    return base64.urlsafe_b64encode(identifier.encode()).decode().rstrip("=")


@dataclass
class Plant:
    """A running platform with the press stored in an organisation and a Manager for it."""

    api: Api
    org_id: str
    headers: dict[str, str]
    manager: dict[str, Any]

    @property
    def service(self) -> AasService:
        return self.api.platform.get(AasService)

    @property
    def topic(self) -> str:
        return str(self.manager["topic"])


@asynccontextmanager
async def plant(
    make_settings: Callable[..., Any], transport_url: str, *, managed: bool = True
) -> AsyncIterator[Plant]:
    app = create_app(make_settings(aas_transport_url=transport_url, aas_manager_poll=0.2))
    async with lifespan(app) as started:
        transport = httpx.ASGITransport(app=started.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfloor") as http:
            api = Api(http, app.state.platform, started.app)
            org_id = await api.org("press shop")
            headers = await api.member(org_id, "admin")
            store = api.platform.get(AasService).store
            await store.put_environment(org_id, press())
            manager: dict[str, Any] = {}
            if managed:
                response = await http.post(
                    "/api/v1/aas/managers", json={"aas_id": AAS_ID}, headers=headers
                )
                assert response.status_code == 201, response.text
                manager = response.json()
            yield Plant(api, org_id, headers, manager)
