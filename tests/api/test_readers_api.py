"""The readers route refuses every bad or unknown query parameter with a 400 naming it."""

from __future__ import annotations

import pytest

from shopfloor.storage import EARLIEST_TIME, LATEST_TIME

from .conftest import Api

PARAMETERS = {
    "offset", "limit", "subtopic", "publisher", "name", "v", "comparator", "vs", "vb",
    "from", "to", "order", "dir", "aggregation", "interval", "format",
}  # fmt: skip


async def _channel(api: Api) -> tuple[str, dict[str, str]]:
    user = await api.member(await api.org("Plant"), "engineer")
    response = await api.http.post("/api/v1/channels", json={"name": "line"}, headers=user)
    return response.json()["id"], user


@pytest.mark.parametrize(
    ("params", "code", "named"),
    [
        ({"limit": "0"}, "invalid_limit", "limit"),
        ({"limit": "1001"}, "invalid_limit", "limit"),
        ({"limit": "1_000"}, "invalid_limit", "limit"),
        ({"offset": "-1"}, "invalid_offset", "offset"),
        ({"offset": str(10**20)}, "invalid_offset", "offset"),
        ({"format": "xml"}, "invalid_format", "format"),
        ({"aggregation": "median"}, "invalid_aggregation", "aggregation"),
        ({"order": "value"}, "invalid_order", "order"),
        ({"comparator": "ne", "v": "1"}, "invalid_comparator", "comparator"),
        ({"dir": "up"}, "invalid_dir", "dir"),
        ({"v": "hot"}, "invalid_v", "v"),
        ({"v": "1e400"}, "invalid_v", "v"),
        ({"vb": "yes"}, "invalid_vb", "vb"),
        ({"from": "9.3e12"}, "invalid_from", "from"),
        ({"from": "nan"}, "invalid_from", "from"),
        ({"to": "1e308"}, "invalid_to", "to"),
        ({"to": "-1e300"}, "invalid_to", "to"),
        ({"aggregation": "avg", "interval": "9999999999w"}, "invalid_interval", "interval"),
        ({"aggregation": "avg", "interval": "fortnight"}, "invalid_interval", "interval"),
        ({"aggregaton": "avg"}, "unknown_parameter", "aggregaton"),
        ({"from": "10", "to": "5"}, "invalid_time_range", "from"),
    ],
)
async def test_bad_parameters_are_400_with_a_code_naming_them(
    api: Api, params: dict[str, str], code: str, named: str
) -> None:
    channel, user = await _channel(api)

    response = await api.http.get(
        f"/api/v1/channels/{channel}/messages", params=params, headers=user
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert f"'{named}'" in error["message"] or f"{named} " in error["message"], error


async def test_a_misspelt_parameter_gets_a_suggestion(api: Api) -> None:
    channel, user = await _channel(api)

    response = await api.http.get(
        f"/api/v1/channels/{channel}/messages?aggregaton=avg", headers=user
    )

    assert "did you mean 'aggregation'" in response.json()["error"]["message"]


async def test_the_ends_of_the_storable_range_are_valid_bounds(api: Api) -> None:
    channel, user = await _channel(api)
    params = {"from": str(EARLIEST_TIME), "to": str(LATEST_TIME)}

    response = await api.http.get(
        f"/api/v1/channels/{channel}/messages", params=params, headers=user
    )

    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0


async def test_credentials_are_checked_before_parameters(api: Api) -> None:
    channel, _ = await _channel(api)

    response = await api.http.get(f"/api/v1/channels/{channel}/messages?limit=0")

    assert response.status_code == 401


async def test_the_parameters_stay_in_the_openapi_document(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/channels/{channel_id}/messages"]["get"]

    documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}

    assert documented == PARAMETERS
