"""``tickvault backfill``, ``update`` and ``query``: each calls one library function and
formats the result; :func:`add_commands` registers them and their options."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

from .actions import add_adjust_option
from .common import (
    check_db_arg,
    check_table,
    check_tickers,
    open_db,
    read_tickers,
    shown_db,
    source_options,
)
from .errors import EXIT_OK, CommandFailed, UsageError
from .option_types import (
    add_interval_option,
    add_tickers_file,
    bar_interval,
    count,
    date,
    limit,
    positive,
)
from .output import (
    Output,
    print_frame,
    progress,
    report_summary,
    stream_frames,
    write_frame,
)
from .parsing import Commands

FORMATS = ("table", "csv", "json", "parquet")

#: ``query --output FILE``: the format a file's extension names
OUTPUT_EXTENSIONS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


# -- commands ---------------------------------------------------------------------------------


def cmd_backfill(args: argparse.Namespace, out: Output) -> int:
    """Fetch history for tickers from a source and write it (``fetch_and_write``)."""
    tickers = read_tickers(args)
    options = _run_options(args)
    if args.tickers_from_repair:
        lost = open_db(args).lost_in_repairs()
        if not lost:
            raise CommandFailed("no applied repair dropped any rows: nothing to re-fetch")
        tickers = list(dict.fromkeys([*tickers, *sorted(lost)]))
        if options["start"] is None:
            options["start"] = min(first for first, _ in lost.values())
    if not tickers:
        raise UsageError("no tickers: give TICKER... or --tickers-file FILE")
    if args.calendar is not None:
        from ..calendars import get_calendar

        get_calendar(args.calendar)  # an unknown code fails before any work
    from ..pipeline import fetch_and_write

    with progress(out, len(tickers), "backfill") as on_progress:
        report = fetch_and_write(tickers, on_progress=on_progress, resume=args.resume, **options)
    if args.calendar is not None:
        from ..storage import ParquetDB

        ParquetDB(options["db"], create=False).set_calendar(args.calendar)
    return report_summary(out, report)


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options backfill and update share, by their library names."""
    return {
        "source": _source(args),
        "db": check_db_arg(args, create=True),
        "start": args.start,
        "end": args.end,
        "scheduler": args.scheduler,
        "n_workers": args.n_workers,
        "replace_source": args.replace_source,
        "interval": args.interval,
    }


def cmd_update(args: argparse.Namespace, out: Output) -> int:
    """Fetch what is new since each ticker's last stored bar (``update``)."""
    tickers = read_tickers(args) or None
    db = open_db(args)
    total = len(tickers) if tickers is not None else len(db.tickers(interval=args.interval))
    if total == 0:
        raise CommandFailed(
            f"the database at {shown_db(args)!r} has no {_bars(args.interval)} to update; "
            + (
                _other_intervals(db, args.interval)
                or "name them (`tickvault update AAPL`) or run `tickvault backfill` first"
            )
        )
    if tickers is not None and args.source is None:
        _check_in_table(db, tickers, args.interval)
    from ..pipeline import update

    options = _run_options(args)
    if args.lookback is not None:
        options["lookback"] = args.lookback
    with progress(out, total, "update") as on_progress:
        report = update(tickers, on_progress=on_progress, **options)
    return report_summary(out, report)


def _bars(interval: str | None) -> str:
    """``daily bars``, ``1m bars``: how a message names an interval's table."""
    return "daily bars" if interval in (None, "1d") else f"{interval} bars"


def _other_intervals(db: Any, interval: str | None, tickers: list[str] | None = None) -> str:
    """How to update the bars (of ``tickers``, default all) that the prices tables of
    intervals other than ``interval`` hold; "" when none does."""
    from ..data_freshness import intervals_with_bars

    hints = []
    for iv, held in intervals_with_bars(db, tickers).items():
        if iv == (interval or "1d"):
            continue
        option = "" if iv == "1d" else f" --interval {iv}"
        n = len(held)
        shown = ", ".join(held[:3]) + (", ..." if n > 3 else "")
        named = "" if tickers is None else " " + " ".join(held)
        hints.append(
            f"{_bars(iv)} of {n} ticker{'s' if n != 1 else ''} ({shown}) are in "
            f"{_prices_table(iv)}: `tickvault update{option}{named}` updates them"
        )
    return "; ".join(hints)


