"""The kind of answer a question asks for (query.asked_kind, knowledge/dict/answer_types.yaml): read
from its interrogative, preferred when the answer's sentences are picked (compose) and one of the
confidence's features (decide)."""
from __future__ import annotations

import pytest

from bot.answering.query import answer_kinds, asked_kind, has_answer, verdict_answers

KINDS = ("cause", "duration", "amount", "authority", "yesno", "procedure", "reason", "list")


def test_the_vocabulary_has_every_kind_in_the_order_they_are_tried():
    assert tuple(k.name for k in answer_kinds()) == KINDS


@pytest.mark.parametrize(("question", "kind"), [
    ("这个病是怎么得的", "cause"),  # a cause, not the procedure 怎么 alone reads
    ("手指發白是什麼原因", "cause"),
    ("申请要等多久", "duration"),
    ("多長時間能拿到結果？", "duration"),  # Traditional script
    ("需要提前几天通知", "duration"),  # 几天 is a duration before it is an amount
    ("什么时候开始算", "duration"),  # 什么时候 a time before 什么 a definition
    ("这种情况罚多少钱", "amount"),
    ("標準是多少", "amount"),
    ("这个费用谁出", "authority"),
    ("應該去哪個部門反映？", "authority"),  # 哪个部门: an authority before 哪 a list
    ("受理投诉的部门是什么", "authority"),  # the office named before its interrogative
    ("負責審批的機構是哪個？", "authority"),
    ("这样能不能拒绝", "yesno"),
    ("需不需要做职业健康检查", "yesno"),  # A-not-A of any verb: 需不需要, 会不会, 该不该
    ("正常呼吸会不会得尘肺病", "yesno"),
    ("高温补贴該不該發？", "yesno"),
    ("這樣算不算違法", "yesno"),
    ("单位可以这么做吗？", "yesno"),
    ("遇到这种事怎么办", "procedure"),
    ("如何申請", "procedure"),
    ("为什么每年都要查一次", "reason"),  # why a rule is so: its purpose, not any list
    ("凭什么要我自己出钱", "reason"),
    ("为什么会得这个病", "cause"),  # 为什么会 asks a cause, tried first
    ("为什么不能拒绝吗", "yesno"),  # …吗 asks yes or no
    ("有哪些要求", "list"),
    ("甚麼是這個意思", "list"),
    ("夏天干活要注意什么", "list"),  # the 么 of 什么 at the end is not the question particle 么
    ("我在厂里干了三年，今天头疼。", None),  # a statement asks for nothing
])
def test_the_interrogative_names_the_kind_of_answer(question, kind):
    assert asked_kind(question) == kind


def test_a_sentence_holds_an_answer_of_a_kind_by_its_form():
    assert has_answer("duration", "应当自收到申请之日起30日内作出决定。")
    assert has_answer("duration", "每三年至少进行一次检测。")
    assert not has_answer("duration", "用人单位应当为劳动者提供防护用品。")
    assert has_answer("amount", "处五万元以上二十万元以下的罚款。")
    assert has_answer("authority", "由卫生健康主管部门责令限期改正。")
    assert not has_answer("authority", "工作时应当佩戴耳塞。")
    assert not has_answer(None, "由卫生健康主管部门责令限期改正。")
    # items introduced by a colon and closed by ；are a list as much as A、B、C
    assert has_answer("list", "属于违法行为：由主管部门责令限期治理，并处罚款；")
    assert not has_answer("list", "由主管部门责令限期治理，并处罚款。")
    assert has_answer("cause", "长期吸入粉尘引起的肺组织纤维化。")
    # items closed by 等 (A、B等) are a list; going to a doctor or to a place to apply is a step to take
    assert has_answer("list", "如湿式方法、局部抽风除尘等防护设施。")
    assert not has_answer("list", "湿式方法等防护设施。")
    assert has_answer("procedure", "出现咳嗽、气短的，应尽早就医。")
    assert has_answer("procedure", "到依法承担职业病诊断的医疗卫生机构申请诊断。")
    assert not has_answer("procedure", "尘肺病是长期吸入粉尘引起的。")
    assert has_answer("reason", "定期检查是为了及早发现健康损害。")
    assert not has_answer("reason", "检查由用人单位组织。")


