"""HTTP adapter → bus → writer → store → readers, on the embedded defaults."""

from __future__ import annotations

import csv
import io
import json
import time

import cbor2

from .conftest import Plant

SENML = json.dumps(
    [
        {"bn": "press-01:", "bt": 1795300000, "bu": "Cel", "n": "oil-temp", "v": 48.25},
        {"n": "pressure", "u": "bar", "v": 182.5, "t": 1},
        {"n": "running", "vb": True, "t": 2},
        {"n": "mode", "vs": "auto", "t": 3},
    ]
)


async def test_senml_is_stored_with_the_authenticated_publisher(plant: Plant) -> None:
    response = await plant.publish("press", SENML)
    assert response.status_code == 202, response.text
    body = await plant.wait_for(4, dir="asc")
    messages = body["messages"]
    assert [m["name"] for m in messages] == [
        "press-01:oil-temp", "press-01:pressure", "press-01:running", "press-01:mode",
    ]  # fmt: skip
    assert {m["publisher"] for m in messages} == {plant.things["press"]["id"]}
    assert {m["protocol"] for m in messages} == {"http"}
    assert messages[0] | {"time": 0} == {
        "channel": plant.channel, "subtopic": "", "publisher": plant.things["press"]["id"],
        "protocol": "http", "name": "press-01:oil-temp", "unit": "Cel", "time": 0,
        "value": 48.25, "sum": None,
    }  # fmt: skip
    assert messages[0]["time"] == 1795300000
    assert messages[2]["bool_value"] is True
    assert messages[3]["string_value"] == "auto"


async def test_cbor_subtopics_and_plain_json(plant: Plant) -> None:
    cbor = cbor2.dumps([{-2: "oven-02:", 0: "temp", 1: "Cel", 2: 180.0}])
    assert (
        await plant.publish("press", cbor, content_type="application/senml+cbor")
    ).status_code == 202
    plain = json.dumps({"spindle": {"rpm": 1500}, "alarm": False})
    response = await plant.publish(
        "press", plain, subtopic="line-a/press", content_type="application/json"
    )
    assert response.status_code == 202
    stored = await plant.wait_for(2, subtopic="line-a/press")
    assert sorted((m["name"], m.get("value"), m.get("bool_value")) for m in stored["messages"]) == [
        ("alarm", None, False), ("spindle.rpm", 1500, None),
    ]  # fmt: skip
    cbor_rows = await plant.wait_for(1, name="oven-02:temp")
    assert cbor_rows["messages"][0]["value"] == 180.0


