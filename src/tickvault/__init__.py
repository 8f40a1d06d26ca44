"""tickvault: a Parquet market-data store that cannot lose or corrupt data."""

from .errors import (
    BadSourceData,
    CommitConflict,
    ConfigError,
    CorruptDatabaseError,
    DatabaseNotFound,
    RateLimited,
    SourceError,
    SourceUnavailable,
    StorageError,
    TableNotFound,
    TickerNotFound,
    TickvaultError,
    TransientSourceError,
    ValidationError,
)
from .storage import CommitResult, ParquetDB, Snapshot, StorageOptions

__version__ = "0.1.0"

__all__ = [
    "BadSourceData",
    "CommitConflict",
    "CommitResult",
    "ConfigError",
    "CorruptDatabaseError",
    "DatabaseNotFound",
    "ParquetDB",
    "RateLimited",
    "Snapshot",
    "SourceError",
    "SourceUnavailable",
    "StorageError",
    "StorageOptions",
    "TableNotFound",
    "TickerNotFound",
    "TickvaultError",
    "TransientSourceError",
    "ValidationError",
    "__version__",
]
