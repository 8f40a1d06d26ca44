"""Level-1 files keyed by (period, ticker range) (decision 015): every level-1 file lies in
one calendar period, files of intersecting periods hold disjoint ticker ranges, appends and
corrections rewrite only the periods they touch, a time filter opens only its periods'
files, and a database written in the ticker-major layout reads the same and moves to the
new layout."""

from __future__ import annotations

import itertools
import random

import pandas as pd
import pytest

from helpers.bars import ramp_bars as _bars
from helpers.storage_model import Model, assert_same
from tickvault import ParquetDB
from tickvault.storage.upkeep.compaction import collides


def _level1(db: ParquetDB):
    return [f for f in db._table("prices").refresh().files.values() if f.level != 0]


def _assert_invariant(db: ParquetDB) -> None:
    l1 = _level1(db)
    for a, b in itertools.combinations(l1, 2):
        assert not collides(a, b), (a.path, b.path)


def _year(ns: int) -> int:
    return pd.Timestamp(ns, tz="UTC").year


TICKERS = [f"T{i:03d}" for i in range(40)]
DAYS = pd.bdate_range("2015-01-01", "2019-12-31", tz="UTC")


def test_a_bulk_load_goes_to_level_1_one_year_per_file(tmp_path):
    db = ParquetDB(tmp_path / "db", target_file_rows=4000, auto_compact=False)
    df = _bars(TICKERS, DAYS)
    db.upsert_prices(df)
    l1 = _level1(db)
    assert len(l1) == len(db.snapshot().files)  # straight to level 1
    years = set()
    for f in l1:
        assert f.period is not None
        assert _year(f.start) == _year(f.end) == _year(f.period[0])
        assert f.period[1] == pd.Timestamp(f"{_year(f.start) + 1}-01-01", tz="UTC").value
        years.add(_year(f.start))
    assert years == {2015, 2016, 2017, 2018, 2019}
    _assert_invariant(db)
    assert_same(db.read_table(), df)


@pytest.mark.slow
def test_appends_and_corrections_rewrite_only_the_periods_they_touch(tmp_path):
    db = ParquetDB(tmp_path / "db", target_file_rows=4000, l0_max_files=2, auto_compact=False)
    model = Model()
    df = _bars(TICKERS, DAYS)
    model.add(db.upsert_prices(df).version, df)
    closed = {f.path for f in _level1(db) if _year(f.start) < 2019}
    # twenty daily appends for every ticker, compacted as they come
    for k, day in enumerate(pd.bdate_range("2020-01-01", periods=20, tz="UTC")):
        new = _bars(TICKERS, pd.DatetimeIndex([day]), salt=k)
        model.add(db.upsert_prices(new).version, new)
        db.compact()
    assert closed <= {f.path for f in _level1(db)}  # no closed year was rewritten
    # a late correction to 2016 rewrites 2016's files and nothing of 2015 or 2017-2020
    before = {f.path: _year(f.start) for f in _level1(db)}
    fix = _bars(TICKERS[:3], pd.bdate_range("2016-03-01", periods=5, tz="UTC"), salt=50)
    model.add(db.upsert_prices(fix).version, fix)
    db.compact()
    after = {f.path for f in _level1(db)}
    rewritten = {p for p in before if p not in after}
    # 2016's files, and (a full compaction merges a period's appended generations into
    # one, decision 023) possibly the open year 2020's; no other year
    years = {before[p] for p in rewritten}
    assert 2016 in years and years <= {2016, 2020}
    _assert_invariant(db)
    assert_same(db.read_table(), model.frame())
    assert db.verify().ok


def test_a_time_filter_opens_only_its_periods_files(tmp_path):
    db = ParquetDB("memory://period-prune", target_file_rows=4000, auto_compact=False)
    db.upsert_prices(_bars(TICKERS, DAYS))
    n_files = len(db.snapshot().files)
    assert db.wait_for_compaction(timeout=60)  # the background reclaim pass is done
    store = db.store
    before = sum(store.requests.values())  # type: ignore[attr-defined]
    got = db.read_table(start="2017-03-01", end="2017-03-31")
    requests = sum(store.requests.values()) - before  # type: ignore[attr-defined]
    assert len(got) == 40 * len(pd.bdate_range("2017-03-01", "2017-03-31"))
    in_2017 = [f for f in _level1(db) if _year(f.start) == 2017]
    assert n_files > 3 * len(in_2017)
    assert requests <= 3 * len(in_2017)  # footer + row groups of 2017's files only


