"""What every command shares: which database ``--db`` names, how to open it, and how
tickers and ``--source-option`` values are read."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from ..storage import ParquetDB

from ..storage.db import default_path


def _option_value(text: str) -> Any:
    """``--source-option`` values: JSON when they parse (numbers, true, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def source_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--source-option {pair!r}: use KEY=VALUE, e.g. latency=0.1")
        out[key.strip().replace("-", "_")] = _option_value(value)
    return out


#: what separates tickers in a file or in one argument ("AAPL,MSFT"): no ticker holds one
_SEPARATORS = r"[\s,;]+"


def read_tickers(args: argparse.Namespace) -> list[str]:
    """The tickers of the positional arguments and ``--tickers-file`` (one argument may
    list several: ``AAPL,MSFT``). A file that names none is refused: for a command whose
    tickers are optional, no tickers means every ticker, which an empty list produced by a
    script must not silently become."""
    given = list(getattr(args, "tickers", None) or [])
    tickers = [t for arg in given for t in re.split(_SEPARATORS, arg) if t]
    if given and not tickers:
        raise UsageError(
            f"no ticker in {given!r}: name tickers, e.g. AAPL MSFT, or leave them out to "
            f"mean every ticker"
        )
    path = getattr(args, "tickers_file", None)
    if path:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--tickers-file {path!r}: {exc.strerror or exc}") from None
        text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not a ticker
        listed = [
            t
            for line in text.splitlines()
            for t in re.split(_SEPARATORS, line.split("#", 1)[0])
            if t
        ]
        if not listed:
            raise UsageError(
                f"--tickers-file {path!r} names no tickers (it is empty or holds only "
                f"comments); list one per line (e.g. AAPL), or leave the option out to mean "
                f"every ticker"
            )
        tickers.extend(listed)
    from ..tickers import normalize_all

    return [t for t in normalize_all(tickers) if t]


def _db_path(args: argparse.Namespace) -> str:
    """``--db``, else ``$TICKVAULT_DB``, else ``db``; a leading ``~`` is the home folder
    (cron, systemd and a quoted ``'~/prices'`` do not expand it: never a folder named ``~``)."""
    path = str(getattr(args, "db", None) or default_path())
    return path if "://" in path else os.path.expanduser(path)


def shown_db(args: argparse.Namespace) -> str:
    """The database for messages: a URL without credentials."""
    from ..storage.core.store import display_url, is_url

    path = _db_path(args)
    return display_url(path) if is_url(path) else path


def db_path_of(args: argparse.Namespace) -> str:
    """The database path a command works on (for error messages)."""
    return _db_path(args)


def check_db_arg(
    args: argparse.Namespace, *, create: bool, example: Callable[[Path], str] | None = None
) -> str:
    """``--db`` as a usage check before any work: a regular file is never a database, and
    a command that creates one refuses a non-empty folder that is not one (it would be
    turned into a database silently). ``example(folder)``: the command line to suggest
    instead of that folder (default: ``--db`` a new folder inside it)."""
    from ..errors import ConfigError
    from ..storage import database_exists
    from ..storage.core.store import LocalStore, check_location, display_url
    from ..storage.db import parquet_files_under

    path = _db_path(args)
    try:
        check_location(path)  # ftp://x, s3:/bucket (one slash): not a folder named so
    except ConfigError as exc:
        raise UsageError(f"--db {exc}") from None
    if path.lower().startswith("memory://"):
        raise UsageError(
            f"--db {display_url(path)!r}: a memory:// database lives only inside one "
            f"process and is gone when the command exits; use a folder or a bucket URL "
            f"(s3://, gs://, az://)"
        )
    if "://" in path:  # a URL: the store checks it
        return path
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(
            f"--db {path!r} is a file, not a database folder; pass a folder, e.g. --db ./db"
        )
    if create and p.is_dir() and not database_exists(p) and any(p.iterdir()):
        parquet = parquet_files_under(LocalStore(p, fsync=False))
        if example is None and parquet:  # the original pattern's folder
            example = lambda folder: (  # noqa: E731
                f"import its Parquet files ({parquet}) into a new folder: "
                f"tickvault import {path} --db {folder.parent / 'tvdb'} --apply"
            )
        raise UsageError(
            f"--db {path!r} is a folder with other files in it and no tickvault database "
            f"(tickvault.json); use an empty or new folder, e.g. "
            + (example(p) if example else f"--db {str(p / 'db')!r}")
        )
    return path


def open_db(args: argparse.Namespace) -> ParquetDB:
    """Open an existing database for a read or maintenance command (never creates one)."""
    from ..storage import ParquetDB

    return ParquetDB(check_db_arg(args, create=False), create=False)


#: ``--calendar none``: count calendar days, whatever calendar the database has
NO_CALENDAR = "none"


def calendar_of(args: argparse.Namespace, db: ParquetDB) -> str | None:
    """The calendar a command uses: ``--calendar CODE`` when given (``none``: calendar
    days), else the database's own (``tickvault calendar``), else None."""
    given = getattr(args, "calendar", None)
    if given is not None:
        return None if str(given).strip().lower() == NO_CALENDAR else str(given)
    return db.calendar


def check_table(
    args: argparse.Namespace, db: ParquetDB, table: str, *, by_interval: bool = False
) -> None:
    """A table the database does not have is exit 3 naming those it has: reading,
    exporting or checking ``prices_5m`` in a database without 5-minute bars is a mistake (a
    wrong ``--interval`` or ``--table``), not an empty success. ``by_interval``: the
    command picks the table with ``--interval``, so the message names the intervals too."""
    from ..errors import TableNotFound
    from ..modes import interval_of_table

    have = db.tables()
    if table in have:
        return
    listed = ", ".join(have) if have else "none yet (write one with `tickvault backfill`)"
    intervals = [str(iv) for iv in map(interval_of_table, have) if iv is not None]
    hint = (
        f"; read one with --interval {' or --interval '.join(intervals)}"
        if by_interval and intervals
        else ""
    )
    raise TableNotFound(f"no table {table!r} in {shown_db(args)!r} (its tables: {listed}){hint}")


def check_tickers(
    args: argparse.Namespace, db: ParquetDB, tickers: Sequence[str], table: str = "prices"
) -> None:
    """The one rule for commands that name tickers: any the table does not hold is an
    error (exit 3) naming them, the closest stored ones and the other prices tables that
    hold them, before anything is written — the library's own rule
    (``read_table(..., strict=True)``): a prices table knows its own tickers only, another
    table (``actions``) every ticker with daily prices too (a ticker without actions is
    not unknown)."""
    if not tickers:
        return
    from ..tickers import check_known

    check_known(
        tickers,
        lambda: db._known(table, db.snapshot(table)),
        where=repr(shown_db(args)),
        strict=True,
        elsewhere=lambda missing: db._elsewhere(table, missing),
    )
