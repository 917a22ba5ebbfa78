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


def _tour() -> str:
    """The code block under "## A short tour"."""
    section = README.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def _modules() -> list[str]:
    """Every module of bot/ and index_builder/ as a path (package markers and migration revisions aside)."""
    return sorted(str(p.relative_to(REPO_ROOT)) for top in ("bot", "index_builder") for p in (REPO_ROOT / top).rglob("*.py")
                  if p.name != "__init__.py" and "migrations" not in p.parts)


@pytest.mark.parametrize("module", _modules())
def test_every_module_is_in_the_tour(module: str) -> None:
    """The tour names every package (`answering/`) and every module file (`retrieve.py`): a newcomer
    finds each file there. A new module needs a few words in README "A short tour"."""
    tour = _tour()
    parts = module.split("/")
    assert re.search(rf"(?<![\w.]){re.escape(parts[-1])}", tour), f"{module} is not in README 'A short tour'"
    for package in parts[1:-1]:
        assert f"{package}/" in tour, f"package {'/'.join(parts[:-1])}/ is not in README 'A short tour'"
