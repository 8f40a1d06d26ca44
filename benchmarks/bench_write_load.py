"""Writes under load (issue 25 item 7): 400 sequential ``upsert_prices`` calls, one ticker's
~2500 daily bars each, timed per call; once on a quiet machine and once while a second
process keeps a core busy. Reported: median and max call and their ratio, and, for each of
the five slowest calls, whether the background compactor was busy and whether the call also
wrote a checkpoint, to tell
a call that waited for something of tickvault's from one the scheduler delayed.

Usage::

    python benchmarks/bench_write_load.py                 # 400 tickers x 2500 bars
    python benchmarks/bench_write_load.py --tickers 100 --load-procs 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

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


def run(root: Path, tickers: int, bars: int) -> dict[str, float]:
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
    db.close()
    med = statistics.median(times)
    worst = sorted(range(len(times)), key=times.__getitem__)[-5:]
    return {
        "median_ms": med * 1e3,
        "max_ms": max(times) * 1e3,
        "ratio": max(times) / med,
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
    ap.add_argument("--load-procs", type=int, default=1, help="busy processes for the load run")
    args = ap.parse_args()
    for label, procs in (("quiet", 0), (f"load x{args.load_procs}", args.load_procs)):
        stop = mp.Event()
        burners = [mp.Process(target=burn, args=(stop,), daemon=True) for _ in range(procs)]
        for p in burners:
            p.start()
        try:
            with tempfile.TemporaryDirectory() as d:
                r = run(Path(d) / "db", args.tickers, args.bars)
        finally:
            stop.set()
            for p in burners:
                p.join()
        print(
            f"{label:10s} median {r['median_ms']:.1f} ms  max {r['max_ms']:.1f} ms  "
            f"max/median {r['ratio']:.1f}x  total {r['total_s']:.1f} s  "
            f"checkpoint calls' median {r['ckpt_median_ms']:.1f} ms  "
            f"slowest (call, ms, compactor busy, checkpoint): {r['slowest']}"
        )


if __name__ == "__main__":
    main()
