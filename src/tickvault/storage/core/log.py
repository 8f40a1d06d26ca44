"""The commit log: one JSON entry per version, published by exclusive create.

Layout of a table folder::

    <table>/_log/00000000000000000007.json              version 7
    <table>/_log/00000000000000000050.checkpoint.json   full state at version 50
    <table>/_log/_last_checkpoint                        hint: newest checkpoint version
    <table>/part-<uuid>.parquet                          immutable data files

An entry is published with :meth:`Store.put_if_absent
<tickvault.storage.core.store.Store.put_if_absent>`: it fails if the name exists, so two
writers can never both publish version N and a reader never sees a half-written entry. The
loser re-reads the log and retries as N+1 (:mod:`~tickvault.storage.core.commit`).

Each ``add`` action carries the file's statistics (per series value: min/max timestamp and
row count), so listing tickers, watermarks and freshness never open a data file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...errors import CorruptDatabaseError, VersionNotFound
from .state import TableState, check_format
from .store import Store, join

log = logging.getLogger(__name__)

LOG_DIR = "_log"
CHECKPOINT_HINT = "_last_checkpoint"

#: where ``repair`` sets damaged newest entries aside (never deleted; not entries any more)
DAMAGED_DIR = "damaged"

#: what to do about an unreadable entry (the messages point forward: verify -> repair)
DAMAGED_ADVICE = (
    "older versions stay readable (pin one); `tickvault repair` (a dry run) shows what "
    "setting a damaged newest entry aside loses, `--apply` does it"
)

#: log entries fetched at once from an object store, where each GET is a round trip
PARALLEL_GETS = 16


def entry_name(version: int) -> str:
    return f"{version:020d}.json"


def checkpoint_name(version: int) -> str:
    return f"{version:020d}.checkpoint.json"


class LogStore:
    """Reads and publishes the log of one table (keys under ``<table>/_log/``)."""

    def __init__(self, store: Store, table: str, checkpoint_interval: int | None = None) -> None:
        self.store = store
        self.table = table
        #: where this handle writes checkpoints (every N versions): reading an old version
        #: looks there first, so it needs no listing (slow and paged on a bucket)
        self.checkpoint_interval = checkpoint_interval
        self.prefix = join(table, LOG_DIR)
        #: every read is a round trip (an object store): a new handle lists the entries
        #: after its checkpoint and fetches them in parallel instead of one after another
        self.remote = store.remote

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    # -- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        """Has version 0 ever been published? (Old entries may have been pruned.)"""
        return self.store.exists(self.key(entry_name(0))) or self.store.exists(
            self.key(CHECKPOINT_HINT)
        )

    def read_entry(self, version: int) -> dict[str, Any] | None:
        key = self.key(entry_name(version))
        try:
            data = self.store.get(key)
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(data)
        except ValueError as exc:
            raise CorruptDatabaseError(
                f"log entry {key} is not valid JSON ({exc}): the commit it held cannot be "
                f"read; {DAMAGED_ADVICE}"
            ) from exc
        if not isinstance(entry, dict):
            raise CorruptDatabaseError(
                f"log entry {key} is not a JSON object: the commit it held cannot be read; "
                f"{DAMAGED_ADVICE}"
            )
        check_format(entry.get("format"), f"log entry {key}")
        meta = entry.get("meta")
        if isinstance(meta, dict):
            check_format(meta.get("format"), f"log entry {key}")
        return entry

    def names(self) -> list[str]:
        """Every name in the log folder (entries, checkpoints, the hint, temporaries)."""
        return self.store.list(self.prefix)

    def list_versions(self) -> list[int]:
        return sorted(_entry_versions(self.names()))

    def list_checkpoints(self) -> list[int]:
        return _checkpoints(self.names())

    def read_checkpoint(self, version: int) -> TableState | None:
        key = self.key(checkpoint_name(version))
        try:
            d = json.loads(self.store.get(key))
            if isinstance(d, dict):  # a newer format is refused, not ignored
                check_format(d.get("format"), f"checkpoint {key}")
            return TableState.from_json(d)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", key, exc)
            return None

    def checkpoint_hint(self) -> int | None:
        try:
            return int(json.loads(self.store.get(self.key(CHECKPOINT_HINT)))["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load(self, upto: int | None = None, base: TableState | None = None) -> TableState:
        """The state at version ``upto`` (None: the newest), from ``base`` if given."""
        listing: list[str] | None = None
        fresh = base is None or base.version < 0 or (upto is not None and upto < base.version)
        if fresh or base is None:
            state, listing = self._start_state(upto)
        else:
            state = base.copy()
        if not fresh and (upto is None or upto > state.version):
            nxt = self.read_entry(state.version + 1)
            if nxt is None and upto is None:
                # nothing new (asked once: the loop below would ask again), unless the
                # next entry is missing in the middle of the log (decision 001, gaps)
                if self.remote or not self._gap_after(state.version, None):
                    return state
                nxt = self.read_entry(state.version + 1)  # published meanwhile
            if nxt is not None:  # new commits: if far behind, jump to the newest checkpoint
                hint = self.checkpoint_hint()
                if hint is not None and hint > state.version and (upto is None or hint <= upto):
                    state, listing = self._start_state(upto)
                    fresh = True
                else:
                    state.apply(state.version + 1, nxt)
        if fresh and self.remote:
            # one LIST (or the version asked for) says which entries follow the start;
            # fetched together, they cost one round trip instead of one each
            versions: Sequence[int]
            listed: list[str] | None = None
            if upto is None:
                versions, listed = self._listed_after(state.version, listing)
            else:
                versions = range(state.version + 1, upto + 1)
            for v, entry in zip(versions, self._read_entries(versions), strict=False):
                if entry is None:
                    break
                state.apply(v, entry)
            if upto is None and not self._gap_after(state.version, listed):
                return state  # the listing was the newest this load can see
        v = state.version + 1
        while upto is None or v <= upto:
            entry = self.read_entry(v)
            if entry is None:
                # the end of the log, or a gap: on a local disk one stat of the entry after
                # tells (an object store's new handle saw the listing above)
                ahead = GAP_LOOKAHEAD if fresh else 1
                if (
                    upto is None
                    and not self.remote
                    and self._gap_after(v - 1, listing, ahead=ahead)
                ):
                    continue  # the missing entry was published meanwhile: read it
                break
            state.apply(v, entry)
            v += 1
        if upto is not None and state.version < upto:
            self._gap_after(state.version, listing, probe=True)  # a gap is not "not found"
            raise VersionNotFound(
                f"version {upto} does not exist in {self.store.location}/{self.table}; "
                f"newest is {state.version}",
                newest=state.version,
            )
        return state

    def _listed_after(self, version: int, listing: list[str] | None) -> tuple[list[int], list[str]]:
        """The entries after ``version`` that one listing shows, up to the first gap, and
        the names of all those listed (for :meth:`_gap_after`)."""
        after = entry_name(version) if version >= 0 else ""
        names = (
            sorted(n for n in listing if n > after)
            if listing is not None
            else self.store.list_after(self.prefix, after)
        )
        present = set(_entry_versions(names))
        out = []
        v = version + 1
        while v in present:
            out.append(v)
            v += 1
        return out, names

    def _gap_after(
        self, version: int, listing: list[str] | None, *, probe: bool = False, ahead: int = 1
    ) -> bool:
        """Raise CorruptDatabaseError if the entry after ``version`` is missing while a
        later one exists: the log has a gap, and serving ``version`` as the newest would
        silently roll the table back (decision 001, gaps). Looks in ``listing`` if given
        (free), else stats the entry after the next one (one stat; ``probe``: lists the
        entries after it, one request, for an error path). False when the log simply ends
        at ``version``; True if the missing entry was published meanwhile (the caller
        reads it)."""
        gone = entry_name(version + 1)
        if listing is not None or probe:
            names = listing if listing is not None else self.store.list_after(self.prefix, gone)
            later = [v for v in _entry_versions(names) if v > version + 1]
        else:  # ``ahead`` stats: one per warm refresh, GAP_LOOKAHEAD when a handle opens
            later = next(
                (
                    [v]
                    for v in range(version + 2, version + 2 + ahead)
                    if self.store.exists(self.key(entry_name(v)))
                ),
                [],
            )
        if not later:
            return False
        if self.store.exists(self.key(gone)):
            return True  # a writer published it (and more) since we looked: not a gap
        raise CorruptDatabaseError(gap_message(self.table, version + 1, min(later)))

    def check_no_gap(self, version: int) -> None:
        """Before a writer publishes ``version``: refuse (CorruptDatabaseError) if a later
        entry exists while ``version`` does not — publishing it would fill a gap, hide the
        lost commit for good and resurrect the versions after it on top of the wrong one.
        On a local disk, stats of the :data:`GAP_LOOKAHEAD` entries after it (microseconds;
        a listing of the whole folder grew with the log: ~7 ms a commit at 10,000
        entries). On a bucket nothing is asked here (a request per commit): a new handle
        sees a gap in the listing it opens with, and the read path refuses it."""
        if self.store.remote:
            return
        for later in range(version + 1, version + 1 + GAP_LOOKAHEAD):
            if self.store.exists(self.key(entry_name(later))):
                if not self.store.exists(self.key(entry_name(version))):
                    raise CorruptDatabaseError(gap_message(self.table, version, later))
                return

    def _read_entries(self, versions: Sequence[int]) -> Iterator[dict[str, Any] | None]:
        """The entries of ``versions``, in order, up to the first missing one (None),
        fetched ``PARALLEL_GETS`` at a time (so a version asked for far past the newest
        costs a few 404s, not one per version)."""
        if len(versions) <= 1:
            yield from map(self.read_entry, versions)
            return
        with ThreadPoolExecutor(max_workers=min(PARALLEL_GETS, len(versions))) as ex:
            for i in range(0, len(versions), PARALLEL_GETS):
                for entry in ex.map(self.read_entry, versions[i : i + PARALLEL_GETS]):
                    yield entry
                    if entry is None:
                        return

    def _start_state(self, upto: int | None) -> tuple[TableState, list[str] | None]:
        """The newest checkpoint at or below ``upto`` (an empty state if there is none),
        and the log folder's names if finding it needed a listing."""
        hint = self.checkpoint_hint()
        if hint is not None and (upto is None or hint <= upto):
            st = self.read_checkpoint(hint)
            if st is not None:
                return st, None
        n = self.checkpoint_interval
        if upto is not None and n and hint is not None:  # an old version of a long log
            below = upto - upto % n
            if below == 0 and self.store.exists(self.key(entry_name(0))):
                return TableState(), None  # before the first checkpoint: from version 0
            for c in (below, below - n):  # where checkpoints are at this handle's interval
                st = self.read_checkpoint(c) if c > 0 else None
                if st is not None:
                    return st, None
        names = self.names()
        for c in reversed(_checkpoints(names)):
            if upto is None or c <= upto:
                st = self.read_checkpoint(c)
                if st is not None:
                    return st, names
        return TableState(), names

    # -- writing ---------------------------------------------------------------------------

    def publish(self, version: int, entry: dict[str, Any]) -> bool:
        """Publish ``entry`` as ``version``. False if another writer already did."""
        data = json.dumps(entry, separators=(",", ":")).encode()
        return self.store.put_if_absent(self.key(entry_name(version)), data)

    def find_commit(self, commit_id: str, unsure: list[int], newest: int) -> int | None:
        """The version among ``unsure`` (those up to ``newest`` are published) holding the
        commit ``commit_id``, if any; versions found to hold another commit are removed
        from ``unsure``. The read-back of the ambiguity rule (decision 009)."""
        for v in [v for v in unsure if v <= newest]:
            entry = self.read_entry(v)
            if entry is not None and entry.get("commit_id") == commit_id:
                return v
            unsure.remove(v)
        return None

    def write_checkpoint(self, state: TableState) -> None:
        data = json.dumps(state.to_json(), separators=(",", ":")).encode()
        self.store.put(self.key(checkpoint_name(state.version)), data)
        # the hint only ever moves forward
        current = self.checkpoint_hint()
        if current is None or current < state.version:
            hint = json.dumps({"version": state.version}).encode()
            self.store.put(self.key(CHECKPOINT_HINT), hint)