def _check_in_table(db: Any, tickers: list[str], interval: str | None) -> None:
    """``update AAPL`` (no ``--source``) of tickers whose bars are only in other
    intervals' tables: exit 2 pointing at those intervals, before the pipeline asks for a
    source (which would start a table of this interval for them)."""
    from ..tickers import normalize

    table = _prices_table(interval)
    stored = set(db.tickers(table)) if table in db.tables() else set()
    missing = [t for t in dict.fromkeys(map(normalize, tickers)) if t not in stored]
    hint = _other_intervals(db, interval, missing) if missing else ""
    if hint:
        option = "" if interval in (None, "1d") else f" --interval {interval}"
        raise UsageError(
            f"{', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no "
            f"{_bars(interval)} to update; {hint}; to start {_bars(interval)} instead, name "
            f"their source: `tickvault update --source yahoo{option} {' '.join(missing)}`"
        )


def _source(args: argparse.Namespace) -> Any:
    """The source object, created up front so a bad name or option fails before any work
    (None for ``update`` without ``--source``: the library uses the recorded one)."""
    from ..sources import get_source

    if args.source is None:
        if args.source_option:
            raise UsageError(
                "--source-option needs --source NAME, e.g. --source yahoo --source-option "
                "base_url=http://127.0.0.1:8000"
            )
        return None
    options = source_options(args.source_option)
    if args.interval not in (None, "1d") and "interval" not in options:
        options["interval"] = args.interval  # the source makes the bars the run writes
    return get_source(args.source, **options)


def cmd_query(args: argparse.Namespace, out: Output) -> int:
    """Print or save stored bars (``db.read_table``)."""
    fmt = _query_format(args, out)
    db = open_db(args)
    tickers = read_tickers(args)
    table = _prices_table(args.interval)
    check_table(args, db, table, by_interval=True)
    check_tickers(args, db, tickers, table)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    read = {
        "tickers": tickers or None,
        "start": args.start,
        "end": args.end,
        "columns": columns,
        "adjust": getattr(args, "adjust", None),
        "as_of": args.as_of,
    }
    if args.resample is not None or args.calendar is not None:  # one resampled read
        whole = db.read_table(table, resample=args.resample, calendar=args.calendar, **read)
        pieces: Iterator[Any] = iter([whole if args.limit is None else whole.head(args.limit)])
    else:  # in pieces in key order: --limit stops after a few rows, not after the table
        pieces = db.iter_table(table, limit=args.limit, **read)
    if fmt in ("csv", "json") and not args.output:
        stream_frames(pieces, fmt, sys.stdout, empty=lambda: _empty(db, table, read))
        return EXIT_OK
    parts = list(pieces)
    df = _concat(parts) if parts else _empty(db, table, read)
    if args.output:
        write_frame(df, fmt, args.output)
        out.note(f"wrote {len(df):,} rows to {args.output}")
        return EXIT_OK
    if fmt == "table":
        print_frame(out, df)
    else:
        write_frame(df, fmt, sys.stdout)
    return EXIT_OK


def _query_format(args: argparse.Namespace, out: Output) -> str:
    """``--format``, or for ``--output FILE`` the format its extension names (``a.parquet``
    is Parquet, never CSV text under that name; a name whose extension names no format is
    CSV, as it always was, with a note). A ``--format`` the extension contradicts is a
    usage error."""
    given = args.format
    if not args.output:
        if given == "parquet":
            raise UsageError("--format parquet needs --output FILE, e.g. --output bars.parquet")
        return given or ("json" if out.json else "table")
    ext = os.path.splitext(args.output)[1].lower()
    named = OUTPUT_EXTENSIONS.get(ext)
    known = ", ".join(OUTPUT_EXTENSIONS)
    if given == "table":
        raise UsageError(
            f"--format table prints to the terminal; to write --output {args.output!r} use "
            f"--format csv, json or parquet (or leave --format out: the extension decides)"
        )
    if given is None and named is None:
        # CSV, as --output always wrote (scripts name files bars.txt, or bars): said once
        out.note(
            f"--output {args.output!r}: the extension {ext or '(none)'!r} names no format "
            f"({known}); writing CSV (pass --format to choose)"
        )
        return "csv"
    if given is not None and named is not None and given != named:
        raise UsageError(
            f"--format {given} contradicts --output {args.output!r}, which names a {named} "
            f"file; drop --format (the extension decides) or name the file "
            f"{os.path.splitext(args.output)[0]}.{given}"
        )
    return given or str(named)


