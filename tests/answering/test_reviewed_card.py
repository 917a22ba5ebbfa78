"""A reviewed FAQ card added for a recurring question wins over retrieval the next time it is asked."""
from __future__ import annotations

import shutil

import yaml

from bot.answering.answer import answer
from bot.answering.retrieve import Retriever
from index_builder.build import build_index
from tests.conftest import BACKEND, MODEL
from tests.helpers import KNOWLEDGE

GAP = "厂里让我们自己掏钱去体检，这个钱该谁出啊"
CARD = {
    "id": "faq-review-001", "question": GAP, "variants": ["体检的钱要工人自己掏吗", "职业病体检费用谁负担"],
    "answer": "不该你出。职业健康检查的费用由用人单位承担。", "audience": "worker",
    "cite": "《职业病防治法》第三十五条", "ref": "law-zybfzf#第三十五条",
}


def small_knowledge(folder):
    """Two materials, one card file and the dictionaries: enough to answer exam questions."""
    (folder / "materials").mkdir(parents=True)
    (folder / "faq").mkdir()
    for name in ("health-exams.md", "hazard-noise.md", "law-zybfzf.md"):
        shutil.copy(KNOWLEDGE / "materials" / name, folder / "materials" / name)
    shutil.copy(KNOWLEDGE / "faq" / "health-exams.yaml", folder / "faq" / "health-exams.yaml")
    shutil.copytree(KNOWLEDGE / "dict", folder / "dict")
    return folder


def test_a_reviewed_card_for_a_gap_question_wins_next_time(tmp_path, encoder):
    knowledge = small_knowledge(tmp_path / "knowledge")
    index = tmp_path / "index"
    build_index(knowledge, index, MODEL, BACKEND, encoder=encoder)
    before = answer(Retriever(index, MODEL, BACKEND, encoder=encoder), GAP)
    assert before.faq_id != CARD["id"]

    (knowledge / "faq" / "reviewed.yaml").write_text(yaml.safe_dump([CARD], allow_unicode=True), encoding="utf-8")
    report = build_index(knowledge, index, MODEL, BACKEND, encoder=encoder)
    assert report.embedded == 1  # only the new card: everything else is reused
    retriever = Retriever(index, MODEL, BACKEND, encoder=encoder)
    after = answer(retriever, GAP + "？")  # punctuation aside, word for word
    assert after.found and after.faq_id == CARD["id"] and after.confidence == 1.0
    assert after.text.startswith("不该你出。")
