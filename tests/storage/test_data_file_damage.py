"""Data files damaged by hand: a file copied over another is refused by reads (never read
as the other's rows), repair drops it and lists what it held; bit rot inside a page fails
verify (page checksums), and so do decoded values the table's rules refuse."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from helpers.cli import tv
from tickvault import CorruptDatabaseError, ParquetDB
from tickvault.storage import MemoryStore


def files_by_start(db: ParquetDB) -> list[str]:
    """The live data files of prices, oldest rows first."""
    st = db._table("prices").refresh()
    return [f.path for f in sorted(st.files.values(), key=lambda f: f.start)]


def two_years(db: ParquetDB, bars) -> list[str]:
    """A 2024 file (60 rows) and a 2025 file (40 rows) of AAPL and MSFT."""
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-03-01", periods=30))
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2025-03-03", periods=20))
    return files_by_start(db)


def as_old_file(path: Path) -> None:
    """Rewrite ``path`` as a version before this one wrote it: no name in its footer, no
    page checksums (same rows, same statistics)."""
    t = pq.read_table(path)
    pq.write_table(t.replace_schema_metadata(None), path)


def test_a_file_copied_over_another_is_refused_by_every_read(db, bars, db_path):
    old, new = two_years(db, bars)
    shutil.copyfile(db_path / "prices" / old, db_path / "prices" / new)
    fresh = ParquetDB(db_path)
    with pytest.raises(CorruptDatabaseError, match=rf"{new}.*tickvault verify"):
        fresh.read_table(tickers=["MSFT"], start="2025-01-01", end="2025-12-31")
    with pytest.raises(CorruptDatabaseError, match=new):
        ParquetDB(db_path).read_table()
    # the undamaged file still reads
    assert len(ParquetDB(db_path).read_table(tickers=["MSFT"], end="2024-12-31")) == 30


def test_a_small_daily_file_copied_over_the_next_days_is_refused(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-03-01", periods=30))
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-04-15", periods=1))
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-04-16", periods=1))
    *_, day1, day2 = files_by_start(db)
    shutil.copyfile(db_path / "prices" / day1, db_path / "prices" / day2)  # same rows
    with pytest.raises(CorruptDatabaseError, match=day2):
        ParquetDB(db_path).read_table(tickers=["AAPL"], start="2024-04-10")
    r = tv("query", "AAPL", "--start", "2024-04-10", db=db_path)
    assert r.returncode != 0 and day2 in r.stderr and "2024-04-15" not in r.stdout


def test_an_old_file_without_its_name_is_checked_by_rows_and_times(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-03-01", periods=30))
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-04-15", periods=1))
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-04-16", periods=1))
    big, day1, day2 = files_by_start(db)
    for name in (big, day1, day2):
        as_old_file(db_path / "prices" / name)
    assert ParquetDB(db_path).verify().ok  # files of older versions verify as before
    assert len(ParquetDB(db_path).read_table()) == 64
    shutil.copyfile(db_path / "prices" / day1, db_path / "prices" / day2)  # same row count
    with pytest.raises(CorruptDatabaseError, match=day2):
        ParquetDB(db_path).read_table(tickers=["AAPL"], start="2024-04-10")
    shutil.copyfile(db_path / "prices" / day1, db_path / "prices" / big)  # other row count
    with pytest.raises(CorruptDatabaseError, match=big):
        ParquetDB(db_path).read_table(tickers=["AAPL"], end="2024-03-31")


def test_on_an_object_store_a_copied_file_is_refused_whatever_its_size():
    """Ranged reads there use the log's byte size: a larger file copied in has no footer
    at that size's end, a smaller one a footer naming another file; small files are one
    GET of all of them."""
    mem = MemoryStore("memory://copied-file")
    writer = ParquetDB(store=mem, auto_compact=False)
    rng = np.random.default_rng(7)
    n, days = 120, 600
    price = rng.uniform(50, 60, n * days)
    writer.upsert_prices(
        pd.DataFrame(
            {
                "ticker": np.repeat([f"T{i:03d}" for i in range(n)], days),
                "timestamp": np.tile(pd.bdate_range("2020-01-01", periods=days, tz="UTC"), n),
                "open": price,
                "high": price + 1,
                "low": price - 1,
                "close": price,
                "volume": rng.uniform(1, 1e6, n * days),
            }
        )
    )
    writer.upsert_prices(bars_of("T000", "2024-01-02", 5))
    writer.upsert_prices(bars_of("T001", "2024-01-02", 5))
    t = writer._table("prices")
    files = sorted(t.refresh().files.values(), key=lambda f: f.bytes)
    small, other_small, large = files[0], files[1], files[-1]
    assert large.bytes > 1 << 20  # read by its footer and ranges, not one GET
    for victim, source in [
        (large, small),
        (small, large),
        (other_small, small),
        (large, files[-2]),
    ]:
        saved = mem.get(t.key(victim.path))
        mem.put(t.key(victim.path), mem.get(t.key(source.path)))
        with pytest.raises(CorruptDatabaseError, match=victim.path):
            ParquetDB(store=mem).read_table(tickers=[victim.tickers[0]])
        mem.put(t.key(victim.path), saved)
    assert len(ParquetDB(store=mem).read_table(tickers=["T000"])) == days + 5


def bars_of(ticker: str, start: str, periods: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": pd.bdate_range(start, periods=periods, tz="UTC"),
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 1000.0,
        }
    )


def test_repair_drops_a_copied_file_and_lists_what_it_held(db, bars, db_path):
    old, new = two_years(db, bars)
    shutil.copyfile(db_path / "prices" / old, db_path / "prices" / new)
    fresh = ParquetDB(db_path)
    assert [p.kind for p in fresh.verify().problems] == ["foreign"]
    done = fresh.repair(dry_run=False)
    [action] = done.actions
    assert action["action"] == "drop" and action["rows_lost"] == 40
    assert {x["ticker"]: x["rows"] for x in action["lost"]} == {"AAPL": 20, "MSFT": 20}
    after = ParquetDB(db_path)
    assert after.verify().ok and len(after.read_table()) == 60
    assert set(after.lost_in_repairs()) == {"AAPL", "MSFT"}


def test_a_rewrite_that_cannot_give_back_the_logs_rows_reports_them_lost(db, bars, db_path):
    old, new = two_years(db, bars)
    for name in (old, new):
        as_old_file(db_path / "prices" / name)  # no name to tell a copy by
    shutil.copyfile(db_path / "prices" / old, db_path / "prices" / new)
    plan = ParquetDB(db_path).repair()
    [action] = plan.actions
    assert action["action"] == "rewrite" and action["rows_lost"] == 40
    assert [(x["ticker"], x["first"][:10], x["last"][:10]) for x in action["lost"]] == [
        ("AAPL", "2025-03-03", "2025-03-28"),
        ("MSFT", "2025-03-03", "2025-03-28"),
    ]
    ParquetDB(db_path).repair(dry_run=False)
    assert set(ParquetDB(db_path).lost_in_repairs()) == {"AAPL", "MSFT"}


def test_a_rewrite_of_duplicate_keys_loses_nothing(db, bars, db_path):
    db.upsert_prices(bars(["AAPL"], periods=5))
    [name] = files_by_start(db)
    t = pq.read_table(db_path / "prices" / name)
    pq.write_table(pa.concat_tables([t, t.slice(4, 1)]), db_path / "prices" / name)
    [action] = ParquetDB(db_path).repair(dry_run=False).actions
    assert action["action"] == "rewrite" and "lost" not in action
    assert ParquetDB(db_path).lost_in_repairs() == {}


def flip_bytes_in(path: Path, column: str) -> None:
    """XOR 4 bytes near the end of ``column``'s chunk of the first row group (bit rot)."""
    col = next(
        c
        for c in (pq.ParquetFile(path).metadata.row_group(0).column(i) for i in range(10))
        if c.path_in_schema == column
    )
    off = col.data_page_offset + col.total_compressed_size - 20
    b = bytearray(path.read_bytes())
    for k in range(off, off + 4):
        b[k] ^= 0x55
    path.write_bytes(bytes(b))


