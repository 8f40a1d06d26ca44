"""Input conversion: pandas and Arrow input as Arrow columns of a table's types.

Vectorised for the shapes users pass (naive and tz-aware datetime64 of any unit, ISO
strings, ``date``/``datetime`` objects, object/``str``/``string`` tickers, int or float
numbers): no per-row Python unless a value is bad, and then the error names the column,
the count, the first bad row and its value (:func:`reject`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ValidationError

TIMESTAMP_TYPE = pa.timestamp("ns", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool = True
    nullable: bool = False
    example: str = ""


def row_description(table: pa.Table, row: int, key: Sequence[str]) -> str:
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


def reject_rows(
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
    reject(column, arr, f"{problem} {noun}", lambda i: row_description(table, i, key), hint)


def reject(column: str, bad: Any, what: str, where: Callable[[int], str], hint: str) -> None:
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
        problem=f"{what}; {hint}" if count == 1 else f"{count} {what}, this the first; {hint}",
    )


def frame_to_arrow(
    data: Any, table: str, columns: Sequence[Column], key: Sequence[str]
) -> pa.Table:
    """``data`` (a pandas DataFrame, Arrow table or record batch) as an Arrow table: pandas
    columns converted to the types of ``columns`` without per-row Python (an index named
    like a column becomes that column); not checked yet (see ``TableSchema.validate``)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        df = _index_as_columns(data, table, columns)
        if not all(isinstance(c, str) for c in df.columns):
            raise ValidationError(
                f"{table}: column names must be strings, got {list(df.columns)!r}; "
                f"expected {[c.name for c in columns]}"
            )
        if df.columns.duplicated().any():
            dup = sorted(set(df.columns[df.columns.duplicated()]))
            raise ValidationError(f"{table}: duplicate column names {dup}")
        if len(df) == 0:
            # no rows: a no-op whatever dtypes pandas inferred for the empty columns
            return pa.table({name: pa.nulls(0) for name in df.columns})
        # (the names are strings, checked above)
        arrays = {str(name): series_to_arrow(str(name), s, columns, key) for name, s in df.items()}
        return pa.table(arrays) if arrays else pa.table({})
    raise ValidationError(
        f"{table}: expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}"
    )


def _index_as_columns(df: pd.DataFrame, table: str, columns: Sequence[Column]) -> pd.DataFrame:
    """``df`` with an index named like a column made that column; a name that is both the
    index and a column, or times in the index while the time column is missing, are
    refused with what to write instead (e.g. a yfinance frame's ``Date`` index)."""
    ours = [c.name for c in columns]
    names = [n for n in df.index.names if n is not None]
    both = [n for n in names if n in ours and n in df.columns]
    if both:
        raise ValidationError(
            f"{table}: {both[0]!r} is both the frame's index and a column; keep one, e.g. "
            f"df.reset_index(drop=True)",
            column=both[0],
        )
    times = [c.name for c in columns if pa.types.is_timestamp(c.type)]
    levels = (
        [df.index]
        if df.index.nlevels == 1
        else [df.index.get_level_values(i) for i in range(df.index.nlevels)]
    )
    in_index = [lv for lv in levels if isinstance(lv, pd.DatetimeIndex) and lv.name not in ours]
    if times and times[0] not in df.columns and times[0] not in names and in_index:
        name = in_index[0].name
        called = f" ({name!r})" if name is not None else ""
        if df.index.nlevels == 1:
            fix = f"df.rename_axis({times[0]!r})"
        elif name is not None:
            fix = f"df.reset_index().rename(columns={{{name!r}: {times[0]!r}}})"
        else:
            fix = f"df.reset_index(), with the times' column named {times[0]!r}"
        raise ValidationError(
            f"{table}: no {times[0]!r} column, but the frame's index{called} holds times: "
            f"name it {times[0]!r}, e.g. {fix}",
            column=times[0],
        )
    return df.reset_index() if any(n in ours for n in names) else df


