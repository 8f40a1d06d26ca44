"""Parquet files saved from pandas frames of the shapes users have: dates in an unnamed
index (its dates were dropped, and the file said it had no date column), and a yfinance
download of several tickers (two levels of column names: the error said no column was
called close, not what to do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.bars import make_bars
from tickvault import BadSourceData, ParquetDB, get_source, import_parquet


def test_an_unnamed_date_index_is_the_bars_dates(tmp_path: Path) -> None:
    df = make_bars("AAPL", periods=8)
    frame = df.drop(columns=["ticker"]).set_index("timestamp").rename_axis(None)
    frame.to_parquet(tmp_path / "AAPL.parquet")
    got = get_source("parquet", path=tmp_path).fetch("AAPL", "2024-01-01", "2024-01-31")
    assert got.timestamp.tolist() == df.timestamp.tolist()
    report = import_parquet(ParquetDB(tmp_path / "db"), tmp_path / "AAPL.parquet", apply=True)
    assert report.rows == 8


def test_a_multi_ticker_yfinance_download_says_how_to_reshape_it(tmp_path: Path) -> None:
    df = make_bars(["AAPL", "MSFT"], periods=5)
    wide = (
        df.rename(columns=str.title)
        .set_index(["Timestamp", "Ticker"])
        .unstack("Ticker")
        .rename_axis("Date")
    )  # columns ('Close', 'AAPL'), ... as yf.download(["AAPL", "MSFT"]) gives
    wide.to_parquet(tmp_path / "both.parquet")
    with pytest.raises(BadSourceData, match=r"pairs such as \('Open', 'AAPL'\).*stack"):
        get_source("parquet", path=tmp_path / "both.parquet").fetch("AAPL")
    with pytest.raises(BadSourceData, match="stack"):
        import_parquet(ParquetDB(tmp_path / "db"), tmp_path / "both.parquet")
