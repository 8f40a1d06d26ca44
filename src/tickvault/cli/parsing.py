"""The parser's parts that every command module uses: :class:`Parser` (a usage error is
one line and exit code 2), the options every command takes, and :class:`Commands`, through
which each command module adds its own sub-commands (``add_commands(commands)``)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..storage.db import DB_ENV
from .errors import EXIT_USAGE

__all__ = ["Commands", "Parser", "common_options"]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, and an option is
    only its whole name: argparse's abbreviations took ``--tickers AAPL`` for
    ``--tickers-file AAPL`` (a file named AAPL)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse, but arguments nothing took are reported by the command they were
        given to, each unknown option with the closest one it has (``--calender``: did you
        mean ``--calendar``?)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if not extras:
            return parsed
        sub = self._command_parser(getattr(parsed, "command", None))
        if sub is None:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        known = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        parts = []
        rest = list(extras)
        while rest:
            extra = rest.pop(0)
            if extra.startswith("-"):
                name = extra.split("=", 1)[0]
                if "=" not in extra and rest and not rest[0].startswith("-"):
                    rest.pop(0)  # its value
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                if name in _TICKER_OPTIONS and _takes_tickers(sub):
                    hint = f" (tickers are arguments: `{sub.prog} AAPL MSFT`)"
                parts.append(f"unknown option {name}{hint}")
            else:
                parts.append(f"unexpected argument {extra!r}")
        sub.error("; ".join(parts))

    def _command_parser(self, command: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]
        return None


def common_options() -> Parser:
    """Options every command takes, before or after the command name."""
    p = Parser(add_help=False)
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


class Commands:
    """The sub-commands of ``tickvault``: :meth:`add` makes one with the common options
    and the function that runs it."""

    def __init__(self, parser: argparse.ArgumentParser, common: Parser) -> None:
        self.common = common
        self.subparsers = parser.add_subparsers(
            dest="command", metavar="COMMAND", parser_class=Parser
        )
        self.subparsers.required = True

    def add(self, name: str, func: Callable[..., int], help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = self.subparsers.add_parser(
            name, help=help, description=help, parents=[self.common]
        )
        p.set_defaults(func=func)
        return p


#: options a user may guess for the tickers a command takes as arguments
_TICKER_OPTIONS = ("--ticker", "--tickers", "--symbol", "--symbols")


def _takes_tickers(parser: argparse.ArgumentParser) -> bool:
    return any(a.dest == "tickers" and not a.option_strings for a in parser._actions)
