"""as_of= reads (issue 24): every reader pins the version current at a time, found by a
binary search over the log's timestamps; bad times are clear errors."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB
from tickvault.errors import ConfigError
from tickvault.storage.core.as_of import version_at
from tickvault.storage.core.store import LocalStore


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "db")
    return f"memory://as-of-{uuid.uuid4().hex[:12]}"


def _three_versions(where: str) -> tuple[ParquetDB, list[pd.Timestamp]]:
    """Versions 1..3 of AAA with closes 100+, 200+, 300+; the moments between them."""
    db = ParquetDB(where, auto_compact=False)
    moments = []
    for i in range(3):
        db.upsert_prices(make_bars("AAA", "2024-01-02", 5, salt=100 * (i + 1)))
        time.sleep(0.005)
        moments.append(pd.Timestamp.now(tz="UTC"))
        time.sleep(0.005)
    return db, moments


def test_every_reader_reads_the_version_current_then(where: str) -> None:
    pytest.importorskip("duckdb")
    pytest.importorskip("polars")
    db, moments = _three_versions(where)
    for v, moment in zip((1, 2, 3), moments, strict=True):
        want = db.read_table(version=v)
        pd.testing.assert_frame_equal(db.read_table(as_of=moment), want)
        pd.testing.assert_frame_equal(db.read_table(as_of=moment.isoformat()), want)
        assert db.read_arrow(as_of=moment).equals(db.read_arrow(version=v))
        assert db.snapshot(as_of=moment).version == v
        ds = db.to_pyarrow_dataset(as_of=moment).to_table()
        assert sorted(ds.column("close").to_pylist()) == sorted(want["close"].tolist())
        got = db.to_duckdb(as_of=moment).order("timestamp").df()
        assert got["close"].tolist() == want["close"].tolist()
        pl = db.to_polars(as_of=moment).collect().sort("timestamp")
        assert pl["close"].to_list() == want["close"].tolist()


def test_a_bare_date_is_the_end_of_that_day(where: str) -> None:
    db, _ = _three_versions(where)
    today = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    assert db.snapshot(as_of=today).version == db.version


@pytest.mark.parametrize(
    ("as_of", "extra", "words"),
    [
        ("2001-01-01T00:00Z", {}, ["before table 'prices' existed", "e.g. as_of="]),
        ("2200-01-01", {}, ["in the future", "omit as_of"]),
        ("now-ish", {}, ["as_of=", "ISO 8601"]),
        ("2026-01-01", {"version": 1}, ["both given"]),
    ],
)
def test_bad_times_are_clear_errors(where: str, as_of: str, extra: dict, words: list) -> None:
    db, _ = _three_versions(where)
    with pytest.raises(ConfigError) as exc:
        db.read_table(as_of=as_of, **extra)
    for w in words:
        assert w in str(exc.value)


class CountingStore(LocalStore):
    """A real local store that counts the log entries read (to check the search)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entry_reads = 0

    def get(self, key: str) -> bytes:
        if "/_log/" in key and key.endswith(".json") and "checkpoint" not in key:
            self.entry_reads += 1
        return super().get(key)


def test_the_version_is_found_by_a_binary_search(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db", fsync=False)
    db = ParquetDB(tmp_path / "db", store=store, auto_compact=False, fsync=False)
    moments = {}
    for i in range(200):
        db.upsert_prices(make_bars("AAA", "2024-01-02", 1, salt=i))
        if i in (0, 57, 150):
            time.sleep(0.003)
            moments[db.version] = pd.Timestamp.now(tz="UTC")
            time.sleep(0.003)
    t = db._table("prices")
    t.refresh()
    for v, moment in moments.items():
        store.entry_reads = 0
        assert version_at(t, moment) == v
        assert store.entry_reads <= 12, store.entry_reads  # not 200


def test_a_time_before_the_first_write_is_the_empty_version(tmp_path: Path) -> None:
    """Version 0 carries the creation time: a time between it and version 1 is version 0
    (the empty table), not an error — also across checkpoints."""
    from tickvault.storage.core.commit import ensure_created

    db = ParquetDB(tmp_path / "db", checkpoint_interval=5)

    ensure_created(db._table("prices"))
    time.sleep(0.005)
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(0.005)
    for i in range(12):
        db.upsert_prices(make_bars("AAA", "2024-01-02", 2, salt=i))
    assert db.read_table(as_of=between).empty
    assert db.snapshot(as_of=between).version == 0
