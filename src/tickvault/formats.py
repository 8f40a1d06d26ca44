"""How numbers and times read to a person: one home for the command line and the dashboard.

JSON documents carry full ISO timestamps and exact byte counts; these helpers only shorten
them for a table row or a web page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def human_bytes(n: Any) -> str:
    """``1536`` → ``'1.5 KB'`` (binary units; ``None`` counts as 0)."""
    size = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def short_time(value: Any, *, empty: str = "") -> str:
    """An ISO timestamp shortened for a table: ``'2024-03-01'`` for midnight UTC (daily
    bars), else ``'2024-03-01 14:30:00'`` in UTC. ``empty`` stands in for a missing value;
    text that is not a timestamp is shown as it is."""
    if value is None or value == "":
        return empty
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    if t.time() == dt.time(0):
        return t.date().isoformat()
    return t.strftime("%Y-%m-%d %H:%M:%S")


def plain_number(value: Any) -> str:
    """A number as a person writes it, for messages: ``np.float64(10.5)`` → ``'10.5'``,
    ``100.0`` → ``'100'``, NaN → ``'NaN'``; exact (the shortest text that reads back as the
    same float), never rounded away."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


def iso_utc(value: Any) -> str:
    """A time as ISO 8601 in UTC ending in ``Z`` (``'2024-03-01T14:30:00Z'``), the one way
    the command line's JSON, the dashboard's API, CSV and messages write times. Accepts a
    datetime, a pandas Timestamp, nanoseconds since 1970 (int) or ISO text; naive is UTC.
    Sub-second parts are kept (``.123456Z``)."""
    if isinstance(value, int):
        t = dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=value // 1000)
    elif isinstance(value, str):
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, dt.datetime):
        t = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    elif isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day)
    else:
        return str(value)
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.replace(tzinfo=None).isoformat() + "Z"
