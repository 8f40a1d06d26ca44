"""How long does opening a database with many versions take? (issue 2: "milliseconds")

Builds a table with ``--versions`` commits (small daily-style upserts of ``--tickers``
tickers, auto compaction on, as in real use), then measures, median of ``--repeats``:

* open: ``ParquetDB(path).version`` in a fresh instance (checkpoint + the entries after it);
* open + watermarks: the same plus ``watermarks()`` (what freshness needs);
* refresh: a long-lived instance picking up one new commit (reads only the new entry).

Usage::

    python benchmarks/bench_log_open.py                      # 10,000 versions
    python benchmarks/bench_log_open.py --versions 500       # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tickvault import ParquetDB


def bars(tickers: list[str], day: pd.Timestamp) -> pd.DataFrame:
    n = len(tickers)
    c = np.full(n, 100.0)
    return pd.DataFrame(
        {
            "ticker": tickers,
            "timestamp": day,
            "open": c,
            "high": c + 1,
            "low": c - 1,
            "close": c,
            "volume": np.ones(n),
        }
    )


def median_ms(fn, repeats: int) -> float:
    xs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--tickers", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    tickers = [f"T{i:04d}" for i in range(args.tickers)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db"
        db = ParquetDB(path, fsync=False)
        t0 = time.perf_counter()
        day = pd.Timestamp("1990-01-01", tz="UTC")
        while db.version < args.versions:
            db.upsert_prices(bars(tickers, day))
            day += pd.Timedelta(days=1)
        build = time.perf_counter() - t0
        version = db.version
        entries = len(list((path / "prices" / "_log").glob("*.json")))
        files = len(db.snapshot().files)
        open_ms = median_ms(lambda: ParquetDB(path).version, args.repeats)
        wm_ms = median_ms(lambda: ParquetDB(path).watermarks(), args.repeats)
        reader = ParquetDB(path)
        _ = reader.version
        writer = ParquetDB(path, fsync=False)

        def one_new_commit() -> None:
            nonlocal day
            writer.upsert_prices(bars(tickers[:1], day))
            day += pd.Timedelta(days=1)

        refresh = []
        for _ in range(args.repeats):
            one_new_commit()
            t1 = time.perf_counter()
            _ = reader.version
            refresh.append(time.perf_counter() - t1)
        print(
            f"built {version} versions ({entries} log files, {files} live data files) "
            f"in {build:.1f} s, {args.tickers} tickers per commit"
        )
        print("| measurement | median ms |")
        print("|---|---|")
        print(f"| open: fresh ParquetDB(path).version | {open_ms:.2f} |")
        print(f"| open + watermarks() | {wm_ms:.2f} |")
        print(
            f"| long-lived instance: see one new commit | {statistics.median(refresh) * 1000:.2f} |"
        )


if __name__ == "__main__":
    main()
