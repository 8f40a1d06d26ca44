"""How new data files encode their columns (the ``encoding`` option, decision 020):
timestamps and integers as DELTA_BINARY_PACKED, floats whose values do not repeat as
BYTE_STREAM_SPLIT (and those that do by dictionary) by default — smaller files for a
bucket to send — or pyarrow's defaults with ``encoding="plain"``; a database holding files
of both kinds reads, compacts and opens in DuckDB and Polars the same."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from helpers.bars import make_bars
from tickvault import ParquetDB
from tickvault.errors import ConfigError

TICKERS = [f"T{i:02d}" for i in range(20)]


def _encodings(db: ParquetDB) -> dict[str, set[str]]:
    """Column -> the encodings of its data pages, over every live file."""
    out: dict[str, set[str]] = {}
    for path in db.snapshot().files:
        md = pq.read_metadata(db.path / "prices" / path)  # type: ignore[operator]
        for r in range(md.num_row_groups):
            for c in range(md.num_columns):
                col = md.row_group(r).column(c)
                out.setdefault(col.path_in_schema, set()).update(col.encodings)
    return out


def test_new_files_split_floats_and_delta_pack_timestamps(tmp_path):
    db = ParquetDB(tmp_path / "db", fsync=False)
    bars = make_bars(TICKERS, "2023-01-02", periods=300).assign(trade_count=7)
    db.upsert_prices(bars)
    enc = _encodings(db)
    for c in ("open", "high", "low", "close", "volume"):
        assert "BYTE_STREAM_SPLIT" in enc[c], c
    assert "DELTA_BINARY_PACKED" in enc["timestamp"]
    assert "DELTA_BINARY_PACKED" in enc["trade_count"]
    assert "RLE_DICTIONARY" in enc["ticker"]

    plain = ParquetDB(tmp_path / "plain", fsync=False, encoding="plain")
    plain.upsert_prices(bars)
    enc = _encodings(plain)
    assert not any({"BYTE_STREAM_SPLIT", "DELTA_BINARY_PACKED"} & e for e in enc.values())
    assert db.read_table().equals(plain.read_table())


def test_files_of_both_encodings_read_compact_and_open_in_other_engines(tmp_path):
    path = tmp_path / "db"
    old = ParquetDB(path, fsync=False, encoding="plain", auto_compact=False)
    old.upsert_prices(make_bars(TICKERS, "2023-01-02", periods=250))
    new = ParquetDB(path, fsync=False, auto_compact=False)
    fix = make_bars(TICKERS[:5], "2023-06-01", periods=10, salt=3)
    new.upsert_prices(fix)
    expected = new.read_table()
    assert len(expected) == 20 * 250
    new.compact()
    got = ParquetDB(path).read_table()
    assert got.equals(expected)
    assert "BYTE_STREAM_SPLIT" in _encodings(new)["close"]  # compaction wrote split files
    pytest.importorskip("duckdb")
    ((count, total),) = new.to_duckdb().aggregate("count(*), sum(close)").fetchall()
    assert (count, total) == (len(expected), pytest.approx(expected["close"].sum()))
    pytest.importorskip("polars")
    frame = new.to_polars().collect()
    assert frame.height == len(expected)
    assert frame["close"].sum() == pytest.approx(expected["close"].sum())


def test_an_unknown_encoding_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"encoding='rle'.*\['auto', 'split', 'plain'\]"):
        ParquetDB(tmp_path / "db", encoding="rle")
    assert ParquetDB(tmp_path / "db", encoding="PLAIN").options.encoding == "plain"
