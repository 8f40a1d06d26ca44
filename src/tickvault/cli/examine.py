"""Commands that look at a database: freshness, info, history, runs (:func:`add_commands`
registers them)."""

from __future__ import annotations

import argparse
from typing import Any

from ..formats import human_bytes, short_time
from ..modes import FRESH_MINUTES, STALE_MINUTES, prices_table
from .common import calendar_of, check_table, check_tickers, open_db, read_tickers, shown_db
from .errors import EXIT_OK, EXIT_PROBLEMS, UsageError
from .option_types import add_interval_option, add_tickers_file, count, date, limit
from .output import (
    Output,
    as_int,
    json_default,
    table,
)
from .parsing import Commands


def cmd_freshness(args: argparse.Namespace, out: Output) -> int:
    """How old each ticker's newest bar is; exit 1 when anything is stale."""
    from ..data_freshness import freshness_summary

    frame = _freshness(args)
    summary = freshness_summary(frame, worst=args.worst)
    code = EXIT_PROBLEMS if summary["is_stale"] else EXIT_OK
    if not out.quiet:
        if summary["note"]:
            out.err.print(f"note: {summary['note']}", markup=False)
        for w in summary["warnings"]:
            out.err.print(f"warning: {w}", markup=False)
    if out.json:
        records = [
            {**r, "last_timestamp": json_default(r["last_timestamp"]), "age": as_int(r["age"])}
            for r in frame.to_dict("records")
        ]
        out.data({"summary": summary, "tickers": records})
        return code
    if not out.quiet:
        _print_freshness(out, args, frame, summary)
    return code


def _print_freshness(
    out: Output, args: argparse.Namespace, frame: Any, summary: dict[str, Any]
) -> None:
    """The headline (labelled with its interval when intraday) and the oldest tickers."""
    c = summary["counts"]
    unit = summary["age_unit"]
    cal = f", calendar {summary['calendar']}" if summary["calendar"] else ""
    iv = summary.get("interval", "1d")
    bars = "" if iv == "1d" else f" of {iv} bars"
    n = summary["tickers"]
    out.print(
        f"{summary['status']}  {n} ticker{'' if n == 1 else 's'}{bars}: {c['fresh']} fresh, "
        f"{c['aging']} aging, {c['stale']} stale, {c['missing']} without data "
        f"(age in {unit}{cal}; latest bar {short_time(summary['latest']) or '-'})"
    )
    listed = frame if args.all else frame[frame["level"] != "fresh"]
    if len(listed):
        order = listed.sort_values(["age", "ticker"], ascending=[False, True], na_position="first")
        if not args.all:
            order = order.head(args.worst)
        rows = [
            (
                r["ticker"],
                short_time(json_default(r["last_timestamp"])),
                as_int(r["age"]),
                r["status"],
            )
            for r in order.to_dict("records")
        ]
        out.print(table(None, ["ticker", "last bar", "age", "status"], rows))
        if not args.all and len(listed) > args.worst:
            out.note(f"… {len(listed) - args.worst} more (use --all or --json)")


def _freshness(args: argparse.Namespace) -> Any:
    """``freshness(...)`` of the options, after the checks: tickers the table does not hold,
    or a table named by ``--interval`` (or for named tickers) that is not there, exit 3."""
    from ..data_freshness import default_interval, freshness

    db = open_db(args)
    tickers = read_tickers(args)
    # without --interval the library judges the daily table, or the intraday one that
    # holds bars when the daily table holds none: named tickers are checked against it
    judged = args.interval if args.interval is not None else default_interval(db)
    bars = prices_table(judged)
    if tickers or args.interval is not None:
        check_table(args, db, bars, by_interval=True)
    check_tickers(args, db, tickers, bars)
    return freshness(
        db,
        now=args.now,
        calendar=calendar_of(args, db),
        fresh_days=args.fresh_days,
        stale_days=args.stale_days,
        tickers=tickers or None,
        interval=args.interval,
        fresh_minutes=args.fresh_minutes,
        stale_minutes=args.stale_minutes,
    )


def cmd_calendar(args: argparse.Namespace, out: Output) -> int:
    """Show, set (``CODE``) or forget (``--unset``) the database's exchange calendar, which
    freshness, gaps and serve use when no ``--calendar`` is given."""
    if args.code and args.unset:
        raise UsageError("give CODE or --unset, not both")
    db = open_db(args)
    if args.code or args.unset:
        value = db.set_calendar(None if args.unset else args.code)
        out.note(
            f"the database at {shown_db(args)!r} now uses the {value} calendar"
            if value
            else f"the database at {shown_db(args)!r} has no calendar (ages in calendar days)"
        )
    else:
        value = db.calendar
    if out.json:
        out.data({"calendar": value})
    elif not (args.code or args.unset) and not out.quiet:
        out.print(
            value or "no calendar set (ages in calendar days); set one: tickvault calendar XNYS"
        )
    return EXIT_OK


