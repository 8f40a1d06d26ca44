"""``tickvault serve``: run the web dashboard (``tickvault.dashboard.serve``)."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

from ..errors import ConfigError
from .common import calendar_of, db_path_of, open_db, shown_db
from .errors import EXIT_OK, CommandFailed, UsageError
from .option_types import port, positive, seconds
from .output import Output
from .parsing import Commands


def cmd_serve(args: argparse.Namespace, out: Output) -> int:
    """Run the web dashboard (``tickvault.dashboard.serve``) until Ctrl-C or SIGTERM
    (``systemctl stop``, ``docker stop``): the normal way to stop a server, so both end in
    a graceful shutdown (requests in progress finish) and exit 0."""
    try:
        from ..dashboard import serve
        from ..dashboard.security import HostPolicy
    except ImportError as exc:
        raise CommandFailed(
            f"the dashboard is not available in this installation ({exc}); "
            f"reinstall tickvault with its web dependencies"
        ) from None
    token = _token(args)  # bad options fail before any work and before "serving ..."
    HostPolicy.for_bind(args.host, args.allowed_host or ())
    db = open_db(args)
    options: dict[str, Any] = {}
    calendar = calendar_of(args, db)
    if calendar:
        options["calendar"] = calendar
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, or SIGTERM: a clean stop
        serve(
            db_path_of(args),
            host=args.host,
            port=args.port,
            allowed_hosts=args.allowed_host or (),
            token=token,
            header_timeout=args.header_timeout,
            max_connections=args.max_connections,
            on_listening=lambda url: out.note(
                f"serving {shown_db(args)} on {url} (Ctrl-C to stop)"
            ),
            **options,
        )
    return EXIT_OK


def _token(args: argparse.Namespace) -> str | None:
    """``--token``, else ``$TICKVAULT_DASHBOARD_TOKEN``, checked: a usage error naming
    where the bad token came from, with an example of a good one."""
    from ..dashboard.security import TOKEN_COMMAND, TOKEN_ENV, check_token

    if args.token is not None:
        where, example = "--token", f"--token $({TOKEN_COMMAND})"
    else:
        where, example = f"${TOKEN_ENV}", f"export {TOKEN_ENV}=$({TOKEN_COMMAND})"
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    try:
        return check_token(token, advice=f"make a random one, e.g. {example}")
    except ConfigError as exc:
        raise UsageError(f"{where}: {exc}") from None


SECRETS_IN_ARGUMENTS = (
    "Secrets on the command line are visible to every user of this machine (`ps`, "
    "/proc/PID/cmdline): --token TOKEN, and credentials in a bucket URL such as "
    "--db s3://KEY:SECRET@bucket/prefix. Pass them in the environment instead: "
    "TICKVAULT_DASHBOARD_TOKEN for the token; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(GOOGLE_SERVICE_ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY, ...) for the bucket, with --db "
    "s3://bucket/prefix. To serve beyond this machine, put an HTTPS reverse proxy (nginx, "
    "Caddy) in front and set a token."
)


def add_commands(commands: Commands) -> None:
    """Register ``serve``."""
    p = commands.add("serve", cmd_serve, "run the web dashboard")
    p.epilog = SECRETS_IN_ARGUMENTS
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default: 127.0.0.1); any other is reachable from other machines",
    )
    p.add_argument("--port", type=port, default=8000, help="port, 1-65535 (default: 8000)")
    p.add_argument(
        "--calendar",
        metavar="CODE",
        help="exchange calendar for freshness (default: the database's; none: calendar days)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="also answer requests for this host name, e.g. a reverse proxy's "
        "(repeatable; *.example.com for a domain)",
    )
    p.add_argument(
        "--header-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="close a connection that has not sent a whole request's headers within SECONDS "
        "(default: 10)",
    )
    p.add_argument(
        "--max-connections",
        type=positive,
        default=100,
        metavar="N",
        help="serve at most N connections at once; more are answered 503 (default: 100)",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="require this token (at least 16 characters) on every request; default and "
        "better: $TICKVAULT_DASHBOARD_TOKEN, which `ps` does not show",
    )
