"""The functions that run on Dask / executor workers.

They never touch the database's log. :func:`fetch_one` fetches one ticker (with retries) and
returns its rows to the single writer; :func:`fetch_write_chunk` (parallel-write mode)
fetches a few tickers, writes their rows as new, uncommitted data files and returns only the
files' metadata. Everything they return pickles, and they never raise for a ticker's
failure: errors are returned as data, so one bad ticker never aborts a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BadSourceData, CorruptDatabaseError, ValidationError
from ..future_bars import DEFAULT_MAX_FUTURE, max_future_seconds
from ..schema import PRICES, TableSchema, Validated, get_schema, symbol_problem
from ..sources.actions import unpack
from ..sources.base import reject_conflicting_duplicates, returned_none
from ..sources.checks import reject_other_tickers
from ..sources.policy import RetryPolicy
from ..storage import FileInfo, ParquetDB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Fetch ``ticker`` over ``[start, end]`` (UTC timestamps, None = open)."""

    ticker: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None


@dataclass
class Outcome:
    """The result of fetching one ticker."""

    ticker: str
    ok: bool
    attempts: int
    seconds: float
    data: pa.Table | None = None  # unvalidated rows (single-writer mode)
    actions: pa.Table | None = None  # validated corporate actions (sources that have them)
    rows: int = 0  # rows fetched
    error: str | None = None  # "ErrorClass: message"
    error_type: str | None = None


@dataclass
class ChunkOutcome:
    """The result of one parallel-write task: per-ticker outcomes and the files written."""

    outcomes: list[Outcome]
    files: list[FileInfo] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)  # rows per ticker in ``files``


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _as_arrow(result: Any, ticker: str, source_name: str) -> pa.Table:
    """The source's answer as an Arrow table of this ticker's rows (not yet validated)."""
    if result is None:  # a forgotten ``return`` must not pass for "no bars"
        raise returned_none(source_name, ticker)
    if isinstance(result, pd.DataFrame):
        if "ticker" not in result.columns:
            result = result.assign(ticker=ticker)
        else:
            reject_other_tickers(result["ticker"], ticker, source_name)
        try:
            # the conversion upsert_prices uses, so a source's frame is read the same way
            # (pyarrow's own would cut datetimes in a column of dates to their date)
            return PRICES.to_arrow(result)
        except ValidationError as exc:
            raise BadSourceData.from_validation(exc, source=source_name, ticker=ticker) from exc
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise BadSourceData(
                f"source {source_name!r} returned data for {ticker!r} that Arrow cannot "
                f"convert: {exc}",
                ticker=ticker,
                source=source_name,
            ) from exc
    if isinstance(result, pa.Table):
        if "ticker" not in result.column_names:
            return result.append_column("ticker", pa.repeat(ticker, result.num_rows))
        reject_other_tickers(result.column("ticker"), ticker, source_name)
        return result
    raise BadSourceData(
        f"source {source_name!r} returned {type(result).__name__} for {ticker!r}; expected a "
        f"pandas DataFrame (or a pyarrow Table)",
        ticker=ticker,
        source=source_name,
    )


def _defined_at(cls: type, attr: str) -> int | None:
    """Position in ``cls.__mro__`` of the class that defines ``attr`` (None: nowhere)."""
    for i, klass in enumerate(cls.__mro__):
        if attr in vars(klass):
            return i
    return None


def fetcher(source: Any) -> Callable[[str, Any, Any], Any]:
    """The method the pipeline calls to fetch: ``source.fetch_arrow`` when the source offers
    one (it returns a ``pyarrow.Table`` and skips building a pandas frame that would only be
    converted to Arrow again), else ``source.fetch``.

    ``fetch_arrow`` is used only if it is defined at least as deep in the class hierarchy
    as ``fetch`` (and ``fetch`` was not replaced on the instance): a subclass that overrides
    ``fetch`` alone keeps being called through it."""
    for name in ("fetch_with_actions", "fetch_arrow"):  # decision 012, then the fast path
        method = getattr(source, name, None)
        if method is not None and callable(method) and _as_deep_as_fetch(source, name):
            return method
    return source.fetch


