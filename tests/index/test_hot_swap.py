"""A new index replaces the served one without a restart (issue #14): `ohbot build-index` writes a new
version and swaps the link DATA_DIR/index in one rename (bot/index/store.py `publish`); a serving
process's `LiveIndex` notices, loads it beside the old one and swaps the reference; a broken one is
refused and the old keeps serving. The end-to-end run with a real `ohbot serve` is
tests/web/test_index_swap_e2e.py."""
from __future__ import annotations

import gc
import logging
import os
import random
import shutil
import weakref
from pathlib import Path

import pytest
import yaml

from bot.answering.answer import answer
from bot.answering.retrieve import LiveIndex, Retriever
from bot.index import store
from index_builder.build import build_index
from tests.answering.test_reviewed_card import small_knowledge
from tests.conftest import BACKEND, MODEL

QUESTION = "蓝鲸测试厂的热替换卡片编号是多少"  # test data only: no fact about any law
CARD = {"id": "faq-hotswap-001", "question": QUESTION, "variants": [],
        "answer": "这是热替换测试卡片，编号 HS-7431。", "audience": "all", "cite": "", "ref": ""}


def fake_index(folder: Path, tag: str) -> Path:
    """A folder that stands for a complete index (publish and prune only move folders)."""
    folder.mkdir(parents=True)
    (folder / "index.db").write_text(tag, encoding="utf-8")
    return folder


def versions(index_dir: Path) -> list[str]:
    """The completed versions on disk, oldest first."""
    return sorted(p.name for p in store.versions_dir(index_dir).iterdir() if not p.name.startswith("."))


def test_publish_replaces_the_link_adopts_an_old_folder_and_keeps_two_versions(tmp_path):
    index_dir = tmp_path / "data" / "index"
    fake_index(index_dir, "before versions")  # a real folder, as builds made before versions left it
    published = []
    for n in range(3):
        built = fake_index(store.build_folder(index_dir), f"build {n}")
        published.append(store.publish(built, index_dir))
        assert index_dir.is_symlink() and index_dir.resolve() == published[-1].resolve()
        assert (index_dir / "index.db").read_text(encoding="utf-8") == f"build {n}"
        assert not os.path.isabs(os.readlink(index_dir))  # relative: the data directory can be moved
    # the current version and the previous one are kept; the adopted folder and build 0 are gone
    assert versions(index_dir) == [published[1].name, published[2].name]
    assert not list(tmp_path.joinpath("data").glob(".index.link-*"))


def test_prune_removes_build_folders_of_dead_processes_only(tmp_path):
    index_dir = tmp_path / "index"
    store.publish(fake_index(store.build_folder(index_dir), "v1"), index_dir)
    mine = fake_index(store.versions_dir(index_dir) / f".building-{os.getpid()}", "under way")
    dead = fake_index(store.versions_dir(index_dir) / ".building-999999999", "crashed")  # above pid_max
    assert store.prune(index_dir) == [dead]
    assert mine.exists() and not dead.exists()


@pytest.fixture
def knowledge(tmp_path):
    return small_knowledge(tmp_path / "knowledge")


def build(knowledge: Path, index_dir: Path, encoder) -> None:
    report = build_index(knowledge, index_dir, MODEL, BACKEND, encoder=encoder)
    assert report.chunks > 0 and not [e for e in report.errors if not e.startswith("variants:")]  # a cut knowledge folder


def add_card(knowledge: Path) -> None:
    (knowledge / "faq" / "hotswap.yaml").write_text(yaml.safe_dump([CARD], allow_unicode=True), encoding="utf-8")


def test_a_rebuilt_index_is_swapped_in_while_a_question_in_flight_keeps_the_old(knowledge, tmp_path, encoder, caplog):
    index_dir = tmp_path / "data" / "index"
    build(knowledge, index_dir, encoder)
    live = LiveIndex(Retriever(index_dir, MODEL, BACKEND, encoder=encoder), index_dir, MODEL, BACKEND,
                     check_seconds=0.0)
    in_flight = live.current
    assert answer(in_flight, QUESTION).faq_id != CARD["id"]
    assert live.check() is False and live.loading is None  # nothing new: no load

    add_card(knowledge)
    build(knowledge, index_dir, encoder)
    build(knowledge, index_dir, encoder)  # twice: the version in_flight was loaded from is removed
    assert not in_flight.index_dir.exists()
    with caplog.at_level(logging.INFO, logger="bot.answering.retrieve"):
        assert live.current is in_flight  # the check starts a background load and answers from the old
        live.join(60)
    swapped = live.current
    assert swapped is not in_flight and swapped.index_dir == index_dir.resolve()
    assert answer(swapped, QUESTION).faq_id == CARD["id"]
    assert swapped.encoder is in_flight.encoder and swapped.query_cache is in_flight.query_cache  # one model
    assert [r.levelname for r in caplog.records] == ["INFO"] and "swapped in" in caplog.records[0].message
    # the question that started on the old index finishes on it, though its folder is deleted
    assert answer(in_flight, QUESTION).faq_id != CARD["id"]
    old = weakref.ref(in_flight)
    del in_flight
    gc.collect()
    assert old() is None  # nothing keeps the old index alive once its last question is done


