"""The ``tickvault`` command: a thin shell over the library.

Every command parses its options, calls one library function with the same option names,
and formats the result (a rich table for people, ``--json`` for scripts). Errors become a
message and an exit code in exactly one place, :mod:`tickvault.cli.errors`, whose
docstring lists the exit codes.

See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from .actions import add_actions_command, add_adjust_option
from .commands import cmd_backfill, cmd_query, cmd_serve, cmd_update
from .common import DB_ENV, db_path_of
from .errors import EXIT_CODES, EXIT_OK, EXIT_USAGE, Terminated, exit_code
from .examine import cmd_freshness, cmd_history, cmd_info, cmd_runs
from .maintain import cmd_compact, cmd_repair, cmd_vacuum, cmd_verify
from .output import Output

__all__ = ["EXIT_CODES", "build_parser", "exit_code", "main"]

PROG = "tickvault"
FORMATS = ("table", "csv", "json", "parquet")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


# -- option types -------------------------------------------------------------------------------


def _date(value: str) -> str:
    """An argparse type: a date or timestamp (``tickvault.times``; kept as the string)."""
    from ..errors import BadTimeBound
    from ..times import parse_strict

    try:
        parse_strict(value, name="date")
    except BadTimeBound as exc:
        # "date='x' is ..." -> "'x' is ...": argparse names the option already
        raise argparse.ArgumentTypeError(str(exc).removeprefix("date=")) from None
    return value


def _port(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535), e.g. 8000")
    return n


def _limit(value: str) -> int | None:
    """``--limit``: a whole number >= 0 (0: nothing) or ``all``."""
    if value.strip().lower() == "all":
        return None
    try:
        return _count(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0 or 'all'") from None


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return n


def _positive(value: str) -> int:
    n = _count(value)
    if n == 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return n


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def _duration(value: str) -> dt.timedelta:
    m = _DURATION.match(value)
    if not m:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration; use e.g. 0, 90s, 30m, 1h, 2d or 1w"
        )
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "": "hours", "d": "days", "w": "weeks"}
    return dt.timedelta(**{unit[m.group(2)]: float(m.group(1))})


# -- the parser -------------------------------------------------------------------------------


def _common() -> _Parser:
    """Options every command takes, before or after the command name."""
    p = _Parser(add_help=False)
    g = p.add_argument_group("common options")
    s = argparse.SUPPRESS
    g.add_argument(
        "--db",
        metavar="PATH",
        default=s,
        help=f"the database folder, or a bucket URL like s3://bucket/prefix "
        f"(default: ${DB_ENV}, then ./db)",
    )
    g.add_argument("-q", "--quiet", action="store_true", default=s, help="print only errors")
    g.add_argument("--json", action="store_true", default=s, help="machine-readable output")
    g.add_argument("--debug", action="store_true", default=s, help="show tracebacks on errors")
    return p


def _add_tickers_file(p: argparse.ArgumentParser) -> None:
    """One description of ``--tickers-file`` for every command that takes it."""
    p.add_argument(
        "--tickers-file",
        metavar="FILE",
        help="also read tickers from FILE (separated by whitespace, commas or new lines; "
        "# starts a comment; - reads stdin)",
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
        type=_positive,
        metavar="N",
        help="parallel fetches, like n_workers= (default: automatic; --workers is an alias)",
    )
    _add_tickers_file(p)


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog=PROG,
        description="tickvault: a Parquet market-data store that cannot lose or corrupt data.",
        epilog="Run `tickvault COMMAND --help` for a command's options. Docs: docs/cli.md",
        parents=[common],
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, func: Callable[..., int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    p = command("backfill", cmd_backfill, "fetch tickers' history from a source and store it")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers to fetch")
    _add_source_options(p, default="demo")
    p.add_argument("--start", type=_date, metavar="DATE", help="first date (default: source's)")
    p.add_argument("--end", type=_date, metavar="DATE", help="last date (default: today)")
    p.add_argument(
        "--resume", action="store_true", help="skip tickers an interrupted run already wrote"
    )
    p.add_argument(
        "--tickers-from-repair",
        action="store_true",
        help="re-fetch what applied repairs dropped (those tickers, from their first lost bar)",
    )

    p = command("update", cmd_update, "fetch what is new since each ticker's last stored bar")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all stored)")
    _add_source_options(p, default=None)
    p.add_argument(
        "--lookback",
        type=_count,
        metavar="N",
        help="re-fetch N business days before each ticker's last bar, to pick up revised "
        "bars (default: 5)",
    )
    p.add_argument("--start", type=_date, metavar="DATE", help="start for tickers with no data")
    p.add_argument("--end", type=_date, metavar="DATE", help="last date (default: today)")

    p = command("query", cmd_query, "print or save stored bars")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all)")
    _add_tickers_file(p)
    p.add_argument("--start", type=_date, metavar="DATE", help="first date (inclusive)")
    p.add_argument("--end", type=_date, metavar="DATE", help="last date (inclusive)")
    p.add_argument("--columns", metavar="A,B", help="columns to include (key columns always)")
    p.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--limit", type=_limit, metavar="N", help="at most N rows (0: none)")
    p.add_argument(
        "--as-of",
        type=_date,
        metavar="TIME",
        help="read the version current at TIME, e.g. 2026-11-30T22:00Z (a date: its end)",
    )
    add_adjust_option(p)
    add_actions_command(command)

    p = command("freshness", cmd_freshness, "how old each ticker's data is; exit 1 if stale")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all stored)")
    _add_tickers_file(p)
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="count missed trading sessions on this exchange calendar (e.g. XNYS, XLON)",
    )
    p.add_argument(
        "--fresh-days",
        type=_count,
        default=1,
        metavar="N",
        help="ages up to N are fresh (default: 1)",
    )
    p.add_argument(
        "--stale-days",
        type=_count,
        default=7,
        metavar="N",
        help="ages above N are stale (default: 7)",
    )
    p.add_argument("--now", type=_date, metavar="TIME", help="judge as of TIME (default: now)")
    p.add_argument("--all", action="store_true", help="list every ticker, fresh ones too")
    p.add_argument(
        "--worst", type=_count, default=20, metavar="N", help="list the N oldest (default: 20)"
    )

    p = command("repair", cmd_repair, "drop or rewrite damaged files (dry run unless --apply)")
    p.add_argument("--apply", action="store_true", help="really repair (default: only list)")
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")

    p = command("verify", cmd_verify, "check every data file against the log; exit 1 if damaged")
    p.add_argument("--repair", action="store_true", help="drop or rewrite damaged files first")
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")

    command("info", cmd_info, "tables, tickers, rows, date range, versions, size, last run")

    p = command("history", cmd_history, "the versions (commits) of a table")
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")
    p.add_argument(
        "--limit", type=_limit, default=20, metavar="N", help="newest N, or all (default 20)"
    )

    p = command("compact", cmd_compact, "merge small files into the sorted layout")
    p.add_argument("--table", default="prices", metavar="NAME", help="table (default: prices)")

    p = command("vacuum", cmd_vacuum, "delete files no version needs (dry run unless --apply)")
    p.add_argument("--apply", action="store_true", help="really delete (default: only list)")
    p.add_argument(
        "--retention",
        type=_duration,
        default=None,
        metavar="AGE",
        help="keep files younger than AGE, e.g. 0, 30m, 1h, 2d (default: 1h)",
    )
    p.add_argument("--table", metavar="NAME", help="only this table (default: all)")

    p = command("runs", cmd_runs, "recorded backfill/update runs, newest first")
    p.add_argument(
        "--limit", type=_limit, default=20, metavar="N", help="newest N, or all (default 20)"
    )

    from .tables import add_commands as add_table_commands

    add_table_commands(command)  # sql, export: other engines over pinned versions
    from .undo import add_commands as add_undo_commands

    add_undo_commands(command)  # delete, restore, gaps

    p = command("serve", cmd_serve, "run the web dashboard")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default: 127.0.0.1); any other is reachable from other machines",
    )
    p.add_argument("--port", type=_port, default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument("--calendar", metavar="CODE", help="exchange calendar for freshness")
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name, e.g. a reverse proxy's "
        "(repeatable; *.example.com for a domain)",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="require this token on every request (default: $TICKVAULT_DASHBOARD_TOKEN)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(as_json=bool(getattr(args, "json", False)), quiet=bool(getattr(args, "quiet", 0)))
    debug = bool(getattr(args, "debug", False))
    _setup_logging(debug, server=args.command == "serve")
    if args.command != "serve":  # uvicorn handles SIGTERM itself (a clean shutdown)
        _terminate_like_ctrl_c()
    started = time.perf_counter()
    try:
        code = int(args.func(args, out))
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        code, message = exit_code(exc, db=db_path_of(args))
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{PROG} {args.command}: error: {message}\n")
        return code
    finally:
        if debug:
            sys.stderr.write(f"[{args.command} took {time.perf_counter() - started:.2f}s]\n")
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def _setup_logging(debug: bool, *, server: bool = False) -> None:
    """Library log records go to stderr: errors only (the end-of-run summary lists failed
    tickers), warnings too for the dashboard server (a request that failed, an exposed
    address), everything from INFO up with ``--debug``."""
    level = logging.INFO if debug else logging.WARNING if server else logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: %(message)s"))
    # the level on the handler too: libraries that set their own loggers' levels (dask's
    # distributed logs INFO) propagate records here that the root level does not filter
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM unwinds like Ctrl-C: commits already made stay, the run is recorded as
    interrupted, one line on stderr, exit 143."""
    import signal

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        raise Terminated()

    # not the main thread (main() called from a thread): leave the signal alone
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, handler)


def _silence_stdout() -> None:
    """After the reader of a pipe went away (``tickvault query ... | head``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
