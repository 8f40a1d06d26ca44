"""Adjusted reads (issue 14): ``read_arrow(adjust=...)`` next to the unadjusted read.

One process, one generated database (``--tickers`` x ``--bars`` daily bars, compacted), with
corporate actions for every ticker: a split on a quarter of them and quarterly dividends on
all (about 40 actions per ticker for ten years). Side by side, on one warm handle:

* ``1 ticker``  the whole history of one ticker (median over ``--read-tickers`` random ones);
* ``month``     all tickers over the last 21 bars (a cross-section);
* ``mid month`` all tickers over 21 bars in the middle of the history (dividends after the
                range need the closes of later bars: one extra read of two columns).

for ``adjust=None``, ``"splits"`` and ``"all"`` taking turns read by read (a busy machine slows
all three alike); medians of ``--repeats`` runs (of every pick for ``1 ticker``) and the ratio
to the unadjusted read, twice:

* ``warm``  on one handle that has made every read before (what a dashboard or a research
            loop sees: the actions index and the dividend products are cached);
* ``cold``  the first read of a fresh ``ParquetDB`` handle (opens footers, builds the
            actions index, reads the closes dividends after a range need); the operating
            system's file cache is warm in both.

Usage::

    python benchmarks/bench_adjust.py                        # full size: 2000 x 2520
    python benchmarks/bench_adjust.py --tickers 50 --bars 300  # smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault import ParquetDB


def make_data(tickers: int, bars: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(14)
    days = pd.bdate_range("2015-01-02", periods=bars, tz="UTC")
    names = [f"T{i:04d}" for i in range(tickers)]
    n = tickers * bars
    close = 20 + 200 * rng.random(n)
    prices = pa.table(
        {
            "ticker": np.repeat(names, bars),
            "timestamp": np.tile(days.as_unit("ns").asi8, tickers).astype("datetime64[ns]"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1000, 100000, n).astype(float),
        }
    )
    prices = prices.set_column(
        1, "timestamp", prices.column("timestamp").cast(pa.timestamp("ns", "UTC"))
    )
    rows: list[tuple[str, pd.Timestamp, str, float]] = []
    for i, t in enumerate(names):
        for k in range(40, bars, 63):  # quarterly dividends
            rows.append((t, days[k], "dividend", 0.25))
        if i % 4 == 0:
            rows.append((t, days[bars // 2], "split", 4.0))
    actions = pd.DataFrame(rows, columns=["ticker", "timestamp", "kind", "value"])
    return prices, pa.Table.from_pandas(actions, preserve_index=False)


WARM = ["1 ticker", "month", "mid month"]


def first_read(path: Path, adjust: str | None, kw: dict[str, Any]) -> float:
    """Seconds of the first read of a fresh handle on ``path``."""
    db = ParquetDB(path, create=False)
    try:
        t0 = time.perf_counter()
        db.read_arrow("prices", adjust=adjust, **kw)
        return time.perf_counter() - t0
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--read-tickers", type=int, default=50)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    prices, actions = make_data(args.tickers, args.bars)
    with tempfile.TemporaryDirectory() as tmp:
        db = ParquetDB(Path(tmp) / "db")
        db.upsert("prices", prices)
        db.upsert("actions", actions)
        db.compact("prices")
        days = pd.DatetimeIndex(sorted(set(prices.column("timestamp").to_pylist())))
        last = (days[-21], days[-1])
        mid = (days[len(days) // 3], days[len(days) // 3 + 20])
        picks = random.Random(14).sample(
            sorted(set(prices.column("ticker").to_pylist())), min(args.read_tickers, args.tickers)
        )
        for adjust in (None, "splits", "all"):  # warm every file and footer first
            for t in picks:
                db.read_arrow("prices", tickers=t, adjust=adjust)
            db.read_arrow("prices", start=last[0], end=last[1], adjust=adjust)
            db.read_arrow("prices", start=mid[0], end=mid[1], adjust=adjust)
        modes = (None, "splits", "all")
        reads: dict[str, list[dict[str, Any]]] = {
            "1 ticker": [{"tickers": t} for t in picks],
            "month": [{"start": last[0], "end": last[1]}] * args.repeats,
            "mid month": [{"start": mid[0], "end": mid[1]}] * args.repeats,
        }
        # the modes take turns read by read, so that a busy machine slows all alike
        samples: dict[tuple[str, str], list[float]] = {}
        for name, kws in reads.items():
            for kw in kws:
                for adjust in modes:
                    t0 = time.perf_counter()
                    db.read_arrow("prices", adjust=adjust, **kw)
                    samples.setdefault((str(adjust), name), []).append(time.perf_counter() - t0)
        db.close()
        for name, kws in reads.items():
            for _ in range(args.repeats):
                for adjust in modes:
                    cold = first_read(Path(tmp) / "db", adjust, kws[0])
                    samples.setdefault((str(adjust), f"{name} cold"), []).append(cold)
    results: dict[str, dict[str, float]] = {}
    for (adjust_name, name), times in samples.items():
        results.setdefault(adjust_name, {})[name] = statistics.median(times)
    base = results["None"]
    print(f"{args.tickers} tickers x {args.bars} bars, {actions.num_rows} actions")
    for label, keys in (("warm", WARM), ("cold", [f"{k} cold" for k in WARM])):
        print(f"{label:<8} " + " ".join(f"{k.removesuffix(' cold'):>16}" for k in WARM))
        for name, r in results.items():
            cells = [f"{r[k] * 1e3:8.1f} ms {r[k] / base[k]:4.2f}x" for k in keys]
            print(f"{name:<8} " + " ".join(f"{c:>16}" for c in cells))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
