"""Date strings are never guessed: ``upsert_prices`` takes datetimes, dates, ISO 8601
strings, or strings in a format the caller names (``date_format=``); any other string is
a ValidationError naming the column, the first value and the accepted formats, and the
database is unchanged. (``['12/02/2024', '13/02/2024']`` used to be stored as December 2nd
and February 13th: each row guessed on its own.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from tickvault import ParquetDB, ValidationError, fetch_and_write
from tickvault.schema import PRICES


def bars(stamps: list[object], ticker: str = "AAPL") -> pd.DataFrame:
    n = len(stamps)
    return pd.DataFrame(
        {
            "ticker": [ticker] * n,
            "timestamp": pd.Series(stamps, dtype=object),
            "open": [10.0] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [10.5] * n,
            "volume": [100.0] * n,
        }
    )


DAY_FIRST = ["12/02/2024", "13/02/2024"]


def shapes(frame: pd.DataFrame) -> dict[str, object]:
    """The same rows as an object column, a pandas string column and an Arrow table."""
    return {
        "object": frame,
        "string dtype": frame.assign(timestamp=frame["timestamp"].astype("string")),
        "arrow": pa.Table.from_pandas(frame.astype({"timestamp": str}), preserve_index=False),
    }


@pytest.mark.parametrize("shape", ["object", "string dtype", "arrow"])
def test_day_first_strings_are_refused_not_guessed(tmp_path: Path, shape: str) -> None:
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ValidationError) as err:
        db.upsert_prices(shapes(bars(DAY_FIRST))[shape])
    message = str(err.value)
    assert err.value.column == "timestamp" and err.value.row == 0 and err.value.count == 2
    assert "'12/02/2024'" in message  # the first value
    assert "ISO 8601" in message and "'2024-03-01'" in message  # the accepted formats
    assert "date_format=" in message  # and how to name another one
    assert db.version == -1 and db.tickers() == []


def test_a_non_iso_string_among_datetimes_is_refused(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    mixed = [dt.datetime(2024, 2, 9), pd.Timestamp("2024-02-12", tz="UTC"), "Feb 13 2024"]
    with pytest.raises(ValidationError, match=r"row 2: 'Feb 13 2024'"):
        db.upsert_prices(bars(mixed))
    with pytest.raises(ValidationError, match=r"column 'timestamp'.*row 1: 20240213"):
        db.upsert_prices(bars(["2024-02-12", 20240213]))  # a number is no date either
    assert db.version == -1


def test_iso_strings_of_every_usual_shape_are_accepted(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(
        bars(
            [
                "2024-02-12",
                "2024-02-13T14:30:00Z",
                "2024-02-14 09:30:00-05:00",
                "2024-02-15T00:00",
                dt.date(2024, 2, 16),
            ]
        )
    )
    got = db.read_table()["timestamp"].dt.strftime("%Y-%m-%d %H:%M").tolist()
    assert got == [
        "2024-02-12 00:00",
        "2024-02-13 14:30",
        "2024-02-14 14:30",
        "2024-02-15 00:00",
        "2024-02-16 00:00",
    ]


@pytest.mark.parametrize("shape", ["object", "string dtype", "arrow"])
def test_a_named_date_format_reads_every_row_the_same_way(tmp_path: Path, shape: str) -> None:
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(shapes(bars(DAY_FIRST))[shape], date_format="%d/%m/%Y")
    got = db.read_table()["timestamp"]
    assert got.tolist() == [pd.Timestamp(d, tz="UTC") for d in ("2024-02-12", "2024-02-13")]


def test_a_value_that_does_not_match_the_named_format_is_refused(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ValidationError) as err:
        db.upsert_prices(bars(["12/02/2024", "2024-02-13"]), date_format="%d/%m/%Y")
    message = str(err.value)
    assert "row 1: '2024-02-13'" in message and "date_format='%d/%m/%Y'" in message
    assert err.value.column == "timestamp"
    with pytest.raises(ValidationError, match=r"date_format"):
        db.upsert_prices(bars(DAY_FIRST), date_format="")
    assert db.version == -1


def test_schema_validation_refuses_them_too() -> None:
    with pytest.raises(ValidationError, match="'12/02/2024'"):
        PRICES.validate(bars(DAY_FIRST))


def test_a_source_answering_day_first_strings_fails_that_ticker(tmp_path: Path) -> None:
    def fetch(ticker: str, start: object, end: object) -> pd.DataFrame:
        return bars(DAY_FIRST if ticker == "BAD" else ["2024-02-12", "2024-02-13"], ticker)

    class Frames:
        name = "frames"

        def __init__(self) -> None:
            from tickvault.sources import RetryPolicy

            self.retry_policy = RetryPolicy(attempts=1)

        def fetch(self, ticker: str, start: object = None, end: object = None) -> pd.DataFrame:
            return fetch(ticker, start, end)

    report = fetch_and_write(["AAPL", "BAD"], Frames(), tmp_path / "db", scheduler="synchronous")
    assert (report["written"], report["failed"]) == (1, 1)
    assert "'12/02/2024'" in report["errors"]["BAD"]