def _as_deep_as_fetch(source: Any, name: str) -> bool:
    own = getattr(source, "__dict__", {})
    if "fetch" in own and name not in own:  # fetch replaced on the instance
        return False
    at_other = _defined_at(type(source), name)
    at_fetch = _defined_at(type(source), "fetch")
    return at_other is not None and (at_fetch is None or at_fetch >= at_other)


def fetch_one(source: Any, job: Job, policy: RetryPolicy) -> Outcome:
    """Fetch one ticker, retrying per ``policy``; never raises for the ticker's failure.
    A ticker that is not a symbol fails at once: it is never sent to the source."""
    problem = symbol_problem(job.ticker)
    if problem is not None:
        return Outcome(
            ticker=job.ticker,
            ok=False,
            attempts=0,
            seconds=0.0,
            error=describe(ValidationError(problem, column="ticker")),
            error_type="ValidationError",
        )
    t0 = time.perf_counter()
    attempt = 0
    name = str(getattr(source, "name", "source"))
    fetch = fetcher(source)
    while True:
        attempt += 1
        try:
            answer, actions = unpack(
                fetch(job.ticker, job.start, job.end), ticker=job.ticker, source=name
            )
            data = _as_arrow(answer, job.ticker, name)
            reject_conflicting_duplicates(data, ticker=job.ticker, source=name)
        except Exception as exc:
            if policy.should_retry(exc, attempt):
                time.sleep(policy.delay(attempt, exc))
                continue
            return Outcome(
                ticker=job.ticker,
                ok=False,
                attempts=attempt,
                seconds=time.perf_counter() - t0,
                error=describe(exc),
                error_type=type(exc).__name__,
            )
        return Outcome(
            ticker=job.ticker,
            ok=True,
            attempts=attempt,
            seconds=time.perf_counter() - t0,
            data=data,
            rows=data.num_rows,
            actions=actions,
        )


def validate_batch(
    outcomes: list[Outcome],
    source_name: str,
    max_future: float | None = DEFAULT_MAX_FUTURE,
    schema: TableSchema = PRICES,
) -> tuple[Validated | None, dict[str, Outcome]]:
    """Validate the rows of successful outcomes together (fast path); if the batch is
    rejected, validate ticker by ticker so only the bad tickers fail. ``max_future``: the
    database's limit for bars in the future (:mod:`tickvault.future_bars`); ``schema``:
    the prices table of the run's interval (intraday bars must lie on its grid).

    Returns the clean table (sorted by key; None if no rows) and the outcomes that failed
    validation (turned into ``BadSourceData`` failures, ``data`` dropped).
    """
    # in ticker order: each ticker's rows come from one fetch (already in time order from
    # most sources), so the combined table is often sorted already and validation's
    # sort-and-dedupe step has nothing to reorder
    ordered = sorted(outcomes, key=lambda o: o.ticker)
    parts = [o.data for o in ordered if o.ok and o.data is not None and o.data.num_rows]
    if not parts:
        return None, {}
    try:
        combined = pa.concat_tables(parts, promote_options="permissive")
        return schema.validated(combined, max_future=max_future), {}
    except (ValidationError, pa.ArrowException, TypeError, ValueError):
        pass
    good: list[pa.Table] = []
    bad: dict[str, Outcome] = {}
    for o in outcomes:
        if not (o.ok and o.data is not None and o.data.num_rows):
            continue
        try:
            good.append(schema.validate(o.data, max_future=max_future))
        except (ValidationError, pa.ArrowException, TypeError, ValueError) as exc:
            err = BadSourceData.from_validation(exc, source=source_name, ticker=o.ticker)
            o.ok, o.data = False, None
            o.error, o.error_type = describe(err), "BadSourceData"
            bad[o.ticker] = o
    if not good:
        return None, bad
    both = pa.concat_tables(good, promote_options="permissive")
    return schema.validated(both, max_future=max_future), bad


