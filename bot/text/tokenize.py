"""Word tokens for BM25: jieba with the domain dictionary of knowledge/dict/, on normalised text.

Queries go through the same function, plus the colloquial→formal synonyms of synonyms.yaml.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

import jieba
import yaml

from bot.text import dict_dir
from bot.text.normalize import normalize

STOPWORDS = frozenset(
    "的 了 是 吗 呢 吧 啊 呀 么 嘛 在 和 与 及 或 也 都 就 要 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 "
    "有 没有 什么 怎么 怎么办 怎样 如何 哪些 哪个 哪里 多少 几 是不是 能 能不能 可以 可不可以 会 吧 把 被 给 "
    "让 对 从 向 为 以 其 之 等 并 而 且 但 还 又 该 得 地 着 过 上 下 中 里 个 请问 一下 自己 需要 应该 "
    "应当 是否 有没有 一个 一次".split()
)
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff]")


@lru_cache(maxsize=1)
def tokenizer() -> jieba.Tokenizer:
    """A jieba tokenizer of our own (not jieba's global one) with the domain words added."""
    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    words = dict_dir() / "domain_words.txt"
    if words.exists():
        for line in words.read_text(encoding="utf-8").splitlines():
            word = normalize(line.split("#")[0])
            if word:
                tk.add_word(word)  # no explicit frequency: jieba then keeps the word whole
                tk.suggest_freq(word, tune=True)
    return tk


@lru_cache(maxsize=1)
def synonyms() -> dict[str, list[str]]:
    path = dict_dir() / "synonyms.yaml"
    table = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {normalize(str(k)): [normalize(str(v)) for v in vs] for k, vs in (table or {}).items()}


def tokens(text: str) -> list[str]:
    """Search tokens of already-normalised or raw text (normalised here again: idempotent)."""
    return [
        t
        for t in tokenizer().cut_for_search(normalize(text))
        if t not in STOPWORDS and _WORD.search(t)
    ]


def query_tokens(query: str, base: list[str] | None = None) -> list[str]:
    """Tokens of a user's question, with colloquial words expanded to the documents' terms
    (`base`: the question's tokens when the caller has them already)."""
    base = tokens(query) if base is None else list(base)
    text = normalize(query)
    found = [k for k in synonyms() if (k in text if len(k) > 1 else k in base)]
    extra = dict.fromkeys(t for k in found for s in synonyms()[k] for t in tokens(s))
    return base + [t for t in extra if t not in base]


@lru_cache(maxsize=1)
def domain_cues() -> tuple[str, ...]:
    """Work/health cue words (domain_cues.txt), normalised: a question with one is about work."""
    path = dict_dir() / "domain_cues.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return tuple(normalize(line) for line in lines if line.strip() and not line.startswith("#"))


def clear_caches() -> None:
    """Forget the tokenizer, synonyms and cue words (the dictionary folder changed)."""
    tokenizer.cache_clear()
    synonyms.cache_clear()
    domain_cues.cache_clear()
