"""The commit protocol: how written data files become a version of a table.

A commit writes nothing but one log entry. Its data files are already durable under unique
names (:meth:`Table.write_files <tickvault.storage.core.table.Table.write_files>`); the
entry that adds them (and, for compaction and repair, removes others) is published with
an exclusive create (:meth:`LogStore.publish <tickvault.storage.core.log.LogStore.publish>`,
i.e. :meth:`Store.put_if_absent <tickvault.storage.core.store.Store.put_if_absent>`), so
two writers can never both publish version N: the loser re-reads the log and retries as
N+1 (decision 001).

On object storage an answer can be lost after the put landed (a time-out, a 5xx): such a
version is *unsure*, and the next attempt first reads the log back looking for this
commit's ``commit_id`` — a commit is never published twice and never lost (decision 009).

An exception that escapes after the entry was (or may have been) published is marked with
:data:`COMMITTED_ATTR` (see :func:`committed`): its files belong to the table and a caller
cleaning up after a failure must not delete them.

Every ``checkpoint_interval`` versions the publisher also writes a checkpoint (the full
state), so opening a table reads a bounded number of entries.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import CommitConflict, ObjectStoreError, ObjectStoreUnavailable, StorageError
from ...times import now_iso
from .state import FORMAT_VERSION, FileInfo, TableState
from .table import Table

log = logging.getLogger(__name__)

#: how long one commit keeps retrying lost races before it gives up
MAX_COMMIT_SECONDS = 600.0

#: the attribute set on an exception that escaped a commit whose entry was published: the
#: version, or -1 when an object store's answer was lost and it may have been published
COMMITTED_ATTR = "tickvault_committed"


@dataclass(frozen=True)
class CommitResult:
    """What one commit published."""

    table: str
    version: int
    rows: int
    files: tuple[str, ...] = ()
    operation: str = "upsert"

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "version": self.version,
            "rows": self.rows,
            "files": list(self.files),
            "operation": self.operation,
        }


def committed(exc: BaseException) -> bool:
    """Did ``exc`` interrupt a commit after its log entry was published (or may it have,
    when an object store's answer was lost)? Then the commit's files must be kept."""
    return getattr(exc, COMMITTED_ATTR, None) is not None


def _mark_committed(exc: BaseException, version: int) -> None:
    setattr(exc, COMMITTED_ATTR, version)


def ensure_created(t: Table) -> None:
    """Publish version 0 of ``t`` (its key and columns) unless the table exists."""
    if t.log.exists():
        return
    entry = {
        "operation": "create",
        "timestamp": now_iso(),
        "meta": {
            "table": t.name,
            "key": list(t.schema.key),
            "columns": [[c.name, str(c.type)] for c in t.schema.columns],
            "format": FORMAT_VERSION,
        },
    }
    try:
        t.log.publish(0, entry)
    except ObjectStoreError as exc:  # an answer lost: fine if some create landed
        if not (exc.ambiguous and t.log.exists()):
            raise


def commit(
    t: Table,
    *,
    operation: str,
    add: list[FileInfo],
    remove: Sequence[str] = (),
    info: dict[str, Any] | None = None,
    prepare: Callable[[TableState, int], None] | None = None,
) -> int:
    """Publish one log entry of ``t`` adding ``add`` and removing ``remove``; return its
    version. ``prepare(state, version)`` runs before each attempt against the state the
    entry will follow: it may set levels or raise CommitConflict to abandon the commit
    (compaction, when another commit removed one of its inputs)."""
    ensure_created(t)
    if add:
        # the new files must be durable before a log entry refers to them
        t.store.flush(t.name)
    deadline = time.monotonic() + MAX_COMMIT_SECONDS
    attempt = 0
    commit_id = uuid.uuid4().hex
    # versions where our entry may have landed without us knowing (decision 009)
    unsure: list[int] = []
    while True:
        try:
            state = t.refresh()
            mine = t.log.find_commit(commit_id, unsure, state.version)
            if mine is None:  # never fill a gap in the log (decision 001, gaps)
                t.log.check_no_gap(state.version + 1)
        except BaseException as exc:
            if unsure:  # our entry may be published: its files must not be deleted
                _mark_committed(exc, -1)
            raise
        if mine is not None:
            return _published(t, mine, None)
        version = state.version + 1
        missing = [f.path for f in add if not t.store.exists(t.key(f.path))]
        if missing:  # never publish a reference to a file that is gone
            raise StorageError(
                f"{t.name}: data file(s) {missing[:3]} disappeared before they were "
                f"committed (was `vacuum` run with a retention shorter than a commit?)"
            )
        if prepare is not None:
            try:
                prepare(state, version)
            except BaseException as exc:  # a refusal (a conflict, a source check) after an
                if unsure:  # unsure publish: our entry may yet land, its files must stay
                    _mark_committed(exc, -1)
                raise
        for f in add:
            if f.seq < 0 or operation == "upsert":
                f.seq = version
        entry = {
            "operation": operation,
            "timestamp": now_iso(),
            "commit_id": commit_id,
            "add": [f.to_json() for f in add],
            "remove": list(remove),
            "info": {
                **(info or {}),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "attempts": attempt + 1,
            },
        }
        try:
            won = t.log.publish(version, entry)
        except ObjectStoreError as exc:
            if not exc.ambiguous or isinstance(exc, ObjectStoreUnavailable):
                # refused (a permission error: nothing landed, fail at once), or the store
                # kept failing for the whole retry budget; the files are kept if an entry
                # of ours may have landed (a delayed request may still land it)
                if exc.ambiguous or unsure:
                    _mark_committed(exc, -1)
                raise
            log.info("%s: publishing version %d was ambiguous (%s)", t.name, version, exc)
            won = False
            unsure.append(version)  # the next refresh reads it back
        else:
            if not won and t.store.ambiguous_creates:
                unsure.append(version)  # "exists" may be our own retried create
        if won:
            return _published(t, version, entry)
        attempt += 1
        if time.monotonic() > deadline:
            raise CommitConflict(
                f"{t.name}: could not publish a commit after {attempt} attempts "
                f"(other writers kept winning)"
            )
        time.sleep(random.uniform(0, min(0.05, 0.0005 * 2 ** min(attempt, 7))))


def _published(t: Table, version: int, entry: dict[str, Any] | None) -> int:
    """Bookkeeping after our entry became ``version``."""
    try:
        if entry is not None:
            t.advance(version, entry)
        if version % t.opts.checkpoint_interval == 0:
            _checkpoint(t, version)
    except BaseException as exc:  # e.g. Ctrl-C during the checkpoint
        # the entry is published: its files belong to the table now, and a
        # caller cleaning up after a failed commit must not delete them
        _mark_committed(exc, version)
        raise
    return version


def _checkpoint(t: Table, version: int) -> None:
    try:
        state = t.state_at(version)
        t.log.write_checkpoint(state)
    except (OSError, StorageError) as exc:  # a checkpoint is an optimisation only
        log.warning("%s: could not write checkpoint %d: %s", t.name, version, exc)
