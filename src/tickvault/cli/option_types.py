"""The types of the command line's option values (argparse ``type=`` functions) and the
options several commands share. A bad value is an ``ArgumentTypeError``: argparse names
the option, and :class:`~.parsing.Parser` makes it one line and exit code 2."""

from __future__ import annotations

import argparse
import re

__all__ = [
    "add_interval_option",
    "add_tickers_file",
    "bar_interval",
    "count",
    "date",
    "duration",
    "limit",
    "port",
    "positive",
    "seconds",
]


def date(value: str) -> str:
    """A date or timestamp (``tickvault.times``; kept as the string)."""
    from ..errors import BadTimeBound
    from ..times import parse_strict

    try:
        parse_strict(value, name="date")
    except BadTimeBound as exc:
        # "date='x' is ..." -> "'x' is ...": argparse names the option already
        raise argparse.ArgumentTypeError(str(exc).removeprefix("date=")) from None
    return value


def port(value: str) -> int:
    """A TCP port, 1-65535."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 1 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1-65535), e.g. 8000")
    return n


def count(value: str) -> int:
    """A whole number >= 0."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return n


def positive(value: str) -> int:
    """A whole number >= 1."""
    n = count(value)
    if n == 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return n


def seconds(value: str) -> float:
    """A number of seconds > 0 (fractions allowed)."""
    try:
        n = float(value)
    except ValueError:
        n = -1.0
    if not 0 < n < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds > 0, e.g. 10")
    return n


def limit(value: str) -> int | None:
    """``--limit``: a whole number >= 0 (0: nothing) or ``all`` (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        return count(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0 or 'all'") from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


_SECONDS = {"s": 1, "m": 60, "h": 3600, "": 3600, "d": 86_400, "w": 604_800}


def duration(value: str) -> float:
    """Seconds, from ``90s``, ``30m``, ``1h`` (a bare number is hours), ``2d``, ``1w``
    (durations are seconds everywhere below the command line)."""
    m = _DURATION.match(value)
    if not m:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration; use e.g. 0, 90s, 30m, 1h, 2d or 1w"
        )
    return float(m.group(1)) * _SECONDS[m.group(2)]


def add_tickers_file(p: argparse.ArgumentParser) -> None:
    """One description of ``--tickers-file`` for every command that takes it."""
    p.add_argument(
        "--tickers-file",
        metavar="FILE",
        help="also read tickers from FILE (separated by whitespace, commas or new lines; "
        "# starts a comment; - reads stdin)",
    )


def bar_interval(value: str) -> str:
    """A bar interval (``tickvault.modes.parse_interval``): 1m, 2m, 5m, 15m, 30m, 1h, 1d."""
    from ..errors import ConfigError
    from ..modes import parse_interval

    try:
        return parse_interval(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("interval=")) from None


def add_interval_option(p: argparse.ArgumentParser, what: str) -> None:
    """One description of ``--interval`` for every command that takes it."""
    p.add_argument(
        "--interval",
        type=bar_interval,
        default=None,
        metavar="IV",
        help=f"{what}: 1m, 2m, 5m, 15m, 30m, 1h or 1d (default: 1d, the prices table; "
        f"1m is the table prices_1m)",
    )
