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
