"""Every validation rule rejects the batch, names the column, and leaves disk untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from helpers.files import tree_snapshot
from tickvault import ParquetDB, TickvaultError, ValidationError


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ["AAPL", "AAPL", "MSFT"],
            "timestamp": ["2024-03-01", "2024-03-04", "2024-03-01"],
            "open": [10.0, 11.0, 20.0],
            "high": [12.0, 12.0, 21.0],
            "low": [9.0, 10.0, 19.0],
            "close": [11.0, 11.5, 20.5],
            "volume": [100.0, 200.0, 300.0],
        }
    )


CASES = [
    ("missing column", lambda d: d.drop(columns="close"), "close", "missing"),
    ("unknown column", lambda d: d.assign(vwapp=1.0), "vwapp", "unknown"),
    ("uncastable", lambda d: d.assign(close=["11", "abc", "20.5"]), "close", "cannot be cast"),
    ("null ticker", lambda d: d.assign(ticker=["AAPL", None, "MSFT"]), "ticker", "null"),
    ("empty ticker", lambda d: d.assign(ticker=["AAPL", "", "MSFT"]), "ticker", "empty"),
    (
        "null timestamp",
        lambda d: d.assign(timestamp=["2024-03-01", None, "2024-03-01"]),
        "timestamp",
        "null",
    ),
    (
        "bad timestamp",
        lambda d: d.assign(timestamp=["2024-03-01", "soon", "2024-03-01"]),
        "timestamp",
        "not timestamps",
    ),
    ("nan price", lambda d: d.assign(open=[10.0, np.nan, 20.0]), "open", "null"),
    ("inf price", lambda d: d.assign(low=[9.0, -np.inf, 19.0]), "low", "non-finite"),
    (
        "zero price",
        lambda d: d.assign(open=[0.0, 11.0, 20.0], low=[0.0, 10.0, 19.0]),
        "open",
        "non-positive",
    ),
    ("negative price", lambda d: d.assign(close=[11.0, -1.0, 20.5]), "close", "non-positive"),
    ("high below low", lambda d: d.assign(high=[8.0, 12.0, 21.0]), "high", "below-low"),
    ("high below close", lambda d: d.assign(high=[10.5, 12.0, 21.0]), "high", "below-close"),
    ("low above open", lambda d: d.assign(low=[10.5, 10.0, 19.0]), "low", "above-open"),
    ("negative volume", lambda d: d.assign(volume=[100.0, -5.0, 300.0]), "volume", "negative"),
    ("bad adj_close", lambda d: d.assign(adj_close=[1.0, -2.0, 3.0]), "adj_close", "non-positive"),
]


@pytest.mark.parametrize(("case", "mutate", "column", "problem"), CASES, ids=[c[0] for c in CASES])
def test_rule_rejects_and_leaves_disk_unchanged(tmp_path, case, mutate, column, problem):
    db = ParquetDB(tmp_path / "db")
    db.upsert_prices(good())
    before = tree_snapshot(tmp_path / "db")
    with pytest.raises(ValidationError) as info:
        db.upsert_prices(mutate(good()))
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, TickvaultError)
    assert column in str(err) and problem in str(err)
    assert err.column == column
    assert tree_snapshot(tmp_path / "db") == before
    assert len(db.read_table()) == 3


def test_message_names_count_and_first_row():
    from tickvault.schema import PRICES

    bad = good().assign(close=[11.0, -1.0, -2.0])
    with pytest.raises(ValidationError) as info:
        PRICES.validate(bad)
    msg = str(info.value)
    assert "column 'close' has 2 non-positive values" in msg
    assert "row 1 (AAPL, 2024-03-04)" in msg
    assert "e.g." in msg  # an example of a valid value


def test_rejected_batch_into_new_database_writes_no_data(tmp_path):
    db = ParquetDB(tmp_path / "db")
    with pytest.raises(ValidationError):
        db.upsert_prices(good().assign(volume=-1.0))
    assert not list((tmp_path / "db").rglob("*.parquet"))
    assert db.version == -1


def test_arrow_input_and_optional_adj_close(db):
    t = pa.Table.from_pandas(good().assign(adj_close=[10.9, None, 20.1]), preserve_index=False)
    db.upsert_prices(t)
    df = db.read_table()
    assert df.adj_close.isna().sum() == 1


def test_non_dataframe_input_is_rejected(db):
    with pytest.raises(ValidationError, match="DataFrame or pyarrow Table"):
        db.upsert_prices([{"ticker": "AAPL"}])


def test_numbers_as_timestamps_are_ambiguous(db):
    with pytest.raises(ValidationError, match="ambiguous"):
        db.upsert_prices(good().assign(timestamp=[1, 2, 3]))


def test_bad_read_arguments_are_named(db):
    db.upsert_prices(good())
    with pytest.raises(ValidationError, match="start='yesterday-ish'"):
        db.read_table(start="yesterday-ish")
    with pytest.raises(ValidationError, match="unknown column"):
        db.read_table(columns=["close", "vwapp"])
    with pytest.raises(ValidationError, match="after end"):
        db.read_table(start="2024-03-05", end="2024-03-01")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"start": "0001-01-01"}, "start='0001-01-01'"),
        ({"end": "9999-12-31"}, "end='9999-12-31'"),
        ({"start": "0001-01-01", "end": "9999-12-31"}, "start="),
        ({"start": "2262-04-12"}, "start='2262-04-12'"),
        ({"end": "2262-04-11T23:00-05:00"}, "end="),  # 2262-04-12 in UTC
    ],
)
def test_read_bounds_outside_the_storable_range_are_named(db, kwargs, named):
    db.upsert_prices(good())
    with pytest.raises(ValidationError, match="outside the supported range") as err:
        db.read_table(**kwargs)
    assert named in str(err.value) and "1677-09-21 .. 2262-04-11" in str(err.value)


def test_read_bounds_on_the_first_and_last_storable_days_are_clamped(db):
    db.upsert_prices(good())
    assert len(db.read_table(start="1677-09-21", end="2262-04-11")) == 3
    assert len(db.read_table(end="2262-04-11T23:59:59Z")) == 3
    assert len(db.read_table(start="2262-04-11")) == 0
