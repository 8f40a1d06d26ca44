"""The commands: each parses nothing, calls one library function, and formats the result."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .common import (
    check_db_arg,
    check_tickers,
    db_path_of,
    open_db,
    read_tickers,
    shown_db,
    source_options,
)
from .errors import EXIT_OK, CommandFailed, UsageError
from .output import (
    Output,
    print_frame,
    progress,
    report_summary,
    write_frame,
)

if TYPE_CHECKING:
    pass


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
    from ..pipeline import fetch_and_write

    with progress(out, len(tickers), "backfill") as on_progress:
        report = fetch_and_write(tickers, on_progress=on_progress, resume=args.resume, **options)
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
    }


def cmd_update(args: argparse.Namespace, out: Output) -> int:
    """Fetch what is new since each ticker's last stored bar (``update``)."""
    tickers = read_tickers(args) or None
    db = open_db(args)
    total = len(tickers) if tickers is not None else len(db.tickers())
    if total == 0:
        raise CommandFailed(
            f"the database at {shown_db(args)!r} has no tickers to update; "
            f"name them (`tickvault update AAPL`) or run `tickvault backfill` first"
        )
    from ..pipeline import update

    options = _run_options(args)
    if args.lookback is not None:
        options["lookback"] = args.lookback
    with progress(out, total, "update") as on_progress:
        report = update(tickers, on_progress=on_progress, **options)
    return report_summary(out, report)


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
    return get_source(args.source, **source_options(args.source_option))


def cmd_query(args: argparse.Namespace, out: Output) -> int:
    """Print or save stored bars (``db.read_table``)."""
    db = open_db(args)
    tickers = read_tickers(args)
    check_tickers(args, db, tickers)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    df = db.read_table(
        "prices",
        tickers=tickers or None,
        start=args.start,
        end=args.end,
        columns=columns,
        adjust=getattr(args, "adjust", None),
        as_of=args.as_of,
    )
    fmt = "json" if out.json and args.format == "table" else args.format
    if fmt == "parquet" and not args.output:
        raise UsageError("--format parquet needs --output FILE")
    if args.limit is not None:
        df = df.head(args.limit)
    if args.output:
        write_frame(df, fmt, args.output)
        out.note(f"wrote {len(df):,} rows to {args.output}")
        return EXIT_OK
    if fmt == "table":
        print_frame(out, df)
    else:
        write_frame(df, fmt, sys.stdout)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    """Run the web dashboard (``tickvault.dashboard.serve``)."""
    open_db(args)
    try:
        from ..dashboard import serve
    except ImportError as exc:
        raise CommandFailed(
            f"the dashboard is not available in this installation ({exc}); "
            f"reinstall tickvault with its web dependencies"
        ) from None
    from ..dashboard.security import TOKEN_ENV, HostPolicy, check_token

    options: dict[str, Any] = {}
    if args.calendar:
        options["calendar"] = args.calendar
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    check_token(token)  # bad options fail before "serving ..." is printed
    HostPolicy.for_bind(args.host, args.allowed_host or ())
    serve(
        db_path_of(args),
        host=args.host,
        port=args.port,
        allowed_hosts=args.allowed_host or (),
        token=token,
        on_listening=lambda url: out.note(f"serving {shown_db(args)} on {url} (Ctrl-C to stop)"),
        **options,
    )
    return EXIT_OK
