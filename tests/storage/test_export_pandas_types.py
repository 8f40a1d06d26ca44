"""An export read back with plain pandas has read_table's dtypes: an integer column with
nulls (``trade_count``) was float64 through ``pd.read_parquet`` (pandas metadata now names
the nullable Int64), while DuckDB and Polars still see int64."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tickvault import ParquetDB


def test_pd_read_parquet_of_an_export_equals_read_table(tmp_path: Path) -> None:
    db = ParquetDB(tmp_path / "db")
    df = pd.DataFrame(
        {
            "ticker": ["AAA", "AAA", "BBB"],
            "timestamp": ["2024-01-02", "2024-01-03", "2024-01-02"],
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 100.0,
            "vwap": [1.2, None, 1.3],
            "trade_count": [5, None, 7_000_000_001],
        }
    )
    db.upsert_prices(df)
    db.export(tmp_path / "out", format="parquet")
    (part,) = sorted((tmp_path / "out").glob("part-*.parquet"))
    back = pd.read_parquet(part)
    assert str(back.trade_count.dtype) == "Int64"
    assert back.trade_count.tolist()[2] == 7_000_000_001  # exact: not through a float
    pd.testing.assert_frame_equal(back, db.read_table())
    assert str(pq.read_schema(part).field("trade_count").type) == "int64"
