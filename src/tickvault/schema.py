"""Table schemas and input validation.

Every table has a schema (column names and Arrow types), a key, and checks. Input goes
through :meth:`TableSchema.validate` before anything is written: it casts each column to its
type, rejects bad values with a :class:`~tickvault.errors.ValidationError` that names the
column, the problem, how many rows and the first offending row, resolves duplicate keys
within the batch (the last occurrence wins) and sorts by the key.

Timestamps are stored as ``timestamp[ns, UTC]``. Naive input is read as UTC; aware input is
converted to UTC; dates and ISO strings are accepted. Daily bars are stamped at 00:00 UTC of
their session date, so a bar keeps its date whatever the reader's time zone. A bar later
than now + ``max_future`` (one day by default) is refused (:mod:`tickvault.future_bars`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .adjust_index import SPLIT_RANGE
from .convert import (
    TIMESTAMP_TYPE,
    UNIT_NS,
    Column,
    apply_date_format,
    cast_column,
    frame_to_arrow,
    reject,
    reject_rows,
    row_description,
)
from .errors import TableNotFound, ValidationError
from .formats import plain_number, with_article
from .future_bars import DEFAULT_MAX_FUTURE, reject_future
from .keys import Runs, column_runs, dedupe_last, is_sorted_unique
from .modes import prices_table

#: Columns whose name starts with this prefix are internal to the storage engine.
INTERNAL_PREFIX = "_tv_"

# -- symbols: what a ticker (the series column) may be --------------------------------------

#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = "=+-@\t\r"

#: What a symbol must not contain, as an RE2 pattern: separators and whitespace (\p{Z};
#: tab, CR, LF are control characters), control, format, private-use and surrogate
#: characters (\p{C}), or a formula character first.
_NOT_A_SYMBOL = r"[\p{Z}\p{C}]|^[=+\-@]"

#: The symbol rule, as error messages and docs state it.
SYMBOL_RULE = (
    "a ticker must be printable, without whitespace or control characters, and must not "
    "start with =, +, - or @ (a spreadsheet would run it as a formula), e.g. 'AAPL', "
    "'BRK.B', 'BRK-B', '^GSPC', 'EURUSD=X' or 'EUR/USD'"
)


def not_symbols(values: pa.Array) -> np.ndarray:
    """Per value of a string array: True where it breaks the symbol rule (nulls: False).
    Many values (the runs of unsorted input) are matched once per distinct value: the
    regular expression costs far more per string than hashing does."""
    if len(values) > 10_000:
        distinct = pc.unique(values)
        if len(distinct) < len(values) // 2:
            bad_distinct = distinct.filter(not_symbols(distinct))
            if len(bad_distinct) == 0:
                return np.zeros(len(values), dtype=bool)
            bad = pc.is_in(values, value_set=bad_distinct)
            return np.asarray(bad.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    bad = pc.match_substring_regex(values, _NOT_A_SYMBOL)
    return np.asarray(bad.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def symbol_problem(ticker: str) -> str | None:
    """Why ``ticker`` is not a symbol (a message stating the rule), or None if it is one."""
    if not ticker or not_symbols(pa.array([ticker], pa.string()))[0]:
        return f"ticker {ticker!r} is not a symbol: {SYMBOL_RULE}"
    return None


@dataclass(frozen=True)
class Validated:
    """A batch that passed :meth:`TableSchema.validated`: cast to the table's types, checked,
    unique by key and sorted, with the runs of its series column. Storage writes it as is
    (``ParquetDB.write_files``), so a batch is validated exactly once."""

    table: str
    data: pa.Table
    runs: Runs
    #: some timestamps were local midnights stored as their dates (decision 025)
    dated: bool = False

    @property
    def num_rows(self) -> int:
        return self.data.num_rows

    def filter(self, mask: pa.Array | Sequence[bool]) -> Validated:
        """The rows where ``mask`` is true (still sorted and unique)."""
        data = self.data.filter(mask)
        return Validated(self.table, data, column_runs(data, self.runs_column), self.dated)

    @property
    def runs_column(self) -> str:
        return get_schema(self.table).series_column


@dataclass(frozen=True)
class TableSchema:
    """A table's columns, key and checks.

    ``key[0]`` is the series column (a string such as the ticker) and ``key[1]`` the
    timestamp; storage sorts and partitions by them.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: Callable[[pa.Table, TableSchema], None] | None = field(default=None, compare=False)
    #: the calendar period of the table's level-1 files (decision 015): ``"year"`` for
    #: daily bars; ``"none"`` keeps one ticker-major layout for all time (small tables)
    period: str = "none"
    #: rows are observations (bars): none may be later than now + ``max_future``
    #: (:mod:`tickvault.future_bars`); corporate actions may be announced ahead
    refuse_future: bool = field(default=False, compare=False)
    #: bars lie on a grid of this many seconds on the UTC clock (0: no grid; intraday
    #: tables, decision 018): a timestamp off the grid is refused
    grid_seconds: int = field(default=0, compare=False)
    #: the bar interval of a prices table (``"1d"``, ``"1m"``, ...); None for other tables
    interval: str | None = field(default=None, compare=False)
    #: columns added after the table's first files were written: older files lack them and
    #: read them as nulls (no rewrite; verify accepts such files)
    late_columns: tuple[str, ...] = field(default=(), compare=False)

    @functools.cached_property
    def arrow_schema(self) -> pa.Schema:
        # built once per schema (a read asks for it per file; building costs ~30 us)
        return pa.schema([pa.field(c.name, c.type, nullable=True) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def series_column(self) -> str:
        return self.key[0]

    @property
    def time_column(self) -> str:
        return self.key[1]

    def empty(self) -> pa.Table:
        return self.arrow_schema.empty_table()

    # -- validation -----------------------------------------------------------------------

    def validate(self, data: Any, *, max_future: float | None = DEFAULT_MAX_FUTURE) -> pa.Table:
        """Cast, check, dedupe (last wins) and sort ``data``; raise ValidationError if bad.
        For a table of bars (``refuse_future``), a timestamp later than now +
        ``max_future`` seconds (None: no limit) is bad too."""
        return self.validate_runs(data, max_future=max_future)[0]

    def validated(self, data: Any, *, max_future: float | None = DEFAULT_MAX_FUTURE) -> Validated:
        """:meth:`validate`, as a :class:`Validated` batch that storage writes as is."""
        data, dated = self._local_dates(data)
        table, runs = self._validate_runs(data, max_future=max_future)
        return Validated(self.name, table, runs, dated)

    def validate_runs(
        self, data: Any, *, max_future: float | None = DEFAULT_MAX_FUTURE
    ) -> tuple[pa.Table, Runs]:
        """:meth:`validate`, also returning the runs of the series column of the result."""
        return self._validate_runs(self._local_dates(data)[0], max_future=max_future)

    def _local_dates(self, data: Any) -> tuple[Any, bool]:
        """A daily table's local midnights as their dates (decision 025), and whether any
        value changed; other tables' data as it is."""
        if self.interval != "1d":
            return data, False
        return local_midnights(data, self.time_column)

    def _validate_runs(
        self, data: Any, *, max_future: float | None = DEFAULT_MAX_FUTURE
    ) -> tuple[pa.Table, Runs]:
        table = frame_to_arrow(data, self.name, self.columns, self.key)
        self.check_columns(table)
        if table.num_rows == 0:
            # nothing to store: a no-op whatever types the columns have (pandas gives empty
            # columns float64 or object)
            table = self.empty()
            return table, column_runs(table, self.series_column)
        table = self.cast(table)
        runs = column_runs(table, self.series_column)
        self._check_nulls(table, runs)
        self._check_symbols(table, runs)
        table, runs = self._upper_series(table, runs)
        if self.checks is not None:
            self.checks(table, self)
        if self.refuse_future:
            reject_future(table, self.time_column, self.key, max_future)
        if is_sorted_unique(table, self.key, runs):
            return table, runs
        out = dedupe_last(table, self.key)
        return out, column_runs(out, self.series_column)

    def with_date_format(self, data: Any, date_format: str) -> Any:
        """``data`` with the strings of its time column parsed with ``date_format``
        (``strptime`` codes, e.g. ``'%d/%m/%Y'``), every row the same way; ValidationError
        naming the first string that does not match. Without it, a time column's strings
        must be ISO 8601: other strings are refused, never guessed."""
        return apply_date_format(data, self.time_column, date_format)

    def to_arrow(self, data: Any) -> pa.Table:
        """``data`` (a pandas DataFrame, Arrow table or record batch) as an Arrow table whose
        pandas columns are converted the way :meth:`validate` converts them (an index named
        like a column becomes that column); not checked yet. Raises ValidationError for
        what cannot be converted, naming the column and the first bad row."""
        return frame_to_arrow(data, self.name, self.columns, self.key)

    def check_columns(self, table: pa.Table) -> None:
        """Raise ValidationError for unknown or missing columns."""
        got = table.column_names
        known = set(self.column_names)
        unknown = [c for c in got if c not in known]
        optional = [c.name for c in self.columns if not c.required]
        if unknown:
            raise ValidationError(
                f"{self.name}: unknown column(s) {unknown}; the columns are "
                f"{self.column_names} (optional: {optional})",
                column=unknown[0],
            )
        missing = [c.name for c in self.columns if c.required and c.name not in got]
        if missing:
            raise ValidationError(
                f"{self.name}: missing required column(s) {missing}; got {got}. Example row: "
                + ", ".join(f"{c.name}={c.example}" for c in self.columns if c.required),
                column=missing[0],
            )

    def cast(self, table: pa.Table) -> pa.Table:
        """Each column cast to its type (missing optional columns become nulls)."""
        out = []
        for col in self.columns:
            if col.name not in table.column_names:
                out.append(pa.nulls(table.num_rows, col.type))
                continue
            arr = table.column(col.name)
            out.append(cast_column(table, col, arr, self.key))
        return pa.table(out, schema=self.arrow_schema)

    def _check_nulls(self, table: pa.Table, series_runs: Runs) -> None:
        for col in self.columns:
            if col.nullable:
                continue
            arr = table.column(col.name)
            if arr.null_count:
                reject_rows(
                    table,
                    pc.is_null(arr, nan_is_null=True).to_numpy(zero_copy_only=False),
                    col.name,
                    "null",
                    self.key,
                    f"every row needs {with_article(col.name)}, e.g. {col.example}",
                )
            if pa.types.is_string(col.type):
                # blank strings, checked once per run of equal values (few for sorted data)
                runs = (
                    series_runs if col.name == self.series_column else column_runs(table, col.name)
                )
                blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(runs.values)), 0)
                blank_np = blank.to_numpy(zero_copy_only=False)
                if blank_np.any():
                    reject_rows(
                        table,
                        runs.expand(blank_np),
                        col.name,
                        "empty",
                        self.key,
                        f"use a non-empty string such as {col.example}",
                    )

    def _upper_series(self, table: pa.Table, runs: Runs) -> tuple[pa.Table, Runs]:
        """Tickers are upper case (``tickvault.tickers``): looked at once per run."""
        values = runs.values
        if not pc.any(pc.not_equal(pc.utf8_upper(values), values)).as_py():
            return table, runs
        i = table.column_names.index(self.series_column)
        upper = pc.utf8_upper(table.column(i))
        table = table.set_column(i, self.arrow_schema.field(i), upper)
        return table, column_runs(table, self.series_column)

    def _check_symbols(self, table: pa.Table, series_runs: Runs) -> None:
        """The series column holds symbols (:data:`SYMBOL_RULE`): checked once per run."""
        bad = not_symbols(series_runs.values)
        if not bad.any():
            return
        rows = series_runs.expand(bad)
        values = table.column(self.series_column)
        n = int(np.count_nonzero(rows))
        reject(
            self.series_column,
            rows,
            "value that is not a symbol" if n == 1 else "values that are not symbols",
            lambda i: f"row {i}: {values[i].as_py()!r}",
            SYMBOL_RULE,
        )


