"""Storage benchmark for issue 2: tickvault's ParquetDB next to the alternatives.

One process, one generated data set (``--tickers`` x ``--bars`` daily bars: ticker, timestamp
(UTC), open, high, low, close, volume, adj_close), every system side by side:

* ``floor``     one ``pyarrow.parquet.write_table`` of the data (bulk load only);
* ``naive``     one Parquet file per ticker, pandas read-modify-write for every update (the
                original pattern);
* ``deltalake`` one unpartitioned Delta table (append for "add 1 bar", merge for "replace");
* ``arcticdb``  LMDB, one symbol per ticker (write_batch / append_batch / update_batch);
* ``tickvault`` ``ParquetDB`` with default options, and again with ``fsync=False``.

deltalake and arcticdb are the optional ``bench`` extra; a system that cannot be imported is
reported as unavailable and skipped. Every system gets its input in its natural form, built
before the clock starts: a ``pyarrow.Table`` for floor, deltalake and tickvault; per-ticker
pandas frames for naive and arcticdb (their APIs are per ticker).

Floor, deltalake and tickvault also load and update **from pandas**, next to Arrow (the
``... pandas`` columns), because a DataFrame is what users pass. The bulk load takes one
frame of the same rows in the shape ``--pandas-shape`` (default ``us``: naive
``datetime64[us]`` timestamps read as UTC, int64 volume, pandas' default ``str`` tickers;
see ``PANDAS_SHAPES``); floor converts it with ``pa.Table.from_pandas`` and writes it,
deltalake gets it in ``write_deltalake``, tickvault in ``upsert_prices``. "add 1 bar" and
"replace last 5" from pandas pass the batch as the frame ``read_table`` returns
(``datetime64[ns, UTC]``), the form a deltalake table created from Arrow accepts; they
alternate with the Arrow batches (arrow, pandas, arrow, ...), on days of their own for add 1
bar.

Usage::

    python benchmarks/bench_storage.py                       # full size: 2000 x 2520
    python benchmarks/bench_storage.py --tickers 50 --bars 300   # smoke run
    python benchmarks/bench_storage.py --systems tickvault,deltalake --json out.json
    python benchmarks/bench_storage.py --systems floor,deltalake,tickvault --pandas-shape date

Times are seconds: the median of ``--repeats`` runs for writes (bulk load: of
``--bulk-repeats`` fresh loads from Arrow and as many from pandas for floor, deltalake and
tickvault, taken round-robin across the systems and both input forms so that a drift in
machine load hits all alike; naive and arcticdb load once, they are far slower); for "read 1
ticker" the median over ``--read-tickers`` random tickers on a warm handle (the same open
database object; the second pass over the tickers is reported, the first is kept as
``read1_first``); the median of 3 for the other reads. The naive pattern's "replace last 5
bars" is timed on ``--naive-subset`` tickers and extrapolated linearly.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PRICE_COLS = ["open", "high", "low", "close", "volume", "adj_close"]
TS_NS = pa.timestamp("ns", tz="UTC")
TS_US = pa.timestamp("us", tz="UTC")

OPS = [
    ("bulk", "bulk load"),
    ("bulk_pd", "bulk load, pandas"),
    ("add1", "add 1 bar x N"),
    ("add1_pd", "add 1 bar x N, pandas"),
    ("rep5", "replace last 5 x N"),
    ("rep5_pd", "replace last 5 x N, pandas"),
    ("read1", "read 1 ticker"),
    ("read1_after30", "read 1 ticker, after 30 updates"),
    ("month_mid", "read month (middle), all"),
    ("month_last", "read month (last), all"),
    ("month_last_after30", "read last month, after 30 updates"),
    ("watermarks", "watermarks()"),
    ("watermarks_after30", "watermarks(), after 30 updates"),
    ("disk_fresh_mb", "disk after bulk load (MB)"),
    ("disk_after_mb", "disk after updates + maintenance (MB)"),
]


# -- data ------------------------------------------------------------------------------------


@dataclass
class Data:
    tickers: list[str]
    dates: pd.DatetimeIndex  # every business day we may use (base bars + future days)
    n_bars: int
    base: pa.Table  # sorted by (ticker, timestamp)
    offsets: np.ndarray  # row offsets of each ticker's run in ``base`` (len = tickers + 1)
    rng: np.random.Generator = field(repr=False)

    def day(self, i: int) -> pd.Timestamp:
        """The i-th business day after the base data (0 = the first new day)."""
        return self.dates[self.n_bars + i]

    def bars(self, days: list[pd.Timestamp]) -> pa.Table:
        """New bars for every ticker on ``days`` (random values), sorted by key."""
        n_t, n_d = len(self.tickers), len(days)
        close = 50.0 + 100.0 * self.rng.random(n_t * n_d)
        return _ohlc(
            np.repeat(np.array(self.tickers, dtype=object), n_d),
            np.tile(pd.DatetimeIndex(days).as_unit("ns").asi8, n_t),
            close,
            self.rng,
        )


def _ohlc(
    tickers: np.ndarray, ts_ns: np.ndarray, close: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    n = len(close)
    open_ = close * (1.0 + 0.01 * rng.standard_normal(n))
    high = np.maximum(open_, close) * (1.0 + 0.01 * rng.random(n))
    low = np.minimum(open_, close) * (1.0 - 0.01 * rng.random(n))
    volume = np.floor(1e5 + 1e6 * rng.random(n))
    return pa.table(
        {
            "ticker": pa.array(tickers, pa.string()),
            "timestamp": pa.array(ts_ns, pa.int64()).cast(TS_NS),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "adj_close": close * 0.98,
        }
    )


def make_data(n_tickers: int, n_bars: int, extra_days: int, seed: int = 2) -> Data:
    rng = np.random.default_rng(seed)
    tickers = [f"T{i:05d}" for i in range(n_tickers)]
    dates = pd.bdate_range(start="2010-01-04", periods=n_bars + extra_days, tz="UTC")
    steps = 0.02 * rng.standard_normal((n_tickers, n_bars))
    close = (20.0 + 200.0 * rng.random((n_tickers, 1))) * np.exp(np.cumsum(steps, axis=1))
    ts = np.tile(dates[:n_bars].as_unit("ns").asi8, n_tickers)
    base = _ohlc(np.repeat(np.array(tickers, dtype=object), n_bars), ts, close.ravel(), rng)
    offsets = np.arange(n_tickers + 1, dtype=np.int64) * n_bars
    return Data(tickers, dates, n_bars, base, offsets, rng)


def per_ticker_frames(t: pa.Table, *, naive_index: bool) -> dict[str, pd.DataFrame]:
    """Split a key-sorted table into one pandas frame per ticker (untimed input prep).
    ``naive_index``: timestamp as a tz-naive UTC index (arcticdb); else plain columns."""
    tick = t.column("ticker").combine_chunks()
    ree = pc.run_end_encode(tick)
    ends = ree.run_ends.to_numpy()
    names = ree.values.to_pylist()
    df = t.to_pandas()
    if naive_index:
        df = df.drop(columns=["ticker"])
        df["timestamp"] = df["timestamp"].dt.tz_convert(None).astype("datetime64[ns]")
        df = df.set_index("timestamp")
    out = {}
    a = 0
    for name, e in zip(names, ends.tolist(), strict=True):
        out[name] = df.iloc[a:e]
        a = e
    return out


def _naive_us(t: pa.Table) -> pd.Series:
    return pd.Series(
        t.column("timestamp").cast(pa.int64()).to_numpy().astype("datetime64[ns]")
    ).astype("datetime64[us]")


#: The pandas frames users pass, made from the Arrow rows (untimed input prep). Every shape
#: holds the same instants (daily bars at 00:00 UTC): ``us`` naive datetime64[us] read as
#: UTC, int64 volume, pandas' default ``str`` tickers (the shape of issue 10); ``ns`` the same
#: in datetime64[ns]; ``tz`` tz-aware New York time; ``date`` ``datetime.date`` objects;
#: ``iso`` ISO date strings; ``object`` like ``us`` with an object-dtype ticker column;
#: ``utc`` what ``read_table`` returns (datetime64[ns, UTC], float volume).
PANDAS_SHAPES: dict[str, Callable[[pa.Table], pd.DataFrame]] = {
    "us": lambda t: t.to_pandas().assign(
        timestamp=_naive_us(t), volume=lambda d: d["volume"].astype("int64")
    ),
    "ns": lambda t: t.to_pandas().assign(
        timestamp=lambda d: d["timestamp"].dt.tz_convert(None).astype("datetime64[ns]")
    ),
    "tz": lambda t: t.to_pandas().assign(
        timestamp=lambda d: d["timestamp"].dt.tz_convert("America/New_York")
    ),
    "date": lambda t: t.to_pandas().assign(timestamp=lambda d: d["timestamp"].dt.date),
    "iso": lambda t: t.to_pandas().assign(
        timestamp=lambda d: d["timestamp"].dt.strftime("%Y-%m-%d")
    ),
    "object": lambda t: t.to_pandas().assign(
        timestamp=_naive_us(t),
        volume=lambda d: d["volume"].astype("int64"),
        ticker=lambda d: d["ticker"].astype(object),
    ),
    "utc": lambda t: t.to_pandas(),
}


def user_frame(t: pa.Table, shape: str) -> pd.DataFrame:
    df = PANDAS_SHAPES[shape](t)
    assert len(df) == t.num_rows
    return df


# -- timing helpers --------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def month_bounds(data: Data) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    mid = data.dates[data.n_bars // 2]
    start = mid.replace(day=1)
    end = start + pd.offsets.MonthEnd(1)
    return {"month_mid": (start, end)}


def last_month(last_day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The month (31 calendar days) ending at the newest bar."""
    return last_day - pd.Timedelta(days=30), last_day


