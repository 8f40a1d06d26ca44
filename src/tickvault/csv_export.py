"""CSV output that is safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage
return as a formula ("CSV injection"; the characters are
:data:`tickvault.schema.FORMULA_START`). Every CSV that tickvault writes — ``tickvault query
--format csv`` and the dashboard's ``bars.csv`` — goes through :func:`to_csv`, which puts an
apostrophe before such a text cell, so the spreadsheet shows it as text. Numbers are never
changed: a negative number stays a number. Tickers cannot start with those characters (the
symbol rule in :mod:`tickvault.schema`), so this guards databases written before that rule
and any other text column.
"""

from __future__ import annotations

from typing import IO

import pandas as pd

from .formats import whole_counts
from .schema import FORMULA_START

__all__ = ["DATE_FORMAT", "neutralise_formulas", "to_csv"]

#: Timestamps in CSV output: ISO 8601 with the UTC offset.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # ISO 8601 in UTC, as in JSON output


def _is_text(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.StringDtype):
        return True
    return s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "string"


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [name for name in df.columns if _is_text(df[name])]


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an apostrophe before every text cell that starts with a formula
    character; ``df`` itself (not a copy) when there is none."""
    out: pd.DataFrame | None = None
    for name in _text_columns(df):
        s = df[name]
        formula = s.str.startswith(tuple(FORMULA_START), na=False).astype(bool)
        if not formula.any():
            continue
        if out is None:
            out = df.copy()
        out[name] = s.mask(formula, "'" + s)
    return df if out is None else out


def to_csv(df: pd.DataFrame, target: str | IO[str] | None = None, *, header: bool = True) -> str:
    """``df`` as CSV (no index, ISO timestamps), formula cells neutralised; written to
    ``target`` (a path or text stream) if given, else returned ("" when written).
    ``header=False`` leaves out the line of column names (for the later chunks of a CSV
    written in pieces).

    Lines end with ``\n``. Python's CSV writer quotes a cell only for the characters of
    the line ending, so if a text cell holds a carriage return, lines end with ``\r\n``
    instead: that cell is then quoted and cannot start a new row in a spreadsheet."""
    safe = neutralise_formulas(whole_counts(df))  # volume as integers: the column's format
    cr = any(
        bool(safe[name].str.contains("\r", regex=False, na=False).any())
        for name in _text_columns(safe)
    )
    text = safe.to_csv(
        target,
        index=False,
        header=header,
        date_format=DATE_FORMAT,
        lineterminator="\r\n" if cr else "\n",
    )
    return text or ""
