"""The ``tickvault`` command: a thin shell over the library.

Every command parses its options, calls one library function with the same option names,
and formats the result (a rich table for people, ``--json`` for scripts). Errors become a
message and an exit code in exactly one place, :mod:`tickvault.cli.errors`, whose
docstring lists the exit codes.

See ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence

from . import actions, commands, examine, import_files, maintain, serve, tables, undo
from .common import db_path_of
from .errors import EXIT_CODES, EXIT_OK, Terminated, exit_code
from .output import Output
from .parsing import Commands, Parser, common_options

__all__ = ["EXIT_CODES", "build_parser", "exit_code", "main"]

PROG = "tickvault"

#: the modules that add sub-commands, in the order ``tickvault --help`` lists them
COMMAND_MODULES = (commands, import_files, actions, examine, maintain, tables, undo, serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``tickvault`` parser: the common options, then each command module adds its
    sub-commands (``add_commands``)."""
    from .. import __version__

    common = common_options()
    parser = Parser(
        prog=PROG,
        description="tickvault: a Parquet market-data store that cannot lose or corrupt data.",
        epilog="Run `tickvault COMMAND --help` for a command's options. Docs: docs/cli.md",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    registry = Commands(parser, common)
    for module in COMMAND_MODULES:
        module.add_commands(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(as_json=bool(getattr(args, "json", False)), quiet=bool(getattr(args, "quiet", 0)))
    debug = bool(getattr(args, "debug", False))
    _setup_logging(debug, server=args.command == "serve")
    # serve too: uvicorn shuts down on SIGTERM, then raises it again into this handler,
    # and `serve` ends on it as on Ctrl-C (exit 0)
    _terminate_like_ctrl_c()
    started = time.perf_counter()
    try:
        code = int(args.func(args, out))
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        code, message = exit_code(exc, db=db_path_of(args), command=args.command)
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{PROG} {args.command}: error: {message}\n")
        return code
    finally:
        if debug:
            sys.stderr.write(f"[{args.command} took {time.perf_counter() - started:.2f}s]\n")
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def _setup_logging(debug: bool, *, server: bool = False) -> None:
    """Library log records go to stderr: errors only (the end-of-run summary lists failed
    tickers), warnings too for the dashboard server (a request that failed, an exposed
    address), everything from INFO up with ``--debug``."""
    level = logging.INFO if debug else logging.WARNING if server else logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: %(message)s"))
    # the level on the handler too: libraries that set their own loggers' levels (dask's
    # distributed logs INFO) propagate records here that the root level does not filter
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


def _terminate_like_ctrl_c() -> None:
    """SIGTERM unwinds like Ctrl-C: commits already made stay, the run is recorded as
    interrupted, one line on stderr, exit 143."""
    import signal

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        raise Terminated()

    # not the main thread (main() called from a thread): leave the signal alone
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, handler)


def _silence_stdout() -> None:
    """After the reader of a pipe went away (``tickvault query ... | head``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
