"""Checks on what a source answered, shared by bars and corporate actions: a row for
another ticker than the one asked for is bad source data, never written; so is a bar in
the future (:mod:`tickvault.future_bars`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..convert import TIMESTAMP_TYPE
from ..errors import BadSourceData, ValidationError
from ..future_bars import DEFAULT_MAX_FUTURE, limit, reject_future
from ..tickers import normalize


def reject_other_tickers(
    column: pa.Array | pa.ChunkedArray | pd.Series, ticker: str, source: str
) -> None:
    """Raise BadSourceData if a row of a source's answer is for another ticker than the one
    it was asked for (tickers compare upper case, :mod:`tickvault.tickers`)."""
    ticker = normalize(ticker)
    if isinstance(column, pd.Series):
        column = column.astype(object).where(column.isna(), column.astype(str).str.upper())
        if not len(column) or not bool((column != ticker).any()):
            return
        other = column[column != ticker].iloc[0]
    else:
        if not len(column):
            return
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.utf8_upper(column)
        differs = pc.fill_null(pc.not_equal(column, ticker), True)
        if not pc.any(differs).as_py():
            return
        other = pc.filter(column, differs)[0].as_py()
    raise BadSourceData(
        f"source {source!r} returned rows for ticker {other!r} when asked for {ticker!r}",
        ticker=ticker,
        source=source,
    )


def reject_future_stamps(stamps: np.ndarray, ticker: str, source: str, hint: str = "") -> None:
    """BadSourceData naming the first bar later than now + one day, for sources that build
    their bars without the schema validation (``stamps``: datetime64[ns] UTC, sorted)."""
    latest = limit(DEFAULT_MAX_FUTURE)
    if not len(stamps) or latest is None or stamps[-1] <= latest.tz_localize(None).to_datetime64():
        return
    table = pa.table(
        {
            "ticker": pa.array([ticker] * len(stamps), pa.string()),
            "timestamp": pa.array(stamps.view("int64"), pa.int64()).cast(TIMESTAMP_TYPE),
        }
    )
    try:
        reject_future(table, "timestamp", ("ticker", "timestamp"), DEFAULT_MAX_FUTURE)
    except ValidationError as exc:
        raise BadSourceData(
            f"source {source!r} returned bad data for {ticker!r}: {exc}{hint}",
            ticker=ticker,
            source=source,
        ) from exc
