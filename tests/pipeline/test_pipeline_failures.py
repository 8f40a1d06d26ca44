"""Failing tickers never abort a run: retries, error classes and counts are exact."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tickvault import ParquetDB
from tickvault.pipeline import fetch_and_write
from tickvault.sources import DemoSource, RetryPolicy

START, END = "2024-01-02", "2024-03-28"
NO_WAIT = RetryPolicy(attempts=3, backoff=0.0, jitter=False)


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_permanent_and_transient_failures_are_counted_exactly(tmp_path: Path, scheduler: str):
    good = [f"G{i}" for i in range(8)]
    bad = ["BAD1", "BAD2"]
    # every ticker fails twice transiently, then succeeds on the 3rd (last allowed) attempt
    source = DemoSource(as_of=END, unknown_tickers=bad, transient_failures=2, retry_policy=NO_WAIT)
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(
        [*good, *bad], source, db, start=START, end=END, scheduler=scheduler, n_workers=3
    )
    assert (report["total"], report["written"], report["failed"]) == (10, 8, 2)
    assert report["errors"] == {
        "BAD1": "TickerNotFound: demo source does not know ticker 'BAD1'",
        "BAD2": "TickerNotFound: demo source does not know ticker 'BAD2'",
    }
    t = report["tickers"]
    for g in good:
        assert t[g]["status"] == "written" and t[g]["attempts"] == 3
        assert source.attempts(g) == 3
    for b in bad:  # permanent: not retried
        assert t[b]["status"] == "failed" and t[b]["attempts"] == 1
        assert t[b]["error_type"] == "TickerNotFound"
        assert t[b]["rows"] == 0
    assert report["retries"] == 16 and report["attempts"] == 26
    assert db.tickers() == sorted(good)
    clean = DemoSource(as_of=END)
    expected = pd.concat([clean.fetch(g, START, END) for g in sorted(good)], ignore_index=True)
    got = db.read_table()[list(expected.columns)]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_transient_failures_beyond_the_policy_fail_the_ticker(tmp_path: Path):
    source = DemoSource(
        as_of=END,
        transient_failures=5,
        retry_policy=RetryPolicy(attempts=3, backoff=0.01, jitter=False),
    )
    report = fetch_and_write(["AAA", "BBB"], source, tmp_path / "db", start=START, end=END)
    assert report["failed"] == 2 and report["written"] == 0
    assert report["errors"]["AAA"] == (
        "SourceUnavailable: demo source: simulated transient failure 3 of 5 for 'AAA'"
    )
    assert report["tickers"]["AAA"]["attempts"] == 3
    # backoff 0.01 then 0.02 s
    assert report["tickers"]["AAA"]["seconds"] >= 0.03
    assert report["versions"] == []
    assert not report.ok


def test_retry_argument_overrides_the_source_policy(tmp_path: Path):
    source = DemoSource(as_of=END, transient_failures=4, retry_policy=RetryPolicy(attempts=1))
    report = fetch_and_write(
        ["AAA"],
        source,
        tmp_path / "db",
        start=START,
        end=END,
        retry=RetryPolicy(attempts=5, backoff=0.0),
    )
    assert report["written"] == 1 and report["tickers"]["AAA"]["attempts"] == 5


def _bars(ticker: str) -> pd.DataFrame:
    return DemoSource(as_of=END).fetch(ticker, START, END)


def broken_source(ticker: str, start: object, end: object) -> pd.DataFrame:
    """A plain callable that misbehaves for some tickers."""
    if ticker == "BOOM":
        raise RuntimeError("parser exploded")
    df = _bars(ticker)
    if ticker == "OHLC":
        df.loc[3, "high"] = df.loc[3, "low"] - 1.0
    if ticker == "OTHER":
        df["ticker"] = "SOMEONE"
    return df


class RawSource:
    """A source object whose output the pipeline validates itself (no CallableSource)."""

    name = "raw"
    retry_policy = NO_WAIT

    def fetch(self, ticker: str, start: object = None, end: object = None) -> pd.DataFrame:
        return broken_source(ticker, start, end)


@pytest.mark.parametrize("source", [broken_source, RawSource()], ids=["callable", "object"])
def test_bad_data_fails_only_that_ticker_in_a_shared_batch(tmp_path: Path, source: object):
    tickers = ["AAA", "BOOM", "OHLC", "OTHER", "ZZZ"]
    db = ParquetDB(tmp_path / "db")
    report = fetch_and_write(tickers, source, db, batch_rows=10**9)  # one batch
    assert report["written"] == 2 and report["failed"] == 3
    errors = report["errors"]
    assert errors["BOOM"] == "RuntimeError: parser exploded"
    assert errors["OHLC"].startswith("BadSourceData: ")
    assert "high" in errors["OHLC"] or "low" in errors["OHLC"]
    assert errors["OTHER"].startswith("BadSourceData: ")
    assert "SOMEONE" in errors["OTHER"]
    assert report["tickers"]["BOOM"]["attempts"] == 1  # not a transient error
    assert db.tickers() == ["AAA", "ZZZ"]
    assert len(db.read_table()) == len(_bars("AAA")) + len(_bars("ZZZ"))
    assert len(report.versions) == 1


def test_empty_answers_are_unchanged_not_failed(tmp_path: Path):
    source = DemoSource(as_of=END)
    report = fetch_and_write(
        ["AAA", "BBB"], source, tmp_path / "db", start="1990-01-01", end="1990-02-01"
    )
    assert report["unchanged"] == 2 and report["written"] == 0 and report["failed"] == 0
    assert report["versions"] == []
