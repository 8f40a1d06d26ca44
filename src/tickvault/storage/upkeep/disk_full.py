"""A full disk (or quota) while writing becomes :class:`~tickvault.errors.StorageFull`,
naming the database and what ``vacuum`` could free. The write has cleaned up after itself
by then: nothing of it was committed (issue 15; docs/storage.md, "A full disk")."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator

from ...errors import StorageFull, TickvaultError
from ...formats import human_bytes
from ..core.commit import committed


@contextlib.contextmanager
def disk_full_is_typed(table: str, location: str, reclaimable: Callable[[], int]) -> Iterator[None]:
    """Raise StorageFull for ENOSPC/EDQUOT inside the block (unless the commit itself went
    through); ``reclaimable()`` says how many bytes a vacuum with no retention would free."""
    try:
        yield
    except StorageFull:
        raise
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or committed(exc):
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
