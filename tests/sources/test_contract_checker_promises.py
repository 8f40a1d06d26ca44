"""``check_source_contract`` names the broken promise with an AssertionError (never lets
the source's own error escape), shows how to raise TickerNotFound, and catches daily bars
that are not stamped 00:00 UTC of their session date."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tickvault import TickerNotFound
from tickvault.sources import RetryPolicy, get_source
from tickvault.sources.base import bounds
from tickvault.sources.testing import check_source_contract

RANGE = {"known_ticker": "AAPL", "unknown_ticker": "NOPE", "start": "2024-01-02",
         "end": "2024-03-28"}  # fmt: skip


class Good:
    name = "good"
    retry_policy = RetryPolicy()
    interval = "1d"

    def __init__(self) -> None:
        self.demo = get_source("demo", interval=self.interval)

    def unknown(self, ticker: str) -> None:
        raise TickerNotFound(f"unknown ticker {ticker!r}", ticker=ticker)

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        if ticker == "NOPE":
            self.unknown(ticker)
        return self.demo.fetch(ticker, start, end)


class PositionalTicker(Good):
    def unknown(self, ticker: str) -> None:
        raise TickerNotFound(ticker)


class KeyErrorForUnknown(Good):
    def unknown(self, ticker: str) -> None:
        raise KeyError(ticker)


class Shifted(Good):
    """Bars moved by ``shift`` (filtered to the range after the move)."""

    shift = pd.Timedelta(hours=5)  # New York midnight in UTC

    def fetch(self, ticker: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        lo, hi = bounds(start, end)
        before = None if lo is None else lo - pd.Timedelta(days=1)
        df = super().fetch(ticker, before, end)
        df["timestamp"] += self.shift
        keep = pd.Series(True, index=df.index)
        if lo is not None:
            keep &= df["timestamp"] >= lo
        if hi is not None:
            keep &= df["timestamp"] <= hi
        return df[keep].reset_index(drop=True)


class GoodIntraday(Good):
    interval = "5m"


class ShiftedIntraday(Shifted):
    interval = "5m"
    shift = pd.Timedelta(minutes=1)


def test_a_good_source_passes() -> None:
    assert len(check_source_contract(Good(), **RANGE)) == 61


def test_ticker_not_found_without_the_ticker_keyword_shows_the_right_call() -> None:
    with pytest.raises(AssertionError) as info:
        check_source_contract(PositionalTicker(), **RANGE)
    message = str(info.value)
    assert "TickerNotFound.ticker must name the ticker: it is None, not 'NOPE'" in message
    assert "raise TickerNotFound(f'unknown ticker {ticker!r}', ticker=ticker)" in message


def test_another_error_for_the_unknown_ticker_is_an_assertion_error() -> None:
    with pytest.raises(AssertionError, match="must raise TickerNotFound, got KeyError: 'NOPE'"):
        check_source_contract(KeyErrorForUnknown(), **RANGE)


def test_daily_bars_at_local_midnight_are_caught() -> None:
    with pytest.raises(AssertionError) as info:
        check_source_contract(Shifted(), **RANGE)
    message = str(info.value)
    assert "daily bars must be stamped 00:00 UTC of their session date" in message
    assert "2024-01-02 05:00:00+00:00" in message and "pd.Timestamp('2024-01-02'" in message


def test_intraday_bars_off_their_grid_are_caught() -> None:
    day = {**RANGE, "start": "2024-03-04", "end": "2024-03-05"}
    assert len(check_source_contract(GoodIntraday(), **day)) == 2 * 78
    with pytest.raises(AssertionError, match="5m bars must start on the interval's grid"):
        check_source_contract(ShiftedIntraday(), **day)
