"""The source contract, output helpers and the registry of sources by name.

A *source* is any object with

* ``fetch(ticker, start=None, end=None) -> pandas.DataFrame`` returning the ``prices`` columns
  (``ticker, timestamp, open, high, low, close, volume`` and optionally ``adj_close``),
  timestamps ``datetime64[ns, UTC]``, sorted by timestamp, ``start``/``end`` inclusive
  (``None`` = from the earliest / up to now; str, date, datetime or ``pd.Timestamp``);
* ``name: str`` and ``retry_policy: RetryPolicy`` (how the pipeline retries transient errors).

Errors: :class:`~tickvault.errors.TickerNotFound` for an unknown ticker (a known ticker with
no rows in the range returns an empty frame), :class:`~tickvault.errors.BadSourceData` when
the answer cannot be parsed or fails validation, and a
:class:`~tickvault.errors.TransientSourceError` (``RateLimited``, ``SourceUnavailable``) for
anything worth retrying. Sources must pickle: they are shipped to Dask worker processes.

A plain callable ``fetch(ticker, start, end)`` becomes a source with :func:`as_source`.
Sources are looked up by name with :func:`get_source`: built-ins, those added with
:func:`register_source`, then entry points in the group ``tickvault.sources``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import BadSourceData, ConfigError, ValidationError
from ..formats import iso_utc, plain_number
from ..modes import parse_interval, prices_table
from ..schema import PRICES
from ..times import TimeLike, parse_end, parse_time
from . import provenance
from .checks import reject_other_tickers
from .policy import RetryOption, RetryPolicy
from .provenance import set_origin

log = logging.getLogger(__name__)


#: The columns every source returns, in this order (``adj_close`` is optional).
PRICE_COLUMNS: tuple[str, ...] = ("ticker", "timestamp", "open", "high", "low", "close", "volume")
ADJ_CLOSE = "adj_close"
#: the columns a source may add (kept by :func:`validate_prices` when the input has them)
OPTIONAL_COLUMNS: tuple[str, ...] = (ADJ_CLOSE, "vwap", "trade_count")
ENTRY_POINT_GROUP = "tickvault.sources"


@runtime_checkable
class Source(Protocol):
    """What the pipeline needs from a source."""

    name: str
    retry_policy: RetryPolicy

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        """Bars for ``ticker`` between ``start`` and ``end`` inclusive."""
        ...


# -- time bounds ---------------------------------------------------------------------------


def bounds(start: TimeLike, end: TimeLike) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(start, end)`` as UTC timestamps (or None); a bare ``end`` date is the end of that
    day (:func:`~tickvault.times.parse_end`), so it includes that day's intraday bars."""
    return parse_time(start, name="start"), parse_end(end, name="end")


def clip(df: pd.DataFrame, start: TimeLike, end: TimeLike) -> pd.DataFrame:
    """Rows of ``df`` with ``start <= timestamp <= end`` (bounds inclusive, None = open)."""
    lo, hi = bounds(start, end)
    mask = pd.Series(True, index=df.index)
    if lo is not None:
        mask &= df["timestamp"] >= lo
    if hi is not None:
        mask &= df["timestamp"] <= hi
    return df if bool(mask.all()) else df.loc[mask].reset_index(drop=True)


# -- output --------------------------------------------------------------------------------


def empty_prices(*, adj_close: bool = False) -> pd.DataFrame:
    """An empty frame with the prices columns and dtypes."""
    columns = [*PRICE_COLUMNS, ADJ_CLOSE] if adj_close else list(PRICE_COLUMNS)
    table = PRICES.empty().select(columns)
    return table.to_pandas()


def returned_none(source: str, ticker: str) -> BadSourceData:
    """The error for a fetch that returned None (a forgotten ``return``), which must never
    pass for "no bars": a callable's (:class:`CallableSource`) or a source class's."""
    return BadSourceData(
        f"source {source!r}: fetch returned None for {ticker!r}: return a DataFrame (an "
        f"empty one with the columns, tickvault.sources.empty_prices(), when there are no "
        f"bars)",
        ticker=ticker,
        source=source,
    )


