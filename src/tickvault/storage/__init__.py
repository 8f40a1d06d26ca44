"""The storage engine: immutable Parquet data files plus a commit log, all through a Store."""

from .core.commit import CommitResult, committed
from .core.options import StorageOptions
from .core.state import FileInfo
from .core.store import LocalStore, MemoryStore, Store
from .db import ParquetDB, Snapshot, database_exists
from .upkeep.vacuum_repair import RepairReport, VacuumReport
from .upkeep.verify import Problem, VerifyReport

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
