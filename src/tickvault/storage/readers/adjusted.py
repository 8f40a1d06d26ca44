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

Versions are immutable, so what a read derives from them is cached per handle (per
:class:`Table` object): the :class:`~tickvault.adjust_index.ActionsIndex` of an actions
version (one read of the whole actions snapshot, then no actions read per call), the
:class:`~tickvault.adjust_index.DividendFactors` of a (prices version, actions version)
pair (each dividend's ``1 - D / C``, filled by the reads that need it: a range read far
from the newest bars pays the read of the later closes once per pair) and the pairing of
a pinned version. A new commit is a new version, hence a new cache key: nothing is ever
invalidated, old keys age out (:data:`KEEP_INDEXES`, :data:`KEEP_FACTORS`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import partial
from weakref import WeakKeyDictionary

import pandas as pd
import pyarrow as pa

from ...adjust import adjust_prices
from ...adjust_index import ActionsIndex, DividendFactors
from ...errors import ConfigError
from ...modes import Adjust, parse_adjust
from ...times import TimeLike
from ..core.snapshot import Snapshot
from ..core.table import Table

#: actions versions whose index a handle keeps (the newest, and one a pinned read uses)
KEEP_INDEXES = 2
#: (prices version, actions version) pairs whose dividend products a handle keeps
KEEP_FACTORS = 4
_UNKNOWN = -2  # not a version, nor None (no actions version)


def actions_version_for(prices: Table, actions: Table, version: int | None) -> int | None:
    """The actions version that goes with prices ``version`` (see the module docstring);
    None when the actions table has no version yet."""
    newest = actions.refresh().version
    if newest < 0:
        return None
    if version is None:
        return newest
    # versions are immutable: the answer for (version, newest) never changes
    c = _caches(prices)
    key = (id(actions), version, newest)
    found = c.pairing.get(key, _UNKNOWN)
    if found != _UNKNOWN:
        return found
    found = _pairing(prices, actions, version, newest)
    with c.lock:
        if len(c.pairing) >= 64:
            c.pairing.clear()
        c.pairing[key] = found
    return found


def _pairing(prices: Table, actions: Table, version: int, newest: int) -> int | None:
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
    actions_version: int | None = _UNKNOWN,
) -> pa.Table:
    """Rows of prices ``version`` (None: newest), adjusted as of that snapshot: with the
    actions that go with it (:func:`actions_version_for`), or with ``actions_version``
    when given (None: no actions) — a streamed read pins that once for all its pieces."""
    how = parse_adjust(adjust)
    snap = Snapshot(prices, prices.state_at(version))
    wanted = None if columns is None else list(columns)
    read_cols = wanted
    if wanted is not None:
        read_cols = [c for c in ("ticker", "timestamp") if c not in wanted] + wanted
        if how == "all" and "close" not in read_cols:
            read_cols.append("close")
    bars = snap.read_arrow(tickers=tickers, start=start, end=end, columns=read_cols)
    if how is not None and bars.num_rows:
        av = actions_version
        if av == _UNKNOWN:
            av = actions_version_for(prices, actions, None if version is None else snap.version)
        if av is not None:
            index = actions_index(actions, av)
            factors = dividend_factors(prices, snap.version, av, index) if how == "all" else None
            bars = adjust_prices(
                bars,
                index,
                how,
                factors=factors,
                # a read to the newest bar holds every close after its first bar
                read_closes=None if end is None else partial(_closes_after, snap),
            )
    if wanted is not None and bars.column_names != wanted:
        bars = bars.select(wanted)
    return bars


class _Caches:
    """What adjusted reads derive from one table's immutable versions, per handle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.build = threading.Lock()  # one cold build at a time; others wait and reuse
        #: (id of the actions table, prices version, newest actions version) -> pairing
        self.pairing: dict[tuple[int, int, int], int | None] = {}
        #: actions version -> its index (on the actions table)
        self.indexes: OrderedDict[int, ActionsIndex] = OrderedDict()
        #: (prices version, actions version) -> dividend products (on the prices table)
        self.factors: OrderedDict[tuple[int, int], DividendFactors] = OrderedDict()


_CACHES: WeakKeyDictionary[Table, _Caches] = WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _caches(table: Table) -> _Caches:
    found = _CACHES.get(table)
    if found is not None:
        return found
    with _CACHES_LOCK:
        c = _CACHES.get(table)
        if c is None:
            c = _CACHES[table] = _Caches()
        return c


def actions_index(actions: Table, version: int) -> ActionsIndex:
    """The :class:`ActionsIndex` of actions ``version``: one read of the whole snapshot
    per version and handle, the newest :data:`KEEP_INDEXES` versions kept."""
    c = _caches(actions)
    found = c.indexes.get(version)  # a hit needs no lock (the order is only for eviction)
    if found is not None:
        return found
    with c.build:
        with c.lock:
            found = c.indexes.get(version)
        if found is not None:
            return found
        built = ActionsIndex(
            Snapshot(actions, actions.state_at(version)).read_arrow(), is_sorted=True
        )
        with c.lock:
            c.indexes[version] = built
            while len(c.indexes) > KEEP_INDEXES:
                c.indexes.popitem(last=False)
        return built


def dividend_factors(
    prices: Table, version: int, actions_version: int, index: ActionsIndex
) -> DividendFactors:
    """The dividend products of prices ``version`` with ``index`` (filled by the reads
    that use them), the newest :data:`KEEP_FACTORS` pairs kept."""
    c = _caches(prices)
    key = (version, actions_version)
    found = c.factors.get(key)
    if found is not None and found.index is index:
        return found
    with c.lock:
        found = c.factors.get(key)
        if found is None or found.index is not index:
            found = c.factors[key] = DividendFactors(index)
        c.factors.move_to_end(key)
        while len(c.factors) > KEEP_FACTORS:
            c.factors.popitem(last=False)
        return found


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
    if adjust is not None and not (name == "prices" or name.startswith("prices_")):
        raise ConfigError(f"adjust applies to the prices tables, not {name!r}; drop adjust=")
