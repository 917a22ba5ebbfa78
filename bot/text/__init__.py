"""Text processing shared by the index builder and the bot: normalisation and tokens.

Both sides must meet in the same form, so both import from here (the bot never reaches into the
builder). The dictionaries (domain words, synonyms, Taiwan-term fixes, cue words) are data in
`KNOWLEDGE_DIR/dict`; `use_dictionaries` points this package at the folder of the configured
knowledge directory (`--knowledge-dir` moves them with everything else).
"""
from __future__ import annotations

from pathlib import Path

from bot.config import DEFAULT_KNOWLEDGE_DIR

_dict_dir: Path = DEFAULT_KNOWLEDGE_DIR / "dict"


def dict_dir() -> Path:
    """The folder of the dictionaries in use."""
    return _dict_dir


def use_dictionaries(folder: Path) -> None:
    """Read the dictionaries from `folder` from now on (a no-op when it is already in use).

    Everything cached from the previous folder (jieba tokenizer, synonyms, phrase table, cue
    words) is dropped, so the next call reads the new files.
    """
    global _dict_dir
    folder = Path(folder)
    if folder == _dict_dir:
        return
    _dict_dir = folder
    from bot.text import normalize, tokenize

    normalize.clear_caches()
    tokenize.clear_caches()
