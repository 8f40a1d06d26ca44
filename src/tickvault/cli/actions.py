"""``tickvault actions`` and the ``--adjust`` option of ``tickvault query``: thin shells over
``db.read_table("actions")`` and ``db.read_table("prices", adjust=...)``."""

from __future__ import annotations

import argparse
import sys

from .common import open_db, read_tickers
from .errors import EXIT_OK
from .output import Output, print_frame, write_frame
from .parsing import Commands

#: ``tickvault.adjust.ADJUST_CHOICES`` (not imported: the CLI starts without pyarrow)
ADJUST_CHOICES = ("splits", "all")


def adjust_type(value: str) -> str:
    """An argparse type: ``splits`` or ``all`` (any case, as other CLI words); argparse names
    the option in the error."""
    if value.strip().lower() in ADJUST_CHOICES:
        return value.strip().lower()
    raise argparse.ArgumentTypeError(
        f"invalid value {value!r}: use 'splits' (split-adjusted) or 'all' (splits and "
        f"dividends), e.g. `tickvault query AAPL --adjust all`; leave --adjust out for prices "
        f"as traded"
    )


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
