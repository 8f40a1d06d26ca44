"""Requests per operation on S3 (issue 12): the hardware-independent cost of a bucket.

Starts moto's S3 server on 127.0.0.1 (or uses ``--endpoint`` with the AWS_* credentials
in the environment), then counts the requests tickvault's ObjectStore sends for:

* bulk load: ``--tickers`` tickers × ``--days`` bars in one upsert;
* daily update: a fresh handle (as a cron job has) upserting one bar for every ticker;
* open: a fresh handle's ``.version`` on a table with ``--versions`` versions (the log is
  built in memory and copied to the bucket: committing 10,000 versions through moto one
  by one would take many minutes and measure nothing more);
* read one ticker: after compaction, a cold read, then a second ticker with footers cached.

Usage::

    python benchmarks/bench_object_store.py                          # 2000 tickers, 10k versions
    python benchmarks/bench_object_store.py --tickers 200 --versions 500   # smoke run
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from tickvault import ParquetDB
from tickvault.storage import MemoryStore
from tickvault.storage.core.object_store import ObjectStore

BUCKET = "tickvault-bench"
KEYS = {"access_key_id": "bench", "secret_access_key": "bench", "region": "us-east-1"}


def bars(tickers: list[str], days: range) -> pa.Table:
    n = len(tickers) * len(days)
    close = np.full(n, 100.0)
    ts = np.tile(np.asarray(days, dtype=np.int64) * 86_400 * 10**9, len(tickers))
    return pa.table(
        {
            "ticker": pa.array(np.repeat(tickers, len(days)), pa.string()),
            "timestamp": pa.array(ts).cast(pa.timestamp("ns", tz="UTC")),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(n, 1000.0),
        }
    )


def counted(store: Any, fn: Any) -> tuple[Counter[str], float]:
    store.requests.clear()
    t0 = time.perf_counter()
    fn()
    return Counter(store.requests), time.perf_counter() - t0


def fmt(c: Counter[str]) -> str:
    total = sum(c.values())
    return f"{total:5d} requests  " + ", ".join(f"{k.upper()} {v}" for k, v in sorted(c.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=250)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--endpoint", help="an S3 endpoint instead of a moto server")
    args = ap.parse_args()
    server = None
    endpoint = args.endpoint
    if endpoint is None:
        import httpx
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        httpx.put(f"{endpoint}/{BUCKET}").raise_for_status()
    opts = {"endpoint": endpoint, **(KEYS if server else {})}
    try:
        run(args, f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}", opts)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace, url: str, opts: dict[str, str]) -> None:
    tickers = [f"T{i:05d}" for i in range(args.tickers)]

    def handle(**kw: Any) -> ParquetDB:
        return ParquetDB(url, storage_options=opts, **kw)

    db = handle()
    c, s = counted(db.store, lambda: db.upsert_prices(bars(tickers, range(args.days))))
    print(f"bulk load {args.tickers} x {args.days} bars   {fmt(c)}   {s:.2f} s")
    for day in range(args.days, args.days + 3):
        cron = handle(auto_compact=False)
        c, s = counted(
            cron.store,
            lambda cron=cron, day=day: cron.upsert_prices(bars(tickers, range(day, day + 1))),
        )
        print(f"daily update {args.tickers} x 1 bar (fresh handle)  {fmt(c)}   {s:.2f} s")
    db.compact()
    reader = handle(create=False)
    c, s = counted(reader.store, lambda: reader.read_table(tickers=[tickers[len(tickers) // 3]]))
    n = len(reader.snapshot().files)
    print(f"read one ticker, cold ({n} files in the table)  {fmt(c)}   {s:.3f} s")
    c, s = counted(reader.store, lambda: reader.read_table(tickers=[tickers[len(tickers) // 2]]))
    print(f"read another ticker, footers cached  {fmt(c)}   {s:.3f} s")
    opened(args, url + "-log", opts)


def opened(args: argparse.Namespace, url: str, opts: dict[str, str]) -> None:
    """A table with many versions: built in memory, copied to the bucket, then opened."""
    mem = MemoryStore()
    db = ParquetDB(store=mem, auto_compact=False)
    for v in range(args.versions):
        db.upsert_prices(bars(["AAA"], range(v, v + 1)))
    target = ObjectStore(url, opts)
    t0 = time.perf_counter()
    for key in _keys(mem, ""):
        target.put(key, mem.get(key))
    print(f"(copied {args.versions} versions to the bucket in {time.perf_counter() - t0:.0f} s)")
    for label in ("open: ParquetDB(url).version", "open + watermarks()"):
        fresh = ParquetDB(url, storage_options=opts, create=False)
        c, s = counted(
            fresh.store,
            lambda f=fresh, lb=label: f.watermarks() if "water" in lb else f.version,
        )
        # the constructor's marker HEAD happened before counting
        print(f"{label} ({args.versions} versions)  {fmt(c + Counter(head=1))}   {s:.3f} s")


def _keys(store: MemoryStore, prefix: str) -> list[str]:
    out = []
    for name in store.list(prefix):
        key = f"{prefix}/{name}" if prefix else name
        out.extend([key] if store.exists(key) else _keys(store, key))
    return out


if __name__ == "__main__":
    main()
