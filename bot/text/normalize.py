"""Text normalisation shared by documents and queries, so that both meet in the same form.

`to_display` gives the clean Simplified text shown to users; `normalize` gives the matching form
(NFKC full-width→half-width, lower-case, no stray spaces between Chinese characters).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import opencc

from bot.text import MAX_FOLDERS, cached_by_folder, dict_dir, read_dictionary

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}])[ \t\u3000\u00a0]+(?=[{_CJK}])")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
# Matching forms kept, by dictionary folder and text: an answer normalises the same question, region
# names and sentences ~90 times (issue #9: ~2 ms of a ~13 ms answer). Longer texts (whole sections,
# documents at build time) are normalised each time, so the cache stays within a few MB.
NORMALIZED_CACHE = 8192
NORMALIZED_MAX_CHARS = 400


@lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    # character-level t2s: the phrase-level tw2sp rewrites ordinary mainland words (see phrases.yaml)
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=MAX_FOLDERS)
def _phrases(folder: Path) -> tuple[re.Pattern | None, dict[str, str]]:
    """phrases.yaml of one dictionary folder, compiled once."""
    path = folder / "phrases.yaml"
    table = read_dictionary(path)
    table = {str(k): str(v) for k, v in (table or {}).items()}
    if not table:
        return None, {}
    keys = sorted(table, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, keys))), table


def to_simplified(text: str, folder: Path | None = None) -> str:
    """Traditional → Simplified characters, then the Taiwan-term fixes of phrases.yaml (of `folder`, else
    of the dictionaries in use)."""
    text = _converter().convert(text)
    pattern, table = _phrases(folder or dict_dir())
    return pattern.sub(lambda m: table[m.group(0)], text) if pattern else text


def to_display(text: str, folder: Path | None = None) -> str:
    """Simplified script, stray spaces inside Chinese words removed, runs of spaces folded (the phrases of
    `folder`, else of the dictionaries in use)."""
    text = to_simplified(text, folder)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


def normalize(text: str) -> str:
    """Matching form: display form, then NFKC (full-width → half-width) and case-folded."""
    folder = dict_dir()
    return _normalized(folder, text) if len(text) <= NORMALIZED_MAX_CHARS else _normalize(folder, text)


def _normalize(folder: Path, text: str) -> str:
    """normalize with the phrases of `folder`."""
    text = unicodedata.normalize("NFKC", to_display(text, folder))
    text = _SPACE_BETWEEN_CJK.sub("", text)  # NFKC turns U+3000 into a plain space
    return _SPACES.sub(" ", text).strip().lower()


_normalized = lru_cache(maxsize=NORMALIZED_CACHE)(_normalize)


def clear_caches() -> None:
    """Forget the phrase tables and the matching forms made with them (a dictionary folder's files changed)."""
    _phrases.cache_clear()
    _normalized.cache_clear()


cached_by_folder(clear_caches)
