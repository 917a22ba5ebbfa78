"""normalize keeps the matching forms it made, by dictionary folder: a form made with one folder's phrases
is never the answer for another folder, nor after the folder's phrases were edited and reloaded."""
from __future__ import annotations

from pathlib import Path

from bot.text import reading, reload_dictionaries
from bot.text.normalize import NORMALIZED_MAX_CHARS, _normalize, normalize
from tests.helpers import REPO_ROOT

TEXT = "網路上說噪聲聾　能 治好嗎？ＡＢＣ"


def dictionary_folder(tmp_path: Path, name: str, phrases: str) -> Path:
    """A copy of knowledge/dict with its own phrases.yaml."""
    folder = tmp_path / name
    folder.mkdir()
    for f in (REPO_ROOT / "knowledge" / "dict").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "phrases.yaml").write_text(phrases, encoding="utf-8")
    return folder


def test_normalize_gives_the_same_forms_cached_or_not() -> None:
    """Short texts (kept) and long ones (not kept) have the form the uncached function gives, every time."""
    from bot.text import dict_dir

    long = TEXT * (NORMALIZED_MAX_CHARS // len(TEXT) + 1)
    for text in (TEXT, long, "", "  ", "ＡＢＣ１２３"):
        assert normalize(text) == normalize(text) == _normalize(dict_dir(), text)
    assert normalize(TEXT) == "网络上说噪声聋能治好吗?abc"


def test_each_folder_has_its_own_forms_and_a_reload_forgets_them(tmp_path: Path) -> None:
    """The same text in two index versions' folders (different phrases) and after an edit of one."""
    first = dictionary_folder(tmp_path, "first", "网路: 网络\n")
    second = dictionary_folder(tmp_path, "second", "网路: 互联网\n")
    with reading(first):
        assert normalize(TEXT).startswith("网络上说")
    with reading(second):
        assert normalize(TEXT).startswith("互联网上说")
    with reading(first):
        assert normalize(TEXT).startswith("网络上说")  # still its own, though the other's was made since
    (first / "phrases.yaml").write_text("网路: 因特网\n", encoding="utf-8")
    reload_dictionaries()  # a build reads the edited files again
    with reading(first):
        assert normalize(TEXT).startswith("因特网上说")
