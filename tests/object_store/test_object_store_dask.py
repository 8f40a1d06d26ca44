"""``db.to_dask`` on a real ``dask.distributed.LocalCluster`` (worker processes) over a
database in a SeaweedFS bucket: the partitions are read on the workers through the pickled
database handle (its storage options; the workers have no AWS variables) and hold exactly
the rows of ``read_table`` at the pinned version, daily and intraday."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from helpers.seaweed import BUCKET
from tickvault import ParquetDB, fetch_and_write

pytestmark = [pytest.mark.s3, pytest.mark.cluster]


def key_sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["ticker", "timestamp"]).reset_index(drop=True)


def _worker_sees_no_aws_variables() -> list[str]:
    """The variables that would reach the bucket without the handle's storage options."""
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    return sorted(k for k in names if k in os.environ)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_to_dask_on_a_local_cluster_reads_a_bucket_like_read_table(seaweed, client: Any) -> None:
    url = f"s3://{BUCKET}/to-dask-{uuid.uuid4().hex[:8]}"
    db = ParquetDB(url, storage_options=seaweed, auto_compact=False)
    fetch_and_write(["AAPL", "MSFT"], "demo", db, start="2024-01-02", end="2024-06-28")
    db.compact()
    fix = db.read_table(tickers="AAPL", start="2024-03-01", end="2024-03-29")
    db.upsert_prices(fix.assign(close=fix["close"] * 1.01, high=fix["high"] * 1.01))
    fetch_and_write(["IBM"], "demo", db, start="2024-05-01", end="2024-06-28")
    fetch_and_write(["AAPL"], "demo", db, interval="5m", start="2024-06-03", end="2024-06-05")
    workers = client.scheduler_info()["workers"]
    assert client.run(_worker_sees_no_aws_variables) == {w: [] for w in workers}

    daily = db.to_dask()
    assert daily.npartitions >= 3  # whole files, the corrected file's rest, the merged part
    version = db.version
    db.upsert_prices(fix.assign(close=1.0, high=1.0, low=1.0, open=1.0))  # after the pin
    got = key_sorted(client.compute(daily).result())
    want = db.read_table(version=version)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert set(got["ticker"]) == {"AAPL", "IBM", "MSFT"} and (got["close"] != 1.0).all()

    minutes = db.to_dask("prices", interval="5m")
    got = key_sorted(client.compute(minutes).result())
    want = db.read_table("prices", interval="5m")
    assert len(got) == 3 * 78
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    db.close()
