"""The dashboard's views: plain functions from a database (and query options) to plain,
JSON-serialisable dicts.

Each page and its JSON twin call the same function here; the HTML page renders the dict
with a template and the API returns it as JSON. The functions hold no business logic of
their own: freshness comes from :mod:`tickvault.data_freshness`, sizes and ranges from
:meth:`ParquetDB.info`, bars from a pinned :class:`~tickvault.Snapshot`, runs from
:meth:`ParquetDB.runs`. They only select, sort, page and format. Nothing here writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pandas as pd

from ..data_freshness import LEVELS, freshness, freshness_summary, intervals_with_bars, verdict
from ..errors import ValidationError
from ..formats import iso_utc
from ..modes import (
    DEFAULT_INTERVAL,
    INTERVAL_CHOICES,
    interval_of_table,
    parse_interval,
    prices_table,
)
from ..pipeline.report import run_summary
from ..sessions import exchange_sessions
from ..storage import ParquetDB, Snapshot
from ..tickers import close_matches, normalize
from ..times import check_order, iso, to_ns
from .actions import ADJUST_LABELS, adjust_arg, ticker_actions
from .bars import (
    BAR_COLUMNS,
    DEFAULT_PAGE,
    MAX_CANDLES,
    MAX_PAGE,
    BarRange,
    Candles,
    Tail,
    csv_chunks,
    page,
    windows,
)
from .caches import FreshnessCache, FreshnessOptions, VerifyCache

__all__ = [
    "RANGES",
    "FreshnessCache",
    "FreshnessOptions",
    "PageNotFound",
    "VerifyCache",
    "overview",
    "runs",
    "ticker_bars_csv",
    "ticker_bars_page",
    "ticker_detail",
    "tickers",
]

TABLE = "prices"

#: Quick ranges on the ticker page, counted back from the ticker's last bar.
RANGES: dict[str, pd.DateOffset | None] = {
    "1m": pd.DateOffset(months=1),
    "3m": pd.DateOffset(months=3),
    "6m": pd.DateOffset(months=6),
    "1y": pd.DateOffset(years=1),
    "5y": pd.DateOffset(years=5),
    "all": None,
}
DEFAULT_RANGE = "1y"

SORT_KEYS = ("ticker", "last_timestamp", "age", "status")
MAX_PER_PAGE = 10_000


class PageNotFound(LookupError):
    """The page asks for something the database does not have (e.g. an unknown ticker)."""


# -- formatting helpers -------------------------------------------------------------------


def _age(x: Any) -> int | None:
    return None if x is None or pd.isna(x) else int(x)


def _int_arg(value: Any, name: str, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} is not a whole number", column=name) from None
    if not lo <= n <= hi:
        raise ValidationError(f"{name}={n} is out of range; use {lo}..{hi}", column=name)
    return n


# -- overview -----------------------------------------------------------------------------


def _level_rows(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"level": lvl, "count": int(counts.get(lvl, 0))} for lvl in LEVELS if lvl in counts]


def overview(
    db: ParquetDB,
    fresh: FreshnessCache,
    verify_cache: VerifyCache,
    *,
    wait_verify: bool = False,
) -> dict[str, Any]:
    """Overall freshness, counts per level, size, tickers, rows, date range, version, the
    last run (its headline and counts, never its per-ticker results) and the last verify
    result. All of the daily table — or, when only intraday tables hold bars, of the
    table the library judges (``interval``, and ``freshness.note`` says so)."""
    info = db.info()
    frame = fresh.frame(db)
    summary = freshness_summary(frame)
    overall = verdict(frame)  # the same verdict as `tickvault freshness` and the library
    judged = prices_table(overall["interval"])
    table = info["tables"].get(judged)
    version = int(table["version"]) if table else -1
    last_runs = db.runs(1)
    return {
        "path": info["path"],
        "freshness": overall,
        "summary": summary,
        "levels": _level_rows(summary["counts"]),
        "interval": overall["interval"],
        "table": judged,
        "version": version,
        "tickers": int(table["tickers"]) if table else 0,
        "stored_rows": int(table["stored_rows"]) if table else 0,
        "bytes": int(table["bytes"]) if table else 0,
        "files": int(table["files"]) if table else 0,
        "first": table["first"] if table else None,
        "last": table["last"] if table else None,
        "last_run": _run_row(last_runs[0]) if last_runs else None,  # no per-ticker detail
        "verify": verify_cache.get(db, version, wait=wait_verify),
        "intervals": _interval_freshness(db, fresh, info["tables"], frame),
    }


def _interval_freshness(
    db: ParquetDB, fresh: FreshnessCache, tables: dict[str, Any], judged: pd.DataFrame
) -> list[dict[str, Any]]:
    """One freshness summary per intraday prices table (finest first): the library's
    verdict in minutes behind on the dashboard's calendar (XNYS if none); the table the
    headline ``judged`` (a database of intraday bars only) gets the headline's verdict."""
    out = []
    for iv in INTERVAL_CHOICES:
        table = prices_table(iv)
        if iv == DEFAULT_INTERVAL or table not in tables:
            continue
        frame = (
            judged
            if judged.attrs.get("interval") == iv
            else freshness(db, interval=iv, calendar=fresh.opts.exchange_calendar)
        )
        t = tables[table]
        out.append(
            {
                "interval": iv,
                "table": table,
                "tickers": int(t["tickers"]),
                "stored_rows": int(t["stored_rows"]),
                "first": t["first"],
                "last": t["last"],
                "freshness": verdict(frame),
            }
        )
    return out


