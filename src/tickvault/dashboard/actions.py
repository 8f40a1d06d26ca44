"""The ticker page's corporate actions: the raw/adjusted switch (``?adjust=``) and the
splits and dividends marked on the chart and listed, read from the ticker's snapshot."""

from __future__ import annotations

import bisect
from typing import Any

import pandas as pd

from ..formats import iso_utc
from ..modes import parse_adjust
from ..storage import ParquetDB

#: the switch: value of ``?adjust=`` -> label (None: as traded)
ADJUST_LABELS: dict[str | None, str] = {
    None: "Raw",
    "splits": "Splits",
    "all": "Splits + dividends",
}


def adjust_arg(value: Any) -> str | None:
    """``?adjust=``: :func:`tickvault.modes.parse_adjust` (a bad value is a 400)."""
    return parse_adjust(value)


def ticker_actions(
    db: ParquetDB, ticker: str, start: str | None, end: str | None, bars: list[str]
) -> list[dict[str, Any]]:
    """The ticker's actions with ex-dates in ``[start, end]``, oldest first, each with its
    ``position`` on the chart (0..1: where its ex-date falls among the ISO ``bars``)."""
    if "actions" not in db.tables():
        return []
    df = db.read_table("actions", tickers=ticker, start=start, end=end)
    out = []
    for when, kind, value in zip(df["timestamp"], df["kind"], df["value"], strict=True):
        v = float(value)
        iso = iso_utc(pd.Timestamp(when))
        at = bisect.bisect_left(bars, iso)
        out.append(
            {
                "timestamp": iso,
                "position": (at + 0.5) / len(bars) if bars else 0.0,
                "kind": str(kind),
                "value": v,
                "label": f"{v:g}-for-1 split" if kind == "split" else f"dividend {v:g}",
            }
        )
    return out
