"""A new handle on a bucket reads the log in a few round trips (``core/log.py``): the
checkpoint hint, the checkpoint, one start-after LIST of the names that follow it, and
those entries fetched at once — not one GET after another and a 404 to find the end.
Whatever the path, the state is the one the sequential replay gives."""

from __future__ import annotations

import threading

import pytest

from helpers.bars import arrow_bars
from tickvault import ParquetDB
from tickvault.errors import CorruptDatabaseError, VersionNotFound
from tickvault.storage.core.log import PARALLEL_GETS, LogStore, entry_name
from tickvault.storage.core.object_store import ObjectStore


@pytest.fixture
def url(request) -> str:
    return f"memory://log-open-{request.node.name[:40]}"


def build(store: ObjectStore, versions: int) -> None:
    """A prices table with versions 0..``versions`` and checkpoints every 5."""
    db = ParquetDB(store=store, checkpoint_interval=5, auto_compact=False, auto_vacuum=False)
    for i in range(versions):
        db.upsert_prices(arrow_bars(["AAA", "BBB"], [i, i], float(i + 1)))
    assert db.version == versions
    db.close()


def sequential(store: ObjectStore, upto: int | None = None) -> dict:
    """The state as an entry-by-entry replay finds it (what a local disk does)."""
    log = LogStore(store, "prices", 5)
    log.remote = False
    return log.load(upto=upto).to_json()


def test_a_new_handle_lists_once_and_never_probes_past_the_end(url):
    store = ObjectStore(url)
    build(store, 8)  # checkpoint 5, then entries 6, 7, 8
    store.requests.clear()
    state = LogStore(store, "prices", 5).load()
    # hint, checkpoint, one LIST, three entries: no GET of the missing version 9
    assert dict(store.requests) == {"get": 5, "list": 1}
    assert state.version == 8 and state.to_json() == sequential(store)


def test_an_old_version_needs_no_listing(url):
    store = ObjectStore(url)
    build(store, 8)
    store.requests.clear()
    state = LogStore(store, "prices", 5).load(upto=7)
    assert dict(store.requests) == {"get": 4}  # hint, checkpoint 5, entries 6 and 7
    assert state.version == 7 and state.to_json() == sequential(store, 7)
    with pytest.raises(VersionNotFound, match="newest is 8"):
        LogStore(store, "prices", 5).load(upto=9)
    store.requests.clear()
    with pytest.raises(VersionNotFound, match="newest is 8"):
        LogStore(store, "prices", 5).load(upto=1_000_000)
    # hint, checkpoint, at most one batch from version 6 (those not started when the
    # first 404 came back are cancelled), and the replay's 404 of 9; then one start-after
    # LIST tells "not there yet" from a gap in the log (decision 001, gaps)
    assert set(store.requests) == {"get", "list"} and store.requests["list"] == 1
    assert 5 <= store.requests["get"] <= 3 + PARALLEL_GETS


def test_a_young_table_uses_the_one_listing_it_already_made(url):
    store = ObjectStore(url)
    build(store, 3)  # no checkpoint yet: the listing that finds none also names the entries
    store.requests.clear()
    state = LogStore(store, "prices", 5).load()
    assert dict(store.requests) == {"get": 5, "list": 1}  # hint (404), entries 0..3
    assert state.version == 3 and state.to_json() == sequential(store)


def test_the_entries_after_the_checkpoint_are_fetched_at_once(url):
    """Deterministic: the first two entry GETs wait for each other at a barrier, which a
    one-after-another replay would never pass (it breaks after 10 s and the load fails)."""

    class Together(ObjectStore):
        barrier = threading.Barrier(2, timeout=10)
        armed = False
        entry_gets = 0
        lock = threading.Lock()

        def _get(self, key, options=None):
            name = key.rsplit("/", 1)[-1]
            log_entry = "/_log/" in key and name.endswith(".json") and ".checkpoint." not in name
            if self.armed and log_entry:
                with self.lock:
                    n = Together.entry_gets
                    Together.entry_gets += 1
                if n < 2:
                    self.barrier.wait()
            return super()._get(key, options)

    store = Together(url)  # (a memory:// store lives as long as its object)
    build(store, 8)
    Together.armed = True
    state = LogStore(store, "prices", 5).load()
    assert state.version == 8 and Together.entry_gets == 3


def test_a_gap_in_the_log_is_refused_as_the_replay_refuses_it(url):
    """Not a silent rollback to 7 (decision 001, gaps): the listing shows 9 after the
    missing 8; the sequential replay's stat of 9 does too. Version 7 stays readable."""
    store = ObjectStore(url)
    build(store, 9)
    store.delete(f"prices/_log/{entry_name(8)}")  # 6, 7, _, 9
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(8)} is missing"):
        LogStore(store, "prices", 5).load()
    with pytest.raises(CorruptDatabaseError, match=f"{entry_name(8)} is missing"):
        sequential(store)
    state = LogStore(store, "prices", 5).load(upto=7)
    assert state.version == 7 and state.to_json() == sequential(store, 7)


def test_a_new_database_handle_reads_what_was_written(url):
    store = ObjectStore(url)
    build(store, 12)
    db = ParquetDB(store=store)
    df = db.read_table(tickers="AAA")
    assert db.version == 12 and df["close"].tolist() == [float(i + 1) for i in range(12)]
    assert db.read_table(version=7)["close"].max() == 7.0
