"""Sentence and clause splitting of compose.py (README "Answering", session 10): a cut never falls inside
brackets or quotes, a colon-introduced list is shown whole or cut between items with a mark, and an
answer never ends on a ；. Pure functions: no index needed."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import cast

from bot.answering.compose import (
    DETAIL_CHARS,
    VERDICT_CHARS,
    Listing,
    choose_detail,
    clauses,
    close_brackets,
    fit_list,
    group_lists,
    seal,
    sentences,
    shorten,
    with_room,
)
from bot.answering.query import Query

CITED = ("当事人对职业病诊断结论有异议的，可以申请鉴定；对市级鉴定结论仍不服的，可以向省级卫生健康主管部门申请再鉴定。"
         "（《职业病防治法》第五十二条；《职业病诊断与鉴定管理办法》）")
RIGHTS = ("劳动者享有七项权利：（一）接受职业卫生教育、培训；（二）获得职业健康检查、职业病诊疗、康复等服务；"
          "（三）了解工作场所的职业病危害因素、危害后果和应当采取的防护措施；"
          "（四）要求用人单位提供符合要求的防护设施和个人防护用品，改善工作条件；"
          "（五）对违反职业病防治法律法规、危及生命健康的行为提出批评、检举和控告；"
          "（六）拒绝违章指挥和强令进行没有职业病防护措施的作业；（七）参与用人单位职业卫生工作的民主管理。"
          "用人单位因劳动者依法行使这些权利而降低其工资、福利等待遇的，其行为无效。")


def balanced(text: str) -> bool:
    """Every bracket or quotation mark opened in the text is closed, in order."""
    pairs = {"）": "（", ")": "(", "》": "《", "”": "“", "」": "「", "】": "【"}
    stack: list[str] = []
    for ch in text:
        if ch in pairs.values():
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def fake_query(words: tuple[str, ...]) -> Query:
    """A Query with only what choose_detail reads (its words, no asked kind)."""
    return cast(Query, SimpleNamespace(expanded=words, focus="", asks=None))


def test_a_citation_with_a_semicolon_is_not_cut_and_goes_with_its_sentence():
    # the defect: "……申请再鉴定。（《职业病防治法》第五十二条；" was shown, its bracket cut open at ；
    got = sentences(CITED)
    assert got == ["当事人对职业病诊断结论有异议的，可以申请鉴定；",
                   "对市级鉴定结论仍不服的，可以向省级卫生健康主管部门申请再鉴定。（《职业病防治法》第五十二条；"
                   "《职业病诊断与鉴定管理办法》）"]
    assert all(balanced(s) for s in got)


def test_no_cut_inside_any_kind_of_bracket_or_quote():
    text = "他说“不行。走吧！”然后离开。见【注：甲；乙】和「丙；丁」及(a; b)。《某法；细则》第一条。"
    assert sentences(text) == ["他说“不行。走吧！”然后离开。", "见【注：甲；乙】和「丙；丁」及(a; b)。", "《某法；细则》第一条。"]
    assert clauses("按《办法，细则》（第二条，第三条）执行，报告单位。") == ["按《办法，细则》（第二条，第三条）执行，", "报告单位。"]


def test_a_bracket_over_a_line_break_is_one_sentence_and_an_unclosed_one_does_not_swallow_the_text():
    assert sentences("甲（一；\n二）乙。丙。") == ["甲（一；二）乙。", "丙。"]
    assert sentences("有一个（没有闭合的括号；然后继续。第二句。") == ["有一个（没有闭合的括号；", "然后继续。", "第二句。"]


def test_a_shortened_sentence_leaves_no_bracket_open():
    long = "职业病诊断鉴定由设区的市级以上卫生健康主管部门组织（《职业病防治法》第五十二条，第五十三条，第五十四条），当事人可以申请再鉴定，省级为最终鉴定"
    cut = shorten(long, 40)
    assert cut.endswith("……") and balanced(cut) and len(cut) <= 42
    assert close_brackets("前面的话，（括号里") == "前面的话"  # the open part is dropped
    assert close_brackets("（括号里") == "（括号里）"  # nothing before it: closed
    assert balanced(shorten("（" + "很长的内容" * 40, 30))


def test_a_colon_introduced_list_is_one_piece_and_two_clauses_are_not_a_list():
    pieces, lists = group_lists(sentences(RIGHTS))
    assert len(pieces) == 2 and list(lists) == [0]
    assert lists[0].head == "劳动者享有七项权利：" and len(lists[0].items) == 7
    assert lists[0].items[0].startswith("（一）") and lists[0].items[-1].startswith("（七）")
    lines = "法律给了劳动者三项权利：\n1. 接受培训；\n2. 获得检查；\n3. 参与管理。\n（《职业病防治法》第三十九条）"
    pieces, lists = group_lists(sentences(lines))
    assert pieces == ["法律给了劳动者三项权利：1. 接受培训；2. 获得检查；3. 参与管理。（《职业病防治法》第三十九条）"]
    two = sentences("钦州市的指南是：立即往里面送风，切不可盲目下去抢救；换过空气后再下去。")
    assert group_lists(two) == (two, {})


def test_a_long_list_is_cut_between_items_with_a_mark_never_silently():
    listing = group_lists(sentences(RIGHTS))[1][0]
    assert fit_list(listing, 400, lambda item: 0) == listing.text  # it fits: whole
    cut = fit_list(listing, 100, lambda item: 2.0 if "检举" in item else 0.0)
    assert cut is not None and len(cut) <= 100
    assert cut.startswith("劳动者享有七项权利：") and cut.endswith("（共7项，回复“更多”看全文）")
    assert "（五）对违反职业病防治法律法规、危及生命健康的行为提出批评、检举和控告；" in cut  # the item asked about
    shown = [item for item in listing.items if item in cut]
    assert shown == sorted(shown, key=listing.items.index) and len(shown) < 7  # whole items, in order
    assert "……" in cut  # where items are left out
    other = fit_list(listing, 100, lambda item: 0, more=False)  # "更多" would not show this list
    assert other is not None and other.endswith("（共7项）")
    assert fit_list(Listing("很长的开头" * 10 + "：", ("甲项的内容很长很长；", "乙。")), 40, lambda item: 0) is None


def test_the_detail_keeps_a_list_whole_or_cut_with_its_mark():
    pieces, lists = group_lists(sentences(RIGHTS))
    query = fake_query(("检举", "控告"))
    whole = choose_detail(query, pieces, verdict=-1, limit=400, lists=lists, more_below=len(pieces))
    assert [text for _, text in whole][0] == pieces[0]
    cut = choose_detail(query, pieces, verdict=-1, limit=DETAIL_CHARS, lists=lists, more_below=len(pieces))
    assert cut[0][0] == 0 and cut[0][1].endswith("（共7项，回复“更多”看全文）") and len(cut[0][1]) <= DETAIL_CHARS


def test_an_answer_never_ends_on_a_semicolon_nor_runs_one_on_into_another_passage():
    shown = [(0, "甲应当如此；"), (1, "乙应当如此；"), (5, "丙也要这样；")]
    assert seal(shown) == ["甲应当如此；", "乙应当如此。", "丙也要这样。"]
    assert seal([(0, "甲；"), (1, "乙。")], frozenset({1})) == ["甲。", "乙。"]  # 1 starts another text


def test_splitting_is_linear():
    text = ("（《某法》第一条；第二条）说明，“引用；引用”。" * 5000) + "（" * 5000
    start = time.perf_counter()
    got = sentences(text)
    assert len(got) >= 5000 and time.perf_counter() - start < 1.0


def test_a_citation_that_names_no_law_is_recognised_and_a_named_one_is_not():
    # compose.BARE_CITATION: in a neighbour unit's sentence, "（同条）" or "（第七条）" would read as citing the law of
    # the sentence shown before it (an answer showed "参加工伤保险本来就是用人单位的法定义务（第七条）" after a sentence
    # of 《工伤保险条例》, though the article was the 职业病防治法's); they are left out there
    from bot.answering.compose import BARE_CITATION

    for bare in ("并适时调整（同条），具体金额", "法定义务（第七条），没参保", "应当提供（同法第四十七条）。", "（第二十一条至第二十三条）"):
        assert BARE_CITATION.search(bare), bare
        assert "（" not in BARE_CITATION.sub("", bare)
    for named in ("（《职业病防治法》第三十九条）", "（《工伤保险条例》第十七条、第二十三条）", "共10项（第一项至第三项见上）"):
        assert not BARE_CITATION.search(named), named


def test_a_verdict_cut_short_uses_the_room_the_detail_leaves():
    long = "根据《甲法》《乙法》《丙条例》等法律法规和本地实际，" * 6 + "制定本规划。"
    cut = shorten(long, VERDICT_CHARS)
    assert cut != long
    roomy = with_room(long, cut, [], DETAIL_CHARS)  # no detail: the verdict may take its room
    assert len(cut) < len(roomy) <= VERDICT_CHARS + DETAIL_CHARS + 2 and roomy.startswith(cut.rstrip("…"))
    full = [(1, "甲" * DETAIL_CHARS)]
    assert with_room(long, cut, full, DETAIL_CHARS) == cut  # the detail fills its room: unchanged
    assert with_room("短句。", "短句。", [], DETAIL_CHARS) == "短句。"  # a whole verdict is left as it is
