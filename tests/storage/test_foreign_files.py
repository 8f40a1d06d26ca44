"""Files tickvault did not write: a database is never created over them, and no clean-up
deletes them.

The original two-phase pattern kept its bars as plain Parquet files under ``db/prices/``. A
``ParquetDB()`` opened on that folder used to create a database there, show an empty table and
let its clean-up (``vacuum``, and the compactor's automatic reclaim) delete the old files an
hour later as files no version names.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from helpers.cli import tv
from tickvault import ParquetDB
from tickvault.errors import ConfigError

DAY = 86_400


def _legacy_folder(root: Path) -> Path:
    """A database of the original pattern: one Parquet file per ticker, two days old."""
    (root / "prices").mkdir(parents=True)
    for t in ("AAPL", "MSFT"):
        f = root / "prices" / f"{t}.parquet"
        make_bars(t, periods=5).to_parquet(f)
        os.utime(f, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    return root


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_no_database_is_created_over_parquet_files_of_another_program(tmp_path: Path) -> None:
    legacy = _legacy_folder(tmp_path / "db")
    before = _tree(legacy)
    with pytest.raises(ConfigError) as err:
        ParquetDB(legacy)
    msg = str(err.value)
    assert "prices/AAPL.parquet" in msg and "did not write" in msg
    assert "import" in msg  # the way forward
    assert _tree(legacy) == before  # nothing created, nothing touched


def test_no_database_is_created_in_a_folder_of_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as err:
        ParquetDB(folder)
    assert "notes.txt" in str(err.value) and "empty or new" in str(err.value)
    assert _tree(folder) == ["notes.txt"]
    # an empty folder and a new one are fine
    (tmp_path / "empty").mkdir()
    ParquetDB(tmp_path / "empty").upsert_prices(make_bars("AAPL"))
    ParquetDB(tmp_path / "new").upsert_prices(make_bars("AAPL"))


def test_a_database_that_lost_only_its_marker_opens_with_its_data(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(make_bars(["AAPL", "MSFT"]))
    db.close()
    (tmp_path / "db" / "tickvault.json").unlink()
    again = ParquetDB(tmp_path / "db")
    assert len(again.read_table("prices")) == 20
    assert (tmp_path / "db" / "tickvault.json").exists()


def test_many_threads_creating_one_new_database_all_succeed(tmp_path: Path) -> None:
    where = tmp_path / "db"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def create(i: int) -> None:
        try:
            start.wait()
            ParquetDB(where).upsert_prices(make_bars(f"T{i}", periods=3))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(ParquetDB(where).read_table("prices")) == 24


def test_vacuum_never_deletes_a_parquet_file_tickvault_did_not_write(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(make_bars("AAPL", salt=1))
    folder = tmp_path / "db" / "prices"
    stray = folder / "AAPL.parquet"
    make_bars("AAPL", periods=3).to_parquet(stray)
    # an orphan of tickvault's own (a crashed writer's file: its name, no commit) as old
    ours = next(folder.glob("part-*.parquet"))
    orphan = folder / f"part-{'0' * 32}.parquet"
    orphan.write_bytes(ours.read_bytes())
    old = time.time() - 2 * DAY
    for f in (stray, orphan):
        os.utime(f, (old, old))
    report = db.vacuum(dry_run=False, retention=0, force=True)
    assert stray.exists()
    assert report.foreign == ["prices/AAPL.parquet"]
    assert report.files == [f"prices/{orphan.name}"] and not orphan.exists()
    # verify says it is there and is not ours; it is not damage
    checked = db.verify()
    assert checked.ok
    assert any("AAPL.parquet" in w and "did not write" in w for w in checked.warnings)
    assert "prices/AAPL.parquet" not in checked.orphans
    pd.testing.assert_frame_equal(
        db.read_table("prices")[["ticker", "close"]],
        make_bars("AAPL", salt=1)[["ticker", "close"]],
        check_dtype=False,
    )


def test_cli_vacuum_leaves_the_file_and_says_so(tmp_path: Path) -> None:
    db_path = tmp_path / "db"
    ParquetDB(db_path).upsert_prices(make_bars("AAPL"))
    stray = db_path / "prices" / "old_export.parquet"
    make_bars("AAPL", periods=3).to_parquet(stray)
    os.utime(stray, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    r = tv("vacuum", "--apply", "--retention", "0", "--force", db=db_path)
    assert r.returncode == 0, r.stderr
    assert stray.exists()
    assert "prices/old_export.parquet" in r.stdout + r.stderr
    assert "did not write" in r.stdout + r.stderr


def test_a_folders_bookkeeping_files_do_not_count_as_other_files(tmp_path: Path) -> None:
    for name in (".DS_Store", ".gitkeep", "lost+found"):
        p = tmp_path / "vol" / name
        p.parent.mkdir(exist_ok=True)
        p.mkdir() if name == "lost+found" else p.write_text("")
    ParquetDB(tmp_path / "vol").upsert_prices(make_bars("AAPL"))
    assert len(ParquetDB(tmp_path / "vol").read_table("prices")) == 10


def test_on_a_bucket_the_check_costs_a_few_requests_whatever_the_prefix_holds() -> None:
    """A prefix of 3,000 objects cost 5,005 LISTs to refuse (a listing per entry, a walk
    for Parquet files): now the root listing and a bounded look for tables' logs."""
    from tickvault.errors import DatabaseNotFound
    from tickvault.storage.core.object_store import ObjectStore

    store = ObjectStore("memory://bucket/")
    for i in range(3000):
        store.put(f"file{i:05d}.parquet", b"x")
    store.requests.clear()
    with pytest.raises(ConfigError, match="only under an empty prefix"):
        ParquetDB(store=store)
    assert store.requests["list"] <= 25 and not store.exists("tickvault.json")
    store.requests.clear()
    with pytest.raises(DatabaseNotFound):
        ParquetDB(store=store, create=False)
    assert store.requests["list"] <= 2
