"""Table schemas and input validation.

Every table has a schema (column names and Arrow types), a key, and checks. Input goes
through :meth:`TableSchema.validate` before anything is written: it casts each column to its
type, rejects bad values with a :class:`~tickvault.errors.ValidationError` that names the
column, the problem, how many rows and the first offending row, resolves duplicate keys
within the batch (the last occurrence wins) and sorts by the key.

Timestamps are stored as ``timestamp[ns, UTC]``. Naive input is read as UTC; aware input is
converted to UTC; dates and ISO strings are accepted. Daily bars are stamped at 00:00 UTC of
their session date, so a bar keeps its date whatever the reader's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import TableNotFound, ValidationError
from .keys import Runs, column_runs, dedupe_last, is_sorted_unique

TIMESTAMP_TYPE = pa.timestamp("ns", tz="UTC")

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
class Column:
    name: str
    type: pa.DataType
    required: bool = True
    nullable: bool = False
    example: str = ""


def _row_desc(table: pa.Table, row: int, key: Sequence[str]) -> str:
    parts = []
    for name in key:
        if name not in table.column_names:
            continue
        value = table.column(name)[row].as_py()
        if isinstance(value, dt.datetime):
            if value.time() == dt.time(0) and value.tzinfo is not None:
                parts.append(value.date().isoformat())
            else:
                parts.append(value.isoformat())
        else:
            parts.append(str(value))
    return f"row {row} ({', '.join(parts)})" if parts else f"row {row}"


def _fail(
    table: pa.Table,
    mask: Any,
    column: str,
    problem: str,
    key: Sequence[str],
    hint: str,
) -> None:
    """Raise ValidationError if any element of the boolean mask is true."""
    arr = np.asarray(mask, dtype=bool)
    count = int(np.count_nonzero(arr))
    if count == 0:
        return
    noun = "value" if count == 1 else "values"
    _reject(column, arr, f"{problem} {noun}", lambda i: _row_desc(table, i, key), hint)


def _reject(column: str, bad: Any, what: str, where: Callable[[int], str], hint: str) -> None:
    """The one shape of a bad-value error: the column, how many rows, the first one
    (``where(row)``) and what to do instead. Nothing when ``bad`` has no true element."""
    arr = np.asarray(bad, dtype=bool)
    count = int(np.count_nonzero(arr))
    if count == 0:
        return
    first = int(np.argmax(arr))
    raise ValidationError(
        f"column {column!r} has {count} {what}, first at {where(first)}; {hint}",
        column=column,
        count=count,
        row=first,
    )


@dataclass(frozen=True)
class Validated:
    """A batch that passed :meth:`TableSchema.validated`: cast to the table's types, checked,
    unique by key and sorted, with the runs of its series column. Storage writes it as is
    (``ParquetDB.write_files``), so a batch is validated exactly once."""

    table: str
    data: pa.Table
    runs: Runs

    @property
    def num_rows(self) -> int:
        return self.data.num_rows

    def filter(self, mask: pa.Array | Sequence[bool]) -> Validated:
        """The rows where ``mask`` is true (still sorted and unique)."""
        data = self.data.filter(mask)
        return Validated(self.table, data, column_runs(data, self.runs_column))

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

    @property
    def arrow_schema(self) -> pa.Schema:
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

    def validate(self, data: Any) -> pa.Table:
        """Cast, check, dedupe (last wins) and sort ``data``; raise ValidationError if bad."""
        return self.validate_runs(data)[0]

    def validated(self, data: Any) -> Validated:
        """:meth:`validate`, as a :class:`Validated` batch that storage writes as is."""
        table, runs = self.validate_runs(data)
        return Validated(self.name, table, runs)

    def validate_runs(self, data: Any) -> tuple[pa.Table, Runs]:
        """:meth:`validate`, also returning the runs of the series column of the result."""
        table = self._to_arrow(data)
        self.check_columns(table)
        table = self.cast(table)
        runs = column_runs(table, self.series_column)
        if table.num_rows == 0:
            return table, runs
        self._check_nulls(table, runs)
        self._check_symbols(table, runs)
        table, runs = self._upper_series(table, runs)
        if self.checks is not None:
            self.checks(table, self)
        if is_sorted_unique(table, self.key, runs):
            return table, runs
        out = dedupe_last(table, self.key)
        return out, column_runs(out, self.series_column)

    def _to_arrow(self, data: Any) -> pa.Table:
        if isinstance(data, pa.Table):
            return data
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data])
        if isinstance(data, pd.DataFrame):
            df = data
            names = [n for n in df.index.names if n is not None]
            if names and any(n in self.column_names for n in names):
                df = df.reset_index()
            if not all(isinstance(c, str) for c in df.columns):
                raise ValidationError(
                    f"{self.name}: column names must be strings, got {list(df.columns)!r}; "
                    f"expected {self.column_names}"
                )
            if df.columns.duplicated().any():
                dup = sorted(set(df.columns[df.columns.duplicated()]))
                raise ValidationError(f"{self.name}: duplicate column names {dup}")
            arrays = {}
            for name in df.columns:
                arrays[name] = self._series_to_arrow(name, df[name])
            return pa.table(arrays) if arrays else pa.table({})
        raise ValidationError(
            f"{self.name}: expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}"
        )

    def _series_to_arrow(self, name: str, s: pd.Series) -> pa.Array:
        col = {c.name: c for c in self.columns}.get(name)
        if col is not None and pa.types.is_timestamp(col.type):
            return _timestamps_to_arrow(name, s, self)
        try:
            try:
                return pa.array(s, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                # mixed objects: keep as strings so the cast step can report the bad rows
                return pa.array(s.astype(object).map(lambda v: None if v is None else str(v)))
        except UnicodeEncodeError:
            values = s.astype(object).tolist()
            bad = [isinstance(v, str) and not _utf8(v) for v in values]
            _reject(
                name,
                bad,
                "value(s) that are not valid UTF-8 text",
                lambda i: f"row {i}: {values[i]!r}",
                "use plain text such as 'AAPL'",
            )
            raise

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
            out.append(_cast_column(table, col, arr, self))
        return pa.table(out, schema=self.arrow_schema)

    def _check_nulls(self, table: pa.Table, series_runs: Runs) -> None:
        for col in self.columns:
            if col.nullable:
                continue
            arr = table.column(col.name)
            if arr.null_count:
                _fail(
                    table,
                    pc.is_null(arr, nan_is_null=True).to_numpy(zero_copy_only=False),
                    col.name,
                    "null",
                    self.key,
                    f"every row needs a {col.name}, e.g. {col.example}",
                )
            if pa.types.is_string(col.type):
                # blank strings, checked once per run of equal values (few for sorted data)
                runs = (
                    series_runs if col.name == self.series_column else column_runs(table, col.name)
                )
                blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(runs.values)), 0)
                blank_np = blank.to_numpy(zero_copy_only=False)
                if blank_np.any():
                    _fail(
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
        _reject(
            self.series_column,
            rows,
            "value that is not a symbol" if n == 1 else "values that are not symbols",
            lambda i: f"row {i}: {values[i].as_py()!r}",
            SYMBOL_RULE,
        )


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_TS_MIN = pd.Timestamp.min.tz_localize("UTC")
_TS_MAX = pd.Timestamp.max.tz_localize("UTC")


def _check_ns_range(name: str, utc: pd.Series, original: Any) -> None:
    """Timestamps are stored in ns: reject what falls outside 1677-09-21 .. 2262-04-11."""
    bad = ((utc < _TS_MIN) | (utc > _TS_MAX)).to_numpy(dtype=bool) & utc.notna().to_numpy()
    _fail_range(name, bad, lambda i: original[i])


def _fail_range(name: str, bad: np.ndarray, value_at: Callable[[int], Any]) -> None:
    _reject(
        name,
        bad,
        "value(s) outside the storable range 1677-09-21 .. 2262-04-11 (nanoseconds since 1970)",
        lambda i: f"row {i}: {value_at(i)!r}",
        "e.g. '2024-03-01'",
    )


def _raise_out_of_range(table: pa.Table, name: str, arr: Any, schema: TableSchema) -> None:
    """Name the first Arrow timestamp/date that does not fit in ns since 1970."""
    if pa.types.is_date32(arr.type):
        ints, factor = arr.cast(pa.int32()).cast(pa.int64()), 86_400 * 10**9
    elif pa.types.is_date64(arr.type):
        ints, factor = arr.cast(pa.int64()), 10**6
    else:
        ints = arr.cast(pa.int64())
        factor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[arr.type.unit]
    valid = ~pc.is_null(ints).to_numpy(zero_copy_only=False)
    v = ints.fill_null(0).to_numpy(zero_copy_only=False)
    info = np.iinfo(np.int64)
    bad = valid & ((v < info.min // factor) | (v > info.max // factor))
    _fail_range(name, bad, lambda i: arr[i].as_py())


def _timestamps_to_arrow(name: str, s: pd.Series, schema: TableSchema) -> pa.Array:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        utc = s.dt.tz_convert("UTC")
        _check_ns_range(name, utc, s.tolist())
        return pa.array(utc.astype("datetime64[ns, UTC]"), type=TIMESTAMP_TYPE)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        _check_ns_range(name, s.dt.tz_localize("UTC"), s.tolist())
        return pa.array(s.astype("datetime64[ns]"), type=pa.timestamp("ns")).cast(TIMESTAMP_TYPE)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        if len(s) == 0:
            return pa.array([], type=TIMESTAMP_TYPE)
        raise ValidationError(
            f"column {name!r} has numbers ({s.dtype}), which are ambiguous as timestamps; "
            f"pass datetimes, dates or ISO strings such as '2024-03-01'",
            column=name,
        )
    return _parse_timestamp_objects(name, s.to_numpy(dtype=object), schema)


def _parse_timestamp_objects(name: str, values: np.ndarray, schema: TableSchema) -> pa.Array:
    nulls = pd.isna(values)
    try:
        parsed = pd.to_datetime(pd.Series(values), utc=True, format="mixed", errors="coerce")
    except (TypeError, ValueError, OverflowError):
        parsed = pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns, UTC]")
    _reject(
        name,
        parsed.isna().to_numpy() & ~nulls,
        "value(s) that are not timestamps",
        lambda i: f"row {i}: {values[i]!r}",
        "use datetimes, dates or ISO strings such as '2024-03-01' or '2024-03-01T14:30:00Z'",
    )
    _check_ns_range(name, parsed, values)
    return pa.array(parsed.astype("datetime64[ns, UTC]"), type=TIMESTAMP_TYPE)


def _cast_column(table: pa.Table, col: Column, arr: Any, schema: TableSchema) -> Any:
    if arr.type == col.type:
        return arr
    if pa.types.is_timestamp(col.type):
        if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
            try:
                return arr.cast(pa.timestamp("ns")).cast(TIMESTAMP_TYPE)
            except pa.ArrowInvalid:
                _raise_out_of_range(table, col.name, arr, schema)
                raise
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), TIMESTAMP_TYPE)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return _parse_timestamp_objects(
                col.name, np.asarray(arr.to_pylist(), dtype=object), schema
            )
        raise ValidationError(
            f"column {col.name!r} has type {arr.type}, which is not a timestamp; pass datetimes, "
            f"dates or ISO strings such as '2024-03-01'",
            column=col.name,
        )
    if pa.types.is_string(col.type):
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return arr.cast(col.type)
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), col.type)
        raise ValidationError(
            f"column {col.name!r} has type {arr.type}; expected strings such as {col.example}",
            column=col.name,
        )
    # numeric
    if pa.types.is_boolean(arr.type):
        raise ValidationError(
            f"column {col.name!r} has booleans; expected numbers such as {col.example}",
            column=col.name,
        )
    try:
        return arr.cast(col.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values = pd.Series(arr.to_pandas(), dtype=object)
    coerced = pd.to_numeric(values, errors="coerce")
    _reject(
        col.name,
        coerced.isna().to_numpy() & ~values.isna().to_numpy(),
        f"value(s) that cannot be cast to {col.type}",
        lambda i: f"{_row_desc(table, i, schema.key)}: {values.iloc[i]!r}",
        f"expected numbers such as {col.example}",
    )
    return pa.array(coerced.to_numpy(dtype="float64"), type=pa.float64()).cast(col.type)


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
        _fail(table, bad_finite, name, "non-finite", key, "prices must be finite, e.g. 101.25")
        with np.errstate(invalid="ignore"):
            _fail(
                table,
                present & (values <= 0),
                name,
                "non-positive",
                key,
                "prices must be greater than 0, e.g. 101.25",
            )
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    _fail(table, h < lo, "high", "below-low", key, "high must be >= low")
    _fail(table, h < o, "high", "below-open", key, "high must be >= open")
    _fail(table, h < c, "high", "below-close", key, "high must be >= close")
    _fail(table, lo > o, "low", "above-open", key, "low must be <= open")
    _fail(table, lo > c, "low", "above-close", key, "low must be <= close")
    vol = np.asarray(table.column("volume").to_numpy(zero_copy_only=False), dtype="float64")
    _fail(table, ~np.isfinite(vol), "volume", "non-finite", key, "volume must be finite, e.g. 1200")
    _fail(table, vol < 0, "volume", "negative", key, "volume must be >= 0, e.g. 1200")


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
    ),
    key=("ticker", "timestamp"),
    checks=_check_prices,
)

ACTION_KINDS = ("dividend", "split")


def _check_actions(table: pa.Table, schema: TableSchema) -> None:
    kind = table.column("kind")
    bad = ~pc.is_in(kind, value_set=pa.array(ACTION_KINDS)).to_numpy(zero_copy_only=False)
    _fail(table, bad, "kind", "unknown", schema.key, f"kind must be one of {list(ACTION_KINDS)}")
    value = table.column("value").to_numpy(zero_copy_only=False).astype("float64")
    _fail(table, ~np.isfinite(value), "value", "non-finite", schema.key, "e.g. 0.24 or 4.0")
    _fail(table, value <= 0, "value", "non-positive", schema.key, "e.g. 0.24 or 4.0")


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
