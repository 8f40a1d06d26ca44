"""``yahoo``: daily bars from the Yahoo Finance v8 chart API.

``GET {base_url}/v8/finance/chart/{ticker}?period1=..&period2=..&interval=1d&events=div,split``
returns JSON with ``chart.result[0]``: ``timestamp[]`` (epoch seconds of each session's
start), ``indicators.quote[0].{open,high,low,close,volume}``, ``indicators.adjclose[0]``
and ``meta`` (``exchangeTimezoneName``, ``gmtoffset``); or ``chart.error`` (code
``Not Found`` for an unknown symbol, raised as TickerNotFound).

Each bar keeps its exchange session date: the epoch is converted to the exchange's local
time (``exchangeTimezoneName``, else ``gmtoffset``) and the bar is stamped 00:00 UTC of that
date. Bars with a null price (holidays, halts) are dropped; a null volume is 0.

Intraday (``interval="1m"`` ... ``"1h"``; Yahoo's ``60m`` for ``1h``): each bar keeps its
instant (the epoch of its start); a bar off the interval's grid (the live bar Yahoo appends,
stamped with the current time) is dropped. Yahoo keeps intraday history for a limited time
(:data:`HISTORY_DAYS`: about 30 days of 1m, 60 of 2m-30m, 730 of 1h) and answers one
request for a limited span (:data:`CHUNK_DAYS`): a fetch is made of as many requests as its
range needs, from ``start`` to now (splits after ``end`` must be known to un-apply them),
and a ``start`` older than the history limit is a ConfigError naming the limit, before any
request (``start=None``: the whole limit).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import zoneinfo
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import BadSourceData, ConfigError, TickerNotFound
from ..modes import parse_interval
from ..schema import INTRADAY_GRID
from .actions import Fetched, actions_frame, empty_actions, unapply_splits
from .base import TimeLike, bounds, clip, empty_prices, validate_prices
from .http import HttpSource

log = logging.getLogger(__name__)

#: period1 when start=None: 1900-01-01, before any listed history
EARLIEST = -2208988800
_DAY = 86400

#: how far back Yahoo serves each intraday interval, in days (a little less than its limit,
#: so a request at the edge is not refused while in flight)
HISTORY_DAYS = {"1m": 29, "2m": 59, "5m": 59, "15m": 59, "30m": 59, "1h": 729}
#: the longest span one request may cover (Yahoo: 8 days of 1m per request)
CHUNK_DAYS = {"1m": 7, "2m": 59, "5m": 59, "15m": 59, "30m": 59, "1h": 365}
#: Yahoo's spelling of each interval
YAHOO_INTERVAL = {"1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m"}


class YahooSource(HttpSource):
    """``get_source("yahoo", base_url=None, rate_limit=2, ...)``; see :class:`HttpSource`."""

    provider: ClassVar[str] = "yahoo"
    default_base_url: ClassVar[str] = "https://query1.finance.yahoo.com"
    default_rate_limit: ClassVar[float | None] = 2.0
    ok_statuses: ClassVar[frozenset[int]] = frozenset({200, 404})

    def __init__(self, *, interval: str = "1d", **options: Any) -> None:
        super().__init__(**options)
        #: the bars this source fetches (``"1d"``, or intraday within Yahoo's limits)
        self.interval = parse_interval(interval)

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        bars: pd.DataFrame = self.fetch_with_actions(ticker, start, end).bars
        return bars

    def fetch_with_actions(
        self, ticker: str, start: TimeLike = None, end: TimeLike = None
    ) -> Fetched:
        """Bars as traded and the dividends and splits of ``[start, end]`` (and any split
        after ``end``, whose adjustment the response's prices carry) from one request."""
        lo, hi = bounds(start, end)
        if lo is not None and hi is not None and lo > hi:
            return Fetched(empty_prices(adj_close=True), empty_actions())
        if self.interval != "1d":
            return self._intraday(ticker, lo, hi)
        # widen by a day each side: session dates are local, the period is in UTC. The
        # period always runs to now: Yahoo's prices are adjusted for every split up to the
        # response, so every split after ``end`` must be known to un-apply it
        period1 = EARLIEST if lo is None else int(lo.timestamp()) - _DAY
        period2 = int(time.time()) + _DAY
        response = self.get(
            f"/v8/finance/chart/{urllib.parse.quote(ticker, safe='')}",
            {
                "period1": period1,
                "period2": period2,
                "interval": "1d",
                "events": "div,split",
                "includeAdjustedClose": "true",
            },
            ticker=ticker,
        )
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            problem = _not_json(response.status_code, exc, response.text)
            raise self._bad(ticker, problem) from exc
        df, actions = self.parse_with_actions(payload, ticker, status=response.status_code)
        if lo is not None and len(actions):
            actions = actions[actions["timestamp"] >= lo].reset_index(drop=True)
        return Fetched(clip(df, lo, hi), actions)

    def _intraday(self, ticker: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> Fetched:
        """Intraday bars of ``[lo, hi]`` in as many requests as Yahoo allows (module doc)."""
        now = int(time.time())
        limit = HISTORY_DAYS[self.interval]
        earliest = now - limit * _DAY
        if lo is not None and int(lo.timestamp()) < earliest:
            raise ConfigError(
                f"{self.name}: Yahoo keeps {self.interval} bars for about {limit + 1} days: "
                f"start={lo.isoformat()} is older than {pd.Timestamp(earliest, unit='s')}"
                f"Z; ask for a later start (or none: the last {limit} days), or a coarser "
                f"interval (2m-30m: 60 days, 1h: 730 days)"
            )
        first = earliest if lo is None else int(lo.timestamp())
        step = CHUNK_DAYS[self.interval] * _DAY
        frames, actions = [], []
        for p1 in range(first, now + 1, step):
            response = self.get(
                f"/v8/finance/chart/{urllib.parse.quote(ticker, safe='')}",
                {
                    "period1": p1,
                    "period2": min(p1 + step, now + 60),
                    "interval": YAHOO_INTERVAL[self.interval],
                    "events": "div,split",
                    "includePrePost": "false",
                },
                ticker=ticker,
            )
            try:
                payload = json.loads(response.content)
            except ValueError as exc:
                problem = _not_json(response.status_code, exc, response.text)
                raise self._bad(ticker, problem) from exc
            df, acts = self.parse_with_actions(payload, ticker, status=response.status_code)
            frames.append(df)
            actions.append(acts)
        bars = pd.concat(frames, ignore_index=True) if frames else empty_prices()
        bars = bars.drop(columns=["adj_close"], errors="ignore")  # Yahoo has none intraday
        bars = bars.drop_duplicates("timestamp", keep="last").reset_index(drop=True)
        acts = pd.concat(actions, ignore_index=True) if actions else empty_actions()
        acts = acts.drop_duplicates(["timestamp", "kind"], keep="last").reset_index(drop=True)
        bars, acts = unapply_splits(bars, acts)
        if lo is not None and len(acts):
            acts = acts[acts["timestamp"] >= lo].reset_index(drop=True)
        bars = validate_prices(bars, ticker=ticker, source=self.name)
        return Fetched(clip(bars, lo, hi), acts)

    def _bad(self, ticker: str, problem: str) -> BadSourceData:
        return BadSourceData(
            f"{self.name}: {problem} (ticker {ticker!r})", ticker=ticker, source=self.name
        )

    def parse(self, payload: Any, ticker: str, *, status: int = 200) -> pd.DataFrame:
        """Bars (as traded) from a chart API JSON ``payload`` (raises TickerNotFound /
        BadSourceData)."""
        return self.parse_with_actions(payload, ticker, status=status)[0]

    def parse_with_actions(
        self, payload: Any, ticker: str, *, status: int = 200
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Bars and actions from a chart API JSON ``payload``. Yahoo's open/high/low/close
        and volume, and its dividend amounts, are adjusted for the splits up to the
        response; the splits in ``events.splits`` are un-applied, so the bars are as traded
        and the dividends as paid (docs/sources.md)."""
        chart = payload.get("chart") if isinstance(payload, dict) else None
        if not isinstance(chart, dict):
            raise self._bad(ticker, "response has no 'chart' object")
        error = chart.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("description") if isinstance(error, dict) else error
            if code == "Not Found" or status == 404:
                raise TickerNotFound(
                    f"{self.name}: unknown symbol {ticker!r}: {text}",
                    ticker=ticker,
                    source=self.name,
                )
            raise self._bad(ticker, f"chart error {code}: {text}")
        results = chart.get("result")
        if not results:
            if status == 404:
                raise TickerNotFound(
                    f"{self.name}: unknown symbol {ticker!r}", ticker=ticker, source=self.name
                )
            raise self._bad(ticker, "chart.result is empty")
        result = results[0]
        if not isinstance(result, dict):
            raise self._bad(ticker, "chart.result[0] is not an object")
        self._check_symbol(result.get("meta"), ticker)
        try:
            actions = _events(result.get("events"), result.get("meta") or {}, ticker)
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
            problem = f"malformed chart events: {type(exc).__name__}: {exc}"
            raise self._bad(ticker, problem) from exc
        stamps = result.get("timestamp") or []
        if not stamps:
            return empty_prices(adj_close=True), actions
        try:
            indicators = result["indicators"]
            quote = indicators["quote"][0]
            columns = {c: _floats(quote.get(c), len(stamps), c) for c in _QUOTE}
            adj_list = indicators.get("adjclose") or [{}]
            adj = _floats(adj_list[0].get("adjclose"), len(stamps), "adjclose")
            epochs = np.asarray(stamps, dtype="int64")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            problem = f"malformed chart result: {type(exc).__name__}: {exc}"
            raise self._bad(ticker, problem) from exc
        keep = ~np.isnan(np.column_stack([columns[c] for c in _PRICES])).any(axis=1)
        if not keep.all():
            log.debug("%s: dropped %d null bars for %r", self.name, int((~keep).sum()), ticker)
        if self.interval != "1d":
            # the live bar Yahoo appends is stamped with the current time: off the grid
            keep &= epochs % INTRADAY_GRID[self.interval] == 0
            return self._intraday_frame(ticker, epochs[keep], columns, keep), actions
        dates = session_dates(epochs[keep], result.get("meta") or {})
        volume = columns["volume"][keep]
        frame = pd.DataFrame(
            {
                "ticker": ticker,
                "timestamp": dates,
                "open": columns["open"][keep],
                "high": columns["high"][keep],
                "low": columns["low"][keep],
                "close": columns["close"][keep],
                "volume": np.where(np.isnan(volume), 0.0, volume),
                "adj_close": adj[keep],
            }
        )
        frame, actions = unapply_splits(frame, actions)
        return validate_prices(frame, ticker=ticker, source=self.name), actions

    def _check_symbol(self, meta: Any, ticker: str) -> None:
        """BadSourceData when the answer says it is for another symbol than the one asked
        for (``meta.symbol``; a proxy or cache that mixes up answers must not store MSFT's
        prices as AAPL's). The ticker is sent as given (no mapping: ``BRK-B``, ``^GSPC``,
        ``EURUSD=X`` are Yahoo's own spellings), and Yahoo answers with the symbol in upper
        case, so they compare case-insensitively. An answer without ``meta.symbol`` has
        nothing to check."""
        symbol = meta.get("symbol") if isinstance(meta, dict) else None
        if symbol is None or str(symbol).strip() == "":
            return
        if str(symbol).strip().upper() != ticker.strip().upper():
            raise self._bad(
                ticker,
                f"the response is for symbol {str(symbol)!r} (chart.result[0].meta.symbol), "
                f"not {ticker!r} as asked; is base_url ({self.base_url}) a proxy or cache "
                f"that mixes up answers?",
            )

    def _intraday_frame(
        self, ticker: str, epochs: np.ndarray, columns: dict[str, np.ndarray], keep: np.ndarray
    ) -> pd.DataFrame:
        """Intraday bars at their instants (not yet validated: the chunks are joined and
        their splits un-applied first)."""
        volume = columns["volume"][keep]
        return pd.DataFrame(
            {
                "ticker": ticker,
                "timestamp": pd.to_datetime(epochs, unit="s", utc=True).as_unit("ns"),
                "open": columns["open"][keep],
                "high": columns["high"][keep],
                "low": columns["low"][keep],
                "close": columns["close"][keep],
                "volume": np.where(np.isnan(volume), 0.0, volume),
            }
        )


_PRICES = ("open", "high", "low", "close")


def _not_json(status: int, exc: ValueError, text: str) -> str:
    """The problem of a body that is not JSON, with its HTTP status (a proxy's 404 page is
    not Yahoo's "unknown symbol" answer)."""
    return f"HTTP {status} response is not JSON ({exc}): {text[:100]!r}"


def _events(events: Any, meta: dict[str, Any], ticker: str) -> pd.DataFrame:
    """``events.dividends`` (``amount``) and ``events.splits`` (``numerator`` /
    ``denominator``) as actions, stamped with their session dates like bars."""
    if not events:
        return empty_actions()
    if not isinstance(events, dict):
        raise TypeError(f"events is {type(events).__name__}, not an object")
    epochs: list[int] = []
    kinds: list[str] = []
    values: list[float] = []
    for item in (events.get("dividends") or {}).values():
        epochs.append(int(item["date"]))
        kinds.append("dividend")
        values.append(float(item["amount"]))
    for item in (events.get("splits") or {}).values():
        epochs.append(int(item["date"]))
        kinds.append("split")
        values.append(float(item["numerator"]) / float(item["denominator"]))
    if not epochs:
        return empty_actions()
    dates = session_dates(np.asarray(epochs, dtype="int64"), meta)
    frame = actions_frame(ticker, dates, kinds, values)
    return frame.sort_values(["timestamp", "kind"]).reset_index(drop=True)


_QUOTE = (*_PRICES, "volume")


def _floats(values: Any, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(
            f"{name} has {len(values) if isinstance(values, list) else values!r} "
            f"values for {n} timestamps"
        )
    return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")


def session_dates(epochs: np.ndarray, meta: dict[str, Any]) -> pd.DatetimeIndex:
    """00:00 UTC of each epoch's date in the exchange's time zone."""
    utc = pd.to_datetime(epochs, unit="s", utc=True)
    tz_name = meta.get("exchangeTimezoneName")
    local: pd.DatetimeIndex | None = None
    if isinstance(tz_name, str) and tz_name:
        try:
            local = utc.tz_convert(zoneinfo.ZoneInfo(tz_name)).tz_localize(None)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            log.warning("unknown exchange time zone %r; using gmtoffset", tz_name)
    if local is None:
        offset = int(meta.get("gmtoffset") or 0)
        local = (utc + pd.Timedelta(seconds=offset)).tz_localize(None)
    return local.normalize().tz_localize("UTC").as_unit("ns")
