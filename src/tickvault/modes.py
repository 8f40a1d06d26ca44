"""The read modes users type, one parser each, shared by the library, the command line and
the dashboard: the same words in any case, one error type, one message.

No heavy imports here: the command line parses its options before loading pyarrow.
"""

from __future__ import annotations

from typing import Literal

from .errors import ConfigError

Adjust = Literal["splits", "all"]

#: the values ``adjust`` takes besides None (prices as traded)
ADJUST_CHOICES: tuple[Adjust, ...] = ("splits", "all")

#: words that mean "as traded" (the dashboard's switch says ``raw``)
_AS_TRADED = ("", "raw", "none")


def parse_adjust(value: object) -> Adjust | None:
    """``adjust=``: None, ``"raw"`` or ``"none"`` (prices as traded), ``"splits"`` or
    ``"all"`` (splits and dividends), in any case and with surrounding spaces; anything
    else is a :class:`~tickvault.errors.ConfigError` naming the choices."""
    if value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _AS_TRADED:
            return None
        for choice in ADJUST_CHOICES:
            if word == choice:
                return choice
    raise ConfigError(
        f"adjust={value!r} is not one of: raw (prices as traded, the default), splits "
        f"(split-adjusted), all (splits and dividends); e.g. adjust='all', "
        f"`tickvault query AAPL --adjust all`, ?adjust=all"
    )


# -- bar intervals ------------------------------------------------------------------------

Interval = Literal["1m", "2m", "5m", "15m", "30m", "1h", "1d"]

#: the bar intervals a prices table may hold, finest first (``"1d"``, the default, is the
#: ``prices`` table; each other interval is a table of its own, ``prices_<interval>``)
INTERVAL_CHOICES: tuple[Interval, ...] = ("1m", "2m", "5m", "15m", "30m", "1h", "1d")

#: the length of each interval in seconds
INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "1d": 86400,
}

#: the interval every prices read and write means when none is named
DEFAULT_INTERVAL: Interval = "1d"

_INTERVAL_ALIASES: dict[str, str] = {
    **{c: c for c in INTERVAL_CHOICES},
    "1min": "1m",
    "2min": "2m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "60m": "1h",
    "60min": "1h",
    "1day": "1d",
}


def parse_interval(value: object, *, name: str = "interval") -> Interval:
    """``interval=``: ``"1m"``, ``"2m"``, ``"5m"``, ``"15m"``, ``"30m"``, ``"1h"`` or
    ``"1d"`` (None: ``"1d"``, the daily ``prices`` table), in any case and with surrounding
    spaces; ``"1min"``-style and ``"60m"`` are aliases. Anything else is a
    :class:`~tickvault.errors.ConfigError` naming the choices (``name``: the option as the
    user typed it, e.g. ``resample``)."""
    if value is None:
        return DEFAULT_INTERVAL
    if isinstance(value, str):
        word = _INTERVAL_ALIASES.get(value.strip().lower())
        if word is not None:
            return word  # type: ignore[return-value]
    raise ConfigError(
        f"{name}={value!r} is not a bar interval; choose one of "
        f"{', '.join(INTERVAL_CHOICES)} (aliases: 1min, 60m; any case), e.g. "
        f"{name}='1m' or `--{name} 5m`"
    )


def prices_table(interval: object = None) -> str:
    """The table holding bars of ``interval``: ``prices`` for daily bars (the default),
    ``prices_1m``, ``prices_5m``, ... for the others."""
    iv = parse_interval(interval)
    return "prices" if iv == DEFAULT_INTERVAL else f"prices_{iv}"


def interval_of_table(table: str) -> Interval | None:
    """The interval of a prices table (``prices`` → ``"1d"``, ``prices_1m`` → ``"1m"``);
    None for a table that does not hold bars (``actions``)."""
    if table == "prices":
        return DEFAULT_INTERVAL
    if table.startswith("prices_"):
        rest = table[len("prices_") :]
        if rest in INTERVAL_SECONDS and rest != DEFAULT_INTERVAL:
            return rest  # type: ignore[return-value]
    return None


#: intraday freshness (:mod:`tickvault.data_freshness`): at most this many minutes behind
#: is fresh ...
FRESH_MINUTES = 5
#: ... and more than this many is stale (between the two: aging)
STALE_MINUTES = 30
