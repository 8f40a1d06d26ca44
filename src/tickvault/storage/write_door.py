"""The public write door for parallel writers (the pipeline, Dask workers): validate a
batch once, write its files without committing, check them, then publish many writers'
files in one commit or discard them. A base class of :class:`~tickvault.storage.ParquetDB`,
which supplies the table handles and the commit."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import ValidationError
from ..future_bars import max_future_seconds as _seconds
from ..schema import Validated
from . import verify as verification
from .state import FileInfo, reject_shared_keys
from .table import CommitResult, Table
from .verify import Problem


class WriteDoor(abc.ABC):
    """``validate`` → ``write_files`` → ``check_files`` → ``commit_files`` (or
    ``discard_files``): the steps of :meth:`ParquetDB.upsert`, one at a time."""

    @abc.abstractmethod
    def _table(self, name: str) -> Table: ...

    @abc.abstractmethod
    def _publish(self, t: Table, files: list[FileInfo], info: dict[str, Any]) -> int: ...

    @abc.abstractmethod
    def _disk_full_is_typed(self, t: Table) -> contextlib.AbstractContextManager[None]: ...

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
            return data
        return t.schema.validated(data, max_future=_seconds(t.opts.max_future))

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
        with self._disk_full_is_typed(t):
            return t.write_files(batch.data, batch.runs)

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
    ) -> CommitResult:
        """Publish files written by :meth:`write_files` as one atomic upsert commit.

        Same semantics as :meth:`upsert` (the commit assigns the files' seq; rows of a later
        commit win; among files of one commit, keys must not repeat across files — files of
        one ``write_files`` call never do, and different tickers never collide). Levels are
        chosen like :meth:`upsert` does. On failure the files are deleted.
        """
        t = self._table(table)
        add = [replace(f, level=0, seq=-1) for f in files]
        rows = sum(f.rows for f in add)
        if not add:
            return CommitResult(table=table, version=t.refresh().version, rows=0)
        reject_shared_keys(add)
        with self._disk_full_is_typed(t):
            version = self._publish(
                t, add, {"rows": rows, "tickers": sum(len(f.tickers) for f in add), **(info or {})}
            )
        return CommitResult(
            table=table, version=version, rows=rows, files=tuple(f.path for f in add)
        )