def drop_unchanged(
    db: ParquetDB, batch: Validated, keep: frozenset[str] = frozenset()
) -> Validated:
    """Rows of ``batch`` that the database does not already hold identically, and every
    row of the tickers in ``keep`` (their commit records where they come from now).

    A stored file that cannot be read (damaged) does not stop the write: what is unchanged
    cannot be told, so every row is written (an upsert of the same bars is harmless; the new
    commit's rows win over the damaged file's), and the damage is logged for ``verify``."""
    if batch.num_rows == 0:
        return batch
    table = batch.data
    tickers = sorted(set(table.column("ticker").to_pylist()))
    ts = table.column("timestamp")
    lo, hi = pc.min_max(ts).values()
    try:
        stored = db.snapshot(batch.table).read_arrow(  # new tickers are expected: no warning
            tickers=tickers,
            start=pd.Timestamp(lo.as_py()),
            end=pd.Timestamp(hi.as_py()),
            columns=table.column_names,
        )
    except CorruptDatabaseError as exc:
        log.warning(
            "%s: the stored bars of %d ticker(s) cannot be read back (%s); writing all %d "
            "fetched rows instead of only the changed ones",
            batch.table,
            len(tickers),
            exc,
            batch.num_rows,
        )
        return batch
    if stored.num_rows == 0:
        return batch
    cols = table.column_names
    new = table.to_pandas()
    old = stored.select(cols).to_pandas()
    merged = new.merge(old.drop_duplicates(), how="left", on=cols, indicator=True)
    wanted = (merged["_merge"] == "left_only").to_numpy()
    if keep:
        wanted = wanted | new["ticker"].isin(keep).to_numpy()
    return batch.filter(pa.array(wanted))


def refuse_restamps(
    db: ParquetDB,
    table_name: str,
    batch: Validated,
    outcomes: list[Outcome],
) -> tuple[Validated | None, list[Outcome]]:
    """The batch without the tickers whose bars would be second bars on dates they
    already hold at another time of day (``db.stamp_conflicts``, decision 025), and their
    outcomes, failed with the reason: one such ticker fails alone, not the whole run."""
    conflicts = db.stamp_conflicts(table_name, batch)
    if not conflicts:
        return batch, []
    failed = []
    for o in outcomes:
        why = conflicts.get(o.ticker)
        if why is not None and o.ok:
            o.ok, o.data = False, None
            o.error, o.error_type = why, "ValidationError"
            failed.append(o)
    keep = pc.invert(pc.is_in(batch.data.column("ticker"), pa.array(sorted(conflicts))))
    rest = batch.filter(keep)
    return (rest if rest.num_rows else None), failed


def rows_per_ticker(files: list[FileInfo]) -> dict[str, int]:
    """Rows each ticker has in ``files`` (from their statistics)."""
    written: dict[str, int] = {}
    for f in files:
        for t, n in zip(f.tickers, f.ticker_rows.tolist(), strict=True):
            written[t] = written.get(t, 0) + n
    return written


def fetch_write_chunk(
    db: ParquetDB,
    source: Any,
    jobs: list[Job],
    policy: RetryPolicy,
    skip_unchanged: bool,
    keep: frozenset[str] = frozenset(),
    table_name: str = "prices",
) -> ChunkOutcome:
    """Parallel-write task: fetch ``jobs``, write their rows as new uncommitted files in the
    database folder, return the files' metadata (never the rows). ``keep``: tickers
    written even when unchanged."""
    name = str(getattr(source, "name", "source"))
    outcomes = [fetch_one(source, job, policy) for job in jobs]
    limit = max_future_seconds(db.options.max_future)
    table, _bad = validate_batch(outcomes, name, limit, get_schema(table_name))
    for o in outcomes:
        o.data = None
    if table is not None:
        table, _refused = refuse_restamps(db, table_name, table, outcomes)
    if table is None:
        return ChunkOutcome(outcomes)
    if skip_unchanged:
        table = drop_unchanged(db, table, keep)
    files = db.write_files(table_name, table)  # validated once: written as is
    return ChunkOutcome(outcomes, files, rows_per_ticker(files))
