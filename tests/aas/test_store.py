"""The AAS model store on the platform database: basyx objects in and out unchanged,
versions, concurrent updates, whole environments in one transaction, files."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from basyx.aas import model
from basyx.aas.examples.data import example_aas

from shopfloor.aas import AasConflict, AasNotFound, AasStore, InvalidAasRequest, Kind
from shopfloor.aas._store import encode
from shopfloor.aas._tables import MIGRATIONS, aas_objects
from shopfloor.messaging.capability import BusService
from tests.aas.aaskit import serialised
from tests.api.conftest import Api

ORG, OTHER = "org-1", "org-2"


def _submodel(sm_id: str = "https://example.org/sm/1", value: int = 1) -> model.Submodel:
    return model.Submodel(
        sm_id,
        id_short="Speed",
        submodel_element=[model.Property("rpm", model.datatypes.Int, value=value)],
    )


async def test_the_full_example_round_trips_unchanged(store: AasStore) -> None:
    env = example_aas.create_full_example()
    written = await store.put_environment(ORG, env)
    assert sorted(len(ids) for ids in written.values()) == [1, 1, 3]
    for obj in env:
        kind = {model.AssetAdministrationShell: Kind.SHELL, model.Submodel: Kind.SUBMODEL}.get(
            type(obj), Kind.CONCEPT_DESCRIPTION
        )
        held = await store.get(ORG, kind, obj.id)
        assert held.version == 1
        assert serialised([held.obj]) == serialised([obj])
    with pytest.raises(AasNotFound):
        await store.get(OTHER, Kind.SHELL, next(iter(env)).id)


async def test_versions_refuse_a_stale_write_and_update_retries(store: AasStore) -> None:
    first = await store.put(ORG, _submodel())
    assert first.version == 1
    with pytest.raises(AasConflict) as taken:
        await store.put(ORG, _submodel(), create=True)
    assert taken.value.code == "aas_exists"
    second = await store.put(ORG, _submodel(value=2), version=1)
    assert second.version == 2
    with pytest.raises(AasConflict) as stale:
        await store.put(ORG, _submodel(value=3), version=1)
    assert stale.value.code == "aas_changed"

    def bump(obj: model.Identifiable) -> None:
        assert isinstance(obj, model.Submodel)
        prop = obj.get_referable("rpm")
        assert isinstance(prop, model.Property) and isinstance(prop.value, int)
        prop.value += 1

    # Twenty concurrent increments: none lost.
    await asyncio.gather(*(store.update(ORG, Kind.SUBMODEL, first.id, bump) for _ in range(20)))
    held = await store.get(ORG, Kind.SUBMODEL, first.id)
    prop = held.obj.get_referable("rpm")  # type: ignore[attr-defined]
    assert prop.value == 22 and held.version == 22


async def test_pages_by_cursor_and_filters(store: AasStore) -> None:
    for n in range(7):
        await store.put(ORG, _submodel(f"https://example.org/sm/{n}"))
    await store.put(OTHER, _submodel("https://example.org/sm/x"))
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.page(ORG, Kind.SUBMODEL, limit=3, cursor=cursor)
        seen += [item.id for item in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == [f"https://example.org/sm/{n}" for n in range(7)]
    assert len((await store.page(ORG, Kind.SUBMODEL, id_short="Speed")).items) == 7
    assert (await store.page(ORG, Kind.SUBMODEL, id_short="Other")).items == []
    with pytest.raises(InvalidAasRequest):
        await store.page(ORG, Kind.SUBMODEL, cursor="%%%")


async def test_an_environment_is_stored_whole_or_not_at_all(store: AasStore) -> None:
    await store.put(ORG, _submodel("https://example.org/sm/taken"))
    objects = [_submodel("https://example.org/sm/new"), _submodel("https://example.org/sm/taken")]
    with pytest.raises(AasConflict):
        await store.put_environment(
            ORG, objects, {"/aasx/manual.pdf": ("application/pdf", b"%PDF")}, replace=False
        )
    with pytest.raises(AasNotFound):
        await store.get(ORG, Kind.SUBMODEL, "https://example.org/sm/new")
    with pytest.raises(AasNotFound):
        await store.file(ORG, "/aasx/manual.pdf")
    await store.put_environment(ORG, objects, {"/aasx/manual.pdf": ("application/pdf", b"%PDF")})
    held = await store.file(ORG, "/aasx/manual.pdf")
    assert (held.content_type, held.data) == ("application/pdf", b"%PDF")
    assert set(await store.files(ORG, ["/aasx/manual.pdf", "/nope"])) == {"/aasx/manual.pdf"}


async def test_changes_are_announced(api: Api, store: AasStore) -> None:
    heard: list[dict[str, object]] = []
    events = api.platform.get(BusService).events
    with events.listen("aas.>", lambda event: heard.append(dict(event.data))):
        stored = await store.put(ORG, _submodel())
        await store.delete(ORG, Kind.SUBMODEL, stored.id)
    assert [(e["op"], e["ids"]) for e in heard] == [("put", [stored.id]), ("delete", [stored.id])]
    with pytest.raises(AasNotFound):
        await store.delete(ORG, Kind.SUBMODEL, stored.id)


def _shell(aas_id: str, *submodels: str) -> model.AssetAdministrationShell:
    return model.AssetAdministrationShell(
        model.AssetInformation(global_asset_id=f"{aas_id}/asset"),
        aas_id,
        submodel={
            model.ModelReference((model.Key(model.KeyTypes.SUBMODEL, s),), model.Submodel)
            for s in submodels
        },
    )


async def test_the_shells_of_a_submodel_are_found_by_an_index_kept_with_them(
    store: AasStore,
) -> None:
    a, b = "https://example.org/sm/a", "https://example.org/sm/b"
    await store.put(ORG, _shell("https://example.org/aas/1", a, b))
    await store.put_environment(ORG, [_shell("https://example.org/aas/2", a)])
    await store.put(OTHER, _shell("https://example.org/aas/3", a))
    assert await store.shells_referring(ORG, a) == [
        "https://example.org/aas/1", "https://example.org/aas/2",
    ]  # fmt: skip
    assert await store.shells_referring(ORG, b) == ["https://example.org/aas/1"]

    def drop_b(obj: model.Identifiable) -> None:
        assert isinstance(obj, model.AssetAdministrationShell)
        obj.submodel = {ref for ref in obj.submodel if ref.key[0].value != b}

    await store.update(ORG, Kind.SHELL, "https://example.org/aas/1", drop_b)
    assert await store.shells_referring(ORG, b) == []
    # A write refused as stale leaves the index as it was.
    with pytest.raises(AasConflict):
        await store.put(ORG, _shell("https://example.org/aas/2", b), version=7)
    assert await store.shells_referring(ORG, b) == []
    await store.delete(ORG, Kind.SHELL, "https://example.org/aas/2")
    assert await store.shells_referring(ORG, a) == ["https://example.org/aas/1"]
    assert await store.shells_referring(OTHER, a) == ["https://example.org/aas/3"]


async def test_the_upgrade_to_the_index_fills_it_from_the_stored_shells(tmp_path: Path) -> None:
    from shopfloor.core import create_engine, migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'aas.db'}")
    try:
        await migrate(engine, [MIGRATIONS], target="aas0003")
        body = encode(_shell("https://example.org/aas/1", "https://example.org/sm/a"))
        async with engine.begin() as conn:
            await conn.execute(
                aas_objects.insert().values(
                    org_id=ORG, kind=Kind.SHELL.value, id="https://example.org/aas/1",
                    id_short=None, global_asset_id=None, body=body, version=1,
                    updated_at=datetime.now(UTC),
                )
            )  # fmt: skip
        await migrate(engine, [MIGRATIONS])
        found = await AasStore(engine).shells_referring(ORG, "https://example.org/sm/a")
        assert found == ["https://example.org/aas/1"]
    finally:
        await engine.dispose()
