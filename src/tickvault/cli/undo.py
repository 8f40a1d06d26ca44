"""``tickvault delete``, ``restore`` and ``gaps``: undo as ordinary commits, and checks of
the stored bars (``db.delete``, ``db.restore``, ``db.gaps``, ``db.suspicious_moves``;
decision 016). delete and restore are previews unless ``--apply``, like vacuum and repair."""

from __future__ import annotations

import argparse
from typing import Any

from ..formats import short_time
from .common import calendar_of, check_table, open_db, read_tickers
from .errors import EXIT_OK, EXIT_PROBLEMS, UsageError
from .option_types import add_interval_option, add_tickers_file, count, date
from .output import Output
from .parsing import Commands


def cmd_delete(args: argparse.Namespace, out: Output) -> int:
    """Preview (default) or delete rows by ticker and date range, as one commit."""
    tickers = read_tickers(args)
    if tickers and args.all_tickers:
        raise UsageError("name tickers or pass --all-tickers, not both")
    if not tickers and not args.all_tickers:
        raise UsageError(
            "delete needs tickers: e.g. `tickvault delete AAPL --start 2024-03-01`, or "
            "--all-tickers with --start/--end to delete a date range of every ticker"
        )
    if args.all_tickers and args.start is None and args.end is None:
        raise UsageError(
            "--all-tickers needs --start and/or --end (e.g. --start 2024-03-01 --end "
            "2024-03-31); deleting a whole table is not offered"
        )
    table = _table(args)
    db = open_db(args)
    check_table(args, db, table, by_interval=args.interval is not None)
    report = db.delete(
        table,
        tickers=tickers or None,
        start=args.start,
        end=args.end,
        dry_run=not args.apply,
    )
    if out.json:
        out.data(report.to_dict())
        return EXIT_OK
    verb = "would delete" if report.dry_run else "deleted"
    for d in report.tickers:
        out.print(
            f"{verb} {d['ticker']}: {d['rows']:,} rows, "
            f"{short_time(d['first'])} .. {short_time(d['last'])}"
        )
    if not report.rows:
        out.print(f"{table}: no stored rows match; nothing to delete")
        return EXIT_OK
    where = f" (version {report.version})" if report.version is not None else ""
    out.print(f"{verb} {report.rows:,} rows of {len(report.tickers)} ticker(s){where}")
    if report.dry_run:
        out.note("this was a dry run: add --apply to delete")
    else:
        again = "" if table == "prices" else f" --table {table}"
        out.note(
            f"undo with `tickvault restore --version {report.base_version}{again} --apply` "
            f"(add the tickers to restore only them)"
        )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, out: Output) -> int:
    """Preview (default) or make rows equal those of an earlier version, as a new commit."""
    tickers = read_tickers(args)
    table = _table(args)
    db = open_db(args)
    check_table(args, db, table, by_interval=args.interval is not None)
    report = db.restore(
        table,
        version=args.version,
        as_of=args.as_of,
        tickers=tickers or None,
        dry_run=not args.apply,
    )
    if out.json:
        out.data(report.to_dict())
        return EXIT_OK
    verb = "would restore" if report.dry_run else "restored"
    for d in report.tickers:
        out.print(
            f"{verb} {d['ticker']}: {d['rows_now']:,} → {d['rows_then']:,} rows "
            f"({d['come_back']:,} come back, {d['go']:,} go, {d['change']:,} change)"
        )
    if not report.changed:
        out.print(
            f"{table}: the rows already equal those of version {report.target}; nothing to restore"
        )
        return EXIT_OK
    where = f" as version {report.version}" if report.version is not None else ""
    out.print(
        f"{verb} {len(report.tickers)} ticker(s) of {table} to version {report.target}{where}"
    )
    if report.dry_run:
        out.note("this was a dry run: add --apply to restore")
    else:
        again = "" if table == "prices" else f" --table {table}"
        out.note(f"undo with `tickvault restore --version {report.base_version}{again} --apply`")
    return EXIT_OK


