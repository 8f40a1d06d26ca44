"""Where prices come from: the source contract, built-in sources and the registry.

>>> from tickvault.sources import get_source
>>> demo = get_source("demo")
>>> demo.fetch("AAPL", "2024-01-02", "2024-01-05").shape
(4, 7)

See ``docs/sources.md`` for every source, its options and how to write a plugin.
"""

from __future__ import annotations

from .base import (
    ENTRY_POINT_GROUP,
    PRICE_COLUMNS,
    CallableSource,
    Source,
    TimeLike,
    as_source,
    available_sources,
    empty_prices,
    get_source,
    is_synthetic,
    register_source,
    unregister_source,
    validate_prices,
)
from .demo import DemoSource
from .files import CsvSource, FileSource, ParquetSource
from .policy import RateLimit, RetryPolicy, TokenBucket

__all__ = [
    "ENTRY_POINT_GROUP",
    "PRICE_COLUMNS",
    "CallableSource",
    "CsvSource",
    "DemoSource",
    "FileSource",
    "ParquetSource",
    "RateLimit",
    "RetryPolicy",
    "Source",
    "TimeLike",
    "TokenBucket",
    "as_source",
    "available_sources",
    "empty_prices",
    "get_source",
    "is_synthetic",
    "register_source",
    "unregister_source",
    "validate_prices",
]
