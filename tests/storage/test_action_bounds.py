"""Absurd corporate actions are refused on input, naming the row, and adjusted reads never
produce non-finite prices, whatever actions they meet (issue 26 item 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tickvault import ParquetDB
from tickvault.adjust import adjust_prices
from tickvault.errors import ValidationError


def _bars(days: int = 10, close: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range("2024-06-03", periods=days, freq="B", tz="UTC")
    return pd.DataFrame({"ticker": "ACME", "timestamp": ts, "open": close, "high": close + 1,
                         "low": close - 1, "close": close, "volume": 1000.0})  # fmt: skip


def _action(kind: str, value: float, when: str = "2024-06-10") -> pd.DataFrame:
    return pd.DataFrame({"ticker": ["ACME"], "timestamp": [pd.Timestamp(when, tz="UTC")],
                         "kind": [kind], "value": [value]})  # fmt: skip


@pytest.fixture
def db(tmp_path) -> ParquetDB:
    store = ParquetDB(tmp_path / "db")
    store.upsert_prices(_bars())
    return store


@pytest.mark.parametrize("ratio", [1e-300, 1e-4, 1001.0, 1e308])
def test_a_split_ratio_outside_1_1000th_to_1000_is_refused(db, ratio) -> None:
    with pytest.raises(ValidationError) as info:
        db.upsert_actions(_action("split", ratio))
    msg = str(info.value)
    assert "ACME" in msg and "2024-06-10" in msg and "split" in msg, msg
    assert "1/1000" in msg and "1000" in msg, msg
    assert "actions" not in db.tables() or db.read_table("actions").empty


@pytest.mark.parametrize("ratio", [0.001, 0.1, 4.0, 1000.0])
def test_plausible_split_ratios_are_stored(db, ratio) -> None:
    db.upsert_actions(_action("split", ratio))
    assert db.read_table("actions")["value"].tolist() == [ratio]


@pytest.mark.parametrize("amount", [1e308, 100.0, 250.0])
def test_a_dividend_not_below_the_previous_close_is_refused(db, amount) -> None:
    with pytest.raises(ValidationError) as info:
        db.upsert_actions(_action("dividend", amount))
    msg = str(info.value)
    assert "ACME" in msg and "2024-06-10" in msg and "dividend" in msg, msg
    assert "previous close 100" in msg and "2024-06-07" in msg, msg
    assert "actions" not in db.tables() or db.read_table("actions").empty


def test_a_plausible_dividend_is_stored_and_adjusts(db) -> None:
    db.upsert_actions(_action("dividend", 0.5))
    adjusted = db.read_table("prices", adjust="all")
    assert adjusted["close"].iloc[0] == pytest.approx(100.0 * (1 - 0.5 / 100.0))


def test_a_dividend_with_no_earlier_bar_is_accepted(db) -> None:
    db.upsert_actions(_action("dividend", 5.0, "2024-01-02"))  # before the first bar
    assert len(db.read_table("actions")) == 1


@pytest.mark.parametrize(
    "kind,value",
    [
        ("split", 1e-300),
        ("split", 1e308),
        ("dividend", 1e308),
        ("dividend", 100.0),
        ("dividend", 99.99999999),
    ],
)
def test_adjusted_prices_stay_finite_whatever_actions_they_meet(kind, value) -> None:
    prices = pa.Table.from_pandas(_bars(), preserve_index=False)
    many = pd.concat([_action(kind, value, f"2024-06-{d:02d}") for d in (4, 5, 6, 7, 10, 11)])
    for actions in (_action(kind, value), many):
        for mode in ("splits", "all"):
            out = adjust_prices(prices, pa.Table.from_pandas(actions, preserve_index=False), mode)
            for col in ("open", "high", "low", "close", "volume"):
                values = out.column(col).to_numpy()
                assert np.isfinite(values).all() and (values > 0).all(), (kind, value, mode, col)


def test_a_dividend_long_after_the_last_bar_is_checked_against_that_bar(db) -> None:
    """The previous close is looked for just before the ex-date first; a ticker whose last
    bar is older than that window is still checked against it."""
    with pytest.raises(ValidationError, match=r"previous close 100 on 2024-06-14"):
        db.upsert_actions(_action("dividend", 150.0, when="2025-03-03"))
    db.upsert_actions(_action("dividend", 0.5, when="2025-03-03"))


def test_a_dividend_check_reads_only_the_closes_before_its_ex_date(tmp_path) -> None:
    """An update's dividends need the closes just before their ex-dates: an old year's
    file is not read (a damaged one stopped every update of a dividend payer)."""
    db = ParquetDB(tmp_path / "db")
    old = _bars(days=10).assign(timestamp=pd.date_range("2020-06-01", periods=10, freq="B",
                                                        tz="UTC"))  # fmt: skip
    db.upsert_prices(old)
    db.upsert_prices(_bars())
    db.compact()
    files = db._table("prices").refresh().files.values()
    (f2020,) = [f for f in files if f.max_ts.max() < pd.Timestamp("2021-01-01").value]
    (tmp_path / "db" / "prices" / f2020.path).write_bytes(b"damaged")
    db = ParquetDB(tmp_path / "db")  # a new handle: nothing cached
    db.upsert_actions(_action("dividend", 0.5))  # 2024-06-10: its previous close is 2024-06-07
    assert db.read_table("actions")["value"].tolist() == [0.5]
