"""``csv`` and ``parquet``: prices from files on disk.

``path`` is either a folder holding one file per ticker (``AAPL.csv``; the ticker matches the
file stem, case-insensitively) or a single file. A single file holds many tickers in a ticker
column (``ticker``/``symbol`` or ``ticker_column=``), or, without one, the ticker of its stem.

Columns are recognised by name, case-insensitively and ignoring spaces, ``_``, ``-`` and
``<>``: Yahoo exports (``Date,Open,High,Low,Close,Adj Close,Volume``), Stooq exports
(``Date,Open,High,Low,Close,Volume``), tickvault's own column names and common variants
(``datetime``, ``timestamp``, ``vol``, ``adjusted close``). Anything else is mapped with
``columns={"their name": "our name"}``; unmapped extra columns are ignored. A file without a
volume column (Stooq indices) gets volume 0.

Dates may be ISO dates or datetimes; a datetime at local midnight with a UTC offset
(``2024-03-01 00:00:00-05:00``, as pandas writes a yfinance frame) is a daily bar of that
date. Other layouts need ``date_format=`` (``strptime`` codes, e.g. ``"%d/%m/%Y"``).
Empty or ``null`` in all four prices marks a holiday row and is skipped; any other bad value
raises :class:`~tickvault.errors.BadSourceData` naming the file, the line (1-based, the
header is line 1; Parquet: the row) and the column.
"""

from __future__ import annotations

import abc
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import BadSourceData, ConfigError, TickerNotFound
from .base import (
    ADJ_CLOSE,
    PRICE_COLUMNS,
    TimeLike,
    bounds,
    empty_prices,
    validate_prices,
)
from .policy import RetryPolicy

log = logging.getLogger(__name__)

