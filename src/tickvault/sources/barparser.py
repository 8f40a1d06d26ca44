"""Bars from tabular text: the column mapping and row parsing shared by the CSV and Parquet
file sources and the Stooq response body. Every bad value raises
:class:`~tickvault.errors.BadSourceData` naming the file (or response), the line and the
column."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import BadSourceData
from .base import ADJ_CLOSE, OPTIONAL_COLUMNS, PRICE_COLUMNS, empty_prices, validate_prices

TARGETS = (*PRICE_COLUMNS, *OPTIONAL_COLUMNS)


_ALIASES: dict[str, str] = {
    "ticker": "ticker",
    "symbol": "ticker",
    "date": "timestamp",
    "datetime": "timestamp",
    "timestamp": "timestamp",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": ADJ_CLOSE,
    "adjustedclose": ADJ_CLOSE,
    "volume": "volume",
    "vol": "volume",
    "vwap": "vwap",
    "tradecount": "trade_count",
    "trades": "trade_count",
    "numberoftrades": "trade_count",
}


_NUMERIC = ("open", "high", "low", "close", "volume", *OPTIONAL_COLUMNS)


_PRICES = ("open", "high", "low", "close")


_MISSING = frozenset({"", "null", "nan", "na", "n/a", "none", "-"})


_MIDNIGHT = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-<>]", "", str(name)).lower()


class Rows:
    """One file's rows for one ticker, with where each came from."""

    def __init__(self, frame: pd.DataFrame, places: np.ndarray, file: Path, unit: str) -> None:
        self.frame = frame.reset_index(drop=True)
        self.places = places
        self.file = file
        self.unit = unit  # "line" (CSV) or "row" (Parquet)

    def where(self, i: int) -> str:
        return f"{self.file} {self.unit} {int(self.places[i])}"


