"""Time bounds: the one parser for ``start``, ``end``, ``now`` and friends.

Every place that takes a point in time — ``read_table(start=, end=)``,
``fetch_and_write(start=, end=)``, sources, freshness ``now=``, the command line — parses it
here, and a value that is not a time raises :class:`~tickvault.errors.BadTimeBound` naming
the option, the value and an example. Naive values are read as UTC; aware ones are
converted to UTC; bounds are nanoseconds since the epoch, so 1677-09-21 .. 2262-04-11.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TypeAlias

import pandas as pd

from .errors import BadTimeBound
from .formats import iso_utc

TimeLike: TypeAlias = str | dt.date | dt.datetime | pd.Timestamp | None

NS_MIN = pd.Timestamp.min.tz_localize("UTC")
NS_MAX = pd.Timestamp.max.tz_localize("UTC")

EXAMPLE = "use e.g. '2024-03-01' or '2024-03-01T14:30:00Z'"


def parse_time(value: TimeLike, *, name: str = "time") -> pd.Timestamp | None:
    """``value`` as a UTC ``pd.Timestamp`` in nanoseconds (None stays None)."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise BadTimeBound(_message(name, value, exc), option=name) from exc
    except OverflowError as exc:
        raise BadTimeBound(_message(name, value, exc), option=name) from exc
    if ts is pd.NaT:
        raise BadTimeBound(f"{name}={value!r} is not a date or time; {EXAMPLE}", option=name)
    try:
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, OverflowError) as exc:
        raise BadTimeBound(_message(name, value, exc), option=name) from exc
    if ts.year < 1:  # '-1', '-0': pandas reads a year before 1 AD, which no one means
        raise BadTimeBound(f"{name}={value!r} is not a date or time; {EXAMPLE}", option=name)
    if not NS_MIN.date() <= ts.date() <= NS_MAX.date():  # e.g. 0001-01-01 as microseconds
        raise BadTimeBound(_message(name, value, OverflowError()), option=name)
    # the first and last storable days hold a few minutes that do not fit: clamp
    return min(max(ts, NS_MIN), NS_MAX).as_unit("ns")


def _message(name: str, value: object, exc: BaseException) -> str:
    if isinstance(exc, OverflowError | pd.errors.OutOfBoundsDatetime):
        return (
            f"{name}={value!r} is outside the supported range 1677-09-21 .. 2262-04-11 "
            f"(timestamps are stored in nanoseconds since 1970); {EXAMPLE}"
        )
    return f"{name}={value!r} is not a date or time; {EXAMPLE}"


def is_date_only(value: TimeLike) -> bool:
    """A calendar date without a time of day ('2024-03-31', ``datetime.date``)?"""
    if isinstance(value, str):
        s = value.strip()
        return len(s) == 10 and s[4] == "-" and s[7] == "-"
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def parse_end(value: TimeLike, *, name: str = "end") -> pd.Timestamp | None:
    """``value`` as an inclusive ``end`` bound (UTC, ns; None stays None). A bare date means
    the end of that day, so ``end='2024-03-31'`` includes intraday bars of the 31st; a value
    with a time of day is exact."""
    ts = parse_time(value, name=name)
    if ts is None or not is_date_only(value):
        return ts
    next_day = ts.as_unit("us") + pd.Timedelta(days=1)  # in us: no overflow
    if next_day <= NS_MAX:  # up to the last ns of that day
        return next_day.as_unit("ns") - pd.Timedelta(1, "ns")
    return NS_MAX


def to_ns(value: TimeLike, *, name: str = "start", end: bool = False) -> int | None:
    """A bound in ns since the epoch (UTC); ``end=True``: an end bound, where a bare date
    means the end of that day (:func:`parse_end`)."""
    ts = parse_end(value, name=name) if end else parse_time(value, name=name)
    return None if ts is None else int(ts.value)


def check_order(start: TimeLike, end: TimeLike, s: object, e: object) -> None:
    """Raise BadTimeBound if the parsed ``s`` (start) is after ``e`` (end)."""
    if s is not None and e is not None and s > e:  # type: ignore[operator]
        raise BadTimeBound(
            f"start={start!r} is after end={end!r}; swap them or drop one", option="start"
        )


#: what the command line accepts: YYYY-MM-DD, or ISO 8601 with a time (and an offset or Z)
ISO_FORMAT = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


def parse_strict(text: str, *, name: str = "date") -> pd.Timestamp:
    """The command line's parser: only ``YYYY-MM-DD`` or an ISO 8601 timestamp
    (``2024-03-01T14:30Z``), never a guess such as ``01/02/2024``; BadTimeBound otherwise."""
    if not ISO_FORMAT.match(text.strip()):
        raise BadTimeBound(
            f"{name}={text!r} is not in the format YYYY-MM-DD or ISO 8601 "
            f"(e.g. 2024-03-01 or 2024-03-01T14:30Z)",
            option=name,
        )
    ts = parse_time(text.strip(), name=name)
    assert ts is not None
    return ts


def check_not_future(value: TimeLike, ts: pd.Timestamp | None, *, name: str = "start") -> None:
    """A start after today (UTC) can only fetch nothing: BadTimeBound, so a typo in the year
    is not recorded as a successful empty run."""
    if ts is None:
        return
    today = pd.Timestamp.now(tz="UTC").normalize()
    if ts > today + pd.Timedelta(days=1) - pd.Timedelta(1, "ns"):
        raise BadTimeBound(
            f"{name}={value!r} is in the future (today is {today.date()}); "
            f"pass a past date, e.g. {name}='{(today - pd.Timedelta(days=30)).date()}'",
            option=name,
        )


def iso(ts: object) -> str | None:
    """``ts`` (a Timestamp, datetime, ISO string or nanoseconds since the epoch, UTC) as an
    ISO 8601 string in UTC ending in ``Z`` for JSON documents (``formats.iso_utc``, the one
    way tickvault writes a time); None, NaN and NaT become None."""
    if ts is None or (not isinstance(ts, str) and pd.isna(ts)):  # type: ignore[call-overload]
        return None
    if isinstance(ts, int):
        return iso_utc(pd.Timestamp(ts, tz="UTC"))
    return iso_utc(pd.Timestamp(ts))  # type: ignore[arg-type]


def now_iso() -> str:
    """Now, UTC, as ISO 8601 with milliseconds and ``Z`` (log entries, run records)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
