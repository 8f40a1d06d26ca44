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


def record_run(store: Store, run: dict[str, Any]) -> str:
    """Store one run record; returns its id. ``run`` must be JSON-serialisable."""
    run_id = str(run.get("run_id") or uuid.uuid4().hex[:12])
    stamp = str(run.get("finished") or run.get("started") or now_iso())
    safe = stamp.replace(":", "").replace("-", "").replace(".", "")
    doc = {**_who(), **run, "run_id": run_id}
    data = json.dumps(doc, default=str, separators=(",", ":")).encode()
    store.put(f"{RUNS_DIR}/{safe}-{run_id}.json", data)
    return run_id


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