# -- prices ---------------------------------------------------------------------------------

_PRICE_COLS = ("open", "high", "low", "close")


def _check_prices(table: pa.Table, schema: TableSchema) -> None:
    key = schema.key
    cols = {
        c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype="float64")
        for c in _PRICE_COLS
    }
    for name in (*_PRICE_COLS, "adj_close"):
        if name == "adj_close":
            arr = table.column(name)
            values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")
            present = ~pc.is_null(arr).to_numpy(zero_copy_only=False)
            bad_finite = present & ~np.isfinite(values)
        else:
            values = cols[name]
            present = np.ones(len(values), dtype=bool)
            bad_finite = ~np.isfinite(values)
        reject_rows(
            table, bad_finite, name, "non-finite", key, "prices must be finite, e.g. 101.25"
        )
        with np.errstate(invalid="ignore"):
            reject_rows(
                table,
                present & (values <= 0),
                name,
                "non-positive",
                key,
                "prices must be greater than 0, e.g. 101.25",
            )
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    reject_rows(table, h < lo, "high", "below-low", key, "high must be >= low")
    reject_rows(table, h < o, "high", "below-open", key, "high must be >= open")
    reject_rows(table, h < c, "high", "below-close", key, "high must be >= close")
    reject_rows(table, lo > o, "low", "above-open", key, "low must be <= open")
    reject_rows(table, lo > c, "low", "above-close", key, "low must be <= close")
    vol = np.asarray(table.column("volume").to_numpy(zero_copy_only=False), dtype="float64")
    reject_rows(
        table, ~np.isfinite(vol), "volume", "non-finite", key, "volume must be finite, e.g. 1200"
    )
    reject_rows(table, vol < 0, "volume", "negative", key, "volume must be >= 0, e.g. 1200")
    _check_extras(table, key, h, lo)
    if schema.grid_seconds:
        _check_grid(table, schema)