async def test_refusals_have_codes(plant: Plant) -> None:
    cases = [
        (await plant.publish("stranger", SENML), 403, "publish_not_allowed"),
        (await plant.publish("reader", SENML), 403, "publish_not_allowed"),
        (await plant.publish("press", "[{]"), 400, "invalid_json"),
        (await plant.publish("press", '[{"v": 1}]'), 400, "invalid_senml"),
        (await plant.publish("press", SENML, content_type="text/plain"), 415,
         "unsupported_media_type"),
        (await plant.publish("press", SENML, subtopic="bad.topic"), 400, "invalid_subtopic"),
        (await plant.publish("press", SENML, subtopic="a/" * 30_000 + "a"), 400,
         "invalid_subtopic"),
        (await plant.publish("press", json.dumps([{"n": "n" * 1025, "v": 1}])), 400,
         "name_too_long"),
        (await plant.publish("press", json.dumps({"k" * 1025: 1}), content_type="application/json"),
         400, "name_too_long"),
        (await plant.publish("press", '[{"n": "x", "vs": "t", "t": 1e10}]'), 400,
         "time_out_of_range"),
        (await plant.publish("press", '[{"bt": 1e300, "n": "x", "v": 1}]'), 400,
         "time_out_of_range"),
    ]  # fmt: skip
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    url = f"/http/channels/{plant.channel}/messages"
    missing = await plant.api.http.post(url, content=SENML)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_credentials")
    wrong = await plant.api.http.post(url, content=SENML, headers={"Authorization": "Thing nope"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_credentials")
    huge = await plant.publish("press", b"[" + b" " * 2_000_000 + b"]")
    assert huge.status_code == 413
    # nothing of the above was stored
    await plant.publish("press", '[{"n": "ok", "v": 1}]')
    assert (await plant.wait_for(1))["messages"][0]["name"] == "ok"
    metrics = (await plant.api.http.get("/metrics")).text
    assert (
        'shopfloor_messages_rejected_total{code="publish_not_allowed",protocol="http"} 2.0'
        in metrics
    )


async def test_readers_access(plant: Plant) -> None:
    await plant.publish("press", SENML)
    await plant.wait_for(4)
    as_reader = await plant.read(headers=plant.key("reader"))
    assert as_reader.status_code == 200 and as_reader.json()["total"] == 4
    as_press = await plant.read(headers=plant.key("press"))  # publish only, no subscribe
    assert as_press.status_code == 403
    assert as_press.json()["error"]["code"] == "subscribe_not_allowed"
    as_stranger = await plant.read(headers=plant.key("stranger"))
    assert as_stranger.status_code == 403
    nobody = await plant.read(headers={"Authorization": ""})
    assert nobody.status_code == 401
    rival_org = await plant.api.org("Rival")
    rival = await plant.api.member(rival_org, "admin")
    assert (await plant.read(headers=rival)).status_code == 404
    viewer = await plant.api.member(plant.things["press"]["org_id"], "viewer")
    assert (await plant.read(headers=viewer)).status_code == 200


async def test_reader_filters_aggregation_and_csv(plant: Plant) -> None:
    base = 1795299960  # a whole minute
    pack = [{"bn": "m:", "bt": base, "n": "t", "v": float(i), "t": i} for i in range(0, 120, 10)]
    pack[0] |= {"bn": "m:", "bt": base}
    assert (await plant.publish("press", json.dumps(pack))).status_code == 202
    await plant.wait_for(12)
    hot = (await plant.read(name="m:t", v=50, comparator="gt")).json()
    assert hot["total"] == 6
    window = (await plant.read(**{"from": base + 20, "to": base + 50})).json()
    assert sorted(m["value"] for m in window["messages"]) == [20.0, 30.0, 40.0]
    avg = (await plant.read(name="m:t", aggregation="avg", interval="1m", dir="asc")).json()
    assert [(m["time"], m["value"]) for m in avg["messages"]] == [(base, 25.0), (base + 60, 85.0)]
    count = (await plant.read(aggregation="count")).json()
    assert [(m["name"], m["value"]) for m in count["messages"]] == [("m:t", 12)]
    bad = await plant.read(aggregation="avg", interval="fortnight")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_interval")
    exported = await plant.read(format="csv", limit=1000)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 12
    assert {r["publisher"] for r in rows} == {plant.things["press"]["id"]}
    assert sorted(float(r["value"]) for r in rows) == [float(i) for i in range(0, 120, 10)]


async def test_records_without_time_get_the_arrival_time(plant: Plant) -> None:
    before = time.time()
    await plant.publish("press", '[{"n": "now", "v": 1}]')
    stored = (await plant.wait_for(1))["messages"][0]
    assert before - 1 <= stored["time"] <= time.time() + 1


async def test_csv_cells_cannot_become_spreadsheet_formulas(plant: Plant) -> None:
    texts = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", "plain", "-12.5"]
    pack = [{"bn": "m:", "bt": 1795300000, "n": "s", "vs": texts[0]}]
    pack += [{"n": "s", "vs": text, "t": i} for i, text in enumerate(texts[1:], start=1)]
    pack += [{"n": "v", "u": "=unit", "v": -12.5, "t": 20}, {"n": "b", "vb": True, "t": 21}]
    assert (await plant.publish("press", json.dumps(pack))).status_code == 202
    await plant.wait_for(len(pack))

    exported = await plant.read(format="csv", limit=1000, dir="asc")

    rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    assert [r["string_value"] for r in rows[: len(texts)]] == [
        "'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tTAB", "'\rCR", "plain", "'-12.5",
    ]  # fmt: skip
    number, boolean = rows[len(texts)], rows[len(texts) + 1]
    assert (number["value"], number["unit"], number["bool_value"]) == ("-12.5", "'=unit", "")
    assert (boolean["bool_value"], boolean["value"]) == ("true", "")
    assert rows[0]["time"] == "1795300000.0"
