"""Run history: one JSON document per pipeline run under ``<db>/_runs/``.

Each run is written once, atomically (temporary file, then rename to a unique name), so
concurrent runs never clobber each other and a reader never sees half a record.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from .log import now_iso

RUNS_DIR = "_runs"


def record_run(root: Path, run: dict[str, Any]) -> str:
    """Store one run record; returns its id. ``run`` must be JSON-serialisable."""
    folder = root / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    run_id = str(run.get("run_id") or uuid.uuid4().hex[:12])
    stamp = str(run.get("finished") or run.get("started") or now_iso())
    safe = stamp.replace(":", "").replace("-", "").replace(".", "")
    doc = {**_who(), **run, "run_id": run_id}
    data = json.dumps(doc, default=str, separators=(",", ":")).encode()
    tmp = folder / f".{run_id}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / f"{safe}-{run_id}.json")
    return run_id


def _who() -> dict[str, Any]:
    """Who ran it: user, host and process (a run record says who, when, what, result)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def list_runs(root: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Run records, newest first."""
    folder = root / RUNS_DIR
    try:
        names = sorted((n for n in os.listdir(folder) if n.endswith(".json")), reverse=True)
    except FileNotFoundError:
        return []
    out = []
    for name in names[:limit] if limit else names:
        try:
            with open(folder / name, "rb") as fh:
                out.append(json.loads(fh.read()))
        except (OSError, ValueError):
            continue
    return out