# -- tickers table ------------------------------------------------------------------------


def _stale_arg(stale: str | None) -> bool | None:
    if not stale:
        return None
    if stale.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ValidationError(f"stale={stale!r} must be true or false", column="stale")
    return stale.lower() in ("true", "1", "yes")


def _check_table_args(sort: str, order: str, level: str | None) -> None:
    if sort not in SORT_KEYS:
        raise ValidationError(f"sort={sort!r} is not one of {list(SORT_KEYS)}", column="sort")
    if order not in ("asc", "desc"):
        raise ValidationError(f"order={order!r} must be 'asc' or 'desc'", column="order")
    if level and level not in LEVELS:
        raise ValidationError(f"level={level!r} is not one of {list(LEVELS)}", column="level")


def _select(
    frame: pd.DataFrame, q: str | None, level: str | None, stale: bool | None
) -> pd.DataFrame:
    sel = frame
    if q:
        sel = sel[sel["ticker"].str.contains(q, case=False, regex=False)]
    if level:
        sel = sel[sel["level"] == level]
    if stale is not None:
        sel = sel[sel["is_stale"] == stale]
    return sel


def _sorted(sel: pd.DataFrame, sort: str, asc: bool) -> pd.DataFrame:
    if sort == "status":
        return sel.assign(_rank=sel["level"].map(LEVELS.index)).sort_values(
            ["_rank", "age", "ticker"], ascending=[asc, asc, True], na_position="last"
        )
    if sort != "ticker":
        return sel.sort_values([sort, "ticker"], ascending=[asc, True], na_position="last")
    return sel if asc else sel.sort_values("ticker", ascending=False)


def _ticker_row(r: Any) -> dict[str, Any]:
    return {
        "ticker": r.ticker,
        "last_timestamp": iso(r.last_timestamp),
        "age": _age(r.age),
        "age_unit": r.age_unit,
        "status": r.status,
        "level": r.level,
        "is_stale": bool(r.is_stale),
    }


