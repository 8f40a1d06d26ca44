"""Exceptions to messages and exit codes: the one place the command line decides them.

====  ===========================================================================
0     success (``freshness``: everything fresh; ``verify``: no problems)
1     something to look at: stale data, problems found by ``verify``, tickers that
      failed in a ``backfill``/``update`` run, the dashboard is not installed
2     usage: unknown command/option/value, bad date, unknown source/calendar/column, a
      ``--db`` URL with an unknown scheme, ``memory://``
3     not found: no database at ``--db``, no such bucket, unknown ticker, table or version
4     the database is damaged: a log entry or data file cannot be read
5     a data source failed
6     no space left on the disk holding the database (nothing of the write was committed)
7     permission denied: this user may not read or write the database's files, or the
      object store refused the credentials (or found none)
70    internal error (a bug: please report it with the ``--debug`` traceback)
75    the object store is unreachable or kept failing for the whole retry budget (or a
      commit kept losing races); nothing committed was lost: run the command again
130   interrupted (Ctrl-C)
143   terminated (SIGTERM, as sent by cron, systemd, container runtimes)
====  ===========================================================================
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any

from ..errors import (
    CommitConflict,
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    ObjectStoreError,
    ObjectStorePermissionError,
    ObjectStoreUnavailable,
    SourceError,
    StorageError,
    StorageFull,
    TableNotFound,
    TickerNotFound,
    TickvaultError,
    ValidationError,
    VersionNotFound,
    VersionUnavailable,
)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CORRUPT = 4
EXIT_SOURCE = 5
EXIT_FULL = 6
EXIT_PERMISSION = 7
EXIT_INTERNAL = 70
EXIT_UNAVAILABLE = 75  # sysexits' EX_TEMPFAIL: try again later
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_PROBLEMS: "stale data, verify problems or failed tickers",
    EXIT_USAGE: "usage error",
    EXIT_NOT_FOUND: "database, table or ticker not found",
    EXIT_CORRUPT: "damaged database",
    EXIT_SOURCE: "data source error",
    EXIT_FULL: "disk full",
    EXIT_PERMISSION: "permission denied",
    EXIT_INTERNAL: "internal error",
    EXIT_UNAVAILABLE: "object store unavailable, retry later",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "terminated",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so it unwinds like Ctrl-C (exit 143)."""


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2)."""


class CommandFailed(Exception):
    """A command that cannot go on for a reason the message explains (exit 1)."""


def run_exit_code(report: dict[str, Any]) -> int:
    """A finished ``backfill``/``update``: 0 all good; 5 the source was unreachable for
    every ticker it tried (an outage); 1 some tickers failed."""
    if report.get("source_down"):
        return EXIT_SOURCE
    return EXIT_PROBLEMS if int(report.get("failed") or 0) else EXIT_OK


# -- errors: the one place that maps exceptions to messages and exit codes ------------------


#: the commands that write to the database: an interruption of one keeps its commits
WRITING_COMMANDS = frozenset(
    {"backfill", "update", "calendar", "verify", "repair", "compact", "vacuum", "delete",
     "restore", "import"}
)  # fmt: skip


def exit_code(
    exc: BaseException, db: str | None = None, command: str | None = None
) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception raised by a command (``db``: the
    database path, named in messages about its files; ``command``: the command refused)."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    writes = command in WRITING_COMMANDS
    kept = "; what was committed before it stays" if writes else ""
    if command == "import":  # its batches are committed together, at its end
        kept = (
            "; an import commits at its end (a long one also every 20 minutes), so little "
            "or nothing was imported: run it again (the same bars change nothing; files it "
            "had written but not committed are deleted as it stops, or after a kill by "
            "`tickvault vacuum` once an hour old)"
        )
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, f"terminated (SIGTERM){kept}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, f"interrupted{kept}"
    if isinstance(exc, UsageError | ConfigError | ValidationError):
        return EXIT_USAGE, msg
    if isinstance(exc, CommandFailed):
        return EXIT_PROBLEMS, msg
    if isinstance(exc, DatabaseNotFound | TableNotFound | TickerNotFound):
        return EXIT_NOT_FOUND, msg
    if isinstance(exc, VersionNotFound | VersionUnavailable):
        return EXIT_NOT_FOUND, msg
    if isinstance(exc, StorageFull):
        return EXIT_FULL, msg
    if isinstance(exc, ObjectStorePermissionError):
        return EXIT_PERMISSION, msg  # it names the database (without credentials)
    if isinstance(exc, ObjectStoreUnavailable | CommitConflict):
        return EXIT_UNAVAILABLE, (
            f"{msg}; nothing committed was lost: what was written before stays, and running "
            f"the command again continues (`tickvault backfill --resume` skips what is done)"
        )
    if isinstance(exc, ObjectStoreError):  # another 4xx: the message says which
        return EXIT_PROBLEMS, msg
    if isinstance(exc, CorruptDatabaseError):
        return EXIT_CORRUPT, f"{msg} (run `tickvault verify` to list what is damaged)"
    if isinstance(exc, StorageError):
        return EXIT_CORRUPT, msg
    if isinstance(exc, SourceError):
        return EXIT_SOURCE, msg
    if isinstance(exc, TickvaultError):
        return EXIT_PROBLEMS, msg
    if _is_arrow_error(exc):
        return EXIT_CORRUPT, (
            f"cannot read a data file: {msg} (run `tickvault verify` to find it, "
            f"`tickvault repair` to see what dropping it loses)"
        )
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EROFS):
        return EXIT_PERMISSION, _permission_message(exc, db, command)
    if isinstance(exc, OSError):
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        return EXIT_PROBLEMS, f"cannot access{where}: {exc.strerror or msg}"
    return EXIT_INTERNAL, (
        f"internal error: {type(exc).__name__}: {msg} (rerun with --debug for the traceback "
        f"and please report it)"
    )


def _permission_message(exc: OSError, db: str | None, command: str | None) -> str:
    """The database and the refused operation only: the file a writer was creating is a
    temporary name (``.part-<uuid>.parquet.<pid>.tmp``) that means nothing to a person."""
    what = f"the database at {db!r}" if db else "the database"
    access = _refused_access(exc)
    op = f"`tickvault {command}` " if command else ""
    reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
    # a database not created yet: look at the folder it would go in, which exists
    folder = _existing(db) if db and "://" not in db else None
    return (
        f"permission denied: this user may not {access} {what} ({op}refused: {reason}); "
        f"check that this user owns the folder and may {access.split()[0]} it "
        f"(ls -ld {folder or db or '.'})"
    )


def _existing(path: str | None) -> str | None:
    """``path``, or the nearest folder above it that exists (None: none does); a relative
    path with no folder above it is in ``.``."""
    while path and not os.path.lexists(path):
        parent = os.path.dirname(path) or "."
        path = parent if parent != path else None
    return path


def _refused_access(exc: OSError) -> str:
    """``"write to"`` or ``"read"``: a refused path (or the folder above it) that this user
    cannot read was a read; any other refusal (creating, renaming a file) was a write."""
    path = exc.filename if isinstance(exc.filename, str) else None
    if path is None:
        found = re.search(r"'([^']+)'", str(exc))
        path = found.group(1) if found else None
    path = _existing(path)  # a folder above it may be unreadable
    if path and not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
        return "read"
    return "write to"


def _is_arrow_error(exc: BaseException) -> bool:
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(exc, pa.ArrowException)
