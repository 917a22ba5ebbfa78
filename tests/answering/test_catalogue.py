"""\"X 算不算职业病\" answered from the catalogue's own list; the door cue words and variants load."""
from __future__ import annotations

import pytest
import yaml

from bot.answering.answer import answer
from bot.answering.catalogue import asked
from bot.answering.decide import cues_in
from index_builder.cards import load_variants
from tests.helpers import KNOWLEDGE


@pytest.mark.parametrize("question, name, what", [
    ("颈椎病是职业病吗？", "颈椎病", "职业病"),
    ("老师得了慢性咽炎也算一种职业病吗", "慢性咽炎", "职业病"),
    ("长期噪声引起耳聋，能算职业病吗", "耳聋", "职业病"),
    ("我得了尘肺病，能不能算职业病", "尘肺病", "职业病"),
    ("中暑算不算工伤", "中暑", "工伤"),
    ("哪些病属于职业病", None, "职业病"),
    ("这个算职业病吗", None, "职业病"),
    ("体检费谁出", None, None),
])
def test_the_disease_a_question_asks_about(question, name, what):
    found, kind = asked(question)
    assert found == name and (kind == what or name is None)


def test_a_listed_disease_is_answered_from_the_section_that_lists_it(retriever):
    result = answer(retriever, "冻伤算不算职业病")
    assert result.found and result.passages[0].chunk.doc_id == "disease-catalogue"
    assert "冻伤" in result.text


def test_mercury_poisoning_by_its_everyday_name_is_found_in_the_list(retriever):
    # 水银 is 汞: the catalogue's "汞及其化合物中毒", not a disease the list does not name
    result = answer(retriever, "水银中毒算不算职业病")
    assert result.found and result.passages[0].chunk.doc_id == "disease-catalogue"
    assert "没有单列" not in result.text and "汞及其化合物中毒" in result.text


def test_a_disease_listed_in_several_sections_is_answered_from_the_one_listing_it_most(retriever):
    # 肺癌: one radiation entry (矿工高氡暴露所致肺癌) comes first in the catalogue, the tumours list six causes of it
    result = answer(retriever, "在棉纺厂干了二十年得了肺癌，算职业病吗")
    assert result.text.startswith("“职业性肿瘤”类"), result.text


def test_a_disease_the_list_does_not_name_gets_a_verdict_in_the_users_words(retriever):
    result = answer(retriever, "颈椎病算职业病吗")
    assert result.found
    assert result.text.startswith("《职业病分类和目录》里没有单列“颈椎病”。")
    assert "不属于职业病" in result.text or "不能被诊断为职业病" in result.text
    assert result.passages[0].chunk.section[-1].startswith("病不在目录里")


def test_an_unlisted_name_points_to_the_category_its_words_name(retriever):
    # 皮肤过敏 is not a catalogue entry; its tail 过敏 alone must not match 过敏性肺炎 (a respiratory
    # disease), and the pointer names the skin category with its diseases, not just a heading
    result = answer(retriever, "皮肤过敏算不算职业病")
    assert result.text.startswith("《职业病分类和目录》里没有单列“皮肤过敏”。")
    pointer = next(line for line in result.text.split("\n") if line.startswith("目录中相近的类别："))
    assert "职业性皮肤病" in pointer and "接触性皮炎" in pointer
    assert "过敏性肺炎" not in result.text


@pytest.mark.parametrize("question, known, called, heading", [
    ("电焊眼算职业病吗", "电焊眼", "电光性眼炎", "哪些眼病"),
    ("潜水病算不算职业病", "潜水病", "减压病", "中暑、冻伤、振动病"),
    ("布病是职业病吗", "布病", "布鲁氏菌病", "哪些传染病"),
    # by its tail alone 热射病 matched 放射病 (the radiation diseases): the name table says it is 中暑
    ("工地上得了热射病，算职业病吗", "热射病", "中暑", "中暑、冻伤、振动病"),
])
def test_a_disease_by_a_name_workers_use_is_answered_by_the_catalogues_name(retriever, question, known, called, heading):
    result = answer(retriever, question)
    assert result.text.startswith(f"“{known}”对应《职业病分类和目录》里的“{called}”。"), result.text
    assert "没有单列" not in result.text and result.text.count(called) >= 2  # the section's list names it too
    assert result.passages[0].chunk.section[-1].startswith(heading)


def test_a_name_inside_another_word_is_not_a_name_workers_use():
    from bot.answering.catalogue import catalogue_name
    assert catalogue_name("做电焊眼睛疼") is None  # 电焊眼睛: the eyes, a symptom (left to retrieval)
    assert catalogue_name("黑肺病") == ("黑肺", ("煤工尘肺",))


def test_every_name_in_the_name_table_is_a_name_the_catalogue_lists():
    table = yaml.safe_load((KNOWLEDGE / "dict" / "names.yaml").read_text(encoding="utf-8"))
    catalogue = (KNOWLEDGE / "materials" / "disease-catalogue.md").read_text(encoding="utf-8")
    assert table and all(names and all(n in catalogue for n in names) for names in table.values())
    assert not [k for k in table if k in catalogue]  # a name the catalogue itself uses needs no entry


def test_a_name_workers_use_expands_the_bm25_query_to_the_catalogues_name():
    from bot.text.tokenize import query_tokens
    assert "电光性眼炎" in query_tokens("电焊眼怎么办") or {"电光", "眼炎"} <= set(query_tokens("电焊眼怎么办"))


def test_a_symptom_is_left_to_retrieval():
    # "眼睛疼" is not a disease's name: no "not listed" verdict about it
    assert asked("做电焊眼睛疼算不算职业病")[0] == "做电焊眼睛疼"
    from bot.answering.catalogue import DISEASE_LIKE
    assert not DISEASE_LIKE.search("做电焊眼睛疼")


def test_door_cue_words_are_general_vocabulary_lists():
    table = yaml.safe_load((KNOWLEDGE / "dict" / "doors.yaml").read_text(encoding="utf-8"))
    assert {"oh", "workplace", "labour", "labour_weak", "medical", "injury", "environment"} <= set(table)
    assert all(isinstance(w, str) and w.strip() for words in table.values() for w in words)
    cues = cues_in("公司拖欠工资")
    assert cues["labour"] == ["工资", "拖欠"] and not cues["oh"]


def test_every_variant_names_a_card_or_a_section(built_index):
    variants, errors = load_variants(KNOWLEDGE)
    assert errors == [] and len(variants) >= 40
    _, report = built_index
    assert not [e for e in report.errors if e.startswith("variants")]
