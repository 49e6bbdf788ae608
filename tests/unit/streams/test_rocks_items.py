"""The RocksDB engine keeps resting items in the process's database, one range of keys per
map, and gives a map's records back when nothing holds the map any more. (That it behaves
as the in-memory engine does: ``SALESPULSE_STATE_ENGINE=rocksdb`` on the items, store and
analytics tests.)"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import cast

import pytest

from streams import state
from streams.entities import TASK_DUE, CallIds, DealState, TaskState
from streams.items import record_of
from streams.state import ManagerState

pytest.importorskip("rocksdict")

from streams import rocks_items


@pytest.fixture
def rocksdb() -> None:
    state.use_engine("rocksdb")


def keys_of(prefix: bytes) -> list[bytes]:
    keys = cast(Iterator[bytes], rocks_items.database().keys(from_key=prefix))  # raw mode
    return [key for key in keys if key.startswith(prefix)]


@pytest.mark.usefixtures("rocksdb")
def test_resting_items_are_records_in_rocksdb_under_partition_manager_and_kind() -> None:
    manager = ManagerState("m-rocks-1", 3)
    assert isinstance(manager.tasks, rocks_items.RocksItems)
    manager.tasks.put("T-1", TaskState(task_type="call", due_at=100.0, created=True))
    manager.tasks.put("T-2", TaskState(task_type="email"))
    assert keys_of(b"3\x1fm-rocks-1\x1ft\x1f") == []  # decoded, not resting yet
    manager.tasks.pack(7)
    resting = keys_of(b"3\x1fm-rocks-1\x1ft\x1f")
    assert [key.rsplit(b"\x1f", 1)[1] for key in resting] == [b"T-1", b"T-2"]
    assert not manager.tasks._values
    assert manager.tasks.soonest({TASK_DUE: 5.0}) == 105.0  # from the alarm times kept
    assert manager.tasks.due({TASK_DUE: 5.0}, 106.0) == ["T-1"]
    assert manager.tasks.get("T-1") == TaskState(task_type="call", due_at=100.0, created=True)
    assert len(keys_of(b"3\x1fm-rocks-1\x1ft\x1f")) == 1  # decoded again: no longer resting
    assert manager.tasks.soonest({TASK_DUE: 5.0}) == 105.0


@pytest.mark.usefixtures("rocksdb")
def test_two_maps_of_one_manager_and_kind_keep_apart() -> None:
    old, new = ManagerState("m-rocks-2", 0), ManagerState("m-rocks-2", 0)
    old.deals.restore("D-1", record_of(1, DealState(pipeline="default"))[1])
    assert "D-1" in old.deals
    assert "D-1" not in new.deals
    assert new.deals.peek("D-1") is None


@pytest.mark.usefixtures("rocksdb")
def test_a_map_nothing_holds_gives_its_records_back() -> None:
    manager = ManagerState("m-rocks-3", 1)
    for n in range(50):
        manager.calls.put(738_000 + n, CallIds(738_000 + n, {f"c-{n}"}))
    manager.calls.pack(1)
    prefix = b"1\x1fm-rocks-3\x1fc\x1f"
    assert len(keys_of(prefix)) == 50
    del manager
    gc.collect()
    assert keys_of(prefix) == []


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown state engine 'lmdb'"):
        state.use_engine("lmdb")
