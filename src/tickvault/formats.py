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