def cmd_gaps(args: argparse.Namespace, out: Output) -> int:
    """Missing sessions per ticker (and, with --moves, suspicious moves); exit 1 if any."""
    tickers = read_tickers(args) or None
    db = open_db(args)
    calendar = calendar_of(args, db)
    if not calendar and args.moves is None:
        raise UsageError(
            "gaps needs --calendar CODE (e.g. --calendar XNYS; or remember one with "
            "`tickvault calendar XNYS`) and/or --moves THRESHOLD (e.g. --moves 0.5)"
        )
    notes: list[str] = []
    doc: dict[str, Any] = {"calendar": calendar, "gaps": [], "moves": None, "notes": notes}
    if calendar:
        doc["gaps"] = db.gaps(
            calendar=calendar, tickers=tickers, start=args.start, end=args.end, notes=notes
        )
    if args.moves is not None:
        doc["moves"] = db.suspicious_moves(
            threshold=args.moves, tickers=tickers, start=args.start, end=args.end
        )
    found = bool(doc["gaps"] or doc["moves"])
    code = EXIT_PROBLEMS if found else EXIT_OK
    if out.json:
        out.data(doc)
        return code
    for g in doc["gaps"]:
        span = g["first"] if g["first"] == g["last"] else f"{g['first']} .. {g['last']}"
        out.print(f"{g['ticker']}: {g['sessions']} missing session(s) {span}")
    for m in doc["moves"] or []:
        move = "close <= 0" if m["move"] is None else f"{m['move']:+.1%}"
        split = f" (after a stored split of {m['split']:g})" if m["split"] else ""
        out.print(
            f"{m['ticker']}: {short_time(m['previous'])} → {short_time(m['timestamp'])} "
            f"close {m['close_before']:g} → {m['close']:g}: {move}{split}"
        )
    for n in notes:
        out.err.print(f"note: {n}", markup=False)
    if not out.quiet:
        parts = []
        if calendar:
            tickers_with = len({g["ticker"] for g in doc["gaps"]})
            parts.append(
                f"{len(doc['gaps'])} gap(s) in {tickers_with} ticker(s) on {calendar}"
                if doc["gaps"]
                else f"no missing {calendar} sessions"
            )
        if doc["moves"] is not None:
            parts.append(
                f"{len(doc['moves'])} suspicious move(s)" if doc["moves"] else "no suspicious moves"
            )
        out.print("; ".join(parts))
    return code


def _threshold(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number > 0; e.g. 0.5 flags closes that rise more than 50 % "
            f"or fall below 1/1.5 of the previous close"
        )
    return x


def _table(args: argparse.Namespace) -> str:
    """The table of ``--table`` and ``--interval`` (``--interval 1m``: ``prices_1m``)."""
    from ..storage.db import table_for

    return table_for(args.table, args.interval)


def add_commands(commands: Commands) -> None:
    """Register ``delete``, ``restore`` and ``gaps``."""
    p = commands.add(
        "delete", cmd_delete, "delete rows by ticker and date (dry run unless --apply)"
    )
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers whose rows to delete")
    add_tickers_file(p)
    p.add_argument(
        "--all-tickers",
        action="store_true",
        help="delete the --start/--end range of every ticker (instead of naming tickers)",
    )
    p.add_argument("--start", type=date, metavar="DATE", help="first date (inclusive)")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (inclusive)")
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")
    add_interval_option(p, "the bars to delete")
    p.add_argument("--apply", action="store_true", help="really delete (default: only list)")

    p = commands.add(
        "restore", cmd_restore, "make rows equal an earlier version's (dry run unless --apply)"
    )
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="only these tickers (default: all)")
    add_tickers_file(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--version", type=count, metavar="N", help="the version to restore (`tickvault history`)"
    )
    which.add_argument(
        "--as-of",
        type=date,
        metavar="TIME",
        help="the version current at TIME, e.g. 2026-11-30T22:00Z (a date: its end)",
    )
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")
    add_interval_option(p, "the bars to restore")
    p.add_argument("--apply", action="store_true", help="really restore (default: only list)")

    p = commands.add("gaps", cmd_gaps, "missing trading sessions per ticker; exit 1 if any")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all stored)")
    add_tickers_file(p)
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="exchange calendar of the sessions, e.g. XNYS, XLON (default: the database's)",
    )
    p.add_argument("--start", type=date, metavar="DATE", help="first date (inclusive)")
    p.add_argument("--end", type=date, metavar="DATE", help="last date (inclusive)")
    p.add_argument(
        "--moves",
        type=_threshold,
        metavar="THRESHOLD",
        help="also list closes that move by more than 1+THRESHOLD times either way with no "
        "stored split to explain it, e.g. 0.5",
    )
