"""The layout trade-off for one-minute bars (issue 22 item 4): level-1 period × row-group size.

A time filter wants files and row groups that hold little time; one ticker's history wants
few files and row groups that hold little else. This writes the same one-minute bars
(``--tickers`` × ``--sessions`` × 390, pandas input, sorted as users have them) with
``ParquetDB(period=P, min_row_group_rows=R)`` for every P in ``--periods`` and R in
``--rows``, compacts, and measures on a warm handle (medians of ``--repeats``, settings
taken round-robin so that a drift in machine load hits all alike):

* write: the bulk load's wall time;
* disk: bytes of live data files per row; the checkpoint's bytes (the log's per-ticker
  statistics, one entry per (file, ticker));
* one session, all tickers; one ticker, one session; one ticker, whole history.

Usage::

    python benchmarks/bench_layout_curve.py                       # 300 tickers x 40 sessions
    python benchmarks/bench_layout_curve.py --tickers 30 --sessions 5 --repeats 3   # smoke
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import session_frame, sessions
from tickvault import ParquetDB


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=300)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--periods", nargs="+", default=["day", "month"])
    ap.add_argument("--rows", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    days = sessions(args.sessions)
    df = pd.concat(
        [session_frame(args.tickers, d, seed=i) for i, d in enumerate(days)], ignore_index=True
    )
    df = df.sort_values(["ticker", "timestamp"], ignore_index=True)
    n = len(df)
    mid = days[args.sessions // 2]
    s, e = mid, mid + pd.Timedelta(hours=23)
    ticker = "T0007"
    settings = list(itertools.product(args.periods, args.rows))
    print(f"{args.tickers} tickers x {args.sessions} sessions = {n:,} rows", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        dbs: dict[tuple[str, int], ParquetDB] = {}
        res: dict[tuple[str, int], dict[str, Any]] = {}
        for period, rows in settings:
            root = Path(tmp) / f"{period}-{rows}"
            db = ParquetDB(root, period=period, min_row_group_rows=rows, auto_compact=False)
            w = timed(lambda db=db: db.upsert_prices(df, interval="1m"))
            db.compact("prices_1m")
            st = db.snapshot("prices_1m")._state
            ckpt = sum(len(f.tickers) for f in st.files.values())
            live = sum(f.bytes for f in st.files.values())
            dbs[(period, rows)] = db
            res[(period, rows)] = {
                "write": w,
                "files": len(st.files),
                "bytes_per_row": live / n,
                "stat_entries": ckpt,
                "session": [],
                "ticker_session": [],
                "ticker_all": [],
            }
            print(f"  wrote {period} / {rows}: {w:.2f} s", flush=True)
        for db in dbs.values():  # warm every handle once
            db.read_arrow("prices_1m", tickers=ticker)
            db.read_arrow("prices_1m", start=s, end=e)
        for _ in range(args.repeats):
            for key, db in dbs.items():
                r = res[key]
                r["session"].append(timed(lambda db=db: db.read_arrow("prices_1m", start=s, end=e)))
                r["ticker_session"].append(
                    timed(lambda db=db: db.read_arrow("prices_1m", tickers=ticker, start=s, end=e))
                )
                r["ticker_all"].append(
                    timed(lambda db=db: db.read_arrow("prices_1m", tickers=ticker))
                )
        for db in dbs.values():
            db.close()
    print()
    print(
        "| period | min_row_group_rows | files | write (s) | bytes/row | log stat entries "
        "| one session, all tickers (ms) | one ticker, one session (ms) "
        "| one ticker, all sessions (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (period, rows), r in res.items():
        med = {
            k: statistics.median(r[k]) * 1e3 for k in ("session", "ticker_session", "ticker_all")
        }
        print(
            f"| {period} | {rows:,} | {r['files']} | {r['write']:.2f} | {r['bytes_per_row']:.1f} "
            f"| {r['stat_entries']:,} | {med['session']:.1f} | {med['ticker_session']:.2f} "
            f"| {med['ticker_all']:.2f} |"
        )


if __name__ == "__main__":
    main()
