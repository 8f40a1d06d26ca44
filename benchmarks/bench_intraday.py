"""Minute bars (issue 22): tickvault next to deltalake, DuckDB and ArcticDB, in one process.

One generated data set: ``--tickers`` x ``--sessions`` full XNYS regular sessions (390
one-minute bars each, from :func:`tickvault.sessions.exchange_sessions`; sessions closing
early are skipped) from 2025-01-02 on, UTC timestamps, columns ticker, timestamp, open,
high, low, close, volume, vwap, trade_count (``prices_1m`` takes vwap and trade_count). The
input every system gets is a **pandas DataFrame** sorted by (ticker, timestamp), ticker as
object strings, timestamps ``datetime64[ns, UTC]``, built before any clock starts; each
system's own untimed preparation of it is listed below. Systems:

* ``floor``      one ``pq.write_table`` file of the frame (``pa.Table.from_pandas`` timed),
                 rows sorted by time (its input is the frame in (timestamp, ticker) order,
                 sorted before the clock); reads through one ``pyarrow.dataset`` with a
                 filter. Bulk load and reads only.
* ``deltalake``  partitioned by a ``date`` column (added to the frame before the clock, a
                 pandas Arrow ``date32`` column); ``write_deltalake(mode="append")`` appends,
                 ``merge`` on (date literal, ticker, timestamp) replaces; reads through one
                 ``to_pyarrow_dataset()`` with a filter (a session: its ``date`` partition);
                 maintenance ``optimize.compact()`` + ``vacuum(retention_hours=0,
                 enforce_retention_duration=False)``.
* ``duckdb``     a table with ``PRIMARY KEY (ticker, timestamp)`` in a database file; the
                 frame goes in with ``INSERT INTO bars SELECT * FROM df``, replaces with
                 ``INSERT OR REPLACE``; reads and resampling by SQL on one open connection;
                 maintenance ``CHECKPOINT``.
* ``arcticdb``   LMDB, one symbol per ticker (``write_batch`` / ``append_batch`` /
                 ``update_batch``; the frames are split by ticker, with a naive UTC index,
                 before the clock); reads with ``date_range`` (a session of all tickers:
                 ``read_batch``, the per-ticker frames not concatenated); resampling with its
                 ``QueryBuilder``; maintenance ``prune_previous_versions`` of every symbol.
* ``tickvault``  ``ParquetDB`` with default options: ``upsert_prices(df, interval="1m")``,
                 ``read_table(interval="1m", ...)`` (pandas); also from / to Arrow
                 (``upsert_prices(arrow_table)``, ``read_arrow``), reported in rows of their
                 own. SQL through ``db.to_duckdb("prices_1m", connection=con)``, called inside
                 every timed query (a new version needs a new call), made a view ``bars`` and
                 queried with ``con.execute(sql)`` like DuckDB's own table, on one connection
                 made by tickvault's own ``duckdb_connection()`` (what ``to_duckdb()`` makes
                 when given none; it keeps DuckDB's Parquet footer cache across queries); and
                 narrowed, ``to_duckdb(..., tickers=t)`` / ``(start=, end=)`` (decision 022).

Operations, in this order (each system on its own warm handle):

1. bulk load from pandas (and tickvault from Arrow), ``--bulk-repeats`` rounds round-robin
   over the systems (the order flips each round), every load into a fresh folder; the last
   round's loads are the stores the rest uses; reported as rows/s of the median.
2. one session, all tickers (the middle session); 3. one ticker, one session; 4. one
   ticker's whole history; 5. one ticker's history as 5-minute bars (SQL ``time_bucket``:
   DuckDB on its table, tickvault through ``to_duckdb()``; ArcticDB's resample; tickvault's
   own ``read_table(resample="5m")`` in a row of its own); 6. all tickers over one session
   as 1-hour bars (the same engines). Reads: ``--repeats`` rounds, one call per system per
   round, the order rotating, median reported; one-ticker reads take a different random
   ticker each round (the same for every system); one untimed warm-up call per system
   first. Row counts are checked equal across systems.
7. append one new session (390 x N rows), then replace one stored session with new values,
   ``--repeats`` times each, round-robin; after each tickvault write its background
   compaction is waited for and timed apart ("incl. compaction"), so that it never runs
   during another system's timing.
8. disk (the sum of file sizes in each store's folder) right after the bulk load, and after
   the writes of 7 plus each system's maintenance (tickvault: ``wait_for_compaction``,
   ``compact``, ``vacuum(dry_run=False, retention=0)``).
9. tickvault's write amplification: ``--appends`` new sessions appended one by one (each a
   pandas frame), automatic compaction on, then ``wait_for_compaction``. Method: every log
   entry published meanwhile (``prices_1m/_log/<version>.json``; ``core/log.py``) lists the
   files it adds with their size (``add[].bytes``, ``core/state.FileInfo``) and its
   ``operation`` (``upsert`` or ``compact``; ``core/commit.py``); appended bytes are the
   sizes the upserts add, compaction bytes the sizes the compactions add. Every size is
   checked against the file on disk (superseded files stay for the 1 h retention). Then a
   final ``compact()`` moves what is still at level 0 and its bytes are counted too (what
   the appends will eventually cost). The log's own bytes (entries, checkpoints) are
   reported apart.

The report is a markdown table (operation | each system | tickvault / best other | goal |
met?); "best other" is the best of deltalake, DuckDB and ArcticDB (the floor is shown, not
compared). The goals are issue 22's for minute bars.

Usage::

    python benchmarks/bench_intraday.py                              # 1000 x 63 = 24.6 M rows
    python benchmarks/bench_intraday.py --tickers 300 --sessions 20  # a quick view
    python benchmarks/bench_intraday.py --tickers 20 --sessions 3    # smoke (< 1 min)
    python benchmarks/bench_intraday.py --systems deltalake,tickvault --json out.json

The machine is shared: compare ratios within one run.
"""

