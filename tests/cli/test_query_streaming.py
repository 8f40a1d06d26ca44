"""`tickvault query --limit N` reads a few rows, not the table, and CSV/JSON output is
streamed in batches: the first rows are printed before later files are read (issue 25
item 9). Shown with real files: the last ticker's file is damaged, and only a read that
reaches it can notice."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.cli import tv
from tickvault import ParquetDB

TICKERS = ["AAA", "BBB", "CCC", "DDD"]


def _bars(ticker: str, days: int = 300) -> pd.DataFrame:
    ts = pd.date_range("2020-01-01", periods=days, freq="D", tz="UTC")
    close = 10.0 + np.arange(days) / 100
    return pd.DataFrame({"ticker": ticker, "timestamp": ts, "open": close, "high": close + 1,
                         "low": close - 1, "close": close, "volume": 1000.0})  # fmt: skip


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A database whose last ticker (ZZZ) lives in a file that cannot be read."""
    path = tmp_path / "db"
    db = ParquetDB(path, auto_compact=False)
    for t in TICKERS:
        db.upsert_prices(_bars(t))
    before = set(db.snapshot().files)
    db.upsert_prices(_bars("ZZZ"))
    (last,) = set(db.snapshot().files) - before
    db.close()
    (path / "prices" / last).write_bytes(b"not parquet at all" * 100)
    return path


@pytest.mark.slow
def test_limit_reads_only_the_first_rows(damaged: Path) -> None:
    whole = tv("query", "--format", "csv", db=damaged)
    assert whole.returncode == 4, whole.stderr  # the whole table reaches the damaged file
    for fmt in ("csv", "json", "table"):
        r = tv("query", "--limit", "5", "--format", fmt, db=damaged)
        assert r.returncode == 0, (fmt, r.stderr)
    r = tv("query", "--limit", "5", "--format", "csv", db=damaged)
    got = pd.read_csv(io.StringIO(r.stdout))
    assert list(got["ticker"]) == ["AAA"] * 5
    assert list(got["timestamp"])[:2] == ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"]
    r = tv("query", "--limit", "650", "--format", "json", db=damaged)
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    assert [rec["ticker"] for rec in records] == ["AAA"] * 300 + ["BBB"] * 300 + ["CCC"] * 50


@pytest.mark.slow
def test_csv_and_json_are_streamed_before_later_files_are_read(damaged: Path) -> None:
    for fmt in ("csv", "json"):
        r = tv("query", "--format", fmt, db=damaged)
        assert r.returncode == 4, r.stderr
        assert "AAA" in r.stdout, (fmt, r.stdout[:200])  # out before the failure


@pytest.mark.slow
def test_streamed_output_equals_the_whole_read(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = ParquetDB(path)
    for t in TICKERS:
        db.upsert_prices(_bars(t, 2000))
    want = db.read_table("prices")
    db.close()
    r = tv("query", "--format", "csv", db=path)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(io.StringIO(r.stdout), parse_dates=["timestamp"])
    assert len(got) == len(want) == 8000 and r.stdout.count("ticker,") == 1  # one header
    assert list(got["ticker"]) == list(want["ticker"])
    assert (got["close"].to_numpy() == want["close"].to_numpy()).all()
    r = tv("query", "--format", "json", "--start", "2021-01-01", "--end", "2021-01-31", db=path)
    records = json.loads(r.stdout)
    assert len(records) == 4 * 31
    small = tv("query", "ZZZ", db=path)
    assert small.returncode == 3  # unknown tickers still refused before any output


def test_head_gets_the_first_lines_at_once(tmp_path: Path) -> None:
    path = tmp_path / "db"
    db = ParquetDB(path)
    for t in TICKERS:
        db.upsert_prices(_bars(t, 2000))
    db.close()
    argv = [sys.executable, "-m", "tickvault", "query", "--format", "json", "--db", str(path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        first = proc.stdout.read(200)
        proc.stdout.close()  # like `| head -c 200`: the reader goes away
        proc.wait(timeout=60)
        err = proc.stderr.read().decode() if proc.stderr else ""
    assert first.startswith(b"[") and b'"AAA"' in first
    assert proc.returncode == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("batch_rows", [1, 7, 250, 65_536])
def test_pieces_concatenate_to_the_whole_read(tmp_path: Path, batch_rows: int) -> None:
    import pyarrow as pa

    from tickvault.sources import DemoSource

    db = ParquetDB(tmp_path / "db", auto_compact=False)
    db.upsert_prices(_bars("AAA", 900))
    db.upsert_prices(_bars("AAA", 40).assign(close=99.0, high=100.0))  # newer, overlapping
    db.upsert_prices(_bars("BBB", 3))
    db.upsert_prices(_bars("CCC", 500))
    from tickvault import fetch_and_write

    fetch_and_write(["NVDA"], DemoSource(as_of="2024-06-28"), db, start="2024-01-01")
    cases = [{}, {"start": "2020-02-01", "end": "2020-05-15"}, {"tickers": ["ccc", "AAA"]},
             {"tickers": "NVDA", "adjust": "all"}, {"end": "2020-01-10"}]  # fmt: skip
    for kw in cases:
        want = db.read_arrow("prices", **kw)
        parts = list(db.iter_arrow("prices", batch_rows=batch_rows, **kw))
        got = pa.concat_tables(parts) if parts else want.slice(0, 0)
        assert got.equals(want), kw
        for limit in (0, 1, 41, 10_000):
            head = list(db.iter_arrow("prices", batch_rows=batch_rows, limit=limit, **kw))
            rows = sum(p.num_rows for p in head)
            assert rows == min(limit, want.num_rows), (kw, limit)
            if rows:
                assert pa.concat_tables(head).equals(want.slice(0, limit)), (kw, limit)
    db.close()
