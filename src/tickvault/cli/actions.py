"""``tickvault actions`` and the ``--adjust`` option of ``tickvault query``: thin shells over
``db.read_table("actions")`` and ``db.read_table("prices", adjust=...)``."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from ..modes import parse_adjust
from .common import check_tickers, open_db, read_tickers
from .errors import EXIT_OK
from .output import Output, print_frame, write_frame
from .parsing import Commands


def adjust_type(value: str) -> str | None:
    """An argparse type over :func:`tickvault.modes.parse_adjust` (argparse names the
    option in the error)."""
    try:
        return parse_adjust(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_adjust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--adjust",
        type=adjust_type,
        metavar="splits|all",
        help="back-adjusted prices: splits, or all (splits and dividends); default: as traded",
    )


def add_commands(commands: Commands) -> None:
    """Register ``actions``."""
    p = commands.add("actions", cmd_actions, "list stored splits and dividends")
    p.add_argument("tickers", nargs="*", metavar="TICKER", help="tickers (default: all)")
    p.add_argument("--start", metavar="DATE", help="first ex-date (inclusive)")
    p.add_argument("--end", metavar="DATE", help="last ex-date (inclusive)")


def cmd_actions(args: argparse.Namespace, out: Output) -> int:
    """Stored corporate actions (``db.read_table("actions")``), oldest first per ticker."""
    db = open_db(args)
    tickers = read_tickers(args)
    check_tickers(args, db, tickers, "actions")
    if "actions" in db.tables():
        df = db.read_table("actions", tickers=tickers or None, start=args.start, end=args.end)
    else:
        from ..schema import ACTIONS

        df = ACTIONS.empty().to_pandas()
    if out.json:
        write_frame(df, "json", sys.stdout)
    elif len(df):
        print_frame(out, df)
    else:
        out.note("no actions stored" + (f" for {', '.join(tickers)}" if tickers else ""))
    return EXIT_OK