@pytest.mark.slow
def test_a_ticker_major_database_reads_the_same_and_relayouts(tmp_path):
    path = tmp_path / "db"
    old = ParquetDB(path, target_file_rows=4000, period="none", auto_compact=False)
    model = Model()
    df = _bars(TICKERS, DAYS)
    model.add(old.upsert_prices(df).version, df)
    upd = _bars(TICKERS[::2], pd.bdate_range("2018-06-01", periods=30, tz="UTC"), salt=3)
    model.add(old.upsert_prices(upd).version, upd)
    old.compact()
    assert all(f.period is None for f in _level1(old))  # the old layout: all time

    db = ParquetDB(path, target_file_rows=4000, auto_compact=False)  # default: years
    assert_same(db.read_table(), model.frame())
    # an append into 2020 compacts without touching the old files' ticker ranges wrongly
    new = _bars(TICKERS, pd.bdate_range("2020-01-02", periods=3, tz="UTC"), salt=9)
    model.add(db.upsert_prices(new).version, new)
    db.compact()
    _assert_invariant(db)
    assert_same(db.read_table(), model.frame())
    db.compact(relayout=True)
    l1 = _level1(db)
    assert l1 and all(f.period is not None for f in l1)
    assert all(_year(f.start) == _year(f.end) for f in l1)
    _assert_invariant(db)
    assert_same(db.read_table(), model.frame())
    assert db.verify().ok
    assert db.compact(relayout=True) is None  # nothing left to move


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_writes_under_mixed_periods_keep_every_read_and_the_invariant(tmp_path, seed):
    """Handles with different period settings write one database in turn (random tickers,
    random date ranges, random compactions): reads always equal the model and level-1
    files never collide."""
    rng = random.Random(seed)
    path = tmp_path / "db"
    model = Model()
    settings = ["none", "year", "quarter", "month"]
    for step in range(14):
        period = rng.choice(settings)
        db = ParquetDB(
            path, target_file_rows=rng.choice([50, 300, 2000]), l0_max_files=2, period=period,
            auto_compact=False, fsync=False,
        )  # fmt: skip
        tickers = rng.sample(TICKERS[:12], rng.randint(1, 6))
        start = pd.Timestamp("2016-01-01", tz="UTC") + pd.Timedelta(days=rng.randint(0, 900))
        days = pd.bdate_range(start, periods=rng.randint(1, 120), tz="UTC")
        df = _bars(sorted(tickers), days, salt=step)
        model.add(db.upsert_prices(df).version, df)
        if rng.random() < 0.5:
            db.compact(relayout=rng.random() < 0.3)
        _assert_invariant(db)
        assert_same(db.read_table(), model.frame())
        lo = pd.Timestamp("2016-01-01", tz="UTC") + pd.Timedelta(days=rng.randint(0, 900))
        hi = lo + pd.Timedelta(days=rng.randint(0, 200))
        got = db.read_table(start=lo, end=hi)
        want = model.frame()
        want = want[(want["timestamp"] >= lo) & (want["timestamp"] <= hi)]
        assert_same(got, want.reset_index(drop=True))
    assert ParquetDB(path).verify().ok


@pytest.mark.slow
def test_compact_relayout_from_the_command_line(tmp_path):
    from helpers.cli import tv

    path = tmp_path / "db"
    old = ParquetDB(path, target_file_rows=4000, period="none", auto_compact=False)
    df = _bars(TICKERS[:10], DAYS)
    old.upsert_prices(df)
    assert all(f.period is None for f in _level1(old))
    r = tv("compact", "--relayout", "--json", db=path)
    assert r.returncode == 0, r.stderr
    db = ParquetDB(path)
    assert all(f.period is not None for f in _level1(db))
    assert_same(db.read_table(), df)
    again = tv("compact", "--relayout", db=path)
    assert again.returncode == 0 and "nothing to compact" in again.stdout
