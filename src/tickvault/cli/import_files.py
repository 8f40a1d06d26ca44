"""``tickvault import``: bring in bars from Parquet files another program wrote
(:func:`tickvault.import_parquet`, decision 026); :func:`add_commands` registers it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import check_db_arg, shown_db
from .errors import EXIT_OK, UsageError
from .option_types import add_interval_option
from .output import Output, progress
from .parsing import Commands


def cmd_import(args: argparse.Namespace, out: Output) -> int:
    """Import Parquet files another program wrote (``parquet_import.import_parquet``); a
    dry run unless --apply. A dry run creates nothing: into a database that is not there
    yet, its bars are checked against an empty one in memory."""
    from types import SimpleNamespace

    from ..parquet_import import import_files, import_parquet
    from ..storage import MemoryStore, ParquetDB, database_exists

    columns = {}
    for pair in args.column or ():
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs.strip() or not ours.strip():
            raise UsageError(f"--column {pair!r}: use THEIRS=OURS, e.g. --column px_last=close")
        columns[theirs.strip()] = ours.strip()
    import_files(args.path)  # the files are there, and are no database: before --db is made
    beside = _beside(args.path)
    # the default ./db may be the folder of the files to import: --apply needs another one;
    # a dry run creates nothing, so it runs and says so
    path = check_db_arg(args, create=args.apply, example=lambda _: beside)
    exists = args.apply or database_exists(path)
    db = ParquetDB(path) if exists else ParquetDB(store=MemoryStore())
    with progress(out, 0, "import (reading files)") as on_progress:

        def on_file(done: int, total: int, rows: int) -> None:
            if on_progress is not None:
                on_progress(SimpleNamespace(done=done, total=total, rows=rows, failed=0))

        report = import_parquet(
            db,
            args.path,
            apply=args.apply,
            interval=args.interval,
            columns=columns or None,
            ticker_column=args.ticker_column,
            date_format=args.date_format,
            tz=args.tz,
            on_file=on_file,
        )
    if out.json:
        out.data(report.to_dict())
    else:
        _print_report(out, report, shown_db(args))
        if not exists and _other_files_in(path):
            out.note(
                f"--apply needs a new folder for the database: {shown_db(args)!r} holds "
                f"other files; e.g. {beside}"
            )
    return EXIT_OK


def _beside(files: str) -> str:
    """The import command with a new database folder in the current one (``tvdb``, or
    the first of ``tvdb2``, ``tvdb3``, ... not there yet)."""
    from pathlib import Path

    name = next(n for n in ("tvdb", *(f"tvdb{i}" for i in range(2, 100))) if not Path(n).exists())
    return f"a new folder: tickvault import {files} --db {name} --apply"


def _other_files_in(path: str) -> bool:
    """Is ``path`` a local folder with something in it (not a database: checked before)?"""
    from pathlib import Path

    p = Path(path).expanduser()
    return "://" not in path and p.is_dir() and any(p.iterdir())


def _print_report(out: Output, report: Any, db: str) -> None:
    """What an import found or wrote, for people."""
    verb = "would import" if report.dry_run else "imported"
    shown = ", ".join(report.tickers[:10]) + (" ..." if len(report.tickers) > 10 else "")
    span = f", {report.first[:10]} .. {report.last[:10]}" if report.first and report.last else ""
    out.print(
        f"{verb} {report.rows:,} bars of {len(report.tickers)} ticker(s) ({shown}){span} "
        f"from {len(report.files)} file(s) into {report.table} of {db}"
    )
    if report.named_by_file:
        names = ", ".join(report.named_by_file[:5]) + (
            " ..." if len(report.named_by_file) > 5 else ""
        )
        out.note(
            f"{len(report.named_by_file)} ticker(s) taken from file names ({names}): their "
            f"files have no ticker column; if a name is not a ticker, say which column is "
            f"(--ticker-column NAME)"
        )
    if report.skipped:
        names = ", ".join(report.skipped[:3]) + (" ..." if len(report.skipped) > 3 else "")
        out.note(
            f"{len(report.skipped)} other file(s) not read ({names}): import reads Parquet "
            f"files (*.parquet, *.pq, *.parq); bring in CSV files with `tickvault backfill "
            f"--source csv --source-option path=FOLDER TICKER...`"
        )
    if report.dry_run:
        out.note("this was a dry run: add --apply to import")


def add_commands(commands: Commands) -> None:
    """Register ``import``."""
    p = commands.add(
        "import",
        cmd_import,
        "bring in bars from Parquet files another program wrote (dry run unless --apply)",
    )
    p.add_argument(
        "path",
        metavar="PATH",
        help="a Parquet file, or a folder of them (read recursively; ticker=X folders name "
        "the ticker), e.g. ./old_db/prices",
    )
    p.add_argument("--apply", action="store_true", help="really import (default: only list)")
    p.add_argument(
        "--column",
        action="append",
        metavar="THEIRS=OURS",
        help="map a column, e.g. --column px_last=close (repeatable; tickvault's own names, "
        "Yahoo's and symbol/date are recognised without it)",
    )
    p.add_argument("--ticker-column", metavar="NAME", help="the column holding the ticker")
    p.add_argument("--date-format", metavar="FMT", help="format of text dates, e.g. %%d/%%m/%%Y")
    p.add_argument(
        "--tz", metavar="ZONE", help="time zone of naive intraday times, e.g. America/New_York"
    )
    add_interval_option(p, "the bars' interval and the table to write")
