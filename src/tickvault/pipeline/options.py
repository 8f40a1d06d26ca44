"""How a pipeline run is carried out: one frozen value shared by ``fetch_and_write`` and
``update`` (and the CLI, whose option names are the same)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..sources.policy import RetryPolicy
from .report import Progress
from .schedulers import check_workers

DEFAULT_BATCH_ROWS = 250_000
DEFAULT_BATCH_SECONDS = 10.0

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Scheduling, batching and reporting options of a run (see :func:`fetch_and_write`)."""

    scheduler: Any = "threads"
    n_workers: int | None = None
    progress: bool = False
    batch_rows: int = DEFAULT_BATCH_ROWS
    batch_seconds: float = DEFAULT_BATCH_SECONDS
    parallel_write: bool = False
    retry: RetryPolicy | None = None
    on_progress: ProgressCallback | None = None
    chunk_size: int | None = None
    cluster_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_workers(self.n_workers)
        object.__setattr__(self, "retry", RetryPolicy.coerce(self.retry, "retry"))
        if self.batch_rows < 1:
            raise ConfigError(f"batch_rows must be >= 1, got {self.batch_rows!r}")
        if self.batch_seconds <= 0:
            raise ConfigError(f"batch_seconds must be > 0, got {self.batch_seconds!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {self.chunk_size!r}")