_TARGETS = (*PRICE_COLUMNS, ADJ_CLOSE)
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
}
_NUMERIC = ("open", "high", "low", "close", "volume", ADJ_CLOSE)
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
                    f"pass columns={{...}} to say which to use",
                    source=self.name,
                )
            taken[target] = col
            mapping[col] = target
        missing = [c for c in ("timestamp", *_PRICES) if c not in taken]
        if missing:
            raise BadSourceData(
                f"{file}: no column for {missing}; found columns {header}. Map them with "
                f"columns={{'<your column>': '<one of {list(_TARGETS)}>'}}",
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
    ) -> pd.DataFrame:
        ours = {v: k for k, v in mapping.items()}
        if len(rows.frame) == 0:
            return empty_prices(adj_close=ADJ_CLOSE in ours)
        fail = self._failer(rows, ticker)
        # dates first (a bad date cannot be placed in or out of the range), then only the
        # rows in range: a bad value outside the range asked for does not matter
        stamps = _timestamps(
            rows.frame[ours["timestamp"]], ours["timestamp"], self.date_format, fail
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
            if col != ADJ_CLOSE and bad.any():
                fail(int(np.argmax(bad)), ours[col], "is empty")
        keep = ~holiday
        n = int(keep.sum())
        data: dict[str, Any] = {
            "ticker": pa.array([ticker] * n, pa.string()),
            "timestamp": pa.array(ns.to_numpy()[places][keep], pa.timestamp("ns", "UTC")),
        }
        for col in _NUMERIC:
            if col in numbers:
                data[col] = numbers[col][keep]
            elif col == "volume":
                data[col] = np.zeros(n)
        kept = np.flatnonzero(keep)
        return validate_prices(
            pa.table(data),
            ticker=ticker,
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


class FileSource(abc.ABC):
    """Prices from CSV or Parquet files; see the module docstring. Options keyword-only."""

    format: str = "csv"
    suffixes: tuple[str, ...] = (".csv",)

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        columns: Mapping[str, str] | None = None,
        ticker_column: str | None = None,
        date_format: str | None = None,
        retry_policy: RetryPolicy | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"{self.format} source: path {str(self.path)!r} does not exist")
        self.columns = dict(columns or {})
        bad = {k: v for k, v in self.columns.items() if v not in _TARGETS}
        if bad:
            raise ConfigError(
                f"{self.format} source: columns= maps to unknown column(s) {bad}; map each of "
                f"your columns to one of {list(_TARGETS)}"
            )
        self.ticker_column = ticker_column
        self.date_format = date_format
        self.name = name or self.format
        # files never fail transiently, so the pipeline need not retry
        self.retry_policy = retry_policy or RetryPolicy(attempts=1)
        self._cache: tuple[tuple[int, int], pd.DataFrame, np.ndarray] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- which file ------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        return sorted(
            p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in self.suffixes
        )

    def tickers(self) -> list[str]:
        """The tickers this source can fetch (file stems, or the values of the ticker column)."""
        if self.path.is_dir():
            return [p.stem for p in self._files()]
        raw, _ = self._read_cached(self.path)
        tcol = self._ticker_source_column(list(raw.columns), self.path)
        if tcol is None:
            return [self.path.stem]
        return sorted(str(t).strip() for t in pd.unique(raw[tcol]) if str(t).strip())

    def _file_for(self, ticker: str) -> Path:
        if not ticker or "/" in ticker or os.sep in ticker or ticker.startswith("."):
            raise TickerNotFound(
                f"{self.name} source: {ticker!r} is not a valid ticker file name",
                ticker=ticker,
                source=self.name,
            )
        for suffix in self.suffixes:
            exact = self.path / f"{ticker}{suffix}"
            if exact.is_file():
                return exact
        matches = [p for p in self._files() if p.stem.lower() == ticker.lower()]
        if not matches:
            raise TickerNotFound(
                f"{self.name} source: no file for ticker {ticker!r} in {str(self.path)!r} "
                f"(looked for {ticker}{self.suffixes[0]}, case-insensitively)",
                ticker=ticker,
                source=self.name,
            )
        if len(matches) > 1:
            raise BadSourceData(
                f"{self.name} source: several files match ticker {ticker!r}: "
                f"{[p.name for p in matches]}; keep one",
                ticker=ticker,
                source=self.name,
            )
        return matches[0]

    # -- reading ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _read(self, file: Path) -> tuple[pd.DataFrame, np.ndarray]:
        """The raw rows of ``file`` and the line (or row) number of each."""

    def _read_cached(self, file: Path) -> tuple[pd.DataFrame, np.ndarray]:
        st = file.stat()
        key = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1], self._cache[2]
        raw, places = self._read(file)
        with self._lock:
            self._cache = (key, raw, places)
        return raw, places

    @property
    def parser(self) -> BarParser:
        return BarParser(self.name, self.columns, self.ticker_column, self.date_format)

    def _ticker_source_column(self, header: list[str], file: Path) -> str | None:
        for their, ours in self.parser.mapping(header, file).items():
            if ours == "ticker":
                return their
        return None

    # -- fetch -----------------------------------------------------------------------------

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        lo, hi = bounds(start, end)
        if self.path.is_dir():
            file = self._file_for(ticker)
            raw, places = self._read(file)
            mapping = self.parser.mapping(list(raw.columns), file)
            mapping = {k: v for k, v in mapping.items() if v != "ticker"}
        else:
            file = self.path
            raw, places = self._read_cached(file)
            mapping = self.parser.mapping(list(raw.columns), file)
            tcol = next((k for k, v in mapping.items() if v == "ticker"), None)
            if tcol is None:
                if ticker.lower() != file.stem.lower():
                    raise TickerNotFound(
                        f"{self.name} source: {file} has no ticker column and holds "
                        f"{file.stem!r} only, not {ticker!r}",
                        ticker=ticker,
                        source=self.name,
                    )
            else:
                values = raw[tcol].astype(str).str.strip()
                mask = (values == ticker).to_numpy()
                if not mask.any():
                    mask = (values.str.lower() == ticker.lower()).to_numpy()
                if not mask.any():
                    raise TickerNotFound(
                        f"{self.name} source: ticker {ticker!r} not found in column {tcol!r} "
                        f"of {file}",
                        ticker=ticker,
                        source=self.name,
                    )
                raw, places = raw.loc[mask], places[mask]
                del mapping[tcol]
        rows = Rows(raw, places, file, "line" if self.format == "csv" else "row")
        return self.parser.parse(rows, mapping, ticker, lo, hi)


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
            return local.dt.tz_localize("UTC")
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dt.tz_localize("UTC")
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
    return parsed


class CsvSource(FileSource):
    """``get_source("csv", path=..., columns=None, ticker_column=None, date_format=None)``."""

    format = "csv"
    suffixes = (".csv", ".txt")

    def _read(self, file: Path) -> tuple[pd.DataFrame, np.ndarray]:
        try:
            raw = pd.read_csv(
                file,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                skipinitialspace=True,
            )
        except pd.errors.EmptyDataError:
            raise BadSourceData(f"{file} is empty (no header line)", source=self.name) from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise BadSourceData(f"{file} cannot be read as CSV: {exc}", source=self.name) from exc
        raw.columns = [str(c).strip() for c in raw.columns]
        raw = raw.fillna("")
        lines = np.arange(2, len(raw) + 2)
        blank = (raw.apply(lambda c: c.str.strip()) == "").all(axis=1).to_numpy()
        if blank.any():
            raw, lines = raw.loc[~blank], lines[~blank]
        return raw.reset_index(drop=True), lines


class ParquetSource(FileSource):
    """``get_source("parquet", path=..., columns=None, ticker_column=None)``."""

    format = "parquet"
    suffixes = (".parquet", ".pq")

    def _read(self, file: Path) -> tuple[pd.DataFrame, np.ndarray]:
        try:
            raw = pq.read_table(file).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            raise BadSourceData(
                f"{file} cannot be read as Parquet: {exc}", source=self.name
            ) from exc
        raw = raw.reset_index(drop=not any(n is not None for n in raw.index.names))
        raw.columns = [str(c) for c in raw.columns]
        return raw, np.arange(1, len(raw) + 1)