@dataclass(frozen=True)
class BarParser:
    """Turns rows of text or typed columns (a CSV or Parquet file, an HTTP response body)
    into validated bars: maps their columns onto ours (``columns=`` first, then the usual
    aliases), parses dates and numbers, and names the file and line of anything bad."""

    name: str
    columns: Mapping[str, str] = field(default_factory=dict)
    ticker_column: str | None = None
    date_format: str | None = None
    #: ``"1d"``: dates (a midnight with an offset is that date); intraday: instants, which
    #: need a UTC offset or ``tz``
    interval: str = "1d"
    #: the time zone of naive intraday timestamps (``"America/New_York"``)
    tz: str | None = None
    #: what to do about columns that are missing or map twice (None: "map them with
    #: ``columns=``", for the file sources, which take that option; the Stooq source,
    #: which does not, says what it expects instead)
    hint: str | None = None

    def recognised(self, header: list[str]) -> list[str]:
        """The columns of ``header`` this parser may use (mapped by ``columns=``, the ticker
        column, or a known alias); a reader need read no other."""
        return [
            c
            for c in header
            if c in self.columns or c == self.ticker_column or _norm(c) in _ALIASES
        ]

    def targets(self, header: list[str]) -> set[str]:
        """Our columns that ``header``'s columns map to (nothing is checked)."""
        found = {self.columns.get(c) or _ALIASES.get(_norm(c)) for c in header}
        if self.ticker_column in header:
            found.add("ticker")
        return {t for t in found if t}

    def mapping(self, header: list[str], file: Path) -> dict[str, str]:
        """``{their column: our column}`` for ``file``."""
        mapping: dict[str, str] = {}
        taken: dict[str, str] = {}
        for col in header:
            target = self.columns.get(col)
            if target is None and col not in self.columns:
                target = _ALIASES.get(_norm(col))
            if col == self.ticker_column:
                target = "ticker"
            if target is None:
                continue
            if target in taken:
                raise BadSourceData(
                    f"{file}: columns {taken[target]!r} and {col!r} both map to {target!r}; "
                    + (self.hint or "pass columns={...} to say which to use"),
                    source=self.name,
                )
            taken[target] = col
            mapping[col] = target
        missing = [c for c in ("timestamp", *_PRICES) if c not in taken]
        if missing:
            raise BadSourceData(
                f"{file}: no column for {missing}; found columns {header}. "
                + (
                    self.hint
                    or f"Map them with columns={{'<your column>': '<one of {list(TARGETS)}>'}}"
                ),
                source=self.name,
            )
        if self.ticker_column is not None and self.ticker_column not in header:
            raise BadSourceData(
                f"{file}: ticker_column {self.ticker_column!r} not found; columns are {header}",
                source=self.name,
            )
        return mapping

    def parse(
        self,
        rows: Rows,
        mapping: dict[str, str],
        ticker: str,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        *,
        tickers: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Validated bars of ``rows`` in [lo, hi], all of ``ticker`` — or, with ``tickers``
        (one name per row), of several tickers at once: a file read whole costs one pass,
        not one per ticker (an import; 6 ms a ticker otherwise)."""
        ours = {v: k for k, v in mapping.items()}
        if len(rows.frame) == 0:
            return empty_prices(adj_close=ADJ_CLOSE in ours)
        fail = self._failer(rows, ticker)
        # dates first (a bad date cannot be placed in or out of the range), then only the
        # rows in range: a bad value outside the range asked for does not matter
        if self.interval == "1d":
            stamps = _timestamps(
                rows.frame[ours["timestamp"]], ours["timestamp"], self.date_format, fail
            )
        else:
            stamps = _instants(
                rows.frame[ours["timestamp"]], ours["timestamp"], self.date_format, self.tz, fail
            )
        ns = stamps.astype("datetime64[ns, UTC]")
        in_range = np.ones(len(ns), dtype=bool)
        if lo is not None:
            in_range &= (ns >= lo).to_numpy()
        if hi is not None:
            in_range &= (ns <= hi).to_numpy()
        places = np.flatnonzero(in_range)
        raw = rows.frame.iloc[places]
        sub = Rows(raw, rows.places[places], rows.file, rows.unit)
        fail = self._failer(sub, ticker)
        numbers: dict[str, np.ndarray] = {}
        missing: dict[str, np.ndarray] = {}
        for col in _NUMERIC:
            if col in ours:
                numbers[col], missing[col] = _numbers(sub.frame[ours[col]], ours[col], fail)
        holiday = np.logical_and.reduce([missing[c] for c in _PRICES])
        for col, miss in missing.items():
            bad = miss & ~holiday
            if col not in OPTIONAL_COLUMNS and bad.any():
                i = int(np.argmax(bad))
                fail(i, ours[col], missing_problem(sub.frame[ours[col]].iloc[i]))
        keep = ~holiday
        n = int(keep.sum())
        names = (
            pa.array([ticker] * n, pa.string())
            if tickers is None
            else pa.array(tickers[places][keep], pa.string())
        )
        data: dict[str, Any] = {
            "ticker": names,
            "timestamp": pa.array(
                ns.dt.tz_localize(None).to_numpy()[places][keep], pa.timestamp("ns", "UTC")
            ),
        }
        for col in _NUMERIC:
            if col in numbers and col in OPTIONAL_COLUMNS:  # an empty cell is null
                values = numbers[col][keep]
                data[col] = pa.array(values, pa.float64(), mask=np.isnan(values))
            elif col in numbers:
                data[col] = numbers[col][keep]
            elif col == "volume":
                data[col] = np.zeros(n)
        kept = np.flatnonzero(keep)
        return validate_prices(
            pa.table(data),
            ticker=ticker if tickers is None else None,
            source=self.name,
            where=lambda r: sub.where(int(kept[r])),
        )

    def _failer(self, rows: Rows, ticker: str) -> Callable[[int, str, str], None]:
        def fail(i: int, column: str, problem: str) -> None:
            raise BadSourceData(
                f"{rows.where(i)}, column {column!r}: {problem}",
                ticker=ticker,
                source=self.name,
            )

        return fail


def missing_problem(value: Any) -> str:
    """What is wrong with a cell read as a missing number: ``is empty`` for a blank, ``is
    NaN`` for a not-a-number (text or float), else the marker as written (``'null'``)."""
    if value is None or value is pd.NA:
        return "is empty"
    if isinstance(value, float | np.floating) and np.isnan(value):
        return "is NaN (not a number)"
    text = str(value).strip()
    if text == "":
        return "is empty"
    if text.lower() == "nan":
        return f"is {text!r} (NaN, not a number)"
    return f"is {text!r}, a missing value"


def _numbers(
    s: pd.Series, column: str, fail: Callable[[int, str, str], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Float values of ``s`` and a mask of missing ones; fail on text that is no number."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        return values, np.isnan(values)
    text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    miss = text.str.lower().isin(_MISSING).to_numpy()
    values = pd.to_numeric(text.where(~miss), errors="coerce").to_numpy(dtype="float64")
    bad = np.isnan(values) & ~miss
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, column, f"{text.iloc[i]!r} is not a number")
    return values, miss


def _timestamps(
    s: pd.Series, column: str, date_format: str | None, fail: Callable[[int, str, str], None]
) -> pd.Series:
    """UTC timestamps of ``s``; daily stamps at 00:00 UTC of their (local) date."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        local = s.dt.tz_localize(None)
        if bool((local == local.dt.normalize()).all()):
            return _storable(local.dt.tz_localize("UTC"), s, column, fail)
        return _storable(s.dt.tz_convert("UTC"), s, column, fail)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        # a Parquet file's dates may be of any unit (seconds: back to year 1 and beyond)
        return _storable(s.dt.tz_localize("UTC"), s, column, fail)
    text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    if date_format is not None:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
        hint = f"does not match date_format={date_format!r}"
    else:
        text = text.str.replace(_MIDNIGHT, r"\1", regex=True)
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        hint = "is not an ISO date such as 2024-03-01 (pass date_format= for other layouts)"
    bad = parsed.isna().to_numpy() & (text != "").to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, column, f"{text.iloc[i]!r} {hint}")
    empty = (text == "").to_numpy()
    if empty.any():
        fail(int(np.argmax(empty)), column, "has no date")
    return _storable(parsed, text, column, fail)