def tickers(
    db: ParquetDB,
    fresh: FreshnessCache,
    *,
    q: str | None = None,
    level: str | None = None,
    stale: str | None = None,
    sort: str | None = None,
    order: str | None = None,
    page: Any = None,
    per_page: Any = None,
) -> dict[str, Any]:
    """Every ticker's last bar, age and status: filtered by name (``q``, substring, case
    insensitive), ``level`` (fresh|aging|stale|missing) or ``stale`` (true|false), sorted
    by ``sort`` (ticker|last_timestamp|age|status) in ``order`` (asc|desc), paged. The
    tickers of the table the overview judges: the daily one, or, when only intraday tables
    hold bars, that ``interval``'s (``note`` says so; the rows link to its pages)."""
    sort, order = sort or "ticker", order or "asc"
    _check_table_args(sort, order, level)
    stale_flag = _stale_arg(stale)
    per = _int_arg(per_page, "per_page", 100, 1, MAX_PER_PAGE)

    frame = fresh.frame(db)
    sel = _sorted(_select(frame, q, level, stale_flag), sort, order == "asc")
    matched = len(sel)
    pages = max(1, math.ceil(matched / per))
    pg = min(_int_arg(page, "page", 1, 1, 10**9), pages)
    chunk = sel.iloc[(pg - 1) * per : pg * per]
    return {
        "total": len(frame),
        "matched": matched,
        "page": pg,
        "pages": pages,
        "per_page": per,
        "q": q or "",
        "level": level or "",
        "stale": "" if stale_flag is None else ("true" if stale_flag else "false"),
        "sort": sort,
        "order": order,
        "counts": freshness_summary(frame)["counts"],
        "levels": [lvl for lvl in LEVELS if lvl != "empty"],
        "age_unit": frame.attrs.get("age_unit", "days"),
        "interval": frame.attrs.get("interval", DEFAULT_INTERVAL),
        "note": frame.attrs.get("note"),
        "rows": [_ticker_row(r) for r in chunk.itertuples(index=False)],
    }


# -- one ticker ---------------------------------------------------------------------------


def _resolve_range(
    last: pd.Timestamp, range_: str | None, start: str | None, end: str | None
) -> tuple[str, str | None, str | None]:
    """(range name, start, end) for the read; explicit start/end win over a quick range."""
    if start or end:
        return "custom", start or None, end or None
    name = (range_ or DEFAULT_RANGE).lower()
    if name not in RANGES:
        raise ValidationError(f"range={range_!r} is not one of {list(RANGES)}", column="range")
    offset = RANGES[name]
    if offset is None:
        return name, None, None
    return name, iso_utc(last - offset), None


def _pinned(
    db: ParquetDB, ticker: str, version: int | None = None, table: str = TABLE
) -> tuple[Snapshot, dict[str, pd.Timestamp], str]:
    """(snapshot, watermarks, normalised ticker) for a ticker the database has (at
    ``version``, default the newest) in ``table`` (the prices table of an interval);
    PageNotFound (naming close matches) otherwise."""
    if version is not None and version > db.table_version(table):
        raise ValidationError(
            f"version={version} is newer than the database (version "
            f"{db.table_version(table)}); leave it out for the newest",
            column="version",
        )
    snap = db.snapshot(table, version) if table in db.tables() else None
    marks = snap.watermarks() if snap is not None else {}
    ticker = normalize(ticker)
    if snap is None or ticker not in marks:
        raise PageNotFound(_not_here(db, ticker, table, marks))
    return snap, marks, ticker


def _not_here(db: ParquetDB, ticker: str, table: str, marks: dict[str, pd.Timestamp]) -> str:
    """Why ``ticker`` has no page in ``table``: the intervals that hold it (with the
    address of each), else the closest tickers of the table."""
    iv = interval_of_table(table)
    what = "daily bars" if iv == DEFAULT_INTERVAL else f"{iv} bars"
    message = f"no ticker {ticker!r} with {what} in the database at {str(db.path)!r}"
    elsewhere = list(intervals_with_bars(db, [ticker]))
    if elsewhere:
        where = ", ".join(f"{i} (?interval={i})" for i in elsewhere)
        return f"{message}; it has bars of the interval{'s' if len(elsewhere) > 1 else ''} {where}"
    near = close_matches(ticker, marks)
    return message + (f" (did you mean {', '.join(near)}?)" if near else "")


