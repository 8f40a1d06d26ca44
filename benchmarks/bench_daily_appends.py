"""Daily appends with background compaction (issue 22 item 1, decision 023): what
compaction writes for the rows appended, and what the appends and the reads after them
cost — for one or more versions of tickvault side by side in one process.

``--tickers`` x ``--bars`` daily bars are bulk loaded from a pandas DataFrame (what users
pass) into a fresh database per version; then ``--appends`` days are appended, one
``upsert_prices`` of one bar per ticker each (pandas), with the default options
(background compaction on), the versions taking turns day by day; then
``wait_for_compaction``. Reported per version: bytes compaction wrote over bytes the
appends added (from the log entries: ``operation`` ``compact`` vs ``upsert``; the goal is
≤ 1.2x over 20 appended sessions), how many compactions ran, the median / 90th percentile
/ worst append, the wait for compaction to settle, the level-1 files of the open year,
then the median of one ticker's whole history and of the last month of every ticker
(pandas, warm handle, 9 reads each).

Usage::

    python benchmarks/bench_daily_appends.py                                  # this src only
    git worktree add --detach /tmp/tv-before <commit>
    python benchmarks/bench_daily_appends.py --version before=/tmp/tv-before/src --version now=src
    python benchmarks/bench_daily_appends.py --tickers 200 --bars 500 --appends 10   # quick
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
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ab import load_version


def frame(tickers: list[str], days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    n = len(days)
    close = np.round(100 + rng.standard_normal(len(tickers) * n).cumsum() * 0.01, 2)
    return pd.DataFrame(
        {
            "ticker": np.repeat(tickers, n),
            "timestamp": np.tile(days, len(tickers)),
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, len(tickers) * n).astype("int64"),
        }
    )


def written(table_dir: Path, v0: int, v1: int) -> dict[str, int]:
    """Bytes (and entries) the log entries ``v0+1 .. v1`` add, by operation."""
    out: dict[str, int] = {}
    for v in range(v0 + 1, v1 + 1):
        entry = json.loads((table_dir / "_log" / f"{v:020d}.json").read_text())
        op = str(entry.get("operation"))
        out[op] = out.get(op, 0) + sum(int(f["bytes"]) for f in entry.get("add", []))
        out[op + "_entries"] = out.get(op + "_entries", 0) + 1
    return out


def median_ms(fn: Any, n: int = 9) -> float:
    xs = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--appends", type=int, default=20)
    ap.add_argument("--version", action="append", metavar="NAME=SRC", default=None)
    args = ap.parse_args()
    specs = args.version or ["now=" + str(Path(__file__).resolve().parent.parent / "src")]
    tmp = Path(tempfile.mkdtemp(prefix="tv-daily-appends-"))
    try:
        versions: dict[str, ModuleType] = {}
        for spec in specs:
            name, _, src = spec.partition("=")
            versions[name] = load_version(name, Path(src).resolve(), tmp / "pkgs")
        rng = np.random.default_rng(7)
        tickers = [f"T{i:04d}" for i in range(args.tickers)]
        days = pd.bdate_range("2015-01-02", periods=args.bars + args.appends, tz="UTC")
        bulk = frame(tickers, days[: args.bars], rng)
        n = args.bars
        adds = [frame(tickers, days[n + i : n + i + 1], rng) for i in range(args.appends)]
        print(
            f"{args.tickers} tickers x {args.bars} days bulk, then {args.appends} appended days; "
            f"appended {days[args.bars].date()} .. {days[-1].date()}",
            flush=True,
        )
        dbs, v0, times = {}, {}, {}
        for name, mod in versions.items():
            db = mod.ParquetDB(tmp / name)
            db.upsert_prices(bulk)
            db.wait_for_compaction()
            dbs[name], v0[name], times[name] = db, db.table_version("prices"), []
        for df in adds:  # the versions take turns, day by day
            for name, db in dbs.items():
                t0 = time.perf_counter()
                db.upsert_prices(df)
                times[name].append(time.perf_counter() - t0)
        rows = []
        for name, db in dbs.items():
            t0 = time.perf_counter()
            db.wait_for_compaction()
            settle = time.perf_counter() - t0
            w = written(tmp / name / "prices", v0[name], db.table_version("prices"))
            year = pd.Timestamp(days[-1].year, 1, 1, tz="UTC").value
            state = db._table("prices").refresh()
            open_year = [
                f for f in state.files.values() if f.level != 0 and f.period and f.period[0] == year
            ]
            end = days[-1]
            begin = end - pd.Timedelta(days=30)

            def one_ticker(i: int, db: Any = db) -> Any:
                return db.read_table(tickers=tickers[(i * 37) % len(tickers)])

            def last_month(i: int, db: Any = db, a: Any = begin, b: Any = end) -> Any:
                return db.read_table(start=a, end=b)

            one = median_ms(one_ticker)
            month = median_ms(last_month)
            ts = times[name]
            rows.append(
                (
                    name,
                    w.get("compact", 0) / max(1, w.get("upsert", 0)),
                    w.get("compact_entries", 0),
                    statistics.median(ts) * 1e3,
                    float(np.percentile(ts, 90)) * 1e3,
                    max(ts) * 1e3,
                    settle,
                    len(open_year),
                    one,
                    month,
                )
            )
            db.close()
        print(
            "| version | compaction bytes / appended bytes | compactions | append median / p90 / "
            "worst (ms) | settle (s) | open year's level-1 files | one ticker (ms) | "
            "last month (ms) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r[0]} | {r[1]:.2f}x | {r[2]} | {r[3]:.1f} / {r[4]:.1f} / {r[5]:.1f} | "
                f"{r[6]:.2f} | {r[7]} | {r[8]:.1f} | {r[9]:.1f} |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