_TS_MIN = pd.Timestamp.min.tz_localize("UTC")
_TS_MAX = pd.Timestamp.max.tz_localize("UTC")


def _storable(
    parsed: pd.Series, text: pd.Series, column: str, fail: Callable[[int, str, str], None]
) -> pd.Series:
    """``parsed`` unless a date falls outside what nanoseconds since 1970 hold (a year 2300
    typo): that one is named with its file and line like every other bad value."""
    outside = ((parsed < _TS_MIN) | (parsed > _TS_MAX)).to_numpy(dtype=bool)
    if outside.any():
        i = int(np.argmax(outside))
        fail(
            i,
            column,
            f"{str(text.iloc[i])!r} is outside the storable range 1677-09-21 .. 2262-04-11 "
            f"(nanoseconds since 1970)",
        )
    return parsed


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


def _instants(
    s: pd.Series,
    column: str,
    date_format: str | None,
    tz: str | None,
    fail: Callable[[int, str, str], None],
) -> pd.Series:
    """UTC instants of intraday timestamps: with a UTC offset (or a tz-aware column) as
    given; naive ones in ``tz``. A naive timestamp without ``tz`` is refused, never guessed."""
    need = (
        "intraday timestamps need a UTC offset, e.g. 2024-03-01T09:30:00-05:00, or the "
        "source option tz= naming their zone, e.g. tz='America/New_York'"
    )
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return _storable(s.dt.tz_convert("UTC"), s, column, fail)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if tz is None:
            fail(0, column, f"holds naive timestamps (no time zone); {need}")
        return _storable(_localized(s, tz or "UTC", column, fail), s, column, fail)
    text = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        fail(int(np.argmax(empty)), column, "has no timestamp")
    aware = text.str.contains(_OFFSET).to_numpy()
    if not aware.all() and tz is None:
        i = int(np.argmax(~aware))
        fail(i, column, f"{text.iloc[i]!r} has no UTC offset; {need}")
    fmt = date_format or "ISO8601"
    hint = (
        f"does not match date_format={date_format!r}"
        if date_format
        else "is not an ISO timestamp such as 2024-03-01T09:30:00-05:00"
    )
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], format=fmt, errors="coerce", utc=True)
    if not aware.all():
        naive = pd.to_datetime(text[~aware], format=fmt, errors="coerce")
        out[~aware] = _localized(naive, tz or "UTC", column, fail)
    bad = out.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        fail(i, column, f"{text.iloc[i]!r} {hint}")
    return out


def _localized(
    s: pd.Series, tz: str, column: str, fail: Callable[[int, str, str], None]
) -> pd.Series:
    """Naive wall-clock times in ``tz`` as UTC; a time that does not exist or is ambiguous
    there (the clock change) is refused naming the row."""
    try:
        out = s.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    except Exception as exc:  # an unknown zone name
        fail(0, column, f"tz={tz!r} is not a time zone such as 'America/New_York' ({exc})")
        raise
    lost = (out.isna() & s.notna()).to_numpy()
    if lost.any():
        i = int(np.argmax(lost))
        fail(
            int(s.index[i]),  # the rows' index is their position (Rows resets it)
            column,
            f"{str(s.iloc[i])!r} is not one instant in {tz} (skipped or repeated by the "
            f"clock change); write it with its UTC offset",
        )
    return out