@dataclass
class Plan:
    """What every system does, prepared up front so all systems do the same work."""

    data: Data
    repeats: int
    add_days: list[pd.Timestamp]  # one new day per add-1 repeat
    rep5_batches: list[pa.Table]  # new values for the last 5 days, one per repeat
    after_days: list[pd.Timestamp]  # the 30 daily updates (tickvault)
    read_tickers: list[str]
    naive_subset: int
    bulk_repeats: int = 5
    pandas_shape: str = "us"
    # from pandas: the bulk frame (``pandas_shape``), one more new day per add-1 repeat
    # (interleaved with ``add_days``) and the replace-5 batches as frames
    bulk_frame: pd.DataFrame | None = None
    add_days_pd: list[pd.Timestamp] = field(default_factory=list)
    rep5_frames: list[pd.DataFrame] = field(default_factory=list)

    @property
    def last_day(self) -> pd.Timestamp:
        return max(self.add_days + self.add_days_pd)


# -- systems ---------------------------------------------------------------------------------


class System(abc.ABC):
    name = "?"
    label = "?"

    def __init__(self, root: Path, plan: Plan, log: Callable[[str], None]) -> None:
        self.root = root
        self.plan = plan
        self.log = log
        self.results: dict[str, float] = {}
        self.notes: list[str] = []
        # bulk-load times from the interleaved rounds (see main), per input form
        self.bulk_samples: dict[str, list[float]] = {"arrow": [], "pandas": []}

    @abc.abstractmethod
    def run(self) -> None:
        """Run this system's operations, filling ``self.results``."""

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # shared pieces
    def time_add1(self, batches: list[Any], fn: Callable[[Any], Any]) -> None:
        self.time_writes("add1", batches, fn)

    def time_rep5(self, batches: list[Any], fn: Callable[[Any], Any]) -> None:
        self.time_writes("rep5", batches, fn)

    def time_writes(self, key: str, batches: list[Any], fn: Callable[[Any], Any]) -> None:
        """``fn(batch)`` for each batch; the median is the result ``key``."""
        times = []
        for b in batches:
            dt_, _ = timed(lambda b=b: fn(b))
            times.append(dt_)
        self.results[key] = median(times)
        self.log(f"  {key}: {fmt_times(times)}")

    def time_writes_both(
        self,
        key: str,
        batches: list[Any],
        frames: list[pd.DataFrame],
        fn: Callable[[Any], Any],
        fn_pd: Callable[[pd.DataFrame], Any] | None = None,
    ) -> None:
        """Like :meth:`time_writes` for the Arrow ``batches`` (result ``key``) and the pandas
        ``frames`` (result ``key_pd``), alternating arrow, pandas, arrow, ..."""
        fn_pd = fn_pd or fn
        times: dict[str, list[float]] = {"arrow": [], "pandas": []}
        for i in range(max(len(batches), len(frames))):
            for form, items, f in (("arrow", batches, fn), ("pandas", frames, fn_pd)):
                if i < len(items):
                    dt_, _ = timed(lambda f=f, b=items[i]: f(b))
                    times[form].append(dt_)
        self.results[key] = median(times["arrow"])
        self.log(f"  {key}: {fmt_times(times['arrow'])}")
        if times["pandas"]:
            self.results[key + "_pd"] = median(times["pandas"])
            self.log(f"  {key}_pd: {fmt_times(times['pandas'])}")

    def time_read1(self, fn: Callable[[str], Any], key: str = "read1") -> None:
        """Median over the read tickers, second pass (warm handle: every file touched once);
        the first pass is kept as ``<key>_first``."""
        tickers = self.plan.read_tickers
        fn(self.plan.data.tickers[0])
        passes = []
        n_rows = set()
        for _ in range(2):
            times = []
            for t in tickers:
                dt_, r = timed(lambda t=t: fn(t))
                times.append(dt_)
                n_rows.add(len(r))
            passes.append(median(times))
        self.results[key + "_first"] = passes[0]
        self.results[key] = passes[1]
        self.log(
            f"  {key}: median {passes[1] * 1e3:.2f} ms (first pass {passes[0] * 1e3:.2f} ms), "
            f"rows {sorted(n_rows)[:3]}"
        )

    def time_month(self, fn: Callable[[pd.Timestamp, pd.Timestamp], Any], suffix: str = "") -> None:
        bounds = month_bounds(self.plan.data)
        bounds["month_last"] = last_month(self.plan.last_day)
        for key, (s, e) in bounds.items():
            times = []
            rows = 0
            for _ in range(3):
                dt_, r = timed(lambda s=s, e=e: fn(s, e))
                times.append(dt_)
                rows = len(r)
            self.results[key + suffix] = median(times)
            self.log(f"  {key}{suffix}: {fmt_times(times)} rows {rows}")


