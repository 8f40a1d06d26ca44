"""Writes that never wait for compaction: what a caller pays per upsert, with and without
automatic compaction, side by side in one process.

1. The seed's pattern: ``--tickers`` sequential ``upsert_prices`` calls of one ticker's
   ``--years`` of daily bars each, from a pandas DataFrame (what users pass), into a fresh
   database: ``auto_compact=True`` (the default: compaction in the background) next to
   ``auto_compact=False``, alternating, ``--rounds`` each. Reported per round: total time,
   median and worst call; then the read of one ticker right after the last upsert next to
   the same read after ``db.compact()``.
2. Minute bars: ``--minute-tickers`` x 390 bars a day; ``--minute-days`` days stored, then
   ``--appends`` appends of one more day each (one ``upsert_prices`` of all tickers), with
   the default options. Reported: median and worst append.

Usage::

    python benchmarks/bench_compaction.py                  # 400 tickers, 1000 x 390 minute bars
    python benchmarks/bench_compaction.py --tickers 50 --minute-tickers 100 --minute-days 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault import ParquetDB
from tickvault.sources import DemoSource


def daily_frames(n: int, years: int) -> list[pd.DataFrame]:
    src = DemoSource()
    end = pd.Timestamp("2025-12-31")
    start = end - pd.DateOffset(years=years)
    return [src.fetch(f"T{i:04d}", start, end) for i in range(n)]


def sequential(frames: list[pd.DataFrame], folder: Path, auto: bool) -> dict[str, Any]:
    if folder.exists():
        shutil.rmtree(folder)
    db = ParquetDB(folder, auto_compact=auto)
    calls = []
    t0 = time.perf_counter()
    for df in frames:
        c0 = time.perf_counter()
        db.upsert_prices(df)
        calls.append(time.perf_counter() - c0)
    total = time.perf_counter() - t0
    probe = frames[len(frames) // 2]["ticker"].iloc[0]
    read_now = _median_read(db, probe)
    db.compact()
    read_compacted = _median_read(db, probe)
    db.close()
    return {
        "total": total,
        "median_call": statistics.median(calls),
        "worst_call": max(calls),
        "read_after": read_now,
        "read_compacted": read_compacted,
    }


def _median_read(db: ParquetDB, ticker: str, n: int = 21) -> float:
    db.read_table(tickers=ticker)  # warm the handle's caches as a real reader would
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        db.read_table(tickers=ticker)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def minute_day(tickers: list[str], day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    minutes = pd.date_range(day + pd.Timedelta(hours=14, minutes=30), periods=390, freq="min")
    n = len(tickers) * len(minutes)
    close = 100 + rng.standard_normal(n).cumsum() * 0.01
    close = np.abs(close) + 1
    return pd.DataFrame(
        {
            "ticker": np.repeat(tickers, len(minutes)),
            "timestamp": np.tile(minutes.values, len(tickers)),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.integers(100, 10_000, n).astype("int64"),
        }
    )


def minute_appends(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    tickers = [f"M{i:04d}" for i in range(args.minute_tickers)]
    days = pd.bdate_range("2025-01-02", periods=args.minute_days + args.appends)
    db = ParquetDB(folder)
    for d in days[: args.minute_days]:
        db.upsert_prices(minute_day(tickers, d, rng))
    db.compact()
    stored = db.info()["tables"]["prices"]["stored_rows"]
    calls = []
    for d in days[args.minute_days :]:
        df = minute_day(tickers, d, rng)
        t0 = time.perf_counter()
        db.upsert_prices(df)
        calls.append(time.perf_counter() - t0)
    db.close()
    return {
        "stored_rows": stored,
        "append_rows": len(tickers) * 390,
        "median_append": statistics.median(calls),
        "worst_append": max(calls),
        "appends": calls,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=400)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minute-tickers", type=int, default=1000)
    ap.add_argument("--minute-days", type=int, default=63, help="a quarter")
    ap.add_argument("--appends", type=int, default=10)
    ap.add_argument("--skip-minute", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tv-bench-compaction-"))
    out: dict[str, Any] = {"args": vars(args) | {"json": None}}
    try:
        frames = daily_frames(args.tickers, args.years)
        rows = {"auto": [], "off": []}
        for r in range(args.rounds):  # alternate, so drift in machine load hits both alike
            for mode in ("auto", "off") if r % 2 == 0 else ("off", "auto"):
                res = sequential(frames, tmp / f"seq-{mode}", mode == "auto")
                rows[mode].append(res)
                print(
                    f"round {r} {mode:4}: total {res['total']:.2f} s, median call "
                    f"{res['median_call'] * 1e3:.1f} ms, worst {res['worst_call'] * 1e3:.1f} ms, "
                    f"read 1 after {res['read_after'] * 1e3:.2f} ms / compacted "
                    f"{res['read_compacted'] * 1e3:.2f} ms",
                    flush=True,
                )
        med = {m: {k: statistics.median(x[k] for x in rows[m]) for k in rows[m][0]} for m in rows}
        out["sequential"] = med
        a, o = med["auto"], med["off"]
        print(
            f"\n{args.tickers} sequential upserts (median of {args.rounds}): defaults "
            f"{a['total']:.2f} s vs auto_compact=False {o['total']:.2f} s = "
            f"{a['total'] / o['total']:.2f}x (goal <= 1.3x)\n"
            f"worst call / median call with defaults: {a['worst_call'] / a['median_call']:.1f}x "
            f"(goal <= 10x)\n"
            f"read 1 ticker right after / after compact(): "
            f"{a['read_after'] / a['read_compacted']:.2f}x (goal <= 1.5x)"
        )
        if not args.skip_minute:
            m = minute_appends(args, tmp / "minute")
            out["minute"] = m
            print(
                f"\nminute bars: {m['stored_rows']:,} rows stored, appends of "
                f"{m['append_rows']:,} rows: median {m['median_append']:.3f} s, worst "
                f"{m['worst_append']:.3f} s = {m['worst_append'] / m['median_append']:.1f}x "
                f"(goal <= 3x)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
