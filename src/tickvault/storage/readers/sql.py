"""Read-only SQL over a database's tables (``tickvault sql``; decision 013).

Two lines of defence, so that neither is the only one:

1. **The statement guard.** DuckDB's own parser splits the text into statements; each must
   be a ``SELECT``, or an ``EXPLAIN`` / ``EXPLAIN ANALYZE`` of a ``SELECT`` (``EXPLAIN
   ANALYZE`` *runs* the statement it wraps, so ``EXPLAIN ANALYZE COPY ...`` would write).
   Anything else — COPY, EXPORT, ATTACH, INSTALL/LOAD, SET/RESET, PRAGMA, CALL, CREATE,
   INSERT/UPDATE/DELETE, CHECKPOINT — is refused before anything runs.
2. **The locked connection.** The query runs on a fresh in-memory connection whose only
   file access is the data files of the pinned versions (DuckDB's ``allowed_paths`` with
   ``enable_external_access=false``), with extension auto-install and auto-load off, the
   time zone UTC, and then ``lock_configuration=true``: no later statement can change any
   of it. It cannot read other local files, reach the network or load an extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ...formats import with_article
from . import engines

if TYPE_CHECKING:
    import pandas as pd

    from ..core.snapshot import Snapshot

#: what a statement may be; its type as DuckDB's parser reports it
READ_ONLY_STATEMENTS = ("SELECT",)

_SPACE_OR_COMMENT = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_WORD = re.compile(r"[A-Za-z_]+")


class RefusedStatement(ConfigError):
    """A statement ``tickvault sql`` does not run (it could write or change settings)."""


def check_read_only(con: Any, query: str) -> None:
    """Raise :class:`RefusedStatement` unless every statement in ``query`` is a SELECT or an
    EXPLAIN [ANALYZE] of one (DuckDB's parser decides the statement types)."""
    statements = con.extract_statements(query)
    if not statements:
        raise RefusedStatement("no SQL statement given, e.g. 'SELECT count(*) FROM prices'")
    for st in statements:
        kind = _kind(st)
        if kind == "EXPLAIN":
            inner = _explained(st.query)
            inner_statements = con.extract_statements(inner) if inner is not None else []
            if len(inner_statements) != 1 or _kind(inner_statements[0]) != "SELECT":
                raise RefusedStatement(
                    "tickvault sql is read-only: EXPLAIN is allowed only of a SELECT "
                    "(EXPLAIN ANALYZE runs the statement it explains), "
                    "e.g. EXPLAIN SELECT * FROM prices"
                )
        elif kind == "MULTI":
            raise RefusedStatement(
                "tickvault sql is read-only: a statement DuckDB runs as several is refused "
                "(a PIVOT without an IN list first creates a type of the values it pivots "
                "on); name the values, e.g. PIVOT prices ON ticker IN ('AAPL', 'MSFT') "
                "USING avg(close)"
            )
        elif kind not in READ_ONLY_STATEMENTS:
            raise RefusedStatement(
                f"tickvault sql is read-only: {with_article(_written(st.query, kind))} "
                f"statement is refused (use SELECT; `tickvault export` writes files)"
            )


def _kind(statement: Any) -> str:
    return str(statement.type).rsplit(".", 1)[-1]


def _written(text: str, kind: str) -> str:
    """The refused statement as the user wrote it, for the message: its first keyword
    (``INSTALL``, ``CHECKPOINT``, ``FORCE INSTALL``), which DuckDB's type may not say
    (INSTALL is a LOAD statement, CHECKPOINT a CALL); ``kind`` when the text starts
    otherwise (``WITH ... INSERT``, a parenthesis)."""
    m = _WORD.match(text, _skip(text, 0))
    if m is None or m.group().upper() == "WITH":
        return kind.replace("_", " ")
    word = m.group().upper()
    if word == "FORCE":
        after = _WORD.match(text, _skip(text, m.end()))
        return f"FORCE {after.group().upper()}" if after else word
    return word


def _explained(text: str) -> str | None:
    """The statement an EXPLAIN wraps: the text after ``EXPLAIN [ANALYZE|ANALYSE]
    [(options)]``, skipping comments; None if the prefix is not recognised."""
    pos = _skip(text, 0)
    m = _WORD.match(text, pos)
    if m is None or m.group().upper() != "EXPLAIN":
        return None
    pos = _skip(text, m.end())
    m = _WORD.match(text, pos)
    if m is not None and m.group().upper() in ("ANALYZE", "ANALYSE"):
        pos = _skip(text, m.end())
    if text.startswith("(", pos):
        close = text.find(")", pos)
        if close < 0:
            return None
        pos = _skip(text, close + 1)
    return text[pos:]


def _skip(text: str, pos: int) -> int:
    m = _SPACE_OR_COMMENT.match(text, pos)
    return m.end() if m else pos


def locked_connection(snapshots: Iterable[Snapshot]) -> Any:
    """A new DuckDB connection with every table of ``snapshots`` as a view named after it,
    then locked: only those tables' data files can be opened (read), no extension can be
    installed or loaded, settings cannot change."""
    con = engines.duckdb_connection()
    paths: list[str] = []
    for snap in snapshots:
        engines.to_duckdb(snap, con).create_view(snap.table)
        paths.extend(engines.native_paths(snap))
    con.execute("SET allowed_paths = $paths", {"paths": sorted(set(paths)) or [""]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(snapshots: Iterable[Snapshot], query: str) -> pd.DataFrame:
    """Run a read-only ``query`` over the tables of ``snapshots`` (each a view named after
    its table) and return the result as a DataFrame. Refused statements raise
    :class:`RefusedStatement`; DuckDB's own errors (syntax, unknown names) propagate as
    ``duckdb.Error``."""
    duckdb = engines.optional("duckdb", "duckdb")
    check_read_only(duckdb.connect(), query)
    con = locked_connection(snapshots)
    try:
        # the same check on the connection that runs it, in case parsing depends on it
        check_read_only(con, query)
        return con.sql(query).df()
    finally:
        con.close()
