"""The pipeline: parallel fetch on Dask or local executors, one streaming writer, reports.

>>> from tickvault.pipeline import fetch_and_write, update
>>> report = fetch_and_write(["AAPL", "MSFT"], source="demo", db="db")  # doctest: +SKIP
>>> report["written"], report["failed"]                                  # doctest: +SKIP
(2, 0)

See ``docs/pipeline.md``.
"""

from __future__ import annotations

from .options import RunOptions
from .report import Progress, RunReport, TickerResult, run_summary
from .run import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_BATCH_SECONDS,
    completed_tickers,
    fetch_and_write,
    resume_key,
    update,
    update_start,
)
from .schedulers import SCHEDULERS

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_BATCH_SECONDS",
    "SCHEDULERS",
    "Progress",
    "RunOptions",
    "RunReport",
    "TickerResult",
    "completed_tickers",
    "fetch_and_write",
    "resume_key",
    "run_summary",
    "update",
    "update_start",
]
