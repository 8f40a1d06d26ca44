"""Where bars came from: a source's name and its non-secret options (decision 010).

Pipeline commits record :func:`origin` in their log entry's ``info["source"]``; the storage
engine derives from it which source each ticker came from (``db.sources()``), so ``update``
without a source uses the same one and a run from another source is refused unless asked
for (``replace_source=True``, ``--replace-source``).

Secrets are never recorded: options whose name looks like a credential are dropped, URLs
lose their user info and their query, and values that are not plain JSON are left out.

Only a source created from the registry by name (``get_source``) is recorded as
``{"name", "options"}``, which ``update`` recreates through the registry. Any other source
— a plain callable, a source object built by hand, ``as_source(f, name=...)`` — is
recorded with its ``kind`` (``"callable"`` or ``"object"``) and ``qualname`` (module and
qualified name), so a function called ``yahoo`` or ``demo`` is never mistaken for the
built-in source of that name. Records written before kinds existed have no ``kind``: such a
record whose name is a registry name cannot be told apart from a registry record and is
taken as one (as before); one whose name is not is taken as a callable's of that name.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError

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
    effective = _effective_base_url(source)
    if effective is not None and "base_url" not in options:
        options = {**options, "base_url": effective}
    # a source that takes no attributes is recorded by its name only
    with contextlib.suppress(AttributeError, TypeError):
        source.origin = {"name": name, "options": public_options(options)}


def _effective_base_url(source: Any) -> str | None:
    """The URL an HTTP source sends requests to when it is not the provider's own (it came
    from ``base_url=`` or ``$TICKVAULT_<NAME>_BASE_URL``), else None: recorded either
    way, so the two ways of pointing a source elsewhere are the same source."""
    url = getattr(source, "base_url", None)
    default = getattr(source, "default_base_url", None)
    if not isinstance(url, str) or not url:
        return None
    if isinstance(default, str) and url.rstrip("/") == default.rstrip("/"):
        return None
    return url


def origin(source: Any) -> dict[str, Any]:
    """What a commit records about ``source``: ``{"name", "options"}`` for a source created
    by :func:`~tickvault.sources.get_source` (what :func:`set_origin` recorded), else
    ``{"name", "options": {}, "kind", "qualname"}`` (see :func:`qualified`)."""
    recorded = getattr(source, "origin", None)
    if isinstance(recorded, dict) and "name" in recorded:
        return {"name": str(recorded["name"]), "options": dict(recorded.get("options") or {})}
    kind, qualname = qualified(source)
    name = str(getattr(source, "name", None) or type(source).__name__)
    if kind == "object" and type(source) is builtin_class(name):
        # DemoSource(), CsvSource(path): the built-in of that name, made by hand — recorded
        # like get_source's (as it always was), with the options that say where it reads
        options = dict(getattr(source, "recorded_options", None) or {})
        url = _effective_base_url(source)
        if url is not None and "base_url" not in options:
            options["base_url"] = url
        return {"name": name, "options": public_options(options)}
    return {"name": name, "options": {}, "kind": kind, "qualname": qualname}


def qualified(source: Any) -> tuple[str, str]:
    """``("callable", "my_module.my_fetch")`` for a wrapped plain callable (``as_source``,
    a function passed as the source), ``("object", "my_module.MySource")`` for a source
    object (or an object whose ``fetch`` a callable source wraps)."""
    func = getattr(source, "func", None)  # CallableSource: what it wraps
    if func is not None and callable(func):
        owner = getattr(func, "__self__", None)  # a bound fetch method: its object
        if owner is not None and not isinstance(owner, type):
            return "object", _dotted(type(owner))
        return "callable", _dotted(func)
    return "object", _dotted(type(source))


def _dotted(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else str(name)


def from_registry(o: dict[str, Any]) -> bool:
    """Is a recorded origin one ``update`` recreates through the registry by its name? A
    record with a ``kind`` never is; one without (a registry source, or any source as
    recorded before kinds existed) is."""
    return not o.get("kind")


#: The class of the built-in source of a name (None: no built-in has it): set by
#: :mod:`tickvault.sources.base`, which holds the registry (see below).
def _no_builtins(name: str) -> Any:
    return None


builtin_class: Callable[[str], Any] = _no_builtins

#: The names the source registry knows (built-in, registered, plugins): set to
#: :func:`tickvault.sources.base.available_sources` by that module, which holds the
#: registry and imports this one (so this module needs no import of it).
registry_names: Callable[[], list[str]] = list


def registry_name(name: Any) -> bool:
    """Is ``name`` a source the registry knows (built-in, registered or a plugin)?"""
    try:
        return isinstance(name, str) and name in registry_names()
    except ConfigError:
        return False


def same_origin(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Are two recorded origins the same source: same name, same kind (registry, callable
    or object: see :func:`origin`) and same location options? Two callables or objects
    are the same only if their qualified names agree. A record without a kind (a registry
    source, or one written before kinds existed) matches a callable or object of its name
    only when that name is not a registry name. Two local paths are the same place when
    they resolve to the same file or folder (``in/``, ``./in``, ``/data/in``, a symlink to
    it; a relative path recorded by an older version resolves against the current
    directory)."""
    if a.get("name") != b.get("name"):
        return False
    ka, kb = a.get("kind"), b.get("kind")
    if ka and kb:
        qa, qb = a.get("qualname"), b.get("qualname")
        if ka != kb or (qa and qb and qa != qb):
            return False
    elif (ka or kb) and registry_name(a.get("name")):
        return False  # one from the registry (or an older record), the other not
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
    """``yahoo``, ``csv (path=exports/)`` or ``my_fetch (callable my_module.my_fetch)``: a
    recorded origin for a message."""
    opts = o.get("options") or {}
    where = ", ".join(f"{k}={opts[k]}" for k in LOCATION_OPTIONS if k in opts)
    if o.get("kind"):
        what = f"{o['kind']} {o.get('qualname')}" if o.get("qualname") else str(o["kind"])
        where = f"{what}, {where}" if where else what
    return f"{o.get('name')}" + (f" ({where})" if where else "")