class BulkRounds(System):
    """A system whose bulk load is cheap enough to repeat: it takes part in the
    interleaved bulk-load rounds (see ``main``), from Arrow and from pandas, and reports
    their medians."""

    @abc.abstractmethod
    def bulk_load(self, path: Path, form: str = "arrow") -> Any:
        """Load ``plan.data`` into a new store at ``path`` from ``plan.data.base``
        (``form="arrow"``) or from ``plan.bulk_frame`` (``"pandas"``); return its handle
        (or None)."""

    def time_bulk(self, final: Path) -> Any:
        """The last bulk load, from Arrow into ``final`` (used by the rest of the run); the
        reported times are the medians of the interleaved rounds' samples (this load's time
        is added to the Arrow samples if there were fewer rounds than ``bulk_repeats``)."""
        os.sync()
        dt_, out = timed(lambda: self.bulk_load(final))
        if len(self.bulk_samples["arrow"]) < self.plan.bulk_repeats:
            self.bulk_samples["arrow"].append(dt_)
        for form, key in (("arrow", "bulk"), ("pandas", "bulk_pd")):
            if self.bulk_samples[form]:
                self.results[key] = median(self.bulk_samples[form])
                self.log(f"  {key}: {fmt_times(self.bulk_samples[form])}")
        return out


def fmt_times(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in xs) + "]"


class Floor(BulkRounds):
    name = "floor"
    label = "pyarrow write_table (floor)"

    def bulk_load(self, path: Path, form: str = "arrow") -> Any:
        path.mkdir(parents=True, exist_ok=True)
        if form == "pandas":
            table = pa.Table.from_pandas(self.plan.bulk_frame, preserve_index=False)
        else:
            table = self.plan.data.base
        pq.write_table(table, path / "all.parquet")

    def run(self) -> None:
        self.time_bulk(self.root / "final")


class Naive(System):
    name = "naive"
    label = "naive per-ticker files (read-modify-write)"

    def path(self, ticker: str) -> Path:
        return self.root / f"{ticker}.parquet"

    def rmw(self, frames: dict[str, pd.DataFrame]) -> None:
        for ticker, new in frames.items():
            p = self.path(ticker)
            old = pd.read_parquet(p)
            df = pd.concat([old, new], ignore_index=True)
            df = df.drop_duplicates(subset=["timestamp"], keep="last").sort_values("timestamp")
            df.to_parquet(p, index=False)

    def run(self) -> None:
        plan, data = self.plan, self.plan.data
        self.root.mkdir(parents=True, exist_ok=True)
        base, off = data.base, data.offsets

        def bulk() -> None:
            for i, t in enumerate(data.tickers):
                pq.write_table(base.slice(off[i], off[i + 1] - off[i]), self.path(t))

        dt_, _ = timed(bulk)
        self.results["bulk"] = dt_
        self.log(f"  bulk: {dt_:.3f}")
        # add 1 bar: all tickers, once (it is slow); the other add-days are applied untimed
        # so the state matches the other systems
        b0 = per_ticker_frames(data.bars([plan.add_days[0]]), naive_index=False)
        dt_, _ = timed(lambda: self.rmw(b0))
        self.results["add1"] = dt_
        self.log(f"  add1 (all {len(b0)} tickers, 1 run): {dt_:.3f}")
        for d in plan.add_days[1:]:
            self.rmw(per_ticker_frames(data.bars([d]), naive_index=False))
        # replace last 5: a subset, extrapolated
        k = min(plan.naive_subset, len(data.tickers))
        scale = len(data.tickers) / k
        times = []
        for b in plan.rep5_batches[: max(1, min(2, plan.repeats))]:
            frames = per_ticker_frames(b, naive_index=False)
            sub = {t: frames[t] for t in list(frames)[:k]}
            dt_, _ = timed(lambda sub=sub: self.rmw(sub))
            times.append(dt_ * scale)
        self.results["rep5"] = median(times)
        if k < len(data.tickers):
            self.notes.append(
                f"replace-5 timed on {k} of {len(data.tickers)} tickers, x{scale:.1f} "
                f"(linear extrapolation)"
            )
        self.log(f"  rep5 (extrapolated from {k} tickers): {fmt_times(times)}")
        self.time_read1(lambda t: pd.read_parquet(self.path(t)))

        def month(s: pd.Timestamp, e: pd.Timestamp) -> pd.DataFrame:
            flt = [("timestamp", ">=", s), ("timestamp", "<=", e)]
            parts = [pq.read_table(self.path(t), filters=flt) for t in data.tickers]
            return pa.concat_tables(parts).to_pandas()

        self.time_month(month)


