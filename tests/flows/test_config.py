"""The ConfigManager: files written whole, history, restore, stale revisions, and files
changed on disk picked up when valid and refused when not."""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from shopfloor.flows import ConfigManager, FlowConflict, FlowNotFound, FlowStoreError, read_flow

from .conftest import flow

ORG = "org-1"


@pytest.fixture
def configs(tmp_path: Path) -> ConfigManager:
    manager = ConfigManager(tmp_path / "flows", history_limit=3)
    manager.load()
    return manager


def on_disk(configs: ConfigManager, flow_id: str = "line-3", org: str = ORG) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((configs.root / org / f"{flow_id}.json").read_text())
    return data


def edit_by_hand(configs: ConfigManager, text: str, flow_id: str = "line-3") -> None:
    path = configs.root / ORG / f"{flow_id}.json"
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    # A stamp that differs even on file systems with coarse timestamps.
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_a_created_flow_is_revision_1_in_its_file_and_history(configs: ConfigManager) -> None:
    stored = configs.create(ORG, read_flow(flow()))
    assert stored.rev == 1
    assert on_disk(configs) == stored.stored()
    assert [r.rev for r in configs.history(ORG, "line-3")] == [1]
    assert (configs.root / ORG / "line-3.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (configs.root / ORG).iterdir() if p.name.endswith(".tmp")] == []


def test_flows_are_read_again_at_start(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    configs.create("org-2", read_flow(flow("other")))
    again = ConfigManager(configs.root)
    again.load()
    assert [f.id for f in again.flows(ORG)] == ["line-3"]
    assert [f.id for f in again.flows("org-2")] == ["other"]
    assert again.get(ORG, "line-3").rev == 1


def test_organisations_do_not_see_each_others_flows(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    with pytest.raises(FlowNotFound):
        configs.get("org-2", "line-3")
    assert configs.flows("org-2") == []
    configs.create("org-2", read_flow(flow()))  # the same id in another organisation
    assert configs.get("org-2", "line-3").rev == 1


def test_an_update_from_the_revision_in_effect_is_the_next_revision(
    configs: ConfigManager,
) -> None:
    configs.create(ORG, read_flow(flow()))
    updated = configs.update(ORG, read_flow(flow(name="renamed")), rev=1)
    assert updated.rev == 2 and on_disk(configs)["name"] == "renamed"
    assert [r.rev for r in configs.history(ORG, "line-3")] == [2, 1]
    assert configs.revision(ORG, "line-3", 1).name == "Line 3 temperature"


def test_a_stale_revision_is_a_conflict_and_changes_nothing(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    configs.update(ORG, read_flow(flow(name="first")), rev=1)
    with pytest.raises(FlowConflict) as conflict:
        configs.update(ORG, read_flow(flow(name="second")), rev=1)
    assert conflict.value.code == "flow_rev_conflict"
    assert configs.get(ORG, "line-3").name == "first" and on_disk(configs)["name"] == "first"
    with pytest.raises(FlowConflict, match="exists"):
        configs.create(ORG, read_flow(flow()))


def test_another_manager_on_the_same_folder_sees_the_revision_in_effect(
    configs: ConfigManager,
) -> None:
    configs.create(ORG, read_flow(flow()))
    other = ConfigManager(configs.root)
    other.load()
    other.update(ORG, read_flow(flow(name="by the other process")), rev=1)
    with pytest.raises(FlowConflict):  # rev 1 is stale for this one too
        configs.update(ORG, read_flow(flow(name="late")), rev=1)
    assert configs.get(ORG, "line-3").rev == 2


def test_restore_stores_an_old_revision_as_the_next(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    configs.update(ORG, read_flow(flow(name="changed")), rev=1)
    restored = configs.restore(ORG, "line-3", 1, expected=2)
    assert restored.rev == 3 and restored.name == "Line 3 temperature"
    assert on_disk(configs)["rev"] == 3
    with pytest.raises(FlowConflict):
        configs.restore(ORG, "line-3", 1, expected=2)
    with pytest.raises(FlowNotFound):
        configs.restore(ORG, "line-3", 99)


def test_a_deleted_flow_keeps_its_history_and_can_be_restored(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    with pytest.raises(FlowConflict):
        configs.delete(ORG, "line-3", rev=7)
    configs.delete(ORG, "line-3", rev=1)
    assert not (configs.root / ORG / "line-3.json").exists()
    with pytest.raises(FlowNotFound):
        configs.get(ORG, "line-3")
    with pytest.raises(FlowNotFound):
        configs.delete(ORG, "line-3")
    assert [r.rev for r in configs.history(ORG, "line-3")] == [1]
    assert configs.restore(ORG, "line-3", 1).rev == 2
    # created again, it goes on from its history's revisions
    configs.delete(ORG, "line-3")
    assert configs.create(ORG, read_flow(flow())).rev == 3


def test_the_history_keeps_the_newest_revisions(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    for rev in range(1, 6):
        configs.update(ORG, read_flow(flow(name=f"v{rev + 1}")), rev=rev)
    assert [r.rev for r in configs.history(ORG, "line-3")] == [6, 5, 4]
    with pytest.raises(FlowNotFound):
        configs.revision(ORG, "line-3", 1)


def test_a_valid_file_edited_by_hand_is_the_next_revision(
    configs: ConfigManager, caplog: pytest.LogCaptureFixture
) -> None:
    configs.create(ORG, read_flow(flow()))
    edit_by_hand(configs, json.dumps(flow(name="edited on the device", rev=1)))
    with caplog.at_level(logging.WARNING, "shopfloor.flows"):
        assert configs.rescan() == 1
    assert configs.get(ORG, "line-3").name == "edited on the device"
    assert configs.get(ORG, "line-3").rev == 2 and on_disk(configs)["rev"] == 2
    assert [r.rev for r in configs.history(ORG, "line-3")] == [2, 1]
    assert "changed on disk and is taken as revision 2" in caplog.text
    assert configs.rescan() == 0  # its own rewrite is not a change


def test_an_invalid_file_edited_by_hand_is_refused_once_and_the_old_revision_stays(
    configs: ConfigManager, caplog: pytest.LogCaptureFixture
) -> None:
    configs.create(ORG, read_flow(flow()))
    broken = flow(rev=1)
    broken["tasks"][0]["type"] = "teleport"
    edit_by_hand(configs, json.dumps(broken))
    with caplog.at_level(logging.ERROR, "shopfloor.flows"):
        assert configs.rescan() == 1
        assert configs.rescan() == 0
    assert configs.get(ORG, "line-3").rev == 1
    assert configs.get(ORG, "line-3").tasks[0].type == "transform"
    refusals = [r for r in caplog.records if "is refused" in r.getMessage()]
    assert len(refusals) == 1, "logged once, not at every look"
    assert "flow_unknown_task_type" in refusals[0].getMessage()
    assert "revision 1 stays in effect" in refusals[0].getMessage()
    # half a file (a write caught in the middle) is refused the same way
    edit_by_hand(configs, json.dumps(flow(name="half"))[:40])
    configs.rescan()
    assert configs.get(ORG, "line-3").name == "Line 3 temperature"


def test_at_start_an_invalid_file_gives_way_to_its_newest_valid_revision(
    configs: ConfigManager,
) -> None:
    configs.create(ORG, read_flow(flow()))
    configs.update(ORG, read_flow(flow(name="second")), rev=1)
    edit_by_hand(configs, "{ not json")
    again = ConfigManager(configs.root)
    again.load()
    assert again.get(ORG, "line-3").rev == 2 and again.get(ORG, "line-3").name == "second"


def test_a_file_added_by_hand_is_created_and_one_removed_is_gone(
    configs: ConfigManager,
) -> None:
    (configs.root / ORG).mkdir(parents=True)
    edit_by_hand(configs, json.dumps(flow("added")), flow_id="added")
    assert configs.rescan() == 1
    assert configs.get(ORG, "added").rev == 1
    (configs.root / ORG / "added.json").unlink()
    assert configs.rescan() == 1
    with pytest.raises(FlowNotFound):
        configs.get(ORG, "added")


def test_a_file_whose_id_is_not_its_name_is_refused(configs: ConfigManager) -> None:
    (configs.root / ORG).mkdir(parents=True)
    edit_by_hand(configs, json.dumps(flow("something-else")), flow_id="named")
    configs.rescan()
    with pytest.raises(FlowNotFound):
        configs.get(ORG, "named")


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(
    configs: ConfigManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs.create(ORG, read_flow(flow()))
    before = (configs.root / ORG / "line-3.json").read_bytes()
    real_replace = os.replace

    def replace_fails_for_the_flow_file(src: Any, dst: Any) -> None:
        if Path(dst).name == "line-3.json":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_fails_for_the_flow_file)
    with pytest.raises(FlowStoreError, match="No space left"):
        configs.update(ORG, read_flow(flow(name="never")), rev=1)
    monkeypatch.undo()
    assert (configs.root / ORG / "line-3.json").read_bytes() == before
    assert configs.get(ORG, "line-3").rev == 1
    left = [p for p in (configs.root / ORG).rglob("*") if p.name.endswith(".tmp")]
    assert left == []
    # the next change goes on, past the revision that never took effect
    assert configs.update(ORG, read_flow(flow(name="later")), rev=1).rev >= 2
    assert on_disk(configs)["name"] == "later"


def test_of_concurrent_changes_from_one_revision_exactly_one_wins(
    configs: ConfigManager,
) -> None:
    configs.create(ORG, read_flow(flow()))
    other = ConfigManager(configs.root)  # a second process on the same folder
    other.load()
    start = threading.Barrier(8)

    def change(index: int) -> str:
        manager = configs if index % 2 else other
        start.wait()
        try:
            # as long as the name it replaces: only the file's identity tells them apart
            name = f"writer {index:011d}"
            assert len(name) == len(flow()["name"])
            manager.update(ORG, read_flow(flow(name=name)), rev=1)
        except FlowConflict:
            return "conflict"
        return "stored"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(change, range(8)))
    assert sorted(outcomes) == ["conflict"] * 7 + ["stored"]
    configs.rescan()
    assert configs.get(ORG, "line-3").rev == 2
    assert configs.get(ORG, "line-3").name == on_disk(configs)["name"]


def test_a_hand_edit_seen_by_two_processes_is_one_revision(configs: ConfigManager) -> None:
    configs.create(ORG, read_flow(flow()))
    other = ConfigManager(configs.root)
    other.load()
    edit_by_hand(configs, json.dumps(flow(name="edited once", rev=1)))
    assert configs.rescan() == 1
    assert other.rescan() == 1  # the other process's rewrite, taken as it is
    assert other.get(ORG, "line-3") == configs.get(ORG, "line-3")
    assert [r.rev for r in other.history(ORG, "line-3")] == [2, 1]
    assert configs.rescan() == 0 and other.rescan() == 0