def validate_prices(
    data: pd.DataFrame | pa.Table,
    *,
    ticker: str | None,
    source: str,
    where: Callable[[int], str] | None = None,
) -> pd.DataFrame:
    """Check ``data`` against the prices schema and return it in the contract's shape.

    Runs :meth:`PRICES.validate <tickvault.schema.TableSchema.validate>` (casts, checks OHLC
    consistency, drops duplicate timestamps keeping the last, sorts) and turns a
    :class:`~tickvault.errors.ValidationError` into :class:`~tickvault.errors.BadSourceData`
    naming the ticker and the source. ``where(row)`` may describe the offending input row
    (e.g. ``"AAPL.csv line 17"``). ``adj_close`` is kept only if the input had it.
    ``ticker=None``: the rows of several tickers, each named by its ticker column (a file
    read whole); duplicates are then (ticker, timestamp) pairs.
    """
    names = data.column_names if isinstance(data, pa.Table) else list(data.columns)
    require_columns(names, ticker=ticker or "", source=source)
    reject_conflicting_duplicates(data, ticker=ticker, source=source, where=where)
    try:
        table = PRICES.validate(data)
    except ValidationError as exc:
        place = ""
        if where is not None and exc.row is not None:
            place = f" at {where(exc.row)}"
        column = f", column {exc.column!r}" if exc.column else ""
        who = ticker if ticker is not None else _ticker_at(data, exc.row)
        raise BadSourceData.from_validation(
            exc, source=source, ticker=who, where=f"{place}{column}", row=bool(place)
        ) from exc
    keep = [*PRICE_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in names)]
    if ticker is not None:
        reject_other_tickers(table.column("ticker"), ticker, source)
    return table.select(keep).to_pandas()


def _ticker_at(data: pd.DataFrame | pa.Table, row: int | None) -> str:
    """The ticker of input row ``row`` ('' when unknown)."""
    if row is None or "ticker" not in (
        data.column_names if isinstance(data, pa.Table) else data.columns
    ):
        return ""
    value = data["ticker"][row]
    return str(value.as_py() if isinstance(value, pa.Scalar) else value)


def require_columns(
    names: list[str], *, ticker: str, source: str, need: Sequence[str] = PRICE_COLUMNS
) -> None:
    """BadSourceData when a source's answer for ``ticker`` lacks a column of ``need``,
    listing the columns it has and an example row for that ticker."""
    missing = [c for c in need if c not in names]
    if not missing:
        return
    examples = {c.name: c.example for c in PRICES.columns}
    examples["ticker"] = repr(ticker)
    row = ", ".join(f"{c}={examples[c]}" for c in need)
    raise BadSourceData(
        f"source {source!r} returned data for {ticker!r} without the column(s) {missing} "
        f"(its columns: {names}); return the columns {list(need)}, e.g. a row {row} (no "
        f"bars: an empty frame, tickvault.sources.empty_prices())",
        ticker=ticker,
        source=source,
    )


_VALUES = ("open", "high", "low", "close", "volume", ADJ_CLOSE)


