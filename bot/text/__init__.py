"""Text processing shared by the index builder and the bot: normalisation and tokens.

Both sides must meet in the same form, so both import from here (the bot never reaches into the
builder). The dictionaries (domain words, synonyms, Taiwan-term fixes, cue words, doors, answer
kinds) are data in a dictionary folder: `KNOWLEDGE_DIR/dict` for a build (`use_dictionaries`: the
process's folder; `--knowledge-dir` moves them with everything else), and the copy of it inside an
index version for the bot answering from that version (`reading`: a folder for one block of code,
in this thread or task only). Everything read from a folder is cached by the folder, so two index
versions' dictionaries can be in use side by side while a serving process swaps one for the other.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

from bot.config import DEFAULT_KNOWLEDGE_DIR

#: dictionary folders whose contents (tokenizer, synonyms, cue words …) each cache keeps: the served
#: index version's, the previous one's while questions finish on it, the knowledge folder's, one spare
MAX_FOLDERS = 4

_dict_dir: Path = DEFAULT_KNOWLEDGE_DIR / "dict"
_reading: ContextVar[Path | None] = ContextVar("dictionaries", default=None)
_caches: list[Callable[[], object]] = []  # what reload_dictionaries clears
# libyaml's safe loader when PyYAML has it (the same objects as `yaml.safe_load`, tested on every file of
# knowledge/dict, in about a seventh of the time), else the pure-Python one: for the dictionaries, which a process
# reads all of for its first answer (~0.3 s in pure Python), and the quiz bank
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_dictionary(path: Path) -> Any:
    """A YAML file of a dictionary folder parsed (SAFE_LOADER), None when there is none."""
    if not path.exists():
        return None
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def dict_dir() -> Path:
    """The folder of the dictionaries in use: the one `reading` set for this block, else the process's."""
    return _reading.get() or _dict_dir


def use_dictionaries(folder: Path) -> None:
    """Read the dictionaries from `folder` from now on, wherever no `reading` block says otherwise."""
    global _dict_dir
    _dict_dir = Path(folder)


@contextmanager
def reading(folder: Path) -> Iterator[Path]:
    """Use the dictionaries of `folder` inside the block (this thread or task only; blocks nest), e.g.
    those of the index version a question is answered from: its tokens then match that version's BM25
    vocabulary even while another thread answers from another version."""
    folder = folder if isinstance(folder, Path) else Path(folder)  # the same object: the caches keyed by
    token = _reading.set(folder)  # folder then find it by identity, without Path.__eq__ (~1 µs each)
    try:
        yield folder
    finally:
        _reading.reset(token)


def cached_by_folder(clear: Callable[[], object]) -> Callable[[], object]:
    """Register `clear` (e.g. an lru_cache's cache_clear) to be called by `reload_dictionaries`."""
    _caches.append(clear)
    return clear


def reload_dictionaries() -> None:
    """Forget everything read from any dictionary folder (a build: its files may have been edited
    since this process read them; an index version's copy never changes)."""
    for clear in _caches:
        clear()
