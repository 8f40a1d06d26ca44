"""A/B: the same storage and pipeline operations on two (or more) versions of tickvault, in
one process, round-robin — for "no regression" checks of a refactor.

Each version is a ``src`` folder (e.g. a ``git worktree`` of an older commit); its
``tickvault`` package is imported under an alias (``tv_<name>``), which works because the
package imports itself relatively. Every operation runs on every version in turn,
``--repeats`` times, and the report gives medians and the ratio of each version to the first.

Usage::

    git worktree add --detach /tmp/tv-before <commit>
    python benchmarks/bench_ab.py --version before=/tmp/tv-before/src --version after=src
    python benchmarks/bench_ab.py --version before=... --version after=src --tickers 200 --bars 500
    python benchmarks/bench_ab.py --version none=src@period=none --version year=src

``NAME=SRC@OPT=VALUE,...`` opens that version's databases with these ParquetDB options
(the same code with another setting, side by side).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def load_version(name: str, src: Path, into: Path) -> ModuleType:
    """Import ``src/tickvault`` as the package ``tv_<name>``."""
    alias = f"tv_{name}"
    shutil.copytree(src / "tickvault", into / alias)
    init = into / alias / "__init__.py"
    init.write_text(init.read_text().replace('"tickvault.', f'"{alias}.'))
    if str(into) not in sys.path:
        sys.path.insert(0, str(into))
    return importlib.import_module(alias)


#: ParquetDB options per version name (``NAME=SRC@OPT=VALUE,...``)
OPTIONS: dict[str, dict[str, Any]] = {}


def parse_options(spec: str) -> dict[str, Any]:
    """``"period=none,fsync=False"`` -> {"period": "none", "fsync": False}."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, _, raw = item.partition("=")
        value: Any = raw
        if raw in ("True", "False"):
            value = raw == "True"
        else:
            for conv in (int, float):
                try:
                    value = conv(raw)
                    break
                except ValueError:
                    pass
        out[key.strip()] = value
    return out


def make_data(n_tickers: int, n_bars: int, seed: int = 2) -> tuple[pa.Table, pd.DatetimeIndex]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-04", periods=n_bars + 40, tz="UTC")
    tickers = [f"T{i:05d}" for i in range(n_tickers)]
    n = n_tickers * n_bars
    close = 50 + 100 * rng.random(n)
    table = pa.table(
        {
            "ticker": pa.array(np.repeat(tickers, n_bars), pa.string()),
            "timestamp": pa.array(
                np.tile(dates[:n_bars].as_unit("ns").asi8, n_tickers), pa.timestamp("ns", "UTC")
            ),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1000, 10**6, n).astype("float64"),
            "adj_close": close,
        }
    )
    return table, dates


