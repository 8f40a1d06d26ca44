"""Files on disk, for assertions like "byte-for-byte unchanged"."""

from __future__ import annotations

from pathlib import Path


def tree_snapshot(path: Path) -> dict[str, bytes]:
    """Every file under path with its bytes: to assert 'byte-for-byte unchanged'."""
    out = {}
    for p in sorted(path.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(path))] = p.read_bytes()
    return out
