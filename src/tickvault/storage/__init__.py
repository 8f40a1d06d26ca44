"""The storage engine: immutable Parquet data files plus a commit log."""

from .db import ParquetDB, Snapshot
from .table import CommitResult, StorageOptions

__all__ = ["CommitResult", "ParquetDB", "Snapshot", "StorageOptions"]
