"""tickvault: a Parquet market-data store that cannot lose or corrupt data.

The public surface is exactly ``__all__``. Importing tickvault has no side effects; the
pipeline (Dask) and freshness (exchange calendars) are imported on first use. (No submodule
shares a name with a public function: importing ``tickvault.<name>`` would replace the
function with the module.)
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .errors import (
    BadSourceData,
    BadTimeBound,
    BucketNotFound,
    CommitConflict,
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    MissingCredentials,
    NewerFormat,
    ObjectStoreError,
    ObjectStorePermissionError,
    ObjectStoreUnavailable,
    RateLimited,
    SourceError,
    SourceUnavailable,
    StorageError,
    StorageFull,
    TableNotFound,
    TickerNotFound,
    TickvaultError,
    TransientSourceError,
    UnknownTicker,
    ValidationError,
    VersionNotFound,
    VersionUnavailable,
)
from .storage import (
    CommitResult,
    ParquetDB,
    RepairReport,
    Snapshot,
    StorageOptions,
    VacuumReport,
    VerifyReport,
)

if _TYPE_CHECKING:
    from .data_freshness import freshness, freshness_summary, get_price_data_freshness
    from .parquet_import import ImportReport, import_parquet
    from .pipeline import Progress, RunReport, fetch_and_write, update
    from .sources import RateLimit, RetryPolicy, available_sources, get_source, register_source

__version__ = "0.1.0"

_LAZY = {
    "fetch_and_write": "tickvault.pipeline",
    "update": "tickvault.pipeline",
    "RunReport": "tickvault.pipeline",
    "Progress": "tickvault.pipeline",
    "freshness": "tickvault.data_freshness",
    "freshness_summary": "tickvault.data_freshness",
    "get_price_data_freshness": "tickvault.data_freshness",
    "get_source": "tickvault.sources",
    "available_sources": "tickvault.sources",
    "register_source": "tickvault.sources",
    "RetryPolicy": "tickvault.sources",
    "RateLimit": "tickvault.sources",
    "import_parquet": "tickvault.parquet_import",
    "ImportReport": "tickvault.parquet_import",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tickvault' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BadSourceData",
    "BadTimeBound",
    "BucketNotFound",
    "CommitConflict",
    "CommitResult",
    "ConfigError",
    "CorruptDatabaseError",
    "DatabaseNotFound",
    "ImportReport",
    "MissingCredentials",
    "NewerFormat",
    "ObjectStoreError",
    "ObjectStorePermissionError",
    "ObjectStoreUnavailable",
    "ParquetDB",
    "Progress",
    "RateLimit",
    "RateLimited",
    "RepairReport",
    "RetryPolicy",
    "RunReport",
    "Snapshot",
    "SourceError",
    "SourceUnavailable",
    "StorageError",
    "StorageFull",
    "StorageOptions",
    "TableNotFound",
    "TickerNotFound",
    "TickvaultError",
    "TransientSourceError",
    "UnknownTicker",
    "VacuumReport",
    "ValidationError",
    "VerifyReport",
    "VersionNotFound",
    "VersionUnavailable",
    "__version__",
    "available_sources",
    "fetch_and_write",
    "freshness",
    "freshness_summary",
    "get_price_data_freshness",
    "get_source",
    "import_parquet",
    "register_source",
    "update",
]
