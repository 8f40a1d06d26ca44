"""``tickvault sql`` and ``tickvault export``: other engines over pinned versions
(``db.to_duckdb``, ``db.export``; decision 011)."""

from __future__ import annotations

import argparse
import os
import sys

from ..modes import interval_of_table
from .common import check_table, check_tickers, open_db, read_tickers
from .errors import EXIT_OK, UsageError
from .option_types import add_interval_option, add_tickers_file, count, date
from .output import Output, print_frame, write_frame
from .parsing import Commands


def cmd_sql(args: argparse.Namespace, out: Output) -> int:
    """Run a read-only DuckDB query with every table as a view named after it
    (``storage.readers.sql``: the statement guard and the locked connection)."""
    from ..storage.readers.engines import optional
    from ..storage.readers.sql import RefusedStatement, check_read_only, run_query

    duckdb = optional("duckdb", "duckdb")
    db = open_db(args)
    try:
        parser = duckdb.connect()
        check_read_only(parser, args.query)
        named = set(parser.get_table_names(args.query))
        snaps = [
            db.snapshot(name, args.version, as_of=args.as_of)
            if name in named
            else db.snapshot(name)
            for name in db.tables()
        ]
        df = run_query(snaps, args.query)
    except RefusedStatement as exc:
        raise UsageError(str(exc)) from None
    except duckdb.Error as exc:
        raise UsageError(f"SQL: {exc}") from None
    fmt = "json" if out.json and args.format == "table" else args.format
    if fmt == "table":
        print_frame(out, df)
    else:
        write_frame(df, fmt, sys.stdout)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    """Write a table's rows as plain Parquet or CSV files (``db.export``)."""
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"export folder {args.out!r} is a file; pass a folder, e.g. out/")
    if args.version is not None and args.as_of is not None:
        raise UsageError("--version and --as-of name a version each; pass one")
    db = open_db(args)
    table = _export_table(args.table, args.interval)
    tickers = read_tickers(args) or None
    if interval_of_table(table) is not None:  # no actions stored: an empty export
        check_table(args, db, table, by_interval=True)
    check_tickers(args, db, tickers or [], table)
    result = db.export(
        args.out,
        table=table,
        format=args.format,
        tickers=tickers,
        start=args.start,
        end=args.end,
        version=args.version,
        as_of=args.as_of,
    )
    if out.json:
        out.data(result)
    else:
        out.note(
            f"exported {result['rows']:,} rows of {result['table']} version {result['version']} "
            f"to {args.out} ({len(result['files'])} {args.format} file(s))"
        )
    return EXIT_OK


def _export_table(table: str | None, interval: str | None) -> str:
    """``--table`` and ``--interval`` as one table name (``storage.db.table_for``): the
    interval's prices table; a table of other bars, or not of bars, is exit 2."""
    from ..errors import ConfigError
    from ..storage.db import table_for

    try:
        return table_for(table or "prices", interval)
    except ConfigError as exc:
        raise UsageError(str(exc).replace("interval=", "--interval ")) from None


def add_commands(commands: Commands) -> None:
    """Register ``sql`` and ``export``."""
    p = commands.add("sql", cmd_sql, "run a read-only SQL query (DuckDB); tables are views")
    p.add_argument(
        "query", metavar="SQL", help="e.g. 'SELECT ticker, count(*) FROM prices GROUP BY 1'"
    )
    p.add_argument(
        "--version",
        type=count,
        metavar="N",
        help="query version N of the tables the statement names (default: the newest)",
    )
    p.add_argument(
        "--as-of",
        type=date,
        metavar="TIME",
        help="query the versions current at TIME, e.g. 2026-11-30T22:00Z (not with --version)",
    )
    p.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: table)",
    )

    p = commands.add("export", cmd_export, "write a table as plain Parquet or CSV files")
    p.add_argument("out", metavar="FOLDER", help="output folder (new, empty or an earlier export)")
    p.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="default: parquet"
    )
    p.add_argument("--table", default=None, metavar="NAME", help="table (default: prices)")
    add_interval_option(p, "export this interval's table")
    p.add_argument("--tickers", nargs="+", metavar="TICKER", help="only these tickers")
    add_tickers_file(p)
    p.add_argument("--start", type=date, metavar="DATE", help="first date (inclusive)")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (inclusive)")
    p.add_argument("--version", type=count, metavar="N", help="version N (default: the newest)")
    p.add_argument(
        "--as-of",
        type=date,
        metavar="TIME",
        help="the version current at TIME, e.g. 2026-11-30T22:00Z (a date: its end; "
        "not with --version)",
    )
