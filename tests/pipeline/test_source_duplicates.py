"""Two different bars for one ticker and timestamp in a source's answer are an error that
names both rows; identical duplicates are silently kept once. (``upsert_prices`` keeps its
documented "last occurrence wins" within a batch: this is about source data.)"""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.cli import tv
from tickvault import ParquetDB, fetch_and_write, get_source
from tickvault.errors import BadSourceData

HEADER = "date,open,high,low,close,volume\n"
ROW1 = "2025-01-02,10,11,9,10.5,1000\n"
ROW1_OTHER = "2025-01-02,10,11,9,10.7,1000\n"
ROW2 = "2025-01-03,10,11,9,10.6,1200\n"


def test_csv_with_two_different_rows_for_one_date_fails_naming_both_lines(tmp_path) -> None:
    (tmp_path / "AAPL.csv").write_text(HEADER + ROW1 + ROW2 + ROW1_OTHER)
    src = get_source("csv", path=str(tmp_path))
    with pytest.raises(BadSourceData, match=r"AAPL.csv line 2 and .*AAPL.csv line 4") as e:
        src.fetch("AAPL")
    assert "2025-01-02" in str(e.value) and "close" in str(e.value)


def test_identical_duplicates_stay_silently_deduplicated(tmp_path) -> None:
    (tmp_path / "AAPL.csv").write_text(HEADER + ROW1 + ROW2 + ROW1)
    df = get_source("csv", path=str(tmp_path)).fetch("AAPL")
    assert len(df) == 2


def test_a_plain_source_contradicting_itself_fails_that_ticker_only(tmp_path) -> None:
    def fetch(ticker, start, end):
        ts = pd.to_datetime(["2025-01-02", "2025-01-02", "2025-01-03"], utc=True)
        close = [10.0, 11.0 if ticker == "BAD" else 10.0, 12.0]
        return pd.DataFrame(
            {"timestamp": ts, "open": close, "high": close, "low": close, "close": close,
             "volume": [1, 1, 1]}
        )  # fmt: skip

    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(["BAD", "GOOD"], fetch, db)
    assert report["failed"] == 1 and "BadSourceData" in report["errors"]["BAD"]
    assert "two different bars" in report["errors"]["BAD"]
    assert db.tickers() == ["GOOD"]


def test_cli_backfill_of_conflicting_csv_exits_1_and_names_the_lines(tmp_path) -> None:
    (tmp_path / "AAPL.csv").write_text(HEADER + ROW1 + ROW1_OTHER)
    r = tv("backfill", "AAPL", "--source", "csv", "--source-option", f"path={tmp_path}",
           "--json", db=tmp_path / "db")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "line 2 and" in r.stdout and "line 3" in r.stdout