#: nanoseconds in a day (a daily bar is stamped at a multiple of it)
DAY_NS = UNIT_NS["date"]


def local_midnights(data: Any, column: str) -> tuple[Any, bool]:
    """``data`` with each time-zone-aware ``column`` value at midnight of its own zone
    replaced by that date at 00:00 UTC: a daily bar of 2024-03-01 from a New York
    exchange arrives as ``2024-03-01 00:00-05:00`` (yfinance, pandas-datareader) and is
    the bar of 2024-03-01, not one stamped 05:00 on it. Other values are left as they are
    (UTC values, naive values, other times of day). The caller's frame is not changed.
    Returns the data and whether any value was replaced."""
    if isinstance(data, pd.DataFrame):
        if column not in data.columns and column in [n for n in data.index.names if n]:
            data = data.reset_index()
        if column not in data.columns:
            return data, False
        s = data[column]
        if not isinstance(s, pd.Series):  # a duplicated column: conversion names it
            return data, False
        if not isinstance(s.dtype, pd.DatetimeTZDtype) or _is_utc(str(s.dtype.tz)):
            return data, False
        unit = s.dtype.unit
        per_day = DAY_NS // UNIT_NS[unit]
        wall = s.dt.tz_localize(None).to_numpy(dtype=f"datetime64[{unit}]").view(np.int64)
        nat = np.iinfo(np.int64).min
        midnight = (wall % per_day == 0) & (wall != nat)
        if not midnight.any():
            return data, False
        utc = s.to_numpy(dtype=f"datetime64[{unit}]").view(np.int64)
        out = np.where(midnight, wall, utc).view(f"datetime64[{unit}]")
        fixed = pd.Series(pd.DatetimeIndex(out).tz_localize("UTC"), index=s.index, name=s.name)
        return data.assign(**{column: fixed}), True
    if isinstance(data, (pa.Table, pa.RecordBatch)) and column in data.schema.names:
        typ = data.schema.field(column).type
        if not pa.types.is_timestamp(typ) or typ.tz is None or _is_utc(typ.tz):
            return data, False
        arr = data.column(column)
        unit = pa.timestamp(typ.unit)
        wall = pc.local_timestamp(arr).cast(pa.int64())
        per_day = DAY_NS // UNIT_NS[typ.unit]
        midnight = pc.equal(pc.multiply(pc.divide(wall, per_day), per_day), wall)
        values = pc.if_else(midnight, wall, arr.cast(unit).cast(pa.int64()))
        fixed = values.cast(unit).cast(pa.timestamp(typ.unit, "UTC"))
        i = data.schema.names.index(column)
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        changed = bool(pc.any(midnight).as_py())
        return data.set_column(i, pa.field(column, fixed.type), fixed), changed
    return data, False