def series_to_arrow(
    name: str, s: pd.Series, columns: Sequence[Column], key: Sequence[str]
) -> pa.Array:
    col = {c.name: c for c in columns}.get(name)
    if col is not None and pa.types.is_timestamp(col.type):
        return _timestamps_to_arrow(name, s, key)
    if s.dtype == np.float64:
        floats = s.to_numpy()
        if not np.isnan(floats).any():
            # zero copy (NaN, which would become null, is absent)
            return pa.array(floats, type=pa.float64())
    elif s.dtype == object and col is not None and pa.types.is_string(col.type):
        runs = _strings_by_runs(s.to_numpy())
        if runs is not None:
            return runs
    elif isinstance(s.dtype, pd.StringDtype):
        return pa.array(s.array)  # Arrow-backed already (or converted by pandas)
    try:
        try:
            return pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            # mixed objects: keep as strings so the cast step can report the bad rows
            return pa.array(s.astype(object).map(lambda v: None if v is None else str(v)))
    except UnicodeEncodeError:
        values = s.astype(object).tolist()
        bad = [isinstance(v, str) and not _utf8(v) for v in values]
        reject(
            name,
            bad,
            "value(s) that are not valid UTF-8 text",
            lambda i: f"row {i}: {values[i]!r}",
            "use plain text such as 'AAPL'",
        )
        raise


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_TS_MIN = pd.Timestamp.min.tz_localize("UTC")
_TS_MAX = pd.Timestamp.max.tz_localize("UTC")
#: nanoseconds per unit of Arrow timestamps and dates
UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1, "date": 86_400 * 10**9}
#: Exceptions of a failed fast conversion (the exact, slower path then reports the problem).
_ARROW_FAILED = (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError)


def _check_ns_range(name: str, utc: pd.Series, original: Any) -> None:
    """Timestamps are stored in ns: reject what falls outside 1677-09-21 .. 2262-04-11."""
    bad = ((utc < _TS_MIN) | (utc > _TS_MAX)).to_numpy(dtype=bool) & utc.notna().to_numpy()
    _fail_range(name, bad, lambda i: original[i])


def _fail_range(name: str, bad: np.ndarray, value_at: Callable[[int], Any]) -> None:
    reject(
        name,
        bad,
        "value(s) outside the storable range 1677-09-21 .. 2262-04-11 (nanoseconds since 1970)",
        lambda i: f"row {i}: {value_at(i)!r}",
        "e.g. '2024-03-01'",
    )


