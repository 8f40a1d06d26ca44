"""Exchange sessions: the labels, opens and closes of an ``exchange_calendars`` calendar
(``"XNYS"``), as numpy arrays, built once per process.

Intraday code asks three things of a calendar: which session a bar belongs to (resampling
to ``1d`` by session), where sessions open and close (the demo source's intraday bars,
minute-level freshness) and whether a session closed early (the day after Thanksgiving
closes at 13:00 New York). ``exchange_calendars`` is imported only when a calendar is
asked for: the import is slow.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendars import exchange_calendar
from .errors import ConfigError

_CACHE: dict[str, Sessions] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Sessions:
    """One calendar's sessions, sorted: ``labels`` (the session dates, ``datetime64[ns]``
    at midnight, naive), ``opens`` and ``closes`` (UTC instants as int64 nanoseconds)."""

    name: str
    tz: str
    labels: np.ndarray
    opens: np.ndarray
    closes: np.ndarray

    def between(self, first: object, last: object) -> slice:
        """The sessions whose label lies in ``[first, last]`` (dates)."""
        lo = np.asarray(first, dtype="datetime64[ns]")
        hi = np.asarray(last, dtype="datetime64[ns]")
        a = int(np.searchsorted(self.labels, lo, side="left"))
        b = int(np.searchsorted(self.labels, hi, side="right"))
        return slice(a, b)

    def session_of(self, ns: np.ndarray) -> np.ndarray:
        """For each UTC instant (int64 ns), the index of its session: the session whose
        local date it falls on, or the last session before that date (a bar on a holiday
        or a weekend belongs to the session before it); -1 before the first session."""
        local = (
            pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("datetime64[ns]"), tz="UTC")
            .tz_convert(self.tz)
            .tz_localize(None)
            .normalize()
            .to_numpy()
            .astype("datetime64[ns]")
        )
        return np.searchsorted(self.labels, local, "right") - 1

    def trading_ns(self, ns: np.ndarray) -> np.ndarray:
        """For each UTC instant (int64 ns), the session time (ns) elapsed from the
        calendar's first open up to it: time between sessions, on holidays and over
        weekends does not count. The difference of two is how much trading lies between
        them (minute-level freshness)."""
        lengths = self.closes - self.opens
        done = np.concatenate([[0], np.cumsum(lengths)])
        t = np.asarray(ns, dtype="int64")
        i = np.searchsorted(self.opens, t, "right") - 1
        j = np.maximum(i, 0)
        inside = np.clip(t - self.opens[j], 0, lengths[j])
        return np.where(i >= 0, done[j] + inside, 0)

    def is_open(self, ns: int) -> bool:
        """Whether a session is open at the instant ``ns``."""
        i = int(np.searchsorted(self.opens, ns, "right")) - 1
        return i >= 0 and ns < int(self.closes[i])

    def check_covers(self, ns: int, what: str) -> None:
        """ConfigError when the instant ``ns`` is beyond the calendar's last session."""
        if len(self.closes) and ns > int(self.closes[-1]) + 86_400 * 10**9:
            last = str(self.labels[-1])[:10]
            raise ConfigError(
                f"{what} ({pd.Timestamp(ns, tz='UTC').isoformat()}) is beyond the {self.name} "
                f"calendar's last session ({last}); upgrade exchange_calendars"
            )


def exchange_sessions(code: str) -> Sessions:
    """The sessions of the ``exchange_calendars`` calendar ``code`` (any case); unknown
    codes are a :class:`~tickvault.errors.ConfigError` naming valid examples
    (:func:`tickvault.calendars.exchange_calendar` loads it, once per process)."""
    key = str(code).strip().upper()
    found = _CACHE.get(key)
    if found is not None:
        return found
    xcal = exchange_calendar(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = pd.DatetimeIndex(xcal.sessions)
        if labels.tz is not None:
            labels = labels.tz_localize(None)
        found = Sessions(
            name=str(xcal.name),
            tz=str(xcal.tz),
            labels=labels.to_numpy().astype("datetime64[ns]"),
            opens=_utc_ns(xcal.opens),
            closes=_utc_ns(xcal.closes),
        )
    with _LOCK:
        return _CACHE.setdefault(key, found)


def _utc_ns(values: pd.Series) -> np.ndarray:
    idx = pd.DatetimeIndex(values)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return np.asarray(idx.as_unit("ns").asi8, dtype="int64")