def _is_utc(tz: str) -> bool:
    return tz.upper() in ("UTC", "ETC/UTC", "+00:00", "Z", "GMT", "ETC/GMT")


def _check_extras(table: pa.Table, key: tuple[str, ...], h: np.ndarray, lo: np.ndarray) -> None:
    """The optional ``vwap`` (within the bar's [low, high]) and ``trade_count`` (>= 0)."""
    if "vwap" in table.column_names:
        arr = table.column("vwap")
        if arr.null_count < len(arr):
            vwap = np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")
            present = ~pc.is_null(arr).to_numpy(zero_copy_only=False)
            reject_rows(
                table,
                present & ~np.isfinite(vwap),
                "vwap",
                "non-finite",
                key,
                "vwap must be a finite price within [low, high], e.g. 187.31 (or null)",
            )
            with np.errstate(invalid="ignore"):
                outside = present & ((vwap < lo) | (vwap > h))
            reject_rows(
                table,
                outside,
                "vwap",
                "outside-[low, high]",
                key,
                "a bar's volume-weighted average price lies within its low and high, e.g. "
                "low=186.90, high=188.44, vwap=187.31 (or leave vwap null)",
            )
    if "trade_count" in table.column_names:
        arr = table.column("trade_count")
        if arr.null_count < len(arr):
            counts = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype="int64")
            reject_rows(
                table,
                counts < 0,
                "trade_count",
                "negative",
                key,
                "trade_count is a whole number of trades >= 0, e.g. 412 (or null)",
            )


