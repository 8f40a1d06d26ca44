"""Corporate actions from files: yfinance-style ``Dividends`` and ``Stock Splits`` columns
next to the bars (0 or empty means none), or a separate actions file (``actions=`` option
of the csv and parquet sources) in that wide layout or a long one (``date, kind, value``),
with a ticker column (``ticker``/``symbol``) when it holds several tickers.

Bad values raise :class:`~tickvault.errors.BadSourceData` naming the file, the line and the
column, like bars do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BadSourceData
from .actions import actions_frame, empty_actions
from .barparser import Rows, _norm, _numbers, _timestamps, missing_problem

_WIDE = {"dividends": "dividend", "dividend": "dividend", "stocksplits": "split",
         "stocksplit": "split", "splits": "split", "split": "split"}  # fmt: skip
_DATE = ("date", "datetime", "timestamp", "exdate")
_KIND = ("kind", "type", "action")
_VALUE = ("value", "amount", "ratio")
_TICKER = ("ticker", "symbol")


def action_columns(header: list[str]) -> list[str]:
    """The columns of ``header`` that actions are read from (wide or long layout)."""
    names = {*_WIDE, *_DATE, *_KIND, *_VALUE, *_TICKER}
    return [c for c in header if _norm(c) in names]


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((c for c in columns if _norm(c) in names), None)


def actions_in_rows(
    rows: Rows,
    ticker: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    *,
    source: str,
    date_format: str | None = None,
) -> pd.DataFrame | None:
    """The actions of one ticker's rows (a bars file or an actions file); None if the
    rows have no action columns."""
    cols = [str(c) for c in rows.frame.columns]
    wide = {c: _WIDE[_norm(c)] for c in cols if _norm(c) in _WIDE}
    kind_col, value_col = _find(cols, _KIND), _find(cols, _VALUE)
    date_col = _find(cols, _DATE)
    if not wide and not (kind_col and value_col):
        return None
    if date_col is None:
        raise BadSourceData(
            f"{rows.file}: actions need a date column; found columns {cols}",
            ticker=ticker,
            source=source,
        )
    if len(rows.frame) == 0:
        return empty_actions()

    def fail(i: int, column: str, problem: str) -> None:
        raise BadSourceData(
            f"{rows.where(i)}, column {column!r}: {problem}", ticker=ticker, source=source
        )

    stamps = _timestamps(rows.frame[date_col], date_col, date_format, fail)
    ns = pd.DatetimeIndex(stamps).as_unit("ns")
    keep = np.ones(len(ns), dtype=bool)
    if lo is not None:
        keep &= np.asarray(ns >= lo)
    if hi is not None:
        keep &= np.asarray(ns <= hi)
    out_ts: list[pd.Timestamp] = []
    kinds: list[str] = []
    values: list[float] = []
    if wide:
        for col, kind in wide.items():
            nums, missing = _numbers(rows.frame[col], col, fail)
            present = keep & ~missing & (nums != 0)
            for i in np.flatnonzero(present):
                out_ts.append(ns[int(i)])
                kinds.append(kind)
                values.append(float(nums[i]))
    else:
        assert kind_col is not None and value_col is not None
        nums, missing = _numbers(rows.frame[value_col], value_col, fail)
        text = rows.frame[kind_col].astype(str).str.strip().str.lower()
        named = text.map({"dividend": "dividend", "dividends": "dividend", "split": "split",
                          "splits": "split", "stock split": "split"})  # fmt: skip
        for i in np.flatnonzero(keep):
            if missing[i]:
                fail(int(i), value_col, missing_problem(rows.frame[value_col].iloc[int(i)]))
            kinds.append(named.iloc[i] if isinstance(named.iloc[i], str) else text.iloc[i])
            out_ts.append(ns[int(i)])
            values.append(float(nums[i]))
    frame = actions_frame(ticker, out_ts, kinds, values)
    return frame.sort_values(["timestamp", "kind"]).reset_index(drop=True)


def ticker_rows(raw: pd.DataFrame, places: np.ndarray, file: Path, ticker: str, unit: str) -> Rows:
    """The rows of ``raw`` for ``ticker`` (all of them without a ticker column)."""
    tcol = _find([str(c) for c in raw.columns], _TICKER)
    if tcol is not None:
        mask = (raw[tcol].astype(str).str.strip().str.upper() == ticker.upper()).to_numpy()
        raw, places = raw.loc[mask], places[mask]
    return Rows(raw, places, file, unit)
