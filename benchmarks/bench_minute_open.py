"""Opening and reading a minute-bar table on a fresh handle (decision 021), for A/B runs of
two checkouts in alternating processes.

``build`` writes 2,000 tickers × 60 sessions of one-minute bars (a session per call, as a
daily job does); ``read`` opens a new handle and reports the first read (log included) and
its peak memory, then medians of 7 of one ticker's history, one session of all tickers and
``watermarks`` on a new handle. Usage (the same database per checkout)::

    PYTHONPATH=/tmp/old/src python benchmarks/bench_minute_open.py /tmp/db-old build
    python benchmarks/bench_minute_open.py /tmp/db-new build
    for i in 1 2; do
        PYTHONPATH=/tmp/old/src python benchmarks/bench_minute_open.py /tmp/db-old read old
        python benchmarks/bench_minute_open.py /tmp/db-new read new
    done
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import session_frame, sessions
from tickvault import ParquetDB


def median(fn: Callable[[], Any], n: int = 7) -> float:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs)


def main() -> None:
    root, mode = sys.argv[1], sys.argv[2]
    label = sys.argv[3] if len(sys.argv) > 3 else ""
    if mode == "build":
        db = ParquetDB(root)
        for i, d in enumerate(sessions(60)):
            db.upsert_prices(session_frame(2000, d, i), interval="1m")
        db.wait_for_compaction("prices_1m")
        return
    day = dict(start="2024-02-01", end="2024-02-01 23:00")
    t0 = time.perf_counter()
    db = ParquetDB(root)
    db.read_arrow("prices_1m", tickers="T0042", **day)
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hist = median(lambda: db.read_arrow("prices_1m", tickers="T0042"))
    session = median(lambda: db.read_arrow("prices_1m", **day))
    marks = median(lambda: ParquetDB(root).watermarks(interval="1m"))
    print(
        f"{label}: first {first * 1e3:.0f} ms, peak {peak:.0f} MB | ticker history "
        f"{hist * 1e3:.1f} ms | session {session * 1e3:.0f} ms | watermarks, new handle "
        f"{marks * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
