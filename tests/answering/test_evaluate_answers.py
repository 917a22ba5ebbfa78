"""`ohbot eval answers`: the judging rules, the AUC, both question-set formats, the command."""
from __future__ import annotations

import itertools
import json
import random

import pytest

from bot.answering.evaluate_answers import EvalItem, evaluate_answers, judge, load_items, roc_auc
from bot.cli import main
from bot.errors import InputError
from tests.helpers import REPO_ROOT

OH = EvalItem("t1", "体检费谁出", "oh", must=[["用人单位", "承担"], ["单位出"]], must_not=["自己出"])
INJURY = EvalItem("t2", "职业病怎么申请工伤", "oh", must=[["工伤认定"]], door=["人社", "社会保险行政部门"])
LABOUR = EvalItem("t3", "拖欠工资怎么办", "labour", door=["12333", "劳动保障监察"], must_not=["职业病防治法"])
OTHER = EvalItem("t4", "小区噪音", "other", must_not=["GBZ"])
DAYS = EvalItem("t5", "不服多少天内申请鉴定", "oh", must=[["30日内"]], must_not=["60日"])


@pytest.mark.parametrize("item, decision, text, status, correct", [
    (OH, "answer", "费用由用人单位承担。", "correct", True),
    (OH, "answer", "單位出。", "correct", True),  # Traditional script is folded before matching
    (OH, "answer", "用人单位承担，但是也可以自己出。", "wrong", False),  # a must_not claim
    (OH, "answer", "要做上岗前检查。", "wrong", False),  # no must group: a neighbouring question
    (OH, "refuse", "抱歉……", "refused", False),
    (OH, "refer", "请拨打12333", "referred", False),
    (INJURY, "answer", "确诊后申请工伤认定。", "wrong", False),  # the door is missing
    (INJURY, "answer", "确诊后向人社部门申请工伤认定。", "correct", True),
    (LABOUR, "refer", "可拨打12333。", "right", True),
    (LABOUR, "refuse", "请拨打12320。", "no_door", False),
    (LABOUR, "answer", "可拨打12333。", "answered", False),  # an occupational-health answer is never right here
    (LABOUR, "refer", "12333；依据职业病防治法", "bad", False),
    (OTHER, "refuse", "抱歉……12320", "right", True),
    (OTHER, "refer", "GBZ 2.2", "bad", False),
    (DAYS, "answer", "接到诊断证明书之日起三十日内申请。", "correct", True),  # a law's numerals match digits
    (DAYS, "answer", "六十日内申请。", "wrong", False),  # … both ways: a must_not in numerals counts
    (DAYS, "answer", "三十一日内申请。", "wrong", False),  # 三十一 is 31, not 30 followed by 1
])
def test_judging_rules(item, decision, text, status, correct):
    judged = judge(item, decision, text, 0.5)
    assert (judged.status, judged.correct) == (status, correct)


def test_roc_auc_equals_the_pairwise_definition():
    rng = random.Random(7)
    scores = [round(rng.random(), 1) for _ in range(40)]  # rounded: ties happen
    labels = [rng.random() < 0.4 for _ in range(40)]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    by_hand = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(by_hand)
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0 and roc_auc([0.9, 0.1], [False, True]) == 0.0
    assert roc_auc([0.5], [True]) is None


def test_auc_is_about_the_drafted_answer_not_the_threshold():
    # the confidence is judged on the answer it is about, shown or not: a refused right draft is a
    # positive with a low confidence, which lowers the AUC
    items = [OH, OH]
    answers = iter([("answer", "用人单位承担", 0.9, "用人单位承担"), ("refuse", "抱歉", 0.2, "用人单位承担")])
    summary, judged = evaluate_answers(items, lambda q: next(answers))
    assert [j.shown_right for j in judged] == [True, True]
    assert summary["in_scope"]["correct"] == 1 and summary["in_scope"]["status"] == {"correct": 1, "refused": 1}


def test_both_question_set_formats_load(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [
        {"id": "r1", "question": "工资拖欠", "scope": "labour", "must": [], "must_not": [], "door": ["12333"], "kind": "wage"},
        {"id": "a1", "kind": "worker", "q": "体检费谁出", "gold": [["用人单位"]]},
        {"id": "o1", "kind": "ood", "q": "今天天气", "gold": []},
        {"id": "n1", "kind": "near_ood", "q": "年会节目", "gold": []},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    items = load_items(path)
    assert [(i.id, i.scope) for i in items] == [("r1", "labour"), ("a1", "oh"), ("o1", "other"), ("n1", "near")]
    assert items[1].must == [["用人单位"]]
    path.write_text('{"id": "x", "question": "q", "scope": "weather"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="scope"):
        load_items(path)
    path.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=":1:"):
        load_items(path)


# rows whose reference does not pass its own row, reported to the set's owner rather than edited here
REFERENCE_EXCEPTIONS = {"rb-048": "the reference names no door (人社部门) though the row asks for one"}


def test_every_real_question_set_row_satisfies_its_own_reference():
    # the sets say each row's reference answer passes its own must/must_not/door: the judge agrees
    paths = sorted((REPO_ROOT / "tests" / "eval").glob("real-*.jsonl"))
    assert len(paths) >= 13  # sets A–M: a set added later is checked without editing this test
    for path in paths:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for item, row in zip(load_items(path), rows, strict=True):
            if item.scope == "other" or item.id in REFERENCE_EXCEPTIONS:
                continue  # "other": the right reply is a refusal, no reference text to judge
            decision = "answer" if item.scope == "oh" else "refer"
            assert judge(item, decision, row["reference"], 1.0).correct, row["id"]


def test_eval_answers_on_the_command_line(built_index, data_dir, capsys, tmp_path):
    path = tmp_path / "few.jsonl"
    rows = [
        {"id": "a", "question": "职业健康检查的费用要我自己出吗", "scope": "oh", "must": [["用人单位"]], "must_not": []},
        {"id": "b", "question": "公司拖欠工资三个月了怎么办", "scope": "labour", "must": [], "must_not": [],
         "door": ["12333"]},
        {"id": "c", "question": "红烧肉怎么做", "scope": "other", "must": [], "must_not": []},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert main(["--data-dir", str(data_dir), "eval", "answers", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 3 and out["all"]["correct"] == 3, [(q["status"], q["answer"][:60]) for q in out["questions"]]
    assert [q["status"] for q in out["questions"]] == ["correct", "right", "right"]
    assert {"auc_in_scope", "auc_all", "by_scope", "by_kind", "in_scope", "out_of_scope"} <= set(out)
    assert main(["--data-dir", str(data_dir), "eval", "answers", str(path)]) == 0
    text = capsys.readouterr().out
    assert "in scope" in text and "out of scope" in text and "AUC" in text