def test_a_verdict_opening_a_clause_with_the_bare_yao_answers_yes_or_no():
    """要 / 不要 / 一定要 opening a clause of the verdict says yes or no to 需要…吗; in the detail the same form is an
    instruction compose does not prefer (has_answer), and someone's duty (单位要…) or 要求 is no answer."""
    assert verdict_answers("yesno", "安排劳动者从事接触危害的作业前，要先组织上岗前职业健康检查。")
    assert verdict_answers("yesno", "要。")
    assert verdict_answers("yesno", "一定要按规定佩戴。")
    assert verdict_answers("yesno", "不要干脆不戴，先换一种合适的。")
    assert not verdict_answers("yesno", "用人单位要指定专人负责日常监测。")
    assert not verdict_answers("yesno", "要求用人单位提供防护用品，是劳动者的权利。")
    assert not has_answer("yesno", "不要和洁厕灵混用。")
    assert verdict_answers("yesno", "用人单位应当提供。")  # what any sentence holds holds in a verdict too
    assert not verdict_answers(None, "要。")


def test_a_query_carries_the_kind_its_asking_part_asks_for(retriever):
    from bot.answering.query import analyse

    story = "我在车间做了五年电焊，最近总觉得咳嗽，厂里也没有安排过体检。职业病诊断需要多长时间？"
    assert analyse(story, retriever.encode).asks == "duration"
    assert analyse("职业健康检查的费用由谁承担", retriever.encode).asks == "authority"
    follow_up = analyse("那要多少钱呢", retriever.encode, context="职业病诊断去哪里做")
    assert follow_up.is_follow_up and follow_up.asks == "amount"  # the follow-up's own interrogative


def test_the_detail_prefers_sentences_with_an_answer_of_the_asked_kind(retriever):
    from bot.answering.compose import choose_detail
    from bot.answering.query import analyse

    def pick_detail(query, body, verdict, limit):
        """The indices of the detail sentences choose_detail shows."""
        return [i for i, _ in choose_detail(query, body, verdict, limit)]

    body = ["复查应当在三十日内安排完成。", "复查由用人单位负责安排。"]  # as many of the question's words each
    when = analyse("复查要多久安排", retriever.encode)
    who = analyse("复查找谁安排", retriever.encode)
    plain = analyse("复查安排", retriever.encode)
    assert (when.asks, who.asks, plain.asks) == ("duration", "authority", None)
    # room for one sentence only: the one that holds the asked kind of answer, in either order
    assert pick_detail(when, body, verdict=-1, limit=15) == [0]
    assert pick_detail(when, body[::-1], verdict=-1, limit=15) == [1]
    assert pick_detail(who, body, verdict=-1, limit=15) == [1]
    assert pick_detail(who, body[::-1], verdict=-1, limit=15) == [0]
    assert pick_detail(plain, body, verdict=-1, limit=15) == pick_detail(plain, body[::-1], verdict=-1, limit=15) == [0]


def test_the_confidence_weighs_whether_the_verdict_holds_the_asked_kind(retriever):
    from bot.answering.decide import COEFFICIENTS, KIND_UNASKED, confidence_of, features
    from bot.answering.query import analyse
    from bot.answering.rank import rank

    query = analyse("职业病诊断需要多长时间", retriever.encode)
    ranked = rank(retriever, query, retriever.unit_scores(query))
    held = features(query, ranked, True, "应当自受理之日起30日内作出诊断结论。")
    missing = features(query, ranked, True, "职业病诊断应当由医疗卫生机构承担。")
    assert held["kind"] == 1.0 and missing["kind"] == 0.0
    assert COEFFICIENTS["kind"] > 0 and confidence_of(held) > confidence_of(missing)
    statement = analyse("我在厂里干了三年电焊", retriever.encode)
    assert statement.asks is None
    assert features(statement, ranked, True, "任何句子。")["kind"] == KIND_UNASKED


def test_answers_are_decided_on_the_verdict_they_show(retriever):
    from bot.answering.answer import answer
    from bot.answering.compose import sentences
    from bot.answering.decide import THRESHOLD

    result = answer(retriever, "职业健康检查的费用由谁承担？")
    assert result.decision == "answer" and result.confidence >= THRESHOLD
    verdict = sentences(result.text.split("\n\n来源：")[0])[0]
    assert has_answer("authority", verdict)


