"""Help texts say one thing once: --tickers-file is described the same everywhere,
--scheduler names every scheduler, and --source lists what the registry has."""

from __future__ import annotations

import argparse
from pathlib import Path

from tickvault.cli import build_parser
from tickvault.sources import register_source, unregister_source
from tickvault.sources.demo import DemoSource


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _help(p: argparse.ArgumentParser, option: str) -> str | None:
    return next((a.help for a in p._actions if option in a.option_strings), None)


def test_tickers_file_is_described_one_way() -> None:
    helps = {_help(p, "--tickers-file") for p in _commands(build_parser()).values()}
    helps.discard(None)
    assert len(helps) == 1


def test_scheduler_help_names_distributed_and_sources_come_from_the_registry() -> None:
    register_source("my-plugin", DemoSource, replace=True)
    try:
        commands = _commands(build_parser())
        for name in ("backfill", "update"):
            assert "distributed" in (_help(commands[name], "--scheduler") or "")
            assert "my-plugin" in (_help(commands[name], "--source") or "")
    finally:
        unregister_source("my-plugin")


def _section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_serve_help_and_the_docs_say_secrets_in_arguments_show_in_ps() -> None:
    """``--token`` and ``s3://KEY:SECRET@...`` on a command line can be read by every local
    user (``ps``, /proc): ``serve --help`` and both guides say so, next to the environment
    variables to use instead (issue 26 item 11)."""
    from helpers.cli import tv

    r = tv("serve", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    root = Path(__file__).resolve().parents[2] / "docs"
    cli = _section((root / "cli.md").read_text(encoding="utf-8"), "### `tickvault serve`", "## ")
    dash = _section((root / "dashboard.md").read_text(encoding="utf-8"), "## Security", "\n## ")
    for where, doc in [("serve --help", text), ("docs/cli.md serve", cli), ("dashboard.md", dash)]:
        flat = " ".join(doc.split())
        words = ["--token", "TICKVAULT_DASHBOARD_TOKEN", "s3://KEY:SECRET@", "AWS_ACCESS_KEY_ID"]
        words += ["AWS_SECRET_ACCESS_KEY", "`ps`"]
        for word in words:
            assert word in flat, (where, word)
