"""The engine's options and what a commit reports."""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ...errors import ConfigError
from ...future_bars import DEFAULT_MAX_FUTURE, max_future_seconds
from .file_writer import ENCODINGS, WriteOptions
from .periods import check_period


@dataclass(frozen=True)
class StorageOptions:
    """Tuning knobs of the storage engine (see docs/decisions/002-storage-layout.md)."""

    fsync: bool = True
    compression: str = "lz4"
    #: how the columns of new files are encoded (decision 020): ``"auto"`` (timestamps and
    #: integers DELTA_BINARY_PACKED, each float column by dictionary where its values
    #: repeat and BYTE_STREAM_SPLIT where they do not), ``"split"`` (every float
    #: BYTE_STREAM_SPLIT) or ``"plain"`` (pyarrow's defaults, files before issue 22);
    #: files of any kind read the same
    encoding: str = "auto"
    target_file_rows: int = 262_144
    min_row_group_rows: int = 1024
    max_row_group_rows: int = 131_072
    row_group_years: int = 5
    checkpoint_interval: int = 25
    auto_compact: bool = True
    l0_max_files: int = 4
    l1_merge_ratio: float = 0.05
    #: how long superseded and orphaned files are kept (seconds, or a timedelta): old
    #: versions stay readable this long, and vacuum's default
    retention: float | dt.timedelta = 3600.0
    #: delete files superseded by compaction once older than ``retention``, automatically
    auto_vacuum: bool = True
    #: the calendar period of level-1 files, for every table: ``"none"``, ``"year"``,
    #: ``"quarter"``, ``"month"`` or ``"day"``; None: each table's own (``"year"`` for
    #: prices). Decision 015.
    period: str | None = None
    #: bars later than now + this (seconds, or a timedelta; None: no limit) are refused
    #: (tickvault.future_bars)
    max_future: float | dt.timedelta | None = DEFAULT_MAX_FUTURE

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, want: str, example: Any) -> ConfigError:
            return ConfigError(f"ParquetDB option {name}={value!r} {want}, e.g. {name}={example!r}")

        for name in ("fsync", "auto_compact", "auto_vacuum"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise bad(name, getattr(self, name), "must be True or False", True)
            object.__setattr__(self, name, bool(getattr(self, name)))
        minimum = {
            "target_file_rows": 1,
            "min_row_group_rows": 1,
            "max_row_group_rows": 1,
            "row_group_years": 0,
            "checkpoint_interval": 1,
            "l0_max_files": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            try:
                number = operator.index(value)  # any integer type, numpy's too
            except TypeError:
                number = None
            if isinstance(value, bool) or number is None or number < low:
                default = getattr(StorageOptions, name)
                raise bad(name, value, f"must be an integer >= {low}", default)
            object.__setattr__(self, name, int(number))
        ratio = self.l1_merge_ratio
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float | np.number)
            or not (ratio >= 0)
        ):
            raise bad("l1_merge_ratio", ratio, "must be a number >= 0", 0.05)
        codec = "none" if self.compression is None else self.compression
        if not isinstance(codec, str):
            raise bad("compression", codec, "must be a codec name", "lz4")
        name = codec.lower()
        known = ("none", "uncompressed", "snappy", "gzip", "brotli", "lz4", "lz4_raw", "zstd")
        if name not in known:
            raise bad("compression", codec, f"is not one of {list(known)}", "lz4")
        if name not in ("none", "uncompressed") and not pa.Codec.is_available(
            "lz4" if name == "lz4_raw" else name
        ):
            raise bad("compression", codec, "is not available in this pyarrow build", "lz4")
        object.__setattr__(self, "compression", name)
        if not isinstance(self.encoding, str) or self.encoding.lower() not in ENCODINGS:
            raise bad("encoding", self.encoding, f"is not one of {list(ENCODINGS)}", "auto")
        object.__setattr__(self, "encoding", self.encoding.lower())
        object.__setattr__(self, "retention", seconds(self.retention, "retention"))
        if self.period is not None:
            object.__setattr__(self, "period", check_period(self.period))
        object.__setattr__(self, "max_future", max_future_seconds(self.max_future))

    @property
    def retention_seconds(self) -> float:
        """``retention`` in seconds (it is normalised to seconds when the options are made:
        a timedelta given is converted once, here, and never again)."""
        r = self.retention
        return r.total_seconds() if isinstance(r, dt.timedelta) else float(r)

    @property
    def write(self) -> WriteOptions:
        return WriteOptions(
            compression=self.compression,
            min_row_group_rows=self.min_row_group_rows,
            max_row_group_rows=self.max_row_group_rows,
            row_group_years=self.row_group_years,
            fsync=self.fsync,
            encoding=self.encoding,
        )


def seconds(value: object, name: str = "retention") -> float:
    """A duration from a timedelta or a number of seconds (>= 0); ConfigError otherwise."""
    if isinstance(value, dt.timedelta):
        out = value.total_seconds()
    elif isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
        out = float(value)
    else:
        raise ConfigError(
            f"{name}={value!r} must be a timedelta or a number of seconds, e.g. {name}=3600"
        )
    if not out >= 0:  # also catches NaN
        raise ConfigError(f"{name}={value!r} must be 0 or more seconds, e.g. {name}=3600")
    return out