class Delta(BulkRounds):
    name = "deltalake"
    label = "deltalake (unpartitioned; append / merge)"

    def bulk_load(self, path: Path, form: str = "arrow") -> Any:
        import deltalake

        if form == "pandas":  # the same frame tickvault gets
            deltalake.write_deltalake(str(path), self.plan.bulk_frame)
            return
        if not hasattr(self, "_base_us"):
            self._base_us = self.plan.data.base.set_column(
                1, "timestamp", self.plan.data.base.column("timestamp").cast(TS_US)
            )
        deltalake.write_deltalake(str(path), self._base_us)

    def run(self) -> None:
        import deltalake

        plan, data = self.plan, self.plan.data
        uri = str(self.root / "delta")

        def us(t: pa.Table) -> pa.Table:
            return t.set_column(1, "timestamp", t.column("timestamp").cast(TS_US))

        self.time_bulk(Path(uri))
        self.results["disk_fresh_mb"] = dir_mb(Path(uri))
        adds = [us(data.bars([d])) for d in plan.add_days]
        adds_pd = [user_frame(data.bars([d]), "utc") for d in plan.add_days_pd]
        self.time_writes_both(
            "add1", adds, adds_pd, lambda b: deltalake.write_deltalake(uri, b, mode="append")
        )
        self.notes.append("add 1 bar is a plain append (no dedupe: a re-run would duplicate)")

        def merge(b: pa.Table) -> Any:
            return (
                deltalake.DeltaTable(uri)
                .merge(
                    source=b,
                    predicate="t.ticker = s.ticker AND t.timestamp = s.timestamp",
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        self.time_writes_both("rep5", [us(b) for b in plan.rep5_batches], plan.rep5_frames, merge)
        table = deltalake.DeltaTable(uri)
        # merge writes string_view files, append writes string: pyarrow cannot compare a
        # string_view column with a string scalar, hence the cast in the filter
        ds = table.to_pyarrow_dataset()
        qb = deltalake.QueryBuilder().register("t", table)

        def sql(where: str) -> pd.DataFrame:
            return pa.table(qb.execute(f"SELECT * FROM t WHERE {where}").read_all()).to_pandas()

        def ts_sql(x: pd.Timestamp) -> str:
            return f"arrow_cast('{x.isoformat()}', 'Timestamp(Microsecond, Some(\"UTC\"))')"

        self.time_read1(
            lambda t: ds.to_table(filter=pc.field("ticker").cast(pa.string()) == t).to_pandas(),
            key="read1_pyarrow",
        )
        self.time_read1(lambda t: sql(f"ticker = '{t}'"), key="read1_sql")

        def month(s: pd.Timestamp, e: pd.Timestamp) -> pd.DataFrame:
            f = (pc.field("timestamp") >= pa.scalar(s, TS_US)) & (
                pc.field("timestamp") <= pa.scalar(e, TS_US)
            )
            return ds.to_table(filter=f).to_pandas()

        self.time_month(month, suffix="_pyarrow")
        self.time_month(
            lambda s, e: sql(f'"timestamp" >= {ts_sql(s)} AND "timestamp" <= {ts_sql(e)}'),
            suffix="_sql",
        )
        for k in ("read1", "month_mid", "month_last"):
            a, b = self.results[k + "_pyarrow"], self.results[k + "_sql"]
            self.results[k] = min(a, b)
            self.notes.append(
                f"{k}: pyarrow dataset {fmt(a)} s, QueryBuilder (DataFusion) {fmt(b)} s; "
                f"the faster is reported"
            )
        self.notes.append(
            f"reads through one cached handle (output not sorted by key); "
            f"{len(table.file_uris())} data files at read time"
        )
        # maintenance: compact small files, then delete what no version needs
        dt_ = deltalake.DeltaTable(uri)
        dt_.optimize.compact()
        dt_.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        self.results["disk_after_mb"] = dir_mb(Path(uri))


class Arctic(System):
    name = "arcticdb"
    label = "arcticdb (LMDB; write/append/update_batch)"

    def run(self) -> None:
        import arcticdb
        from arcticdb import ReadRequest, UpdatePayload, WritePayload

        plan, data = self.plan, self.plan.data
        ac = arcticdb.Arctic(f"lmdb://{self.root / 'lmdb'}?map_size=16GB")
        lib = ac.get_library("bench", create_if_missing=True)

        def check(results: list[Any]) -> None:
            bad = [r for r in results if not hasattr(r, "version")]
            if bad:
                raise RuntimeError(f"arcticdb batch errors: {bad[:2]}")

        frames = per_ticker_frames(data.base, naive_index=True)
        payload = [WritePayload(t, df) for t, df in frames.items()]
        dt_, _ = timed(lambda: check(lib.write_batch(payload)))
        frames = payload = None  # free memory
        self.results["bulk"] = dt_
        self.log(f"  bulk: {dt_:.3f}")
        reps = min(plan.repeats, 2)
        if reps < plan.repeats:
            self.notes.append(f"writes: median of {reps} (slow)")
        adds = [per_ticker_frames(data.bars([d]), naive_index=True) for d in plan.add_days]
        add_times = []
        for i, fr in enumerate(adds):
            dt_, _ = timed(
                lambda fr=fr: check(lib.append_batch([WritePayload(t, df) for t, df in fr.items()]))
            )
            if i < reps:
                add_times.append(dt_)
        self.results["add1"] = median(add_times)
        self.log(f"  add1: {fmt_times(add_times)}")
        reps5 = [per_ticker_frames(b, naive_index=True) for b in plan.rep5_batches[:reps]]
        self.time_rep5(
            reps5,
            lambda fr: check(lib.update_batch([UpdatePayload(t, df) for t, df in fr.items()])),
        )
        self.time_read1(lambda t: lib.read(t).data)

        def month(s: pd.Timestamp, e: pd.Timestamp) -> list[Any]:
            rng = (s.tz_convert(None), e.tz_convert(None))
            out = lib.read_batch([ReadRequest(t, date_range=rng) for t in data.tickers])
            return [r.data for r in out]

        self.time_month(month)
        self.notes.append("read month = read_batch, 2000 frames not concatenated (len = tickers)")


class Duck(BulkRounds):
    name = "duckdb"
    label = "duckdb (native table, PRIMARY KEY; INSERT / INSERT OR REPLACE)"

    def bulk_load(self, path: Path, form: str = "arrow") -> Any:
        import duckdb

        path.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path / "db.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        src = self.plan.bulk_frame if form == "pandas" else self.plan.data.base
        con.register("src", src)
        cols = ", ".join(f'"{c}"' for c in self.plan.data.base.column_names)
        con.execute(
            "CREATE TABLE prices (ticker VARCHAR, timestamp TIMESTAMPTZ, open DOUBLE, "
            "high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, adj_close DOUBLE, "
            "PRIMARY KEY (ticker, timestamp))"
        )
        con.execute(f"INSERT INTO prices ({cols}) SELECT {cols} FROM src")
        con.unregister("src")
        con.execute("CHECKPOINT")
        return con

    def run(self) -> None:
        plan, data = self.plan, self.plan.data
        con = self.time_bulk(self.root / "final")
        self.results["disk_fresh_mb"] = dir_mb(self.root / "final")
        cols = ", ".join(f'"{c}"' for c in data.base.column_names)

        def insert(b: Any, verb: str = "INSERT") -> None:
            con.register("b", b)
            con.execute(f"{verb} INTO prices ({cols}) SELECT {cols} FROM b")
            con.unregister("b")

        adds = [data.bars([d]) for d in plan.add_days]
        adds_pd = [user_frame(data.bars([d]), "utc") for d in plan.add_days_pd]
        self.time_writes_both("add1", adds, adds_pd, insert)
        self.time_writes_both(
            "rep5",
            plan.rep5_batches,
            plan.rep5_frames,
            lambda b: insert(b, "INSERT OR REPLACE"),
        )
        self.time_read1(lambda t: con.execute("SELECT * FROM prices WHERE ticker = ?", [t]).df())
        self.time_month(
            lambda s, e: con.execute(
                "SELECT * FROM prices WHERE timestamp BETWEEN ? AND ?", [s, e]
            ).df()
        )
        con.execute("CHECKPOINT")
        self.results["disk_after_mb"] = dir_mb(self.root / "final")
        con.close()


def dir_mb(path: Path) -> float:
    """Bytes of every file under ``path``, in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


class Tickvault(BulkRounds):
    name = "tickvault"
    label = "tickvault ParquetDB (defaults)"
    options: dict[str, Any] = {}  # noqa: RUF012

    def __init__(self, root: Path, plan: Plan, log: Callable[[str], None], **options: Any):
        super().__init__(root, plan, log)
        self.options = options
        if options:
            self.name = "tickvault[" + ",".join(f"{k}={v}" for k, v in options.items()) + "]"
            self.label = (
                "tickvault ParquetDB (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
            )

    def bulk_load(self, path: Path, form: str = "arrow") -> Any:
        from tickvault import ParquetDB

        db = ParquetDB(path, **self.options)
        db.upsert_prices(self.plan.bulk_frame if form == "pandas" else self.plan.data.base)
        return db

    def run(self) -> None:
        from tickvault import ParquetDB

        plan, data = self.plan, self.plan.data
        path = self.root / "db"
        db = self.time_bulk(path)
        db.wait_for_compaction()
        self.results["disk_fresh_mb"] = dir_mb(path)
        self.time_validation()
        adds = [data.bars([d]) for d in plan.add_days]
        adds_pd = [user_frame(data.bars([d]), "utc") for d in plan.add_days_pd]
        self.time_writes_both("add1", adds, adds_pd, db.upsert_prices)
        self.time_writes_both("rep5", plan.rep5_batches, plan.rep5_frames, db.upsert_prices)
        self.time_read1(lambda t: db.read_table(tickers=t))
        self.time_month(lambda s, e: db.read_table(start=s, end=e))
        self.time_watermarks(db, "watermarks")
        # 30 daily updates, auto compaction on, no manual compaction
        upd = []
        for d in plan.after_days:
            b = data.bars([d])
            dt_, _ = timed(lambda b=b: db.upsert_prices(b))
            upd.append(dt_)
        plan_last = plan.after_days[-1] if plan.after_days else plan.last_day
        st = db.snapshot()
        levels = [f.level for f in st._state.files.values()]
        self.log(
            f"  30 updates: median {median(upd):.4f} p90 {np.percentile(upd, 90):.4f} "
            f"max {max(upd):.4f} total {sum(upd):.2f}; files {len(levels)} "
            f"(level 0: {levels.count(0)})"
        )
        self.results["upd30_median"] = median(upd)
        self.results["upd30_max"] = max(upd)
        self.results["upd30_total"] = sum(upd)
        self.notes.append(
            f"30 daily updates (auto compaction): median {median(upd) * 1e3:.1f} ms, "
            f"max {max(upd) * 1e3:.0f} ms, total {sum(upd):.2f} s; then {len(levels)} files "
            f"({levels.count(0)} at level 0)"
        )
        self.time_read1(lambda t: db.read_table(tickers=t), key="read1_after30")
        s, e = last_month(plan_last)
        times = [timed(lambda: db.read_table(start=s, end=e))[0] for _ in range(3)]
        self.results["month_last_after30"] = median(times)
        self.log(f"  month_last_after30: {fmt_times(times)}")
        self.time_watermarks(db, "watermarks_after30")
        # maintenance: what a user's database holds once compaction has settled and files
        # no version needs are gone (vacuum with no retention)
        db.wait_for_compaction()
        db.vacuum(dry_run=False, retention=0)
        self.results["disk_after_mb"] = dir_mb(path)
        # cold open + watermarks (a fresh handle: checkpoint + log tail)
        cold = []
        for _ in range(5):
            dt_, wm = timed(lambda: ParquetDB(path, **self.options).watermarks())
            cold.append(dt_)
        assert len(wm) == len(data.tickers)
        self.results["watermarks_cold"] = median(cold)
        self.notes.append(f"watermarks() on a fresh handle: {median(cold) * 1e3:.1f} ms")
        db.close()

    def time_validation(self) -> None:
        """The CPU part of the bulk load that depends on the input form: validating the
        rows from Arrow and from the pandas frame (median of 5, alternating). Much less
        noisy than the whole load, whose file writes and fsyncs vary with the machine."""
        from tickvault.schema import PRICES

        if self.plan.bulk_frame is None:
            return
        times: dict[str, list[float]] = {"arrow": [], "pandas": []}
        for _ in range(5):
            for form, data in (("arrow", self.plan.data.base), ("pandas", self.plan.bulk_frame)):
                gc.collect()
                dt_, _ = timed(lambda data=data: PRICES.validate(data))
                times[form].append(dt_)
        a, p = median(times["arrow"]), median(times["pandas"])
        self.results["validate_arrow"], self.results["validate_pd"] = a, p
        self.log(
            f"  validate: arrow {fmt_times(times['arrow'])}, pandas {fmt_times(times['pandas'])}"
        )
        bulk = self.results.get("bulk")
        share = f" = {(p - a) / bulk:.1%} of the Arrow bulk load" if bulk else ""
        self.notes.append(
            f"validation from Arrow {a:.3f} s, from the pandas frame ({self.plan.pandas_shape}) "
            f"{p:.3f} s: the conversion adds {p - a:.3f} s{share}"
        )

    def time_watermarks(self, db: Any, key: str) -> None:
        times = []
        for _ in range(7):
            dt_, wm = timed(db.watermarks)
            times.append(dt_)
        assert len(wm) == len(self.plan.data.tickers)
        self.results[key] = median(times)
        self.log(f"  {key}: median {median(times) * 1e3:.2f} ms")


# -- report ----------------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def results_table(rows: dict[str, dict[str, Any]]) -> str:
    cols = [k for k, _ in OPS]
    lines = [
        "| system | " + " | ".join(lbl for _, lbl in OPS) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for r in rows.values():
        if r.get("unavailable"):
            lines.append(
                f"| {r['label']} | unavailable: {r['unavailable']} |" + " |" * (len(cols) - 1)
            )
            continue
        res = r["results"]
        lines.append(f"| {r['label']} | " + " | ".join(fmt(res.get(k)) for k in cols) + " |")
    return "\n".join(lines)


def goals(rows: dict[str, dict[str, Any]], tv: str = "tickvault") -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for the issue's performance goals."""

    def get(sys_: str, op: str) -> float | None:
        r = rows.get(sys_)
        if not r or r.get("unavailable"):
            return None
        return r["results"].get(op)

    out = []

    def ratio_goal(text: str, mine: float | None, other: float | None, want: str) -> None:
        # want: "faster>=X" (other/mine >= X) or "within<=X" (mine/other <= X)
        if mine is None or other is None:
            out.append((text, "n/a (not measured)", "n/a"))
            return
        kind, x = want.split(":")
        lim = float(x)
        if kind == "faster":
            r = other / mine
            out.append(
                (text, f"{fmt(mine)} s vs {fmt(other)} s = {r:.1f}x faster", verdict(r >= lim))
            )
        else:
            r = mine / other
            out.append((text, f"{fmt(mine)} s vs {fmt(other)} s = {r:.2f}x", verdict(r <= lim)))

    ratio_goal(
        "add 1 bar: >= 100x faster than naive", get(tv, "add1"), get("naive", "add1"), "faster:100"
    )
    ratio_goal(
        "add 1 bar: within 2x of deltalake append",
        get(tv, "add1"),
        get("deltalake", "add1"),
        "within:2",
    )
    ratio_goal(
        "replace last 5: >= 20x faster than deltalake merge",
        get(tv, "rep5"),
        get("deltalake", "rep5"),
        "faster:20",
    )
    ratio_goal(
        "read 1 ticker: within 1.5x of arcticdb",
        get(tv, "read1"),
        get("arcticdb", "read1"),
        "within:1.5",
    )
    ratio_goal(
        "read 1 ticker after 30 updates: within 1.5x of arcticdb",
        get(tv, "read1_after30"),
        get("arcticdb", "read1"),
        "within:1.5",
    )
    for k, lbl in (("month_mid", "middle"), ("month_last", "last")):
        ratio_goal(
            f"read one month ({lbl}), all tickers: within 1.5x of deltalake",
            get(tv, k),
            get("deltalake", k),
            "within:1.5",
        )
    ratio_goal(
        "bulk load: no slower than deltalake", get(tv, "bulk"), get("deltalake", "bulk"), "within:1"
    )
    ratio_goal(
        "bulk load from pandas: within 1.15x of the same rows as Arrow",
        get(tv, "bulk_pd"),
        get(tv, "bulk"),
        "within:1.15",
    )
    ratio_goal(
        "bulk load from pandas: no slower than deltalake from the same frame",
        get(tv, "bulk_pd"),
        get("deltalake", "bulk_pd"),
        "within:1",
    )
    ratio_goal(
        "add 1 bar from pandas: within 1.15x of Arrow",
        get(tv, "add1_pd"),
        get(tv, "add1"),
        "within:1.15",
    )
    ratio_goal(
        "replace last 5 from pandas: within 1.15x of Arrow",
        get(tv, "rep5_pd"),
        get(tv, "rep5"),
        "within:1.15",
    )
    for k in ("watermarks", "watermarks_after30"):
        w = get(tv, k)
        out.append(
            (
                f"{k}() <= 50 ms".replace("_after30()", "() after 30 updates"),
                "n/a" if w is None else f"{w * 1e3:.1f} ms",
                "n/a" if w is None else verdict(w <= 0.05),
            )
        )
    return out


def layout_goals(rows: dict[str, dict[str, Any]], tv: str) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for issue 22's daily-bar goals."""

    def get(sys_: str, op: str) -> float | None:
        r = rows.get(sys_)
        if not r or r.get("unavailable"):
            return None
        return r["results"].get(op)

    out = []
    checks = [
        ("one month, all tickers <= DuckDB", get(tv, "month_mid"), get("duckdb", "month_mid"), 1),
        (
            "last month, all tickers <= DuckDB",
            get(tv, "month_last"),
            get("duckdb", "month_last"),
            1,
        ),
        ("one ticker <= ArcticDB", get(tv, "read1"), get("arcticdb", "read1"), 1),
        (
            "bulk load from pandas <= deltalake",
            get(tv, "bulk_pd"),
            get("deltalake", "bulk_pd"),
            1,
        ),
        # the goals are for pandas input (what users pass); Arrow input alongside
        (
            "+1 bar <= 0.5x deltalake append (pandas)",
            get(tv, "add1_pd"),
            get("deltalake", "add1_pd"),
            0.5,
        ),
        ("+1 bar, Arrow input (for reference)", get(tv, "add1"), get("deltalake", "add1"), 0.5),
        (
            "replace last 5 >= 50x faster than deltalake merge (pandas)",
            get(tv, "rep5_pd"),
            get("deltalake", "rep5_pd"),
            1 / 50,
        ),
        (
            "replace last 5, Arrow input (for reference)",
            get(tv, "rep5"),
            get("deltalake", "rep5"),
            1 / 50,
        ),
        (
            "disk after updates + maintenance <= 1.1x a fresh load",
            get(tv, "disk_after_mb"),
            get(tv, "disk_fresh_mb"),
            1.1,
        ),
    ]
    for text, mine, other, lim in checks:
        if mine is None or other is None:
            out.append((text, "n/a (not measured)", "n/a"))
            continue
        r = mine / other
        # a "faster" goal (limit below 1) reads as how many times faster
        shown = f"{1 / r:.1f}x faster" if lim < 1 and r > 0 else f"{r:.2f}x"
        out.append((text, f"{fmt(mine)} vs {fmt(other)} = {shown}", verdict(r <= lim)))
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "pandas": pd.__version__, "pyarrow": pa.__version__}
    out["numpy"] = np.__version__
    for mod in ("deltalake", "duckdb", "arcticdb", "tickvault"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception as exc:
            out[mod] = f"unavailable ({type(exc).__name__}: {exc})"
    return out


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}"


# -- main ------------------------------------------------------------------------------------


SYSTEMS = ["floor", "naive", "deltalake", "duckdb", "arcticdb", "tickvault", "tickvault-nofsync"]


def parse_options(spec: str) -> dict[str, Any]:
    """``"row_group_years=3,fsync=False"`` -> {"row_group_years": 3, "fsync": False}."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--variant: expected OPT=VALUE, got {item!r}")
        value: Any = raw.strip()
        if value in ("True", "False"):
            value = value == "True"
        else:
            for conv in (int, float):
                try:
                    value = conv(value)
                    break
                except ValueError:
                    pass
        out[name.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each write op")
    ap.add_argument(
        "--bulk-repeats", type=int, default=5, help="bulk loads of floor, deltalake, tickvault"
    )
    ap.add_argument("--read-tickers", type=int, default=50)
    ap.add_argument("--updates", type=int, default=30, help="daily updates before re-reading")
    ap.add_argument("--naive-subset", type=int, default=250, help="tickers for naive replace-5")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    ap.add_argument("--tmp", default=None, help="parent folder for the databases (default /tmp)")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument(
        "--pandas-shape",
        default="us",
        choices=[*PANDAS_SHAPES, "none"],
        help="the pandas frame of the bulk load from pandas (see PANDAS_SHAPES; default: naive "
        "datetime64[us], int64 volume, str tickers); none: Arrow input only",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="OPT=VALUE[,OPT=VALUE]",
        help="one more tickvault run with these StorageOptions, e.g. row_group_years=3 "
        "(repeatable; runs after the systems above, goals reported for it too)",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_start = time.perf_counter()
    want = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(want) - set(SYSTEMS))
    if unknown:
        ap.error(f"unknown systems {unknown}; choose from {SYSTEMS}")
    log(f"machine: {machine()}")
    vers = versions()
    log("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    pandas = args.pandas_shape != "none"
    new_days = 2 * args.repeats if pandas else args.repeats  # add-1 days from Arrow and pandas
    extra = new_days + args.updates + 5
    t0 = time.perf_counter()
    data = make_data(args.tickers, args.bars, extra, seed=args.seed)
    log(
        f"data: {args.tickers} tickers x {args.bars} bars = {data.base.num_rows:,} rows, "
        f"{data.base.nbytes / 2**20:.0f} MiB in memory ({time.perf_counter() - t0:.1f} s to make)"
    )
    # add 1 bar: Arrow on the even new days, pandas on the odd ones (naive and arcticdb,
    # which take no pandas turn, skip the odd days)
    step = 2 if pandas else 1
    add_days = [data.day(step * i) for i in range(args.repeats)]
    add_days_pd = [data.day(2 * i + 1) for i in range(args.repeats)] if pandas else []
    last5 = list(data.dates[args.bars + new_days - 5 : args.bars + new_days])
    rep5 = [data.bars(last5) for _ in range(args.repeats)]
    rep5_frames = [user_frame(data.bars(last5), "utc") for _ in range(args.repeats)]
    after = [data.day(new_days + i) for i in range(args.updates)]
    t0 = time.perf_counter()
    bulk_frame = user_frame(data.base, args.pandas_shape) if pandas else None
    if bulk_frame is not None:
        log(
            f"pandas frame ({args.pandas_shape}): "
            + ", ".join(f"{c} {t}" for c, t in bulk_frame.dtypes.items())
            + f" ({time.perf_counter() - t0:.1f} s to make)"
        )
    rng = np.random.default_rng(args.seed + 1)
    read_tickers = [
        data.tickers[i]
        for i in rng.choice(len(data.tickers), min(args.read_tickers, len(data.tickers)), False)
    ]
    plan = Plan(
        data,
        args.repeats,
        add_days,
        rep5,
        after,
        read_tickers,
        args.naive_subset,
        max(1, args.bulk_repeats),
        pandas_shape=args.pandas_shape,
        bulk_frame=bulk_frame,
        add_days_pd=add_days_pd,
        rep5_frames=rep5_frames if pandas else [],
    )

    parent = Path(args.tmp or tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="tv-bench-", dir=parent))
    rows: dict[str, dict[str, Any]] = {}
    factories: dict[str, Callable[[Path], System]] = {
        "floor": lambda p: Floor(p, plan, log),
        "naive": lambda p: Naive(p, plan, log),
        "deltalake": lambda p: Delta(p, plan, log),
        "duckdb": lambda p: Duck(p, plan, log),
        "arcticdb": lambda p: Arctic(p, plan, log),
        "tickvault": lambda p: Tickvault(p, plan, log),
        "tickvault-nofsync": lambda p: Tickvault(p, plan, log, fsync=False),
    }
    order = [k for k in SYSTEMS if k in want]
    for spec in args.variant:
        opts = parse_options(spec)
        key = "tickvault[" + ",".join(f"{k}={v}" for k, v in opts.items()) + "]"
        factories[key] = lambda p, o=opts: Tickvault(p, plan, log, **o)  # type: ignore[misc]
        order.append(key)
    systems = {
        key: factories[key](work / key.replace("[", "_").replace("]", "").replace(",", "_"))
        for key in order
    }
    try:
        # bulk loads first, round-robin over the systems that support it and both input
        # forms (their order flips every round), so a drift in machine load hits every
        # system alike; without pandas the final load of each run is the last sample
        rounds = [
            k
            for k, s in systems.items()
            if isinstance(s, BulkRounds)
            and not vers.get({"deltalake": "deltalake"}.get(k, ""), "").startswith("unavailable")
        ]
        forms = ["arrow", "pandas"] if plan.bulk_frame is not None else ["arrow"]
        n_rounds = plan.bulk_repeats if len(forms) > 1 else plan.bulk_repeats - 1
        for r in range(n_rounds):
            done = []
            for key in rounds:
                for form in forms if r % 2 == 0 else forms[::-1]:
                    sysobj = systems[key]
                    scratch = sysobj.root / f"bulk-round-{r}-{form}"
                    scratch.parent.mkdir(parents=True, exist_ok=True)
                    gc.collect()
                    os.sync()
                    dt_, out = timed(lambda s=sysobj, p=scratch, f=form: s.bulk_load(p, f))
                    if hasattr(out, "close"):
                        out.close()
                    sysobj.bulk_samples[form].append(dt_)
                    shutil.rmtree(scratch, ignore_errors=True)
                    done.append(f"{key}{'' if form == 'arrow' else ' (pandas)'} {dt_:.3f}")
            log(f"bulk round {r + 1}: " + ", ".join(done))
        for key in order:
            sysobj = systems[key]
            sysobj.root.mkdir(parents=True, exist_ok=True)
            modname = {"deltalake": "deltalake", "arcticdb": "arcticdb"}.get(key)
            if modname and vers.get(modname, "").startswith("unavailable"):
                rows[key] = {"label": sysobj.label, "unavailable": vers[modname]}
                log(f"== {sysobj.label}: {vers[modname]}, skipped")
                continue
            log(f"== {sysobj.label}")
            gc.collect()
            t1 = time.perf_counter()
            try:
                sysobj.run()
            except Exception as exc:  # report and carry on with the others
                traceback.print_exc()
                sysobj.notes.append(f"FAILED: {type(exc).__name__}: {exc}")
            finally:
                sysobj.cleanup()
            log(f"   ({time.perf_counter() - t1:.1f} s)")
            rows[key] = {"label": sysobj.label, "results": sysobj.results, "notes": sysobj.notes}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = args.tickers
    log("")
    log(f"## Results: {n} tickers x {args.bars} bars, seconds (N = {n} tickers)")
    log("")
    log(results_table(rows))
    log("")
    for r in rows.values():
        for note in r.get("notes", []):
            log(f"- {r['label']}: {note}")
    tv_rows = [k for k in rows if k.startswith("tickvault")]
    all_goals = {}
    for tv in tv_rows:
        g = goals(rows, tv)
        all_goals[tv] = g
        log("")
        log(f"## Goals (issue 2) for {rows[tv]['label']}")
        log("")
        log("| goal | measured | verdict |")
        log("|---|---|---|")
        for text, measured, v in g:
            log(f"| {text} | {measured} | {v} |")
        g22 = layout_goals(rows, tv)
        all_goals[tv + " (issue 22)"] = g22
        log("")
        log(f"## Goals (issue 22, daily bars) for {rows[tv]['label']}")
        log("")
        log("| goal | measured | verdict |")
        log("|---|---|---|")
        for text, measured, v in g22:
            log(f"| {text} | {measured} | {v} |")
    log("")
    log(f"total benchmark time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "machine": machine(),
                    "versions": vers,
                    "rows": rows,
                    "goals": all_goals,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
