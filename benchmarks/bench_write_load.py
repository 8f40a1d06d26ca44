"""Writes under load (issue 25 item 7): 400 sequential ``upsert_prices`` calls, one ticker's
~2500 daily bars each, timed per call; once on a quiet machine and then while other
processes load the machine: ``--load burn`` (default) keeps ``--load-procs`` cores busy
with pure Python loops, ``--load writer`` runs ``--load-procs`` second writer processes,
each doing the same 400-upsert loop into its own database over and over (its own
background compactor included), ``--load suite`` runs this repository's storage test
suite over and over (``pytest tests/storage -m "not slow"``: the "machine busy with
another test suite" of the issue). Reported per run: median and max call and their ratio,
the 99th percentile, how many level-0 files the table holds right after the last call
(how far compaction fell behind), and, for each of the five slowest calls, whether the
background compactor was busy and whether the call also wrote a checkpoint, to tell a call
that waited for something of tickvault's from one the scheduler delayed.

Usage::

    python benchmarks/bench_write_load.py                 # 400 tickers x 2500 bars
    python benchmarks/bench_write_load.py --tickers 100 --load-procs 2
    python benchmarks/bench_write_load.py --load-procs 2 --runs 3 --no-quiet
    python benchmarks/bench_write_load.py --load writer --runs 3 --no-quiet
    python benchmarks/bench_write_load.py --load suite --runs 3 --no-quiet
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickvault import ParquetDB
from tickvault.storage.upkeep.compactor import existing_compactor


def burn(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """A busy core: pure Python arithmetic until told to stop."""
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x = (x * 31 + i) % 1_000_003


def write_loop(stop: mp.synchronize.Event, tickers: int, bars: int) -> None:  # type: ignore[name-defined]
    """A second writer: the measured loop, into its own fresh database, until told to stop."""
    rng = np.random.default_rng(1)
    frames = [frame(t, bars, rng) for t in range(tickers)]
    with tempfile.TemporaryDirectory() as d:
        while not stop.is_set():
            root = Path(d) / "db"
            db = ParquetDB(root)
            for df in frames:
                if stop.is_set():
                    break
                db.upsert_prices(df)
            db.close()
            shutil.rmtree(root, ignore_errors=True)


SUITE = [sys.executable, "-m", "pytest", "tests/storage", "-q", "-m", "not slow"]


def suite_loop(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Another test suite: this repository's storage tests, again and again, until told to
    stop (run from the repository root)."""
    root = Path(__file__).resolve().parent.parent
    while not stop.is_set():
        p = subprocess.Popen(
            [*SUITE, "-p", "no:cacheprovider"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while p.poll() is None:
            if stop.wait(0.2):
                p.terminate()
                p.wait()


def frame(ticker: int, bars: int, rng: np.random.Generator) -> pd.DataFrame:
    days = pd.date_range("2016-01-04", periods=bars, freq="B", tz="UTC")
    close = 1000 + rng.standard_normal(bars).cumsum()
    return pd.DataFrame(
        {
            "ticker": f"T{ticker:04d}",
            "timestamp": days,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, bars).astype("float64"),
        }
    )


def run(root: Path, tickers: int, bars: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    frames = [frame(t, bars, rng) for t in range(tickers)]
    db = ParquetDB(root)
    times, busy, ckpt = [], [], []
    every = db.options.checkpoint_interval
    for df in frames:
        t0 = time.perf_counter()
        version = db.upsert_prices(df).version
        times.append(time.perf_counter() - t0)
        worker = existing_compactor(db._table("prices"))
        busy.append(worker is not None and worker.busy)
        ckpt.append(version % every == 0)  # this call also wrote a checkpoint
    table = db._table("prices")
    level0 = sum(1 for f in table.refresh().files.values() if f.level == 0)
    worker = existing_compactor(table)
    paused = getattr(worker, "paused", None)  # seconds compaction paused for the writes
    db.close()
    med = statistics.median(times)
    worst = sorted(range(len(times)), key=times.__getitem__)[-5:]
    return {
        "median_ms": med * 1e3,
        "max_ms": max(times) * 1e3,
        "ratio": max(times) / med,
        "p99_ms": sorted(times)[int(0.99 * len(times))] * 1e3,
        "level0": level0,
        "paused_s": paused,
        "total_s": sum(times),
        "slowest": [(i, round(times[i] * 1e3, 1), busy[i], ckpt[i]) for i in reversed(worst)],
        "ckpt_median_ms": statistics.median(
            [t for t, c in zip(times, ckpt, strict=True) if c] or [0]
        )
        * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickers", type=int, default=400)
    ap.add_argument("--bars", type=int, default=2500)
    ap.add_argument("--load-procs", type=int, default=1, help="loading processes per load run")
    ap.add_argument(
        "--load",
        choices=("burn", "writer", "suite"),
        default="burn",
        help="burn: busy pure-Python loops; writer: second writer processes (own databases); "
        "suite: this repository's storage tests in a loop",
    )
    ap.add_argument("--runs", type=int, default=1, help="load runs (each a fresh database)")
    ap.add_argument("--no-quiet", action="store_true", help="skip the quiet run")
    args = ap.parse_args()
    plan = [] if args.no_quiet else [("quiet", 0)]
    plan += [(f"{args.load} x{args.load_procs}", args.load_procs)] * args.runs
    for label, procs in plan:
        stop = mp.Event()
        if args.load == "burn":
            loaders = [mp.Process(target=burn, args=(stop,), daemon=True) for _ in range(procs)]
        elif args.load == "suite":
            loaders = [mp.Process(target=suite_loop, args=(stop,)) for _ in range(procs)]
        else:
            loaders = [
                mp.Process(target=write_loop, args=(stop, args.tickers, args.bars), daemon=True)
                for _ in range(procs)
            ]
        for p in loaders:
            p.start()
        if args.load in ("writer", "suite") and procs:
            time.sleep(3.0)  # let the loads get going (the writers' compactors busy)
        try:
            with tempfile.TemporaryDirectory() as d:
                r = run(Path(d) / "db", args.tickers, args.bars)
        finally:
            stop.set()
            for p in loaders:
                p.join()
        print(
            f"{label:10s} median {r['median_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
            f"max {r['max_ms']:.1f} ms  max/median {r['ratio']:.1f}x  total {r['total_s']:.1f} s  "
            f"level-0 files after the loop {r['level0']}  "
            + (f"compaction paused {r['paused_s']:.1f} s  " if r["paused_s"] is not None else "")
            + f"checkpoint calls' median {r['ckpt_median_ms']:.1f} ms  "
            f"slowest (call, ms, compactor busy, checkpoint): {r['slowest']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
