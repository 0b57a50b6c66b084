"""`shopfloor provision batch`: many devices from a CSV file, a result per row."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from shopfloor.app import create_app
from shopfloor.bootstrap.provisioning.commands import provision_app, provision_rows, read_rows
from shopfloor.httpserver import server_config

from ..api.conftest import ROOT, Api
from ..serving import served_app
from .conftest import Plant

TEMPLATE = 'name: sensor\nversion: 1\nchannels: [{name: "${line} sensors"}]\n'
DEVICES = """external_id,external_key,name,template,line
aa:01,key-of-sensor-0001,sensor-1,,L1
aa:02,key-of-sensor-0002,sensor-2,,L1
aa:03,,sensor-3,,L2
aa:01,key-of-sensor-0001,sensor-1-again,,L1
aa:05,key-of-sensor-0005,sensor-5,nosuch,L2
aa:06,key-of-sensor-0006,sensor-6,sensor@1,
aa:07,key-of-sensor-0007,sensor-7,,L2
"""


async def test_a_bad_row_never_stops_the_others(api: Api, plant: Plant, tmp_path: Path) -> None:
    response = await api.http.post(
        "/api/v1/provision/templates", content=TEMPLATE,
        headers=plant.engineer | {"Content-Type": "application/yaml"},
    )  # fmt: skip
    assert response.status_code == 201
    devices = tmp_path / "devices.csv"
    devices.write_text(DEVICES)
    api.http.headers.update(plant.engineer)
    seen: list[int] = []
    results = await provision_rows(
        api.http, read_rows(devices), default_template="sensor", concurrency=1,
        on_result=lambda result: seen.append(result.row),
    )  # fmt: skip
    assert sorted(seen) == [1, 2, 3, 4, 5, 6, 7]  # progress heard of every row
    outcome = {r.row: (r.status, r.code) for r in results}
    assert outcome == {
        1: ("created", ""),
        2: ("created", ""),
        3: ("failed", "invalid_row"),  # no external key
        4: ("failed", "bootstrap_external_id_taken"),
        5: ("failed", "template_not_found"),
        6: ("failed", "template_variables_missing"),  # `line` is empty: no variable
        7: ("created", ""),
    }
    channels = await api.http.get("/api/v1/channels", headers=plant.engineer)
    assert sorted(c["name"] for c in channels.json()["items"]) == ["L1 sensors", "L2 sensors"]


async def test_devices_sharing_a_new_channel_are_provisioned_together(
    api: Api, plant: Plant, tmp_path: Path
) -> None:
    # Several at once create the same channel: the ones that lose the race start again
    # and reuse it.
    response = await api.http.post(
        "/api/v1/provision/templates", content=TEMPLATE,
        headers=plant.engineer | {"Content-Type": "application/yaml"},
    )  # fmt: skip
    assert response.status_code == 201
    devices = tmp_path / "devices.csv"
    rows = [f"bb:{n:02x},key-of-sensor-{n:04d},sensor-{n},sensor,L9" for n in range(12)]
    devices.write_text("external_id,external_key,name,template,line\n" + "\n".join(rows))
    api.http.headers.update(plant.engineer)
    results = await provision_rows(api.http, read_rows(devices), concurrency=6)
    assert [(r.status, r.code) for r in results] == [("created", "")] * 12
    channels = (await api.http.get("/api/v1/channels", headers=plant.engineer)).json()
    assert [c["name"] for c in channels["items"]] == ["L9 sensors"]


async def test_the_command_writes_a_result_file(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    app = create_app(make_settings(services=("api", "provision")))
    async with served_app(server_config(app, app.state.platform.settings)) as port:
        url = f"http://127.0.0.1:{port}"
        token = await _engineer_with_template(url)
        devices = tmp_path / "devices.csv"
        devices.write_text(DEVICES)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            provision_app,
            [
                "batch",
                str(devices),
                "--url",
                url,
                "--template",
                "sensor",
                "--token",
                token,
                "--concurrency",
                "1",
            ],
        )
    assert result.exit_code == 1, result.output  # some rows failed
    assert "3 created, 4 failed" in result.output
    with (tmp_path / "devices.results.csv").open() as written:
        rows = list(csv.DictReader(written))
    assert [row["row"] for row in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [row["status"] for row in rows] == [
        "created", "created", "failed", "failed", "failed", "failed", "created",
    ]  # fmt: skip
    assert rows[2]["code"] == "invalid_row" and rows[2]["message"] == "missing external_key"
    assert rows[0]["thing_id"] and rows[0]["http_status"] == "201"
    assert rows[3]["http_status"] == "409"


async def _engineer_with_template(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        root = await http.post("/api/v1/auth/token", json={"email": ROOT[0], "password": ROOT[1]})
        headers = {"Authorization": f"Bearer {root.json()['access_token']}"}
        org = (await http.post("/api/v1/orgs", json={"name": "Plant"}, headers=headers)).json()
        user = {"email": "eng@plant.example", "password": "password-123", "org_id": org["id"],
                "role": "engineer"}  # fmt: skip
        assert (await http.post("/api/v1/users", json=user, headers=headers)).status_code == 201
        signed = await http.post(
            "/api/v1/auth/token", json={"email": user["email"], "password": user["password"]}
        )
        token = str(signed.json()["access_token"])
        response = await http.post(
            "/api/v1/provision/templates", content=TEMPLATE,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        return token