def test_bit_rot_inside_a_page_fails_verify_and_repair_drops_the_file(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-01-02", periods=240))
    [name] = files_by_start(db)
    flip_bytes_in(db_path / "prices" / name, "close")
    fresh = ParquetDB(db_path)
    [problem] = fresh.verify().problems
    assert problem.kind == "unreadable" and "CRC" in problem.detail
    [action] = fresh.repair(dry_run=False).actions
    assert action["action"] == "drop" and action["rows_lost"] == 480


def test_values_the_rules_refuse_fail_verify_in_a_file_without_checksums(db, bars, db_path):
    db.upsert_prices(bars(["AAPL", "MSFT"], start="2024-03-01", periods=30))
    [name] = files_by_start(db)
    path = db_path / "prices" / name
    t = pq.read_table(path)
    close = t.column("close").to_numpy().copy()
    close[40] = t.column("low")[40].as_py() / 10  # decodes fine, below the bar's low
    t = t.set_column(t.schema.get_field_index("close"), "close", pa.array(close))
    pq.write_table(t, path)  # no page checksums, like a file of an older version
    assert pc.less(pq.read_table(path).column("close"), pq.read_table(path).column("low"))[
        40
    ].as_py()
    fresh = ParquetDB(db_path)
    [problem] = fresh.verify().problems
    assert problem.kind == "values" and "close" in problem.detail
    # not dropped (a rule newer than the file would lose good rows): repair says how to
    # replace the rows, and changes nothing
    version = fresh.version
    report = fresh.repair(dry_run=False)
    assert report.actions == [] and fresh.version == version
    [said] = report.unrepairable
    assert name in said and "backfill" in said and "newest commit wins" in said
    assert not ParquetDB(db_path).verify().ok


def test_an_old_file_of_a_custom_table_whose_time_is_not_the_second_column_reads(tmp_path):
    """The identity check of a file without its name compares the statistics of the
    table's time column (the first timestamp column, in any position), never another
    column's: a custom table ``(timestamp, symbol, bid)`` written before names were
    recorded reads as ever (it was a TypeError: the symbol's statistics read as times)."""
    from tickvault.schema import TIMESTAMP_TYPE, Column, TableSchema, register_table

    register_table(
        TableSchema(
            name="quotes_t1",
            columns=(
                Column("timestamp", TIMESTAMP_TYPE),
                Column("symbol", pa.string()),
                Column("bid", pa.float64()),
            ),
            key=("symbol", "timestamp"),
        )
    )
    times = pd.date_range("2024-01-01", periods=5, tz="UTC")
    db = ParquetDB(tmp_path / "db")
    db.upsert("quotes_t1", pd.DataFrame({"timestamp": times, "symbol": "AAA", "bid": 1.0}))
    db.close()
    for f in (tmp_path / "db" / "quotes_t1").glob("*.parquet"):
        t = pq.read_table(f)
        pq.write_table(t.replace_schema_metadata(None), f)  # as an older version wrote it
    got = ParquetDB(tmp_path / "db").read_table("quotes_t1")
    assert got["timestamp"].tolist() == list(times) and got["bid"].tolist() == [1.0] * 5
