"""A burst of small writes with background compaction: ``--rounds`` rounds of "+1 bar" and
"replace the last 5" for every ticker (pandas frames, what users pass), a one-ticker read
after each pair, timed per call; medians and 90th percentiles as one JSON line.

Run each version in its own process (the compactor's manners are per process), taking
turns, e.g.::

    git worktree add --detach /tmp/tv-before <commit>
    for i in 1 2 3; do
      PYTHONPATH=/tmp/tv-before/src python benchmarks/bench_write_burst.py
      PYTHONPATH=src python benchmarks/bench_write_burst.py
    done
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_daily_appends import frame
from tickvault import ParquetDB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tickers", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    tickers = [f"T{i:05d}" for i in range(args.tickers)]
    days = pd.bdate_range("2010-01-04", periods=args.bars + args.rounds, tz="UTC")
    work = tempfile.mkdtemp(prefix="tv-burst-")
    try:
        db = ParquetDB(Path(work) / "db")
        db.upsert_prices(frame(tickers, days[: args.bars], np.random.default_rng(1)))
        db.wait_for_compaction()
        add, rep, read1 = [], [], []
        n = args.bars
        for i in range(args.rounds):
            day = frame(tickers, days[n + i : n + i + 1], np.random.default_rng(10 + i))
            t0 = time.perf_counter()
            db.upsert_prices(day)
            add.append(time.perf_counter() - t0)
            last5 = frame(tickers, days[n + i - 4 : n + i + 1], np.random.default_rng(100 + i))
            t0 = time.perf_counter()
            db.upsert_prices(last5)
            rep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            db.read_table(tickers=tickers[(i * 7) % len(tickers)])
            read1.append(time.perf_counter() - t0)
        db.wait_for_compaction()
        db.close()

        def ms(xs: list[float], q: float | None = None) -> float:
            value = statistics.median(xs) if q is None else float(np.quantile(xs, q))
            return round(value * 1000, 2)

        print(json.dumps({
            "add1_ms": ms(add), "add1_p90_ms": ms(add, 0.9),
            "replace5_ms": ms(rep), "replace5_p90_ms": ms(rep, 0.9),
            "read1_between_ms": ms(read1),
        }))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
