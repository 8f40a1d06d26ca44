"""The tests' fault-injecting Store (helpers.faulty_store) is a faithful stand-in: with no
fault it changes nothing, and a fault fires exactly on the operation, keys and calls it
names."""

from __future__ import annotations

import errno
import os

import pytest

from helpers.bars import arrow_bars
from helpers.faulty_store import FaultyStore
from tickvault import ParquetDB
from tickvault.storage import LocalStore, MemoryStore, Store


@pytest.fixture(params=["local", "memory"])
def inner(request, tmp_path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "db", fsync=False)
    return MemoryStore()


@pytest.mark.parametrize("watch_writes", [False, True])
def test_without_a_fault_the_database_is_the_same(inner, watch_writes):
    store = FaultyStore(inner)
    if watch_writes:  # streams are wrapped while a "write" fault exists
        store.fail("write", "no/such/key")
    db = ParquetDB(inner.location, store=store, auto_compact=False, target_file_rows=20)
    db.upsert_prices(arrow_bars(["A"] * 30 + ["B"] * 30, [*range(30), *range(30)]))
    db.upsert_prices(arrow_bars(["A"], [0], 7.0))
    assert db.compact() is not None
    plain = ParquetDB(inner.location, store=inner)
    assert plain.read_arrow().equals(db.read_arrow()) and db.read_arrow().num_rows == 60
    assert plain.verify().ok and db.verify().ok
    assert {op for op, _ in store.calls} >= {"put_if_absent", "get", "writer", "list"}
    assert store.identity() == inner.identity() and store.location == inner.location


def test_a_fault_fires_after_n_calls_n_times_on_matching_keys_only(inner):
    store = FaultyStore(inner)
    fault = store.fail("put", "a/*.json", OSError(errno.EIO, "injected"), after=1, times=2)
    store.put("b/1.json", b"x")  # another key
    store.put("a/1.json", b"x")  # let through (after=1)
    for _ in range(2):
        with pytest.raises(OSError, match="injected"):
            store.put("a/2.json", b"y")
    store.put("a/2.json", b"z")  # used up
    assert fault.fired == 2 and fault.hits == [("put", "a/2.json")] * 2
    assert store.get("a/2.json") == b"z" and store.get("b/1.json") == b"x"


def test_a_full_disk_while_a_stream_is_written_leaves_no_object(inner):
    store = FaultyStore(inner)
    full = store.fail("write", "t/*.parquet", times=None)
    with pytest.raises(OSError) as info, store.writer("t/x.parquet") as sink:
        sink.write(b"0123")
    assert info.value.errno == errno.ENOSPC and full.fired == 1
    refused = store.fail("publish", "t/*.parquet", KeyboardInterrupt)
    store.heal()
    assert not store.faults and refused.fired == 0
    store.fail("publish", "t/*.parquet", KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt), store.writer("t/y.parquet") as sink:
        sink.write(b"0123")
    assert store.list("t") == []  # neither stream left an object or a temporary file
    if isinstance(inner, LocalStore):
        assert os.listdir(inner.root / "t") == []


def test_an_action_runs_once_before_the_operation_and_not_for_its_own_calls(inner):
    store = FaultyStore(inner)
    hook = store.on("get", "k/*", lambda: store.get("k/1") + b"!")
    store.put("k/1", b"one")
    assert store.get("k/1") == b"one" and store.get("k/1") == b"one"
    assert hook.fired == 1 and hook.results == [b"one!"]
    with pytest.raises(ValueError, match="unknown store operation"):
        store.fail("rename", "*")