def reject_conflicting_duplicates(
    data: pd.DataFrame | pa.Table,
    *,
    ticker: str | None,
    source: str,
    where: Callable[[int], str] | None = None,
) -> None:
    """BadSourceData if two rows of one ticker's answer share a timestamp but differ in a
    value: the source contradicts itself and neither row can be trusted. Identical
    duplicates are fine (validation keeps one). Timestamps that are not parsed yet (text)
    are checked by validation later, not here."""
    table = data if isinstance(data, pa.Table) else None
    if table is None:
        if "timestamp" not in data.columns or len(data) < 2:
            return
        col = data["timestamp"]
        if not pd.api.types.is_datetime64_any_dtype(col.dtype):
            return
        stamps = pd.DatetimeIndex(col).as_unit("ns").asi8
        values = {c: data[c].to_numpy() for c in _VALUES if c in data.columns}
    else:
        if "timestamp" not in table.column_names or table.num_rows < 2:
            return
        ts = table.column("timestamp")
        if not pa.types.is_timestamp(ts.type):
            return
        stamps = ts.cast(pa.timestamp("ns", ts.type.tz)).to_numpy().view("int64")
        values = {
            c: table.column(c).to_numpy(zero_copy_only=False)
            for c in _VALUES
            if c in table.column_names
        }
    if ticker is None:  # several tickers: a duplicate is a (ticker, timestamp) pair
        col = data.column("ticker") if isinstance(data, pa.Table) else data["ticker"]
        # of the stored spelling: rows of 'aapl' and 'AAPL' are one ticker's (tickers.py)
        codes = pd.factorize(pd.Series(np.asarray(col), dtype=object).astype(str).str.upper())[0]
        order = np.lexsort((stamps, codes))
        same = np.flatnonzero(
            (stamps[order][1:] == stamps[order][:-1]) & (codes[order][1:] == codes[order][:-1])
        )
    else:
        order = np.argsort(stamps, kind="stable")
        ordered = stamps[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
    for k in same:
        i, j = int(order[k]), int(order[k + 1])
        who = ticker if ticker is not None else _ticker_at(data, i)
        for c, v in values.items():
            a, b = v[i], v[j]
            if a == b or (pd.isna(a) and pd.isna(b)):
                continue
            name = where or (lambda r: f"row {r + 1}")
            when = iso_utc(pd.Timestamp(int(stamps[i]), tz="UTC"))
            raise BadSourceData(
                f"source {source!r} returned two different bars for {who!r} at {when}: "
                f"{name(i)} and {name(j)} ({c} {plain_number(a)} vs {plain_number(b)}); fix the "
                f"data so each "
                f"timestamp appears once",
                ticker=who,
                source=source,
            )


# -- plain callables -----------------------------------------------------------------------


class CallableSource:
    """Wraps a plain ``fetch(ticker, start, end)`` callable as a source.

    The callable may return any frame :meth:`PRICES.validate` accepts; a missing ``ticker``
    column is filled in. The output is validated and clipped to the requested range. No
    bars is an empty frame (with the columns, or ``pd.DataFrame()``); None is BadSourceData
    (a forgotten ``return``), never "no bars".
    Picklable if the callable is (a module-level function is).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        retry_policy: RetryOption = None,
        interval: str | None = None,
    ) -> None:
        if not callable(func):
            raise ConfigError(f"a source must be callable or have a fetch method, got {func!r}")
        #: the interval of the bars the callable returns (its ``interval`` attribute, if
        #: it has one; default daily)
        self.interval = parse_interval(interval or getattr(func, "interval", None))
        self.func = func
        self.name = name or getattr(func, "__name__", None) or type(func).__name__
        self.retry_policy = RetryPolicy.coerce(retry_policy, "retry_policy") or RetryPolicy()

    def __repr__(self) -> str:
        return f"CallableSource({self.func!r}, name={self.name!r})"

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        result = self.func(ticker, start, end)
        bars = getattr(result, "bars", None)
        if bars is not None and hasattr(result, "actions"):  # a Fetched: bars and actions
            result = bars
        return self._bars(result, ticker, start, end)

    def fetch_with_actions(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> Any:
        """:meth:`fetch`, keeping the actions if the callable returned a
        :class:`~tickvault.sources.actions.Fetched` (bars and actions)."""
        from .actions import Fetched

        result = self.func(ticker, start, end)
        if isinstance(result, Fetched):
            return Fetched(self._bars(result.bars, ticker, start, end), result.actions)
        return self._bars(result, ticker, start, end)

    def _bars(self, result: Any, ticker: str, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        if result is None:  # a forgotten ``return`` must not pass for "no bars"
            raise returned_none(self.name, ticker)
        if not isinstance(result, pd.DataFrame | pa.Table):
            raise BadSourceData(
                f"source {self.name!r} returned {type(result).__name__} for {ticker!r}; "
                f"expected a pandas DataFrame",
                ticker=ticker,
                source=self.name,
            )
        names = list(result.columns) if isinstance(result, pd.DataFrame) else result.column_names
        if not names and len(result) == 0:  # pd.DataFrame(): no bars, nothing to misread
            return empty_prices()
        # the ticker column is filled in, so it is not asked for
        require_columns(names, ticker=ticker, source=self.name, need=PRICE_COLUMNS[1:])
        if "ticker" not in names:
            if isinstance(result, pd.DataFrame):
                result = result.assign(ticker=ticker)
            else:
                result = result.append_column("ticker", pa.repeat(ticker, result.num_rows))
        return clip(validate_prices(result, ticker=ticker, source=self.name), start, end)


def as_source(
    obj: Any, *, name: str | None = None, retry_policy: RetryPolicy | None = None
) -> Source:
    """Return ``obj`` as a :class:`Source`.

    An object with a ``fetch`` method, ``name`` and ``retry_policy`` is returned unchanged
    unless ``name`` or ``retry_policy`` is given to override them. Anything else with a
    ``fetch`` method, or a plain callable ``fetch(ticker, start, end)``, is wrapped in
    :class:`CallableSource`, which validates its output.
    """
    if isinstance(obj, Source) and name is None and retry_policy is None:
        return obj
    fetch = getattr(obj, "fetch", None)
    if callable(fetch):
        return CallableSource(
            fetch,
            name=name or getattr(obj, "name", None) or type(obj).__name__,
            retry_policy=retry_policy or getattr(obj, "retry_policy", None),
            interval=getattr(obj, "interval", None),
        )
    if callable(obj):
        return CallableSource(obj, name=name, retry_policy=retry_policy)
    raise ConfigError(
        f"{obj!r} is not a source: pass an object with fetch(ticker, start, end) or such a callable"
    )


# -- intervals -----------------------------------------------------------------------------


def source_interval(source: Any) -> str:
    """The bar interval ``source`` gives: its ``interval`` attribute (default ``"1d"``)."""
    return parse_interval(getattr(source, "interval", None))


def check_interval(source: Any, interval: str) -> None:
    """ConfigError, before anything is fetched, when ``source`` does not give bars of
    ``interval``: bars are never written into another interval's table."""
    want = parse_interval(interval)
    have = source_interval(source)
    if have == want:
        return
    name = getattr(source, "name", type(source).__name__)
    raise ConfigError(
        f"source {name!r} gives {have} bars, but this run writes {want} bars (table "
        f"{prices_table(want)}); create the source for that interval, e.g. "
        f"get_source({name!r}, interval={want!r}) or `tickvault update --source {name} "
        f"--interval {want}`, or run with interval={have!r}"
    )


# -- registry ------------------------------------------------------------------------------

SourceFactory: TypeAlias = Callable[..., Any]

_BUILTINS: dict[str, str] = {
    "demo": "tickvault.sources.demo:DemoSource",
    "csv": "tickvault.sources.files:CsvSource",
    "parquet": "tickvault.sources.files:ParquetSource",
    "yahoo": "tickvault.sources.yahoo:YahooSource",
    "stooq": "tickvault.sources.stooq:StooqSource",
}
_REGISTERED: dict[str, SourceFactory] = {}
_REGISTRY_LOCK = threading.Lock()


def register_source(name: str, factory: SourceFactory, *, replace: bool = False) -> None:
    """Make ``get_source(name, **options)`` call ``factory(**options)``.

    ``factory`` is a source class or a function returning a source (or a plain fetch
    callable). Registering a taken name raises ConfigError unless ``replace=True``.
    """
    if not name or not isinstance(name, str):
        raise ConfigError(f"a source name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ConfigError(f"source factory for {name!r} must be callable, got {factory!r}")
    with _REGISTRY_LOCK:
        if not replace and (name in _REGISTERED or name in _BUILTINS):
            raise ConfigError(
                f"a source named {name!r} is already registered; pass replace=True to replace it"
            )
        _REGISTERED[name] = factory


def unregister_source(name: str) -> None:
    """Remove a source added with :func:`register_source` (built-ins stay)."""
    with _REGISTRY_LOCK:
        _REGISTERED.pop(name, None)


#: the plugins last found, and the import path they were found on
_FOUND: tuple[tuple[str, ...], dict[str, metadata.EntryPoint]] | None = None


def _entry_points() -> dict[str, metadata.EntryPoint]:
    """The source plugins installed (entry points of :data:`ENTRY_POINT_GROUP`). Scanning
    the installed packages costs ~4 ms, and provenance asks per ticker whether a name is a
    registry name: the scan is kept while ``sys.path`` stays the same (a folder added to
    it is scanned again; a package installed into it while the process runs is not)."""
    global _FOUND
    where = tuple(sys.path)
    found = _FOUND
    if found is None or found[0] != where:
        eps = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        found = _FOUND = (where, eps)
    return found[1]


def available_sources() -> list[str]:
    """Names :func:`get_source` accepts: built-ins, registered and entry-point sources."""
    with _REGISTRY_LOCK:
        names = set(_BUILTINS) | set(_REGISTERED)
    return sorted(names | set(_entry_points()))


def _builtin_class(name: str) -> Any:
    """The class of the built-in source ``name`` (None if no built-in has that name)."""
    spec = _BUILTINS.get(name)
    if spec is None:
        return None
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


provenance.registry_names = available_sources
provenance.builtin_class = _builtin_class


def _factory(name: str) -> SourceFactory:
    with _REGISTRY_LOCK:
        registered = _REGISTERED.get(name)
    if registered is not None:
        return registered
    if name in _BUILTINS:
        module, _, attr = _BUILTINS[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    ep = _entry_points().get(name)
    if ep is not None:
        try:
            return ep.load()
        except Exception as exc:
            raise ConfigError(
                f"source plugin {name!r} (entry point {ep.value!r} in group "
                f"{ENTRY_POINT_GROUP!r}) failed to load: {exc}"
            ) from exc
    raise ConfigError(f"unknown source {name!r}; available sources: {available_sources()}")


def is_synthetic(source: Any) -> bool:
    """Whether ``source`` (a source, or the name a run report records: ``'demo'``,
    ``'csv (path=...)'``) makes up its bars (its class says ``synthetic = True``, like the
    ``demo`` source): such bars must never pass for market data."""
    if source is None:
        return False
    if not isinstance(source, str):
        return bool(getattr(source, "synthetic", False))
    names = [part.split(" ", 1)[0].strip() for part in source.split(",")]
    try:
        return any(bool(getattr(_factory(n), "synthetic", False)) for n in names if n)
    except ConfigError:
        return False


def get_source(name: str, **options: Any) -> Source:
    """Create the source called ``name`` with ``options``.

    ``get_source("demo")``, ``get_source("csv", path="exports/")``,
    ``get_source("yahoo", base_url="http://127.0.0.1:8000", rate_limit=5)``.
    Unknown names and options raise :class:`~tickvault.errors.ConfigError` listing the valid
    ones.
    """
    factory = _factory(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**options)
        except TypeError as exc:
            valid = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            raise ConfigError(f"source {name!r}: {exc}; its options are {valid}") from exc
    source = as_source(factory(**options))
    set_origin(source, name, options)
    log.debug("created source %r with options %s", name, sorted(options))
    return source