def test_a_damaged_new_index_is_refused_once_and_the_old_one_keeps_serving(knowledge, tmp_path, encoder, caplog):
    index_dir = tmp_path / "data" / "index"
    build(knowledge, index_dir, encoder)
    serving = Retriever(index_dir, MODEL, BACKEND, encoder=encoder)
    live = LiveIndex(serving, index_dir, MODEL, BACKEND, check_seconds=0.0)
    broken = store.build_folder(index_dir)
    shutil.copytree(index_dir.resolve(), broken)
    matrix = broken / store.DENSE_MATRIX
    matrix.write_bytes(random.Random(5).randbytes(matrix.stat().st_size))  # a bad copy: same size
    store.publish(broken, index_dir)
    with caplog.at_level(logging.INFO, logger="bot.answering.retrieve"):
        assert live.check() is True
        live.join(60)
        assert live.current is serving
        assert live.check() is False and live.loading is None  # refused once, not tried at every check
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "refused" in caplog.records[0].message and "dense.npy" in caplog.records[0].message
    assert answer(live.current, "体检费谁出").found

    add_card(knowledge)
    build(knowledge, index_dir, encoder)  # the next good build is taken
    assert live.check() is True
    live.join(60)
    assert answer(live.current, QUESTION).faq_id == CARD["id"]


NEW_WORD = "噪声作业"  # in the noise material, cut in two by jieba until it is a domain word
SLANG = "蓝鲸检"  # an invented colloquial word (test data only), mapped to the documents' term
SLANG_QUESTION = f"{SLANG}的费用由谁承担？"


def edit_dictionaries(knowledge: Path) -> None:
    """A new domain word and a new synonym in the knowledge folder's dictionaries."""
    with open(knowledge / "dict" / "domain_words.txt", "a", encoding="utf-8") as f:
        f.write(f"\n{NEW_WORD}\n")
    synonyms = knowledge / "dict" / "synonyms.yaml"
    table = yaml.safe_load(synonyms.read_text(encoding="utf-8"))
    table[SLANG] = ["职业健康检查"]
    synonyms.write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")


def question_tokens(retriever: Retriever, text: str) -> list[str]:
    """A question's expanded tokens as `retriever` reads them (with its index version's dictionaries)."""
    from bot.text import reading
    from bot.text.tokenize import query_tokens

    with reading(retriever.dict_dir):
        return query_tokens(text)


def test_the_dictionaries_are_swapped_with_the_index_and_questions_on_the_old_keep_the_old(knowledge, tmp_path,
                                                                                            encoder):
    from bot.text import dict_dir

    index_dir = tmp_path / "data" / "index"
    build(knowledge, index_dir, encoder)
    live = LiveIndex(Retriever(index_dir, MODEL, BACKEND, encoder=encoder), index_dir, MODEL, BACKEND,
                     check_seconds=0.0)
    old = live.current
    assert old.dict_dir == index_dir.resolve() / "dict"  # its own copy, not the knowledge folder's
    assert NEW_WORD not in old.vocab and not old.bm25_scores(SLANG).any()  # the word alone: no match

    edit_dictionaries(knowledge)  # the served version's copy is not touched by the edit
    build(knowledge, index_dir, encoder)
    assert live.check() is True
    live.join(60)
    new = live.current
    assert new is not old and new.dict_dir == new.index_dir / "dict"
    # the new version: tokenised with the new domain word (the chunks' tokens were not reused) and
    # questions read with it and with the new synonym
    assert NEW_WORD in new.vocab and NEW_WORD in question_tokens(new, f"{NEW_WORD}要注意什么")
    assert "职业健康检查" in question_tokens(new, SLANG_QUESTION)
    assert new.bm25_scores(SLANG).max() > 0
    assert "职业健康检查" in answer(new, SLANG_QUESTION).draft  # the best unit is found by the new word
    # the old version, still answering questions in flight, reads them with its own dictionaries
    assert NEW_WORD not in question_tokens(old, f"{NEW_WORD}要注意什么")
    assert "职业健康检查" not in question_tokens(old, SLANG_QUESTION) and not old.bm25_scores(SLANG).any()
    assert dict_dir() == knowledge / "dict"  # outside any question: the process's (the build's) folder


def test_an_index_without_a_dictionary_copy_reads_the_knowledge_folders(knowledge, tmp_path, encoder):
    """An index version built before versions held their dictionaries: the process's (knowledge/dict)."""
    import json
    import sqlite3

    from bot.text import use_dictionaries

    index_dir = tmp_path / "index"
    build(knowledge, index_dir, encoder)
    folder = index_dir.resolve()
    shutil.rmtree(folder / "dict")
    with sqlite3.connect(folder / "index.db") as db:
        (value,) = db.execute("select value from manifest where key = 'checksums'").fetchone()
        kept = {k: v for k, v in json.loads(value).items() if not k.startswith("dict/")}
        db.execute("update manifest set value = ? where key = 'checksums'", (json.dumps(kept),))
    db.close()
    use_dictionaries(knowledge / "dict")
    retriever = Retriever(index_dir, MODEL, BACKEND, encoder=encoder)
    assert retriever.dict_dir == knowledge / "dict"
    assert answer(retriever, "体检费谁出").found
