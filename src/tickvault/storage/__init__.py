"""The storage engine: immutable Parquet data files plus a commit log, all through a Store."""

from .db import ParquetDB, Snapshot
from .maintenance import Problem, RepairReport, VacuumReport, VerifyReport
from .options import StorageOptions
from .state import FileInfo
from .store import LocalStore, MemoryStore, Store
from .table import CommitResult, committed

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
]
