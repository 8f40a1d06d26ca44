"""Messages read like the data a person typed: numbers as `10.5`, never `np.float64(10.5)`;
a NaN called NaN, not "empty"; a date tickvault cannot store named with its file and line
like every other CSV error (issue 25 item 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tickvault.errors import BadSourceData
from tickvault.formats import plain_number
from tickvault.sources import get_source
from tickvault.sources.base import CallableSource

HEADER = "date,open,high,low,close,volume\n"


def _fetch(tmp_path, ticker: str, body: str):
    (tmp_path / f"{ticker}.csv").write_text(HEADER + body)
    return get_source("csv", path=str(tmp_path)).fetch(ticker, "2024-01-01", "2024-12-31")


def test_two_different_bars_name_the_values_as_written(tmp_path) -> None:
    with pytest.raises(BadSourceData) as info:
        _fetch(tmp_path, "AAPL", "2024-06-03,10,11,9,10.5,100\n2024-06-03,10,11,9,10.7,100\n")
    msg = str(info.value)
    assert "(close 10.5 vs 10.7)" in msg, msg
    assert "np." not in msg and "line 2" in msg and "line 3" in msg
    assert "2024-06-03T00:00:00Z" in msg, msg  # one time format: Z, as everywhere


def test_two_different_bars_from_a_callable_source_name_plain_numbers() -> None:
    def fetch(ticker, start, end):
        ts = pd.Timestamp("2024-06-03", tz="UTC")
        return pd.DataFrame({"timestamp": [ts, ts], "open": 1.0, "high": 2.0, "low": 0.5,
                             "close": [1.5, 1.25], "volume": np.array([100, 100])})  # fmt: skip

    with pytest.raises(BadSourceData) as info:
        CallableSource(fetch, name="mine").fetch("AAPL", "2024-06-01", "2024-06-30")
    assert "(close 1.5 vs 1.25)" in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["NaN", "nan"])
def test_a_nan_is_called_nan_not_empty(tmp_path, text) -> None:
    with pytest.raises(BadSourceData) as info:
        _fetch(tmp_path, "MSFT", f"2024-06-03,10,11,9,{text},100\n")
    msg = str(info.value)
    assert "line 2" in msg and "'close'" in msg and "NaN" in msg and "empty" not in msg, msg


def test_an_empty_cell_is_still_empty(tmp_path) -> None:
    with pytest.raises(BadSourceData) as info:
        _fetch(tmp_path, "MSFT", "2024-06-03,10,11,9,,100\n")
    assert "line 2, column 'close': is empty" in str(info.value), str(info.value)


@pytest.mark.parametrize("date", ["2300-01-01", "1600-01-01"])
def test_a_date_outside_the_storable_range_names_file_and_line(tmp_path, date) -> None:
    with pytest.raises(BadSourceData) as info:
        _fetch(tmp_path, "NVDA", f"2024-06-03,10,11,9,10,100\n{date},10,11,9,10,100\n")
    msg = str(info.value)
    assert "NVDA.csv line 3" in msg and "'date'" in msg and date in msg, msg
    assert "1677-09-21 .. 2262-04-11" in msg, msg


def test_plain_number() -> None:
    assert plain_number(np.float64(10.5)) == "10.5"
    assert plain_number(np.float64(100.0)) == "100"
    assert plain_number(np.int64(7)) == "7"
    assert plain_number(float("nan")) == "NaN"
    assert plain_number(0.1 + 0.2) == "0.30000000000000004"  # exact, never rounded away
    assert plain_number(3218785.0) == "3218785"
    assert plain_number(1e308) == "1e+308"


def test_a_or_an_by_how_the_word_starts(tmp_path) -> None:
    from tickvault import ParquetDB
    from tickvault.errors import ValidationError
    from tickvault.formats import with_article

    assert [with_article(w) for w in ["open", "close", "ATTACH", "UPDATE", "USE", "INSTALL"]] == [
        "an open", "a close", "an ATTACH", "an UPDATE", "a USE", "an INSTALL",
    ]  # fmt: skip
    bars = pd.DataFrame({"ticker": ["AAA"], "timestamp": [pd.Timestamp("2024-06-03", tz="UTC")],
                         "open": [None], "high": [2.0], "low": [1.0], "close": [1.5],
                         "volume": [10.0]})  # fmt: skip
    with pytest.raises(ValidationError, match="every row needs an open"):
        ParquetDB(tmp_path / "db").upsert_prices(bars)
