"""ParquetDB: the public face of the storage engine."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..adjust import previous_closes
from ..convert import reject, row_description
from ..errors import (
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    StorageError,
    ValidationError,
)
from ..formats import iso_utc, plain_number
from ..future_bars import future_warnings, max_future_seconds
from ..modes import prices_table
from ..schema import DAY_NS, TableSchema, Validated, get_schema, table_names
from ..tickers import check_known, normalize
from ..times import TimeLike, check_order, now_iso, parse_strict, to_ns
from .core.as_of import resolve as as_of_version
from .core.commit import CommitResult, commit, committed
from .core.log import LOG_DIR
from .core.options import StorageOptions, seconds
from .core.read_merge import output_columns as read_merge_columns
from .core.runs import list_runs, record_run
from .core.snapshot import Snapshot, pinned_files, to_pandas
from .core.state import FileInfo, TableState, reject_shared_keys
from .core.store import LocalStore, Store, check_location, is_url
from .core.table import Table
from .readers import describe
from .readers.adjusted import actions_version_for, read_adjusted, reject_adjust_for
from .upkeep import compaction, undo, vacuum_repair
from .upkeep import verify as verification
from .upkeep.compactor import after_commit, compactor_for, existing_compactor, foreground_write
from .upkeep.disk_full import disk_full_is_typed, with_room
from .upkeep.undo import DeleteReport, RestoreReport
from .upkeep.vacuum_repair import RepairReport, VacuumReport
from .upkeep.verify import Problem, VerifyReport

log = logging.getLogger(__name__)

#: ``check_sources`` of :meth:`ParquetDB.commit_files`: called with ``{ticker: recorded
#: source}`` of the commit's tickers; raises to abandon the commit
SourcesCheck: TypeAlias = Callable[[dict[str, dict[str, Any]]], None]

MARKER = "tickvault.json"

#: the environment variable naming the database when no path is given (library and CLI)
DB_ENV = "TICKVAULT_DB"


def default_path() -> str:
    """Where ``ParquetDB()`` without a path (and the command line without ``--db``) keeps
    the database: ``$TICKVAULT_DB``, else ``./db``."""
    return os.environ.get(DB_ENV) or "db"


#: how far before the earliest ex-date of a batch of dividends their previous closes are
#: looked for first (a dividend's check needs the last bar before its ex-date)
DIVIDEND_LOOKBACK = pd.Timedelta(days=40)

#: the database's settings (its default exchange calendar), beside the marker
SETTINGS = "settings.json"


class ParquetDB:
    """A Parquet price database that cannot lose or corrupt data.

    ``ParquetDB(path)`` opens the database at ``path``, creating it unless ``create=False``.
    ``path`` may be a bucket URL (``s3://bucket/prefix``, ``gs://``, ``az://``/``abfs://``,
    ``memory://``) with ``storage_options`` (object_store key names; the standard
    environment variables otherwise). Many instances on one path — in threads, processes or
    machines sharing a filesystem or a bucket — is normal use: commits serialise through
    exclusive creation of log entries.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        options: StorageOptions | None = None,
        store: Store | None = None,
        storage_options: dict[str, Any] | None = None,
        **option_overrides: Any,
    ) -> None:
        opts = options or StorageOptions()
        if option_overrides:
            valid = set(StorageOptions.__dataclass_fields__)
            bad = sorted(set(option_overrides) - valid)
            if bad:
                raise ConfigError(f"unknown ParquetDB option(s) {bad}; valid: {sorted(valid)}")
            opts = replace(opts, **option_overrides)
        self.options = opts
        if path is None:  # the command line's default too
            path = default_path()
        #: every byte of the database goes through this (decision 006)
        if store is None:
            check_location(path)
            if not is_url(path):  # "~/prices" is the home folder's, not ./~/prices
                path = os.path.expanduser(path)
        if store is None and is_url(path):
            from .core.object_store import ObjectStore  # obstore loads only for buckets

            store = ObjectStore(str(path), storage_options)
        elif storage_options:
            raise ConfigError("storage_options apply to a bucket URL (s3://, gs://, az://)")
        self.store: Store = store if store is not None else LocalStore(path, fsync=opts.fsync)
        #: where the database is, for display: a Path for a folder, the URL without
        #: credentials for a bucket
        self.path: Path | str = Path(path) if store is None else _display(self.store.location)
        self._tables: dict[str, Table] = {}
        #: per data file: does it hold a ticker stamped off midnight (``_check_stamps``)
        self._stamped: dict[str, bool] = {}
        if not self.store.exists(MARKER):
            if not create:
                self.store.check_root()  # a missing bucket says so (BucketNotFound)
                # a folder of another program's Parquet files: say how to bring them in
                # (a local folder only: on a bucket the walk costs a request per entry)
                found = "" if self.store.remote else parquet_files_under(self.store)
                raise DatabaseNotFound(
                    f"no tickvault database at {self.store.location!r} (expected {MARKER}); "
                    + (
                        f"it holds Parquet files another program wrote ({found}): import "
                        f"them into a new database, e.g. `tickvault import "
                        f"{self.store.location} --db NEW_FOLDER`"
                        if found
                        else "create one with `tickvault backfill` or ParquetDB(path)"
                    )
                )
            _check_new_root(self.store)
            marker = json.dumps({"format": 1, "created": now_iso()}).encode()
            try:
                self.store.put_if_absent(MARKER, marker)
            except (NotADirectoryError, FileExistsError) as exc:
                raise StorageError(f"{self.store.location!r} exists and is not a folder") from exc

    # -- plumbing --------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "options": self.options, "store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.options = state["options"]
        self.store = state["store"]
        self._tables = {}
        self._stamped = {}

    def __repr__(self) -> str:
        return f"ParquetDB({str(self.path)!r})"

    def _table(self, name: str) -> Table:
        t = self._tables.get(name)
        if t is None:
            schema: TableSchema = get_schema(name)
            t = self._tables.setdefault(name, Table(self.store, schema, self.options))
        return t

    def close(self, *, cancel: bool = False) -> None:
        """Wait for this process's background compaction of the tables used through this
        handle (``cancel=True``: abandon it; nothing half-done is ever committed), then
        release cached readers and thread pools. The handle stays usable."""
        for t in self._tables.values():
            worker = existing_compactor(t)
            if worker is None:
                continue  # nothing was ever asked of it in this process
            if cancel:
                worker.cancel()
            worker.wait()
        for t in self._tables.values():
            t.close()
        self.store.close()

    def __enter__(self) -> ParquetDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        """Tables that exist in this database."""
        return [n for n in table_names() if self._table(n).log.exists()]

    def _tables_named(self, table: str | None) -> list[Table]:
        return [self._table(n) for n in ([table] if table else self.tables())]

    # -- writes ----------------------------------------------------------------------------

    def upsert(self, table: str, data: Any, *, date_format: str | None = None) -> CommitResult:
        """Insert or replace rows by key; the newest commit wins, and within one batch the
        last occurrence wins. Validation happens before anything is written. Timestamp
        strings must be ISO 8601 unless ``date_format`` names their format (``'%d/%m/%Y'``)."""
        t = self._table(table)
        if date_format is not None:
            data = t.schema.with_date_format(data, date_format)
        batch = self._validated(t, data)
        if batch.num_rows == 0:
            return CommitResult(table=table, version=t.refresh().version, rows=0)

        def write() -> tuple[list[FileInfo], int]:
            with foreground_write():  # background compaction pauses meanwhile
                files = t.write_files(batch.data, batch.runs)
                info = {"rows": batch.num_rows, "tickers": _distinct_tickers(files)}
                return files, self._publish(t, files, info)

        with self._disk_full_is_typed(t):
            files, version = with_room(t, write)  # a full disk: reclaim, retry once
        return CommitResult(
            table=table, version=version, rows=batch.num_rows, files=tuple(f.path for f in files)
        )

    def _publish(
        self,
        t: Table,
        files: list[FileInfo],
        info: dict[str, Any],
        check_sources: SourcesCheck | None = None,
    ) -> int:
        """Commit freshly written files as one upsert (deleting them if that fails), at the
        level compaction chooses; then ask for compaction if it became due."""
        prepare = compaction.placing(files, t.opts)
        if check_sources is not None:
            prepare = _checking_sources(files, check_sources, prepare)
        try:
            version = commit(t, operation="upsert", add=files, info=info, prepare=prepare)
        except BaseException as exc:
            if not committed(exc):
                t.discard_files(files)
            raise
        after_commit(t)
        return version

    def _disk_full_is_typed(self, t: Table) -> contextlib.AbstractContextManager[None]:
        """A full disk while writing ``t`` becomes StorageFull, naming what vacuum frees."""
        return disk_full_is_typed(
            t.name, self.store.location, lambda: self.vacuum(dry_run=True, retention=0).bytes
        )

    # -- parallel writers: validate, write files, check, commit or discard ---------------

    def validate(self, table: str, data: Any) -> Validated:
        """Validate ``data`` for ``table`` (cast, check, dedupe — the last occurrence wins —
        and sort) without writing anything; raises ValidationError. The result goes to
        :meth:`write_files` or :meth:`upsert` as is, without a second validation."""
        return self._validated(self._table(table), data)

    def _validated(self, t: Table, data: Any) -> Validated:
        if isinstance(data, Validated):
            if data.table != t.name:
                raise ValidationError(
                    f"a batch validated for table {data.table!r} cannot be written to {t.name!r}"
                )
            if data.dated:
                self._check_stamps(t, data)
            return data
        batch = t.schema.validated(data, max_future=max_future_seconds(t.opts.max_future))
        if t.name == "actions" and batch.num_rows:
            self._check_dividends(batch.data)
        if batch.dated:
            self._check_stamps(t, batch)
        return batch

    def _check_stamps(self, t: Table, batch: Validated) -> None:
        """Refuse a batch whose local midnights became dates (decision 025) where it would
        put a second bar on a date a ticker already has at another time of day
        (:meth:`stamp_conflicts`); nothing is written. Batches given in UTC are written as
        given: the daily table accepts any instant (decision 018)."""
        conflicts = self._stamp_conflicts(t, batch)
        if conflicts:
            raise ValidationError(next(iter(conflicts.values())), column=t.schema.time_column)

    def stamp_conflicts(self, table: str, batch: Validated) -> dict[str, str]:
        """``{ticker: why}`` for the tickers of a validated daily batch whose rows would be
        second bars on dates they already have (the pipeline fails those tickers alone)."""
        return self._stamp_conflicts(self._table(table), batch)

    def _stamp_conflicts(self, t: Table, batch: Validated) -> dict[str, str]:
        """A ticker whose first or last stored bar is not at 00:00 UTC (bars stamped
        04:00/05:00 UTC from yfinance frames before decision 025, close-time stamps) and
        whose rows at 00:00 UTC reach back into its history would get a second bar on
        those dates: each such ticker with the way to restamp its bars. Only tables holding
        files with such stamps pay for the check: whether a file does is worked out once
        per file (files never change)."""
        if t.schema.interval != "1d" or batch.num_rows == 0:
            return {}
        files = t.files_now()
        if not files:
            files = list(t.refresh().files.values())  # a new handle: load the log once
        stamped = self._stamped
        if not any(
            stamped.get(f.path)
            if f.path in stamped
            else stamped.setdefault(f.path, _off_midnight(f))
            for f in files
        ):
            return {}
        snap = self.snapshot(t.name)
        marks, firsts = snap.watermarks(), snap.first_timestamps()
        ts = batch.data.column(t.schema.time_column).cast(pa.int64()).to_numpy()
        runs = batch.runs
        out: dict[str, str] = {}
        for name, a, b in zip(runs.values.to_pylist(), runs.starts, runs.ends, strict=True):
            mark, first = marks.get(name), firsts.get(name)
            if mark is None or first is None:
                continue
            odd = [x for x in (mark, first) if x.value % DAY_NS != 0]
            if not odd:
                continue
            rows = ts[a:b]
            # dates inside the stored span: older history before it cannot collide
            hit = (rows % DAY_NS == 0) & (rows <= mark.value) & (rows > first.value - DAY_NS)
            if hit.any():
                day = pd.Timestamp(int(rows[np.argmax(hit)]), tz="UTC").date()
                out[name] = (
                    f"column {t.schema.time_column!r}: {name}'s stored daily bars are stamped "
                    f"at {odd[0]:%H:%M} UTC (e.g. {odd[0]:%Y-%m-%d %H:%M} UTC), and this "
                    f"batch's bar of {day} is stamped 00:00 UTC, its date (a midnight of "
                    f"its own time zone is its date too, decision 025): it would be a second "
                    f"bar for {day}. Restamp {name}'s stored bars as dates first, e.g. df = "
                    f"db.read_table(tickers='{name}'); db.delete(tickers='{name}', "
                    f"dry_run=False); db.upsert_prices(df.assign(timestamp=df.timestamp.dt."
                    f"tz_convert('America/New_York'))) with the exchange's zone; nothing was "
                    f"written"
                )
        return out

    def _check_dividends(self, actions: pa.Table) -> None:
        """A dividend must be smaller than the close of its ticker's last stored bar before
        its ex-date (else adjusting by ``1 - D / C`` would zero or flip every earlier
        price): ValidationError naming the row and that close. A dividend with no stored bar
        before it is not checked."""
        divs = actions.filter(pc.equal(actions.column("kind"), "dividend"))
        if divs.num_rows == 0 or "prices" not in self.tables():
            return
        tickers = sorted(set(divs.column("ticker").to_pylist()))
        stamps = divs.column("timestamp").cast(pa.int64())
        end = pd.Timestamp(int(pc.max(stamps).as_py()), tz="UTC")
        start = pd.Timestamp(int(pc.min(stamps).as_py()), tz="UTC") - DIVIDEND_LOOKBACK
        snap, cols = self.snapshot("prices"), ["ticker", "timestamp", "close"]
        # the closes just before the ex-dates, not each ticker's whole history (an update
        # with dividends read every year of it, and a damaged old file stopped the update)
        closes = snap.read_arrow(tickers=tickers, start=start, end=end, columns=cols)
        prev, when = previous_closes(divs, closes)
        missing = np.isnan(prev)
        if missing.any():  # no bar in the window: the last one before it, if any
            rest = sorted(set(divs.filter(pa.array(missing)).column("ticker").to_pylist()))
            older = snap.read_arrow(tickers=rest, end=end, columns=cols)
            prev_older, when_older = previous_closes(divs, older)
            prev[missing], when[missing] = prev_older[missing], when_older[missing]
        value = divs.column("value").to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(prev) & (value >= prev)

        def where(i: int) -> str:
            day = pd.Timestamp(int(when[i]), tz="UTC")
            shown = day.date().isoformat() if day == day.normalize() else iso_utc(day)
            return (
                f"{row_description(divs, i, ('ticker', 'timestamp', 'kind'))}: dividend "
                f"{plain_number(value[i])} vs previous close {plain_number(prev[i])} on {shown}"
            )

        reject(
            "value",
            bad,
            "dividend(s) not smaller than the previous close",
            where,
            "a dividend is cash per share, smaller than the share price (e.g. 0.24); check "
            "the units (cents for dollars?) and the ex-date",
        )

    def write_files(self, table: str, data: Any) -> list[FileInfo]:
        """Write ``data`` as new immutable data files, *without* committing. ``data`` is a
        :class:`~tickvault.schema.Validated` batch (written as is) or anything
        :meth:`upsert` takes (validated first).

        For parallel writers (e.g. Dask workers): each writes its own uniquely named files
        and returns the ``FileInfo`` list (picklable) to one client, which publishes them with
        :meth:`commit_files` (or drops them with :meth:`discard_files`). Until then no version
        references the files; if they are never committed they are orphans that ``verify``
        reports and ``vacuum`` removes.
        """
        t = self._table(table)
        batch = self._validated(t, data)
        if batch.num_rows == 0:
            return []

        def write() -> list[FileInfo]:
            with foreground_write(give_way=False):  # background compaction pauses meanwhile
                return t.write_files(batch.data, batch.runs)

        with self._disk_full_is_typed(t):
            return with_room(t, write)

    def discard_files(self, table: str, files: Sequence[FileInfo]) -> None:
        """Delete files written by :meth:`write_files` that will never be committed.
        Never pass files of a commit that succeeded: they belong to the table."""
        self._table(table).discard_files(files)

    def check_files(self, table: str, files: Sequence[FileInfo]) -> list[Problem]:
        """Read ``files`` back (every page) and check each against its statistics: columns,
        row count, order, unique keys, tickers and time ranges — the check ``verify``
        runs on every live file. Returns the problems found (none: all good)."""
        t = self._table(table)
        return [p for f in files for p in verification.check_file(t, f)]

    def commit_files(
        self,
        table: str,
        files: Sequence[FileInfo],
        *,
        info: dict[str, Any] | None = None,
        check_sources: SourcesCheck | None = None,
    ) -> CommitResult:
        """Publish files written by :meth:`write_files` as one atomic upsert commit.

        Same semantics as :meth:`upsert` (the commit assigns the files' seq; rows of a later
        commit win; among files of one commit, keys must not repeat across files — files of
        one ``write_files`` call never do, and different tickers never collide). Levels are
        chosen like :meth:`upsert` does. On failure the files are deleted.

        ``check_sources(recorded)``, if given, runs before each attempt to publish, with the
        recorded sources (as :meth:`sources` gives them) of the files' tickers in the
        version the commit would follow; raising abandons the commit. A commit that records
        a source (``info["source"]``) thus refuses, atomically, a ticker that a concurrent
        commit recorded from another source (the pipeline's check, decision 010).
        """
        t = self._table(table)
        add = [replace(f, level=0, seq=-1) for f in files]
        rows = sum(f.rows for f in add)
        if not add:
            return CommitResult(table=table, version=t.refresh().version, rows=0)
        reject_shared_keys(add)
        with self._disk_full_is_typed(t), foreground_write():
            version = self._publish(
                t,
                add,
                {"rows": rows, "tickers": _distinct_tickers(add), **(info or {})},
                check_sources,
            )
        return CommitResult(
            table=table, version=version, rows=rows, files=tuple(f.path for f in add)
        )

    def upsert_prices(
        self, df: Any, *, date_format: str | None = None, interval: str | None = None
    ) -> CommitResult:
        """Upsert price bars (ticker, timestamp, open, high, low, close, volume[, adj_close,
        vwap, trade_count]) into the table of ``interval`` (``"1d"``, the default:
        ``prices``; ``"1m"``: ``prices_1m``; see :func:`tickvault.modes.parse_interval`).
        Intraday bars must lie on their interval's grid (decision 018)."""
        return self.upsert(prices_table(interval), df, date_format=date_format)

    def upsert_actions(self, df: Any, *, date_format: str | None = None) -> CommitResult:
        """Upsert corporate actions (ticker, timestamp, kind 'split'|'dividend', value)."""
        return self.upsert("actions", df, date_format=date_format)

    def compact(
        self, table: str = "prices", *, wait: bool = True, relayout: bool = False
    ) -> CommitResult | None:
        """Merge level-0 files into the sorted level-1 layout. ``wait=True``: now, on this
        thread (errors raise); returns the last compaction commit, None if there was nothing
        to do. ``wait=False``: ask this process's background compactor to do it and return
        at once (None). ``relayout=True``: also rewrite level-1 files laid out for another
        period than the table's (a database written before periods existed; decision 015)."""
        t = self._table(table)
        worker = compactor_for(t)
        if not wait and not relayout:
            worker.request(full=True)
            return None
        result = None
        with worker.run_lock:  # one compaction of a table at a time in this process
            # level 0 first, then stacked generations of a period (decision 023): until a
            # full plan finds nothing left to merge
            for _ in range(20):
                r = compaction.run(t, full=True, relayout=relayout)
                if r is None:
                    break
                result = r
        if result is not None and t.opts.auto_vacuum:
            worker.reclaim()
        return result

    def wait_for_compaction(self, table: str = "prices", timeout: float | None = None) -> bool:
        """Block until this process's background compaction of ``table`` has nothing pending
        or running; False if ``timeout`` (seconds) ran out first."""
        return compactor_for(self._table(table)).wait(timeout)

    # -- reads -----------------------------------------------------------------------------

    def snapshot(
        self, table: str = "prices", version: int | None = None, *, as_of: TimeLike = None
    ) -> Snapshot:
        """Pin ``version`` of ``table`` (None: the newest), or the version that was current
        at the time ``as_of`` (decision 016); not both."""
        t = self._table(table)
        return Snapshot(t, t.state_at(as_of_version(t, version, as_of)))

    def read_arrow(
        self,
        name: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        adjust: str | None = None,
        strict: bool = False,
        as_of: TimeLike = None,
        interval: str | None = None,
        resample: str | None = None,
        calendar: str | None = None,
    ) -> pa.Table:
        """Rows of one pinned version, sorted by key, keys unique, start/end inclusive.
        ``adjust`` (prices only): None for bars as traded, ``"splits"`` or ``"all"``
        (splits and dividends) for back-adjusted bars as of the snapshot read
        (:mod:`tickvault.adjust`; docs/storage.md). ``tickers`` the database does not hold
        are named, with the closest stored ones, in a warning (``strict=True``: raised as
        UnknownTicker; :func:`tickvault.tickers.check_known`). ``as_of``: read the version
        that was current at that time instead of ``version`` (not both).

        ``interval`` (prices only): the bars of that interval's table (``"1m"`` reads
        ``prices_1m``; None: the table ``name``). ``resample``: those bars as coarser OHLCV
        bars (``"5m"``, ``"15m"``, ``"1h"``, ``"1d"``; :mod:`tickvault.resample`), after
        any ``adjust``; ``calendar`` (``"XNYS"``) makes ``"1d"`` group by exchange session."""
        name = table_for(name, interval)
        version = as_of_version(self._table(name), version, as_of)
        if resample is not None or calendar is not None:
            return self._resampled(
                name,
                resample,
                calendar,
                tickers=tickers,
                start=start,
                end=end,
                columns=columns,
                version=version,
                adjust=adjust,
                strict=strict,
            )
        # one pinned version for the ticker check and the read
        snap = self.snapshot(name, version)
        check_known(
            tickers,
            lambda: self._known(name, snap),
            where=repr(str(self.path)),
            strict=strict,
            elsewhere=lambda missing: self._elsewhere(name, missing),
        )
        if adjust is not None:
            reject_adjust_for(name, adjust)
            return read_adjusted(
                self._table(name),
                self._table("actions"),
                adjust=adjust,
                tickers=tickers,
                start=start,
                end=end,
                columns=columns,
                version=version,  # None: the newest prices with the newest actions
            )
        return snap.read_arrow(tickers=tickers, start=start, end=end, columns=columns)

    def _resampled(
        self,
        name: str,
        rule: str | None,
        calendar: str | None,
        *,
        columns: Sequence[str] | None,
        **read: Any,
    ) -> pa.Table:
        """:meth:`read_arrow` of every column, resampled to ``rule``, then ``columns``."""
        from ..resample import check_resample, resample

        iv = get_schema(name).interval
        if iv is None:
            raise ConfigError(f"resample= applies to a prices table, not {name!r}; drop it")
        if rule is None:
            raise ConfigError(
                "calendar= groups bars by exchange session when resampling: add resample='1d'"
            )
        target = check_resample(rule, iv, calendar)
        sessions = None
        if calendar is not None:
            from ..sessions import exchange_sessions

            sessions = exchange_sessions(calendar)
        bars = self.read_arrow(name, **read)
        out = resample(bars, target, session_of=sessions)
        if columns is not None:
            out = out.select(read_merge_columns(get_schema(name), columns))
        return out

    def iter_arrow(
        self,
        name: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        adjust: str | None = None,
        strict: bool = False,
        as_of: TimeLike = None,
        limit: int | None = None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.Table]:
        """The rows of :meth:`read_arrow` (same arguments, one pinned version) in pieces of
        about ``batch_rows`` rows, in the same order: the first piece comes after reading
        only its rows, and ``limit`` (None: all) stops reading once that many rows came —
        ``tickvault query --limit 5`` reads a few rows, not the table, and CSV/JSON output
        is streamed. The pieces are planned from the log (:meth:`Snapshot.pieces`)."""
        check_limit(limit)
        version = as_of_version(self._table(name), version, as_of)
        snap = self.snapshot(name, version)
        check_known(
            tickers,
            lambda: self._known(name, snap),
            where=repr(str(self.path)),
            strict=strict,
            elsewhere=lambda missing: self._elsewhere(name, missing),
        )
        if adjust is not None:
            reject_adjust_for(name, adjust)
            # the actions that go with these prices (the newest unless a version or time
            # was asked for), pinned once for every piece
            paired = actions_version_for(self._table("prices"), self._table("actions"), version)
        left = limit
        rows = batch_rows if limit is None else max(1, min(batch_rows, limit))
        plan = snap.pieces(tickers=tickers, start=start, end=end, rows=rows, first=1024)
        for group, lo, hi in plan:
            if left == 0:
                return
            if adjust is None:
                part = snap.read_arrow(tickers=group, start=lo, end=hi, columns=columns)
            else:
                part = read_adjusted(
                    self._table("prices"),
                    self._table("actions"),
                    adjust=adjust,
                    tickers=group,
                    start=lo,
                    end=hi,
                    columns=columns,
                    version=snap.version,
                    actions_version=paired,
                )
            if left is not None:
                part = part.slice(0, left)
                left -= part.num_rows
            if part.num_rows:
                yield part

    def iter_table(self, name: str = "prices", **kwargs: Any) -> Iterator[pd.DataFrame]:
        """:meth:`iter_arrow`'s pieces as pandas DataFrames (like :meth:`read_table`)."""
        for part in self.iter_arrow(name, **kwargs):
            yield to_pandas(part)

    def read_table(
        self,
        name: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        columns: Sequence[str] | None = None,
        version: int | None = None,
        adjust: str | None = None,
        strict: bool = False,
        as_of: TimeLike = None,
        interval: str | None = None,
        resample: str | None = None,
        calendar: str | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`read_arrow`, as a pandas DataFrame (timestamps tz-aware UTC)."""
        return to_pandas(
            self.read_arrow(
                name,
                tickers=tickers,
                start=start,
                end=end,
                columns=columns,
                version=version,
                adjust=adjust,
                strict=strict,
                as_of=as_of,
                interval=interval,
                resample=resample,
                calendar=calendar,
            )
        )

    def _elsewhere(self, name: str, missing: list[str]) -> str:
        """Where tickers missing from the prices table ``name`` are: the other intervals'
        tables that hold them ("" if none, or if ``name`` is not a prices table)."""
        interval = get_schema(name).interval
        if interval is None:
            return ""
        found: list[str] = []
        for other in self.tables():
            other_interval = get_schema(other).interval
            if other == name or other_interval is None:
                continue
            held = [t for t in missing if t in self.snapshot(other).ticker_index()]
            if held:
                found.append(
                    f"{', '.join(held)} {'is' if len(held) == 1 else 'are'} in {other}: "
                    f"read it with interval='{other_interval}' (--interval {other_interval})"
                )
        return "; ".join(found)

    def _known(self, name: str, snap: Snapshot) -> Collection[str]:
        """Tickers a read of ``name`` may name: the table's (those of the pinned ``snap``),
        and (for other tables, e.g. ``actions``) the prices table's: a ticker without
        actions is not unknown."""
        known = snap.ticker_index()
        return known if get_schema(name).interval is not None else {*known, *self.tickers()}

    # -- open tables: other engines over a pinned version (decision 011, readers/) -------

    def to_pyarrow_dataset(
        self, table: str = "prices", *, version: int | None = None, as_of: TimeLike = None
    ) -> Any:
        """The rows of ``read_arrow(table, version=)`` as a ``pyarrow.dataset.Dataset``
        (unsorted; filters on ticker and timestamp skip files and row groups). Its files
        stay pinned while it lives."""
        from .readers import engines

        return engines.to_pyarrow_dataset(self.snapshot(table, version, as_of=as_of))

    def to_duckdb(
        self,
        table: str = "prices",
        *,
        version: int | None = None,
        connection: Any = None,
        as_of: TimeLike = None,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> Any:
        """The same rows as a ``duckdb.DuckDBPyRelation`` (on ``connection``, default a new
        in-memory one). Needs ``pip install 'tickvault[duckdb]'``. ``tickers``, ``start``,
        ``end`` narrow it to the rows ``read_arrow`` returns for them, read by tickvault's
        reader (the log's per-ticker statistics pick the row groups) and held in memory;
        without them DuckDB scans the files itself, streaming (see :meth:`_narrowed`)."""
        from .readers import engines

        snap = self.snapshot(table, version, as_of=as_of)
        rows = self._narrowed(snap, tickers, start, end)
        if rows is not None:
            return engines.duckdb_relation(rows, connection)
        return engines.to_duckdb(snap, connection)

    def to_polars(
        self,
        table: str = "prices",
        *,
        version: int | None = None,
        as_of: TimeLike = None,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> Any:
        """The same rows as a ``polars.LazyFrame``. Needs ``pip install 'tickvault[polars]'``.
        ``tickers``, ``start``, ``end``: as for :meth:`to_duckdb`."""
        from .readers import engines

        snap = self.snapshot(table, version, as_of=as_of)
        rows = self._narrowed(snap, tickers, start, end)
        if rows is not None:
            return engines.polars_frame(rows)
        return engines.to_polars(snap)

    def _narrowed(
        self,
        snap: Snapshot,
        tickers: str | Iterable[str] | None,
        start: TimeLike,
        end: TimeLike,
    ) -> pa.Table | None:
        """The rows of ``snap`` an engine is narrowed to (None: not narrowed). An engine's
        own scan of a table's files prunes by footers, row group by row group: one ticker's
        minute history over day files is thousands of row groups to look at. tickvault's
        reader goes straight to that ticker's row groups by the log's statistics, so a
        narrowed relation costs what the selection costs (decision 022)."""
        if tickers is None and start is None and end is None:
            return None
        return self.read_arrow(
            snap.table, tickers=tickers, start=start, end=end, version=snap.version
        )

    def to_dask(
        self, table: str = "prices", *, interval: str | None = None, version: int | None = None
    ) -> Any:
        """The rows of ``read_table(table, interval=, version=)`` as a
        ``dask.dataframe.DataFrame`` over that pinned version (one partition per data file;
        unsorted across partitions). Needs dask[dataframe]."""
        from .readers import engines

        return engines.to_dask(self.snapshot(table_for(table, interval), version), self)

    def export(
        self,
        out: str | os.PathLike[str],
        *,
        table: str = "prices",
        format: str = "parquet",
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        version: int | None = None,
        as_of: TimeLike = None,
    ) -> dict[str, Any]:
        """Write what ``read_arrow`` returns as plain Parquet (or CSV) files in the folder
        ``out``, atomically per file and idempotently (see storage/readers/export.py)."""
        from .readers.export import export

        return export(
            lambda: self.snapshot(table, version, as_of=as_of),
            out,
            fsync=self.options.fsync,
            format=format,
            tickers=tickers,
            start=start,
            end=end,
        )

    def tickers(self, table: str = "prices", *, interval: str | None = None) -> list[str]:
        return self.snapshot(table_for(table, interval)).tickers()

    def watermarks(
        self, table: str = "prices", *, interval: str | None = None
    ) -> dict[str, pd.Timestamp]:
        """The last stored timestamp per ticker of ``table`` (``interval``: of that
        interval's prices table), from the log."""
        return self.snapshot(table_for(table, interval)).watermarks()

    def sources(
        self, table: str = "prices", *, interval: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Provenance per ticker, from the log: ``{ticker: {"name": "yahoo", "options":
        {...}}}`` (see :meth:`Snapshot.sources`)."""
        return self.snapshot(table_for(table, interval)).sources()

    # -- settings: the database's default calendar ----------------------------------------

    @property
    def calendar(self) -> str | None:
        """The exchange calendar this database was told to use (``set_calendar``), or None:
        freshness, gaps and the dashboard use it when no calendar is given."""
        value = self._settings().get("calendar")
        return str(value) if value else None

    def set_calendar(self, code: str | None) -> str | None:
        """Remember ``code`` (an ``exchange_calendars`` code such as ``"XNYS"``; None
        forgets it) as this database's calendar; an unknown code is a ConfigError and
        nothing is stored. Returns the stored code (upper case)."""
        value = None
        if code is not None:
            from ..calendars import get_calendar

            get_calendar(code)  # unknown codes raise, naming valid ones
            value = str(code).strip().upper()
        settings = {**self._settings(), "calendar": value}
        self.store.put(SETTINGS, json.dumps(settings, sort_keys=True).encode())
        return value

    def _settings(self) -> dict[str, Any]:
        try:
            data = json.loads(self.store.get(SETTINGS))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise CorruptDatabaseError(f"{SETTINGS} cannot be read: {exc}") from exc
        return data if isinstance(data, dict) else {}

    @property
    def version(self) -> int:
        """The prices table's newest version (-1 before the first write)."""
        return self._table("prices").refresh().version

    def table_version(self, table: str) -> int:
        return self._table(table).refresh().version

    def history(self, table: str = "prices", *, limit: int | None = None) -> list[dict[str, Any]]:
        """Versions, oldest first: time, operation, rows and files added/removed — the newest
        ``limit`` (None: all; 0: none, like :meth:`runs`)."""
        check_limit(limit)
        return describe.history(self._table(table), limit)

    def info(self) -> dict[str, Any]:
        """Tables, tickers, rows (``rows``: what a full read returns; ``stored_rows``: also
        the superseded copies that compaction will drop), date range, versions and bytes —
        from the log (only tickers whose files overlap in time have their keys read) — and
        the database's ``calendar``."""
        info = describe.info(str(self.path), {n: self.snapshot(n) for n in self.tables()})
        info["calendar"] = self.calendar
        return info

    # -- run history -----------------------------------------------------------------------

    def record_run(self, run: dict[str, Any]) -> str:
        """Store a pipeline run record (JSON-serialisable dict); returns its run id."""
        return record_run(self.store, run)

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored run records, newest first: the newest ``limit`` (None: all; 0: none)."""
        check_limit(limit)
        return list_runs(self.store, limit)

    # -- maintenance -----------------------------------------------------------------------

    def verify(self, table: str | None = None) -> VerifyReport:
        """Open every live data file and check it against the log. See VerifyReport.
        Tickers holding bars in the future are listed in ``warnings``."""
        tables = self._tables_named(table)
        report = verification.verify(tables)
        for t in tables:
            if t.schema.refuse_future and t.name in report.versions:
                limit = max_future_seconds(t.opts.max_future)
                report.warnings.extend(future_warnings(t.name, self.watermarks(t.name), limit))
        return report

    def vacuum(
        self,
        *,
        dry_run: bool = True,
        retention: dt.timedelta | float | None = None,
        table: str | None = None,
        force: bool = False,
    ) -> VacuumReport:
        """List (dry run) or delete files no version needs any more: files removed by
        compaction once older than ``retention`` (a ``timedelta`` or seconds; default: the
        database's ``retention`` option, 1 hour), and orphans of crashed writers once older
        than that and than an hour — a running writer may be about to commit them.
        ``force=True`` (no writer is running, e.g. after a crash) takes orphans at the
        retention alone; a temporary file of a process still running on this machine is
        kept either way. Files that a snapshot open in this process reads are kept."""
        keep = self.options.retention_seconds if retention is None else seconds(retention)
        return vacuum_repair.vacuum(
            self._tables_named(table),
            dry_run=dry_run,
            retention=keep,
            pinned=pinned_files,
            force=force,
        )

    def repair(self, *, dry_run: bool = True, table: str | None = None) -> RepairReport:
        """Fix what verify found where possible (as ordinary commits)."""
        return vacuum_repair.repair(self._tables_named(table), dry_run=dry_run)

    # -- undo: delete, restore (decision 016) ---------------------------------------------

    def delete(
        self,
        table: str = "prices",
        *,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        dry_run: bool = True,
        interval: str | None = None,
    ) -> DeleteReport:
        """Preview (``dry_run=True``, the default) or delete the rows of ``tickers`` (None:
        every ticker) from ``start`` to ``end`` (inclusive; None: unbounded) as ONE commit
        with operation ``"delete"``: reads of older versions still see them, and
        ``restore`` brings them back. A delete without any filter is refused; tickers the
        table does not hold are an UnknownTicker error. The report names per ticker the
        rows and the first and last timestamp deleted. ``interval``: the prices table of
        that interval, as for reads (``interval="1m"``: ``prices_1m``)."""
        t = self._table(table_for(table, interval))
        tk = self._named_tickers(t, tickers, "delete")
        for name, value in (("start", start), ("end", end)):
            if isinstance(value, str):  # never a guessed date for a delete: ISO 8601 only
                parse_strict(value, name=name)
        s, e = to_ns(start, name="start"), to_ns(end, end=True, name="end")
        check_order(start, end, s, e)
        with self._disk_full_is_typed(t):
            report = undo.delete(t, tickers=tk, start=s, end=e, dry_run=dry_run)
        if report.version is not None:
            after_commit(t)
        return report

    def restore(
        self,
        table: str = "prices",
        *,
        version: int | None = None,
        as_of: TimeLike = None,
        tickers: str | Iterable[str] | None = None,
        dry_run: bool = True,
        interval: str | None = None,
    ) -> RestoreReport:
        """Preview (the default) or publish a new commit (operation ``"restore"``) whose rows
        of ``tickers`` (None: all) equal those of ``version`` — or of the version current at
        ``as_of``; exactly one of them. History is kept, so a restore can itself be undone.
        A version whose files retention reclaimed is VersionUnavailable naming the oldest
        one left. The report lists per ticker whose rows differ what comes back, goes and
        changes. ``interval``: the prices table of that interval, as for reads."""
        t = self._table(table_for(table, interval))
        if version is None and as_of is None:
            raise ConfigError(
                "restore needs version= or as_of= (e.g. version=12, or "
                "as_of='2026-11-30T22:00Z'); `db.history()` lists the versions"
            )
        target = as_of_version(t, version, as_of)
        assert target is not None
        tk = self._named_tickers(t, tickers, "restore", version=target)
        with self._disk_full_is_typed(t):
            restored = undo.restore(t, version=target, tickers=tk, dry_run=dry_run)
        if restored.version is not None:
            after_commit(t)  # restored rows of named tickers are new level-0 files
        return restored

    def _named_tickers(
        self,
        t: Table,
        tickers: str | Iterable[str] | None,
        what: str,
        version: int | None = None,
    ) -> list[str] | None:
        """``tickers`` for an undo, upper-cased (or as stored); any the table holds neither
        now nor at ``version`` is an UnknownTicker error (nothing is guessed)."""
        if tickers is None:
            return None
        names = [tickers] if isinstance(tickers, str) else [str(x) for x in tickers]
        if not names:
            raise ConfigError(
                f"{what}: tickers= is an empty list; name tickers (e.g. tickers=['AAPL']) "
                f"or pass tickers=None for every ticker"
            )
        known = set(self.snapshot(t.name).tickers())
        if version is not None:
            known |= set(self.snapshot(t.name, version).tickers())
        check_known(names, lambda: sorted(known), where=repr(str(self.path)), strict=True)
        return sorted({n if n in known else normalize(n) for n in names})

    # -- data checks: gaps and suspicious moves -------------------------------------------

    def gaps(
        self,
        table: str = "prices",
        *,
        calendar: str,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        version: int | None = None,
        notes: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs of trading sessions of ``calendar`` with no bar, per ticker, inside that
        ticker's own stored range (and ``start``..``end``): ``{"ticker", "first", "last",
        "sessions"}`` (first and last missing session, how many). Empty: nothing missing.
        Sessions the calendar does not cover (bars older than it) are not checked; a line
        saying so goes to ``notes`` if given, else to the ``tickvault`` logger."""
        from ..data_checks import gaps

        snap = self.snapshot(table, version)
        tk = None if tickers is None else self._named_tickers(self._table(table), tickers, "gaps")
        said: list[str] = [] if notes is None else notes
        found = gaps(snap, calendar=calendar, tickers=tk, start=start, end=end, notes=said)
        if notes is None:
            for line in said:
                log.warning("%s", line)
        return found

    def suspicious_moves(
        self,
        *,
        threshold: float = 0.5,
        tickers: str | Iterable[str] | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
    ) -> list[dict[str, Any]]:
        """Bar-to-bar close moves of prices larger than ``threshold`` (0.5: up 50 % or down
        to half or less... see :func:`tickvault.data_checks.suspicious_moves`) that no stored
        split explains: the sign of a missing split or a 100x unit error."""
        from ..data_checks import suspicious_moves

        tk = (
            None
            if tickers is None
            else self._named_tickers(self._table("prices"), tickers, "moves")
        )
        actions = self.snapshot("actions") if "actions" in self.tables() else None
        return suspicious_moves(
            self.snapshot("prices"), actions, threshold=threshold, tickers=tk, start=start, end=end
        )

    # -- parallel-write mode (pipeline) ----------------------------------------------------

    def lost_in_repairs(self, table: str = "prices") -> dict[str, tuple[str, str]]:
        """``{ticker: (first, last)}`` of rows that applied repairs dropped (from the log)."""
        return vacuum_repair.lost_in_repairs(self._table(table))


#: names a new database may be created beside: a folder's bookkeeping, not data (a mounted
#: volume's lost+found, a desktop's index files, a placeholder kept in version control)
HARMLESS = frozenset({".DS_Store", ".gitkeep", ".keep", "lost+found", "Thumbs.db", "desktop.ini"})


def _list(store: Store, key: str = "") -> list[str]:
    """The names under ``key``, sorted; [] where they cannot be listed (an unreadable
    folder says nothing about whether a database is there)."""
    try:
        return sorted(store.list(key))
    except OSError:
        return []


def _check_new_root(store: Store) -> None:
    """Refuse to create a database where other data already is. A database made over a
    folder of other files would hide them (reads see only what its log names), and its
    clean-up deletes Parquet files in a table's folder that no version names: the Parquet
    files of the original two-phase pattern (``db/prices/*.parquet``) would be shown as an
    empty table and then deleted. Allowed: an empty or new place (a few bookkeeping names
    aside, :data:`HARMLESS`), a concurrent creator's marker (it won the race), and a
    database whose marker alone was lost (its tables keep their logs; the marker is written
    again). Messages name the place as the store shows it (never a URL's credentials)."""
    names = _list(store)
    if not names or store.exists(MARKER):
        return
    own = {n for n in names if n.startswith(f".{MARKER}.") and store.is_temporary(n)}
    other = [n for n in names if n not in own and n not in HARMLESS]
    if not other:
        return
    if any(_list(store, f"{n}/{LOG_DIR}") for n in other[:20]):  # tables are few
        log.warning(
            "%s: the database's %s is missing but its tables are there; writing it again",
            store.location,
            MARKER,
        )
        return
    where = store.location
    if store.remote:
        raise ConfigError(
            f"{where!r} already holds other objects ({', '.join(other[:4])}"
            f"{f' and {len(other) - 4} more' if len(other) > 4 else ''}) and no tickvault "
            f"database ({MARKER}); a database is created only under an empty prefix, so "
            f"nothing was created. Use a new prefix, e.g. {where.rstrip('/') + '/db'!r}"
        )
    parquet = parquet_files_under(store, other)
    if parquet:
        raise ConfigError(
            f"ParquetDB({where!r}): this folder holds Parquet files that tickvault did not "
            f"write ({parquet}) and no tickvault database ({MARKER}). A database created "
            f"over them would not read them, and its clean-up would delete them; nothing "
            f"was created. Keep them where they are and import them into a new database: "
            f"`tickvault import {where} --db NEW_FOLDER` "
            f"(or tickvault.import_parquet(ParquetDB(NEW_FOLDER), {where!r}, apply=True))"
        )
    more = f" and {len(other) - 4} more" if len(other) > 4 else ""
    raise ConfigError(
        f"ParquetDB({where!r}): this folder holds other files ({', '.join(other[:4])}{more}) "
        f"and no tickvault database ({MARKER}); a database is created only in an empty or "
        f"new folder, so nothing was created. Use a new folder, e.g. "
        f"ParquetDB({str(Path(where) / 'db')!r})"
    )


def parquet_files_under(store: Store, names: list[str] | None = None, most: int = 2000) -> str:
    """'a/b.parquet' (+ 'and N more found') if Parquet files lie under ``names`` (default:
    the store's root; a walk of at most ``most`` entries; folders that cannot be listed are
    passed by); '' if none. The CLI asks it of a folder it will not create a database in."""
    found: list[str] = []
    todo = _list(store) if names is None else list(names)
    seen = 0
    while todo and seen < most:
        name = todo.pop(0)
        seen += 1
        if name.lower().endswith((".parquet", ".pq", ".parq")):
            found.append(name)
            continue
        todo += [f"{name}/{c}" for c in _list(store, name)]
    if not found:
        return ""
    return found[0] + (f" and {len(found) - 1} more found" if len(found) > 1 else "")


def database_exists(
    where: str | os.PathLike[str] | Store, storage_options: dict[str, Any] | None = None
) -> bool:
    """Is there a tickvault database at ``where`` — a folder, a bucket URL (``s3://...``,
    with ``storage_options`` as for :class:`ParquetDB`) or an open :class:`Store`?

    Asks the Store for the database's marker object (one ``stat`` of a file, one ``HEAD``
    of a bucket) and never creates anything. A path that does not exist, or that is a
    regular file, is False; other failures to ask (permission denied, a bucket that cannot
    be reached) raise, since the answer is unknown."""
    if isinstance(where, Store):
        store = where
    elif is_url(where):
        from .core.object_store import ObjectStore  # obstore loads only for buckets

        store = ObjectStore(str(where), storage_options)
    elif storage_options:
        raise ConfigError("storage_options apply to a bucket URL (s3://, gs://, az://)")
    else:
        store = LocalStore(where, fsync=False)
    try:
        return store.exists(MARKER)
    finally:
        if store is not where:
            store.close()


def table_for(name: str, interval: object) -> str:
    """The table a read of ``name`` with ``interval`` means: ``("prices", "1m")`` is
    ``prices_1m``; ``interval=None`` is ``name`` itself. An interval with a table that
    holds no bars is a ConfigError."""
    if interval is None:
        return name
    if get_schema(name).interval is None:
        raise ConfigError(f"interval= applies to the prices tables, not {name!r}; drop it")
    wanted = prices_table(interval)
    if name != "prices" and name != wanted:
        raise ConfigError(
            f"table {name!r} holds {get_schema(name).interval} bars, not interval="
            f"{interval!r}; name the table 'prices' with interval= (reads {wanted!r})"
        )
    return wanted


def _display(location: str) -> Path | str:
    """A store's location as ``db.path``: a URL stays a string (Path would fold ``//``)."""
    return location if "://" in location else Path(location)


def check_limit(limit: int | None) -> None:
    """One meaning of ``limit`` everywhere: None is all, 0 is none, negatives are errors."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"limit must be None (all) or a whole number >= 0, got {limit!r}")


def _off_midnight(f: FileInfo) -> bool:
    """Does a file hold a ticker whose first or last bar is not at 00:00 UTC?"""
    return bool(np.any(f.min_ts % DAY_NS != 0) or np.any(f.max_ts % DAY_NS != 0))


def _checking_sources(
    files: Sequence[FileInfo],
    check: SourcesCheck,
    then: Callable[[TableState, int], None],
) -> Callable[[TableState, int], None]:
    """A commit's ``prepare`` step that first hands ``check`` the recorded sources of the
    files' tickers in the state the entry will follow (each attempt: after a lost race,
    the winner's records are seen), then runs ``then``."""
    tickers = sorted({t for f in files for t in f.tickers})

    def prepare(state: TableState, version: int) -> None:
        check({t: dict(state.sources[t]) for t in tickers if t in state.sources})
        then(state, version)

    return prepare


def _distinct_tickers(files: Sequence[FileInfo]) -> int:
    """How many tickers ``files`` hold (a ticker whose rows span several files once)."""
    return len({t for f in files for t in f.tickers})
