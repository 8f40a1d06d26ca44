"""How fresh is the data? Per ticker and overall, in calendar days or in trading sessions.

Freshness reads metadata only: the last timestamp per ticker comes from the commit log's
per-file statistics (:meth:`ParquetDB.watermarks`), so checking thousands of tickers opens
no data file.

Age
    Without a calendar, the age of a ticker is the number of calendar days between the
    (UTC) date of its last bar and the (UTC) date of ``now`` — the original behaviour, in
    which Friday's bar is "3 days old" on Monday morning.

    With ``calendar="XNYS"`` (any `exchange_calendars` code), the age is the number of
    *completed trading sessions missing* since the last stored bar: sessions after the bar's
    session whose close is at or before ``now``. A Friday bar is 0 sessions old on Saturday,
    Sunday and Monday before the close, 1 after Monday's close; holidays never count.

    The session of a bar: a timestamp at exactly midnight UTC is a date label (the usual
    stamp of a daily bar), so its UTC date is the session; any other timestamp is converted
    to the exchange's time zone and its local date is the session. A bar on a day that is
    not a session (a holiday, a weekend) covers the last session before it.

Status (thresholds ``fresh_days`` and ``stale_days``, both inclusive upper bounds)
    ``age <= fresh_days``               ``"🟢 Fresh"``                level ``fresh``
    ``fresh_days < age <= stale_days``  ``"🟡 N days old"``           level ``aging``
    ``age > stale_days``                ``"🔴 STALE (N days)"``       level ``stale``
    a requested ticker with no rows     ``"⚪ No data"``              level ``missing``
    a last bar dated after ``now``      ``"🔴 FUTURE BAR (N days ahead)"`` level ``future``
    an empty database (overall)         ``"⚪ Empty"``                level ``empty``

    With a calendar the unit reads "sessions" instead of "days". ``is_stale`` is true for
    the levels ``stale``, ``missing``, ``future`` and ``empty``; ``aging`` is a warning,
    not a failure (lower ``stale_days`` to make it one).

Bars after now
    A ticker whose last bar is on a later (UTC) date than ``now`` is never called fresh:
    its age is negative (not clamped to 0) and its level ``future``. Either the bar is in
    the future — ``update`` starts from it, so the ticker is frozen
    (:mod:`tickvault.future_bars`) — or the clock (or ``now=``) is behind the data. Both
    are said in ``warnings`` (frame ``attrs``, summary, verdict), as is a ``now=`` later
    than the current time.

Intraday tables (``interval="1m"`` ... ``"1h"``)
    The age is in **minutes behind**: the time from the end of a ticker's last bar to
    ``now``, less the one bar still being formed (``interval`` minus one minute). With
    ``calendar="XNYS"`` only session time counts (:meth:`tickvault.sessions.Sessions.
    trading_ns`): while a session is open a feed whose last minute bar is 2 minutes old is
    fresh and one 60 minutes behind is stale; after the close a feed that reached the
    close is 0 minutes behind, fresh until the next open, while one that stopped at
    midday is behind by the rest of the session (stale). Without a calendar wall-clock
    minutes count (nights and weekends too). Thresholds ``fresh_minutes`` (default
    :data:`FRESH_MINUTES`) and ``stale_minutes`` (default :data:`STALE_MINUTES`) play the
    role of ``fresh_days`` and ``stale_days``.

A database with only intraday bars
    Without ``interval`` the daily table (``prices``) is judged — unless it holds no bars
    while an intraday table does: then the finest interval whose table holds bars is judged
    (:func:`default_interval`; usually the only one), in minutes behind as above, and the
    frame's ``attrs`` (the summary, the verdict) carry that ``interval`` and a ``note``
    saying so. A database with no bars in any table is ``empty``. Pass ``interval`` to
    judge one table whatever the others hold (a cron job watching a feed should).

Overall verdict
    The worst ticker's level and status (:func:`verdict`), and the ``warnings``: the same for
    :func:`get_price_data_freshness`, :func:`freshness_summary`, ``tickvault freshness`` and
    the dashboard, so no view says "Fresh" while a ticker is stale.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .calendars import Calendar, get_calendar, session_labels
from .errors import ConfigError
from .modes import (
    DEFAULT_INTERVAL,
    FRESH_MINUTES,
    INTERVAL_CHOICES,
    INTERVAL_SECONDS,
    STALE_MINUTES,
    parse_interval,
    prices_table,
)
from .sessions import exchange_sessions
from .storage import ParquetDB
from .tickers import normalize
from .times import TimeLike, iso, parse_time

__all__ = [
    "LEVELS",
    "default_interval",
    "freshness",
    "freshness_summary",
    "get_calendar",
    "get_price_data_freshness",
    "intervals_with_bars",
    "verdict",
]

#: Freshness levels, best first. ``is_stale`` is true for the last four.
LEVELS = ("fresh", "aging", "stale", "missing", "future", "empty")
_STALE_LEVELS = frozenset({"stale", "missing", "future", "empty"})

FRESH = "🟢 Fresh"
NO_DATA = "⚪ No data"
EMPTY = "⚪ Empty"

COLUMNS = ["ticker", "last_timestamp", "age", "age_unit", "status", "level", "is_stale"]

DBLike = ParquetDB | str | os.PathLike[str]

#: the daily prices table, judged when no interval is given (see default_interval)
DEFAULT_TABLE = prices_table(DEFAULT_INTERVAL)


def _open(db: DBLike) -> ParquetDB:
    if isinstance(db, ParquetDB):
        return db
    return ParquetDB(db, create=False)


def intervals_with_bars(db: DBLike, tickers: Iterable[str] | None = None) -> dict[str, list[str]]:
    """``{interval: tickers}`` for every prices table that holds bars (of ``tickers``, if
    given), finest first: ``{"1m": ["AAPL", "MSFT"]}`` for a database of minute bars only.
    Reads the log only."""
    store = _open(db)
    tables = set(store.tables())
    wanted = None if tickers is None else {normalize(str(t)) for t in tickers}
    out: dict[str, list[str]] = {}
    for iv in INTERVAL_CHOICES:
        table = prices_table(iv)
        if table not in tables:
            continue
        held = sorted(store.watermarks(table))
        if wanted is not None:
            held = [t for t in held if t in wanted]
        if held:
            out[iv] = held
    return out


def default_interval(db: DBLike) -> str:
    """The interval a freshness check judges when none is given: ``"1d"`` when the daily
    table holds bars or no table does (an empty database), else the finest interval whose
    table holds bars (a database of minute bars only: ``"1m"``)."""
    store = _open(db)
    if store.watermarks(DEFAULT_TABLE):  # the usual case: one look at the daily log
        return DEFAULT_INTERVAL
    return next(iter(intervals_with_bars(store)), DEFAULT_INTERVAL)


def _default_note(db: DBLike, interval: str) -> str:
    """What a check without an interval says when it judged an intraday table."""
    held = intervals_with_bars(db)
    n = len(held[interval])
    others = [
        f"{prices_table(iv)} ({len(k)} ticker{'s' if len(k) != 1 else ''})"
        for iv, k in held.items()
        if iv != interval
    ]
    also = f"; other tables with bars: {', '.join(others)}" if others else ""
    return (
        f"no daily bars: judged the {interval} bars ({prices_table(interval)}, {n} "
        f"ticker{'s' if n != 1 else ''}) in minutes behind{also}; name the interval to "
        f"choose (--interval {interval}, interval={interval!r})"
    )


def _now(now: TimeLike) -> pd.Timestamp:
    ts = parse_time(now, name="now")
    return pd.Timestamp.now(tz="UTC") if ts is None else ts


def _check_thresholds(fresh_days: int, stale_days: int) -> None:
    if fresh_days < 0 or stale_days < fresh_days:
        raise ConfigError(
            f"need 0 <= fresh_days <= stale_days, got fresh_days={fresh_days}, "
            f"stale_days={stale_days}"
        )


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit[:-1] if n == 1 else unit}"


def classify(age: int, *, fresh_days: int = 1, stale_days: int = 7) -> str:
    """The level for an age: ``fresh``, ``aging`` or ``stale``."""
    if age <= fresh_days:
        return "fresh"
    return "aging" if age <= stale_days else "stale"


def status_text(level: str, age: int | None = None, unit: str = "days") -> str:
    """The human status for a level and age, e.g. ``"🟡 3 days old"``."""
    if level == "fresh":
        return FRESH
    if level == "aging":
        return f"🟡 {_plural(int(age or 0), unit)} old"
    if level == "stale":
        return f"🔴 STALE ({_plural(int(age or 0), unit)})"
    if level == "future":
        return f"🔴 FUTURE BAR ({_plural(-int(age or 0), unit)} ahead)"
    return EMPTY if level == "empty" else NO_DATA


def _ages_in_days(last: pd.DatetimeIndex, now: pd.Timestamp) -> np.ndarray:
    """Calendar days from each bar's UTC date to now's; negative for a bar dated later."""
    return np.asarray((now.normalize() - last.normalize()).days.to_numpy(), dtype="int64")


def _sessions_ahead(cal: Calendar, last: pd.DatetimeIndex, now: pd.Timestamp) -> np.ndarray:
    """Sessions from now's date up to each (future) bar's session, at least 1."""
    labels = session_labels(last, cal.tz)
    today = now.tz_localize(None).normalize().to_datetime64()
    ahead = np.searchsorted(cal.sessions, labels, "right") - np.searchsorted(
        cal.sessions, today, "right"
    )
    return np.maximum(ahead, 1).astype("int64")


def _clock_warnings(
    given: TimeLike, now: pd.Timestamp, ahead: dict[str, pd.Timestamp]
) -> list[str]:
    """What to say about ``now`` and bars after it, instead of clamping ages to 0."""
    out = []
    clock = pd.Timestamp.now(tz="UTC")
    if given is not None and now > clock + pd.Timedelta(minutes=1):
        out.append(
            f"now={now.isoformat()} is in the future (the clock says "
            f"{clock.isoformat(timespec='seconds')}): ages are counted from a time that has "
            f"not come yet"
        )
    if ahead:
        shown = ", ".join(f"{t} (last bar {ts.isoformat()})" for t, ts in list(ahead.items())[:5])
        more = f" and {len(ahead) - 5} more" if len(ahead) > 5 else ""
        n = len(ahead)
        why = (
            f"now={now.isoformat()} is before the newest bars"
            if given is not None
            else "bars in the future (update starts from the last bar, so these tickers are "
            "never brought up to date), or this machine's clock is behind the data"
        )
        out.append(
            f"{n} ticker{'s' if n != 1 else ''} ha{'ve' if n != 1 else 's'} bars dated after "
            f"now ({now.isoformat(timespec='seconds')}): {shown}{more}; {why}"
        )
    return out


def freshness(
    db: DBLike,
    now: TimeLike = None,
    calendar: str | None = None,
    *,
    fresh_days: int = 1,
    stale_days: int = 7,
    tickers: Iterable[str] | None = None,
    table: str = "prices",
    interval: str | None = None,
    fresh_minutes: int = FRESH_MINUTES,
    stale_minutes: int = STALE_MINUTES,
) -> pd.DataFrame:
    """One row per ticker: ``ticker, last_timestamp, age, age_unit, status, level,
    is_stale``, sorted by ticker.

    ``interval`` (``"1m"`` ... ``"1h"``): judge that interval's prices table in minutes
    behind (see the module docstring; thresholds ``fresh_minutes``/``stale_minutes``).
    Without it (and ``table``), the daily table — or, when only intraday tables hold bars,
    the finest of them (:func:`default_interval`), said in ``attrs["note"]``.

    ``db`` is a :class:`ParquetDB` or a path (opened read-only). ``now`` defaults to the
    current time; ``calendar`` is an exchange code (``"XNYS"``) to count missing trading
    sessions instead of calendar days. ``tickers`` restricts (and extends) the rows to that
    universe: a requested ticker with no rows gets level ``missing``. Reads the commit log
    only, never a data file.
    """
    iv: str | None = parse_interval(interval) if interval is not None else None
    note = None
    if iv is None and table == DEFAULT_TABLE:
        db = _open(db)
        if (judged := default_interval(db)) != DEFAULT_INTERVAL:
            iv, note = judged, _default_note(db, judged)
    if iv is not None:
        table = prices_table(iv)
    if iv is not None and iv != DEFAULT_INTERVAL:
        frame = _intraday(
            db,
            t_now=_now(now),
            given=now,
            calendar=calendar,
            interval=iv,
            table=table,
            tickers=tickers,
            fresh=fresh_minutes,
            stale=stale_minutes,
        )
        if note is not None:
            frame.attrs["note"] = note
        return frame
    _check_thresholds(fresh_days, stale_days)
    t_now = _now(now)
    cal = get_calendar(calendar) if calendar else None
    unit = "sessions" if cal is not None else "days"
    store = _open(db)
    marks = store.watermarks(table)
    names = sorted(marks) if tickers is None else sorted({normalize(str(t)) for t in tickers})
    have = [t for t in names if t in marks]
    last = pd.DatetimeIndex([marks[t] for t in have], tz="UTC", dtype="datetime64[ns, UTC]")
    days = _ages_in_days(last, t_now) if len(have) else np.empty(0, dtype="int64")
    future = days < 0  # dated after now: never clamped to "0 days old"
    if cal is None or len(have) == 0:
        ages = days
    else:
        ages = cal.sessions_missing(last, t_now)
        if future.any():
            ages[future] = -_sessions_ahead(cal, last[future], t_now)
    by_ticker = dict(zip(have, zip(last, ages.tolist(), future.tolist(), strict=True), strict=True))
    rows: list[tuple[Any, ...]] = []
    for t in names:
        if t in by_ticker:
            ts, age, ahead = by_ticker[t]
            if ahead:
                level = "future"
            else:
                level = classify(age, fresh_days=fresh_days, stale_days=stale_days)
            rows.append((t, ts, age, unit, status_text(level, age, unit), level))
        else:
            rows.append((t, pd.NaT, None, unit, NO_DATA, "missing"))
    return _frame(
        rows,
        {
            "now": t_now,
            "calendar": cal.name if cal is not None else None,
            "age_unit": unit,
            "interval": DEFAULT_INTERVAL,
            "fresh_days": fresh_days,
            "stale_days": stale_days,
            "warnings": _clock_warnings(
                now, t_now, {t: by_ticker[t][0] for t in have if by_ticker[t][2]}
            ),
        },
    )


def _frame(rows: list[tuple[Any, ...]], attrs: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    frame["last_timestamp"] = pd.to_datetime(frame["last_timestamp"], utc=True)
    frame["age"] = frame["age"].astype("Int64")
    frame["is_stale"] = frame["level"].isin(_STALE_LEVELS).astype(bool)
    frame.attrs.update(attrs)
    return frame


def _intraday(
    db: DBLike,
    *,
    t_now: pd.Timestamp,
    given: TimeLike,
    calendar: str | None,
    interval: str,
    table: str,
    tickers: Iterable[str] | None,
    fresh: int,
    stale: int,
) -> pd.DataFrame:
    """Minutes behind for an intraday table (module docstring)."""
    if fresh < 0 or stale < fresh:
        raise ConfigError(
            f"need 0 <= fresh_minutes <= stale_minutes, got fresh_minutes={fresh}, "
            f"stale_minutes={stale}"
        )
    sessions = exchange_sessions(calendar) if calendar else None
    marks = _open(db).watermarks(table)
    names = sorted(marks) if tickers is None else sorted({normalize(str(t)) for t in tickers})
    have = [t for t in names if t in marks]
    step = INTERVAL_SECONDS[interval] * 10**9
    last = np.array([marks[t].value for t in have], dtype="int64")
    now_ns = int(t_now.value)
    if sessions is not None:
        sessions.check_covers(now_ns, "now")
        behind_ns = sessions.trading_ns(np.array([now_ns]))[0] - sessions.trading_ns(last + step)
    else:
        behind_ns = now_ns - (last + step)
    # the bar being formed now cannot be there yet
    behind = np.maximum(behind_ns // 60_000_000_000 - (step // 60_000_000_000 - 1), 0)
    future = last > now_ns
    ages = np.where(future, -np.ceil((last - now_ns) / 60e9).astype("int64"), behind)
    unit = "minutes"
    rows: list[tuple[Any, ...]] = []
    by = dict(zip(have, range(len(have)), strict=True))
    for t in names:
        k = by.get(t)
        if k is None:
            rows.append((t, pd.NaT, None, unit, NO_DATA, "missing"))
            continue
        age = int(ages[k])
        level = "future" if future[k] else classify(age, fresh_days=fresh, stale_days=stale)
        rows.append((t, marks[t], age, unit, status_text(level, age, unit), level))
    ahead = {t: marks[t] for t in have if future[by[t]]}
    return _frame(
        rows,
        {
            "now": t_now,
            "calendar": sessions.name if sessions is not None else None,
            "age_unit": unit,
            "interval": interval,
            "fresh_minutes": fresh,
            "stale_minutes": stale,
            "session_open": sessions.is_open(now_ns) if sessions is not None else None,
            "warnings": _clock_warnings(given, t_now, ahead),
        },
    )


def freshness_summary(
    db: DBLike | pd.DataFrame,
    now: TimeLike = None,
    calendar: str | None = None,
    *,
    fresh_days: int = 1,
    stale_days: int = 7,
    tickers: Iterable[str] | None = None,
    worst: int = 10,
    interval: str | None = None,
    fresh_minutes: int = FRESH_MINUTES,
    stale_minutes: int = STALE_MINUTES,
) -> dict[str, Any]:
    """The overall picture: ``status`` (the worst level's text), ``is_stale``, ``level``,
    ``tickers``, ``counts`` per level, the ``worst`` tickers (oldest first), ``latest``
    and ``oldest`` last timestamps, ``now``, ``calendar`` and ``age_unit``.

    ``db`` may also be a frame returned by :func:`freshness` (then the other arguments are
    ignored), so a caller that shows both computes them once.
    """
    frame = (
        db
        if isinstance(db, pd.DataFrame)
        else freshness(
            db,
            now,
            calendar,
            fresh_days=fresh_days,
            stale_days=stale_days,
            tickers=tickers,
            interval=interval,
            fresh_minutes=fresh_minutes,
            stale_minutes=stale_minutes,
        )
    )
    attrs = frame.attrs
    unit = str(attrs.get("age_unit", "days"))
    counts = {lvl: int((frame["level"] == lvl).sum()) for lvl in LEVELS if lvl != "empty"}
    present = frame[frame["level"] != "missing"]
    level = "empty" if frame.empty else max(frame["level"], key=LEVELS.index)
    ranked = frame.assign(_rank=frame["level"].map(LEVELS.index)).sort_values(
        ["_rank", "age", "ticker"], ascending=[False, False, True], na_position="first"
    )
    worst_rows = [
        {
            "ticker": r["ticker"],
            "last_timestamp": iso(r["last_timestamp"]),
            "age": None if pd.isna(r["age"]) else int(r["age"]),
            "status": r["status"],
            "level": r["level"],
        }
        for r in ranked.head(worst).to_dict("records")
        if r["level"] != "fresh"
    ]
    max_age = int(present["age"].max()) if len(present) else None
    status = status_text(level, max_age, unit)
    if level == "missing":
        n = counts["missing"]
        status = f"{NO_DATA} for {n} ticker{'s' if n != 1 else ''}"
    if level == "future":
        n = counts["future"]
        status = f"🔴 FUTURE BAR for {n} ticker{'s' if n != 1 else ''}"
    return {
        "status": status,
        "level": level,
        "is_stale": level in _STALE_LEVELS,
        "tickers": len(frame),
        "stale_tickers": int(frame["is_stale"].sum()) if len(frame) else 0,
        "counts": counts,
        "worst": worst_rows,
        "latest": iso(present["last_timestamp"].max()) if len(present) else None,
        "oldest": iso(present["last_timestamp"].min()) if len(present) else None,
        "max_age": max_age,
        "now": iso(attrs.get("now")),
        "calendar": attrs.get("calendar"),
        "age_unit": unit,
        "fresh_days": attrs.get("fresh_days", fresh_days),
        "stale_days": attrs.get("stale_days", stale_days),
        **{
            k: attrs[k]
            for k in ("interval", "fresh_minutes", "stale_minutes", "session_open")
            if k in attrs
        },
        "note": attrs.get("note"),
        "warnings": list(attrs.get("warnings") or []),
    }


def get_price_data_freshness(
    db: DBLike,
    now: TimeLike = None,
    calendar: str | None = None,
    *,
    fresh_days: int = 1,
    stale_days: int = 7,
    interval: str | None = None,
    fresh_minutes: int = FRESH_MINUTES,
    stale_minutes: int = STALE_MINUTES,
) -> dict[str, Any]:
    """The original dashboard check, judged on the *oldest* ticker (see :func:`verdict`)::

        {"status": "🟢 Fresh", "is_stale": False, "days_old": 0,
         "latest": "2024-07-05T00:00:00+00:00", ...}

    ``"🟡 N days old"`` when the oldest ticker's age is ``fresh_days < N <= stale_days``,
    ``"🔴 STALE (N days)"`` beyond; ``"⚪ Empty"`` (``is_stale`` true, ``days_old`` and
    ``latest`` None) when there is no price data. With ``calendar`` the age counts missed
    trading sessions and ``days_old`` holds that count. Extra keys: ``level``, ``tickers``,
    ``stale_tickers``, ``age_unit``, ``calendar``, ``interval`` (the table judged: without
    ``interval=``, an intraday one when only intraday tables hold bars, and ``note`` says
    so; None otherwise), ``now``, ``warnings`` (a ``now`` in the
    future, bars dated after now: see the module docstring). Same verdict as
    ``freshness_summary`` and ``tickvault freshness``. ``interval="1m"`` (and the minute
    thresholds) judges an intraday table in minutes behind (module docstring).
    """
    return verdict(
        freshness(
            db,
            now,
            calendar,
            fresh_days=fresh_days,
            stale_days=stale_days,
            interval=interval,
            fresh_minutes=fresh_minutes,
            stale_minutes=stale_minutes,
        )
    )


def verdict(frame: pd.DataFrame) -> dict[str, Any]:
    """The one overall verdict for a :func:`freshness` frame, in the seed's shape: what
    :func:`get_price_data_freshness`, ``tickvault freshness`` and the dashboard all show.

    ``status``, ``level`` and ``is_stale`` are those of the *worst* ticker (so the headline
    never says "Fresh" while a ticker is stale); ``days_old`` is that ticker's age (the
    number in the status), ``latest`` the newest bar in the database, ``stale_tickers`` the
    number of tickers whose own verdict is stale."""
    s = freshness_summary(frame)
    return {
        "status": s["status"],
        "is_stale": s["is_stale"],
        "days_old": s["max_age"],
        "latest": s["latest"],
        "level": s["level"],
        "tickers": s["tickers"],
        "stale_tickers": s["stale_tickers"],
        "age_unit": s["age_unit"],
        "calendar": s["calendar"],
        "interval": s.get("interval", DEFAULT_INTERVAL),
        "note": s["note"],
        "now": s["now"],
        "warnings": s["warnings"],
    }
