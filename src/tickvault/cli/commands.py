"""The commands: each parses nothing, calls one library function, and formats the result."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TableNotFound
from .errors import EXIT_OK, EXIT_PROBLEMS, CommandFailed, UsageError
from .output import (
    Output,
    as_int,
    json_default,
    print_frame,
    progress,
    report_summary,
    size,
    table,
    when,
    write_frame,
)

if TYPE_CHECKING:
    from ..storage import ParquetDB

DB_ENV = "TICKVAULT_DB"


def _option_value(text: str) -> Any:
    """``--source-option`` values: JSON when they parse (numbers, true, lists), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _source_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--source-option {pair!r}: use KEY=VALUE, e.g. latency=0.1")
        out[key.strip().replace("-", "_")] = _option_value(value)
    return out


def _read_tickers(args: argparse.Namespace) -> list[str]:
    tickers = list(getattr(args, "tickers", None) or [])
    path = getattr(args, "tickers_file", None)
    if path:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--tickers-file {path!r}: {exc.strerror or exc}") from None
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            tickers.extend(t for t in re.split(r"[\s,;]+", line) if t)
    from ..tickers import normalize_all

    return [t for t in normalize_all(tickers) if t]


def _db_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "db", None) or os.environ.get(DB_ENV) or "db")


def _shown(args: argparse.Namespace) -> str:
    """The database for messages: a URL without credentials."""
    from ..storage.store import display_url, is_url

    path = _db_path(args)
    return display_url(path) if is_url(path) else path


def db_path_of(args: argparse.Namespace) -> str:
    """The database path a command works on (for error messages)."""
    return _db_path(args)


def _check_db_arg(args: argparse.Namespace, *, create: bool) -> str:
    """``--db`` as a usage check before any work: a regular file is never a database, and
    a command that creates one refuses a non-empty folder that is not one (it would be
    turned into a database silently)."""
    from ..storage.db import MARKER

    path = _db_path(args)
    if "://" in path:  # a URL: the store checks it
        return path
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(
            f"--db {path!r} is a file, not a database folder; pass a folder, e.g. --db ./db"
        )
    if create and p.is_dir() and not (p / MARKER).exists() and any(p.iterdir()):
        raise UsageError(
            f"--db {path!r} is a folder with other files in it and no tickvault database "
            f"({MARKER}); use an empty or new folder, e.g. --db {str(p / 'db')!r}"
        )
    return path


def _open_db(args: argparse.Namespace) -> ParquetDB:
    """Open an existing database for a read or maintenance command (never creates one)."""
    from ..storage import ParquetDB

    return ParquetDB(_check_db_arg(args, create=False), create=False)


# -- commands ---------------------------------------------------------------------------------


def cmd_backfill(args: argparse.Namespace, out: Output) -> int:
    """Fetch history for tickers from a source and write it (``fetch_and_write``)."""
    tickers = _read_tickers(args)
    options = _run_options(args)
    if args.tickers_from_repair:
        lost = _open_db(args).lost_in_repairs()
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
        "db": _check_db_arg(args, create=True),
        "start": args.start,
        "end": args.end,
        "scheduler": args.scheduler,
        "n_workers": args.n_workers,
        "replace_source": args.replace_source,
    }


