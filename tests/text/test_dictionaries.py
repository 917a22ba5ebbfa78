"""The dictionary files are parsed by libyaml when PyYAML has it (bot.text.read_dictionary): the same objects
as PyYAML's pure-Python safe loader gives, for every file of knowledge/dict."""
from __future__ import annotations

from pathlib import Path

import yaml

from bot.text import read_dictionary
from tests.helpers import REPO_ROOT


def test_read_dictionary_gives_what_safe_load_gives() -> None:
    """Every YAML file of knowledge/dict, parsed both ways, is the same table."""
    files = sorted((REPO_ROOT / "knowledge" / "dict").glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        assert read_dictionary(path) == yaml.safe_load(path.read_text(encoding="utf-8")), path.name


def test_a_missing_dictionary_file_is_none(tmp_path: Path) -> None:
    """A folder without the file (an index version from before it existed) reads as no table."""
    assert read_dictionary(tmp_path / "phrases.yaml") is None
