"""verify finds what is wrong with real files; repair fixes it; vacuum removes leftovers."""

from __future__ import annotations

import datetime as dt
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickvault import CorruptDatabaseError, ParquetDB


def live_files(db: ParquetDB) -> list[str]:
    return db.snapshot().files


def test_clean_database_verifies_ok(db, bars):
    db.upsert_prices(bars(["AAPL", "MSFT"], periods=30))
    db.upsert_prices(bars(["AAPL"], start="2024-02-01", periods=3))
    r = db.verify()
    assert r.ok and r.problems == [] and r.files_checked == 2 and r.rows_checked == 63
    assert r.to_dict()["ok"] is True


def test_truncated_file_is_unreadable_and_repair_drops_it(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=10))
    db.upsert_prices(bars(["MSFT"], periods=10))
    victim = db_path / "prices" / live_files(db)[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    r = db.verify()
    assert not r.ok
    assert [p.kind for p in r.problems] == ["unreadable"]
    assert r.problems[0].path == victim.name
    fresh = ParquetDB(db_path)
    with pytest.raises(CorruptDatabaseError, match=victim.name):
        fresh.read_table()
    plan = fresh.repair()  # dry run by default: nothing changes
    assert plan.dry_run and plan.actions[0]["action"] == "drop"
    assert plan.actions[0]["rows_lost"] == 10
    assert not fresh.verify().ok
    done = fresh.repair(dry_run=False)
    assert done.versions
    assert fresh.verify().ok
    assert len(fresh.read_table()) == 10


def test_missing_file_is_reported(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    (db_path / "prices" / live_files(db)[0]).unlink()
    r = db.verify()
    assert [p.kind for p in r.problems] == ["missing"]


def test_file_with_duplicate_keys_is_rewritten_by_repair(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    path = db_path / "prices" / live_files(db)[0]
    t = pq.read_table(path)
    bad = pa.concat_tables([t, t.slice(4, 1)])  # a duplicate key, one row more than logged
    pq.write_table(bad, path)
    r = db.verify()
    kinds = {p.kind for p in r.problems}
    assert {"row_count", "duplicate_keys"} <= kinds
    ParquetDB(db_path).repair(dry_run=False)
    fresh = ParquetDB(db_path)
    assert fresh.verify().ok
    assert len(fresh.read_table()) == 5


def test_wrong_schema_is_reported(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    path = db_path / "prices" / live_files(db)[0]
    t = pq.read_table(path).drop_columns(["volume"])
    pq.write_table(t, path)
    assert [p.kind for p in db.verify().problems] == ["schema"]


def test_orphans_do_not_fail_verify_and_vacuum_respects_retention(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    folder = db_path / "prices"
    orphan = folder / f"part-{'c' * 32}.parquet"  # a crashed writer's: tickvault's name
    pq.write_table(pq.read_table(folder / live_files(db)[0]), orphan)
    tmp = folder / ".part-x.parquet.123.tmp"
    tmp.write_bytes(b"half a file")
    r = db.verify()
    assert r.ok
    assert sorted(r.orphans) == sorted([f"prices/{orphan.name}", f"prices/{tmp.name}"])
    # fresh files are kept: an in-flight writer may be about to publish them
    plan = db.vacuum()
    assert plan.dry_run and plan.files == [] and len(plan.kept_recent) == 2
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(tmp, (old, old))
    plan = db.vacuum()
    assert sorted(plan.files) == sorted([f"prices/{orphan.name}", f"prices/{tmp.name}"])
    assert orphan.exists() and tmp.exists()  # dry run
    db.vacuum(dry_run=False)
    assert not orphan.exists() and not tmp.exists()
    assert db.verify().ok and len(db.read_table()) == 5


def test_vacuum_keeps_young_orphans_and_a_live_writers_temporary_files(db, bars, db_path):
    """``vacuum --retention 0 --apply`` next to a running backfill deleted the temporary
    file it was writing, and the backfill failed (new-user trial); an uncommitted file
    may also be about to be committed. Orphans younger than an hour stay unless
    ``force``; a temporary file of a process alive on this machine stays even then."""
    import subprocess
    import sys

    db.upsert_prices(bars(["AAPL"], periods=5))
    folder = db_path / "prices"
    orphan = folder / f"part-{'a' * 32}.parquet"  # tickvault's name, never committed
    pq.write_table(pq.read_table(folder / live_files(db)[0]), orphan)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    mine = folder / f".part-a.parquet.{os.getpid()}.0123456789ab.tmp"
    gone = folder / f".part-b.parquet.{int(dead.stdout)}.0123456789ab.tmp"
    for f in (mine, gone):
        f.write_bytes(b"half a file")
    # a writer is writing `mine` while vacuum runs with no retention
    with db._table("prices").store.writer("prices/part-live.parquet") as sink:
        sink.write(b"in flight")
        report = db.vacuum(dry_run=False, retention=0)
        assert report.files == [] and orphan.exists() and mine.exists() and gone.exists()
        report = db.vacuum(dry_run=False, retention=0, force=True)
        # forced: the orphan and the dead writer's file go; the living writers' stay
        assert sorted(report.files) == sorted([f"prices/{orphan.name}", f"prices/{gone.name}"])
        assert mine.exists() and len(list(folder.glob(".part-live.parquet.*.tmp"))) == 1
    assert (folder / "part-live.parquet").read_bytes() == b"in flight"  # the writer finished
    assert db.verify().ok and len(db.read_table()) == 5


def test_vacuum_removes_compacted_files_only_after_retention(db_path, bars):
    db = ParquetDB(db_path, auto_compact=False)
    for i in range(3):
        db.upsert_prices(bars(["AAPL", "MSFT"], periods=5, salt=i))
    old_version = db.version
    assert db.compact() is not None
    assert db.vacuum(dry_run=False).files == []  # just removed: old snapshots may read them
    assert len(db.read_table(version=old_version)) == 10
    r = db.vacuum(dry_run=False, retention=dt.timedelta(0))
    assert len(r.files) == 3
    assert db.verify().ok and db.verify().unreferenced == []
    assert len(db.read_table()) == 10


def test_log_problems_are_reported(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    (db_path / "prices" / "_log" / f"{2:020d}.json").write_text("{not json")
    r = ParquetDB(db_path).verify()
    assert not r.ok
    assert r.problems[0].kind == "log"


def test_a_commit_never_references_a_vanished_file(db, bars, db_path):
    from tickvault import StorageError

    files = db.write_files("prices", bars(["AAPL"], periods=3))
    for f in files:  # e.g. a vacuum with retention=0 ran between write and commit
        (db_path / "prices" / f.path).unlink()
    with pytest.raises(StorageError, match="disappeared"):
        db.commit_files("prices", files)
    assert db.version == 0 and db.read_table().empty and db.verify().ok
