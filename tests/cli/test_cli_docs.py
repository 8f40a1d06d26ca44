"""Every command and option has help text and is documented in docs/cli.md
(like sqlite-utils' test_docs.py)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tickvault.cli import EXIT_CODES, build_parser

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


COMMANDS = _subcommands()


def test_the_expected_commands_exist():
    assert set(COMMANDS) == {
        "backfill",
        "import",
        "update",
        "query",
        "actions",
        "freshness",
        "verify",
        "repair",
        "info",
        "calendar",
        "history",
        "compact",
        "vacuum",
        "runs",
        "serve",
        "sql",
        "export",
        "delete",
        "restore",
        "gaps",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_and_a_docs_section(name):
    sub = COMMANDS[name]
    assert sub.description, f"{name} has no help text"
    for action in sub._actions:
        if action.option_strings or action.dest != "help":
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    assert f"### `tickvault {name}`" in DOCS, f"docs/cli.md has no section for {name}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_documented(name):
    common = {"--help", "-h", "--db", "--json", "--quiet", "-q", "--debug"}
    for action in COMMANDS[name]._actions:
        for opt in action.option_strings:
            if opt in common or not opt.startswith("--"):
                continue
            assert re.search(re.escape(opt) + r"\b", DOCS), f"{name} {opt} is not in docs/cli.md"


def test_every_exit_code_is_documented():
    """The exit-code table of docs/cli.md lists exactly the codes the CLI uses, and so does
    the docstring of the one module that maps them."""
    from tickvault.cli import errors

    section = DOCS.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert documented == set(EXIT_CODES)
    in_module = {int(m) for m in re.findall(r"^(\d+) ", errors.__doc__ or "", re.M)}
    assert in_module == set(EXIT_CODES)
    constants = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and k != "EXIT_CODES"}
    assert constants == set(EXIT_CODES)
