"""Word tokens for BM25: jieba with the domain dictionary of knowledge/dict/, on normalised text.

Queries go through the same function, plus the colloquial→formal synonyms of synonyms.yaml.

jieba's own start-up reads its 350,000-word dictionary into a 500,000-entry dict: 0.5–2 s and
~65 MB in every process. The index build therefore writes the dictionary as it stands after the
domain words were added (`write_cache`) into the index folder, and a serving process
(`use_cache`) opens that file instead: the entries the knowledge base's own texts need are read at
once (tens of milliseconds), any other word is looked up in the file when a question first needs
it and remembered. The tokens are exactly jieba's (same frequencies, same total; a test compares
them on the whole knowledge base). The cache is used only while the domain words it was made
with are still those of the dictionary folder; otherwise the tokenizer is built as before.

jieba cuts a text one block at a time (a run of Chinese letters and digits, or one other character,
`jieba.re_han_default`), each without regard to the others, so a text's tokens are its blocks'
tokens in order. `tokens` therefore tokenises each block once and remembers it (`_Blocks`), and the
cache file also holds the tokens of every block of the knowledge base (table `blocks`): the
sentences compose reads (issue #9: ~30 % of an answer's time went to tokenising knowledge-base
sentences a process saw for the first time) cost a lookup, not jieba's ~10 µs per character.

There is one tokenizer per dictionary folder (`bot.text.dict_dir`: an index version's own copy
while answering from it), so a serving process that swaps in a new version keeps tokenising the
questions still on the old one with the old words; the tokenizers of the last MAX_FOLDERS folders
are kept.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.text import MAX_FOLDERS, cached_by_folder, dict_dir, read_dictionary
from bot.text.normalize import normalize


def _import_jieba() -> Any:
    """jieba, imported without `pkg_resources` (jieba's only use of it is to open its own data files,
    and it falls back to plain `open` when the import fails; importing pkg_resources costs ~250 ms)."""
    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    blocked = "pkg_resources" not in sys.modules
    if blocked:
        # None in sys.modules makes `import pkg_resources` raise ImportError (documented in the
        # import system reference; typeshed types the mapping as modules only).
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]
    try:
        import jieba
    finally:
        if blocked:
            del sys.modules["pkg_resources"]
    jieba.setLogLevel(logging.WARNING)
    return jieba


if TYPE_CHECKING:
    import jieba
else:
    jieba = _import_jieba()

STOPWORDS = frozenset(
    "的 了 是 吗 呢 吧 啊 呀 么 嘛 在 和 与 及 或 也 都 就 要 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 "
    "有 没有 什么 怎么 怎么办 怎样 如何 哪些 哪个 哪里 多少 几 是不是 能 能不能 可以 可不可以 会 吧 把 被 给 "
    "让 对 从 向 为 以 其 之 等 并 而 且 但 还 又 该 得 地 着 过 上 下 中 里 个 请问 一下 自己 需要 应该 "
    "应当 是否 有没有 一个 一次".split()
)
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff]")
MAX_ABSENT = 200_000  # remembered misses of a cached tokenizer before they are forgotten
MAX_BLOCKS = 100_000  # remembered blocks' tokens of a tokenizer before they are forgotten (~10 MB)
SQL_VARIABLES = 500  # blocks looked up in the cache file per query (SQLite allows 999 variables at least)
# what jieba cuts on its own: a run of these characters; any other character is a block of its own
_BLOCK = jieba.re_han_default

_lock = threading.Lock()
_tokenizers: dict[Path, jieba.Tokenizer] = {}  # by dictionary folder, oldest first
_cache_paths: dict[Path, Path] = {}  # dictionary folder → the cache file (words.sqlite) made with it


def domain_words(folder: Path | None = None) -> list[str]:
    """The normalised words of domain_words.txt (of `folder`, else of the dictionaries in use), in
    file order (comments and blanks skipped)."""
    path = (folder or dict_dir()) / "domain_words.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [w for w in (normalize(line.split("#")[0]) for line in lines) if w]


def dictionary_fingerprint(words: list[str]) -> str:
    """What a tokenizer's dictionary depends on: jieba's version and the domain words in order."""
    return hashlib.sha256("\n".join([f"jieba {jieba.__version__}", *words]).encode("utf-8")).hexdigest()


def _full_tokenizer(words: list[str]) -> jieba.Tokenizer:
    """A jieba tokenizer of our own (not jieba's global one) with the domain words added."""
    tk = jieba.Tokenizer()
    for word in words:
        tk.add_word(word)  # no explicit frequency: jieba then keeps the word whole
        tk.suggest_freq(word, tune=True)
    tk.fingerprint = dictionary_fingerprint(words)
    tk.blocks = _Blocks(tk)
    return tk


class _Words(dict):
    """jieba's frequency table (`Tokenizer.FREQ`), filled from the cache file as it is asked:
    the entries read up front, then one indexed lookup per new fragment, remembered.
    jieba reads FREQ only with `in`, `[]` and `.get`, all three answered here."""

    def __init__(self, entries: Iterable[tuple[str, int]], connection: sqlite3.Connection) -> None:
        """`entries` read up front; `connection` to the cache file for the rest."""
        super().__init__(entries)
        self._db = connection
        self._db_lock = threading.Lock()
        self._absent: set[str] = set()

    def _fetch(self, word: str) -> int | None:
        """The frequency of `word` from the file (None: not in the dictionary), remembered."""
        if word in self._absent:
            return None
        with self._db_lock:
            row = self._db.execute("select freq from words where word = ?", (word,)).fetchone()
        if row is None:
            if len(self._absent) > MAX_ABSENT:
                self._absent.clear()
            self._absent.add(word)
            return None
        dict.__setitem__(self, word, row[0])
        return row[0]

    def __contains__(self, word: object) -> bool:
        """`word in FREQ`: in memory, else in the file."""
        return dict.__contains__(self, word) or (isinstance(word, str) and self._fetch(word) is not None)

    def __getitem__(self, word: str) -> int:
        """`FREQ[word]`: in memory, else from the file; KeyError when in neither."""
        try:
            return dict.__getitem__(self, word)
        except KeyError:
            freq = self._fetch(word)
            if freq is None:
                raise
            return freq

    def get(self, word: Any, default: Any = None) -> Any:
        """`FREQ.get(word, default)`: in memory, else from the file."""
        freq = dict.get(self, word)
        if freq is None:
            freq = self._fetch(word)
        return default if freq is None else freq


class _Blocks:
    """The search tokens of a tokenizer's text blocks (see the module docstring), each worked out once:
    remembered, else read from the cache file's `blocks` table (`connection`, when it has one), else cut."""

    def __init__(self, tk: jieba.Tokenizer, connection: sqlite3.Connection | None = None,
                 lock: threading.Lock | None = None) -> None:
        """`tk` cuts the blocks not known; `connection` (used under `lock`) to a cache file with blocks."""
        self._tk = tk
        self._db = connection
        self._db_lock = lock or threading.Lock()
        self._known: dict[str, tuple[str, ...]] = {}

    def cut(self, block: str) -> tuple[str, ...]:
        """The search tokens of one block, cut by jieba (what the `blocks` table holds)."""
        return tuple(t for t in self._tk.cut_for_search(block) if t not in STOPWORDS and _WORD.search(t))

    def tokens(self, blocks: list[str]) -> list[str]:
        """The search tokens of a text's blocks, in order: each block's remembered, else stored in the cache
        file (one query for all of them), else cut now."""
        found = {b: self._known.get(b) for b in blocks}
        missing = [b for b, t in found.items() if t is None]
        if missing:
            stored = self._stored(missing)
            if len(self._known) + len(missing) > MAX_BLOCKS:
                self._known.clear()
            for b in missing:
                found[b] = self._known[b] = stored[b] if b in stored else self.cut(b)
        return [t for b in blocks for t in found[b] or ()]

    def _stored(self, blocks: list[str]) -> dict[str, tuple[str, ...]]:
        """The tokens the cache file holds for these blocks (none without a blocks table)."""
        if self._db is None:
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for i in range(0, len(blocks), SQL_VARIABLES):
            part = blocks[i:i + SQL_VARIABLES]
            query = f"select block, tokens from blocks where block in ({','.join('?' * len(part))})"
            with self._db_lock:
                rows = self._db.execute(query, part).fetchall()
            # tokens hold no white space (_WORD keeps none; jieba cuts it off as a token of its own)
            out.update((b, tuple(t.split())) for b, t in rows)
        return out


def cache_fingerprint(path: Path) -> str | None:
    """The dictionary fingerprint a cache file (`write_cache`) was made with; None when there is no
    readable one (a build then tokenises every chunk again)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return dict(db.execute("select key, value from meta")).get("fingerprint")
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _cached_tokenizer(path: Path, fingerprint: str) -> jieba.Tokenizer | None:
    """A tokenizer over the cache file at `path`, or None when there is none for these domain words."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        meta = dict(db.execute("select key, value from meta"))
        if meta.get("fingerprint") != fingerprint:
            db.close()
            return None
        entries = db.execute("select word, freq from words where hot = 1").fetchall()
        has_blocks = db.execute("select 1 from sqlite_master where type = 'table' and name = 'blocks'").fetchone()
    except sqlite3.Error:
        return None
    tk = jieba.Tokenizer()
    tk.FREQ = words = _Words(entries, db)
    tk.total = int(meta["total"])
    tk.initialized = True
    tk.fingerprint = fingerprint
    # a cache file from before the blocks table: every block is cut (the same tokens, only slower)
    tk.blocks = _Blocks(tk, db if has_blocks else None, words._db_lock)
    return tk


def _make_tokenizer(folder: Path) -> jieba.Tokenizer:
    """The cached tokenizer when a cache matching the folder's domain words is in use, else the full
    jieba one."""
    words = domain_words(folder)
    cache = _cache_paths.get(folder)
    if cache is not None and cache.exists():
        cached = _cached_tokenizer(cache, dictionary_fingerprint(words))
        if cached is not None:
            return cached
    return _full_tokenizer(words)


def tokenizer() -> jieba.Tokenizer:
    """The tokenizer of the dictionaries in use, made once under a lock: parallel first requests wait
    for the one being made instead of each making their own (16 at once stalled replies for 8–10 s)."""
    folder = dict_dir()
    tk = _tokenizers.get(folder)
    if tk is None:
        with _lock:
            tk = _tokenizers.get(folder)
            if tk is None:
                tk = _tokenizers[folder] = _make_tokenizer(folder)
                while len(_tokenizers) > MAX_FOLDERS:
                    del _tokenizers[next(iter(_tokenizers))]
    return tk


def use_cache(path: Path | None, folder: Path | None = None) -> None:
    """Read the dictionary of the dictionary folder `folder` (default: the one in use) from the cache
    file at `path` (an index folder's, see `write_cache`) from now on; None: build it from jieba's
    dictionary and the folder's domain words."""
    folder = Path(folder) if folder is not None else dict_dir()
    path = Path(path) if path is not None else None
    with _lock:
        if path != _cache_paths.get(folder):
            if path is None:
                del _cache_paths[folder]
            else:
                _cache_paths[folder] = path
            _tokenizers.pop(folder, None)


def write_cache(path: Path, texts: Iterable[str]) -> None:
    """Write the dictionary (jieba's plus the domain words, as `tokens` uses it) to a new SQLite file
    at `path`, marking as read-up-front every entry that tokenising `texts` (the knowledge base's
    chunks and questions) looks up: jieba tries each fragment that starts at a character for as
    long as the fragment is in its table (every prefix of a word is), so those are the ones. The
    tokens of every block of `texts` go into the table `blocks` (the sentences of an answer are made
    of them)."""
    words = domain_words()
    tk = tokenizer()  # the one the build tokenised with, unless it is itself a cached one
    if type(tk.FREQ) is not dict or getattr(tk, "fingerprint", None) != dictionary_fingerprint(words):
        tk = _full_tokenizer(words)
    tk.check_initialized()
    table = tk.FREQ
    longest = max(map(len, table))
    hot: set[str] = set()
    blocks: set[str] = set()
    for text in texts:
        text = normalize(text)
        blocks.update(b for b in _BLOCK.split(text) if b)
        for i in range(len(text)):
            for j in range(i + 1, min(len(text), i + longest) + 1):
                if text[i:j] not in table:
                    break
                hot.add(text[i:j])
    db = sqlite3.connect(str(path))
    try:
        db.execute("create table words (word text primary key, freq integer not null, hot integer not null)"
                   " without rowid")
        db.execute("create table meta (key text primary key, value text not null)")
        db.executemany("insert into words values (?, ?, ?)", ((w, f, w in hot) for w, f in table.items()))
        db.execute("create table blocks (block text primary key, tokens text not null) without rowid")
        db.executemany("insert into blocks values (?, ?)", ((b, " ".join(tk.blocks.tokens([b]))) for b in sorted(blocks)))
        db.executemany("insert into meta values (?, ?)", [
            ("fingerprint", dictionary_fingerprint(words)), ("total", str(tk.total)), ("hot", str(len(hot))),
            ("blocks", str(len(blocks)))])
        db.commit()
    finally:
        db.close()


def synonyms() -> dict[str, list[str]]:
    """Colloquial word → the documents' terms (synonyms.yaml and names.yaml of the dictionaries in use), normalised."""
    return _synonyms(dict_dir())


@lru_cache(maxsize=MAX_FOLDERS)
def _synonyms(folder: Path) -> dict[str, list[str]]:
    """synonyms.yaml and names.yaml (the catalogue diseases' names, bot/answering/catalogue.py) of one
    dictionary folder, read once; a word in both expands to the terms of both."""
    merged: dict[str, list[str]] = {}
    for name in ("synonyms.yaml", "names.yaml"):
        path = folder / name
        table = read_dictionary(path)
        for k, vs in (table or {}).items():
            terms = merged.setdefault(normalize(str(k)), [])
            terms += [t for t in (normalize(str(v)) for v in vs) if t not in terms]
    return merged


def tokens(text: str) -> list[str]:
    """Search tokens of already-normalised or raw text (normalised here again: idempotent): jieba's
    `cut_for_search` of the text without stop words and punctuation, block by block (_Blocks)."""
    return tokenizer().blocks.tokens([block for block in _BLOCK.split(normalize(text)) if block])


def query_tokens(query: str, base: list[str] | None = None) -> list[str]:
    """Tokens of a user's question, with colloquial words expanded to the documents' terms
    (`base`: the question's tokens when the caller has them already)."""
    base = tokens(query) if base is None else list(base)
    text = normalize(query)
    table = synonyms()
    found = [k for k in table if (k in text if len(k) > 1 else k in base)]
    extra = dict.fromkeys(t for k in found for s in table[k] for t in tokens(s))
    return base + [t for t in extra if t not in base]


def domain_cues() -> tuple[str, ...]:
    """Work/health cue words (domain_cues.txt), normalised: a question with one is about work."""
    return _domain_cues(dict_dir())


@lru_cache(maxsize=MAX_FOLDERS)
def _domain_cues(folder: Path) -> tuple[str, ...]:
    """domain_cues.txt of one dictionary folder, read once."""
    path = folder / "domain_cues.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return tuple(normalize(line) for line in lines if line.strip() and not line.startswith("#"))


def warm_up() -> None:
    """Make the tokenizer and read the synonyms and cue words now, at start, not in a first request."""
    query_tokens("职业健康检查")
    domain_cues()


def clear_caches() -> None:
    """Forget the tokenizers, synonyms and cue words (a dictionary folder's files changed)."""
    with _lock:
        _tokenizers.clear()
    _synonyms.cache_clear()
    _domain_cues.cache_clear()


cached_by_folder(clear_caches)
