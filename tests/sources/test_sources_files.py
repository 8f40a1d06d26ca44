"""The csv and parquet sources: recognised layouts, mappings and errors that name the line."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickvault.errors import BadSourceData, ConfigError, TickerNotFound
from tickvault.sources import DemoSource, get_source
from tickvault.sources.testing import check_source_contract

AS_OF = "2024-06-28"


def _demo(ticker: str, start: str = "2024-01-02", end: str = "2024-03-28") -> pd.DataFrame:
    return DemoSource(as_of=AS_OF).fetch(ticker, start, end)


def _yahoo_csv(df: pd.DataFrame) -> str:
    out = pd.DataFrame(
        {
            "Date": df["timestamp"].dt.strftime("%Y-%m-%d"),
            "Open": df["open"],
            "High": df["high"],
            "Low": df["low"],
            "Close": df["close"],
            "Adj Close": (df["close"] * 0.98).round(4),
            "Volume": df["volume"].astype("int64"),
        }
    )
    return out.to_csv(index=False)


def _stooq_csv(df: pd.DataFrame) -> str:
    out = pd.DataFrame(
        {
            "Date": df["timestamp"].dt.strftime("%Y-%m-%d"),
            "Open": df["open"],
            "High": df["high"],
            "Low": df["low"],
            "Close": df["close"],
            "Volume": df["volume"],
        }
    )
    return out.to_csv(index=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "AAPL.csv").write_text(_yahoo_csv(_demo("AAPL")))
    (tmp_path / "msft.csv").write_text(_stooq_csv(_demo("MSFT")))
    (tmp_path / "notes.md").write_text("not a price file")
    return tmp_path


def test_csv_folder_keeps_the_contract(folder: Path) -> None:
    source = get_source("csv", path=folder)
    df = check_source_contract(source, "AAPL", "NOPE", "2024-01-02", "2024-03-28")
    expected = _demo("AAPL")
    pd.testing.assert_frame_equal(df.drop(columns="adj_close"), expected)
    assert (df["adj_close"] == (expected["close"] * 0.98).round(4)).all()


def test_parquet_single_file_keeps_the_contract(tmp_path: Path) -> None:
    frames = [_demo(t) for t in ("AAPL", "MSFT", "IBM")]
    path = tmp_path / "prices.parquet"
    pq.write_table(pa.Table.from_pandas(pd.concat(frames), preserve_index=False), path)
    source = get_source("parquet", path=path)
    df = check_source_contract(source, "MSFT", "NOPE", "2024-01-02", "2024-03-28")
    pd.testing.assert_frame_equal(df, frames[1])
    assert source.tickers() == ["AAPL", "IBM", "MSFT"]  # type: ignore[attr-defined]


def test_stooq_layout_and_case_insensitive_file_stem(folder: Path) -> None:
    source = get_source("csv", path=folder)
    df = source.fetch("MSFT")
    pd.testing.assert_frame_equal(df, _demo("MSFT"))
    assert list(df.columns) == ["ticker", "timestamp", "open", "high", "low", "close", "volume"]
    assert sorted(source.tickers()) == ["AAPL", "msft"]  # type: ignore[attr-defined]
    with pytest.raises(TickerNotFound, match="no file for ticker 'GOOG'"):
        source.fetch("GOOG")
    with pytest.raises(TickerNotFound):
        source.fetch("../AAPL")


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_lower_and_upper_case_headers(tmp_path: Path, case: type[str]) -> None:
    text = _yahoo_csv(_demo("AAPL"))
    header, body = text.split("\n", 1)
    (tmp_path / "AAPL.csv").write_text(case(header) + "\n" + body)
    df = get_source("csv", path=tmp_path).fetch("AAPL", "2024-02-01", "2024-02-29")
    assert len(df) == 20 and "adj_close" in df.columns  # Feb 2024 sessions


def test_single_csv_with_ticker_column_and_explicit_mapping(tmp_path: Path) -> None:
    a, b = _demo("AAPL"), _demo("BRK.B")
    both = pd.concat([a, b])
    custom = pd.DataFrame(
        {
            "sym": both["ticker"],
            "day": both["timestamp"].dt.strftime("%d/%m/%Y"),
            "o": both["open"],
            "h": both["high"],
            "l": both["low"],
            "c": both["close"],
            "shares": both["volume"],
        }
    )
    path = tmp_path / "export.csv"
    custom.to_csv(path, index=False)
    source = get_source(
        "csv",
        path=path,
        ticker_column="sym",
        date_format="%d/%m/%Y",
        columns={
            "day": "timestamp",
            "o": "open",
            "h": "high",
            "l": "low",
            "c": "close",
            "shares": "volume",
        },
    )
    pd.testing.assert_frame_equal(source.fetch("BRK.B"), b)
    pd.testing.assert_frame_equal(source.fetch("aapl"), a)  # tickers are upper case
    with pytest.raises(TickerNotFound, match="not found in column 'sym'"):
        source.fetch("IBM")
    copy = pickle.loads(pickle.dumps(source))
    pd.testing.assert_frame_equal(
        copy.fetch("BRK.B", "2024-03-01", "2024-03-01"),
        b[b.timestamp == "2024-03-01"].reset_index(drop=True),
    )


def test_single_file_without_ticker_column_holds_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "SPY.csv"
    path.write_text(_stooq_csv(_demo("SPY")))
    source = get_source("csv", path=path)
    assert len(source.fetch("SPY")) == len(_demo("SPY"))
    with pytest.raises(TickerNotFound, match="holds 'SPY' only"):
        source.fetch("QQQ")


def test_offset_midnight_dates_keep_their_session_date_and_null_rows_are_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "AAPL.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-01 00:00:00-05:00,10,11,9,10.5,10.4,100\n"
        "2024-03-04 00:00:00-05:00,null,null,null,null,null,null\n"
        "\n"
        "2024-03-05 00:00:00-05:00,10.5,12,10,11,10.9,200\n"
    )
    df = get_source("csv", path=tmp_path).fetch("AAPL")
    assert list(df["timestamp"]) == [
        pd.Timestamp("2024-03-01", tz="UTC"),
        pd.Timestamp("2024-03-05", tz="UTC"),
    ]
    assert list(df["close"]) == [10.5, 11.0]


def test_stooq_index_without_volume_gets_zero_volume(tmp_path: Path) -> None:
    (tmp_path / "^SPX.csv").write_text("Date,Open,High,Low,Close\n2024-03-01,5000,5100,4990,5090\n")
    df = get_source("csv", path=tmp_path).fetch("^SPX")
    assert df["volume"].tolist() == [0.0]


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("2024-03-05,10,11,9,abc,100", "Close", "'abc' is not a number"),
        ("2024-13-45,10,11,9,10,100", "Date", "'2024-13-45' is not an ISO date"),
        ("2024-03-05,10,11,,10,100", "Low", "is empty"),
        ("2024-03-05,10,11,9,10,", "Volume", "is empty"),
        ("2024-03-05,10,8,9,10,100", "high", "below-low"),
        ("2024-03-05,-10,11,9,10,100", "open", "non-positive"),
    ],
)
def test_bad_rows_name_file_line_and_column(
    tmp_path: Path, row: str, column: str, problem: str
) -> None:
    path = tmp_path / "AAPL.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-03-01,10,11,9,10,100\n"
        "2024-03-04,10,11,9,10,100\n" + row + "\n2024-03-06,10,11,9,10,100\n"
    )
    with pytest.raises(BadSourceData) as info:
        get_source("csv", path=tmp_path).fetch("AAPL")
    message = str(info.value)
    assert f"{path} line 4" in message
    assert f"column {column!r}" in message
    assert problem in message
    # the line, not also the validator's 0-based row number
    assert "row" not in message.split(f"{path} line 4")[1]
    assert info.value.ticker == "AAPL" and info.value.source == "csv"
    if column != "Date":  # a bad value outside the range asked for does not matter
        assert len(get_source("csv", path=tmp_path).fetch("AAPL", end="2024-03-04")) == 2


def test_bad_rows_of_one_ticker_do_not_affect_another(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(
        "Ticker,Date,Open,High,Low,Close,Volume\n"
        "AAPL,2024-03-01,10,11,9,10,100\n"
        "MSFT,2024-03-01,10,11,9,x,100\n"
        "AAPL,2024-03-04,10,11,9,10,100\n"
    )
    source = get_source("csv", path=path)
    assert len(source.fetch("AAPL")) == 2
    with pytest.raises(BadSourceData, match=r"all.csv line 3, column 'Close'"):
        source.fetch("MSFT")


def test_bad_parquet_rows_name_the_row(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "Date": pd.to_datetime(["2024-03-01", "2024-03-04", "2024-03-05"]),
            "Open": [10.0, 10.0, 10.0],
            "High": [11.0, 11.0, 11.0],
            "Low": [9.0, 12.0, 9.0],
            "Close": [10.0, 10.0, 10.0],
            "Volume": [1.0, 2.0, 3.0],
        }
    )
    df.to_parquet(tmp_path / "X.parquet")
    with pytest.raises(BadSourceData, match=r"X.parquet row 2, column 'high'"):
        get_source("parquet", path=tmp_path).fetch("X")


def test_unreadable_and_unrecognised_files(tmp_path: Path) -> None:
    (tmp_path / "A.csv").write_text("")
    (tmp_path / "B.csv").write_text("when,price\n2024-03-01,10\n")
    (tmp_path / "C.parquet").write_bytes(b"not parquet")
    with pytest.raises(BadSourceData, match="is empty"):
        get_source("csv", path=tmp_path).fetch("A")
    with pytest.raises(BadSourceData, match=r"no column for \['timestamp', 'open'"):
        get_source("csv", path=tmp_path).fetch("B")
    with pytest.raises(BadSourceData, match="cannot be read as Parquet"):
        get_source("parquet", path=tmp_path).fetch("C")
    with pytest.raises(ConfigError, match="does not exist"):
        get_source("csv", path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="unknown column"):
        get_source("csv", path=tmp_path, columns={"when": "date"})


def test_empty_range_gives_empty_frame(folder: Path) -> None:
    df = get_source("csv", path=folder).fetch("AAPL", "2030-01-01", "2030-12-31")
    assert len(df) == 0
    assert list(df.columns) == [
        "ticker",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "adj_close",
    ]
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