def gap_message(table: str, missing: int, later: int) -> str:
    """Why a table whose log lacks entry ``missing`` (``later`` exists) is refused."""
    return (
        f"{table}: log entry {LOG_DIR}/{entry_name(missing)} is missing but version {later} "
        f"exists: commit {missing} was deleted, so versions {missing} and later cannot be "
        f"read and nothing can be committed (it would hide the loss for good). Restore the "
        f"entry from a backup if you have one; otherwise `tickvault repair` (a dry run) "
        f"shows what accepting the loss of commit {missing} means, `--apply` does it. "
        f"Versions before {missing} stay readable (pin one)"
    )


#: how many entries after the one a writer publishes it looks for (a gap of up to this
#: many entries is refused at the commit; a wider one by verify and a new handle's load)
GAP_LOOKAHEAD = 4


def _entry_versions(names: Sequence[str]) -> list[int]:
    """The versions of the log entries among ``names`` (not checkpoints or other files)."""
    return [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]


def _checkpoints(names: list[str]) -> list[int]:
    """The versions of the checkpoints among a log folder's ``names``, sorted."""
    out = []
    for name in names:
        if name.endswith(".checkpoint.json"):
            stem = name[: -len(".checkpoint.json")]
            if stem.isdigit():
                out.append(int(stem))
    return sorted(out)
