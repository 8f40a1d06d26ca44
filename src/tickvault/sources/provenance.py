"""Where bars came from: a source's name and its non-secret options (decision 010).

Pipeline commits record :func:`origin` in their log entry's ``info["source"]``; the storage
engine derives from it which source each ticker came from (``db.sources()``), so ``update``
without a source uses the same one and a run from another source is refused unless asked
for (``replace_source=True``, ``--replace-source``).

Secrets are never recorded: options whose name looks like a credential are dropped, URLs
lose their user info and their query, and values that are not plain JSON are left out.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: option names never recorded (credentials)
SECRET = re.compile(r"key|token|secret|passw|auth|cookie|credential|session|sig", re.I)
#: options that say *where* the bars come from: two sources with the same name are the same
#: source only if these agree (a CSV folder, a base URL)
LOCATION_OPTIONS = ("base_url", "url", "path", "root")


def _clean_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc:
        return value
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _plain(value: Any) -> Any:
    """``value`` if it is plain JSON (str, number, bool, None, list of those), else None."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return _clean_url(value)
    if hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return [_plain(v) for v in value]
    return None


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options worth recording: no credentials, no user info in URLs, plain values."""
    out: dict[str, Any] = {}
    for k, v in sorted(options.items()):
        if SECRET.search(k):
            continue
        plain = _plain(v)
        if plain is not None:
            out[k] = plain
    return out


def set_origin(source: Any, name: str, options: dict[str, Any]) -> None:
    """Remember on ``source`` the registry name and options it was created with. A source
    may spell some of them canonically in ``recorded_options`` (the file sources: ``path``
    absolute and resolved, so ``update`` finds the files from any directory); those win."""
    canonical = getattr(source, "recorded_options", None)
    if isinstance(canonical, dict):
        options = {**options, **canonical}
    # a source that takes no attributes is recorded by its name only
    with contextlib.suppress(AttributeError, TypeError):
        source.origin = {"name": name, "options": public_options(options)}


def origin(source: Any) -> dict[str, Any]:
    """``{"name", "options"}`` for a source: what :func:`set_origin` recorded, else its name."""
    recorded = getattr(source, "origin", None)
    if isinstance(recorded, dict) and "name" in recorded:
        return {"name": str(recorded["name"]), "options": dict(recorded.get("options") or {})}
    return {"name": str(getattr(source, "name", type(source).__name__)), "options": {}}


def same_origin(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Are two recorded origins the same source: same name and same location options? Two
    local paths are the same place when they resolve to the same file or folder (``in/``,
    ``./in``, ``/data/in``, a symlink to it; a relative path recorded by an older version
    resolves against the current directory)."""
    if a.get("name") != b.get("name"):
        return False
    oa, ob = a.get("options") or {}, b.get("options") or {}
    return all(_same_place(oa.get(k), ob.get(k)) for k in LOCATION_OPTIONS)


def _same_place(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if not (isinstance(a, str) and isinstance(b, str)) or "://" in a or "://" in b:
        return False
    return local_path(a) == local_path(b)


def local_path(path: str | os.PathLike[str]) -> str:
    """``path`` absolute and resolved (``~`` expanded, symlinks followed), as recorded."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def describe(o: dict[str, Any]) -> str:
    """``yahoo`` or ``csv (path=exports/)``: a recorded origin for a message."""
    opts = o.get("options") or {}
    where = ", ".join(f"{k}={opts[k]}" for k in LOCATION_OPTIONS if k in opts)
    return f"{o.get('name')}" + (f" ({where})" if where else "")
