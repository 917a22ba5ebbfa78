"""The README documents the command line: every `ohbot` subcommand and every flag appears in it
(as sqlite-utils checks its docs), so a new option cannot ship undocumented."""
from __future__ import annotations

import argparse
import re

import pytest

from bot.cli import build_parser
from tests.helpers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the top level and every subcommand, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


COMMANDS = list(_commands(build_parser()))


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS if p], ids=lambda p: " ".join(p))
def test_every_subcommand_is_in_the_readme(path: tuple[str, ...]) -> None:
    words = re.escape(" ".join(path))
    assert re.search(rf"(ohbot |`){words}\b", README), " ".join(path)


@pytest.mark.parametrize(
    "path,flag", [(p, f) for p, parser in COMMANDS for f in _flags(parser)], ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_every_flag_is_in_the_readme(path: tuple[str, ...], flag: str) -> None:
    assert flag in README, f"ohbot {' '.join(path)} {flag}"
