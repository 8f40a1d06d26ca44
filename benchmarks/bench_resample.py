"""Resampling on read (issue 23): tickvault's group-by next to DuckDB ``time_bucket``.

One process, one generated set of one-minute bars (``--tickers`` x ``--sessions`` x 390,
sorted by ticker and time, as every storage read returns them, with vwap and trade_count).
On the *same Arrow table in memory*, for each target interval (5m, 1h, 1d):

* ``tickvault``  :func:`tickvault.resample.resample` (numpy ``reduceat`` over the runs of
                 the sorted rows; no hashing);
* ``duckdb``     ``GROUP BY ticker, time_bucket(...)`` with ``arg_min(open, timestamp)``,
                 ``arg_max(close, timestamp)``, max, min, sums and the volume-weighted vwap,
                 ``ORDER BY`` ticker and bucket (the same rows out), on the registered
                 Arrow table (no copy in), result fetched as Arrow;
* ``pandas``     ``groupby('ticker').resample(...)`` with the same aggregations (only up to
                 ``--pandas-rows`` rows: it is much slower).

Each result is checked equal to tickvault's before timing. Then, end to end on a database
holding the same bars (``prices_1m``): ``read_table(interval="1m")`` and
``read_table(interval="1m", resample="5m")``. Medians of ``--repeats`` runs.

``--periods``: instead, the level-1 period choice of decision 018 — the same bars written
with ``ParquetDB(period=...)`` ``day``, ``month`` and ``year``, compacted, then one ticker's
whole history, all tickers over one day and one ticker over one hour (medians of 7).

Usage::

    python benchmarks/bench_resample.py                          # 200 tickers x 20 sessions
    python benchmarks/bench_resample.py --tickers 20 --sessions 5  # smoke run
    python benchmarks/bench_resample.py --periods                # decision 018's periods
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tickvault import ParquetDB
from tickvault.resample import resample
from tickvault.schema import get_schema

RULES = {"5m": ("5 minutes", "5min"), "1h": ("1 hour", "1h"), "1d": ("1 day", "1D")}


def make_bars(tickers: int, sessions: int) -> pa.Table:
    """One-minute bars 14:30-21:00 UTC on ``sessions`` weekdays, sorted by ticker, time."""
    rng = np.random.default_rng(23)
    days = pd.bdate_range("2024-03-04", periods=sessions, tz="UTC")
    minutes = days.as_unit("ns").asi8[:, None] + (870 + np.arange(390))[None, :] * 60 * 10**9
    stamps = minutes.ravel()
    per = len(stamps)
    n = tickers * per
    close = 20 + 200 * rng.random(n)
    opn = close * (1 + 0.001 * rng.standard_normal(n))
    high = np.maximum(opn, close) * 1.001
    low = np.minimum(opn, close) * 0.999
    schema = get_schema("prices_1m").arrow_schema
    return pa.table(
        {
            "ticker": pa.array(np.repeat([f"T{i:04d}" for i in range(tickers)], per)),
            "timestamp": pa.array(np.tile(stamps, tickers), pa.int64()).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 5000, n).astype("float64"),
            "adj_close": pa.nulls(n, pa.float64()),
            "vwap": low + (high - low) * rng.random(n),
            "trade_count": rng.integers(1, 100, n),
        },
        schema=schema,
    )


def duckdb_query(width: str) -> str:
    return f"""
        SELECT ticker, time_bucket(INTERVAL '{width}', timestamp) AS timestamp,
               arg_min(open, timestamp) AS open, max(high) AS high, min(low) AS low,
               arg_max(close, timestamp) AS close, sum(volume) AS volume,
               sum(vwap * volume) / sum(volume) AS vwap, sum(trade_count) AS trade_count
        FROM bars GROUP BY ALL ORDER BY ticker, timestamp
    """


def pandas_resample(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    df = df.assign(pv=df["vwap"] * df["volume"])
    g = df.set_index("timestamp").groupby("ticker").resample(rule, closed="left", label="left")
    out = g.agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "pv": "sum",
            "trade_count": "sum",
        }
    )
    out = out[out["volume"] > 0]
    out["vwap"] = out.pop("pv") / out["volume"]
    return out.reset_index()


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def period_reads(db: ParquetDB, ticker: str, day: pd.Timestamp) -> dict[str, float]:
    """One ticker's whole history, all tickers over ``day``, one ticker over one hour."""

    def read(**kw: Any) -> Callable[[], Any]:
        return lambda: db.read_arrow("prices", interval="1m", **kw)

    read(tickers=ticker)()  # warm
    hour = day + pd.Timedelta("15h")
    return {
        "one_ticker_all_s": median_seconds(read(tickers=ticker), 7),
        "all_tickers_one_day_s": median_seconds(
            read(start=day, end=day + pd.Timedelta("23h59min")), 7
        ),
        "one_ticker_one_hour_s": median_seconds(
            read(tickers=ticker, start=hour, end=hour + pd.Timedelta("59min")), 7
        ),
    }


