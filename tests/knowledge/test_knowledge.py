"""Every material, FAQ card and quiz item in knowledge/ is well-formed and its citation resolves."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import yaml

from bot.cli import main
from bot.quiz.bank import load_bank, problems
from index_builder.cards import load_cards
from index_builder.ingest import METADATA_FIELDS, load_documents
from tests.helpers import KNOWLEDGE

TAXONOMY = yaml.safe_load((KNOWLEDGE / "taxonomy.yaml").read_text(encoding="utf-8"))
DOCS, DOC_ERRORS = load_documents(KNOWLEDGE)
CARDS, CARD_ERRORS = load_cards(KNOWLEDGE)
ALL_ITEMS = load_bank(KNOWLEDGE)
ITEMS = [i for i in ALL_ITEMS if not i.retired]  # the items a form can draw
BY_ID = {d.doc_id: d for d in DOCS}
KEY_INDUSTRIES = [k for k in TAXONOMY["industries"] if k != "other"]


def headings(doc_id: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"(?m)^#{1,6}\s+(.+)$", BY_ID[doc_id].text)]


def resolves(ref: str) -> bool:
    doc_id, _, section = ref.partition("#")
    if doc_id not in BY_ID:
        return False
    return not section or any(section in h for h in headings(doc_id))


def test_every_document_reads_with_complete_metadata():
    assert DOC_ERRORS == []
    materials = [d for d in DOCS if d.path.parent.name == "materials"]
    assert len(materials) >= 15
    for doc in materials:
        assert not [f for f in METADATA_FIELDS if f not in ("date",) and not doc.meta.get(f)], doc.doc_id
        assert doc.meta.get("status") in ("reviewed", "sourced", "draft"), doc.doc_id
        assert len(headings(doc.doc_id)) >= 3, doc.doc_id


def test_law_articles_each_have_a_section():
    sections = headings("law-zybfzf")
    for article in ["第十六条", "第三十五条", "第三十九条", "第七十一条", "第八十六条"]:
        assert any(h.startswith(article) for h in sections), article


def test_faq_cards_are_well_formed_and_cited():
    assert CARD_ERRORS == []
    assert len(CARDS) >= 120
    assert len({c.id for c in CARDS}) == len(CARDS)
    for card in CARDS:
        assert len(card.variants) >= 2, card.id
        assert 0 < len(card.answer) <= 300, card.id
        assert card.audience in ("worker", "employer", "all"), card.id
        assert card.cite and resolves(card.ref), f"{card.id}: {card.ref}"


def test_quiz_items_are_valid_and_cited():
    assert len(ITEMS) >= 300
    assert len({i.id for i in ALL_ITEMS}) == len(ALL_ITEMS)  # an id is never reused, retired or not
    retired = [i for i in ALL_ITEMS if i.retired]
    assert all(i.replaced_by in {j.id for j in ITEMS} for i in retired)
    bad = {i.id: problems(i, TAXONOMY) for i in ITEMS if problems(i, TAXONOMY)}
    assert bad == {}
    unresolved = [(i.id, i.ref) for i in ITEMS if not resolves(i.ref)]
    assert unresolved == []
    law = [i for i in ITEMS if "职业病防治法》第" in i.cite]
    assert law and all("#第" in i.ref for i in law)


@pytest.mark.parametrize("audience", ["worker", "employer"])
def test_each_dimension_fills_a_form_for_each_audience(audience):
    counts = Counter(i.dimension for i in ITEMS if i.audience in (audience, "all"))
    for dimension in TAXONOMY["dimensions"]:
        assert counts[dimension] >= 20, (audience, dimension, counts[dimension])


def test_every_key_industry_has_items_of_its_own():
    counts = Counter(ind for i in ITEMS for ind in i.industries)
    assert {k: counts[k] for k in KEY_INDUSTRIES if counts[k] < 8} == {}


def test_bank_list_json_prints_every_item(capsys):
    assert main(["bank", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == len(ALL_ITEMS)
    assert {"id", "type", "stem", "options", "answer", "dimension", "audience", "industries", "cite"} <= set(items[0])


def test_faq_questions_find_their_card_or_material(retriever):
    sample = CARDS[::5]
    found = 0
    for card in sample:
        passages = retriever.search(card.variants[0], top_k=3)
        targets = {card.id}
        doc = card.ref.partition("#")[0]
        found += any(p.chunk.faq_id in targets or p.chunk.doc_id == doc for p in passages)
    assert found / len(sample) >= 0.9, f"{found}/{len(sample)}"
