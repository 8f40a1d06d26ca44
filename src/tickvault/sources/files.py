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
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import BadSourceData, ConfigError, TickerNotFound
from ..modes import parse_interval
from .actions import Fetched
from .barparser import TARGETS, BarParser, Rows
from .base import (
    TimeLike,
    bounds,
)
from .fileactions import action_columns, actions_in_rows, ticker_rows
from .policy import RetryOption, RetryPolicy
from .provenance import local_path

log = logging.getLogger(__name__)


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
        actions: str | os.PathLike[str] | None = None,
        retry_policy: RetryOption = None,
        name: str | None = None,
        interval: str = "1d",
        tz: str | None = None,
    ) -> None:
        #: the interval of the files' bars; intraday timestamps need an offset or ``tz``
        self.interval = parse_interval(interval)
        self.tz = tz
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    f"{self.format} source: tz={tz!r} is not a time zone; use an IANA name "
                    f"such as 'America/New_York' or 'UTC'"
                ) from None
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ConfigError(
                f"{self.format} source: path {str(self.path)!r} does not exist"
                + _cwd_hint(self.path)
            )
        self.actions = None if actions is None else Path(actions).expanduser()
        if self.actions is not None and not self.actions.is_file():
            raise ConfigError(
                f"{self.format} source: actions file {str(self.actions)!r} does not exist"
                + _cwd_hint(self.actions)
            )
        #: what the database records about where the files are: absolute and resolved, so
        #: ``update`` finds them from any directory (cron) and another spelling of the same
        #: folder is the same source (provenance.set_origin)
        self.recorded_options: dict[str, str] = {"path": local_path(self.path)}
        if self.actions is not None:
            self.recorded_options["actions"] = local_path(self.actions)
        self.columns = dict(columns or {})
        bad = {k: v for k, v in self.columns.items() if v not in TARGETS}
        if bad:
            raise ConfigError(
                f"{self.format} source: columns= maps to unknown column(s) {bad}; map each of "
                f"your columns to one of {list(TARGETS)}"
            )
        self.ticker_column = ticker_column
        self.date_format = date_format
        self.name = name or self.format
        # files never fail transiently, so the pipeline need not retry
        self.retry_policy = RetryPolicy.coerce(retry_policy, "retry_policy") or RetryPolicy(
            attempts=1
        )
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
        return BarParser(
            self.name, self.columns, self.ticker_column, self.date_format, self.interval, self.tz
        )

    def _ticker_source_column(self, header: list[str], file: Path) -> str | None:
        for their, ours in self.parser.mapping(header, file).items():
            if ours == "ticker":
                return their
        return None

    # -- fetch -----------------------------------------------------------------------------

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        lo, hi = _up_to_now(start, end)
        rows, mapping = self._rows(ticker)
        return self.parser.parse(rows, mapping, ticker, lo, hi)

    def fetch_with_actions(
        self, ticker: str, start: TimeLike = None, end: TimeLike = None
    ) -> Fetched:
        """:meth:`fetch` and the ticker's dividends and splits in the range: from
        ``Dividends``/``Stock Splits`` columns of its rows, and from the ``actions`` file
        (:mod:`~tickvault.sources.fileactions`)."""
        lo, hi = _up_to_now(start, end)
        rows, mapping = self._rows(ticker)
        bars = self.parser.parse(rows, mapping, ticker, lo, hi)
        found = [actions_in_rows(rows, ticker, lo, hi, source=self.name, date_format=None)]
        if self.actions is not None:
            reader = CsvSource if self.actions.suffix.lower() in (".csv", ".txt") else ParquetSource
            raw, places = reader._read(self, self.actions)  # type: ignore[arg-type]
            unit = "line" if reader is CsvSource else "row"
            mine = ticker_rows(raw, places, self.actions, ticker, unit)
            found.append(actions_in_rows(mine, ticker, lo, hi, source=self.name))
        parts = [f for f in found if f is not None and len(f)]
        return Fetched(bars, pd.concat(parts, ignore_index=True) if parts else None)

    def all_bars(self, ticker: str | None = None) -> tuple[pd.DataFrame, bool]:
        """Every bar in the single file ``path``, of every ticker, read and validated in one
        pass — what an import wants, where :meth:`fetch` reads one ticker's — and whether
        the tickers came from a ticker column. No time bound: a bar dated in the future is
        not skipped but refused when it is written. ``ticker``: the ticker of a file without
        a ticker column (default: the file's stem)."""
        file = self.path
        if file.is_dir():
            raise ConfigError(f"{self.format} source: all_bars reads one file, not {file}")
        raw, places = self._read(file)
        unit = "line" if self.format == "csv" else "row"
        mapping = self.parser.mapping(list(raw.columns), file)
        tcol = next((k for k, v in mapping.items() if v == "ticker"), None)
        rows = Rows(raw, places, file, unit)
        if tcol is None:
            name = ticker or file.stem
            return self.parser.parse(rows, mapping, name, None, None), False
        del mapping[tcol]
        values = raw[tcol].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        empty = np.flatnonzero(values == "")  # an empty or null cell
        if len(empty):
            raise BadSourceData(
                f"{file} {unit} {int(places[empty[0]])}, column {tcol!r}: empty ticker",
                source=self.name,
            )
        return self.parser.parse(rows, mapping, "", None, None, tickers=values), True

    def _rows(self, ticker: str) -> tuple[Rows, dict[str, str]]:
        """The rows of ``ticker`` (not yet parsed) and the column mapping for them."""
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
        return Rows(raw, places, file, "line" if self.format == "csv" else "row"), mapping