from __future__ import annotations

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
import pyarrow.dataset as pds
import pyarrow.parquet as pq

SYSTEMS = ["floor", "deltalake", "duckdb", "arcticdb", "tickvault"]
ANCHORS = ["deltalake", "duckdb", "arcticdb"]
MINUTE_NS = 60 * 10**9
BARS = 390  # one-minute bars of a full XNYS session
COLUMNS = ["ticker", "timestamp", "open", "high", "low", "close", "volume", "vwap", "trade_count"]
FIRST_SESSION = "2025-01-02"


# -- data ------------------------------------------------------------------------------------


def full_sessions(count: int) -> np.ndarray:
    """Opens (UTC int64 ns) of the first ``count`` full-length XNYS sessions from
    ``FIRST_SESSION`` on (early closes skipped)."""
    from tickvault.sessions import exchange_sessions

    xnys = exchange_sessions("XNYS")
    first = int(np.searchsorted(xnys.labels, np.datetime64(FIRST_SESSION, "ns")))
    opens, closes = xnys.opens[first:], xnys.closes[first:]
    full = opens[(closes - opens) == BARS * MINUTE_NS]
    if len(full) < count:
        raise SystemExit(f"the XNYS calendar has only {len(full)} full sessions after 2025")
    return full[:count]


@dataclass
class Data:
    """Tickers, session opens (the base sessions, then the sessions to append) and the
    generator of bars; every frame is sorted by (ticker, timestamp)."""

    tickers: np.ndarray  # object array of str
    opens: np.ndarray  # int64 ns, base sessions first
    n_base: int
    rng: np.random.Generator = field(repr=False)

    def session(self, i: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last bar of session ``i`` (both inclusive)."""
        o = int(self.opens[i])
        return pd.Timestamp(o, tz="UTC"), pd.Timestamp(o + (BARS - 1) * MINUTE_NS, tz="UTC")

    def frame(self, sessions: list[int]) -> pd.DataFrame:
        """New bars of every ticker on ``sessions`` (random values)."""
        n_t = len(self.tickers)
        stamps = (
            self.opens[sessions][:, None] + np.arange(BARS, dtype=np.int64)[None, :] * MINUTE_NS
        ).ravel()
        per = len(stamps)
        n = n_t * per
        rng = self.rng
        close = 20.0 + 200.0 * rng.random(n)
        open_ = close * (1.0 + 0.001 * rng.standard_normal(n))
        high = np.maximum(open_, close) * (1.0 + 0.001 * rng.random(n))
        low = np.minimum(open_, close) * (1.0 - 0.001 * rng.random(n))
        ts = pd.DatetimeIndex(np.tile(stamps, n_t).view("datetime64[ns]")).tz_localize("UTC")
        return pd.DataFrame(
            {
                "ticker": np.repeat(self.tickers, per),
                "timestamp": ts,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": np.floor(1.0 + 5000.0 * rng.random(n)),
                "vwap": low + (high - low) * rng.random(n),
                "trade_count": rng.integers(1, 100, n),
            }
        )


def make_data(n_tickers: int, n_sessions: int, extra: int, seed: int) -> Data:
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)], dtype=object)
    return Data(tickers, full_sessions(n_sessions + extra), n_sessions, np.random.default_rng(seed))


def arrow_of(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def time_major(df: pd.DataFrame, n_tickers: int) -> pd.DataFrame:
    """The rows of a (ticker, timestamp)-sorted frame of equal-length tickers in (timestamp,
    ticker) order."""
    per = len(df) // n_tickers
    order = np.arange(len(df)).reshape(n_tickers, per).T.ravel()
    return df.take(order).reset_index(drop=True)


def with_date(df: pd.DataFrame) -> pd.DataFrame:
    """The frame plus deltalake's partition column (shares the frame's columns)."""
    out = df.copy(deep=False)
    days = df["timestamp"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    out["date"] = pd.array(pa.array(days, pa.date32()), dtype=pd.ArrowDtype(pa.date32()))
    return out


def by_ticker(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per ticker with a naive UTC DatetimeIndex (ArcticDB's input)."""
    idx = pd.DatetimeIndex(df["timestamp"].dt.tz_convert(None))
    body = df.drop(columns=["ticker", "timestamp"]).set_index(idx)
    tick = df["ticker"].to_numpy()
    cuts = np.flatnonzero(tick[1:] != tick[:-1]) + 1
    starts = [0, *cuts.tolist()]
    ends = [*cuts.tolist(), len(df)]
    return {tick[a]: body.iloc[a:b] for a, b in zip(starts, ends, strict=True)}


# -- helpers ---------------------------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds ``fn(*args, **kwargs)`` took, and what it returned."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def n_rows(result: Any) -> int:
    if isinstance(result, list):  # ArcticDB's read_batch: one frame per ticker
        return sum(len(r) for r in result)
    return len(result)


def resample_sql(width: str, where: str) -> str:
    """OHLCV(+vwap, trade_count) bars of ``width`` from the view ``bars``."""
    return f"""
        SELECT ticker, time_bucket(INTERVAL '{width}', timestamp) AS timestamp,
               arg_min(open, timestamp) AS open, max(high) AS high, min(low) AS low,
               arg_max(close, timestamp) AS close, sum(volume) AS volume,
               sum(vwap * volume) / sum(volume) AS vwap, sum(trade_count) AS trade_count
        FROM bars WHERE {where} GROUP BY ALL ORDER BY ticker, timestamp
    """


def lit(ts: pd.Timestamp) -> str:
    return f"'{ts.isoformat()}'::TIMESTAMPTZ"


# -- systems ---------------------------------------------------------------------------------


