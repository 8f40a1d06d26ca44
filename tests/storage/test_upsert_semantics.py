"""Upsert by (ticker, timestamp): newest commit wins, last occurrence in a batch wins."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickvault import ParquetDB, ValidationError


def test_newest_commit_wins_and_reads_are_sorted_and_unique(db, bars):
    first = bars(["MSFT", "AAPL"], periods=10, salt=0)
    db.upsert_prices(first)
    second = bars(["AAPL"], start="2024-01-08", periods=5, salt=50)
    r = db.upsert_prices(second)
    assert r.rows == 5 and r.version == 2
    df = db.read_table("prices")
    assert len(df) == 20
    assert list(df.columns) == [
        "ticker",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "adj_close",
        "vwap",
        "trade_count",
    ]
    assert df.equals(df.sort_values(["ticker", "timestamp"]).reset_index(drop=True))
    assert not df.duplicated(["ticker", "timestamp"]).any()
    aapl = df[df.ticker == "AAPL"].set_index("timestamp")["close"]
    expected_old = first[first.ticker == "AAPL"].set_index("timestamp")["close"]
    new = second.set_index("timestamp")["close"]
    for ts, value in aapl.items():
        want = new[ts] if ts in new.index else expected_old[ts]
        assert value == pytest.approx(want)
    # an extension beyond the first write is there too
    assert aapl.index.max() == new.index.max()


def test_last_occurrence_in_one_batch_wins(db, bars):
    b = bars("AAPL", periods=3)
    dup = b.iloc[[1]].copy()
    dup["close"] = dup["open"] = 150.0
    dup["high"] = 151.0
    dup["low"] = 149.0
    db.upsert_prices(pd.concat([b, dup], ignore_index=True))
    df = db.read_table(tickers="AAPL")
    assert len(df) == 3
    assert df.close.iloc[1] == 150.0


def test_empty_batch_is_a_noop(db, bars, db_path):
    db.upsert_prices(bars("AAPL", periods=2))
    before = sorted(p.name for p in (db_path / "prices").iterdir())
    r = db.upsert_prices(bars("AAPL", periods=2).iloc[0:0])
    assert r.rows == 0 and r.version == 1
    assert sorted(p.name for p in (db_path / "prices").iterdir()) == before


def test_filters_are_inclusive_and_columns_keep_the_key(db, bars):
    db.upsert_prices(bars(["AAPL", "MSFT", "GOOG"], start="2024-01-01", periods=20))
    df = db.read_table(tickers=["MSFT"], start="2024-01-03", end="2024-01-05")
    assert list(df.timestamp.dt.strftime("%Y-%m-%d")) == ["2024-01-03", "2024-01-04", "2024-01-05"]
    df = db.read_table(tickers=["GOOG", "AAPL"], columns=["close"])
    assert list(df.columns) == ["ticker", "timestamp", "close"]
    assert sorted(df.ticker.unique()) == ["AAPL", "GOOG"]
    assert db.read_table(tickers=["NOPE"]).empty
    t = db.read_arrow(start="2024-01-10", end="2024-01-10")
    assert isinstance(t, pa.Table) and t.num_rows == 3
    assert t.schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")


def test_naive_and_aware_timestamps_are_stored_as_utc(db, bars):
    naive = bars("AAPL", periods=1)
    naive["timestamp"] = naive["timestamp"].dt.tz_localize(None)
    db.upsert_prices(naive)
    aware = bars("MSFT", periods=1)
    aware["timestamp"] = pd.Timestamp("2024-01-01 09:30", tz="America/New_York")
    db.upsert_prices(aware)
    df = db.read_table()
    assert str(df.timestamp.dtype) == "datetime64[ns, UTC]"
    assert df.set_index("ticker").timestamp["MSFT"] == pd.Timestamp("2024-01-01 14:30", tz="UTC")
    assert df.set_index("ticker").timestamp["AAPL"] == pd.Timestamp("2024-01-01", tz="UTC")


def test_version_pinning_and_history(db, bars):
    db.upsert_prices(bars("AAPL", periods=5, salt=0))
    db.upsert_prices(bars("AAPL", periods=5, salt=7))
    v1 = db.read_table(version=1)
    v2 = db.read_table(version=2)
    assert not v1.close.equals(v2.close)
    assert db.version == 2
    hist = db.history()
    assert [h["operation"] for h in hist] == ["create", "upsert", "upsert"]
    assert hist[1]["rows"] == 5 and hist[1]["files_added"] == 1


def test_tickers_and_watermarks_come_from_the_log(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], periods=5))
    db.upsert_prices(bars(["MSFT"], start="2024-02-01", periods=3))
    # remove every data file: metadata answers must not need them
    for p in (db_path / "prices").glob("*.parquet"):
        p.unlink()
    fresh = ParquetDB(db_path)
    assert fresh.tickers() == ["AAPL", "MSFT"]
    wm = fresh.watermarks()
    assert wm["MSFT"] == pd.Timestamp("2024-02-05", tz="UTC")
    assert wm["AAPL"] == pd.Timestamp("2024-01-05", tz="UTC")


def test_files_are_plain_parquet(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], periods=5))
    files = list((db_path / "prices").glob("*.parquet"))
    assert files
    for f in files:
        t = pq.read_table(f)
        assert t.num_rows == 10


def test_many_instances_share_one_database(db_path, bars):
    a, b = ParquetDB(db_path), ParquetDB(db_path)
    a.upsert_prices(bars("AAPL", periods=3))
    b.upsert_prices(bars("MSFT", periods=3))
    assert a.tickers() == b.tickers() == ["AAPL", "MSFT"]
    assert a.version == b.version == 2


def test_other_tables_have_their_own_schema_and_key(db):
    actions = pd.DataFrame(
        {
            "ticker": ["AAPL", "AAPL", "AAPL"],
            "timestamp": ["2024-02-09", "2024-02-09", "2020-08-31"],
            "kind": ["dividend", "split", "split"],
            "value": [0.24, 4.0, 4.0],
        }
    )
    db.upsert("actions", actions)
    df = db.read_table("actions")
    assert len(df) == 3
    with pytest.raises(ValidationError, match="kind"):
        db.upsert("actions", actions.assign(kind="merger"))
    assert db.tables() == ["actions"]


def test_reading_a_missing_database_without_create_fails_clearly(tmp_path):
    from tickvault import DatabaseNotFound

    with pytest.raises(DatabaseNotFound, match="no tickvault database"):
        ParquetDB(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_run_records_round_trip_newest_first(db):
    a = db.record_run({"started": "2024-01-01T00:00:00Z", "total": 3, "written": 3})
    b = db.record_run({"started": "2024-01-02T00:00:00Z", "total": 2, "failed": 1})
    runs = db.runs()
    assert [r["run_id"] for r in runs] == [b, a]
    assert runs[0]["failed"] == 1
    assert runs[0]["pid"] == os.getpid() and runs[0]["host"] and runs[0]["user"]
    assert db.runs(limit=1)[0]["run_id"] == b


@pytest.mark.parametrize(
    ("tickers", "days", "expected"),
    [
        (["A", "A", "B"], [1, 2, 1], True),
        (["A", "A", "B"], [2, 1, 1], False),  # time goes back inside a ticker
        (["B", "A", "A"], [1, 1, 2], False),  # tickers out of order
        (["A", "A", "B"], [1, 1, 1], False),  # duplicate key
        (["A"], [1], True),
    ],
)
def test_sorted_unique_detection(tickers, days, expected):
    from tickvault.schema import PRICES, is_sorted_unique

    t = pa.table(
        {
            "ticker": tickers,
            "timestamp": pa.array(
                [pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=d) for d in days],
                type=pa.timestamp("ns", tz="UTC"),
            ),
        }
    )
    assert is_sorted_unique(t, PRICES.key) is expected