def _cwd_hint(path: Path) -> str:
    """For a relative path that does not exist: where it was looked for."""
    return "" if path.is_absolute() else f" (relative to the current directory {os.getcwd()!r})"


def _up_to_now(start: TimeLike, end: TimeLike) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """The bounds of a fetch: ``end=None`` means now (the source contract), so rows dated
    later in a file (a typo in a year) are not part of an open-ended fetch; a later ``end``
    reaches them, and validation refuses those beyond now + one day, naming the line."""
    lo, hi = bounds(start, end)
    return lo, pd.Timestamp.now(tz="UTC") if hi is None else hi


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


#: the most uncompressed bytes the parquet source reads from one file (its recognised
#: columns, as the file's metadata declares them): 1 GiB; ``max_uncompressed=`` changes it
DEFAULT_MAX_UNCOMPRESSED = 1 << 30


class ParquetSource(FileSource):
    """``get_source("parquet", path=..., columns=None, ticker_column=None,
    max_uncompressed=1 GiB)``: only the columns it recognises are read (bars, the ticker,
    actions); a file whose metadata declares more than ``max_uncompressed`` bytes for them
    is refused before anything is read (a small file can decompress to gigabytes)."""

    format = "parquet"
    suffixes = (".parquet", ".pq")

    def __init__(self, *, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED, **options: Any):
        if (
            isinstance(max_uncompressed, bool)
            or not isinstance(max_uncompressed, int)
            or (max_uncompressed <= 0)
        ):
            raise ConfigError(
                f"parquet source: max_uncompressed={max_uncompressed!r} must be a whole number "
                f"of bytes > 0, e.g. {DEFAULT_MAX_UNCOMPRESSED} (1 GiB, the default)"
            )
        super().__init__(**options)
        self.max_uncompressed = max_uncompressed

    def _check_size(self, file: Path, metadata: pq.FileMetaData, columns: set[str]) -> None:
        declared = _declared_bytes(metadata, columns)
        if declared > self.max_uncompressed:
            raise BadSourceData(
                f"{file}: its columns tickvault reads ({', '.join(sorted(columns))}) declare "
                f"{declared:,} bytes uncompressed, more than max_uncompressed="
                f"{self.max_uncompressed:,}; split the file, or raise the limit "
                f"(--source-option max_uncompressed=BYTES) if it is really that big",
                source=self.name,
            )

    def _read(self, file: Path) -> tuple[pd.DataFrame, np.ndarray]:
        try:
            pf = pq.ParquetFile(file)
            header = pf.schema_arrow.names
            _reject_two_level_columns(file, header, self.parser, self.name)
            wanted = set(self.parser.recognised(header)) | set(action_columns(header))
            self._check_size(file, pf.metadata, wanted)
            raw = pf.read(
                columns=[c for c in header if c in wanted], use_pandas_metadata=True
            ).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            raise BadSourceData(
                f"{file} cannot be read as Parquet: {exc}", source=self.name
            ) from exc
        unnamed = all(n is None for n in raw.index.names)
        if (
            unnamed
            and isinstance(raw.index, pd.DatetimeIndex)
            and "timestamp" not in self.parser.targets([str(c) for c in raw.columns])
        ):  # a frame saved with an unnamed date index: those are its bars' dates
            raw = raw.reset_index(names="timestamp")
        else:
            raw = raw.reset_index(drop=unnamed)
        raw.columns = [str(c) for c in raw.columns]
        return raw, np.arange(1, len(raw) + 1)


def _reject_two_level_columns(file: Path, header: list[str], parser: BarParser, name: str) -> None:
    """A frame with two levels of column names (a yfinance download of several tickers:
    ``('Close', 'AAPL')``) is saved with each pair as one name; say how to reshape it,
    rather than that no column is called close."""
    pairs = [c for c in header if c.startswith("(") and c.endswith(")") and "," in c]
    if pairs and not {"open", "high", "low", "close"} & parser.targets(header):
        raise BadSourceData(
            f"{file}: its columns are pairs such as {pairs[0]} — a frame with two levels of "
            f"column names, like a yfinance download of several tickers; save one row per "
            f"ticker and date instead, e.g. df.stack(level=1, future_stack=True)"
            f".rename_axis(['Date', 'ticker']).reset_index().to_parquet(...)",
            source=name,
        )


def _declared_bytes(metadata: pq.FileMetaData, columns: set[str]) -> int:
    """The uncompressed bytes ``metadata`` declares for the top-level ``columns``."""
    total = 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.path_in_schema.split(".", 1)[0] in columns:
                total += int(chunk.total_uncompressed_size)
    return total
