"""`serve` on an address another program holds: one line, a documented code (2), and
nothing printed as if it were serving."""

from __future__ import annotations

import socket

from helpers.cli import one_clear_line, tv
from tickvault import ParquetDB


def test_port_in_use_is_one_line_and_exit_2(tmp_path) -> None:
    ParquetDB(tmp_path / "db")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = tv("serve", "--port", str(port), db=tmp_path / "db", timeout=60)
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r)
    assert "address already in use" in line and str(port) in line
    assert "serving" not in r.stderr + r.stdout
