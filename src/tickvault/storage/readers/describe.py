"""What ``db.history()`` and ``db.info()`` report: a table's versions and a database's
tables, read from the log (data files are opened only where their time ranges overlap)."""

from __future__ import annotations

from typing import Any

from ...formats import iso_utc
from ..core.snapshot import Snapshot
from ..core.table import Table


def history(t: Table, limit: int | None) -> list[dict[str, Any]]:
    """Versions, oldest first: the newest ``limit`` (None: all)."""
    newest = t.refresh().version
    first = 0 if limit is None else max(0, newest - limit + 1)
    out = []
    for v in range(first, newest + 1):
        e = t.log.read_entry(v)
        if e is None:
            continue
        info = e.get("info", {})
        if isinstance(info.get("tickers"), int):  # older upserts summed the count per file
            distinct = _distinct_tickers(e)
            if distinct is not None:
                info = {**info, "tickers": distinct}
        out.append(
            {
                "version": v,
                "timestamp": e.get("timestamp"),
                "operation": e.get("operation"),
                "rows": info.get("rows", sum(a.get("rows", 0) for a in e.get("add", []))),
                "files_added": len(e.get("add", [])),
                "files_removed": len(e.get("remove", [])),
                "info": info,
            }
        )
    return out


def _distinct_tickers(entry: dict[str, Any]) -> int | None:
    """How many distinct tickers the files a commit added hold, from the ticker list the
    log keeps per file: older upserts wrote ``info.tickers`` as the sum over their files
    (20 tickers spread over 3 yearly files counted 60). None if a file's list is not
    inline."""
    names: set[str] = set()
    for added in entry.get("add", []):
        stats = added.get("stats2") or added.get("stats") or {}
        listed = stats.get("tickers")
        if not isinstance(listed, list):
            return None
        names.update(listed)
    return len(names)


def info(path: str, snapshots: dict[str, Snapshot]) -> dict[str, Any]:
    """Per table: version, files, tickers, rows (what a full read returns), stored rows
    (also the superseded copies compaction will drop), bytes and date range."""
    out: dict[str, Any] = {"path": path, "tables": {}}
    for name, snap in snapshots.items():
        wm = snap.watermarks()
        first = snap.first_timestamps()
        out["tables"][name] = {
            "version": snap.version,
            "files": len(snap.files),
            "tickers": len(wm),
            "rows": snap.live_rows(),
            "stored_rows": snap.stored_rows(),
            "bytes": snap.stored_bytes(),
            "first": iso_utc(min(first.values())) if first else None,
            "last": iso_utc(max(wm.values())) if wm else None,
        }
    return out
