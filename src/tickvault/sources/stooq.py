"""``stooq``: daily bars from the Stooq CSV download.

``GET {base_url}/q/d/l/?s={symbol}&i=d&d1=YYYYMMDD&d2=YYYYMMDD`` returns
``Date,Open,High,Low,Close,Volume`` (indices have no Volume column: volume 0). The body
``No data`` means an unknown symbol (TickerNotFound). Stooq symbols are lower case and US
stocks carry a market suffix (``aapl.us``): pass ``symbol_suffix=".us"`` to add it to
tickers that have no suffix; the rows keep the ticker as asked.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import BadSourceData, ConfigError, RateLimited, TickerNotFound
from ..modes import parse_interval
from .barparser import BarParser, Rows
from .base import TimeLike, bounds, clip, empty_prices
from .http import HttpSource

log = logging.getLogger(__name__)


class StooqSource(HttpSource):
    """``get_source("stooq", base_url=None, rate_limit=1, symbol_suffix=None, ...)``.
    Daily bars only: ``interval`` other than ``"1d"`` is a ConfigError."""

    provider: ClassVar[str] = "stooq"
    default_base_url: ClassVar[str] = "https://stooq.com"
    default_rate_limit: ClassVar[float | None] = 1.0

    #: the only interval Stooq's download gives
    interval: str = "1d"

    def __init__(
        self, *, symbol_suffix: str | None = None, interval: str = "1d", **options: Any
    ) -> None:
        if parse_interval(interval) != "1d":
            raise ConfigError(
                f"stooq gives daily bars only (interval='1d'), not interval={interval!r}; "
                f"for intraday bars use the yahoo, csv, parquet or demo source, e.g. "
                f"`tickvault backfill --source yahoo --interval {interval} AAPL`"
            )
        super().__init__(**options)
        self.symbol_suffix = symbol_suffix

    def symbol(self, ticker: str) -> str:
        if self.symbol_suffix and "." not in ticker:
            ticker = ticker + self.symbol_suffix
        return ticker.lower()

    def fetch(self, ticker: str, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        lo, hi = bounds(start, end)
        if lo is not None and hi is not None and lo > hi:
            return empty_prices()
        params: dict[str, Any] = {"s": self.symbol(ticker), "i": "d"}
        if lo is not None:
            params["d1"] = lo.strftime("%Y%m%d")
        if hi is not None:
            params["d2"] = hi.strftime("%Y%m%d")
        response = self.get("/q/d/l/", params, ticker=ticker)
        return clip(self.parse(response.text, ticker), lo, hi)

    def parse(self, body: str, ticker: str) -> pd.DataFrame:
        """Bars from a Stooq CSV ``body`` (raises TickerNotFound / BadSourceData)."""
        text = body.strip()
        lowered = text.lower()
        if lowered.startswith("no data"):
            raise TickerNotFound(
                f"{self.name}: no data for symbol {self.symbol(ticker)!r} (ticker {ticker!r})",
                ticker=ticker,
                source=self.name,
            )
        if "exceeded the daily hits limit" in lowered:
            raise RateLimited(
                f"{self.name}: daily hits limit exceeded", ticker=ticker, source=self.name
            )
        if not text:  # HttpSource.get refuses an empty body; a blank one is no better
            raise BadSourceData(
                f"{self.name}: the response for {ticker!r} is blank (no CSV header, not 'No data')",
                ticker=ticker,
                source=self.name,
            )
        hint = (
            f"Stooq's download starts with the header {','.join(HEADER)}: is {self.base_url} "
            f"a Stooq server? (A file in another layout is read by the csv source, whose "
            f"columns= option maps its columns.)"
        )
        parser = BarParser(self.name, hint=hint)
        try:
            raw = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False
            )
        except (pd.errors.ParserError, ValueError) as exc:
            raise BadSourceData(
                f"{self.name}: response for {ticker!r} is not CSV: {exc}",
                ticker=ticker,
                source=self.name,
            ) from exc
        raw.columns = [str(c).strip() for c in raw.columns]
        where = Path(f"{self.name} response for {ticker}")
        mapping = parser.mapping(list(raw.columns), where)
        # Stooq's download carries no symbol (``Date,Open,...``), so there is nothing to
        # check the answer against the symbol asked for; a body that does name its symbol
        # (a ``Symbol`` column, as Stooq's quote endpoint has) must name this one
        for column, ours in mapping.items():
            if ours == "ticker":
                self._check_symbols(raw[column], ticker, where)
        mapping = {k: v for k, v in mapping.items() if v != "ticker"}
        rows = Rows(raw.fillna(""), np.arange(2, len(raw) + 2), where, "line")
        return parser.parse(rows, mapping, ticker, None, None)

    def _check_symbols(self, column: pd.Series, ticker: str, where: Path) -> None:
        """BadSourceData naming the first row whose symbol is neither the Stooq symbol
        asked for nor the ticker (case-insensitive; an empty cell names nothing)."""
        asked = {self.symbol(ticker).upper(), ticker.strip().upper()}
        names = column.astype(str).str.strip().str.upper()
        other = (names != "") & ~names.isin(asked)
        if bool(other.any()):
            i = int(np.argmax(other.to_numpy()))
            raise BadSourceData(
                f"{where} line {i + 2}: the response is for symbol {column.iloc[i]!r}, not "
                f"{self.symbol(ticker)!r} as asked (ticker {ticker!r})",
                ticker=ticker,
                source=self.name,
            )


#: the header of Stooq's daily download
HEADER = ("Date", "Open", "High", "Low", "Close", "Volume")
