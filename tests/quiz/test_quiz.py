"""Quiz forms through the dialogue: consent and profile, stratified draws, shuffled options whose key
follows the shuffle, answers committed as given, resume after a restart, practice after the counted form."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from bot.config import load_settings
from bot.dialogue.core import Dialogue, Message
from bot.quiz import forms as quiz
from bot.quiz.bank import load_bank
from bot.storage.state import State
from tests.helpers import KNOWLEDGE, count, sql


@pytest.fixture
def env(retriever, knowledge_dir, tmp_path, state_url):
    """(make, dialogue): a campaign 测评A in a database on each backend; make() is another process on it."""
    settings = load_settings(str(tmp_path), str(knowledge_dir), env={"OHBOT_QUIZ_SEED": "7"},
                             database_url=state_url)

    def make() -> Dialogue:  # a fresh process over the same database
        return Dialogue(retriever, State(settings.state_url, "salt"), settings)

    d = make()
    quiz.create_campaign(d.state, "测评A", "2000-01-01", "2999-12-31", threshold=0.8, form_size=8)
    return make, d


def all_buttons(replies):
    return [b for r in replies for row in r.buttons for b in row]


def press(d, user, replies, prefix):
    button = next(b for b in all_buttons(replies) if b.data.startswith(prefix))
    return d.handle(user, Message(callback=button.data))


def go_to_first_item(d, user):
    replies = d.handle(user, Message(text="/quiz"))
    replies = press(d, user, replies, "qz:consent:yes")
    replies = press(d, user, replies, "qz:pf:chemicals")
    replies = press(d, user, replies, "qz:pf:small_micro")
    replies = press(d, user, replies, "qz:pf:worker")
    for _ in range(4):
        replies = press(d, user, replies, "qz:pf:-")
    return replies


def answer_current(d, user, replies, right: bool):
    """Answer the item on screen, rightly or wrongly, through its buttons."""
    form = quiz.unfinished_form(d.state, user)
    entry = form.items[form.position]
    item = d.quiz.bank[entry["id"]]
    if right:
        key = item.answer
    else:  # an option outside the key, or (every option is in the key) a proper subset of it
        key = next((k for k in item.options if k not in item.answer), item.answer[:-1])
    if item.type == "truefalse":
        return press(d, user, replies, f"qa:{form.id}:{form.position}:{key}")
    shown = [quiz.LETTERS[entry["order"].index(k)] for k in key]
    if item.type == "single":
        return press(d, user, replies, f"qa:{form.id}:{form.position}:{shown[0]}")
    for letter in shown:
        replies = press(d, user, replies, f"qm:{form.id}:{form.position}:{letter}")
    return press(d, user, replies, f"qs:{form.id}:{form.position}")


def test_draw_is_stratified_without_repeats_and_matches_the_user():
    bank = load_bank(KNOWLEDGE)
    for seed in range(20):
        items = quiz.draw_items(bank, 20, "employer", "chemicals", random.Random(seed))
        assert len({i.id for i in items}) == 20
        assert set(Counter(i.dimension for i in items).values()) == {5}
        assert all(i.audience in ("employer", "all") for i in items)
        assert 1 <= sum("chemicals" in i.industries for i in items) <= 8


def test_full_counted_form_then_practice(env):
    make, d = env
    replies = go_to_first_item(d, "u1")
    assert "测评“测评A”开始，共 8 题" in replies[0].text
    profile = d.state.get_user("u1").profile
    assert profile["industry"] == "chemicals" and not profile["sex"]  # skipped
    for n in range(8):
        replies = answer_current(d, "u1", replies, right=n < 7)
        assert "解析：" in replies[0].text and "出处：" in replies[0].text
    summary = replies[-1].text
    assert "答对 7/8 题" in summary and "已达到知晓标准" in summary
    forms = sql(d.state, 'select * from forms where "user" = :u', u="u1")
    assert [f["kind"] for f in forms] == ["counted"] and forms[0]["completed_at"]
    again = d.handle("u1", Message(text="/quiz"))
    assert "练习" in again[0].text
    kinds = [f["kind"] for f in sql(d.state, 'select kind from forms where "user" = :u order by started_at', u="u1")]
    assert kinds == ["counted", "practice"]


def test_wrong_answer_shows_the_key_in_the_shuffled_letters(env):
    _, d = env
    replies = go_to_first_item(d, "u2")
    form = quiz.unfinished_form(d.state, "u2")
    while d.quiz.bank[form.items[form.position]["id"]].type == "truefalse":  # options are not shuffled there
        replies = answer_current(d, "u2", replies, right=True)
        form = quiz.unfinished_form(d.state, "u2")
    entry = form.items[form.position]
    item = d.quiz.bank[entry["id"]]
    replies = answer_current(d, "u2", replies, right=False)
    assert "❌" in replies[0].text
    for bank_letter in item.answer:
        shown = quiz.LETTERS[entry["order"].index(bank_letter)]
        assert f"{shown}. {item.options[bank_letter]}" in replies[0].text


def test_answers_survive_a_restart_and_the_form_resumes(env):
    make, d = env
    replies = go_to_first_item(d, "u3")
    for _ in range(3):
        replies = answer_current(d, "u3", replies, right=True)
    restarted = make()  # the process was killed after three answers
    assert count(restarted.state, "responses", '"user" = :u', u="u3") == 3
    offer = restarted.handle("u3", Message(text="/quiz"))
    assert "已完成 3/8 题" in offer[0].text
    shown = press(restarted, "u3", offer, "qz:resume:")
    assert "第 4/8 题" in shown[0].text
    # pressing a button of an already answered item changes nothing
    form = quiz.unfinished_form(restarted.state, "u3")
    repeat = restarted.handle("u3", Message(callback=f"qa:{form.id}:0:A"))
    assert "已经回答过" in repeat[0].text
    assert count(restarted.state, "responses", '"user" = :u', u="u3") == 3


def test_declining_consent_stores_nothing(env):
    _, d = env
    replies = d.handle("u4", Message(text="/quiz"))
    replies = press(d, "u4", replies, "qz:consent:no")
    assert "不参加" in replies[0].text
    assert count(d.state, "forms", '"user" = :u', u="u4") == 0


def test_forget_removes_forms_and_responses(env):
    _, d = env
    replies = go_to_first_item(d, "u5")
    answer_current(d, "u5", replies, right=True)
    d.handle("u5", Message(callback="forget:yes"))
    assert count(d.state, "forms", '"user" = :u', u="u5") == 0
    assert count(d.state, "responses", '"user" = :u', u="u5") == 0


def test_without_a_campaign_the_quiz_is_practice(retriever, knowledge_dir, tmp_path, state_url):
    settings = load_settings(str(tmp_path), str(knowledge_dir), env={"OHBOT_QUIZ_SEED": "7"},
                             database_url=state_url)
    d = Dialogue(retriever, State(settings.state_url, "salt"), settings)
    replies = d.handle("u6", Message(text="/quiz"))
    assert "练习" in replies[0].text and "第 1/20 题" in replies[1].text


def test_campaign_rules_are_validated(env):
    _, d = env
    with pytest.raises(ValueError):
        quiz.create_campaign(d.state, "测评A", "2026-01-01", "2026-02-01")
    with pytest.raises(ValueError):
        quiz.create_campaign(d.state, "B", "2026-03-01", "2026-02-01")
    with pytest.raises(ValueError):
        quiz.create_campaign(d.state, "C", "2026-01-01", "2026-02-01", threshold=1.5)


def test_retired_items_are_never_drawn_but_still_read():
    bank = load_bank(KNOWLEDGE)
    retired = {i.id for i in bank if i.retired}
    assert retired  # issue #10 retired the items it corrected
    for seed in range(30):
        drawn = quiz.draw_items(bank, 20, "worker", "construction", random.Random(seed))
        assert not retired & {i.id for i in drawn}
    assert retired <= set(quiz.bank_by_id(KNOWLEDGE))  # answers stored under a retired id are still scored
