"""Disk space without a cron job: the daily-update workload with automatic reclamation next
to the same workload with ``auto_vacuum=False``, in one process.

``--tickers`` x ``--bars`` daily bars are bulk loaded, then ``--updates`` daily updates of one
bar per ticker follow (each one ``upsert_prices`` from a pandas frame, as a nightly job does),
with ``retention=0`` standing in for the passage of time and no manual ``vacuum``. Reported:
the folder's size at the end against the live files' size, and the median and worst daily
update with and without automatic reclamation.

Usage::

    python benchmarks/bench_space.py                     # 2000 x 2520, 120 updates
    python benchmarks/bench_space.py --tickers 200 --bars 500 --updates 30
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tickvault import ParquetDB


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def frame(tickers: list[str], days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    n = len(tickers) * len(days)
    close = 50 + 100 * rng.random(n)
    return pd.DataFrame(
        {
            "ticker": np.repeat(tickers, len(days)),
            "timestamp": np.tile(days.values, len(tickers)),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1000, 10**6, n),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--updates", type=int, default=120)
    args = ap.parse_args()
    tickers = [f"T{i:05d}" for i in range(args.tickers)]
    days = pd.bdate_range("2010-01-04", periods=args.bars + args.updates)
    rng = np.random.default_rng(1)
    base = frame(tickers, days[: args.bars], rng)
    updates = [
        frame(tickers, days[args.bars + i : args.bars + i + 1], rng) for i in range(args.updates)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="tv-bench-space-"))
    try:
        dbs = {
            "auto_vacuum": ParquetDB(tmp / "auto", retention=0),
            "auto_vacuum=False": ParquetDB(tmp / "off", retention=0, auto_vacuum=False),
        }
        for db in dbs.values():
            db.upsert_prices(base)
        calls: dict[str, list[float]] = {k: [] for k in dbs}
        for i, df in enumerate(updates):
            for name in dbs if i % 2 == 0 else reversed(list(dbs)):
                t0 = time.perf_counter()
                dbs[name].upsert_prices(df)
                calls[name].append(time.perf_counter() - t0)
        print(f"{args.tickers} x {args.bars} bars, then {args.updates} daily updates, retention=0")
        for name, db in dbs.items():
            db.wait_for_compaction()
            live = db.info()["tables"]["prices"]["bytes"]
            total = folder_bytes(db.path / "prices")
            c = calls[name]
            print(
                f"{name:18} folder {total / 1e6:8.1f} MB, live files {live / 1e6:8.1f} MB = "
                f"{total / live:.2f}x; daily update median {statistics.median(c) * 1e3:.1f} ms, "
                f"worst {max(c) * 1e3:.1f} ms"
            )
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
