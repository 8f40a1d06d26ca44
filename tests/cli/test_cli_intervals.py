"""Issue 23 on the command line: --interval for backfill, update, query and freshness,
--resample for query."""

from __future__ import annotations

import io
import json
import time

import pandas as pd
import pytest

from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB


@pytest.mark.slow
def test_backfill_query_and_resample_by_interval(tmp_path):
    db = tmp_path / "db"
    r = tv(
        "backfill", "AAPL", "--source", "demo", "--interval", "1min",
        "--start", "2024-06-03", "--end", "2024-06-04", db=db,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = tv("info", "--json", db=db)
    tables = json.loads(r.stdout)["tables"]
    assert set(tables) == {"prices_1m"} and tables["prices_1m"]["rows"] == 2 * 390
    r = tv("query", "AAPL", "--interval", "1m", "--resample", "5m", "--format", "csv", db=db)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(io.StringIO(r.stdout))
    want = ParquetDB(db, create=False).read_table(
        "prices", interval="1m", resample="5m", tickers="AAPL"
    )
    assert len(got) == len(want) == 2 * 78
    assert list(got["close"]) == list(want["close"])
    assert got["timestamp"].iloc[1] == "2024-06-03T13:35:00Z"


def test_a_bad_interval_or_source_is_a_usage_error(tmp_path):
    db = tmp_path / "db"
    r = tv("query", "--interval", "3m", db=db)
    line = one_clear_line(r)
    assert r.returncode == 2 and "--interval" in line and "1m, 2m, 5m, 15m, 30m, 1h, 1d" in line
    r = tv("backfill", "AAPL", "--source", "stooq", "--interval", "1m", db=db)
    line = one_clear_line(r)
    assert r.returncode == 2 and "stooq gives daily bars only" in line
    assert not (db / "prices_1m").exists()


@pytest.mark.slow
def test_export_an_interval_as_of_a_time(tmp_path):
    """export --interval 1m writes the minute table; --as-of the version current then."""
    path, out = tmp_path / "db", tmp_path / "out"
    db = ParquetDB(path, auto_compact=False)
    stamps = pd.date_range("2024-06-03 13:30", periods=30, freq="1min", tz="UTC")
    bars = pd.DataFrame({"ticker": "AAPL", "timestamp": stamps, "open": 1.0, "high": 1.0})
    bars = bars.assign(low=1.0, close=1.0, volume=100)
    first = db.upsert_prices(bars, interval="1m").version
    time.sleep(1.1)
    between = pd.Timestamp.now(tz="UTC").isoformat()
    time.sleep(1.1)
    db.upsert_prices(bars.iloc[:10].assign(close=2.0, high=2.0), interval="1m")
    r = tv("--json", "export", str(out), "--interval", "1m", db=path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["table"] == "prices_1m"
    got = pd.read_parquet(out).sort_values("timestamp")
    assert list(got["close"]) == [2.0] * 10 + [1.0] * 20
    r = tv("--json", "export", str(out), "--interval", "1m", "--as-of", between, db=path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["version"] == first
    got = pd.read_parquet(out)
    assert len(got) == 30 and set(got["close"]) == {1.0}
    r = tv("export", str(out), "--table", "actions", "--interval", "1m", db=path)
    assert r.returncode == 2 and "--interval" in one_clear_line(r)
    r = tv("export", str(out), "--version", "1", "--as-of", between, db=path)
    assert r.returncode == 2 and "--as-of" in one_clear_line(r)


def test_sql_has_a_view_per_interval_table(tmp_path) -> None:
    """Each interval's table is a view of ``tickvault sql`` under its documented name."""
    from tickvault import ParquetDB, fetch_and_write

    db = ParquetDB(tmp_path / "db")
    fetch_and_write(["AAPL"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-04")
    want = len(db.read_table("prices", interval="5m"))
    r = tv("sql", "--format", "csv", "SELECT count(*) AS n FROM prices_5m", db=tmp_path / "db")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", str(want)]