def _check_grid(table: pa.Table, schema: TableSchema) -> None:
    """Each bar starts on its interval's grid (UTC clock): 09:31:00 in a 1m table, 10:05
    in a 5m table; 10:03 in a 5m table or a 1m bar at 09:31:30 is refused."""
    step = schema.grid_seconds * 1_000_000_000
    ns = table.column(schema.time_column).cast(pa.int64()).to_numpy(zero_copy_only=False)
    off = np.asarray(ns, dtype="int64") % step != 0
    if not off.any():
        return
    minutes = schema.grid_seconds // 60
    grid = "every minute" if minutes == 1 else f"every {minutes} minutes"
    reject_rows(
        table,
        off,
        schema.time_column,
        f"off-grid {schema.interval}",
        schema.key,
        f"a {schema.interval} bar is stamped with its start, on the grid of {grid} on the "
        f"UTC clock with seconds 0 (e.g. 2024-03-01T14:35:00Z); write bars of another "
        f"interval with interval= naming it",
    )


PRICES = TableSchema(
    name="prices",
    columns=(
        Column("ticker", pa.string(), example="'AAPL'"),
        Column("timestamp", TIMESTAMP_TYPE, example="'2024-03-01'"),
        Column("open", pa.float64(), example="187.15"),
        Column("high", pa.float64(), example="188.44"),
        Column("low", pa.float64(), example="186.90"),
        Column("close", pa.float64(), example="187.68"),
        Column("volume", pa.float64(), example="53000000"),
        Column("adj_close", pa.float64(), required=False, nullable=True, example="187.10"),
        Column("vwap", pa.float64(), required=False, nullable=True, example="187.31"),
        Column("trade_count", pa.int64(), required=False, nullable=True, example="412"),
    ),
    key=("ticker", "timestamp"),
    period="year",
    checks=_check_prices,
    refuse_future=True,
    interval="1d",
    late_columns=("vwap", "trade_count"),
)

