"""Exchange calendars: the trading sessions and closes of an ``exchange_calendars``
calendar, built once per process, and which session a bar's timestamp belongs to. Used by
freshness (sessions missed) and by the data checks (sessions missing inside a range)."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError

_CALENDARS: dict[str, Calendar] = {}
_CALENDARS_LOCK = threading.Lock()
#: exchange_calendars objects by code, loaded once per process
_LOADED: dict[str, Any] = {}


@dataclass(frozen=True)
class Calendar:
    """What freshness needs from an exchange calendar: session labels and their closes."""

    name: str
    tz: str
    sessions: np.ndarray  # datetime64[ns], naive session labels, sorted
    closes: np.ndarray  # datetime64[ns], UTC close of each session

    def sessions_missing(self, last: pd.DatetimeIndex, now: pd.Timestamp) -> np.ndarray:
        """Completed sessions after each timestamp's session, as of ``now``."""
        if len(self.closes) and now.tz_localize(None).to_datetime64() > self.closes[-1]:
            raise ConfigError(
                f"now={now.isoformat()} is beyond the {self.name} calendar's last session "
                f"({str(self.sessions[-1])[:10]}); upgrade exchange_calendars"
            )
        completed = int(
            np.searchsorted(self.closes, now.tz_localize(None).to_datetime64(), "right")
        )
        labels = session_labels(last, self.tz)
        covered = np.searchsorted(self.sessions, labels, "right")
        return np.maximum(completed - covered, 0).astype("int64")


def exchange_calendar(code: str) -> Any:
    """The ``exchange_calendars`` calendar ``code`` (any case), built once per process and
    cached (building one is slow); unknown codes raise
    :class:`~tickvault.errors.ConfigError` naming valid examples. The one loader behind
    :func:`get_calendar` and :func:`tickvault.sessions.exchange_sessions`."""
    key = str(code).strip().upper()
    with _CALENDARS_LOCK:
        xcal = _LOADED.get(key)
        if xcal is not None:
            return xcal
        with warnings.catch_warnings():
            # exchange_calendars trips pandas' own deprecation warnings; they are not ours
            warnings.simplefilter("ignore")
            import exchange_calendars as xc  # slow import: only when a calendar is asked for

            try:
                xcal = xc.get_calendar(key)
            except xc.errors.InvalidCalendarName:
                names = xc.get_calendar_names(include_aliases=False)
                examples = [
                    n for n in ("XNYS", "XNAS", "XLON", "XTKS", "XHKG", "XFRA") if n in names
                ]
                raise ConfigError(
                    f"unknown calendar {code!r}; use an exchange_calendars code such as "
                    f"{', '.join(examples)} ({len(names)} available, see "
                    f"exchange_calendars.get_calendar_names())"
                ) from None
        _LOADED[key] = xcal
        return xcal


def get_calendar(code: str) -> Calendar:
    """The sessions and closes of the ``exchange_calendars`` calendar ``code`` (e.g.
    ``"XNYS"``), built once per process and cached. Unknown codes raise
    :class:`~tickvault.errors.ConfigError` naming valid examples."""
    key = str(code).strip().upper()
    cal = _CALENDARS.get(key)
    if cal is not None:
        return cal
    xcal = exchange_calendar(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sessions = pd.DatetimeIndex(xcal.sessions)
        closes = pd.DatetimeIndex(xcal.closes)
    cal = Calendar(
        name=str(xcal.name),
        tz=str(xcal.tz),
        sessions=sessions.tz_localize(None).to_numpy().astype("datetime64[ns]")
        if sessions.tz is not None
        else sessions.to_numpy().astype("datetime64[ns]"),
        closes=closes.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]"),
    )
    with _CALENDARS_LOCK:
        return _CALENDARS.setdefault(key, cal)


def session_labels(last: pd.DatetimeIndex, tz: Any) -> np.ndarray:
    """The date (as datetime64[ns], naive) whose session each timestamp belongs to."""
    utc_dates = last.normalize()
    midnight = np.asarray(last == utc_dates)
    local_dates = last.tz_convert(tz).tz_localize(None).normalize()
    out = np.where(midnight, utc_dates.tz_localize(None).to_numpy(), local_dates.to_numpy())
    return out.astype("datetime64[ns]")
