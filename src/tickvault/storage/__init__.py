"""The storage engine: immutable Parquet data files plus a commit log, all through a Store."""

from .db import ParquetDB, Snapshot, database_exists
from .maintenance import RepairReport, VacuumReport
from .options import StorageOptions
from .state import FileInfo
from .store import LocalStore, MemoryStore, Store
from .table import CommitResult, committed
from .verify import Problem, VerifyReport

__all__ = [
    "CommitResult",
    "FileInfo",
    "LocalStore",
    "MemoryStore",
    "ParquetDB",
    "Problem",
    "RepairReport",
    "Snapshot",
    "StorageOptions",
    "Store",
    "VacuumReport",
    "VerifyReport",
    "committed",
    "database_exists",
]