#: the level-1 period of each intraday table (decision 018): a day of 1-minute bars is
#: 390 rows per ticker, a month of 30-minute bars about 280
INTRADAY_PERIODS = {"1m": "day", "2m": "day", "5m": "day", "15m": "day", "30m": "month"}
INTRADAY_PERIODS["1h"] = "month"

#: the grid intraday bars lie on, in seconds: the interval, except 1-hour bars, which
#: may start on the half hour (09:30 New York is 13:30 or 14:30 UTC: hourly bars aligned
#: to the session open, as vendors give them)
INTRADAY_GRID = {"1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "1h": 1800}


def _intraday(interval: str) -> TableSchema:
    return replace(
        PRICES,
        name=f"prices_{interval}",
        period=INTRADAY_PERIODS[interval],
        grid_seconds=INTRADAY_GRID[interval],
        interval=interval,
        late_columns=(),
    )


def prices_schema(interval: str | None = None) -> TableSchema:
    """The schema of the prices table of ``interval`` (parsed by
    :func:`tickvault.modes.parse_interval`; None: daily)."""
    return get_schema(prices_table(interval))


ACTION_KINDS = ("dividend", "split")


def _check_actions(table: pa.Table, schema: TableSchema) -> None:
    kind = table.column("kind")
    bad = ~pc.is_in(kind, value_set=pa.array(ACTION_KINDS)).to_numpy(zero_copy_only=False)
    reject_rows(
        table, bad, "kind", "unknown", schema.key, f"kind must be one of {list(ACTION_KINDS)}"
    )
    value = table.column("value").to_numpy(zero_copy_only=False).astype("float64")
    reject_rows(table, ~np.isfinite(value), "value", "non-finite", schema.key, "e.g. 0.24 or 4.0")
    reject_rows(table, value <= 0, "value", "non-positive", schema.key, "e.g. 0.24 or 4.0")
    split = np.asarray(pc.equal(kind, "split").to_numpy(zero_copy_only=False), dtype=bool)
    lo, hi = SPLIT_RANGE
    reject(
        "value",
        split & ((value < lo) | (value > hi)),
        "implausible split ratio(s)",
        lambda i: f"{row_description(table, i, schema.key)}: {plain_number(value[i])}",
        "a split ratio is new shares per old share, between 1/1000 (0.001, a 1-for-1000 "
        "reverse split) and 1000 (1000-for-1), e.g. 4.0 for 4-for-1",
    )


ACTIONS = TableSchema(
    name="actions",
    columns=(
        Column("ticker", pa.string(), example="'AAPL'"),
        Column("timestamp", TIMESTAMP_TYPE, example="'2024-02-09'"),
        Column("kind", pa.string(), example="'dividend'"),
        Column("value", pa.float64(), example="0.24"),
    ),
    key=("ticker", "timestamp", "kind"),
    checks=_check_actions,
)

_TABLES: dict[str, TableSchema] = {"prices": PRICES, "actions": ACTIONS}
for _iv in INTRADAY_PERIODS:
    _TABLES[f"prices_{_iv}"] = _intraday(_iv)


def register_table(schema: TableSchema) -> None:
    """Register another table schema (its key must start with a string and a timestamp)."""
    if len(schema.key) < 2:
        raise ValueError("a table key needs at least a series column and a timestamp column")
    _TABLES[schema.name] = schema


def get_schema(name: str) -> TableSchema:
    try:
        return _TABLES[name]
    except KeyError:
        raise TableNotFound(f"unknown table {name!r}; known tables: {sorted(_TABLES)}") from None


def table_names() -> list[str]:
    return sorted(_TABLES)
