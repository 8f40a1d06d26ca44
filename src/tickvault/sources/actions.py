"""Corporate actions (splits and dividends) delivered by sources alongside bars.

A source that knows a ticker's actions offers, besides ``fetch``,

* ``fetch_with_actions(ticker, start=None, end=None) -> Fetched`` — the bars that ``fetch``
  returns and the actions in the same range, from the same request.

The pipeline calls it when a source has it (defined at least as deep in the class
hierarchy as ``fetch``), stores the actions in the ``actions`` table in the same run and
commits them before the bars (decision 012). ``fetch`` keeps returning a DataFrame of bars,
so every existing caller and every user-written source keeps working. A plain callable may
also return a :class:`Fetched` instead of a frame.

Actions: ``ticker, timestamp, kind, value`` — ``kind`` ``"split"`` with ``value`` = new
shares per old share (4.0 for 4-for-1), or ``"dividend"`` with ``value`` = cash per share
as paid, at the ex-date. Bars are stored as traded; :func:`unapply_splits` turns bars and
dividends that a provider reports split-adjusted (Yahoo) back into as-traded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import BadSourceData, ValidationError
from ..schema import ACTIONS
from .checks import reject_other_tickers

ACTION_COLUMNS = ("ticker", "timestamp", "kind", "value")


@dataclass(frozen=True)
class Fetched:
    """What ``fetch_with_actions`` returns: ``bars`` (the prices columns, as ``fetch``
    returns them) and ``actions`` (``ticker, timestamp, kind, value``; None: none)."""

    bars: Any
    actions: Any = None


def empty_actions() -> pd.DataFrame:
    """An empty frame with the actions columns and dtypes."""
    return ACTIONS.empty().to_pandas()


def actions_frame(
    ticker: str,
    timestamps: Any,
    kinds: Any,
    values: Any,
) -> pd.DataFrame:
    """An actions frame for one ticker (timestamps UTC)."""
    stamps = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)).as_unit("ns")
    return pd.DataFrame(
        {
            "ticker": ticker,
            "timestamp": stamps,
            "kind": pd.array(list(kinds), dtype=object),
            "value": np.asarray(values, dtype="float64"),
        },
        columns=list(ACTION_COLUMNS),
    )


def validate_actions(data: Any, *, ticker: str, source: str) -> pa.Table:
    """``data`` checked against the actions schema (a missing ticker column is filled in);
    BadSourceData naming the ticker, the source and the row otherwise."""
    if data is None:
        return ACTIONS.empty()
    if isinstance(data, pd.DataFrame):
        if "ticker" not in data.columns:
            data = data.assign(ticker=ticker)
        reject_other_tickers(data["ticker"], ticker, source)
    elif isinstance(data, pa.Table):
        if "ticker" not in data.column_names:
            data = data.append_column("ticker", pa.repeat(ticker, data.num_rows))
        reject_other_tickers(data.column("ticker"), ticker, source)
    else:
        raise BadSourceData(
            f"source {source!r} returned actions of type {type(data).__name__} for "
            f"{ticker!r}; expected a pandas DataFrame or pyarrow Table",
            ticker=ticker,
            source=source,
        )
    try:
        return ACTIONS.validate(data)
    except ValidationError as exc:
        raise BadSourceData(
            f"source {source!r} returned a bad corporate action for {ticker!r}: {exc}",
            ticker=ticker,
            source=source,
        ) from exc


def split_factors_after(stamps: np.ndarray, split_ts: np.ndarray, ratios: np.ndarray) -> Any:
    """For each of ``stamps`` (ns), the product of the split ratios strictly after it."""
    if len(split_ts) == 0:
        return np.ones(len(stamps))
    order = np.argsort(split_ts, kind="stable")
    split_ts, ratios = split_ts[order], ratios[order]
    suffix = np.ones(len(ratios) + 1)
    suffix[:-1] = np.cumprod(ratios[::-1])[::-1]
    return suffix[np.searchsorted(split_ts, stamps, side="right")]


def unapply_splits(bars: pd.DataFrame, actions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars and dividends as traded and paid, from ones adjusted for the splits in
    ``actions`` (as Yahoo reports them): prices before a split are multiplied by the
    split ratios after them and volumes divided by them; dividends likewise multiplied.
    ``adj_close`` is left as reported."""
    if actions is None or len(actions) == 0:
        return bars, actions
    is_split = (actions["kind"] == "split").to_numpy()
    if not is_split.any():
        return bars, actions
    split_ts = pd.DatetimeIndex(actions["timestamp"]).as_unit("ns").asi8[is_split]
    ratios = actions["value"].to_numpy(dtype="float64")[is_split]
    out = bars.copy()
    if len(out):
        f = split_factors_after(
            pd.DatetimeIndex(out["timestamp"]).as_unit("ns").asi8, split_ts, ratios
        )
        for c in ("open", "high", "low", "close"):
            out[c] = out[c].to_numpy(dtype="float64") * f
        out["volume"] = out["volume"].to_numpy(dtype="float64") / f
    acts = actions.copy()
    div = ~is_split
    if div.any():
        stamps = pd.DatetimeIndex(acts["timestamp"]).as_unit("ns").asi8[div]
        values = acts["value"].to_numpy(dtype="float64").copy()
        values[div] = values[div] * split_factors_after(stamps, split_ts, ratios)
        acts["value"] = values
    return out, acts


def unpack(result: Any, *, ticker: str, source: str) -> tuple[Any, pa.Table | None]:
    """A source's answer as ``(bars, actions)``: a :class:`Fetched` is split (its actions
    validated), anything else is bars alone (actions None)."""
    if isinstance(result, Fetched):
        acts = validate_actions(result.actions, ticker=ticker, source=source)
        return result.bars, acts
    return result, None
