"""``tickvault serve``: run the web dashboard (``tickvault.dashboard.serve``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import db_path_of, open_db, shown_db
from .errors import EXIT_OK, CommandFailed
from .option_types import port
from .output import Output
from .parsing import Commands


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    """Run the web dashboard (``tickvault.dashboard.serve``)."""
    open_db(args)
    try:
        from ..dashboard import serve
    except ImportError as exc:
        raise CommandFailed(
            f"the dashboard is not available in this installation ({exc}); "
            f"reinstall tickvault with its web dependencies"
        ) from None
    from ..dashboard.security import TOKEN_ENV, HostPolicy, check_token

    options: dict[str, Any] = {}
    if args.calendar:
        options["calendar"] = args.calendar
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    check_token(token)  # bad options fail before "serving ..." is printed
    HostPolicy.for_bind(args.host, args.allowed_host or ())
    serve(
        db_path_of(args),
        host=args.host,
        port=args.port,
        allowed_hosts=args.allowed_host or (),
        token=token,
        on_listening=lambda url: out.note(f"serving {shown_db(args)} on {url} (Ctrl-C to stop)"),
        **options,
    )
    return EXIT_OK


def add_commands(commands: Commands) -> None:
    """Register ``serve``."""
    p = commands.add("serve", cmd_serve, "run the web dashboard")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default: 127.0.0.1); any other is reachable from other machines",
    )
    p.add_argument("--port", type=port, default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument("--calendar", metavar="CODE", help="exchange calendar for freshness")
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name, e.g. a reverse proxy's "
        "(repeatable; *.example.com for a domain)",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="require this token on every request (default: $TICKVAULT_DASHBOARD_TOKEN)",
    )