def _bar_range(
    db: ParquetDB,
    pinned: tuple[Snapshot, dict[str, pd.Timestamp], str],
    start: str | None,
    end: str | None,
    adjust: str | None,
    columns: tuple[str, ...] | None = tuple(BAR_COLUMNS),
    *,
    newest: bool = True,
) -> BarRange:
    """The ticker's bars from ``start`` to ``end`` (checked here, so a bad one is a 400
    before anything is read or sent), narrowed to the ticker's first and last bar.
    ``newest``: no version was asked for (adjusted bars then use the newest actions)."""
    snap, marks, ticker = pinned
    s, e = to_ns(start or None, name="start"), to_ns(end or None, end=True, name="end")
    table = snap.table
    check_order(start, end, s, e)
    first = int(snap.first_timestamps()[ticker].value)
    last = int(marks[ticker].value)
    lo = first if s is None else max(s, first)
    hi = last if e is None else min(e, last)
    return BarRange(db, snap, ticker, lo, hi, adjust, columns, table, newest)


def _ticker_freshness(db: ParquetDB, fresh: FreshnessCache, ticker: str) -> dict[str, Any]:
    frame = fresh.frame(db)
    daily = frame.attrs.get("interval", DEFAULT_INTERVAL) == DEFAULT_INTERVAL
    match = frame[frame["ticker"] == ticker] if daily else frame.iloc[:0]
    if match.empty:  # committed after the cached frame was computed
        match = freshness(db, tickers=[ticker], **fresh.opts.kwargs())
    fr = match.iloc[0]
    return {
        "last_timestamp": iso(fr["last_timestamp"]),
        "age": _age(fr["age"]),
        "age_unit": fr["age_unit"],
        "status": fr["status"],
        "level": fr["level"],
        "is_stale": bool(fr["is_stale"]),
    }


#: the quick range an intraday page opens with (a month of bars)
INTRADAY_RANGE = "1m"


def _intraday_freshness(
    db: ParquetDB, fresh: FreshnessCache, ticker: str, interval: str
) -> dict[str, Any]:
    """Minutes behind (``freshness(interval=)``) on the dashboard's calendar (XNYS if none)."""
    frame = freshness(
        db, tickers=[ticker], interval=interval, calendar=fresh.opts.exchange_calendar
    )
    fr = frame.iloc[0]
    return {
        "last_timestamp": iso(fr["last_timestamp"]),
        "age": _age(fr["age"]),
        "age_unit": fr["age_unit"],
        "status": fr["status"],
        "level": fr["level"],
        "is_stale": bool(fr["is_stale"]),
    }


def _interval_view(
    db: ParquetDB,
    fresh: FreshnessCache,
    ticker: str,
    iv: str,
    last: pd.Timestamp,
    tail: Tail,
    chart: dict[str, list[Any]],
    clock: str = "exchange",
) -> dict[str, Any]:
    """The page's interval switch and clock: the intervals the ticker has, the exchange's
    zone (``clock="utc"``: UTC), the last bar's, the ``latest`` bars' and (added to
    ``chart``) the candles' times in it (intraday)."""
    intraday = iv != DEFAULT_INTERVAL
    zone = _exchange_zone(fresh)
    if clock == "utc":
        zone = {"calendar": zone["calendar"], "name": "UTC"}
    if intraday:  # the chart's axis and tooltip in the exchange's clock
        for key in ("timestamp", "timestamp_end"):
            if key in chart:
                chart[f"{key}_local"] = _local_times(chart[key], zone["name"])
    latest = tail.rows()
    for row in latest:  # times in the exchange's zone, the zone shown
        row["local_time"] = _local(row["timestamp"], zone, intraday)
    return {
        "interval": iv,
        "intervals": _intervals_of(db, ticker),
        "time_zone": zone,
        "clock": clock,
        "last_local": _local(iso(last), zone, intraday),
        "latest": latest,
    }


def _intervals_of(db: ParquetDB, ticker: str) -> list[str]:
    """The intervals whose prices table holds ``ticker`` (from the log), finest first."""
    return list(intervals_with_bars(db, [ticker]))


def clock_arg(value: Any) -> str:
    """``?tz=``: ``exchange`` (the default: the exchange's own clock) or ``utc``, any case;
    anything else is a 400 naming the parameter."""
    word = "exchange" if value in (None, "") else str(value).strip().lower()
    if word in ("exchange", "utc"):
        return word
    raise ValidationError(f"tz={value!r} is not one of: exchange, utc; e.g. ?tz=utc", column="tz")


