"""Importing the original pattern's Parquet files (decision 026): ``tickvault import`` next
to the shortest thing a user could write instead, in one process.

Two legacy layouts of ``--tickers`` x ``--bars`` daily bars are written first: one file per
ticker (``prices/AAPL.parquet``, the pattern's) and one file per year with a ticker column.
For each, medians of ``--repeats`` runs, each into a fresh database:

* ``import_parquet(db, folder, apply=True)``: every file read, mapped and validated with the
  file and row of a bad value, upserted in batches of a million bars;
* the reference: ``pd.read_parquet(folder)`` of the whole folder, then one
  ``db.upsert_prices(df)`` — no per-file messages, the whole table in memory at once
  (and a file per ticker without a ticker column loses its ticker: the reference reads
  the per-year layout only).

Usage::

    python benchmarks/bench_import.py                          # 1,000 x 2,520, 3 repeats
    python benchmarks/bench_import.py --tickers 200 --bars 500 --repeats 1   # quick
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bench_daily_appends import frame
from tickvault import ParquetDB, import_parquet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tickers", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tickers = [f"T{i:05d}" for i in range(args.tickers)]
    days = pd.bdate_range("2010-01-04", periods=args.bars, tz="UTC")
    df = frame(tickers, days, np.random.default_rng(7))
    work = Path(tempfile.mkdtemp(prefix="tv-import-"))
    try:
        per_ticker = work / "per_ticker" / "prices"
        per_ticker.mkdir(parents=True)
        for t, part in df.groupby("ticker", sort=False):
            part.drop(columns="ticker").to_parquet(per_ticker / f"{t}.parquet", index=False)
        per_year = work / "per_year" / "prices"
        per_year.mkdir(parents=True)
        for y, part in df.groupby(df.timestamp.dt.year):
            part.to_parquet(per_year / f"{y}.parquet", index=False)
        rows = len(df)
        print(f"{args.tickers} x {args.bars} bars = {rows:,} rows; median of {args.repeats}")
        results: dict[str, list[float]] = {}

        def run(label: str, fn) -> None:  # type: ignore[no-untyped-def]
            for i in range(args.repeats):
                target = work / f"db-{label.replace(' ', '_')}-{i}"
                t0 = time.perf_counter()
                fn(ParquetDB(target))
                results.setdefault(label, []).append(time.perf_counter() - t0)
                assert len(ParquetDB(target).read_table("prices", columns=["close"])) == rows
                shutil.rmtree(target)

        run("import, file per ticker", lambda db: import_parquet(db, per_ticker, apply=True))
        run("import, file per year", lambda db: import_parquet(db, per_year, apply=True))
        run(
            "read_parquet + upsert_prices, per year",
            lambda db: db.upsert_prices(pd.read_parquet(per_year)),
        )
        ref = statistics.median(results["read_parquet + upsert_prices, per year"])
        print(f"{'operation':<42} {'median s':>9} {'rows/s':>12} {'vs reference':>13}")
        for label, ts in results.items():
            m = statistics.median(ts)
            print(f"{label:<42} {m:>9.2f} {rows / m:>12,.0f} {m / ref:>12.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
