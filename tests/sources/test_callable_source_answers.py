"""What a plain callable source may answer: no bars is an empty frame (with the columns,
or ``pd.DataFrame()``), None is a failure (a forgotten ``return``), and a frame missing
columns is refused with an example row for the ticker asked for."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tickvault import fetch_and_write
from tickvault.errors import BadSourceData
from tickvault.sources import as_source, empty_prices, get_source

DEMO = get_source("demo")


def forgot_return(ticker: str, start: object, end: object) -> None:
    DEMO.fetch(ticker, start, end)  # no `return`


def no_bars(ticker: str, start: object, end: object) -> pd.DataFrame:
    return pd.DataFrame()


def closes_only(ticker: str, start: object, end: object) -> pd.DataFrame:
    return DEMO.fetch(ticker, start, end)[["timestamp", "close"]]


def test_none_is_a_failure_naming_the_ticker_and_the_fix() -> None:
    with pytest.raises(BadSourceData) as info:
        as_source(forgot_return).fetch("AAA", "2024-01-02", "2024-01-05")
    message = str(info.value)
    assert "fetch returned None for 'AAA'" in message and "return a DataFrame" in message
    assert "empty_prices()" in message


def test_a_run_reports_a_forgotten_return_as_failed_not_unchanged(tmp_path: Path) -> None:
    report = fetch_and_write(["AAA", "BBB"], forgot_return, tmp_path / "db", start="2024-01-02")
    assert {t: r["status"] for t, r in report["tickers"].items()} == {
        "AAA": "failed",
        "BBB": "failed",
    }
    assert report["failed"] == 2 and "returned None" in report["errors"]["AAA"]


def test_an_empty_frame_without_columns_is_no_bars(tmp_path: Path) -> None:
    df = as_source(no_bars).fetch("AAA", "2024-01-02", "2024-01-05")
    pd.testing.assert_frame_equal(df, empty_prices())
    report = fetch_and_write(["AAA"], no_bars, tmp_path / "db", start="2024-01-02")
    assert report["failed"] == 0 and report["tickers"]["AAA"]["status"] != "failed"


def test_missing_columns_are_named_with_an_example_row_for_the_ticker_asked() -> None:
    with pytest.raises(BadSourceData) as info:
        as_source(closes_only).fetch("AAA", "2024-01-02", "2024-01-05")
    message = str(info.value)
    assert "without the column(s) ['open', 'high', 'low', 'volume']" in message
    assert "(its columns: ['timestamp', 'close'])" in message  # not the filled-in ticker
    assert "AAPL" not in message and "'AAA'" in message
    assert "timestamp='2024-03-01', open=187.15" in message


class ForgetfulSource:
    """A source class (not wrapped as a callable) whose fetch forgot its ``return``."""

    name = "forgetful"
    retry_policy = 1  # a number of attempts, as --source-option gives it

    def fetch(self, ticker: str, start: object = None, end: object = None) -> None:
        DEMO.fetch(ticker, start, end)


def test_a_source_class_returning_none_fails_too(tmp_path: Path) -> None:
    """The pipeline's own reading of a source class's answer: None is a failure, and a
    retry policy given as a number of attempts is read as one (was an AttributeError)."""
    report = fetch_and_write(["AAA"], ForgetfulSource(), tmp_path / "db", start="2024-01-02")
    assert report["tickers"]["AAA"]["status"] == "failed"
    assert "fetch returned None for 'AAA'" in report["errors"]["AAA"], report["errors"]
