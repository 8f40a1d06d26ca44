"""Minute bars at scale (issue 22): 5,000 tickers × 126 sessions × 390 minutes (245.7 M rows,
1/20 of ten years), ingested the way a daily job does it, then read.

Steps, each on the default ``ParquetDB`` (background compaction on):

* **ingest**: one ``upsert_prices(df, interval="1m")`` per session, ``df`` a pandas frame of
  that session's bars for every ticker (``datetime64[ns, UTC]`` timestamps, prices in cents,
  volumes in round lots), built before its call's clock starts; reported: rows per second
  over the whole ingest (wall time of the calls; frames are built outside the clock) and
  the median call;
* **disk**: bytes of live data files after compaction, per row; bytes of the log;
* **reads on a fresh handle**, each in a child process of its own so that its peak memory
  (``ru_maxrss``, next to the child's resident memory before the read) is the read's: one session
  for all tickers, one ticker over one session, one ticker's whole history, and the whole
  table streamed through ``iter_arrow`` in batches (counting rows, never holding the table);
* **a daily append** of one more session (1.95 M rows) and the background compaction after it.

Finally a projection to 4.9 B rows (5,000 × 2,520 sessions), linear where the cost is
linear in history (ingest, disk, whole-history reads, log) and constant where it is not
(one session's cross-section, a daily append).

Usage::

    python benchmarks/bench_scale.py                              # 5000 x 126 (~245 M rows)
    python benchmarks/bench_scale.py --tickers 50 --sessions 3    # smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault import ParquetDB

FULL_SESSIONS = 2520


def sessions(n: int) -> pd.DatetimeIndex:
    """``n`` weekdays from 2024-01-02 (session opens at 14:30 UTC; holidays ignored)."""
    return pd.bdate_range("2024-01-02", periods=n, tz="UTC")


def session_frame(tickers: int, day: pd.Timestamp, seed: int) -> pd.DataFrame:
    """One session of one-minute bars for ``tickers`` tickers, sorted by ticker and time."""
    rng = np.random.default_rng(seed)
    start = (day + pd.Timedelta(hours=14, minutes=30)).as_unit("ns").value
    stamps = start + np.arange(390, dtype=np.int64) * 60_000_000_000
    n = tickers * 390
    level = np.repeat(np.exp(rng.uniform(np.log(5), np.log(800), tickers)), 390)
    walk = np.exp(np.cumsum(rng.standard_normal(n) * 4e-4).reshape(tickers, 390), dtype=float)
    close = np.round(level * walk.ravel(), 2)
    opn = np.round(close * (1 + 3e-4 * rng.standard_normal(n)), 2)
    high = np.maximum(opn, close) + 0.01
    low = np.maximum(np.minimum(opn, close) - 0.01, 0.01)
    return pd.DataFrame(
        {
            "ticker": np.repeat(np.array([f"T{i:04d}" for i in range(tickers)]), 390),
            "timestamp": pd.to_datetime(np.tile(stamps, tickers), utc=True),
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": (rng.integers(1, 200, n) * 100).astype("float64"),
        }
    )


def live_bytes(db: ParquetDB) -> tuple[int, int]:
    files = db.snapshot("prices_1m")._state.files.values()
    return sum(f.bytes for f in files), len(files)


def folder_bytes(root: Path, part: str) -> int:
    return sum(p.stat().st_size for p in (root / "prices_1m").rglob("*") if part in p.name)


def _child(root: str, op: str, args: dict[str, Any], out: Any) -> None:
    """One read in a fresh process: seconds, rows and the peak memory it added."""
    db = ParquetDB(root)
    base = rss_mb()
    t0 = time.perf_counter()
    if op == "iter":
        rows = sum(t.num_rows for t in db.iter_arrow("prices_1m", batch_rows=1_000_000))
    else:
        rows = db.read_arrow("prices_1m", **args).num_rows
    seconds = time.perf_counter() - t0
    again = []
    if op != "iter":  # warm repeats on the same handle
        for _ in range(3):
            t1 = time.perf_counter()
            db.read_arrow("prices_1m", **args)
            again.append(time.perf_counter() - t1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put(
        {
            "first": seconds,
            "warm": statistics.median(again) if again else None,
            "rows": rows,
            "rss_before_mb": base,
            "peak_rss_mb": peak,
        }
    )


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_child(root: Path, op: str, **args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(str(root), op, args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=126)
    ap.add_argument("--root", help="where to build the database (default: a temporary folder)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    days = sessions(args.sessions + 1)
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        root = Path(tmp) / "db"
        db = ParquetDB(root)
        calls = []
        t_all = time.perf_counter()
        for i, day in enumerate(days[:-1]):
            df = session_frame(args.tickers, day, seed=i)
            t0 = time.perf_counter()
            db.upsert_prices(df, interval="1m")
            calls.append(time.perf_counter() - t0)
            if (i + 1) % 10 == 0:
                print(f"  ingested {i + 1}/{args.sessions} sessions", flush=True)
        wall_all = time.perf_counter() - t_all
        t0 = time.perf_counter()
        db.wait_for_compaction("prices_1m")
        settle = time.perf_counter() - t0
        rows = args.tickers * 390 * args.sessions
        data, nfiles = live_bytes(db)
        log = folder_bytes(root, ".json") + folder_bytes(root, "checkpoint")
        res: dict[str, Any] = {
            "tickers": args.tickers,
            "sessions": args.sessions,
            "rows": rows,
            "ingest_rows_per_s": rows / sum(calls),
            "ingest_median_call_s": statistics.median(calls),
            "ingest_wall_s": wall_all,
            "compaction_settle_s": settle,
            "live_bytes": data,
            "live_files": nfiles,
            "bytes_per_row": data / rows,
            "log_bytes": log,
        }
        mid = days[args.sessions // 2]
        s, e = mid, mid + pd.Timedelta(hours=23)
        res["one session, all tickers"] = in_child(root, "read", start=s, end=e)
        res["one ticker, one session"] = in_child(root, "read", tickers="T0042", start=s, end=e)
        res["one ticker, whole history"] = in_child(root, "read", tickers="T0042")
        res["whole table, iter_arrow"] = in_child(root, "iter")
        df = session_frame(args.tickers, days[-1], seed=10_000)
        t0 = time.perf_counter()
        db.upsert_prices(df, interval="1m")
        res["daily append s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        db.wait_for_compaction("prices_1m")
        res["daily append compaction s"] = time.perf_counter() - t0
        db.close()
    scale = FULL_SESSIONS / args.sessions
    res["projection"] = {
        "rows": rows * scale,
        "ingest_hours": rows * scale / res["ingest_rows_per_s"] / 3600,
        "disk_gb": data * scale / 1e9,
        "log_mb": log * scale / 1e6,
        "one ticker, whole history warm s (linear in files)": res["one ticker, whole history"][
            "warm"
        ]
        * scale,
        "whole table stream hours": res["whole table, iter_arrow"]["first"] * scale / 3600,
    }
    print(json.dumps(res, indent=2, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=float))
    print(f"cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
