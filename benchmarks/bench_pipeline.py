"""Pipeline benchmark for issue 4: fetch_and_write against a slow source.

Measures, with the demo source (deterministic synthetic daily bars, ``latency`` seconds of
sleep per request, as an HTTP API would cost):

1. **Throughput** — ``--tickers`` tickers x ``--years`` years, ``--latency`` s per request,
   ``--threads`` threads: wall time of ``fetch_and_write`` next to the ideal
   ``tickers x latency / threads + pure write time``. "Pure write time" is committing the
   same rows, already in memory, in the pipeline's batches (``ParquetDB.upsert``).
2. **Speedup over a sequential loop** (fetch one ticker, upsert it, next): timed on
   ``--sequential-subset`` tickers and extrapolated linearly to all of them (said so in the
   output).
3. **Peak memory** — peak RSS of a backfill of ``--mem-small`` and ``--mem-large`` tickers
   (latency 0), each in a fresh subprocess (``VmHWM`` from ``/proc/self/status``; not
   ``ru_maxrss``, which survives exec and counts the parent's RSS at fork), so the ratio shows
   whether memory grows with the number of tickers (it should be bounded by the batch).

Usage::

    python benchmarks/bench_pipeline.py                      # the issue's sizes
    python benchmarks/bench_pipeline.py --tickers 100 --mem-small 50 --mem-large 200  # smoke
    python benchmarks/bench_pipeline.py --markdown docs/benchmarks_pipeline.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from tickvault import ParquetDB
from tickvault.pipeline import DEFAULT_BATCH_ROWS, fetch_and_write
from tickvault.schema import PRICES
from tickvault.sources import DemoSource

AS_OF = "2024-06-28"


def tickers(n: int) -> list[str]:
    return [f"T{i:05d}" for i in range(n)]


def pure_write_seconds(names: list[str], years: int, tmp: Path) -> tuple[float, int, float, float]:
    """Commit the rows of ``names`` (fetched beforehand) in pipeline-sized batches.

    Also returns the demo source's CPU time for all the fetches on one thread, through
    ``fetch`` + ``pa.Table.from_pandas`` and through ``fetch_arrow`` (which the pipeline
    uses), for information: only the pure write time enters the ideal."""
    src = DemoSource(as_of=AS_OF, history_years=years)
    t0 = time.perf_counter()
    tables = [pa.Table.from_pandas(src.fetch(t), preserve_index=False) for t in names]
    source_cpu = time.perf_counter() - t0
    batches: list[pa.Table] = []
    cur: list[pa.Table] = []
    rows = 0
    for t in tables:
        cur.append(t)
        rows += t.num_rows
        if rows >= DEFAULT_BATCH_ROWS:
            batches.append(PRICES.validate(pa.concat_tables(cur)))
            cur, rows = [], 0
    if cur:
        batches.append(PRICES.validate(pa.concat_tables(cur)))
    total = sum(b.num_rows for b in batches)
    t0 = time.perf_counter()
    for t in names:  # what the pipeline calls (the same rows, built without pandas)
        src.fetch_arrow(t)
    source_arrow_cpu = time.perf_counter() - t0
    db = ParquetDB(tmp / "pure")
    t0 = time.perf_counter()
    for b in batches:
        db.upsert_prices(b)
    return time.perf_counter() - t0, total, source_cpu, source_arrow_cpu


def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    names = tickers(args.tickers)
    src = DemoSource(as_of=AS_OF, history_years=args.years, latency=args.latency)
    t0 = time.perf_counter()
    report = fetch_and_write(
        names, src, tmp / "pipeline", scheduler="threads", n_workers=args.threads
    )
    wall = time.perf_counter() - t0
    assert report["written"] == args.tickers, report
    write_s, rows, source_cpu, source_arrow_cpu = pure_write_seconds(names, args.years, tmp)
    ideal_fetch = args.tickers * args.latency / args.threads
    ideal = ideal_fetch + write_s

    subset = names[: args.sequential_subset]
    db = ParquetDB(tmp / "sequential")
    t0 = time.perf_counter()
    for t in subset:
        db.upsert_prices(src.fetch(t))
    seq_subset = time.perf_counter() - t0
    seq_est = seq_subset * args.tickers / len(subset)
    return {
        "tickers": args.tickers,
        "years": args.years,
        "rows": report["rows"],
        "latency": args.latency,
        "threads": args.threads,
        "commits": report["commits"],
        "wall": wall,
        "ideal_fetch": ideal_fetch,
        "pure_write": write_s,
        "ideal": ideal,
        "ratio_to_ideal": wall / ideal,
        "sequential_subset": len(subset),
        "sequential_subset_seconds": seq_subset,
        "sequential_estimate": seq_est,
        "speedup": seq_est / wall,
        "pure_write_rows": rows,
        "source_cpu": source_cpu,
        "source_arrow_cpu": source_arrow_cpu,
    }


CHILD = """
import json, resource, sys, time
from tickvault.pipeline import fetch_and_write
from tickvault.sources import DemoSource
n, years, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = [f"T{i:05d}" for i in range(n)]
t0 = time.perf_counter()
r = fetch_and_write(names, DemoSource(as_of="2024-06-28", history_years=years), path,
                    scheduler="threads", n_workers=8)
