"""Commands that check and look after a database: verify, repair, compact, vacuum
(:func:`add_commands` registers them)."""

from __future__ import annotations

import argparse

from ..formats import human_bytes, short_time
from .common import check_table, open_db
from .errors import EXIT_OK, EXIT_PROBLEMS
from .option_types import duration
from .output import Output
from .parsing import Commands


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    """Open every data file and check it against the log; exit 1 on problems."""
    db = open_db(args)
    if args.table is not None:
        check_table(args, db, args.table)
    repaired = None
    if args.repair:
        repaired = db.repair(dry_run=False, table=args.table)
    report = db.verify(args.table)
    # like fsck: problems found are exit 1 even when --repair fixed them (rows may be lost)
    found = repaired is not None and bool(repaired.actions or repaired.unrepairable)
    code = EXIT_OK if report.ok and not found else EXIT_PROBLEMS
    if out.json:
        out.data(
            {**report.to_dict(), "repair": repaired.to_dict() if repaired is not None else None}
        )
        return code
    for a in repaired.actions if repaired is not None else []:
        extra = f" ({a['rows_lost']:,} rows lost)" if "rows_lost" in a else ""
        out.note(f"repaired {a['table']}/{a['path']}: {a['action']}{extra}")
    for u in repaired.unrepairable if repaired is not None else []:
        out.err.print(f"cannot repair {u}")
    for p in report.problems:
        out.err.print(f"{p.table}/{p.path}: {p.kind}: {p.detail}")
    for w in report.warnings:
        out.err.print(f"warning: {w}", markup=False)
    if not out.quiet:
        versions = ", ".join(f"{t} v{v}" for t, v in report.versions.items())
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        out.print(
            f"{verdict}: {report.files_checked:,} files, {report.rows_checked:,} rows checked"
            + (f" ({versions})" if versions else "")
        )
        leftovers = len(report.orphans) + len(report.unreferenced)
        if leftovers:
            out.print(
                f"{leftovers} file(s) no version uses (harmless; `tickvault vacuum` lists them)"
            )
        if not report.ok and not args.repair:
            out.note("run `tickvault repair` to see what a repair would drop, then `--apply`")
    return code


def cmd_repair(args: argparse.Namespace, out: Output) -> int:
    """Drop unreadable files and rewrite inconsistent ones (``db.repair``); a dry run
    unless --apply. Lists which tickers and date ranges each drop loses."""
    db = open_db(args)
    if args.table is not None:
        check_table(args, db, args.table)
    report = db.repair(dry_run=not args.apply, table=args.table)
    if out.json:
        out.data(report.to_dict())
    else:
        verb = "would" if not args.apply else "did"
        for a in report.actions:
            extra = f", {a['rows_lost']:,} rows lost" if "rows_lost" in a else ""
            out.print(f"{verb} {a['action']} {a['table']}/{a['path']}{extra}")
            if a.get("detail"):  # a lost log entry: what the action means
                out.print(f"  {a['detail']}")
            for lost in a.get("lost", []):
                out.print(
                    f"  {lost['ticker']}: {short_time(lost['first'])} .. "
                    f"{short_time(lost['last'])} "
                    f"({lost['rows']:,} rows)"
                )
            for u in a.get("unnamed_files", []):
                out.print(
                    f"  not named by any entry (the lost commit's?): {u['file']} "
                    f"({', '.join(u['tickers'][:10]) or 'unreadable'}; {u['rows']:,} rows)"
                )
        for u in report.unrepairable:
            out.err.print(f"cannot repair {u}")
        if not report.actions and not report.unrepairable:
            out.print("nothing to repair")
        elif not args.apply:
            out.note("this was a dry run: add --apply to repair")
        elif any(a.get("lost") for a in report.actions):
            out.note("re-fetch what was lost: `tickvault backfill --tickers-from-repair`")
    found = bool(report.actions or report.unrepairable)
    return EXIT_PROBLEMS if found else EXIT_OK


def cmd_compact(args: argparse.Namespace, out: Output) -> int:
    """Merge small files into the sorted layout, as one commit (``db.compact``)."""
    db = open_db(args)
    check_table(args, db, args.table)
    before = db.info()["tables"][args.table]
    result = db.compact(args.table, relayout=args.relayout)
    after = db.info()["tables"][args.table]
    doc = {
        "table": args.table,
        "compacted": result is not None,
        "version": after["version"],
        "files_before": before["files"],
        "files_after": after["files"],
    }
    if out.json:
        out.data(doc)
    elif result is None:
        out.print(f"{args.table}: nothing to compact ({before['files']} files)")
    else:
        out.print(
            f"{args.table}: compacted {before['files']} → {after['files']} files "
            f"(version {after['version']})"
        )
    return EXIT_OK


def cmd_vacuum(args: argparse.Namespace, out: Output) -> int:
    """Delete files no version needs; a dry run unless --apply (``db.vacuum``)."""
    db = open_db(args)
    if args.table is not None:
        check_table(args, db, args.table)
    report = db.vacuum(
        dry_run=not args.apply, retention=args.retention, table=args.table, force=args.force
    )
    if out.json:
        out.data(report.to_dict())
        return EXIT_OK
    verb = "would delete" if report.dry_run else "deleted"
    for f in report.files:
        out.print(f"{verb} {f}")
    out.print(f"{verb} {len(report.files)} file(s), {human_bytes(report.bytes)}")
    if report.kept_recent:
        out.note(
            f"kept {len(report.kept_recent)} recent file(s): younger than the retention "
            f"(--retention 0 to include them), or written in the last hour and not "
            f"committed yet (a running writer may be about to commit them; --force if "
            f"none is running)"
        )
    if report.foreign:
        more = f" and {len(report.foreign) - 3} more" if len(report.foreign) > 3 else ""
        out.note(
            f"left alone {len(report.foreign)} file(s) tickvault did not write "
            f"({', '.join(report.foreign[:3])}{more}): tickvault neither reads nor deletes "
            f"them; move them out of the database folder, or bring their bars in with "
            f"`tickvault import PATH`"
        )
    if report.dry_run and report.files:
        out.note("this was a dry run: add --apply to delete")
    return EXIT_OK


def add_commands(commands: Commands) -> None:
    """Register ``verify``, ``repair``, ``compact`` and ``vacuum``."""
    p = commands.add(
        "verify", cmd_verify, "check every data file against the log; exit 1 if damaged"
    )
    p.add_argument("--repair", action="store_true", help="drop or rewrite damaged files first")
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")

    p = commands.add("repair", cmd_repair, "drop or rewrite damaged files (dry run unless --apply)")
    p.add_argument("--apply", action="store_true", help="really repair (default: only list)")
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")

    p = commands.add("compact", cmd_compact, "merge small files into the sorted layout")
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")
    p.add_argument(
        "--relayout",
        action="store_true",
        help="also rewrite level-1 files laid out for another period (e.g. a database "
        "written before yearly files), slot by slot",
    )

    p = commands.add("vacuum", cmd_vacuum, "delete files no version needs (dry run unless --apply)")
    p.add_argument("--apply", action="store_true", help="really delete (default: only list)")
    p.add_argument(
        "--retention",
        type=duration,
        default=None,
        metavar="AGE",
        help="keep files younger than AGE, e.g. 0, 30m, 1h, 2d (default: 1h)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="no writer is running (e.g. after a crash): also delete uncommitted files "
        "younger than an hour (kept by default: a running writer may be about to commit "
        "them)",
    )
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")