def cmd_info(args: argparse.Namespace, out: Output) -> int:
    """Tables, tickers, rows, date range, versions, size on disk and the last run."""
    from .. import __version__

    db = open_db(args)
    info = db.info()
    runs = db.runs(limit=1)
    last = runs[0] if runs else None
    if out.json:
        out.data({**info, "tickvault": __version__, "last_run": _run_brief(last)})
        return EXIT_OK
    rows = [
        (
            name,
            t["version"],
            t["files"],
            t["tickers"],
            f"{t['rows']:,}",
            f"{t['stored_rows']:,}",
            short_time(t["first"]),
            short_time(t["last"]),
            human_bytes(t["bytes"]),
        )
        for name, t in info["tables"].items()
    ]
    cal = f", calendar {info['calendar']}" if info.get("calendar") else ""
    out.print(f"database {info['path']} (tickvault {__version__}{cal})")
    cols = ["table", "version", "files", "tickers", "rows", "stored", "first", "last", "size"]
    if rows:
        out.print(table(None, cols, rows))
    else:
        out.print("no tables yet (write with `tickvault backfill`)")
    if last:
        b = _run_brief(last) or {}
        out.print(
            f"last run: {b['kind']} {short_time(b['finished'])} from {b['source']}: "
            f"{b['total']} ticker{'' if b['total'] == 1 else 's'}, {b['written']} written, "
            f"{b['failed']} failed, "
            f"{b['rows']:,} rows in {b['seconds']:.1f}s ({b['run_id']})"
        )
    return EXIT_OK


def _run_brief(run: dict[str, Any] | None) -> dict[str, Any] | None:
    from ..pipeline import run_summary

    return None if run is None else run_summary(run)


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    """Versions of a table, oldest first (``db.history``)."""
    db = open_db(args)
    check_table(args, db, args.table)
    entries = db.history(args.table, limit=args.limit)
    if out.json:
        out.data(entries)
        return EXIT_OK
    rows = [
        (
            e["version"],
            short_time(e["timestamp"]),
            e["operation"],
            f"{e['rows']:,}",
            e["files_added"],
            e["files_removed"],
        )
        for e in entries
    ]
    cols = ["version", "time", "operation", "rows", "+files", "-files"]
    out.print(table(f"{args.table} history", cols, rows))
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: Output) -> int:
    """Recorded pipeline runs, newest first (``db.runs``)."""
    db = open_db(args)
    runs = db.runs(limit=args.limit)
    if out.json:
        out.data([{k: v for k, v in r.items() if k != "tickers"} for r in runs])
        return EXIT_OK
    if not runs and args.limit != 0:  # --limit 0 lists none: an empty table, like history
        out.print("no runs recorded yet")
        return EXIT_OK
    rows = []
    for r in runs:
        b = _run_brief(r) or {}
        rows.append(
            (
                b["run_id"],
                # a record written by other code (db.record_run) may lack any of these
                (b["kind"] or "-") + (" (interrupted)" if b["status"] == "interrupted" else ""),
                short_time(b["started"]),
                b["source"] or "-",
                b["total"],
                b["written"],
                b["failed"],
                f"{b['rows']:,}",
                f"{b['seconds']:.1f}",
            )
        )
    cols = ["run", "kind", "started", "source", "total", "written", "failed", "rows", "seconds"]
    out.print(table(None, cols, rows))
    return EXIT_OK


def add_commands(commands: Commands) -> None:
    """Register ``freshness``, ``info``, ``calendar``, ``history`` and ``runs``."""
    _add_freshness_command(commands)

    commands.add("info", cmd_info, "tables, tickers, rows, date range, versions, size, last run")

    p = commands.add("calendar", cmd_calendar, "show or set the database's exchange calendar")
    p.add_argument(
        "code",
        nargs="?",
        metavar="CODE",
        help="exchange_calendars code to remember, e.g. XNYS (default: show the current one)",
    )
    p.add_argument(
        "--unset", action="store_true", help="forget it (freshness counts calendar days again)"
    )

    p = commands.add("history", cmd_history, "the versions (commits) of a table")
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")
    p.add_argument(
        "--limit", type=limit, default=20, metavar="N", help="newest N, or all (default 20)"
    )

    p = commands.add("runs", cmd_runs, "recorded backfill/update runs, newest first")
    p.add_argument(
        "--limit", type=limit, default=20, metavar="N", help="newest N, or all (default 20)"
    )


def _add_freshness_command(commands: Commands) -> None:
    """Register ``freshness``."""
    p = commands.add("freshness", cmd_freshness, "how old each ticker's data is; exit 1 if stale")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all stored)")
    add_tickers_file(p)
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="count missed trading sessions on this exchange calendar (e.g. XNYS, XLON; "
        "default: the database's, see `tickvault calendar`; none: calendar days)",
    )
    p.add_argument(
        "--fresh-days",
        type=count,
        default=1,
        metavar="N",
        help="ages up to N are fresh (default: 1)",
    )
    p.add_argument(
        "--stale-days",
        type=count,
        default=7,
        metavar="N",
        help="ages above N are stale (default: 7)",
    )
    p.add_argument("--now", type=date, metavar="TIME", help="judge as of TIME (default: now)")
    add_interval_option(p, "judge this interval's table (intraday: in minutes behind)")
    p.add_argument(
        "--fresh-minutes",
        type=count,
        default=FRESH_MINUTES,
        metavar="N",
        help=f"intraday: up to N minutes behind is fresh (default: {FRESH_MINUTES})",
    )
    p.add_argument(
        "--stale-minutes",
        type=count,
        default=STALE_MINUTES,
        metavar="N",
        help=f"intraday: more than N minutes behind is stale (default: {STALE_MINUTES})",
    )
    p.add_argument("--all", action="store_true", help="list every ticker, fresh ones too")
    p.add_argument(
        "--worst", type=count, default=20, metavar="N", help="list the N oldest (default: 20)"
    )