def day_bars(tickers: list[str], days: pd.DatetimeIndex, rng: np.random.Generator) -> pa.Table:
    n = len(tickers) * len(days)
    close = 50 + 100 * rng.random(n)
    return pa.table(
        {
            "ticker": pa.array(np.repeat(tickers, len(days)), pa.string()),
            "timestamp": pa.array(
                np.tile(days.as_unit("ns").asi8, len(tickers)), pa.timestamp("ns", "UTC")
            ),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(n, 1000.0),
            "adj_close": close,
        }
    )


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_storage(
    versions: dict[str, ModuleType], args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, float]]:
    base, dates = make_data(args.tickers, args.bars)
    frame = base.to_pandas()
    tickers = sorted(set(base.column("ticker").to_pylist()))
    rng = np.random.default_rng(3)
    probe = [tickers[int(i)] for i in rng.integers(0, len(tickers), 25)]
    # a portfolio: 20 distinct tickers in one read
    portfolio = [tickers[int(i)] for i in rng.choice(len(tickers), 20, replace=False)]
    times: dict[str, dict[str, list[float]]] = {v: {} for v in versions}

    def add(v: str, op: str, t: float) -> None:
        times[v].setdefault(op, []).append(t)

    dbs: dict[str, Any] = {}
    for r in range(args.repeats):
        order = list(versions) if r % 2 == 0 else list(reversed(versions))
        for v in order:
            mod = versions[v]
            for kind, data in (("arrow", base), ("pandas", frame)):
                path = tmp / f"{v}-{kind}-{r}"
                db = mod.ParquetDB(path, **OPTIONS.get(v, {}))
                add(
                    v, f"bulk load ({kind})", timed(lambda db=db, data=data: db.upsert_prices(data))
                )
                if kind == "arrow" and r == 0:
                    dbs[v] = db
                else:
                    db.close()
                    shutil.rmtree(path)
    mid = (dates[args.bars // 2], dates[args.bars // 2 + 21])
    n = args.bars + args.updates
    last = (dates[n - 21], dates[n])
    for v, db in dbs.items():  # reads on a fresh bulk load, then daily updates
        for _ in range(args.repeats):
            for t in probe:
                add(v, "read 1 ticker", timed(lambda db=db, t=t: db.read_table(tickers=t)))
            add(v, "read 20 tickers", timed(lambda db=db: db.read_table(tickers=portfolio)))
            add(
                v,
                "one month, all tickers",
                timed(lambda db=db: db.read_arrow(start=mid[0], end=mid[1])),
            )
            fresh = versions[v].ParquetDB(db.path, **OPTIONS.get(v, {}))
            add(v, "watermarks (new handle)", timed(fresh.watermarks))
    for i in range(args.updates):  # the same daily updates on every version, alternating
        day = dates[args.bars + i : args.bars + i + 1]
        batch = day_bars(tickers, day, np.random.default_rng(100 + i))
        for v in dbs if i % 2 == 0 else reversed(list(dbs)):
            add(v, "add 1 bar x all tickers", timed(lambda v=v, b=batch: dbs[v].upsert_prices(b)))
    for v, db in dbs.items():
        wait = getattr(db, "wait_for_compaction", None)
        if wait is not None:
            wait()  # reads after updates: as if the process had been idle a moment
        for t in probe:
            read = timed(lambda db=db, t=t: db.read_table(tickers=t))
            add(v, "read 1 ticker after updates", read)
        add(
            v,
            "last month after updates",
            timed(lambda db=db: db.read_arrow(start=last[0], end=last[1])),
        )
        rep = day_bars(tickers, dates[n - 5 : n], rng)
        add(v, "replace last 5 x all tickers", timed(lambda db=db, r=rep: db.upsert_prices(r)))
        db.close()
    return {v: {op: statistics.median(ts) for op, ts in ops.items()} for v, ops in times.items()}


def run_pipeline(
    versions: dict[str, ModuleType], args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, list[float]]] = {v: {} for v in versions}
    tickers = [f"P{i:04d}" for i in range(args.pipeline_tickers)]
    for r in range(args.repeats):
        for v in versions if r % 2 == 0 else reversed(list(versions)):
            mod = versions[v]
            src = importlib.import_module(f"{mod.__name__}.sources").DemoSource(
                latency=args.latency
            )
            path = tmp / f"pipe-{v}-{r}"
            t = timed(
                lambda mod=mod, src=src, path=path: mod.fetch_and_write(
                    tickers, src, str(path), start="2015-01-01", end="2024-12-31", n_workers=32
                )
            )
            out[v].setdefault("pipeline backfill", []).append(t)
            shutil.rmtree(path)
    return {v: {op: statistics.median(ts) for op, ts in ops.items()} for v, ops in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--version", action="append", required=True, metavar="NAME=SRC")
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pipeline-tickers", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--skip-pipeline", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tv-ab-"))
    try:
        versions = {}
        for spec in args.version:
            name, _, rest = spec.partition("=")
            src, _, opts = rest.partition("@")
            if opts:
                OPTIONS[name] = parse_options(opts)
            versions[name] = load_version(name, Path(src).resolve(), tmp / "pkgs")
        results = run_storage(versions, args, tmp)
        if not args.skip_pipeline:
            for v, ops in run_pipeline(versions, args, tmp).items():
                results[v].update(ops)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = list(versions)
    first = names[0]
    print(f"\n{args.tickers} tickers x {args.bars} bars, median of {args.repeats} (round-robin)")
    head = f"{'operation':34}" + "".join(f"{n:>14}" for n in names)
    head += "".join(f"{n + '/' + first:>16}" for n in names[1:])
    print(head)
    for op in results[first]:
        row = f"{op:34}" + "".join(f"{results[n][op]:>13.4f}s" for n in names)
        row += "".join(f"{results[n][op] / results[first][op]:>15.2f}x" for n in names[1:])
        print(row)


if __name__ == "__main__":
    main()
