"""What the dashboard caches between requests: freshness per (version, minute) and the
last verify result (computed in a background thread). Both give exactly the library's
answer; they only spare repeated work."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..data_freshness import default_interval, freshness
from ..formats import iso_utc
from ..modes import DEFAULT_INTERVAL
from ..storage import ParquetDB


@dataclass(frozen=True)
class FreshnessOptions:
    """Passed through unchanged to :func:`tickvault.freshness`."""

    calendar: str | None = None
    fresh_days: int = 1
    stale_days: int = 7

    @property
    def exchange_calendar(self) -> str:
        """The calendar of intraday freshness, exchange clocks and gaps: the dashboard's,
        else XNYS."""
        return self.calendar or "XNYS"

    def kwargs(self) -> dict[str, Any]:
        return {
            "calendar": self.calendar,
            "fresh_days": self.fresh_days,
            "stale_days": self.stale_days,
        }


class FreshnessCache:
    """:func:`tickvault.freshness` of every ticker, cached per (version, minute): of the
    daily table, or, when only intraday tables hold bars, of the finest of them
    (:func:`tickvault.data_freshness.default_interval`, in minutes behind on the
    :attr:`~FreshnessOptions.exchange_calendar`, as the overview's intraday rows).

    Freshness reads only the log, but for thousands of tickers it still costs a noticeable
    fraction of a second, and paging, sorting and filtering the tickers table would pay it
    on every click. The frame is computed with ``now`` floored to the minute and reused
    while the database version and the minute stay the same, so every answer is exactly
    the library's answer for that minute.
    """

    def __init__(self, opts: FreshnessOptions | None = None) -> None:
        self.opts = opts or FreshnessOptions()
        self._lock = threading.Lock()
        self._key: tuple[int, pd.Timestamp] | None = None
        self._frame: pd.DataFrame | None = None

    def frame(self, db: ParquetDB) -> pd.DataFrame:
        key = (db.version, pd.Timestamp.now(tz="UTC").floor("min"))
        with self._lock:
            if self._key == key and self._frame is not None:
                return self._frame
        kwargs = self.opts.kwargs()
        if default_interval(db) != DEFAULT_INTERVAL:  # the library judges that table
            kwargs["calendar"] = self.opts.exchange_calendar
        frame = freshness(db, now=key[1], **kwargs)
        with self._lock:
            self._key, self._frame = key, frame
        return frame


class VerifyCache:
    """The last :meth:`ParquetDB.verify` result, computed lazily in a background thread.

    ``db.verify()`` opens every data file, which can take seconds on a large database, so
    the overview never runs it inline. The first view of a version starts a check in a
    background thread and shows the last finished result (marked with the version it
    checked) until the new one is ready. ``wait=True`` blocks until the current version is
    checked (for scripts and tests). Results live in memory only: verify never writes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: dict[str, Any] | None = None
        self._running: threading.Thread | None = None
        self._running_version: int | None = None

    def _run(self, db: ParquetDB, version: int) -> None:
        t0 = time.perf_counter()
        try:
            report = db.verify()
            d = report.to_dict()
            result = {
                "ok": bool(report.ok),
                "files_checked": d.get("files_checked"),
                "rows_checked": d.get("rows_checked"),
                "problems": [str(p) for p in report.problems],
                "warnings": list(report.warnings),
                "orphans": len(d.get("orphans", [])),
                "error": None,
            }
        except Exception as exc:  # a failing verify is itself the result to show
            result = {
                "ok": False,
                "files_checked": None,
                "rows_checked": None,
                "problems": [],
                "warnings": [],
                "orphans": 0,
                "error": f"{type(exc).__name__}: {exc}",
            }
        result.update(
            {
                "version": version,
                "checked_at": iso_utc(dt.datetime.now(dt.UTC).replace(microsecond=0)),
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        with self._lock:
            self._result = result
            self._running = None
            self._running_version = None

    def get(self, db: ParquetDB, version: int, *, wait: bool = False) -> dict[str, Any]:
        with self._lock:
            current = self._result
            if (current is None or current["version"] != version) and (
                self._running is None or self._running_version != version
            ):
                th = threading.Thread(
                    target=self._run, args=(db, version), name="tickvault-verify", daemon=True
                )
                self._running, self._running_version = th, version
                th.start()
            running = self._running
        if wait and running is not None:
            running.join()
            with self._lock:
                current = self._result
        state = "none"
        if current is not None:
            state = "ok" if current["ok"] else "problems"
        return {
            "state": state,
            "running": running is not None and running.is_alive(),
            "current": current is not None and current["version"] == version,
            "result": current,
        }
