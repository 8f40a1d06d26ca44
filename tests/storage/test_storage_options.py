"""ParquetDB options: what is accepted, what is rejected and how the error reads."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.storage_model import Y2020, bars
from tickvault import ParquetDB, StorageOptions


@pytest.mark.parametrize(
    "opts",
    [
        {"l1_merge_ratio": 0},  # always merge level 0 into level 1
        {"target_file_rows": np.int64(1000)},  # an integer from numpy
        {"compression": None},  # pyarrow: uncompressed
        {"compression": "lz4_raw"},  # a pyarrow Parquet codec
    ],
    ids=["ratio0", "np-int", "none", "lz4_raw"],
)
def test_valid_options_are_accepted(tmp_path, opts):
    db = ParquetDB(tmp_path / "db", fsync=False, **opts)
    db.upsert_prices(bars([("A", Y2020, 1.0), ("B", Y2020, 2.0)]))
    assert len(db.read_table()) == 2


def test_documented_options_are_still_accepted():
    StorageOptions(
        fsync=True,
        compression="lz4",
        target_file_rows=262144,
        min_row_group_rows=1024,
        max_row_group_rows=131072,
        row_group_years=3,
        checkpoint_interval=25,
        auto_compact=True,
        l0_max_files=4,
        l1_merge_ratio=0.05,
    )
    StorageOptions(compression="none", row_group_years=0, target_file_rows=1)
    StorageOptions(compression="ZSTD", l1_merge_ratio=1)


def test_unknown_compression_is_rejected_when_the_database_is_opened(tmp_path):
    from tickvault.errors import ConfigError

    with pytest.raises(ConfigError, match="compression='no-such-codec'"):
        ParquetDB(tmp_path / "db", compression="no-such-codec")
    with pytest.raises(ConfigError, match="target_file_rows=0"):
        ParquetDB(tmp_path / "db", target_file_rows=0)
    with pytest.raises(ConfigError, match="fsync"):
        ParquetDB(tmp_path / "db", fsync="yes")
