"""Forged button data and odd characters (issue #11): refused politely, never a traceback, and
nothing that is not an option of the item is ever stored as an answer.

The real dialogue core over a real state database; a retriever stub, since buttons, the quiz and
the region need no index (questions are tested in tests/dialogue/test_dialogue.py)."""
from __future__ import annotations

import re
import sqlite3
from types import SimpleNamespace

import pytest

from bot.channels.text_menu import MemoryMenus, converse
from bot.config import load_settings
from bot.dialogue.core import Dialogue, Message
from bot.dialogue.types import Reply
from bot.storage.state import State
from tests.helpers import KNOWLEDGE

EXPIRED = "过期"


@pytest.fixture
def dialogue(tmp_path):
    """The real dialogue core with no index."""
    settings = load_settings(str(tmp_path), str(KNOWLEDGE), env={"OHBOT_QUIZ_SEED": "7"})
    retriever = SimpleNamespace(docs={"d": {"region": "广东省"}}, by_faq={})
    return Dialogue(retriever, State(settings.state_db, "salt"), settings)


def stored_answers(dialogue: Dialogue) -> list[str]:
    """Every answer letter in the responses table, read with sqlite3 directly."""
    with sqlite3.connect(dialogue.settings.state_db) as conn:
        return [row[0] for row in conn.execute("select answer from responses")]


def first_item(dialogue: Dialogue, user: str) -> tuple[str, str, list[str]]:
    """A practice form's first item: (form id, item type, the letters its buttons carry)."""
    replies = dialogue.handle(user, Message(text="/quiz"))
    data = [b.data for r in replies for row in r.buttons for b in row if b.data.startswith(("qa:", "qm:"))]
    form_id = data[0].split(":")[1]
    kind = "multiple" if data[0].startswith("qm:") else ("truefalse" if data[0].endswith((":T", ":F")) else "single")
    return form_id, kind, [d.split(":")[3] for d in data]


def only_text(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


@pytest.mark.parametrize("data", ["region:²", "region:𐩀", "more:²", "fb:up:²", "fb:down:１²"])
def test_forged_numbers_in_buttons_are_refused_without_a_traceback(dialogue, data):
    replies = dialogue.handle("u1", Message(callback=data))
    assert len(replies) == 1 and EXPIRED in replies[0].text


def test_forged_quiz_buttons_are_refused_and_nothing_is_stored(dialogue):
    form_id, kind, letters = first_item(dialogue, "u2")
    forged = [f"qa:{form_id}:²:{letters[0]}", f"qa:{form_id}:0:Z", f"qa:{form_id}:0:", f"qa:{form_id}:0:AB",
              f"qa:{form_id}:0:{letters[0]}:x", f"qm:{form_id}:0:Z", f"qm:{form_id}:0:", f"qa:{form_id}:0:ABCD"]
    for data in forged:
        replies = dialogue.handle("u2", Message(callback=data))
        assert EXPIRED in only_text(replies), (data, only_text(replies))
    assert stored_answers(dialogue) == []
    # the item can still be answered with a real button (a single letter, T/F, or ticks and 提交)
    if kind == "multiple":
        dialogue.handle("u2", Message(callback=f"qm:{form_id}:0:{letters[0]}"))
        replies = dialogue.handle("u2", Message(callback=f"qs:{form_id}:0"))
    else:
        replies = dialogue.handle("u2", Message(callback=f"qa:{form_id}:0:{letters[0]}"))
    assert "出处：" in only_text(replies)
    assert len(stored_answers(dialogue)) == 1 and stored_answers(dialogue)[0] != ""


def test_every_stored_answer_is_made_of_the_items_options(dialogue):
    """A whole practice form answered with a forged letter before every real one."""
    form_id, kind, letters = first_item(dialogue, "u3")
    for k in range(40):
        dialogue.handle("u3", Message(callback=f"qa:{form_id}:{k}:Z"))
        replies = dialogue.handle("u3", Message(callback=f"qa:{form_id}:{k}:"))
        assert EXPIRED in only_text(replies) or "回答过" in only_text(replies)
        resumed = dialogue.handle("u3", Message(callback=f"qz:resume:{form_id}"))
        data = [b.data for r in resumed for row in r.buttons for b in row]
        options = [d for d in data if d.startswith(("qa:", "qm:"))]
        if not options:
            break
        dialogue.handle("u3", Message(callback=options[0]))
        if options[0].startswith("qm:"):
            dialogue.handle("u3", Message(callback=f"qs:{form_id}:{options[0].split(':')[2]}"))
    answers = stored_answers(dialogue)
    assert answers and all(a and set(a) <= set("ABCDEFGHTF") for a in answers)
    assert "Z" not in "".join(answers)


def test_a_lone_surrogate_in_a_message_is_replaced_not_fatal(dialogue):
    dialogue.handle("u4", Message(callback="region:text"))
    replies = dialogue.handle("u4", Message(text="柳州\ud800市"))  # refused as a place name, politely
    assert only_text(replies) and dialogue.state.get_user("u4").profile.get("region") is None
    assert "/help" in only_text(dialogue.handle("u4", Message(text="/help\udfff")))  # an unknown command
    assert "过期" in only_text(dialogue.handle("u4", Message(callback="region:\udfff")))


def test_a_digit_that_is_not_decimal_in_a_text_channel_is_read_as_text(dialogue):
    menus = MemoryMenus()
    turn = converse(dialogue, menus, "u5", "/region")
    assert re.search(r"\d+ 手动输入", turn.text)
    for typed in ("𐩀", "²", "\ud800"):
        turn = converse(dialogue, menus, "u5", typed)  # no traceback; a polite reply
        assert turn.text


def test_stats_show_counts_and_normalised_questions_of_several_users_only(dialogue):
    state = dialogue.state
    for user in ("a", "b", "a"):
        state.log_unanswered("体检费要我自己出吗？", user)
    state.log_unanswered("體檢費要我自己出嗎", "c")  # the same question in Traditional script, a third user
    state.log_unanswered("我叫张三，电话13812345678，尘肺病怎么赔？", "d")  # one user only: never shown
    state.log_unanswered("我叫张三，电话13812345678，尘肺病怎么赔？", "d")
    text = only_text(dialogue.handle("admin", Message(text="/stats", is_admin=True)))
    assert "体检费要我自己出吗" in text and "4 次" in text and "3 人" in text
    assert "未能回答的问题共 6 次" in text
    assert "张三" not in text and "13812345678" not in text and "尘肺病怎么赔" not in text
    for key in ("a", "b", "c", "d"):
        assert state.user_key("telegram", key) not in text
