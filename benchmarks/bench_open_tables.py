"""Open tables benchmark for issue 13: DuckDB, Polars and pyarrow over a pinned version,
side by side with the same engines over the same rows in one plain Parquet file.

One process, one generated data set (``--tickers`` x ``--bars`` daily bars), three states
of the same table:

* ``compacted``  after ``db.compact()`` (the sorted level-1 files only);
* ``+30 daily``  plus ``--updates`` uncompacted daily updates, each one new bar per ticker
                 (what ``update`` writes: unchanged bars are skipped), files that do not
                 overlap;
* ``+30 lookback`` plus ``--updates`` daily updates that also rewrite the previous 5 bars
                 of every ticker (revisions: files that overlap, resolved newest-wins).

For each state: an aggregate over the whole table (monthly mean close per ticker) through
``to_duckdb`` / ``to_polars`` against DuckDB's ``read_parquet`` / Polars' ``scan_parquet``
of one plain file holding ``read_arrow()``'s rows; one ticker's history through Polars
against ``read_arrow(tickers=...)``, and through DuckDB against the same query on the plain
file; ``db.export`` against ``pq.write_table`` of the same rows (export fsyncs its files,
as the database's default options say; write_table does not). The relation/frame is built
once per state (``open`` is that cost). Each tickvault run follows its baseline run; times
are medians of ``--repeats`` runs and a ratio is the median of the pairs' ratios (the
machine may be shared). One DuckDB connection, with the Parquet metadata cache on (what
``to_duckdb`` sets up when it creates the connection), serves the plain file and tickvault.

Usage::

    python benchmarks/bench_open_tables.py                        # full size: 2000 x 2520
    python benchmarks/bench_open_tables.py --tickers 500 --bars 2520
    python benchmarks/bench_open_tables.py --tickers 50 --bars 300 --repeats 3   # smoke
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tickvault import ParquetDB

AGG_SQL = "SELECT ticker, date_trunc('month', timestamp) AS m, avg(close) FROM {} GROUP BY 1, 2"


def bars(tickers: list[str], days: pd.DatetimeIndex, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = len(tickers) * len(days)
    close = 50 + rng.random(n) * 100
    return pa.table(
        {
            "ticker": np.repeat(tickers, len(days)),
            "timestamp": pa.array(np.tile(days.as_unit("ns").asi8, len(tickers))).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.floor(rng.random(n) * 1e6),
        }
    )


def median(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def polars_agg(lf: pl.LazyFrame) -> pl.DataFrame:
    month = pl.col("timestamp").dt.truncate("1mo")
    return lf.group_by("ticker", month).agg(pl.col("close").mean()).collect()


def measure(db: ParquetDB, work: Path, state: str, repeats: int, one: str) -> dict[str, Any]:
    ref = db.read_arrow()
    plain = work / "plain.parquet"
    pq.write_table(ref, plain)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET parquet_metadata_cache = true")
    t0 = time.perf_counter()
    rel = db.to_duckdb(connection=con)
    open_duck = time.perf_counter() - t0
    rel.create_view("prices")
    t0 = time.perf_counter()
    lf = db.to_polars()
    open_polars = time.perf_counter() - t0
    r: dict[str, Any] = {
        "state": state,
        "rows": ref.num_rows,
        "files": len(db.snapshot().files),
        "open_duckdb": open_duck,
        "open_polars": open_polars,
    }
    plain_sql = AGG_SQL.format(f"read_parquet('{plain}')")
    q1 = f"SELECT * FROM prices WHERE ticker = '{one}'"
    q1_plain = f"SELECT * FROM read_parquet('{plain}') WHERE ticker = '{one}'"
    out_plain = work / "plain_out.parquet"
    out_tv = work / "export"
    durable = ParquetDB(db.path)  # default options: export fsyncs each file
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "duckdb": (
            lambda: con.sql(plain_sql).fetchall(),
            lambda: con.sql(AGG_SQL.format("prices")).fetchall(),
        ),
        "polars": (lambda: polars_agg(pl.scan_parquet(plain)), lambda: polars_agg(lf)),
        "one_duckdb": (
            lambda: con.sql(q1_plain).to_arrow_table(),
            lambda: con.sql(q1).to_arrow_table(),
        ),
        "one_polars": (
            lambda: db.read_arrow(tickers=one),
            lambda: lf.filter(pl.col("ticker") == one).collect(),
        ),
        "export": (lambda: pq.write_table(ref, out_plain), lambda: durable.export(out_tv)),
    }
    for name, (base, tv) in pairs.items():
        # alternated, and the ratio is the median of each pair's ratio, so drift in the
        # load of a shared machine hits both sides alike
        b, t = [], []
        for _ in range(repeats):
            b.append(median(base, 1))
            t.append(median(tv, 1))
        r[f"{name}_base"], r[f"{name}_tv"] = statistics.median(b), statistics.median(t)
        r[f"{name}_ratio"] = statistics.median(x / y for x, y in zip(t, b, strict=True))
    r["one_read_arrow"] = median(lambda: db.read_arrow(tickers=one), repeats)
    r["one_duckdb_vs_read_arrow"] = r["one_duckdb_tv"] / r["one_read_arrow"]
    exported = pq.read_table(out_tv)
    assert exported.num_rows == ref.num_rows
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--states", default="compacted,daily,lookback")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    tickers = [f"T{i:05d}" for i in range(args.tickers)]
    days = pd.bdate_range("2010-01-04", periods=args.bars + args.updates, tz="UTC")
    results = []
    work = Path(tempfile.mkdtemp(prefix="bench_open_tables_"))
    try:
        for state in args.states.split(","):
            shutil.rmtree(work / "db", ignore_errors=True)
            db = ParquetDB(work / "db", auto_compact=False, fsync=False)
            db.upsert_prices(bars(tickers, days[: args.bars], seed=0))
            db.compact()
            if state != "compacted":
                back = 5 if state == "lookback" else 0
                for k in range(args.updates):
                    i = args.bars + k
                    db.upsert_prices(bars(tickers, days[i - back : i + 1], seed=k + 1))
            r = measure(db, work, state, args.repeats, tickers[len(tickers) // 2])
            results.append(r)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{args.tickers} tickers x {args.bars} bars, median of {args.repeats}; seconds")
    head = "| state | rows | files | DuckDB agg: tv / plain | Polars agg: tv / plain "
    head += "| 1 ticker ms: read_arrow / Polars | 1 ticker ms: DuckDB tv / DuckDB plain "
    head += "| export / write_table | open DuckDB, Polars |"
    print(head)
    print("|---" * 9 + "|")
    for r in results:
        print(
            f"| {r['state']} | {r['rows']:,} | {r['files']} "
            f"| {r['duckdb_tv']:.3f} / {r['duckdb_base']:.3f} = {r['duckdb_ratio']:.2f}x "
            f"| {r['polars_tv']:.3f} / {r['polars_base']:.3f} = {r['polars_ratio']:.2f}x "
            f"| {r['one_polars_base'] * 1e3:.1f} / {r['one_polars_tv'] * 1e3:.1f} "
            f"= {r['one_polars_ratio']:.1f}x "
            f"| {r['one_duckdb_tv'] * 1e3:.1f} / {r['one_duckdb_base'] * 1e3:.1f} "
            f"= {r['one_duckdb_ratio']:.2f}x ({r['one_duckdb_vs_read_arrow']:.0f}x read_arrow) "
            f"| {r['export_tv']:.2f} / {r['export_base']:.2f} = {r['export_ratio']:.2f}x "
            f"| {r['open_duckdb']:.3f}, {r['open_polars']:.3f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