class System:
    """One store. ``load`` fills a new store from the prepared input; the read and write
    methods act on the kept one (``self.path``). A method left out is not measured."""

    name = "?"

    def __init__(self, root: Path, data: Data, bulk: pd.DataFrame) -> None:
        self.root = root
        self.data = data
        self.path = root / "store"
        self.prepare(bulk)

    def prepare(self, bulk: pd.DataFrame) -> None:
        """Untimed: turn the bulk frame into this system's input."""

    def forms(self) -> list[str]:
        return ["pandas"]

    def load(self, path: Path, form: str) -> None:
        raise NotImplementedError

    def open(self) -> None:
        """Open the kept store (after the last bulk round)."""

    def prepare_write(self, df: pd.DataFrame) -> Any:
        """Untimed: a write's frame as this system's input."""
        return df

    def close(self) -> None:
        pass


class Floor(System):
    name = "floor"

    def prepare(self, bulk: pd.DataFrame) -> None:
        self.input = time_major(bulk, len(self.data.tickers))

    def load(self, path: Path, form: str) -> None:
        path.mkdir(parents=True)
        pq.write_table(arrow_of(self.input), path / "bars.parquet")

    def open(self) -> None:
        del self.input
        self.ds = pds.dataset(self.path / "bars.parquet")
        self.ts_type = self.ds.schema.field("timestamp").type

    def _read(self, flt: pc.Expression) -> pd.DataFrame:
        return self.ds.to_table(filter=flt).to_pandas()

    def _span(self, a: pd.Timestamp, b: pd.Timestamp) -> pc.Expression:
        ts = pc.field("timestamp")
        return (ts >= pa.scalar(a, self.ts_type)) & (ts <= pa.scalar(b, self.ts_type))

    def read_session(self, s: int) -> Any:
        return self._read(self._span(*self.data.session(s)))

    def read_ticker_session(self, t: str, s: int) -> Any:
        return self._read(self._span(*self.data.session(s)) & (pc.field("ticker") == t))

    def read_ticker(self, t: str) -> Any:
        return self._read(pc.field("ticker") == t)