def _to_utc_ns(name: str, arr: Any, value_at: Callable[[int], Any] | None = None) -> Any:
    """An Arrow timestamp (naive = UTC, or aware) or date array as ``timestamp[ns, UTC]``,
    one vectorised cast. Values that do not fit in ns since 1970 are rejected like every
    bad value (``value_at(row)`` shows the input value; the Arrow value by default) — the
    detail is computed only when the cast failed."""
    try:
        if arr.type == TIMESTAMP_TYPE:
            return arr
        if pa.types.is_date(arr.type):
            return arr.cast(pa.timestamp("ns")).cast(TIMESTAMP_TYPE)
        return arr.cast(TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        _raise_out_of_range(name, arr, value_at)
        raise


def _raise_out_of_range(name: str, arr: Any, value_at: Callable[[int], Any] | None) -> None:
    """Name the first Arrow timestamp/date that does not fit in ns since 1970."""
    if pa.types.is_date32(arr.type):
        ints, factor = arr.cast(pa.int32()).cast(pa.int64()), UNIT_NS["date"]
    elif pa.types.is_date64(arr.type):
        ints, factor = arr.cast(pa.int64()), 10**6
    else:
        ints, factor = arr.cast(pa.int64()), UNIT_NS[arr.type.unit]
    valid = ~pc.is_null(ints).to_numpy(zero_copy_only=False)
    v = np.asarray(ints.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    lo = -(-_TS_MIN.value // factor)  # the smallest storable value, rounded up
    hi = _TS_MAX.value // factor
    bad = valid & ((v < lo) | (v > hi))
    _fail_range(name, bad, value_at or (lambda i: arr[i].as_py()))


def _timestamps_to_arrow(name: str, s: pd.Series, key: Sequence[str]) -> Any:
    """A pandas timestamp column as ``timestamp[ns, UTC]``, vectorised for what users pass:
    datetime64 (naive = UTC; any unit) and tz-aware columns are one Arrow cast, ``date`` and
    ``datetime`` objects one pandas conversion, ISO strings Arrow's parser. Anything else (mixed
    objects, other string formats, bad values) takes the exact pandas path, which also names
    the first bad value."""
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return pa.array(s)  # cast (or rejected) in the cast step, like Arrow input
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return _to_utc_ns(name, _epoch_values(s), lambda i: s.iloc[i])
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if len(s) == 0:
            return pa.array([], type=TIMESTAMP_TYPE)
        raise ValidationError(
            f"column {name!r} has numbers ({dtype}), which are ambiguous as timestamps; "
            f"pass datetimes, dates or ISO strings such as '2024-03-01'",
            column=name,
        )
    if isinstance(dtype, pd.StringDtype):
        try:
            strings = pa.array(s.array)
        except _ARROW_FAILED:
            pass
        else:
            return _parse_timestamp_strings(name, strings, key)
    values = s.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(values, skipna=True)
    try:
        if kind == "string":
            strings = pa.array(values, type=pa.string(), from_pandas=True)
            return _parse_timestamp_strings(name, strings, key, values)
        if kind in ("date", "datetime"):
            # date and datetime objects (a "date" column may hold datetimes too), in one
            # pass: dates at 00:00, aware values converted and naive ones read as UTC
            parsed = pd.to_datetime(values, utc=True)
            return _to_utc_ns(name, pa.array(parsed), lambda i: values[i])
    except _ARROW_FAILED:
        pass
    return _parse_timestamp_objects(name, values, key)


def _epoch_values(s: pd.Series) -> pa.Array:
    """A datetime64 (naive: UTC) or tz-aware column as Arrow UTC timestamps in its own unit,
    without a copy: the values are epoch offsets already; NaT becomes null."""
    dtype = s.dtype
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(str(dtype))[0]
    ints = s.to_numpy(dtype=f"datetime64[{unit}]").view(np.int64)
    nat = ints == np.iinfo(np.int64).min
    epoch = pa.array(ints, type=pa.int64(), mask=nat if nat.any() else None)
    return epoch.view(pa.timestamp(unit, "UTC"))


def _strings_by_runs(values: np.ndarray) -> pa.Array | None:
    """An object column of strings that come in runs of equal values (a ticker column
    sorted by ticker) as Arrow strings, converting one value per run instead of one per row.
    None when the column is not like that; the general conversion then handles it (and any
    bad value: a null or a non-string always starts a run of its own here)."""
    n = len(values)
    if n < 64:
        return None
    try:
        change = np.asarray(values[1:] != values[:-1], dtype=bool)
    except (TypeError, ValueError):  # e.g. pd.NA, whose comparisons are not booleans
        return None
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    if len(starts) > n // 16:
        return None
    firsts = values[starts]
    if not all(type(v) is str for v in firsts):
        return None
    try:
        distinct = pa.array(firsts, type=pa.string())
    except _ARROW_FAILED:
        return None
    lengths = np.diff(np.append(starts, n))
    return distinct.take(pa.array(np.repeat(np.arange(len(starts), dtype=np.int32), lengths)))


def _parse_timestamp_strings(
    name: str, strings: Any, key: Sequence[str], values: np.ndarray | None = None
) -> Any:
    """Arrow string timestamps as ``timestamp[ns, UTC]``. Arrow's parser takes strict ISO
    8601 (all naive, read as UTC, or all with a zone); other formats, a mix of naive and
    zoned strings and bad or out-of-range values go through pandas, which also names the
    first bad value. ``values``: the same strings as objects, if at hand."""
    for first in (pa.timestamp("ns"), TIMESTAMP_TYPE):
        try:
            return strings.cast(first).cast(TIMESTAMP_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    if values is None:
        values = np.asarray(strings.to_pylist(), dtype=object)
    return _parse_timestamp_objects(name, values, key)


#: What a timestamp string may look like without a named ``date_format``: ISO 8601 (extended
#: form), a date with an optional time of day and zone — year first, so never ambiguous.
ISO_8601 = re.compile(
    r"^\s*\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?)?"
    r"\s*(?:Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)

#: The formats a timestamp column accepts, for error messages.
ACCEPTED_TIMES = (
    "pass datetimes, dates or ISO 8601 strings such as '2024-03-01' or "
    "'2024-03-01T14:30:00Z' (never guessed: '01/02/2024' could be either day), or name the "
    "format of your strings, e.g. upsert_prices(df, date_format='%d/%m/%Y')"
)


def _guesses(name: str, values: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    """Where ``values`` holds strings that are not ISO 8601 (parsing them would be a guess:
    day or month first?, made row by row); ValidationError for numbers (seconds or
    nanoseconds since when?)."""
    numbers = np.fromiter(
        (
            isinstance(v, int | float | np.number) and not isinstance(v, np.datetime64)
            for v in values
        ),
        dtype=bool,
        count=len(values),
    )
    reject(
        name,
        numbers & ~nulls,
        "number(s), which are ambiguous as timestamps",
        lambda i: f"row {i}: {values[i]!r}",
        ACCEPTED_TIMES,
    )
    strings = _is_string(values)
    guessed = np.zeros(len(values), dtype=bool)
    if strings.any():
        iso = pd.Series(values[strings], dtype=object).str.match(ISO_8601).to_numpy(dtype=bool)
        guessed[np.flatnonzero(strings)[~iso]] = True
    return guessed


def _parse_timestamp_objects(name: str, values: np.ndarray, key: Sequence[str]) -> pa.Array:
    nulls = pd.isna(values)
    guessed = _guesses(name, values, nulls)
    unguessed = values
    if guessed.any():
        unguessed = values.copy()
        unguessed[guessed] = None
    try:
        parsed = pd.to_datetime(pd.Series(unguessed), utc=True, format="mixed", errors="coerce")
    except (TypeError, ValueError, OverflowError):
        parsed = pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns, UTC]")
    reject(
        name,
        (parsed.isna().to_numpy() & ~nulls) | guessed,
        "value(s) that are not timestamps",
        lambda i: f"row {i}: {values[i]!r}",
        ACCEPTED_TIMES,
    )
    _check_ns_range(name, parsed, values)
    return pa.array(parsed.astype("datetime64[ns, UTC]"), type=TIMESTAMP_TYPE)


def apply_date_format(data: Any, column: str, date_format: str) -> Any:
    """``data`` (a DataFrame, Arrow table or record batch) with the strings of its time
    ``column`` parsed with ``date_format`` (``strptime`` codes, e.g. ``'%d/%m/%Y'``): every
    row the same way. A string that does not match is a ValidationError naming the first
    one; values that are not strings (datetimes, nulls) are left for validation."""
    if not isinstance(date_format, str) or "%" not in date_format:
        raise ValidationError(
            f"date_format={date_format!r} is not a strptime format; name the format of your "
            f"dates with % codes, e.g. date_format='%d/%m/%Y' or '%m/%d/%Y %H:%M'",
            column=column,
        )
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        if column not in data.column_names:
            return data
        arr = data.column(column)
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return data
        values = np.asarray(arr.to_pylist(), dtype=object)
        parsed = _parse_with_format(column, values, date_format)
        i = data.column_names.index(column)
        return data.set_column(i, column, pa.array(parsed, type=TIMESTAMP_TYPE))
    if isinstance(data, pd.DataFrame):
        if column not in data.columns and column in data.index.names:
            data = data.reset_index()
        if column not in data.columns:
            return data
        s = data[column]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or (
            isinstance(s.dtype, np.dtype) and s.dtype.kind == "M"
        ):
            return data
        values = s.to_numpy(dtype=object)
        parsed = _parse_with_format(column, values, date_format)
        strings = _is_string(values)
        if strings.all():
            out = pd.Series(parsed, index=s.index)
        else:  # datetimes among the strings: keep them as they are
            out = pd.Series(np.where(strings, parsed.astype(object), values), index=s.index)
        return data.assign(**{column: out})
    return data


def _is_string(values: np.ndarray) -> np.ndarray:
    return np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))


def _parse_with_format(column: str, values: np.ndarray, date_format: str) -> pd.Series:
    """The strings of ``values`` parsed with ``date_format`` as UTC timestamps (naive
    results are UTC); other values become NaT."""
    strings = _is_string(values)
    text = pd.Series(values, dtype=object).where(strings)
    try:
        parsed = pd.to_datetime(text, format=date_format, utc=True, errors="coerce")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"date_format={date_format!r} cannot be used: {exc}; e.g. date_format='%d/%m/%Y'",
            column=column,
        ) from None
    reject(
        column,
        strings & parsed.isna().to_numpy(),
        f"value(s) that do not match date_format={date_format!r}",
        lambda i: f"row {i}: {values[i]!r}",
        "fix them, or name the format they are in with strptime codes, e.g. "
        "date_format='%d/%m/%Y %H:%M'",
    )
    return parsed.astype("datetime64[ns, UTC]")


def cast_column(table: pa.Table, col: Column, arr: Any, key: Sequence[str]) -> Any:
    if arr.type == col.type:
        return arr
    if pa.types.is_timestamp(col.type):
        if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
            return _to_utc_ns(col.name, arr)
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), TIMESTAMP_TYPE)
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return _parse_timestamp_strings(col.name, arr, key)
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
    if pa.types.is_integer(col.type) and pa.types.is_floating(arr.type):
        return _float_to_int(table, col, arr, key)
    try:
        return arr.cast(col.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values = pd.Series(arr.to_pandas(), dtype=object)
    coerced = pd.to_numeric(values, errors="coerce")
    reject(
        col.name,
        coerced.isna().to_numpy() & ~values.isna().to_numpy(),
        f"value(s) that cannot be cast to {col.type}",
        lambda i: f"{row_description(table, i, key)}: {values.iloc[i]!r}",
        f"expected numbers such as {col.example}",
    )
    return pa.array(coerced.to_numpy(dtype="float64"), type=pa.float64()).cast(col.type)


def _float_to_int(table: pa.Table, col: Column, arr: Any, key: Sequence[str]) -> Any:
    """Floats (pandas gives an integer column with gaps float64) as whole numbers: NaN is
    null, a fraction or an infinity is refused naming the first such row."""
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype="float64")
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = ~missing & (~np.isfinite(values) | (values != np.round(values)))
    reject(
        col.name,
        bad,
        "value(s) that are not whole numbers",
        lambda i: f"{row_description(table, i, key)}: {float(values[i])!r}",
        f"{col.name} takes whole numbers, e.g. {col.example}",
    )
    filled = np.where(missing, 0, values).astype("int64")
    return pa.array(filled, type=col.type, mask=missing if missing.any() else None)
