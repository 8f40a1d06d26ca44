"""Importing Parquet files another program wrote into a database.

The original two-phase pattern kept its bars as plain Parquet files (``db/prices/*.parquet``:
a file per ticker, per partition, or a Hive-partitioned folder such as
``prices/ticker=AAPL/part-0.parquet``); so do ``DataFrame.to_parquet`` scripts and other
tools. :func:`import_parquet` reads every such file under a path, maps its columns the way
the ``parquet`` source does (tickvault's names, Yahoo's, ``symbol``, ``Date`` as the index,
or ``columns=``), validates every bar with the file and row of anything wrong, and upserts
them — a dry run unless ``apply=True``, like delete, restore and vacuum, so that the tickers
and ranges it found can be looked at first.

Nothing is committed unless every file is readable and every bar valid: files are read in
name order, validated, and written in batches of data files that no version names yet; at
the end they are committed — in one commit, or in a few where a later file holds bars of an
earlier one (the later file's values win, as in every upsert). A failure deletes the batches
written; an import killed part way leaves orphans that ``vacuum`` removes, and is run
again. An import running longer than :data:`COMMIT_EVERY_SECONDS` also commits as it goes
(a file no version names would otherwise be taken for an orphan after an hour): what it
committed before a failure stays. The files read are never changed or deleted.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BadSourceData, ConfigError, ValidationError
from .formats import iso_utc
from .modes import INTERVAL_SECONDS, parse_interval, prices_table
from .schema import DAY_NS
from .storage import FileInfo, ParquetDB, database_exists
from .storage.core.file_writer import is_data_file_name
from .storage.core.log import LOG_DIR
from .storage.db import MARKER

log = logging.getLogger(__name__)

#: the file names read as Parquet
SUFFIXES = (".parquet", ".pq", ".parq")
#: Hive partition keys whose value is the ticker of a file without a ticker column
TICKER_KEYS = ("ticker", "symbol")
#: bars written per batch of files (each batch's bars are held in memory until written)
BATCH_ROWS = 1_000_000
#: an import still running this long after it wrote a batch commits what it has written:
#: a file no version names is an orphan to ``vacuum`` (and the automatic reclaim) once an
#: hour old, so the batches of an import of billions of bars would be deleted before its
#: end; shorter imports commit once, at the end
COMMIT_EVERY_SECONDS = 20 * 60.0


@dataclass
class ImportReport:
    """What an import found (``dry_run``) or wrote."""

    dry_run: bool
    path: str
    table: str
    files: list[str] = field(default_factory=list)
    tickers: list[str] = field(default_factory=list)
    rows: int = 0
    first: str | None = None
    last: str | None = None
    #: tickers taken from a file's name (no ticker column, no ``ticker=`` folder): worth a
    #: look in a dry run — a file named ``2024.parquet`` holds no ticker called 2024
    named_by_file: list[str] = field(default_factory=list)
    #: files under the folder that were not read (not named ``*.parquet``/``*.pq``/
    #: ``*.parq``: a CSV beside the Parquet files); hidden and ``_`` files are not listed
    skipped: list[str] = field(default_factory=list)
    commits: int = 0
    version: int | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _walk(path: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """The Parquet files at ``path`` (a file, or every one under a folder, hidden and
    ``_`` folders skipped) and the other files beside them (hidden files and ``_`` markers
    such as ``_SUCCESS`` left out), both in name order. A tickvault database in
    the folder (the one being imported into, ``--db old/new``) is not read: its files
    include versions replaced since, which would overwrite newer bars."""
    from .sources.files import _cwd_hint

    root = Path(path).expanduser()
    if not root.exists():
        raise ConfigError(f"import: path {str(root)!r} does not exist" + _cwd_hint(root))
    if root.is_file() and is_data_file_name(root.name):
        _refuse_table_files(root.parent)
    if root.is_file():
        return [root], []
    found, other = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        if MARKER in filenames:
            dirnames.clear()  # the root is no database: import_parquet checked
            continue
        if LOG_DIR in dirnames or any(is_data_file_name(f) for f in filenames):
            _refuse_table_files(Path(dirpath))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for f in filenames:
            if f.lower().endswith(SUFFIXES):
                found.append(Path(dirpath) / f)
            elif not f.startswith((".", "_")):
                other.append(Path(dirpath) / f)
    return sorted(found), sorted(other)


def _refuse_table_files(folder: Path) -> None:
    """A tickvault table's folder (copied without its database's ``tickvault.json``): its
    data files are not the table — superseded versions' files lie beside the live ones,
    and which is newer only its log says. Read in name order they would let old bars
    win."""
    raise ConfigError(
        f"import: {str(folder)!r} holds a tickvault table's files (part-<id>.parquet and a "
        f"_log folder), not bars another program wrote: they include versions replaced "
        f"since, and only the table's log says which are live. Open the folder above it as "
        f"a database instead, ParquetDB({str(folder.parent)!r}) (a database that lost only "
        f"its tickvault.json opens and gets it back), or copy a table with `tickvault export`"
    )


def import_files(path: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """The Parquet files an import of ``path`` reads and the other files it does not, as
    :func:`_walk`; ConfigError for a path that is not there, holds no Parquet file, or is
    (inside) a tickvault database. Checked before a database is created to import into."""
    root = Path(path).expanduser()
    if root.exists() and (
        database_exists(root) or any(database_exists(p) for p in root.resolve().parents)
    ):
        raise ConfigError(
            f"import: {str(root)!r} is (inside) a tickvault database; its files are read "
            f"through it, not imported (copy it with `tickvault export`, or read it with "
            f"ParquetDB({str(root)!r}))"
        )
    files, other = _walk(root)
    if not files:
        raise ConfigError(
            f"import: no Parquet files (*.parquet, *.pq) under {str(root)!r}; pass the "
            f"folder that holds them, e.g. tickvault import ./old_db/prices"
        )
    return files, other


def _ticker_of_path(file: Path, root: Path) -> str | None:
    """The ticker a Hive partition folder (``ticker=AAPL``) gives ``file``, if any. Its
    value is URL-decoded, as pyarrow and pandas write it (``partition_cols=["ticker"]``
    makes ``^GSPC`` the folder ``ticker=%5EGSPC``)."""
    for part in file.relative_to(root).parts[:-1] if file != root else ():
        key, eq, value = part.partition("=")
        if eq and key.strip().lower() in TICKER_KEYS and value.strip():
            return unquote(value).strip()
    return None


def import_parquet(
    db: ParquetDB,
    path: str | os.PathLike[str],
    *,
    apply: bool = False,
    interval: str | None = None,
    columns: Mapping[str, str] | None = None,
    ticker_column: str | None = None,
    date_format: str | None = None,
    tz: str | None = None,
    on_file: Callable[[int, int, int], None] | None = None,
) -> ImportReport:
    """Import the bars of the Parquet files at ``path`` into ``db`` (the table of
    ``interval``; default the daily ``prices``). A dry run unless ``apply``: the report says
    what would be imported. ``columns``, ``ticker_column``, ``date_format``, ``tz``: as for
    the ``parquet`` source. ``on_file(done, total, rows)`` after each file read (progress).

    Raises :class:`~tickvault.errors.BadSourceData` naming the file, row and column of the
    first bad value, and ConfigError for a path that is not there, holds no Parquet file,
    or is a tickvault database; the database is then unchanged."""
    from .sources.files import ParquetSource

    iv = parse_interval(interval or "1d")
    table = prices_table(iv)
    root = Path(path).expanduser()
    files, other = import_files(root)
    report = ImportReport(dry_run=not apply, path=str(root), table=table)
    report.skipped = [str(f) for f in other]
    if other:
        log.warning("import: %d file(s) not Parquet, not read: %s", len(other), other[0])
    options: dict[str, Any] = {"columns": columns, "ticker_column": ticker_column}
    options |= {"date_format": date_format, "tz": tz, "interval": iv}

    unreadable: list[str] = []  # "file (why)" of each file that is no Parquet file
    headers: set[str] = set()  # every column name seen, for columns= that name none

    def read(file: Path) -> tuple[pd.DataFrame, bool]:
        try:  # a half-written file (a writer killed part way) has no footer
            headers.update(pq.read_schema(file).names)
        except PermissionError:
            pass  # not the file's fault: the source names it
        except (OSError, pa.ArrowException) as exc:
            unreadable.append(f"{file} ({exc})")
            return pd.DataFrame(), False
        # the user's own files: no limit on what a file may declare (the source's guard
        # against a small file declaring gigabytes is for files from elsewhere)
        source = ParquetSource(path=file, max_uncompressed=1 << 62, **options)
        fixed = _ticker_of_path(file, root) if root.is_dir() else None
        bars, from_column = source.all_bars(fixed)
        if iv == "1d":
            _refuse_intraday(file, bars)
        return bars, from_column

    tickers: set[str] = set()
    first = last = None
    pending: list[tuple[Path, pd.DataFrame]] = []  # bars read, not yet checked or written
    size = 0
    written: list[list[FileInfo]] = []  # each batch's files, not yet committed

    def flush() -> None:
        """Check the pending bars against the database's own rules (bars in the future,
        stamps) and, for an import, write them as files no version names yet."""
        nonlocal size
        frames = [bars for _, bars in pending]
        batch = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        try:
            if apply:
                if not written:
                    since[0] = time.monotonic()
                written.append(db.write_files(table, batch))
            else:
                db.validate(table, batch)
        except ValidationError as exc:
            for file, bars in pending:  # which file: each checked alone (the error path)
                try:
                    db.validate(table, bars)
                except ValidationError as own:
                    raise BadSourceData(f"{file}: {own}", source="import") from own
            raise BadSourceData(f"{root}: {exc}", source="import") from exc
        pending.clear()
        size = 0
        if apply and time.monotonic() - since[0] >= COMMIT_EVERY_SECONDS:
            commit()  # a long import: no file waits long enough to look like an orphan

    def commit() -> None:
        """Commit the batches written so far (after the daily check of what was read)."""
        if iv == "1d":
            stamps.check(files)
        groups = _commit_groups(written)
        written.clear()  # from here on they are committed, or deleted below
        for k, group in enumerate(groups):
            try:
                result = db.commit_files(table, group, info={"imported": str(root)})
            except BaseException:
                for rest in groups[k + 1 :]:
                    db.discard_files(table, rest)
                raise
            report.version = result.version
            report.commits += 1

    since = [0.0]  # when the oldest uncommitted batch was written
    stamps = _DailyStamps()
    try:
        for i, (file, (bars, from_column)) in enumerate(_in_order(read, files), 1):
            if len(bars):
                report.rows += len(bars)
                ts = bars["timestamp"]
                lo, hi = ts.min(), ts.max()
                first = lo if first is None or lo < first else first
                last = hi if last is None or hi > last else last
                names = set(bars["ticker"].unique())
                tickers |= names
                if not from_column and (not root.is_dir() or _ticker_of_path(file, root) is None):
                    report.named_by_file += sorted(names)
                if iv == "1d":
                    stamps.add(bars, i - 1)
                pending.append((file, bars))
                size += len(bars)
                if size >= BATCH_ROWS:
                    flush()
            report.files.append(str(file))
            if on_file is not None:
                on_file(i, len(files), report.rows)
        if iv == "1d":  # across files and batches, before anything is committed
            stamps.check(files)
        if unreadable:  # every one of them named, not one a run
            raise BadSourceData(
                f"{len(unreadable)} file(s) cannot be read as Parquet, half-written (a "
                f"writer stopped part way) or not Parquet: {'; '.join(unreadable[:5])}"
                f"{' ...' if len(unreadable) > 5 else ''}; nothing was imported"
                + (
                    f": move them out of {str(root)!r} (or restore them from a backup) and "
                    f"run the import again"
                    if root.is_dir()
                    else ""
                ),
                source="import",
            )
        unused = [k for k in (columns or {}) if k not in headers]
        if unused:  # a typo in a mapping is not silently no mapping
            raise ConfigError(
                f"import: columns= names {unused}, which no file has (--column "
                f"{unused[0]}=...); the files' columns are {sorted(headers)[:20]}"
            )
        if pending:
            flush()
    except BaseException:
        for batch_files in written:  # nothing was committed: the files go
            db.discard_files(table, batch_files)
        raise
    report.tickers = sorted(tickers)
    report.first = None if first is None else iso_utc(first)
    report.last = None if last is None else iso_utc(last)
    if not apply:
        return report
    commit()
    log.info(
        "imported %d bars of %d tickers from %d files into %s",
        report.rows,
        len(report.tickers),
        len(report.files),
        table,
    )
    return report


class _DailyStamps:
    """Every daily bar's (ticker, instant, file) of an import, to find one ticker stamped
    at two instants of one date in two files (``2024-03-01 00:00`` in one, ``05:00`` UTC
    in another): each would be stored, two bars for a date. Within a file
    :func:`_refuse_intraday` says it; across files and batches, the database's own check
    cannot, since nothing is committed until the end. 16 bytes a bar."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    def add(self, bars: pd.DataFrame, file_index: int) -> None:
        names = bars["ticker"].astype(str).str.upper().to_numpy()
        codes, uniques = pd.factorize(names)
        ids = np.array([self.ids.setdefault(u, len(self.ids)) for u in uniques], np.int32)
        ns = bars["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
        self.parts.append((ids[codes], ns, file_index))

    def check(self, files: list[Path]) -> None:
        if len(self.parts) < 2:
            return  # one file: its own check said it
        codes = np.concatenate([c for c, _, _ in self.parts])
        ns = np.concatenate([n for _, n, _ in self.parts])
        where = np.concatenate([np.full(len(n), f, np.int32) for _, n, f in self.parts])
        order = np.lexsort((ns, ns // DAY_NS, codes))
        c, n = codes[order], ns[order]
        clash = np.flatnonzero(
            (c[1:] == c[:-1]) & (n[1:] // DAY_NS == n[:-1] // DAY_NS) & (n[1:] != n[:-1])
        )
        if not len(clash):
            return
        a, b = order[clash[0]], order[clash[0] + 1]
        ticker = next(t for t, k in self.ids.items() if k == codes[a])
        when = [pd.Timestamp(int(ns[x]), tz="UTC") for x in (a, b)]
        raise BadSourceData(
            f"{ticker} has two bars on {when[0]:%Y-%m-%d}, at {when[0]:%H:%M} UTC in "
            f"{files[where[a]]} and at {when[1]:%H:%M} UTC in {files[where[b]]}"
            f"{f' (and {len(clash) - 1} more such dates)' if len(clash) > 1 else ''}: the "
            f"daily table would keep both. Stamp every file's daily bars alike (a date, or "
            f"midnight of the exchange's zone), or leave one of the files out; nothing was "
            f"imported",
            ticker=ticker,
            source="import",
        )


def _refuse_intraday(file: Path, bars: pd.DataFrame) -> None:
    """For a daily import: BadSourceData when a ticker of ``file`` has several bars on one
    date — intraday bars, which the daily table would store as they are (it accepts any
    instant, decision 018), naive times as if they were UTC. Says which ``--interval``
    the bars' spacing suggests."""
    if len(bars) < 2:
        return
    ns = bars["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    day = ns // DAY_NS
    names = bars["ticker"].to_numpy()
    # the bars are sorted by ticker and time: a repeat of a date is a row like the one before
    same = np.flatnonzero((day[1:] == day[:-1]) & (names[1:] == names[:-1]))
    if not len(same):
        return
    k = int(same[0])
    ticker, date = names[k], day[k]
    mine = ns[(names == ticker) & (day == date)]
    gap = int(np.diff(mine).min()) // 10**9
    guess = next((iv for iv, sec in INTERVAL_SECONDS.items() if sec >= gap), "1h")
    guess = "1h" if guess == "1d" else guess
    times = ", ".join(f"{pd.Timestamp(t, tz='UTC'):%H:%M}" for t in mine[:3])
    raise BadSourceData(
        f"{file}: {ticker} has {len(mine)} bars on {pd.Timestamp(int(date) * DAY_NS):%Y-%m-%d} "
        f"({times}{', ...' if len(mine) > 3 else ''} UTC), and a daily import takes one bar "
        f"a date: if these are intraday bars, import them into their own table with "
        f"--interval {guess} (interval={guess!r}), and --tz ZONE if their times have no UTC "
        f"offset; nothing was imported",
        ticker=str(ticker),
        source="import",
    )


def _commit_groups(batches: list[list[FileInfo]]) -> list[list[FileInfo]]:
    """The batches' files in as few commits as keep their order: one commit while no two
    batches hold a bar of the same ticker and time range (files of one commit must not
    share a key), a new one where a later file overwrites an earlier one's bars."""
    groups: list[list[FileInfo]] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for files in batches:
        mine = [(t, lo, hi) for f in files for t, lo, hi, _ in f.stat_rows()]
        clash = any(a <= hi and lo <= b for t, lo, hi in mine for a, b in spans.get(t, ()))
        if not groups or clash:
            groups.append([])
            spans = {}
        groups[-1] += files
        for t, lo, hi in mine:
            spans.setdefault(t, []).append((lo, hi))
    return [g for g in groups if g]


#: files read at once (reading and decoding a file releases the GIL for much of its time)
READERS = 4


def _in_order(
    read: Callable[[Path], tuple[pd.DataFrame, bool]], files: list[Path]
) -> Iterator[tuple[Path, tuple[pd.DataFrame, bool]]]:
    """``(file, read(file))`` in the files' order, read by :data:`READERS` threads at most
    :data:`READERS` files ahead of the consumer (memory holds a few files, not all)."""
    with ThreadPoolExecutor(READERS, thread_name_prefix="tickvault-import") as pool:
        ahead: deque[tuple[Path, Future[tuple[pd.DataFrame, bool]]]] = deque()
        todo = iter(files)
        for file in itertools.islice(todo, READERS):
            ahead.append((file, pool.submit(read, file)))
        while ahead:
            file, future = ahead.popleft()
            try:
                result = future.result()
            except BaseException:
                for _, rest in ahead:
                    rest.cancel()
                raise
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append((nxt, pool.submit(read, nxt)))
            yield file, result
