"""The key algorithms and validation on awkward input: unsigned and null keys in the sorted
check, chunked/sliced/non-contiguous batches, degenerate tables, blank keys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from helpers.bars import arrow_bars, chunked
from tickvault.schema import (
    ACTIONS,
    PRICES,
    TIMESTAMP_TYPE,
    Column,
    TableSchema,
    column_runs,
    is_sorted_unique,
)

DAY = 86_400 * 10**9


TICKS = TableSchema(
    name="ticks",
    columns=(
        Column("ticker", pa.string(), example="'AAPL'"),
        Column("timestamp", TIMESTAMP_TYPE, example="'2024-03-01'"),
        Column("trade_id", pa.uint64(), example="7"),
        Column("price", pa.float64(), example="1.5"),
    ),
    key=("ticker", "timestamp", "trade_id"),
)


@pytest.mark.parametrize("ids", [[2**63 + 1, 5], [5, 2**63 + 1]])
def test_uint64_key_above_int64_max_is_sorted_correctly(ids):
    # schema.py is_sorted_unique: the numpy path casts every integer key column to int64
    # (safe cast) -> ArrowInvalid for uint64 values >= 2**63. The row-by-row path it
    # replaced compared them fine.
    t = pa.table(
        {
            "ticker": ["A", "A"],
            "timestamp": pa.array([0, 0], pa.int64()).cast(TIMESTAMP_TYPE),
            "trade_id": pa.array(ids, pa.uint64()),
            "price": [1.0, 2.0],
        }
    )
    assert is_sorted_unique(t, TICKS.key) is (ids[0] < ids[1])
    clean = TICKS.validate(t)
    assert clean.column("trade_id").to_pylist() == sorted(ids)


def test_null_series_value_is_not_sorted_by_the_runs_check():
    # schema.py is_sorted_unique, runs path: comparing run values gives null next to a
    # null run and pc.any skips nulls, so a null ticker in the middle counts as sorted.
    # Arrow sorts nulls last (keep_highest), so the claim is wrong. Reachable only with a
    # custom schema whose series column is nullable (register_table allows it).
    t = arrow_bars(["A", "B", "C"], [0, 0, 0]).set_column(
        0, "ticker", pa.array(["A", None, "B"], pa.string())
    )
    assert not is_sorted_unique(t, PRICES.key, column_runs(t, "ticker"))


@pytest.mark.parametrize("shape", ["plain", "chunked", "sliced", "pandas"])
@pytest.mark.parametrize("schema", [PRICES, ACTIONS])
def test_validate_runs_on_chunked_sliced_and_noncontiguous_input(shape, schema):
    rng = np.random.default_rng(3)
    n = 41
    tk = rng.choice(["A", "B", "BB", "C"], n).tolist()  # runs not contiguous
    days = rng.integers(-5, 5, n).tolist()  # before and after 1970, duplicates
    kinds = rng.choice(["dividend", "split"], n).tolist()
    vals = rng.uniform(1, 5, n).round(3).tolist()
    if schema is PRICES:
        t = arrow_bars(tk, days, vals)
        keyof = list(zip(tk, days, strict=True))
    else:
        t = pa.table(
            {
                "ticker": tk,
                "timestamp": pa.array(np.asarray(days) * DAY).cast(TIMESTAMP_TYPE),
                "kind": kinds,
                "value": vals,
            }
        )
        keyof = list(zip(tk, days, kinds, strict=True))
    rows = list(range(n))
    if shape == "chunked":
        t = chunked(t, [1, 7, 20])
    elif shape == "sliced":
        t, rows = t.slice(3, 30), rows[3:33]
    elif shape == "pandas":
        t = t.to_pandas()
    clean, runs = schema.validate_runs(t)
    model = {keyof[i]: vals[i] for i in rows}  # last occurrence wins
    want = sorted(model.items())
    vcol = "close" if schema is PRICES else "value"
    got_keys = list(
        zip(
            clean.column("ticker").to_pylist(),
            (clean.column("timestamp").cast(pa.int64()).to_numpy() // DAY).tolist(),
            *([clean.column("kind").to_pylist()] if schema is ACTIONS else []),
            strict=True,
        )
    )
    assert got_keys == [k for k, _ in want]
    assert clean.column(vcol).to_pylist() == [v for _, v in want]
    ref = column_runs(clean, "ticker")
    assert runs.values.to_pylist() == ref.values.to_pylist()
    assert runs.starts.tolist() == ref.starts.tolist()
    assert runs.ends.tolist() == ref.ends.tolist()


def test_sorted_check_small_and_degenerate_tables():
    one = arrow_bars(["A"], [0])
    empty = one.slice(0, 0)
    assert is_sorted_unique(empty, PRICES.key, column_runs(empty, "ticker"))
    assert is_sorted_unique(one, PRICES.key, column_runs(one, "ticker"))
    same = arrow_bars(["A", "A"], [1, 1])
    assert not is_sorted_unique(same, PRICES.key, column_runs(same, "ticker"))
    back = chunked(arrow_bars(["A", "B", "A"], [1, 2, 3]), [1, 2])
    assert not is_sorted_unique(back, PRICES.key, column_runs(back, "ticker"))
    assert PRICES.validate_runs(empty)[1].starts.size == 0


def test_blank_kind_in_actions_reports_the_first_row():
    t = pa.table(
        {
            "ticker": ["B", "A", "A", "B"],
            "timestamp": pa.array([0, 0, DAY, DAY]).cast(TIMESTAMP_TYPE),
            "kind": ["split", "dividend", " ", " "],
            "value": [1.0, 1.0, 1.0, 1.0],
        }
    )
    with pytest.raises(Exception, match=r"'kind' has 2 empty values, first at row 2 \(A, "):
        ACTIONS.validate(t)


@pytest.mark.parametrize("period", ["year", "month", "day"])
@pytest.mark.parametrize("seed", range(6))
def test_split_by_period_cuts_the_ticker_runs_it_was_given(period, seed):
    """The runs that split_by_period hands each period's piece (cut from the batch's runs,
    not found again) are exactly the piece's own runs: tickers with rows in one period
    only, neighbours sharing a period, a ticker of one row, periods with gaps."""
    from tickvault.storage.core.periods import split_by_period

    rng = np.random.default_rng(seed)
    names, stamps = [], []
    for i in range(int(rng.integers(1, 40))):
        n = int(rng.integers(1, 300))
        first = int(rng.integers(0, 3 * 365))
        days = np.unique(first + rng.integers(0, int(rng.integers(1, 900)), n))
        names += [f"T{i:03d}"] * len(days)
        stamps.append(np.datetime64("2019-12-30", "ns").astype(np.int64) + days * DAY)
    table = pa.table(
        {
            "ticker": pa.array(names),
            "timestamp": pa.array(np.concatenate(stamps)).cast(pa.int64()).cast(TIMESTAMP_TYPE),
            "close": pa.array(rng.random(len(names))),
        }
    )
    runs = column_runs(table, "ticker")
    pieces = split_by_period(table, "timestamp", period, runs)
    assert sum(p.num_rows for _, p, _ in pieces) == table.num_rows
    for _, piece, got in pieces:
        want = column_runs(piece, "ticker")
        assert got is not None
        assert got.values.equals(want.values)
        assert got.starts.tolist() == want.starts.tolist()
        assert got.ends.tolist() == want.ends.tolist()
    # without runs the pieces are the same and carry none
    plain = split_by_period(table, "timestamp", period)
    assert [(p, t.num_rows, r) for p, t, r in plain] == [
        (p, t.num_rows, None) for p, t, _ in pieces
    ]
