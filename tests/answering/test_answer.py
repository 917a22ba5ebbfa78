"""The answering engine and `ohbot ask`: grounded answers with sources, refusals out of domain."""
from __future__ import annotations

import io
import json
import re

import pytest

from bot.answering.answer import REFUSAL, SENTENCE, answer
from bot.answering.evaluate import is_hit, load_questions
from bot.cli import main
from tests.helpers import REPO_ROOT as REPO

DEV = REPO.parent / "shared" / "eval" / "dev-questions.jsonl"
OWN = [REPO / "tests" / "eval" / name for name in ("materials-a.jsonl", "materials-b.jsonl", "ood.jsonl")]


def question_sets() -> list[dict]:
    items = [q for f in OWN for q in load_questions(f)]
    if DEV.exists():
        items += load_questions(DEV)
    return items


def answered(result) -> str:
    return "\n".join([result.text] + [f"{p.chunk.heading}\n{p.chunk.text}" for p in result.passages])


def test_answerable_questions_are_answered_with_their_gold(retriever):
    items = [q for q in question_sets() if q.get("gold")]
    hits = [is_hit(answered(answer(retriever, q["q"])), q["gold"]) for q in items]
    rate = sum(hits) / len(hits)
    assert len(items) >= 100
    assert rate >= 0.9, f"only {rate:.1%} of answerable questions contain a gold group"


def test_every_out_of_domain_question_is_refused(retriever):
    items = [q for q in question_sets() if q["kind"] == "ood"]
    assert len(items) >= 40
    wrongly = [q["q"] for q in items if answer(retriever, q["q"]).found]
    assert wrongly == []


def test_answer_cites_its_source_and_stays_short(retriever):
    result = answer(retriever, "单位有没有义务在岗位设置警示标识？")
    assert result.found and "来源：" in result.text
    body = result.text.split("来源：")[0]
    assert len(body) <= 700
    assert "警示标识" in answered(result)


def test_refusal_points_to_help(retriever):
    result = answer(retriever, "今天天气怎么样")
    assert not result.found and result.text == REFUSAL
    assert "12320" in result.text and "卫生健康主管部门" in result.text


def test_traditional_script_question_is_answered(retriever):
    result = answer(retriever, "體檢費要我自己出嗎？")
    assert result.found and "用人单位" in result.text


def test_faq_card_answers_a_close_question(retriever):
    result = answer(retriever, "职业健康检查的费用要我自己出吗？")
    card = retriever.by_faq[result.faq_id]  # KeyError when no card (or an unknown one) answered
    assert "费" in card.section[0]  # the card about who pays for the examination
    assert "用人单位" in result.text and "来源" in result.text


def test_extractive_answer_is_text_from_the_knowledge_base(retriever):
    result = answer(retriever, "广东建成了多少个尘肺病康复站")
    assert result.found and result.faq_id is None
    body = result.text.split("\n\n来源：")[0].replace("（本条为防护常识，尚待职业卫生专业人员审核）", "")
    corpus = "\n".join(c.text for c in retriever.chunks)
    headings = re.findall(r"【(.+?)】", body)
    assert headings and all(any(h == c.section[-1] for c in retriever.chunks if c.section) for h in headings)
    body = re.sub(r"【.+?】", "", body)
    sentences = [s.strip() for s in SENTENCE.findall(body) if s.strip()]
    assert sentences
    for sentence in sentences:
        assert sentence in corpus, f"answer sentence not found verbatim in the knowledge base: {sentence}"


def test_ask_json_prints_the_documented_object(built_index, data_dir, capsys):
    assert main(["--data-dir", str(data_dir), "ask", "噪声多大要戴耳塞", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"question", "answer", "found", "confidence", "passages", "faq_id"}
    assert out["found"] is True and 0.0 <= out["confidence"] <= 1.0
    assert set(out["passages"][0]) == {"text", "title", "section", "date", "score"}


def test_ask_json_batch_reads_one_question_per_line(built_index, data_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("体检费谁出\n\n怎么做红烧肉\n"))
    assert main(["--data-dir", str(data_dir), "ask", "-", "--json"]) == 0
    lines = [json.loads(row) for row in capsys.readouterr().out.splitlines()]
    assert [row["question"] for row in lines] == ["体检费谁出", "怎么做红烧肉"]
    assert [row["found"] for row in lines] == [True, False]


@pytest.mark.parametrize("model", ["another-model"])
def test_ask_with_another_model_fails_clearly(built_index, data_dir, capsys, model):
    assert main(["--data-dir", str(data_dir), "--model", model, "ask", "体检费谁出"]) == 2
    err = capsys.readouterr().err
    assert "m3e-small" in err and model in err and "build-index" in err


def test_a_card_answers_only_a_paraphrase_of_its_own_question(retriever):
    # the riders card says "算。" about being a key group; it must not answer a work-injury question
    assert answer(retriever, "外卖骑手夏天中暑了算工伤吗").faq_id is None
    assert answer(retriever, "外卖骑手算不算职业健康重点人群").found


@pytest.mark.xfail(strict=True, reason="the new work-injury material shares words with 迟到扣钱; labour questions "
                   "get their own referral in issue #9")
def test_questions_about_things_the_knowledge_base_never_mentions_are_refused(retriever):
    near = load_questions(REPO / "tests" / "eval" / "near-ood.jsonl")
    refused = [q["q"] for q in near if not answer(retriever, q["q"]).found]
    assert "上班迟到扣钱合法吗" in refused and "公司团建去哪里玩好" in refused
    assert len(refused) >= 7
