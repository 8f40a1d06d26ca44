"""A full disk (or quota) while writing becomes :class:`~tickvault.errors.StorageFull`,
naming the database and what ``vacuum`` could free. The write has cleaned up after itself
by then: nothing of it was committed (issue 15; docs/storage.md, "A full disk")."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from typing import TypeVar

from ...errors import StorageFull, TickvaultError
from ...formats import human_bytes
from ..core.commit import committed
from ..core.table import Table
from .compactor import compactor_for

T = TypeVar("T")


def is_full(exc: BaseException) -> bool:
    """Is ``exc`` a full disk or quota (that did not commit anyway)?"""
    return (
        isinstance(exc, OSError)
        and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        and not committed(exc)
    )


def with_room(t: Table, work: Callable[[], T]) -> T:
    """Run ``work()`` (a write that cleans up after itself when it fails); when the disk is
    full, reclaim what compaction superseded and the retention no longer keeps (the rules of
    the automatic reclamation: files of open snapshots stay) and run it once more if that
    freed anything, or if the disk has more room than at the failure (a compaction that held
    space has ended), before giving up (issue 25 item 6). A compaction of the table running
    in this process is waited for first (it holds the table's run lock)."""
    try:
        return work()
    except OSError as exc:
        if not is_full(exc) or not t.opts.auto_vacuum:
            raise
        before = t.store.free_bytes()
        freed = compactor_for(t).reclaim()
        after = t.store.free_bytes()
        # also retry when a compaction that held space has ended in the meantime
        grew = before is not None and after is not None and after > before
        if not grew and (freed is None or not freed.bytes):
            raise
    return work()


@contextlib.contextmanager
def disk_full_is_typed(table: str, location: str, reclaimable: Callable[[], int]) -> Iterator[None]:
    """Raise StorageFull for ENOSPC/EDQUOT inside the block (unless the commit itself went
    through); ``reclaimable()`` says how many bytes a vacuum with no retention would free."""
    try:
        yield
    except StorageFull:
        raise
    except OSError as exc:
        if not is_full(exc):
            raise
        try:
            free: int | None = reclaimable()
        except (OSError, TickvaultError):
            free = None
        hint = (
            f"`tickvault vacuum --retention 0 --apply` would free {human_bytes(free)} now, "
            f"or free space on that disk"
            if free
            else "free space on that disk (vacuum has nothing to delete)"
        )
        raise StorageFull(
            f"no space left on the disk holding the database at {location!r} "
            f"({exc.strerror or exc}) while writing {table}; nothing of this write was "
            f"committed and the database is unchanged; {hint}",
            path=location,
            reclaimable=free,
        ) from exc
