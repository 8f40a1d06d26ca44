"""Help texts say one thing once: --tickers-file is described the same everywhere,
--scheduler names every scheduler, and --source lists what the registry has."""

from __future__ import annotations

import argparse

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
