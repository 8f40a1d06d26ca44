"""Adjusted reads: bars of one prices snapshot adjusted by the actions of the matching
actions snapshot (:func:`tickvault.adjust.adjust_prices` does the arithmetic).

``prices`` and ``actions`` are two tables with versions of their own. The pair a read
uses is chosen so that it is one moment of the database:

* reading the newest prices (``version=None``): the prices snapshot is pinned first, then
  the newest actions snapshot. The pipeline commits a batch's actions before its bars, so
  every bar the read sees has its actions; an action committed after the prices were
  pinned only ever concerns bars already stored (it adjusts them; bars are never
  rewritten, so that is correct as of the moment of the read).
* reading a pinned prices ``version``: the newest actions version committed at or before
  that prices version (by the log entries' commit times), so an old version reads the
  same adjusted values tomorrow as today, whatever actions arrive later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa

from ..adjust import Adjust, adjust_prices, check_adjust, dividend_closes_needed
from ..errors import ConfigError
from ..schema import ACTIONS
from ..times import TimeLike
from .snapshot import Snapshot
from .table import Table


def actions_version_for(prices: Table, actions: Table, version: int | None) -> int | None:
    """The actions version that goes with prices ``version`` (see the module docstring);
    None when the actions table has no version yet."""
    newest = actions.refresh().version
    if newest < 0:
        return None
    if version is None:
        return newest
    entry = prices.log.read_entry(version)
    when = entry.get("timestamp") if entry else None
    if not isinstance(when, str):
        return newest  # the entry was pruned: the newest actions is the best we know
    for v in range(newest, -1, -1):
        e = actions.log.read_entry(v)
        if e is None:
            return v  # older entries pruned: keep the oldest we can still read
        stamp = e.get("timestamp")
        if isinstance(stamp, str) and stamp <= when:
            return v
    return None


def read_adjusted(
    prices: Table,
    actions: Table,
    *,
    adjust: Adjust | str | None,
    tickers: str | Iterable[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    columns: Sequence[str] | None = None,
    version: int | None = None,
) -> pa.Table:
    """Rows of prices ``version`` (None: newest), adjusted as of that snapshot."""
    how = check_adjust(adjust)
    snap = Snapshot(prices, prices.state_at(version))
    wanted = None if columns is None else list(columns)
    read_cols = wanted
    if wanted is not None:
        read_cols = [c for c in ("ticker", "timestamp") if c not in wanted] + wanted
        if how == "all" and "close" not in read_cols:
            read_cols.append("close")
    bars = snap.read_arrow(tickers=tickers, start=start, end=end, columns=read_cols)
    if how is not None and bars.num_rows:
        acts = actions_snapshot(prices, actions, snap.version if version is not None else None)
        names = sorted(set(bars.column("ticker").to_pylist()))
        stored = (
            acts.read_arrow(tickers=names, start=start) if acts is not None else ACTIONS.empty()
        )
        closes = None
        if how == "all":
            closes = _closes_after(snap, dividend_closes_needed(bars, stored))
        bars = adjust_prices(bars, stored, how, closes=closes)
    if wanted is not None and bars.column_names != wanted:
        bars = bars.select(wanted)
    return bars


def actions_snapshot(prices: Table, actions: Table, version: int | None) -> Snapshot | None:
    v = actions_version_for(prices, actions, version)
    return None if v is None else Snapshot(actions, actions.state_at(v))


def _closes_after(snap: Snapshot, need: dict[str, tuple[int, int]]) -> pa.Table | None:
    """The closes of the bars between each ticker's last bar read and its last dividend,
    one read per distinct span (a cross-section usually has one end for all tickers)."""
    if not need:
        return None
    spans: dict[tuple[int, int], list[str]] = {}
    for t, span in need.items():
        spans.setdefault(span, []).append(t)
    # one read over the widest span for all tickers that need one: fewer, larger reads
    lo = min(a for a, _ in spans)
    hi = max(b for _, b in spans)
    cols = ["ticker", "timestamp", "close"]
    return snap.read_arrow(
        tickers=sorted(need),
        start=pd.Timestamp(lo + 1, tz="UTC"),
        end=pd.Timestamp(hi - 1, tz="UTC"),
        columns=cols,
    )


def reject_adjust_for(name: str, adjust: object) -> None:
    if adjust is not None and name != "prices":
        raise ConfigError(f"adjust applies to the prices table, not {name!r}; drop adjust=")