assert r["written"] == n, r
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would include the parent's RSS at fork
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"tickers": n, "rows": r["rows"], "seconds": time.perf_counter() - t0,
                  "peak_rss_mb": peak / 1024}))
"""


def peak_memory(n: int, years: int, tmp: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(years), str(tmp / f"mem{n}")],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tickers", type=int, default=1000)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--sequential-subset", type=int, default=50)
    p.add_argument("--mem-small", type=int, default=500)
    p.add_argument("--mem-large", type=int, default=5000)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tv-bench-pipeline-") as d:
        tmp = Path(d)
        tp = throughput(args, tmp)
        small = peak_memory(args.mem_small, args.years, tmp)
        large = peak_memory(args.mem_large, args.years, tmp)
    result = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average": os.getloadavg(),
        "throughput": tp,
        "memory": {
            "small": small,
            "large": large,
            "ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
        },
    }
    text = render(result, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.write_text(markdown(result, text, args))


def render(r: dict[str, Any], args: argparse.Namespace) -> str:
    tp, mem = r["throughput"], r["memory"]
    rows = [
        (
            "backfill",
            f"{tp['tickers']} tickers x {tp['years']} y ({tp['rows']:,} rows), "
            f"{tp['latency'] * 1000:.0f} ms/request, {tp['threads']} threads, "
            f"{tp['commits']} commits",
        ),
        ("wall time", f"{tp['wall']:.2f} s"),
        ("ideal fetch (tickers x latency / threads)", f"{tp['ideal_fetch']:.2f} s"),
        ("pure write time (same rows, same batches)", f"{tp['pure_write']:.2f} s"),
        ("ideal = fetch + write", f"{tp['ideal']:.2f} s"),
        ("(info) demo fetch + from_pandas CPU, 1 thread", f"{tp['source_cpu']:.2f} s"),
        ("(info) demo fetch_arrow CPU (pipeline), 1 thread", f"{tp['source_arrow_cpu']:.2f} s"),
        ("wall / ideal", f"{tp['ratio_to_ideal']:.2f}x  (target <= 1.25x)"),
        (
            f"sequential loop (timed on {tp['sequential_subset']}, extrapolated)",
            f"{tp['sequential_estimate']:.1f} s  "
            f"({tp['sequential_subset_seconds']:.2f} s measured)",
        ),
        ("speedup over sequential", f"{tp['speedup']:.1f}x"),
        (
            f"peak RSS, {mem['small']['tickers']} tickers (latency 0)",
            f"{mem['small']['peak_rss_mb']:.0f} MB  ({mem['small']['seconds']:.1f} s)",
        ),
        (
            f"peak RSS, {mem['large']['tickers']} tickers (latency 0)",
            f"{mem['large']['peak_rss_mb']:.0f} MB  ({mem['large']['seconds']:.1f} s)",
        ),
        ("memory ratio large / small", f"{mem['ratio']:.2f}x  (target <= 1.5x)"),
    ]
    w = max(len(a) for a, _ in rows)
    lines = [f"{a:<{w}}  {b}" for a, b in rows]
    lines.append(
        f"machine: {r['machine']}; load average during run: "
        f"{', '.join(f'{x:.1f}' for x in r['load_average'])}"
    )
    return "\n".join(lines)


def markdown(r: dict[str, Any], text: str, args: argparse.Namespace) -> str:
    cmd = "python benchmarks/bench_pipeline.py --markdown docs/benchmarks_pipeline.md"
    return (
        "# Pipeline benchmark\n\n"
        "Reproduce:\n\n"
        f"```\n{cmd}\n```\n\n"
        "Results (written by the benchmark):\n\n"
        f"```\n{text}\n```\n"
    )


if __name__ == "__main__":
    main()
