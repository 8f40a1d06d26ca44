"""Decision 023: rows appended after a period's level-1 files become level-1 files of their
own (a generation) instead of a rewrite of the period's bulk, so daily appends cost
compaction about what they add; a late row still merges into the files whose slot holds
it; generations are merged when too many pile up, and by a full compaction."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from helpers.bars import ramp_bars as _bars
from helpers.storage_model import Model, assert_healthy, assert_same
from tickvault import ParquetDB
from tickvault.storage.upkeep import compaction
from tickvault.storage.upkeep.compaction import collides, generations

TICKERS = [f"T{i:03d}" for i in range(60)]
OPTS = {"target_file_rows": 4000, "l0_max_files": 2, "fsync": False}


def _level1(db: ParquetDB):
    return [f for f in db._table("prices").refresh().files.values() if f.level != 0]


def _invariant(db: ParquetDB) -> None:
    for a, b in itertools.combinations(_level1(db), 2):
        assert not collides(a, b), (a.path, b.path)


def _written(db: ParquetDB, v0: int, v1: int) -> dict[str, int]:
    out = {"upsert": 0, "compact": 0}
    log = Path(db.path) / "prices" / "_log"
    for v in range(v0 + 1, v1 + 1):
        entry = json.loads((log / f"{v:020d}.json").read_text())
        op = entry["operation"]
        out[op] = out.get(op, 0) + sum(int(f["bytes"]) for f in entry.get("add", []))
    return out


def _year_files(db: ParquetDB, year: int):
    start = pd.Timestamp(f"{year}-01-01", tz="UTC").value
    return [f for f in _level1(db) if f.period is not None and f.period[0] == start]


def test_daily_appends_do_not_rewrite_the_year(tmp_path):
    db = ParquetDB(tmp_path / "db", **OPTS)
    model = Model()
    bulk = _bars(TICKERS, pd.bdate_range("2024-01-01", "2024-06-28", tz="UTC"))
    model.add(db.upsert_prices(bulk).version, bulk)
    assert db.wait_for_compaction(timeout=60)
    base = {f.path for f in _year_files(db, 2024)}
    assert sum(f.rows for f in _year_files(db, 2024)) >= OPTS["target_file_rows"] // 8
    v0 = db.table_version("prices")
    for k, day in enumerate(pd.bdate_range("2024-07-01", periods=20, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
        assert db.wait_for_compaction(timeout=60)
        assert base <= {f.path for f in _level1(db)}  # the bulk of the year stays
        _invariant(db)
    bytes_ = _written(db, v0, db.table_version("prices"))
    assert bytes_["compact"] <= 1.2 * bytes_["upsert"], bytes_  # issue 22 item 1
    gens = generations(_year_files(db, 2024))
    assert 2 <= len(gens) <= compaction.MAX_GENERATIONS + 1
    assert_same(db.read_table(), model.frame())
    everything = model.frame()
    for t in ("T000", "T031", "T059"):
        one = everything[everything.ticker == t].reset_index(drop=True)
        assert_same(db.read_table(tickers=t), one)
    got = db.read_table(start="2024-06-20", end="2024-07-10")
    want = model.frame()
    want = want[(want.timestamp >= "2024-06-20") & (want.timestamp <= "2024-07-10")]
    assert_same(got, want.reset_index(drop=True))

    # a late correction inside the bulk merges into the files whose slot holds it
    fix = _bars(TICKERS[:5], pd.bdate_range("2024-03-01", periods=3, tz="UTC"), salt=50)
    model.add(db.upsert_prices(fix).version, fix)
    db.compact()  # full: every period in one generation again
    assert len(generations(_year_files(db, 2024))) == 1
    _invariant(db)
    assert_same(db.read_table(), model.frame())
    db.close()
    assert_healthy(tmp_path / "db")


@pytest.mark.parametrize("late_ticker", [False, True])
def test_rows_not_after_the_period_merge_as_before(tmp_path, late_ticker):
    """A new ticker's history, or a revised last bar, is not an append: it is merged into
    the period's files (no generation may overlap another in time)."""
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    model = Model()
    bulk = _bars(TICKERS, pd.bdate_range("2024-01-01", "2024-06-28", tz="UTC"))
    model.add(db.upsert_prices(bulk).version, bulk)
    for k, day in enumerate(pd.bdate_range("2024-07-01", periods=3, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
    # the appends, compacted as a generation
    assert compaction.run(db._table("prices")) is not None
    assert len(generations(_year_files(db, 2024))) == 2
    if late_ticker:
        late = _bars(["T030A"], pd.bdate_range("2024-05-01", "2024-07-03", tz="UTC"))
    else:
        late = _bars(TICKERS[:4], pd.DatetimeIndex([pd.Timestamp("2024-07-03", tz="UTC")]), 9)
    model.add(db.upsert_prices(late).version, late)
    for k, day in enumerate(pd.bdate_range("2024-07-04", periods=2, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=20 + k)
        model.add(db.upsert_prices(new).version, new)
    assert compaction.run(db._table("prices")) is not None
    _invariant(db)
    assert_same(db.read_table(), model.frame())
    assert db.verify().ok


def test_too_many_generations_are_merged(tmp_path, monkeypatch):
    monkeypatch.setattr(compaction, "MAX_GENERATIONS", 3)
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    model = Model()
    bulk = _bars(TICKERS, pd.bdate_range("2024-01-01", "2024-06-28", tz="UTC"))
    model.add(db.upsert_prices(bulk).version, bulk)
    base = {f.path for f in _year_files(db, 2024)}
    most = 0
    for k, day in enumerate(pd.bdate_range("2024-07-01", periods=30, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
        if k % 3 == 2:
            assert compaction.run(db._table("prices")) is not None
            most = max(most, len(generations(_year_files(db, 2024))))
            assert base <= {f.path for f in _level1(db)}
            _invariant(db)
    assert 2 <= most <= compaction.MAX_GENERATIONS + 1
    assert_same(db.read_table(), model.frame())


def test_a_closed_period_is_merged_into_one_generation_once(tmp_path):
    """Appends that move into a new year merge the old year's generations into one (once);
    the new year's appends then pile up generations of their own."""
    db = ParquetDB(tmp_path / "db", **{**OPTS, "auto_compact": False})
    model = Model()
    bulk = _bars(TICKERS, pd.bdate_range("2024-06-03", "2024-12-13", tz="UTC"))
    model.add(db.upsert_prices(bulk).version, bulk)
    table = db._table("prices")
    december = pd.bdate_range("2024-12-16", "2024-12-31", tz="UTC")
    for k, day in enumerate(december):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
        if k % 3 == 2:
            assert compaction.run(table) is not None
    assert len(generations(_year_files(db, 2024))) >= 2
    merged_once = None
    for k, day in enumerate(pd.bdate_range("2025-01-02", periods=12, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=40 + k)
        model.add(db.upsert_prices(new).version, new)
        if k % 3 == 2:
            assert compaction.run(table) is not None
            paths = {f.path for f in _year_files(db, 2024)}
            if len(generations(_year_files(db, 2024))) == 1:
                merged_once = merged_once or paths
                assert paths == merged_once  # merged once, then left alone
            _invariant(db)
    assert merged_once is not None
    assert_same(db.read_table(), model.frame())
    assert db.verify().ok


def test_a_full_compact_merges_generations_without_level_0_files(tmp_path):
    """``db.compact()`` (and ``tickvault compact``) leaves the fewest files even when the
    background compactor has already emptied level 0: the period's generations are merged
    into one (it stopped at "nothing in level 0" and left them)."""
    db = ParquetDB(tmp_path / "db", **OPTS)
    model = Model()
    bulk = _bars(TICKERS, pd.bdate_range("2024-01-01", "2024-06-28", tz="UTC"))
    model.add(db.upsert_prices(bulk).version, bulk)
    assert db.wait_for_compaction(timeout=60)
    for k, day in enumerate(pd.bdate_range("2024-07-01", periods=6, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
        assert db.wait_for_compaction(timeout=60)
    assert not any(f.level == 0 for f in db._table("prices").refresh().files.values())
    assert len(generations(_year_files(db, 2024))) >= 2
    assert db.compact() is not None
    assert len(generations(_year_files(db, 2024))) == 1
    assert db.compact() is None  # nothing left: a second compact writes nothing
    _invariant(db)
    assert_same(db.read_table(), model.frame())
    db.close()
