"""compose.words keeps a sentence's tokens by dictionary folder: a serving process answering from two index
versions (whose domain words differ) reads each sentence with its own version's words."""
from __future__ import annotations

from pathlib import Path

from bot.answering.compose import words
from bot.text import reading
from tests.helpers import REPO_ROOT

SENTENCE = "噪声超标怎么办"


def test_words_are_kept_per_dictionary_folder(tmp_path: Path) -> None:
    """The same sentence, first with the knowledge base's words, then with a folder that adds it as a word."""
    own = REPO_ROOT / "knowledge" / "dict"
    other = tmp_path / "dict"
    other.mkdir()
    for f in own.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    with open(other / "domain_words.txt", "a", encoding="utf-8") as f:
        f.write(f"\n{SENTENCE}\n")
    with reading(own):
        assert SENTENCE not in words(SENTENCE)
    with reading(other):
        assert SENTENCE in words(SENTENCE)
    with reading(own):
        assert SENTENCE not in words(SENTENCE)
