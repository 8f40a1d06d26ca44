"""Data files: sorted by key, row groups aligned to tickers and time periods."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from tickvault import ParquetDB


def row_groups(path):
    md = pq.ParquetFile(path).metadata
    out = []
    for i in range(md.num_row_groups):
        t = pq.ParquetFile(path).read_row_group(i, columns=["ticker", "timestamp"])
        out.append((sorted(set(t.column("ticker").to_pylist())), t.num_rows))
    return out


def frame(ticker: str, start: str, periods: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": pd.bdate_range(start, periods=periods, tz="UTC"),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 1.0,
        }
    )


def test_long_tickers_get_period_row_groups_and_small_ones_share(tmp_path):
    db = ParquetDB(tmp_path / "db", min_row_group_rows=100, row_group_years=2, period="none")
    df = pd.concat(
        [
            frame("AAA", "2019-01-01", 1300),  # 2019-2023: cut at 2020/2022 boundaries
            frame("BBB", "2024-01-01", 10),
            frame("CCC", "2024-01-01", 10),
        ]
    )
    db.upsert_prices(df)
    (path,) = (tmp_path / "db" / "prices").glob("*.parquet")
    groups = row_groups(path)
    assert [g[0] for g in groups] == [["AAA"], ["AAA"], ["AAA"], ["BBB", "CCC"]]
    # 2019 alone (periods are calendar-aligned: 2018-19, 2020-21, 2022-23)
    assert groups[0][1] == len(pd.bdate_range("2019-01-01", "2019-12-31"))
    assert sum(n for _, n in groups) == 1320
    t = pq.read_table(path)
    assert t.to_pandas().equals(
        t.to_pandas().sort_values(["ticker", "timestamp"]).reset_index(drop=True)
    )


def test_max_rows_split_and_period_off(tmp_path):
    db = ParquetDB(tmp_path / "db", row_group_years=0, max_row_group_rows=500, period="none")
    db.upsert_prices(frame("AAA", "2010-01-01", 1200))
    (path,) = (tmp_path / "db" / "prices").glob("*.parquet")
    assert [n for _, n in row_groups(path)] == [500, 500, 200]
    assert len(db.read_table(tickers="AAA", start="2012-01-01")) == len(
        pd.bdate_range("2012-01-01", periods=1200 - len(pd.bdate_range("2010-01-01", "2011-12-31")))
    )


def test_new_tickers_after_a_full_last_file_start_a_new_level1_file(tmp_path):
    """Tickers appended in order (a backfill one ticker per upsert) do not rewrite the
    last level-1 file at every compaction once it holds half a target file."""
    db = ParquetDB(
        tmp_path / "db", fsync=False, target_file_rows=800, auto_compact=False, period="none"
    )
    db.upsert_prices(frame("A", "2000-01-03", 450))  # level 1, >= 800 // 2 rows
    (first,) = db.snapshot().files
    for t in ("C", "D", "E"):  # small files (< 800 // 8 rows): level 0
        db.upsert_prices(frame(t, "2024-01-01", 30))
    db.compact()
    state = db._table("prices").refresh()
    assert first in state.files  # not rewritten
    assert sorted((f.min_ticker, f.max_ticker) for f in state.files.values()) == [
        ("A", "A"),
        ("C", "E"),
    ]
    assert all(f.level == 1 for f in state.files.values())
    assert list(db.read_table().groupby("ticker").size()) == [450, 30, 30, 30]
    # a ticker inside the old range still merges into the file that owns it
    db.upsert_prices(frame("B", "2024-01-01", 5))
    db.compact()
    state = db._table("prices").refresh()
    assert first not in state.files
    assert sorted((f.min_ticker, f.max_ticker) for f in state.files.values()) == [
        ("A", "B"),
        ("C", "E"),
    ]
    assert len(db.read_table()) == 545 and db.verify().ok


def test_a_small_last_file_grows_instead_of_a_new_file(tmp_path):
    db = ParquetDB(tmp_path / "db", fsync=False, target_file_rows=1000, auto_compact=False)
    db.upsert_prices(frame("A", "2024-01-01", 30))
    for t in ("B", "C"):
        db.upsert_prices(frame(t, "2024-01-01", 30))
    db.compact()
    state = db._table("prices").refresh()
    assert len(state.files) == 1  # 30 rows < 1000 // 2: merged into the last file
    assert next(iter(state.files.values())).tickers == ["A", "B", "C"]


def test_columns_are_encoded_for_their_values_and_every_engine_reads_them(tmp_path):
    """Timestamps and integers delta-encoded, tickers by dictionary, prices that repeat
    (cents, a narrow range) by dictionary and volumes that do not byte-stream-split
    (decision 020); DuckDB and Polars read the files to the same rows."""
    import duckdb

    from helpers.bars import make_bars

    db = ParquetDB(tmp_path / "db")
    df = make_bars(["AAA", "BBB"], "2023-01-02", 300)
    df["close"] = (df["close"] * 2).round() / 2  # 21 distinct prices
    df["trade_count"] = range(len(df))
    db.upsert_prices(df)
    db.compact()
    paths = list((tmp_path / "db" / "prices").rglob("*.parquet"))
    assert paths
    for path in paths:
        md = pq.ParquetFile(path).metadata
        rg = md.row_group(0)
        enc = {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}
        assert "DELTA_BINARY_PACKED" in enc["timestamp"]
        assert "DELTA_BINARY_PACKED" in enc["trade_count"]
        assert "RLE_DICTIONARY" in enc["ticker"]
        assert "RLE_DICTIONARY" in enc["close"]
        assert "RLE_DICTIONARY" not in enc["volume"]
        assert "BYTE_STREAM_SPLIT" in enc["volume"]
    want = db.read_table().sort_values(["ticker", "timestamp"]).reset_index(drop=True)
    assert len(want) == 600
    got = (
        db.to_duckdb(connection=duckdb.connect())
        .df()
        .sort_values(["ticker", "timestamp"])
        .reset_index(drop=True)
    )
    assert (got["close"].to_numpy() == want["close"].to_numpy()).all()
    assert (got["trade_count"].to_numpy() == want["trade_count"].to_numpy()).all()
    lazy = db.to_polars().sort(["ticker", "timestamp"]).collect()
    assert lazy["close"].to_list() == want["close"].tolist()