def _prices_table(interval: str | None) -> str:
    from ..modes import prices_table

    return prices_table(interval)


def _concat(parts: list[Any]) -> Any:
    import pandas as pd

    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _empty(db: Any, table: str, read: dict[str, Any]) -> Any:
    """The (empty) result when no piece holds a row: its columns, from the read itself."""
    return db.read_table(table, **read).head(0)


# -- the parser -------------------------------------------------------------------------------


def add_commands(commands: Commands) -> None:
    """Register ``backfill``, ``update`` and ``query``."""
    p = commands.add("backfill", cmd_backfill, "fetch tickers' history from a source and store it")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers to fetch")
    _add_source_options(p, default="demo")
    p.add_argument("--start", type=date, metavar="DATE", help="first date (default: source's)")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (default: today)")
    p.add_argument(
        "--resume", action="store_true", help="skip tickers an interrupted run already wrote"
    )
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="remember this exchange calendar (e.g. XNYS) as the database's, for freshness, "
        "gaps and serve",
    )
    p.add_argument(
        "--tickers-from-repair",
        action="store_true",
        help="re-fetch what applied repairs dropped (those tickers, from their first lost bar)",
    )
    add_interval_option(p, "the bars to fetch and the table to write")

    p = commands.add("update", cmd_update, "fetch what is new since each ticker's last stored bar")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all stored)")
    _add_source_options(p, default=None)
    p.add_argument(
        "--lookback",
        type=count,
        metavar="N",
        help="re-fetch N business days before each ticker's last bar, to pick up revised "
        "bars (default: 5)",
    )
    p.add_argument("--start", type=date, metavar="DATE", help="start for tickers with no data")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (default: today)")
    add_interval_option(p, "the table to bring up to date")

    _add_query_command(commands)


def _add_query_command(commands: Commands) -> None:
    """Register ``query``."""
    p = commands.add("query", cmd_query, "print or save stored bars")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all)")
    add_tickers_file(p)
    p.add_argument("--start", type=date, metavar="DATE", help="first date (inclusive)")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (inclusive)")
    p.add_argument("--columns", metavar="A,B", help="columns to include (key columns always)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: table; with --output, the file's extension: "
        ".csv, .json, .parquet or .pq)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE instead of stdout, in the format its extension names",
    )
    p.add_argument("--limit", type=limit, metavar="N", help="at most N rows (0: none)")
    p.add_argument(
        "--as-of",
        type=date,
        metavar="TIME",
        help="read the version current at TIME, e.g. 2026-11-30T22:00Z (a date: its end)",
    )
    add_adjust_option(p)
    add_interval_option(p, "which bars to read")
    p.add_argument(
        "--resample",
        type=bar_interval,
        metavar="IV",
        help="return coarser OHLCV bars: 2m, 5m, 15m, 30m, 1h or 1d, buckets on the UTC "
        "clock labelled by their start (e.g. --interval 1m --resample 5m)",
    )
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="with --resample 1d: one bar per session of this exchange calendar (e.g. XNYS)",
    )


def _add_source_options(p: argparse.ArgumentParser, *, default: str | None) -> None:
    from ..sources import available_sources

    names = ", ".join(available_sources())
    p.add_argument(
        "--source",
        default=default,
        metavar="NAME",
        help=f"where bars come from: {names} (default: "
        + (f"{default})" if default else "the source the stored bars came from)"),
    )
    p.add_argument(
        "--replace-source",
        action="store_true",
        help="allow overwriting tickers whose stored bars came from another source",
    )
    p.add_argument(
        "--source-option",
        action="append",
        metavar="KEY=VALUE",
        help="an option for the source, repeatable (e.g. path=exports/ or latency=0.1)",
    )
    p.add_argument(
        "--scheduler",
        default="threads",
        help="threads, processes, synchronous, distributed (a local Dask cluster) or a "
        "tcp://host:8786 scheduler address (default: threads)",
    )
    p.add_argument(
        "--n-workers",
        "--workers",
        dest="n_workers",
        type=positive,
        metavar="N",
        help="parallel fetches, like n_workers= (default: automatic; --workers is an alias)",
    )
    add_tickers_file(p)
