"""The tokenizer: one per process however many first requests arrive at once, and the dictionary
cache of the index folder gives exactly jieba's tokens."""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.answering.compose import sentences
from bot.index import store
from bot.text import tokenize
from bot.text.normalize import normalize
from tests.helpers import REPO_ROOT

THREADS = 16


@pytest.fixture
def counted_tokenizers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count jieba tokenizers made from now on (starting from no tokenizer at all)."""
    made: list[int] = []
    original = tokenize.jieba.Tokenizer.__init__

    def counting(self: object, *args: object, **kwargs: object) -> None:
        """jieba.Tokenizer.__init__, counted."""
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(tokenize.jieba.Tokenizer, "__init__", counting)
    tokenize.use_cache(None)
    tokenize.clear_caches()
    yield made
    tokenize.clear_caches()


def run_at_once(function: Callable[[], object], n: int = THREADS) -> list:
    """Call `function` from n threads released together; their results in thread order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        """Wait for the others, then call."""
        barrier.wait()
        results[i] = function()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_parallel_first_requests_build_one_tokenizer(counted_tokenizers: list[int]) -> None:
    """Issue #11: 16 parallel first calls each built a tokenizer (the lru_cache did not lock)."""
    results = run_at_once(lambda: tokenize.tokens("用人单位应当为劳动者提供职业健康检查"))
    assert len(counted_tokenizers) == 1
    assert all(r == results[0] for r in results) and "职业健康检查" in "".join(results[0])


def test_the_retriever_warms_up_at_start_so_first_requests_build_nothing(
        built_index: tuple, encoder: object, counted_tokenizers: list[int]) -> None:
    """The tokenizer is made when the Retriever starts; 16 parallel first searches make none."""
    from bot.answering.retrieve import Retriever

    index_dir, _ = built_index
    retriever = Retriever(index_dir, "m3e-small", encoder=encoder)
    made_at_start = len(counted_tokenizers)
    results = run_at_once(lambda: [p.chunk.id for p in retriever.search("噪声超标怎么办", top_k=3)])
    assert made_at_start == 1 and len(counted_tokenizers) == 1  # made once, at start, not by the requests
    assert all(r == results[0] and r for r in results)


def eval_questions() -> list[str]:
    """Every question of the eval sets."""
    return [q.get("q") or q["question"] for f in sorted((REPO_ROOT / "tests" / "eval").glob("*.jsonl"))
                 for q in map(json.loads, filter(str.strip, f.read_text(encoding="utf-8").splitlines()))]


def whole_text_tokens(text: str) -> list[str]:
    """The search tokens as jieba gives them for the whole normalised text at once (what `tokens` gave before
    it cut block by block), with the tokenizer in use."""
    tk = tokenize.tokenizer()
    return [t for t in tk.cut_for_search(normalize(text)) if t not in tokenize.STOPWORDS and tokenize._WORD.search(t)]


def knowledge_texts(index_dir: Path) -> list[str]:
    """Every chunk's search text and display text, every sentence of it, every eval question, and texts
    the knowledge base never saw (full-width letters, mixed scripts, rare characters, white space)."""
    chunks, _ = store.read_chunks(index_dir)
    return ([c.search_text for c in chunks] + [c.text for c in chunks] + [s for c in chunks for s in sentences(c.text)]
            + eval_questions() + ["今天天气怎么样", "量子计算机的纠错码", "我家猫咪不吃饭怎么办", "ＡＢＣ１２３",
                                  "x-ray 3.5mg/m³ 噪声85db(a)，㈠\u3400字 \t 尘肺", "", "  "])


def test_the_index_dictionary_cache_gives_jiebas_tokens(built_index: tuple) -> None:
    """Tokens from the cache file of the index folder (its dictionary and its blocks' tokens) equal those of
    jieba built from its dictionary cutting each whole text, for the whole knowledge base, every eval question
    and text the knowledge base never saw."""
    index_dir, _ = built_index
    texts = knowledge_texts(index_dir)
    try:
        tokenize.use_cache(None)
        expected = [whole_text_tokens(t) for t in texts]
        assert type(tokenize.tokenizer().FREQ) is dict
        assert [tokenize.tokens(t) for t in texts] == expected  # cut block by block, remembered
        tokenize.use_cache(index_dir / store.WORDS)
        got = [tokenize.tokens(t) for t in texts]
        assert type(tokenize.tokenizer().FREQ) is not dict  # the cache is what answered
        assert tokenize.tokenizer().blocks._db is not None  # … with its blocks' tokens
    finally:
        tokenize.use_cache(None)
    assert got == expected


def test_the_cache_file_holds_every_block_of_the_knowledge_base(built_index: tuple) -> None:
    """The knowledge base's sentences are read from the cache file, not cut by jieba while answering."""
    index_dir, _ = built_index
    chunks, _ = store.read_chunks(index_dir)
    try:
        tokenize.use_cache(index_dir / store.WORDS)
        cut: list[str] = []
        blocks = tokenize.tokenizer().blocks
        blocks.cut = lambda block: cut.append(block) or ()  # type: ignore[method-assign]
        for c in chunks:
            tokenize.tokens(c.search_text)
        assert cut == []
    finally:
        tokenize.use_cache(None)


def test_a_cache_file_without_blocks_gives_the_same_tokens(built_index: tuple, tmp_path: Path) -> None:
    """An index built before the blocks table still answers with the same tokens (its blocks are cut)."""
    index_dir, _ = built_index
    old = tmp_path / store.WORDS
    shutil.copy(index_dir / store.WORDS, old)
    db = sqlite3.connect(old)
    db.execute("drop table blocks")
    db.commit()
    db.close()
    texts = knowledge_texts(index_dir)[:300] + eval_questions()[:100]
    try:
        tokenize.use_cache(None)
        expected = [whole_text_tokens(t) for t in texts]
        tokenize.use_cache(old)
        got = [tokenize.tokens(t) for t in texts]
        assert type(tokenize.tokenizer().FREQ) is not dict and tokenize.tokenizer().blocks._db is None
    finally:
        tokenize.use_cache(None)
    assert got == expected


def test_the_cache_is_not_used_when_the_domain_words_changed(built_index: tuple, tmp_path: Path) -> None:
    """Edited domain words (not rebuilt yet) win over a cache made with the old ones."""
    from bot.text import dict_dir, use_dictionaries

    index_dir, _ = built_index
    before = dict_dir()
    folder = tmp_path / "dict"
    folder.mkdir()
    for f in before.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with open(folder / "domain_words.txt", "a", encoding="utf-8") as f:
        f.write("\n噪声超标怎么办\n")
    try:
        use_dictionaries(folder)
        tokenize.use_cache(index_dir / store.WORDS)
        assert "噪声超标怎么办" in tokenize.tokens("噪声超标怎么办")
        assert type(tokenize.tokenizer().FREQ) is dict
    finally:
        tokenize.use_cache(None)
        use_dictionaries(Path(before))