def test_a_door_by_words_decides_whatever_the_confidence(retriever):
    # decide.door_by_words is the one place of the door rules: a question it sends to a door is referred
    # with confidence 0 (calibrate_answers leaves such questions out of the fit); one it keeps is decided by
    # the confidence, and a candidate feature without a coefficient does not move that confidence
    from bot.answering.decide import confidence_of, cues_in, decide, door_by_words, features, topic_of
    from bot.answering.query import analyse
    from bot.answering.rank import rank

    for question, door in (("厂里每天让干12个小时合法吗", "labour"), ("职业病诊断需要多长时间", None)):
        query = analyse(question, retriever.encode)
        ranked = rank(retriever, query, retriever.unit_scores(query))
        cues = cues_in(query.normalized)
        assert door_by_words(query, cues, topic_of(cues, ranked)) == door
        decision = decide(query, ranked, retriever.vocab, threshold=0.0)
        assert (decision.kind, decision.door, decision.confidence == 0.0) == (
            ("refer", door, True) if door else ("answer", None, False))
    x = features(query, ranked, True, "应当自受理之日起30日内作出诊断结论。")
    assert confidence_of({**x, "not_a_feature": 5.0}) == confidence_of(x)


def test_a_short_opening_that_holds_the_asked_kind_of_answer_is_the_verdict(retriever):
    # "申请工伤认定。" answers "what next?" as it stands; a bare "能。" answers only its own heading's yes/no
    from bot.answering.compose import pick_verdict, short_answer
    from bot.answering.query import analyse
    from bot.answering.rank import Candidate

    card = next(i for i, c in enumerate(retriever.chunks) if c.kind == "faq")
    chunk = retriever.chunks[card]
    unit = Candidate(card, chunk, retriever.docs.get(chunk.doc_id, {}), 1.3, 0.8, 0.8, 0.5, 0.5)
    what_next = analyse("确诊以后接下来怎么办", retriever.encode)
    may_i = analyse("这样能继续干吗", retriever.encode)
    assert (what_next.asks, may_i.asks) == ("procedure", "yesno")
    assert short_answer(what_next, "申请工伤认定。") and not short_answer(what_next, "能。")
    assert not short_answer(may_i, "能。")  # a yes/no opening stays bare
    assert pick_verdict(what_next, unit, ["申请工伤认定。", "职工患职业病的，应当认定为工伤。"]) == 0
    assert pick_verdict(what_next, unit, ["不用。", "单位应当安排复查，费用由单位承担。"]) == 1


def test_a_paraphrase_of_the_best_unit_s_own_question_counts_as_full_agreement(retriever):
    # the unit's own question (a heading, a card question, a variant) said in other words: BM25 may rank the
    # subject's other sections as high, but the three rankings' agreement is taken as full (decide.PARAPHRASE)
    from dataclasses import replace

    from bot.answering.decide import PARAPHRASE, confidence_of, features
    from bot.answering.query import analyse
    from bot.answering.rank import rank

    query = analyse("粉尘对人体有什么危害", retriever.encode)
    ranked = rank(retriever, query, retriever.unit_scores(query))
    far = {"bm25": 6, "dense": 4, "q_dense": 1}
    close = [replace(ranked[0], ranks=far, q_dense=PARAPHRASE - 0.05), *ranked[1:]]
    same = [replace(ranked[0], ranks=far, q_dense=PARAPHRASE + 0.01), *ranked[1:]]
    assert features(query, close, True)["agree"] < 0.5
    assert features(query, same, True)["agree"] == 1.0
    assert confidence_of(features(query, same, True)) > confidence_of(features(query, close, True))


def test_a_story_question_s_agreement_is_also_read_on_its_asking_part(retriever):
    # a question that tells a story before it asks: the story's words pull the rankings toward units about its
    # details, so the best unit's agreement is the better of that on all of it and on its asking part alone
    from dataclasses import replace

    from bot.answering.answer import read, tells_story
    from bot.answering.decide import features
    from bot.answering.query import analyse

    story = analyse("我在机械厂做了两年镗工，车间里全是金属粉尘，单位从来不发口罩，最近老是胸闷气短，"
                    "找领导也没人理。请问：单位是不是应该给我做体检？", retriever.encode)
    plain = analyse("单位是不是应该给我做体检", retriever.encode)
    assert tells_story(story) and not tells_story(plain)
    top = read(retriever, story).ranked[0]
    assert top.focus_ranks and not read(retriever, plain).ranked[0].focus_ranks
    far, near = {"bm25": 9, "dense": 8, "q_dense": 12}, {"bm25": 1, "dense": 2, "q_dense": 1}
    low = features(story, [replace(top, ranks=far, focus_ranks={}, q_dense=0.8)], True)["agree"]
    both = features(story, [replace(top, ranks=far, focus_ranks=near, q_dense=0.8)], True)["agree"]
    assert low < 0.2 and both > 0.8


def test_the_plain_harm_question_of_a_hazard_is_answered_from_its_harm_section(retriever):
    from bot.answering.answer import answer

    result = answer(retriever, "噪声对身体有哪些伤害")
    assert result.decision == "answer" and "噪声聋" in result.text
