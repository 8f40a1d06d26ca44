"""Compaction under races and at the edges: lost races are abandoned cleanly, parallel
groups fail as a whole, balanced splits at extreme sizes, upserts while compacting."""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading

import numpy as np
import pyarrow as pa
import pytest

from helpers.faulty_store import FaultyStore
from helpers.storage_model import (
    NS_DAY,
    TINY,
    Y2020,
    Model,
    assert_healthy,
    assert_same,
    bars,
    seed_db,
)
from tickvault import ParquetDB
from tickvault.storage import LocalStore
from tickvault.storage.core.file_writer import split_by_rows
from tickvault.storage.upkeep import compaction


def test_compaction_that_lost_a_race_to_compact_and_vacuum_is_abandoned(tmp_path):
    """Another process compacts the same inputs and a zero-retention vacuum deletes them
    before this compaction reads them: this compaction lost the race and should return
    None (as when it loses at commit time), not report a corrupt database with
    'run tickvault verify --repair' (read_part turns the FileNotFoundError into
    CorruptDatabaseError)."""
    path = tmp_path / "db"
    store = FaultyStore(LocalStore(path, fsync=False))
    db, model = seed_db(path, store=store)
    other = ParquetDB(path, **{**TINY, "auto_compact": False})

    def compact_and_vacuum() -> None:
        assert other.compact() is not None
        other.vacuum(dry_run=False, retention=dt.timedelta(0))

    # planned already when it opens its first input
    race = store.on("open_input", "prices/*.parquet", compact_and_vacuum)
    assert compaction.run(db._table("prices"), full=True) is None
    assert race.fired == 1
    assert_same(db.read_table(), model.frame())


def test_interrupt_after_compaction_commit_keeps_its_files(tmp_path):
    """Ctrl-C (or any exception other than OSError/StorageError) while the commit writes
    its checkpoint, after the log entry was published: run()'s ``except BaseException``
    deletes the committed output files, and the inputs are already removed from the
    newest version. (Pre-existing; db._publish has the same pattern for upserts.)"""
    path = tmp_path / "db"
    store = FaultyStore(LocalStore(path, fsync=False))
    db, model = seed_db(path, store=store, checkpoint_interval=1)
    ctrl_c = store.fail("put", "prices/_log/*.checkpoint.json", KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        db.compact()
    assert ctrl_c.fired == 1
    fresh = ParquetDB(path)
    assert fresh.history()[-1]["operation"] == "compact"  # it was committed
    assert_same(fresh.read_table(), model.frame())


def _ticker_table(lengths: list[int]) -> pa.Table:
    tickers = [f"T{i:03d}" for i, n in enumerate(lengths) for _ in range(n)]
    return pa.table({"ticker": tickers, "row": list(range(len(tickers)))})


@pytest.mark.parametrize(
    "lengths, target, sizes",
    [
        ([5] * 20 + [1000] + [5] * 20, 100, [100, 1000, 100]),  # one ticker >> target
        ([1000] + [5] * 40, 100, [1000, 100, 100]),
        ([1, 1000], 10, [1, 1000]),
        ([3000], 10, [3000]),  # one ticker: never cut
        ([1, 2, 3], 1, [1, 2, 3]),  # target 1: one piece per ticker
        ([7], 1, [7]),
    ],
)
def test_split_with_huge_tickers_and_target_one(lengths, target, sizes):
    t = _ticker_table(lengths)
    pieces = split_by_rows(t, "ticker", target)
    assert [p.num_rows for p, _ in pieces] == sizes
    assert [r for p, _ in pieces for r in p.column("row").to_pylist()] == list(range(t.num_rows))
    for p, runs in pieces:
        assert int(runs.starts[0]) == 0 and int(runs.ends[-1]) == p.num_rows


def test_split_of_empty_table_is_one_empty_piece():
    pieces = split_by_rows(_ticker_table([]), "ticker", 5)
    assert len(pieces) == 1 and pieces[0][0].num_rows == 0


def test_target_one_and_huge_ticker_compaction_is_exact(tmp_path):
    db = ParquetDB(tmp_path / "db", **{**TINY, "target_file_rows": 1, "auto_compact": False})
    model = Model()
    batches = [
        bars(("BIG", Y2020 + d * NS_DAY, 5.0 + d / 1e3) for d in range(200)),
        bars((t, Y2020 + d * NS_DAY, 7.0) for t in ["A", "C", "Z"] for d in range(3)),
        bars((t, Y2020 + d * NS_DAY, 9.0) for t in ["BIG", "B", "C"] for d in (0, 2, 150)),
    ]
    for df in batches:
        model.add(db.upsert_prices(df).version, df)
        db.compact()
    files = db._table("prices").refresh().files.values()
    assert all(f.level == 1 and len(f.tickers) == 1 for f in files)
    assert_same(db.read_table(), model.frame())
    assert_healthy(tmp_path / "db")


def test_failing_group_of_parallel_compaction_leaves_nothing(tmp_path):
    path = tmp_path / "db"
    store = FaultyStore(LocalStore(path, fsync=False))
    db = ParquetDB(path, store=store, **{**TINY, "target_file_rows": 6, "auto_compact": False})
    model = Model()
    base = bars((f"T{i}", Y2020 + d * NS_DAY, 3.0) for i in range(8) for d in range(6))
    model.add(db.upsert_prices(base).version, base)
    db.compact()
    upd = bars((f"T{i}", Y2020 + NS_DAY, 4.0) for i in range(8))
    model.add(db.upsert_prices(upd).version, upd)
    p = compaction.plan(db._table("prices").refresh(), db._table("prices"), full=True)
    assert p is not None and len(p.groups) >= 4  # really several groups in parallel
    before = sorted(os.listdir(path / "prices"))
    eio = store.fail("writer", "prices/*.parquet", OSError(errno.EIO, "injected"), after=2)
    with pytest.raises(OSError):
        db.compact()
    assert eio.fired == 1
    assert sorted(os.listdir(path / "prices")) == before
    store.heal()
    assert_same(db.read_table(), model.frame())
    assert db.compact() is not None
    assert_same(db.read_table(), model.frame())


def test_map_writing_with_no_items(tmp_path):
    db = ParquetDB(tmp_path / "db", fsync=False)
    assert db._table("prices").map_writing(lambda item: [], []) == []


def test_threads_upserting_while_parallel_compaction_runs(tmp_path):
    path = tmp_path / "db"
    opts = {**TINY, "target_file_rows": 5, "l1_merge_ratio": 0.01}
    model, lock, errors = Model(), threading.Lock(), []
    tickers = [f"T{i:02d}" for i in range(10)]

    def writer(w: int) -> None:
        try:
            db = ParquetDB(path, **opts)
            rng = np.random.default_rng(500 + w)
            for i in range(6):
                rows = [
                    (
                        tickers[int(rng.integers(0, 10))],
                        Y2020 + int(rng.integers(0, 40)) * NS_DAY,
                        1.0 + w + i / 100 + j / 1e6,
                    )
                    for j in range(int(rng.integers(1, 25)))
                ]
                df = bars(rows)
                r = db.upsert_prices(df)
                with lock:
                    model.add(r.version, df)
                if i % 2 == w % 2:
                    db.compact()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = ParquetDB(path, **opts)
    assert_same(db.read_table(), model.frame())
    for h in db.history()[1:]:
        assert_same(db.read_table(version=h["version"]), model.frame(h["version"]))
    assert db.verify().orphans == []
    assert_healthy(path)
