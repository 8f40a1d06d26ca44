"""Run history: one JSON document per pipeline run under ``<db>/_runs/``.

Each run is written once, atomically, under a unique name (:meth:`Store.put`), so
concurrent runs never clobber each other and a reader never sees half a record.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from typing import Any

from ...times import now_iso
from .store import Store

RUNS_DIR = "_runs"

#: per-ticker results kept in a run record: the failures first, then a sample of the rest
MAX_DETAIL = 200
#: ``errors`` entries kept in a run record (the first, by ticker)
MAX_ERRORS = 200
#: run records kept: a new one deletes the oldest beyond this many (a nightly job keeps
#: about four years; a record is at most ~35 KB, so the folder stays under ~35 MB)
MAX_RUNS = 1000


def record_run(store: Store, run: dict[str, Any]) -> str:
    """Store one run record; returns its id. ``run`` must be JSON-serialisable. A run of
    many tickers is summarised (:func:`bounded`): a record stays small, so the pages and
    commands that read them stay fast."""
    run_id = str(run.get("run_id") or uuid.uuid4().hex[:12])
    stamp = str(run.get("finished") or run.get("started") or now_iso())
    safe = stamp.replace(":", "").replace("-", "").replace(".", "")
    doc = {**_who(), **bounded(run), "run_id": run_id}
    data = json.dumps(doc, default=str, separators=(",", ":")).encode()
    store.put(f"{RUNS_DIR}/{safe}-{run_id}.json", data)
    _prune(store)
    return run_id


def _prune(store: Store) -> None:
    """Delete the oldest records beyond :data:`MAX_RUNS` (names sort by time)."""
    names = sorted(n for n in store.list(RUNS_DIR) if n.endswith(".json"))
    for name in names[: max(0, len(names) - MAX_RUNS)]:
        store.delete(f"{RUNS_DIR}/{name}")


def bounded(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` with its per-ticker detail summarised beyond the bounds: ``tickers`` keeps
    :data:`MAX_DETAIL` results (failures first, then an even sample of the others) with
    ``ticker_counts`` (per status, of all) and ``tickers_omitted``; ``errors`` keeps the
    first :data:`MAX_ERRORS` with ``errors_omitted``. The run's counts (``total``,
    ``failed``, ...) are the pipeline's own and stay exact. A small run is unchanged."""
    out = dict(run)
    tickers = run.get("tickers")
    if isinstance(tickers, dict) and len(tickers) > MAX_DETAIL:
        counts: dict[str, int] = {}
        failed: list[str] = []
        others: list[str] = []
        for name, result in tickers.items():
            status = str(result.get("status")) if isinstance(result, dict) else "?"
            counts[status] = counts.get(status, 0) + 1
            (failed if status == "failed" else others).append(name)
        keep = failed[:MAX_DETAIL]
        room = MAX_DETAIL - len(keep)
        if room > 0 and others:
            step = max(1, len(others) // room)
            keep += others[::step][:room]
        out["tickers"] = {t: tickers[t] for t in sorted(keep)}
        out["ticker_counts"] = dict(sorted(counts.items()))
        out["tickers_omitted"] = len(tickers) - len(keep)
    errors = run.get("errors")
    if isinstance(errors, dict) and len(errors) > MAX_ERRORS:
        names = sorted(errors)[:MAX_ERRORS]
        out["errors"] = {t: errors[t] for t in names}
        out["errors_omitted"] = len(errors) - len(names)
    return out


def _who() -> dict[str, Any]:
    """Who ran it: user, host and process (a run record says who, when, what, result)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def list_runs(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """Run records, newest first: the newest ``limit`` (None: all; 0: none)."""
    names = sorted((n for n in store.list(RUNS_DIR) if n.endswith(".json")), reverse=True)
    out = []
    for name in names if limit is None else names[:limit]:
        try:
            out.append(json.loads(store.get(f"{RUNS_DIR}/{name}")))
        except (OSError, ValueError):
            continue
    return out
