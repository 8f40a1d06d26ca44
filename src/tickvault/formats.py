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


def with_article(word: str) -> str:
    """``word`` after "a" or "an", by how it starts: ``an open``, ``an ATTACH statement``,
    ``a close``; a "u" read as "you" takes "a" (``a USE``, ``an UPDATE``)."""
    w = word.lower()
    vowel = w[:1] in ("a", "e", "i", "o") or (w[:1] == "u" and not w.startswith(("us", "uni")))
    return f"{'an' if vowel else 'a'} {word}"


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
    datetime or pandas Timestamp (naive is UTC), nanoseconds since 1970 (int) or ISO text.
    Sub-second parts are kept (``.123456Z``, nanoseconds too). A missing time (``NaT``)
    is not a time: ValueError (JSON writers turn it into null first, :func:`tickvault.times.
    iso`), never the text ``'NaTZ'``."""
    if isinstance(value, dt.datetime) and value != value:  # NaT: never equal to itself
        raise ValueError(f"{value!r} is not a time: write a missing time as null")
    if isinstance(value, int):
        import pandas as pd

        value = pd.Timestamp(value, tz="UTC")
    elif isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif hasattr(value, "tz_convert"):  # a pandas Timestamp: keeps its nanoseconds
        value = value.tz_convert("UTC")
    else:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


#: Columns that count things (shares traded): whole values print as integers.
COUNT_COLUMNS = ("volume",)


def whole_counts(df: Any) -> Any:
    """``df`` (a pandas DataFrame) with each count column (``volume``) printed as integers
    when its values are whole — ``1000``, not ``1000.0`` — whatever else the result holds:
    the format is the column's, not the result's. All whole and below 2**63 (the usual
    case): one vectorised cast to ``Int64``; otherwise each value on its own (a whole one as
    an int, however large; a fractional one, from FX or crypto sources, as its float)."""
    import numpy as np
    import pandas as pd

    out = df
    for name in COUNT_COLUMNS:
        if name not in df.columns or df[name].dtype.kind != "f":
            continue
        v = df[name].to_numpy()
        finite = np.isfinite(v)
        whole = np.floor(v[finite]) == v[finite]
        if bool(whole.all()) and not bool(np.any(np.abs(v[finite]) >= 2**63)):
            column: Any = df[name].astype("Int64")
        else:
            column = pd.Series(
                [
                    int(x) if np.isfinite(x) and x == np.floor(x) else (None if np.isnan(x) else x)
                    for x in v.tolist()
                ],
                index=df.index,
                dtype=object,
            )
        out = out.assign(**{name: column})
    return out