def _exchange_zone(fresh: FreshnessCache) -> dict[str, str]:
    """The exchange whose clock the page shows: the dashboard's calendar, else XNYS."""
    sessions = exchange_sessions(fresh.opts.exchange_calendar)
    return {"calendar": sessions.name, "name": sessions.tz}


def _local_times(stamps: list[str], zone: str) -> list[str]:
    """ISO UTC times as ``2024-06-05 09:30 EDT`` in ``zone`` (vectorised)."""
    if not stamps:
        return []
    idx = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True)).tz_convert(zone)
    return list(idx.strftime("%Y-%m-%d %H:%M %Z"))


def _local(stamp: str | None, zone: dict[str, str], intraday: bool) -> str | None:
    """``2024-06-05 09:30 EDT``: an intraday bar's time in the exchange's zone, with the
    zone's abbreviation; a daily bar keeps its date."""
    if stamp is None:
        return None
    ts = pd.Timestamp(stamp)
    if not intraday:
        return ts.strftime("%Y-%m-%d")
    return ts.tz_convert(zone["name"]).strftime("%Y-%m-%d %H:%M %Z")


def _chart(bars: BarRange, n_latest: int) -> tuple[Candles, dict[str, list[Any]], Tail]:
    """One pass over the range: the chart's candles and the newest bars."""
    candles, tail = Candles(bars.start, bars.end), Tail(n_latest)
    for table in windows(bars):
        candles.add(table)
        tail.add(table)
    return candles, candles.columnar(), tail


#: rows each data check lists on the ticker page (its total is given too)
MAX_CHECK_ROWS = 50
#: the ticker page's suspicious moves: closes up 50 % or down to 2/3 or less, unexplained
MOVE_THRESHOLD = 0.5


def _bounded(rows: list[dict[str, Any]], **about: Any) -> dict[str, Any]:
    return {**about, "total": len(rows), "rows": rows[:MAX_CHECK_ROWS]}


def _ticker_checks(
    db: ParquetDB, fresh: FreshnessCache, snap: Snapshot, ticker: str
) -> dict[str, Any]:
    """The ticker's gaps (``db.gaps``: missing sessions of the dashboard's calendar, XNYS
    if none, in the page's table at its pinned version) and suspicious moves of its daily
    closes (``db.suspicious_moves``), each at most MAX_CHECK_ROWS with the total."""
    calendar = fresh.opts.exchange_calendar
    notes: list[str] = []
    gaps = db.gaps(
        snap.table, calendar=calendar, tickers=[ticker], version=snap.version, notes=notes
    )
    daily = TABLE in db.tables() and ticker in db.watermarks(TABLE)
    moves = db.suspicious_moves(threshold=MOVE_THRESHOLD, tickers=[ticker]) if daily else []
    return {
        "gaps": _bounded(gaps, table=snap.table, calendar=calendar, notes=notes),
        "suspicious_moves": _bounded(moves, table=TABLE, threshold=MOVE_THRESHOLD),
    }


def ticker_detail(
    db: ParquetDB,
    fresh: FreshnessCache,
    ticker: str,
    *,
    range_: str | None = None,
    start: str | None = None,
    end: str | None = None,
    latest: Any = None,
    adjust: Any = None,
    interval: Any = None,
    tz: Any = None,
) -> dict[str, Any]:
    """One ticker from one pinned snapshot of the prices table of ``interval`` (default
    daily; the page's interval switch lists the intervals the ticker has): its freshness
    (intraday: minutes behind, on the calendar the dashboard uses, default XNYS), the
    chart's candles of the chosen range (columnar, at most MAX_CANDLES: the bars, or
    coarser candles for a long range; ``adjust``: raw, splits or all), the ``latest`` bars
    of that range (newest first; intraday ones with ``local_time`` in the exchange's zone)
    and its splits and dividends."""
    n_latest = _int_arg(latest, "latest", 20, 1, 10_000)
    how = adjust_arg(adjust)
    iv = parse_interval(interval)
    pinned = _pinned(db, ticker, table=prices_table(iv))
    snap, marks, ticker = pinned
    intraday = iv != DEFAULT_INTERVAL
    fr = (
        _intraday_freshness(db, fresh, ticker, iv)
        if intraday
        else _ticker_freshness(db, fresh, ticker)
    )
    default = INTRADAY_RANGE if intraday else None
    name, s, e = _resolve_range(marks[ticker], range_ or default, start, end)
    candles, chart, tail = _chart(_bar_range(db, pinned, s, e, how), n_latest)
    return {
        "ticker": ticker,
        **_interval_view(db, fresh, ticker, iv, marks[ticker], tail, chart, clock_arg(tz)),
        "version": snap.version,
        "freshness": fr,
        "first": iso(snap.first_timestamps().get(ticker)),
        "last": iso(marks[ticker]),
        "range": name,
        "ranges": list(RANGES),
        "start": s,
        "end": e,
        "count": candles.count,
        "bars": chart,
        "candles": {
            "count": len(chart["timestamp"]),
            "max": MAX_CANDLES,
            "aggregated": candles.aggregated,
            "seconds": candles.span // 10**9 if candles.aggregated else None,
        },
        "adjust": how,
        "adjust_choices": [k or "raw" for k in ADJUST_LABELS],
        "actions": ticker_actions(db, ticker, s, e, chart["timestamp"]),
        **_ticker_checks(db, fresh, snap, ticker),
    }


