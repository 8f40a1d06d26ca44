"""Corporate actions in a run: the writer stores the actions that sources delivered with
their bars (``fetch_with_actions``, decision 012) in the ``actions`` table, committed
*before* the batch's bars so that any prices version a reader pins has its actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..schema import Validated
from ..storage import ParquetDB
from .tasks import Outcome


def batch_actions(db: ParquetDB, outcomes: Sequence[Outcome]) -> Validated | None:
    """The actions of the successful outcomes, validated, without those the database
    already holds identically (an update re-fetches its lookback window's actions; only new
    or corrected ones are written). None if nothing is new."""
    parts = [o.actions for o in outcomes if o.ok and o.actions is not None and o.actions.num_rows]
    if not parts:
        return None
    batch = db.validate("actions", pa.concat_tables(parts))
    if "actions" not in db.tables():
        return batch
    stored = db.snapshot("actions").read_arrow(  # new tickers are expected: no warning
        tickers=sorted(set(batch.data.column("ticker").to_pylist())),
        start=pc.min(batch.data.column("timestamp")).as_py(),
    )
    if stored.num_rows == 0:
        return batch
    cols = batch.data.column_names
    new = batch.data.to_pandas()
    old = stored.select(cols).to_pandas()
    merged = new.merge(old, how="left", on=cols, indicator=True)
    keep = (merged["_merge"] == "left_only").to_numpy()
    if not keep.any():
        return None
    return batch.filter(pa.array(keep))


def commit_actions(db: ParquetDB, outcomes: Sequence[Outcome], info: dict[str, Any]) -> int:
    """Write and commit the batch's new actions through the public write door; returns the
    number of rows committed (0: nothing new)."""
    batch = batch_actions(db, outcomes)
    if batch is None or batch.num_rows == 0:
        return 0
    files = db.write_files("actions", batch)
    return db.commit_files("actions", files, info=info).rows
