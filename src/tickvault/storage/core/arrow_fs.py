"""A read-only pyarrow filesystem over a :class:`~tickvault.storage.core.store.Store`, so pyarrow
datasets (and engines that scan them: DuckDB, Polars) read a database in a bucket or in
memory through the same door as tickvault itself — no second set of credentials, and no
DuckDB extension downloaded at run time."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from .store import LocalStore, Store


def filesystem(store: Store) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for ``store`` and the prefix that turns a store key into a
    path on it. A local folder gets pyarrow's own (native, fastest) filesystem; any other
    store one that reads through :meth:`Store.open_input`."""
    if isinstance(store, LocalStore):
        return pafs.LocalFileSystem(), os.path.abspath(store.root).rstrip("/") + "/"
    return pafs.PyFileSystem(StoreHandler(store)), ""


class StoreHandler(pafs.FileSystemHandler):
    """Reads of a Store for pyarrow: open, stat and list; every write is refused."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoreHandler) and other.store is self.store

    def __hash__(self) -> int:
        return id(self.store)

    def get_type_name(self) -> str:
        return "tickvault-store"

    def normalize_path(self, path: str) -> str:
        return path.strip("/")

    def equals(self, other: Any) -> bool:
        return self == other

    def _info(self, path: str) -> pafs.FileInfo:
        meta = self.store.stat(path)
        if meta is not None:
            return pafs.FileInfo(path, pafs.FileType.File, size=meta.size)
        if not path or self.store.list(path):
            return pafs.FileInfo(path, pafs.FileType.Directory)
        return pafs.FileInfo(path, pafs.FileType.NotFound)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return [self._info(p.strip("/")) for p in paths]

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        base = selector.base_dir.strip("/")
        out = []
        todo = [base]
        while todo:
            prefix = todo.pop()
            for name in sorted(self.store.list(prefix)):
                info = self._info(f"{prefix}/{name}" if prefix else name)
                out.append(info)
                if info.type == pafs.FileType.Directory and selector.recursive:
                    todo.append(info.path)
        return out

    def open_input_file(self, path: str) -> pa.NativeFile:
        return self.store.open_input(path.strip("/"))

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.store.open_input(path.strip("/"))

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("a tickvault table opened for reading is read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only
