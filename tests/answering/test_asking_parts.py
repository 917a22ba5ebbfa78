"""Questions that ask two things: split into their asking parts, each part answered by its own unit."""
from __future__ import annotations

from bot.answering.answer import answer
from bot.answering.compose import DETAIL_CHARS, VERDICT_CHARS
from bot.answering.query import asking_parts


def test_two_questions_in_a_row_are_two_parts():
    assert asking_parts("粉尘对肺有什么伤害？车间里要怎么防？") == ["粉尘对肺有什么伤害?", "车间里要怎么防?"]


def test_a_joined_clause_is_a_part_without_its_joiner_or_lead_in():
    parts = asking_parts("我想了解一下苯中毒的症状，还有哪些岗位会接触苯")
    assert parts == ["苯中毒的症状", "哪些岗位会接触苯"]


def test_a_story_with_one_question_has_one_part():
    # 是不是 inside a statement asks nothing; only the closing question does
    question = ("我在一家木器厂做了五年打磨，厂里灰很大，我一直怀疑是不是对身体不好。"
                "上个月开始老是咳嗽。请问单位应该给我安排职业健康检查吗？")
    assert asking_parts(question) == ["单位应该给我安排职业健康检查吗?"]


def test_a_question_asked_again_at_length_is_one_part():
    question = "电焊工要戴什么口罩？我在厂里做电焊，想知道按照规定，电焊工应该戴什么样的口罩？"
    assert asking_parts(question) == ["电焊工要戴什么口罩?"]


def test_a_single_question_has_one_part():
    assert asking_parts("噪声多大算超标？") == ["噪声多大算超标?"]


def test_each_part_is_answered_with_its_own_unit_and_source(retriever):
    result = answer(retriever, "职业健康检查的钱由谁出？查完的结果单位要告诉我吗？")
    assert result.found and result.decision == "answer"
    body, source = result.text.split("\n\n来源：")
    assert "用人单位承担" in body  # who pays
    assert "告知" in body  # the result is told to the worker
    assert len(source.split("；")) >= 2  # both units named
    assert len(body) <= 2 * VERDICT_CHARS + DETAIL_CHARS  # the detail's budget is shared, not doubled


def test_a_part_without_a_topic_of_its_own_is_read_with_the_question_s_topic(retriever):
    result = answer(retriever, "尘肺病的诊断要带什么材料？费用谁来出？")
    assert result.found
    assert "用人单位承担" in result.text.split("\n\n来源：")[0]


def test_a_part_sending_to_work_injury_benefits_says_where_they_are_claimed(retriever):
    """As for a one-part answer (answer.injury_note): a part that sends the worker to 工伤保险 names 人社部门."""
    result = answer(retriever, "得了职业病有哪些待遇？职业病诊断要带什么材料？")
    body, source = result.text.split("\n\n来源：")
    assert len(source.split("；")) >= 2  # answered in two parts
    assert "工伤保险" in body and "人社部门" in body, body