def cmd_update(args: argparse.Namespace, out: Output) -> int:
    """Fetch what is new since each ticker's last stored bar (``update``)."""
    tickers = _read_tickers(args) or None
    db = _open_db(args)
    total = len(tickers) if tickers is not None else len(db.tickers())
    if total == 0:
        raise CommandFailed(
            f"the database at {_shown(args)!r} has no tickers to update; "
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
    return get_source(args.source, **_source_options(args.source_option))


def cmd_query(args: argparse.Namespace, out: Output) -> int:
    """Print or save stored bars (``db.read_table``)."""
    db = _open_db(args)
    tickers = _read_tickers(args)
    known = set(db.tickers())
    unknown = [t for t in tickers if t not in known]
    if unknown:
        from ..tickers import not_found

        raise not_found(unknown, known, repr(_shown(args)))
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    df = db.read_table(
        "prices",
        tickers=tickers or None,
        start=args.start,
        end=args.end,
        columns=columns,
        adjust=getattr(args, "adjust", None),
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


def cmd_freshness(args: argparse.Namespace, out: Output) -> int:
    """How old each ticker's newest bar is; exit 1 when anything is stale."""
    from ..data_freshness import freshness, freshness_summary

    db = _open_db(args)
    frame = freshness(
        db,
        now=args.now,
        calendar=args.calendar,
        fresh_days=args.fresh_days,
        stale_days=args.stale_days,
        tickers=_read_tickers(args) or None,
    )
    summary = freshness_summary(frame, worst=args.worst)
    code = EXIT_PROBLEMS if summary["is_stale"] else EXIT_OK
    if out.json:
        records = [
            {**r, "last_timestamp": json_default(r["last_timestamp"]), "age": as_int(r["age"])}
            for r in frame.to_dict("records")
        ]
        out.data({"summary": summary, "tickers": records})
        return code
    if out.quiet:
        return code
    c = summary["counts"]
    unit = summary["age_unit"]
    cal = f", calendar {summary['calendar']}" if summary["calendar"] else ""
    out.print(
        f"{summary['status']}  {summary['tickers']} tickers: {c['fresh']} fresh, "
        f"{c['aging']} aging, {c['stale']} stale, {c['missing']} without data "
        f"(age in {unit}{cal}; latest bar {when(summary['latest']) or '-'})"
    )
    listed = frame if args.all else frame[frame["level"] != "fresh"]
    if len(listed):
        order = listed.sort_values(["age", "ticker"], ascending=[False, True], na_position="first")
        if not args.all:
            order = order.head(args.worst)
        rows = [
            (r["ticker"], when(json_default(r["last_timestamp"])), as_int(r["age"]), r["status"])
            for r in order.to_dict("records")
        ]
        out.print(table(None, ["ticker", "last bar", "age", "status"], rows))
        if not args.all and len(listed) > args.worst:
            out.note(f"… {len(listed) - args.worst} more (use --all or --json)")
    return code


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    """Open every data file and check it against the log; exit 1 on problems."""
    db = _open_db(args)
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
    db = _open_db(args)
    report = db.repair(dry_run=not args.apply, table=args.table)
    if out.json:
        out.data(report.to_dict())
    else:
        verb = "would" if not args.apply else "did"
        for a in report.actions:
            extra = f", {a['rows_lost']:,} rows lost" if "rows_lost" in a else ""
            out.print(f"{verb} {a['action']} {a['table']}/{a['path']}{extra}")
            for lost in a.get("lost", []):
                out.print(
                    f"  {lost['ticker']}: {when(lost['first'])} .. {when(lost['last'])} "
                    f"({lost['rows']:,} rows)"
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


def cmd_info(args: argparse.Namespace, out: Output) -> int:
    """Tables, tickers, rows, date range, versions, size on disk and the last run."""
    from .. import __version__

    db = _open_db(args)
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
            when(t["first"]),
            when(t["last"]),
            size(t["bytes"]),
        )
        for name, t in info["tables"].items()
    ]
    out.print(f"database {info['path']} (tickvault {__version__})")
    cols = ["table", "version", "files", "tickers", "rows", "stored", "first", "last", "size"]
    if rows:
        out.print(table(None, cols, rows))
    else:
        out.print("no tables yet (write with `tickvault backfill`)")
    if last:
        b = _run_brief(last) or {}
        out.print(
            f"last run: {b['kind']} {when(b['finished'])} from {b['source']}: "
            f"{b['total']} tickers, {b['written']} written, {b['failed']} failed, "
            f"{b['rows']:,} rows in {b['seconds']:.1f}s ({b['run_id']})"
        )
    return EXIT_OK


def _run_brief(run: dict[str, Any] | None) -> dict[str, Any] | None:
    from ..pipeline import run_summary

    return None if run is None else run_summary(run)


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    """Versions of a table, oldest first (``db.history``)."""
    db = _open_db(args)
    if args.table not in db.tables():
        raise TableNotFound(f"no table {args.table!r} in {_shown(args)!r}; it has {db.tables()}")
    entries = db.history(args.table, limit=args.limit)
    if out.json:
        out.data(entries)
        return EXIT_OK
    rows = [
        (
            e["version"],
            when(e["timestamp"]),
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


def cmd_compact(args: argparse.Namespace, out: Output) -> int:
    """Merge small files into the sorted layout, as one commit (``db.compact``)."""
    db = _open_db(args)
    before = db.info()["tables"].get(args.table)
    if before is None:
        raise TableNotFound(f"no table {args.table!r} in {_shown(args)!r}; it has {db.tables()}")
    result = db.compact(args.table)
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
    db = _open_db(args)
    report = db.vacuum(dry_run=not args.apply, retention=args.retention, table=args.table)
    if out.json:
        out.data(report.to_dict())
        return EXIT_OK
    verb = "would delete" if report.dry_run else "deleted"
    for f in report.files:
        out.print(f"{verb} {f}")
    out.print(f"{verb} {len(report.files)} file(s), {size(report.bytes)}")
    if report.kept_recent:
        out.note(
            f"kept {len(report.kept_recent)} recent file(s) younger than the retention "
            f"(--retention 0 to include them)"
        )
    if report.dry_run and report.files:
        out.note("this was a dry run: add --apply to delete")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace, out: Output) -> int:
    """Recorded pipeline runs, newest first (``db.runs``)."""
    db = _open_db(args)
    runs = db.runs(limit=args.limit)
    if out.json:
        out.data([{k: v for k, v in r.items() if k != "tickers"} for r in runs])
        return EXIT_OK
    if not runs:
        out.print("no runs recorded yet")
        return EXIT_OK
    rows = []
    for r in runs:
        b = _run_brief(r) or {}
        rows.append(
            (
                b["run_id"],
                b["kind"] + (" (interrupted)" if b["status"] == "interrupted" else ""),
                when(b["started"]),
                b["source"],
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


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    """Run the web dashboard (``tickvault.dashboard.serve``)."""
    _open_db(args)
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
        _db_path(args),
        host=args.host,
        port=args.port,
        allowed_hosts=args.allowed_host or (),
        token=token,
        on_listening=lambda url: out.note(f"serving {_shown(args)} on {url} (Ctrl-C to stop)"),
        **options,
    )
    return EXIT_OK