class Delta(System):
    name = "deltalake"

    def prepare(self, bulk: pd.DataFrame) -> None:
        self.input = with_date(bulk)

    def load(self, path: Path, form: str) -> None:
        import deltalake

        deltalake.write_deltalake(str(path), self.input, partition_by=["date"])

    def open(self) -> None:
        import deltalake

        del self.input
        self.table = deltalake.DeltaTable(str(self.path))
        self.ds = self.table.to_pyarrow_dataset()

    def prepare_write(self, df: pd.DataFrame) -> Any:
        return with_date(df)

    def _read(self, flt: pc.Expression) -> pd.DataFrame:
        return self.ds.to_table(filter=flt).to_pandas()

    def _date(self, s: int) -> pc.Expression:
        return pc.field("date") == pa.scalar(self.data.session(s)[0].date(), pa.date32())

    def read_session(self, s: int) -> Any:
        return self._read(self._date(s))

    def read_ticker_session(self, t: str, s: int) -> Any:
        return self._read(self._date(s) & (pc.field("ticker") == t))

    def read_ticker(self, t: str) -> Any:
        return self._read(pc.field("ticker") == t)

    def append(self, df: pd.DataFrame) -> None:
        import deltalake

        deltalake.write_deltalake(self.table, df, mode="append", partition_by=["date"])

    def replace(self, df: pd.DataFrame) -> None:
        day = df["date"].iloc[0]
        (
            self.table.merge(
                source=df,
                predicate=f"t.date = '{day}' AND t.ticker = s.ticker AND t.timestamp = s.timestamp",
                source_alias="s",
                target_alias="t",
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def maintain(self) -> None:
        self.table.optimize.compact()
        self.table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)


class Duck(System):
    name = "duckdb"
    CREATE = """CREATE TABLE bars (ticker VARCHAR, timestamp TIMESTAMPTZ, open DOUBLE,
        high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT,
        PRIMARY KEY (ticker, timestamp))"""

    def prepare(self, bulk: pd.DataFrame) -> None:
        self.input = bulk

    def _connect(self, path: Path) -> Any:
        import duckdb

        con = duckdb.connect(str(path / "bars.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        return con

    def load(self, path: Path, form: str) -> None:
        path.mkdir(parents=True)
        con = self._connect(path)
        con.execute(self.CREATE)
        df = self.input  # noqa: F841  (DuckDB scans the frame by its name)
        con.execute("INSERT INTO bars SELECT * FROM df")
        if path == self.path:
            self.con = con
        else:
            con.close()

    def open(self) -> None:
        del self.input

    def _df(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def _span(self, s: int) -> str:
        a, b = self.data.session(s)
        return f"timestamp BETWEEN {lit(a)} AND {lit(b)}"

    def read_session(self, s: int) -> Any:
        return self._df(f"SELECT * FROM bars WHERE {self._span(s)}")

    def read_ticker_session(self, t: str, s: int) -> Any:
        return self._df(f"SELECT * FROM bars WHERE ticker = '{t}' AND {self._span(s)}")

    def read_ticker(self, t: str) -> Any:
        return self._df(f"SELECT * FROM bars WHERE ticker = '{t}'")

    def bars_5m(self, t: str) -> Any:
        return self._df(resample_sql("5 minutes", f"ticker = '{t}'"))

    def bars_1h(self, s: int) -> Any:
        return self._df(resample_sql("1 hour", self._span(s)))

    def append(self, df: pd.DataFrame) -> None:
        self.con.execute("INSERT INTO bars SELECT * FROM df")

    def replace(self, df: pd.DataFrame) -> None:
        self.con.execute("INSERT OR REPLACE INTO bars SELECT * FROM df")

    def maintain(self) -> None:
        self.con.execute("CHECKPOINT")

    def close(self) -> None:
        if hasattr(self, "con"):
            self.con.close()


class Arctic(System):
    name = "arcticdb"

    def prepare(self, bulk: pd.DataFrame) -> None:
        self.input = by_ticker(bulk)

    def _library(self, path: Path) -> Any:
        import arcticdb

        ac = arcticdb.Arctic(f"lmdb://{path}?map_size=64GB")
        return ac.get_library("bars", create_if_missing=True)

    @staticmethod
    def _check(results: list[Any]) -> None:
        bad = [r for r in results if not hasattr(r, "version")]
        if bad:
            raise RuntimeError(f"arcticdb batch errors: {bad[:2]}")

    def load(self, path: Path, form: str) -> None:
        from arcticdb import WritePayload

        lib = self._library(path)
        self._check(lib.write_batch([WritePayload(t, f) for t, f in self.input.items()]))
        if path == self.path:
            self.lib = lib

    def open(self) -> None:
        del self.input

    def prepare_write(self, df: pd.DataFrame) -> Any:
        return by_ticker(df)

    def _range(self, s: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        a, b = self.data.session(s)
        return a.tz_convert(None), b.tz_convert(None)

    def read_session(self, s: int) -> Any:
        from arcticdb import ReadRequest

        rng = self._range(s)
        out = self.lib.read_batch([ReadRequest(t, date_range=rng) for t in self.data.tickers])
        return [r.data for r in out]

    def read_ticker_session(self, t: str, s: int) -> Any:
        return self.lib.read(t, date_range=self._range(s)).data

    def read_ticker(self, t: str) -> Any:
        return self.lib.read(t).data

    @staticmethod
    def _resampler(rule: str) -> Any:
        from arcticdb import QueryBuilder

        q = QueryBuilder()
        q = q.apply("pv", q["vwap"] * q["volume"])
        aggs = {"open": "first", "high": "max", "low": "min", "close": "last"}
        aggs.update(volume="sum", pv="sum", trade_count="sum")
        return q.resample(rule).agg(aggs)

    @staticmethod
    def _vwap(df: pd.DataFrame) -> pd.DataFrame:
        df["vwap"] = df.pop("pv") / df["volume"]
        return df

    def bars_5m(self, t: str) -> Any:
        return self._vwap(self.lib.read(t, query_builder=self._resampler("5min")).data)

    def bars_1h(self, s: int) -> Any:
        from arcticdb import ReadRequest

        q, rng = self._resampler("1h"), self._range(s)
        reqs = [ReadRequest(t, date_range=rng, query_builder=q) for t in self.data.tickers]
        return [self._vwap(r.data) for r in self.lib.read_batch(reqs)]

    def append(self, frames: dict[str, pd.DataFrame]) -> None:
        from arcticdb import WritePayload

        self._check(self.lib.append_batch([WritePayload(t, f) for t, f in frames.items()]))

    def replace(self, frames: dict[str, pd.DataFrame]) -> None:
        from arcticdb import UpdatePayload

        self._check(self.lib.update_batch([UpdatePayload(t, f) for t, f in frames.items()]))

    def maintain(self) -> None:
        for t in self.data.tickers:
            self.lib.prune_previous_versions(t)


class Tickvault(System):
    name = "tickvault"
    TABLE = "prices_1m"
    bulk_version = -1

    def prepare(self, bulk: pd.DataFrame) -> None:
        self.input = bulk
        self.arrow = arrow_of(bulk)

    def forms(self) -> list[str]:
        return ["pandas", "arrow"]

    def load(self, path: Path, form: str) -> None:
        from tickvault import ParquetDB

        db = ParquetDB(path)
        db.upsert_prices(self.input if form == "pandas" else self.arrow, interval="1m")
        if path == self.path:
            self.db = db
        else:
            db.close()

    def open(self) -> None:
        from tickvault.storage.readers.engines import duckdb_connection

        del self.input, self.arrow
        self.con = duckdb_connection()  # what to_duckdb() makes when given no connection

    def _read(self, **kw: Any) -> pd.DataFrame:
        return self.db.read_table("prices", interval="1m", **kw)

    def _read_arrow(self, **kw: Any) -> pa.Table:
        return self.db.read_arrow("prices", interval="1m", **kw)

    def read_session(self, s: int) -> Any:
        a, b = self.data.session(s)
        return self._read(start=a, end=b)

    def read_ticker_session(self, t: str, s: int) -> Any:
        a, b = self.data.session(s)
        return self._read(tickers=t, start=a, end=b)

    def read_ticker(self, t: str) -> Any:
        return self._read(tickers=t)

    def read_session_arrow(self, s: int) -> Any:
        a, b = self.data.session(s)
        return self._read_arrow(start=a, end=b)

    def read_ticker_session_arrow(self, t: str, s: int) -> Any:
        a, b = self.data.session(s)
        return self._read_arrow(tickers=t, start=a, end=b)

    def read_ticker_arrow(self, t: str) -> Any:
        return self._read_arrow(tickers=t)

    def _sql(self, sql: str, **narrow: Any) -> pd.DataFrame:
        # the relation as a view, the query through the connection: the same entry point
        # as DuckDB's own table (``rel.query("bars", sql)`` costs ~2 ms more per call)
        self.db.to_duckdb(self.TABLE, connection=self.con, **narrow).create_view(
            "bars", replace=True
        )
        return self.con.execute(sql).df()

    def bars_5m(self, t: str) -> Any:
        return self._sql(resample_sql("5 minutes", f"ticker = '{t}'"))

    def bars_1h(self, s: int) -> Any:
        a, b = self.data.session(s)
        return self._sql(resample_sql("1 hour", f"timestamp BETWEEN {lit(a)} AND {lit(b)}"))

    def bars_5m_narrow(self, t: str) -> Any:
        return self._sql(resample_sql("5 minutes", f"ticker = '{t}'"), tickers=t)

    def bars_1h_narrow(self, s: int) -> Any:
        a, b = self.data.session(s)
        where = f"timestamp BETWEEN {lit(a)} AND {lit(b)}"
        return self._sql(resample_sql("1 hour", where), start=a, end=b)

    def bars_5m_own(self, t: str) -> Any:
        return self._read(tickers=t, resample="5m")

    def bars_1h_own(self, s: int) -> Any:
        a, b = self.data.session(s)
        return self._read(start=a, end=b, resample="1h")

    def open_duckdb(self) -> Any:
        return self.db.to_duckdb(self.TABLE, connection=self.con)

    def append(self, df: pd.DataFrame) -> None:
        self.db.upsert_prices(df, interval="1m")

    replace = append

    def settle(self) -> None:
        self.db.wait_for_compaction(self.TABLE)

    def maintain(self) -> None:
        self.db.wait_for_compaction(self.TABLE)
        self.db.compact(self.TABLE)
        self.db.vacuum(dry_run=False, retention=0, table=self.TABLE)

    def close(self) -> None:
        if hasattr(self, "db"):
            self.db.close()


# -- the run ---------------------------------------------------------------------------------

#: (result key, method, argument kind, label); reads and resampling, tickvault's extra
#: variants under keys of their own
READS = [
    ("session", "read_session", "session", "one session, all tickers"),
    ("session_arrow", "read_session_arrow", "session", "one session, all tickers"),
    ("ticker_session", "read_ticker_session", "ticker_session", "one ticker, one session"),
    ("ticker_session_arrow", "read_ticker_session_arrow", "ticker_session", "1 ticker, 1 day"),
    ("ticker", "read_ticker", "ticker", "one ticker, whole history"),
    ("ticker_arrow", "read_ticker_arrow", "ticker", "one ticker, whole history"),
    ("bars_5m", "bars_5m", "ticker", "one ticker's history -> 5m bars"),
    ("bars_5m_narrow", "bars_5m_narrow", "ticker", "one ticker's history -> 5m bars"),
    ("bars_5m_own", "bars_5m_own", "ticker", "one ticker's history -> 5m bars"),
    ("bars_1h", "bars_1h", "session", "all tickers, one session -> 1h bars"),
    ("bars_1h_narrow", "bars_1h_narrow", "session", "all tickers, one session -> 1h bars"),
    ("bars_1h_own", "bars_1h_own", "session", "all tickers, one session -> 1h bars"),
    ("open_duckdb", "open_duckdb", "none", "to_duckdb() alone"),
]


@dataclass
class Run:
    data: Data
    systems: dict[str, System]
    repeats: int
    log: Callable[[str], None]
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, key: str, system: str, value: float) -> None:
        self.results.setdefault(key, {})[system] = value

    def rotated(self, r: int) -> list[System]:
        order = list(self.systems.values())
        k = r % len(order) if order else 0
        return order[k:] + order[:k]

    def guarded(self, s: System, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``timed(fn, *args)``; None, with a note, if it raised."""
        try:
            return timed(fn, *args)
        except Exception as exc:
            traceback.print_exc()
            self.notes.append(f"{s.name} {what} FAILED: {type(exc).__name__}: {exc}")
            return None

    # 1 -----------------------------------------------------------------------------------
    def bulk(self, rounds: int) -> None:
        samples: dict[tuple[str, str], list[float]] = {}
        for r in range(rounds):
            done = []
            order = list(self.systems.values())
            for s in order if r % 2 == 0 else order[::-1]:
                for form in s.forms():
                    keep = r == rounds - 1 and form == "pandas"
                    path = s.path if keep else s.root / f"round-{r}-{form}"
                    gc.collect()
                    os.sync()
                    done_in = self.guarded(s, "bulk load", s.load, path, form)
                    if not keep:
                        shutil.rmtree(path, ignore_errors=True)
                    if done_in is not None:
                        dt_ = done_in[0]
                        samples.setdefault((s.name, form), []).append(dt_)
                        done.append(f"{s.name}{'' if form == 'pandas' else ' (arrow)'} {dt_:.2f}")
            self.log(f"bulk round {r + 1}: " + ", ".join(done))
        n = len(self.data.tickers) * self.data.n_base * BARS
        for (name, form), xs in samples.items():
            key = "bulk" if form == "pandas" else "bulk_arrow"
            self.put(key, name, n / median(xs))
            self.put(key + "_s", name, median(xs))
        for s in self.systems.values():
            s.open()
            if isinstance(s, Tickvault) and hasattr(s, "db"):
                s.bulk_version = s.db.table_version(Tickvault.TABLE)
            if s.path.exists():
                self.put("disk_bulk", s.name, folder_bytes(s.path))

    # 2-6 ---------------------------------------------------------------------------------
    def reads(self, read_tickers: list[str]) -> None:
        mid = self.data.n_base // 2
        first = str(self.data.tickers[0])
        for key, method, kind, _ in READS:
            # the warm-up reads another session and ticker than the timed ones
            warm = {"session": (mid - 1,), "ticker": (first,), "ticker_session": (first, mid - 1)}
            args = [
                {"session": (mid,), "ticker": (t,), "ticker_session": (t, mid)}.get(kind, ())
                for t in (read_tickers[r % len(read_tickers)] for r in range(self.repeats))
            ]
            self.read_op(key, method, warm.get(kind, ()), args)

    def read_op(
        self, key: str, method: str, warm: tuple[Any, ...], args: list[tuple[Any, ...]]
    ) -> None:
        """``method(*args[r])`` in round r on every system that has it, the order rotating;
        one untimed ``method(*warm)`` each first."""
        calls = {s.name: getattr(s, method) for s in self.systems.values() if hasattr(s, method)}
        if not calls:
            return
        for s in self.systems.values():
            if s.name in calls and self.guarded(s, key, calls[s.name], *warm) is None:
                del calls[s.name]
        times: dict[str, list[float]] = {}
        for r, a in enumerate(args):
            for s in self.rotated(r):
                if s.name in calls:
                    dt_, out = timed(calls[s.name], *a)
                    times.setdefault(s.name, []).append(dt_)
                    self.rows.setdefault(key, {})[s.name] = n_rows(out)
        for name, xs in times.items():
            self.put(key, name, median(xs))
        self.log(
            f"{key}: "
            + ", ".join(f"{n} {median(xs) * 1e3:.1f} ms" for n, xs in times.items())
            + f"; rows {self.rows.get(key)}"
        )

    # 7 -----------------------------------------------------------------------------------
    def writes(self, new_sessions: list[int], replaced: list[int]) -> None:
        for key, sessions in (("append", new_sessions), ("replace", replaced)):
            self.write_op(key, sessions)

    def write_op(self, key: str, sessions: list[int]) -> None:
        """``key`` (append or replace) of one session's new bars, ``sessions[r]`` in round
        r, on every system that has it, the order rotating; tickvault's compaction is waited
        for after each of its writes (timed apart)."""
        calls = {s.name: getattr(s, key) for s in self.systems.values() if hasattr(s, key)}
        frames = [self.data.frame([i]) for i in sessions]
        inputs = {s.name: [s.prepare_write(f) for f in frames] for s in self.systems.values()}
        del frames
        times: dict[str, list[float]] = {}
        settle: list[float] = []
        for r in range(len(sessions)):
            for s in self.rotated(r):
                if s.name not in calls:
                    continue
                gc.collect()
                done_in = self.guarded(s, key, calls[s.name], inputs[s.name][r])
                if done_in is None:
                    continue
                t = done_in[0]
                times.setdefault(s.name, []).append(t)
                if isinstance(s, Tickvault):  # never let it run in another's timing
                    wait, _ = timed(s.settle)
                    settle.append(t + wait)
        for name, xs in times.items():
            self.put(key, name, median(xs))
        if settle:
            self.put(key + "_settled", "tickvault", median(settle))
        self.log(
            f"{key}: "
            + ", ".join(f"{n} {median(xs) * 1e3:.0f} ms" for n, xs in times.items())
            + (f"; tickvault incl. compaction {median(settle) * 1e3:.0f} ms" if settle else "")
        )

    # 8 -----------------------------------------------------------------------------------
    def maintenance(self) -> None:
        for s in self.systems.values():
            if not hasattr(s, "append"):  # the floor: bulk load only
                continue
            if s.path.exists():
                self.put("disk_writes", s.name, folder_bytes(s.path))
            if hasattr(s, "maintain"):
                done_in = self.guarded(s, "maintenance", s.maintain)
                if done_in is not None:
                    self.put("maintain_s", s.name, done_in[0])
            if s.path.exists():
                self.put("disk_maintained", s.name, folder_bytes(s.path))
            if isinstance(s, Tickvault):
                self.tickvault_upkeep(s)
        self.log(f"disk: {self.results.get('disk_maintained')}")

    def tickvault_upkeep(self, tv: Tickvault) -> None:
        """What compaction wrote for the writes of 7 (appends and replaces) up to the end
        of maintenance, and where tickvault's bytes on disk are."""
        table_dir = tv.path / Tickvault.TABLE
        v = tv.db.table_version(Tickvault.TABLE)
        b = log_bytes(table_dir, tv.bulk_version, v)
        logs = folder_bytes(table_dir / "_log")
        self.notes.append(
            f"tickvault, the writes of 7 and maintenance (versions {tv.bulk_version} -> {v}): "
            f"upserts added {mb(b['upsert'])} in {b['upsert_files']} files, compaction wrote "
            f"{mb(b['compact'])} in {b['compact_files']} files ({b['gone']} of the files since "
            f"vacuumed); after maintenance the table folder holds "
            f"{mb(folder_bytes(table_dir) - logs)} of data files and {mb(logs)} of log"
        )
        self.log(self.notes[-1])

    # 9 -----------------------------------------------------------------------------------
    def amplification(self, tv: Tickvault, sessions: list[int]) -> None:
        db, table = tv.db, Tickvault.TABLE
        frames = [self.data.frame([i]) for i in sessions]
        v0 = db.table_version(table)
        calls = []
        for df in frames:
            dt_, _ = timed(db.upsert_prices, df, interval="1m")
            calls.append(dt_)
        wait, _ = timed(db.wait_for_compaction, table)
        v1 = db.table_version(table)
        after_wait = log_bytes(Path(db.path) / table, v0, v1)
        final, _ = timed(db.compact, table)
        v2 = db.table_version(table)
        total = log_bytes(Path(db.path) / table, v0, v2)
        app = total["upsert"]
        self.put("amp", "tickvault", after_wait["compact"] / app if app else 0.0)
        self.put("amp_final", "tickvault", total["compact"] / app if app else 0.0)
        self.put("amp_append_s", "tickvault", median(calls))
        self.put("amp_append_max_s", "tickvault", max(calls))
        self.put("amp_wait_s", "tickvault", wait)
        self.put("amp_final_compact_s", "tickvault", final)
        for k, v in total.items():
            self.put(f"amp_{k}_bytes", "tickvault", v)
        self.put("amp_compact_bytes_after_wait", "tickvault", after_wait["compact"])
        self.notes.append(
            f"write amplification: {len(sessions)} appends (median {median(calls) * 1e3:.0f} "
            f"ms, max {max(calls) * 1e3:.0f} ms) added {mb(app)} in {total['upsert_files']} "
            f"files; compaction wrote {mb(after_wait['compact'])} by the end of "
            f"wait_for_compaction ({wait:.2f} s) and {mb(total['compact'])} after a final "
            f"compact() ({final:.2f} s); the log wrote {mb(total['log'])} "
            f"({total['log_files']} entries and checkpoints); "
            f"versions {v0} -> {v1} -> {v2}; sizes in the log vs on disk: "
            f"{total['mismatch']} mismatches, {total['gone']} files gone"
        )
        self.log(self.notes[-1])


def log_bytes(table_dir: Path, v0: int, v1: int) -> dict[str, int]:
    """Bytes the log entries ``v0+1 .. v1`` of a table add, by operation (``upsert``,
    ``compact``, ...), each size checked against the file on disk; and the log's own bytes
    (entries and checkpoints of those versions)."""
    out: dict[str, int] = {"upsert": 0, "compact": 0, "log": 0, "log_files": 0}
    out.update(upsert_files=0, compact_files=0, mismatch=0, gone=0)
    logdir = table_dir / "_log"
    for v in range(v0 + 1, v1 + 1):
        entry_path = logdir / f"{v:020d}.json"
        entry = json.loads(entry_path.read_text())
        op = str(entry.get("operation"))
        out["log"] += entry_path.stat().st_size
        out["log_files"] += 1
        checkpoint = logdir / f"{v:020d}.checkpoint.json"
        if checkpoint.exists():
            out["log"] += checkpoint.stat().st_size
            out["log_files"] += 1
        for f in entry.get("add", []):
            out[op] = out.get(op, 0) + int(f["bytes"])
            out[op + "_files"] = out.get(op + "_files", 0) + 1
            on_disk = table_dir / f["path"]
            if not on_disk.exists():
                out["gone"] += 1  # vacuumed (superseded by a later compaction)
            elif on_disk.stat().st_size != int(f["bytes"]):
                out["mismatch"] += 1
    return out


# -- report ----------------------------------------------------------------------------------


def mb(x: float) -> str:
    return f"{x / 1e6:.1f} MB"


def fmt_s(x: float) -> str:
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 1:
        return f"{x:.2f} s"
    ms = x * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M rows/s"


@dataclass
class Row:
    label: str
    key: str  # the systems' results
    unit: str  # "s", "rate", "bytes", "x"
    tv_key: str | None = None  # tickvault's value from another key (a variant)
    goal: str = ""
    #: the goal's anchor (a system) and limit: tickvault <= limit x anchor ("s", "bytes";
    #: tickvault >= anchor / limit for "rate"); "value" compares tickvault's own value
    anchor: str | None = None
    limit: float = 1.0


ROWS = [
    Row("bulk load from pandas", "bulk", "rate", None, "≥ ArcticDB's rate", "arcticdb"),
    Row("bulk load, tickvault from Arrow", "bulk", "rate", "bulk_arrow"),
    Row("one session, all tickers", "session", "s", None, "≤ deltalake", "deltalake"),
    Row("... tickvault read_arrow", "session", "s", "session_arrow"),
    Row("one ticker, one session", "ticker_session", "s", None, "≤ DuckDB", "duckdb"),
    Row("... tickvault read_arrow", "ticker_session", "s", "ticker_session_arrow"),
    Row("one ticker, whole history", "ticker", "s", None, "≤ ArcticDB", "arcticdb"),
    Row("... tickvault read_arrow", "ticker", "s", "ticker_arrow"),
    Row(
        "one ticker's history → 5m bars (SQL time_bucket; tickvault via to_duckdb())",
        "bars_5m",
        "s",
        None,
        "≤ 2× DuckDB",
        "duckdb",
        2.0,
    ),
    Row(
        "... tickvault via to_duckdb(tickers=t)",
        "bars_5m",
        "s",
        "bars_5m_narrow",
        "≤ 2× DuckDB",
        "duckdb",
        2.0,
    ),
    Row("... tickvault read_table(resample='5m')", "bars_5m", "s", "bars_5m_own"),
    Row(
        "all tickers, one session → 1h bars (SQL; tickvault via to_duckdb())",
        "bars_1h",
        "s",
        None,
        "≤ 2× DuckDB",
        "duckdb",
        2.0,
    ),
    Row(
        "... tickvault via to_duckdb(start=, end=)",
        "bars_1h",
        "s",
        "bars_1h_narrow",
        "≤ 2× DuckDB",
        "duckdb",
        2.0,
    ),
    Row("... tickvault read_table(resample='1h')", "bars_1h", "s", "bars_1h_own"),
    Row("... tickvault to_duckdb() call alone", "open_duckdb", "s"),
    Row("append one session", "append", "s", None, "≤ deltalake", "deltalake"),
    Row("... tickvault incl. its compaction", "append", "s", "append_settled"),
    Row("replace one session", "replace", "s", None, "≤ deltalake", "deltalake"),
    Row("... tickvault incl. its compaction", "replace", "s", "replace_settled"),
    Row("disk after bulk load", "disk_bulk", "bytes"),
    Row("disk after the writes of 7", "disk_writes", "bytes"),
    Row("disk after maintenance", "disk_maintained", "bytes", None, "≤ deltalake", "deltalake"),
    Row("maintenance time", "maintain_s", "s"),
    Row(
        "compaction bytes / appended bytes ({appends} appends)",
        "amp",
        "x",
        None,
        "≤ 1.2×",
        "value",
        1.2,
    ),
    Row("... after a final compact()", "amp_final", "x"),
]


def cell(x: float | None, unit: str) -> str:
    if x is None:
        return "–"
    return {"s": fmt_s, "rate": fmt_rate, "bytes": mb, "x": lambda v: f"{v:.2f}×"}[unit](x)


def report(run: Run, names: list[str], appends: int) -> tuple[str, list[dict[str, Any]]]:
    res = run.results
    head = "| operation | " + " | ".join(names) + " | tickvault / best other | goal | met? |"
    lines = [head, "|---|" + "---|" * (len(names) + 3)]
    verdicts = []
    for row in ROWS:
        label = row.label.format(appends=appends)
        vals = dict(res.get(row.key, {}))
        if row.tv_key is not None:  # a tickvault variant next to the others' same operation
            vals.pop("tickvault", None)
            if "tickvault" in res.get(row.tv_key, {}):
                vals["tickvault"] = res[row.tv_key]["tickvault"]
        if not vals:
            continue
        tv = vals.get("tickvault")
        others = {k: v for k, v in vals.items() if k in ANCHORS}
        ratio = "–"
        if tv is not None and others and row.unit != "x":
            if row.unit == "rate":
                best = max(others, key=lambda k: others[k])
                ratio = f"{others[best] / tv:.2f}× ({best})"
            else:
                best = min(others, key=lambda k: others[k])
                ratio = f"{tv / others[best]:.2f}× ({best})" if others[best] else "–"
        met = ""
        if row.goal:
            ok: bool | None = None
            if tv is not None and row.anchor == "value":
                ok = tv <= row.limit
            elif tv is not None and row.anchor in vals:
                a = vals[row.anchor]
                ok = tv >= a / row.limit if row.unit == "rate" else tv <= row.limit * a
            met = "n/a" if ok is None else "✓" if ok else "✗"
            verdicts.append({"operation": label, "goal": row.goal, "met": ok})
        cells = [cell(vals.get(n), row.unit) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {row.goal} | {met} |")
    return "\n".join(lines), verdicts


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "pandas": pd.__version__, "pyarrow": pa.__version__}
    for mod in ("deltalake", "duckdb", "arcticdb", "tickvault"):
        try:
            out[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception as exc:
            out[mod] = f"unavailable ({type(exc).__name__})"
    return out


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{os.cpu_count()} cores ({cpu}), load average {load}"


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickers", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=63, help="sessions bulk-loaded")
    ap.add_argument("--appends", type=int, default=20, help="sessions appended for item 9")
    ap.add_argument("--repeats", type=int, default=5, help="reads and writes per system")
    ap.add_argument("--bulk-repeats", type=int, default=3, help="bulk-load rounds")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    ap.add_argument("--tmp", default=None, help="parent folder of the stores (default /tmp)")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    ap.add_argument("--seed", type=int, default=22)
    args = ap.parse_args(argv)
    want = [s.strip() for s in args.systems.split(",") if s.strip()]
    if set(want) - set(SYSTEMS):
        ap.error(f"unknown systems {sorted(set(want) - set(SYSTEMS))}; choose from {SYSTEMS}")
    if args.sessions < 3:
        ap.error("--sessions must be at least 3")

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_start = time.perf_counter()
    vers = versions()
    log(f"machine: {machine()}")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    data = make_data(args.tickers, args.sessions, args.repeats + args.appends, args.seed)
    t0 = time.perf_counter()
    bulk = data.frame(list(range(args.sessions)))
    log(
        f"data: {args.tickers} tickers x {args.sessions} sessions x {BARS} = {len(bulk):,} rows "
        f"({bulk.memory_usage(deep=False).sum() / 2**20:.0f} MiB as pandas, "
        f"{time.perf_counter() - t0:.1f} s to make); sessions "
        f"{data.session(0)[0].date()} .. {data.session(len(data.opens) - 1)[0].date()}"
    )
    parent = Path(args.tmp or tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="tv-intraday-", dir=parent))
    classes: dict[str, type[System]] = {
        "floor": Floor,
        "deltalake": Delta,
        "duckdb": Duck,
        "arcticdb": Arctic,
        "tickvault": Tickvault,
    }
    systems: dict[str, System] = {}
    for name in [s for s in SYSTEMS if s in want]:
        mod = {"deltalake": "deltalake", "duckdb": "duckdb", "arcticdb": "arcticdb"}.get(name)
        if mod and vers[mod].startswith("unavailable"):
            log(f"{name}: {vers[mod]}, skipped")
            continue
        t0 = time.perf_counter()
        (work / name).mkdir()
        systems[name] = classes[name](work / name, data, bulk)
        log(f"{name}: input prepared in {time.perf_counter() - t0:.1f} s")
    del bulk
    gc.collect()
    run = Run(data, systems, args.repeats, log)
    rng = np.random.default_rng(args.seed + 1)
    read_tickers = [str(t) for t in rng.choice(data.tickers, args.repeats, replace=False)]
    base = args.sessions
    new_sessions = list(range(base, base + args.repeats))
    replaced = [base // 3 + i % max(1, base // 3) for i in range(args.repeats)]
    try:
        run.bulk(max(1, args.bulk_repeats))
        run.reads(read_tickers)
        run.writes(new_sessions, replaced)
        run.maintenance()
        tv = systems.get("tickvault")
        if isinstance(tv, Tickvault) and args.appends:
            later = list(range(base + args.repeats, base + args.repeats + args.appends))
            run.amplification(tv, later)
    finally:
        for s in systems.values():
            with contextlib.suppress(Exception):
                s.close()
        shutil.rmtree(work, ignore_errors=True)
    names = list(systems)
    table, verdicts = report(run, names, args.appends)
    log("")
    log(
        f"## {args.tickers} tickers x {args.sessions} sessions x {BARS} one-minute bars "
        f"({args.tickers * args.sessions * BARS:,} rows); medians of {args.repeats}, bulk of "
        f"{args.bulk_repeats}"
    )
    log("")
    log(table)
    log("")
    for note in run.notes:
        log(f"- {note}")
    mismatched = {k: v for k, v in run.rows.items() if len(set(v.values())) > 1}
    if mismatched:
        log(f"- row counts differ: {mismatched}")
    met = sum(1 for v in verdicts if v["met"])
    log(f"- goals met: {met} of {len(verdicts)}; machine after the run: {machine()}")
    log(f"- total benchmark time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "machine": machine(),
                    "versions": vers,
                    "results": run.results,
                    "rows": run.rows,
                    "notes": run.notes,
                    "goals": verdicts,
                    "table": table,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