def compare_periods(bars: pa.Table) -> dict[str, Any]:
    """Decision 018: write, compact and read the same minute bars under each period."""
    out: dict[str, Any] = {"rows": bars.num_rows}
    first_day = pd.Timestamp(bars.column("timestamp")[0].as_py()).normalize()
    day = first_day + pd.Timedelta(days=7)
    ticker = bars.column("ticker")[0].as_py()
    for period in ("day", "month", "year"):
        with tempfile.TemporaryDirectory() as tmp:
            db = ParquetDB(Path(tmp) / "db", period=period)
            t = time.perf_counter()
            db.upsert_prices(bars, interval="1m")
            write = time.perf_counter() - t
            db.compact("prices_1m")
            info = db.info()["tables"]["prices_1m"]
            out[period] = {
                "files": info["files"],
                "write_s": round(write, 3),
                **period_reads(db, ticker, day),
            }
            db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--tickers", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pandas-rows", type=int, default=400_000)
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    ap.add_argument("--periods", action="store_true", help="compare level-1 periods instead")
    args = ap.parse_args()
    import duckdb

    bars = make_bars(args.tickers, args.sessions)
    if args.periods:
        print(json.dumps(compare_periods(bars), indent=2))
        return
    con = duckdb.connect()
    con.execute(f"SET threads={args.threads}")
    con.execute("SET TimeZone='UTC'")
    con.register("bars", bars)
    small = bars.slice(0, min(args.pandas_rows, bars.num_rows)).to_pandas()
    results: dict[str, Any] = {
        "rows": bars.num_rows,
        "tickers": args.tickers,
        "sessions": args.sessions,
        "duckdb": duckdb.__version__,
        "duckdb_threads": args.threads,
        "pandas": pd.__version__,
        "pandas_rows": len(small),
        "rules": {},
    }
    for rule, (width, pandas_rule) in RULES.items():
        ours = resample(bars, rule)
        theirs = con.sql(duckdb_query(width)).to_arrow_table()
        assert theirs.num_rows == ours.num_rows, (rule, theirs.num_rows, ours.num_rows)
        for col in ("open", "high", "low", "close", "volume", "vwap"):
            a = ours.column(col).to_numpy()
            b = theirs.column(col).to_numpy()
            assert np.allclose(a, b, rtol=1e-9), (rule, col)
        ref = pandas_resample(small, pandas_rule)
        mine = resample(pa.Table.from_pandas(small, preserve_index=False), rule)
        assert len(ref) == mine.num_rows, (rule, len(ref), mine.num_rows)
        row = {
            "out_rows": ours.num_rows,
            "tickvault_s": median_seconds(lambda r=rule: resample(bars, r), args.repeats),
            "duckdb_s": median_seconds(
                lambda w=width: con.sql(duckdb_query(w)).to_arrow_table(), args.repeats
            ),
            "tickvault_small_s": median_seconds(
                lambda r=rule: resample(pa.Table.from_pandas(small, preserve_index=False), r),
                args.repeats,
            ),
            "pandas_small_s": median_seconds(
                lambda r=pandas_rule: pandas_resample(small, r), max(1, args.repeats // 2)
            ),
        }
        row["duckdb_over_tickvault"] = round(row["duckdb_s"] / row["tickvault_s"], 2)
        results["rules"][rule] = row
    with tempfile.TemporaryDirectory() as tmp:
        db = ParquetDB(Path(tmp) / "db")
        db.upsert_prices(bars, interval="1m")
        db.compact("prices_1m")
        db.read_arrow("prices", interval="1m")  # warm footers
        results["read_s"] = median_seconds(
            lambda: db.read_arrow("prices", interval="1m"), args.repeats
        )
        results["read_resample_5m_s"] = median_seconds(
            lambda: db.read_arrow("prices", interval="1m", resample="5m"), args.repeats
        )
        db.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