def ticker_bars_page(
    db: ParquetDB,
    ticker: str,
    *,
    start: str | None = None,
    end: str | None = None,
    adjust: Any = None,
    limit: Any = None,
    version: Any = None,
    interval: Any = None,
) -> dict[str, Any]:
    """A page of the ticker's bars as stored (or adjusted): at most ``limit`` (default
    DEFAULT_PAGE, at most MAX_PAGE) from ``start``, oldest first, read from ``version``
    (default the newest). ``next`` is the query string of the next page (same version),
    None on the last page."""
    n = _int_arg(limit, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    how = adjust_arg(adjust)
    wanted = None if version in (None, "") else _int_arg(version, "version", 0, 0, 2**62)
    iv = parse_interval(interval)
    pinned = _pinned(db, ticker, wanted, prices_table(iv))
    bars, after = page(_bar_range(db, pinned, start, end, how, newest=wanted is None), n)
    read = pinned[0].version
    query = {
        "start": iso(after),
        "end": end or None,
        "adjust": how,
        "limit": n,
        "version": read,
        "interval": None if iv == DEFAULT_INTERVAL else iv,
    }
    following = urlencode({k: v for k, v in query.items() if v is not None})
    return {
        "ticker": pinned[2],
        "interval": iv,
        "version": read,
        "adjust": how,
        "start": start or None,
        "end": end or None,
        "limit": n,
        "count": len(bars["timestamp"]),
        "bars": bars,
        "next_start": iso(after),
        "next": None if after is None else "?" + following,
    }


def ticker_bars_csv(
    db: ParquetDB,
    ticker: str,
    *,
    start: str | None = None,
    end: str | None = None,
    adjust: Any = None,
    interval: Any = None,
) -> Iterator[str]:
    """The ticker's bars (all of them, or ``start``..``end``) as CSV pieces of at most
    CSV_ROWS rows, from one snapshot; ``adjust`` (raw, splits or all) as on the ticker
    page. Everything is checked before the first piece is asked for."""
    how = adjust_arg(adjust)
    pinned = _pinned(db, ticker, table=prices_table(parse_interval(interval)))
    return csv_chunks(_bar_range(db, pinned, start, end, how, columns=None))


# -- runs ---------------------------------------------------------------------------------


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    """A run's headline (``run_summary``, the CLI's too) and its other stored details;
    the per-ticker results are left out (large)."""
    detail = {k: v for k, v in run.items() if k != "tickers"}
    return {**detail, **run_summary(run)}


def runs(db: ParquetDB, *, limit: Any = None) -> dict[str, Any]:
    """The newest ``limit`` run records (default 50), newest first, with per-ticker errors.
    The per-ticker results of pipeline runs (``tickers``) are left out; ``ticker_count``
    says how many there were."""
    n = _int_arg(limit, "limit", 50, 1, 100_000)
    records = [_run_row(r) for r in db.runs(n)]
    return {"limit": n, "count": len(records), "runs": records}
