"""Buttons as text (bot/channels/text_menu.py): rendering, reading what users type, and whole
conversations through the real dialogue core (with a retriever stub: quiz, roles and the employer
self-check need no index)."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from bot.channels.text_menu import MemoryMenus, converse, read, render, text_command
from bot.config import load_settings
from bot.dialogue.core import Dialogue, role_buttons
from bot.dialogue.types import Button, Message, Reply
from bot.storage.state import State
from bot.taxonomy import load_taxonomy
from tests.helpers import KNOWLEDGE

SINGLE = [[Button(L, f"qa:f1:0:{L}") for L in "ABCD"]]
MULTI = [[Button("☐A", "qm:f1:2:A"), Button("☑B", "qm:f1:2:B"), Button("☐C", "qm:f1:2:C"),
          Button("☐D", "qm:f1:2:D")], [Button("提交", "qs:f1:2")]]
TRUE_FALSE = [[Button("正确", "qa:f1:1:T"), Button("错误", "qa:f1:1:F")]]


def test_roles_render_as_one_numbered_line_and_numbers_press_them():
    turn = render([Reply("先告诉我你的身份：", role_buttons(load_taxonomy(KNOWLEDGE)))])
    assert turn.text == "先告诉我你的身份：\n回复 1 劳动者 · 2 用人单位 · 3 卫生健康部门工作人员"
    assert read("2", turn.buttons) == ["role:employer"]
    assert read("２", turn.buttons) == ["role:employer"]  # full-width digits from Chinese keyboards
    assert read(" 3。", turn.buttons) == ["role:bureau"]
    assert read("用人单位", turn.buttons) == ["role:employer"]  # the label itself
    assert read("4", turn.buttons) is None and read("0", turn.buttons) is None
    assert read("1 2", turn.buttons) is None  # two ordinary buttons at once: not a menu choice
    assert read("体检费谁出", turn.buttons) is None
    assert read("1", []) is None


def test_long_lists_get_one_line_each_and_numbers_run_on_across_replies():
    industries = [[Button(f"行业{i}", f"qz:pf:i{i}")] for i in range(8)]
    turn = render([Reply("你好", [[Button("继续", "go")]]), Reply("你所在的行业是？", industries)])
    assert "回复 1 继续" in turn.text
    assert "回复数字选择：\n2 行业0\n3 行业1" in turn.text and turn.text.endswith("9 行业7")
    assert read("9", turn.buttons) == ["qz:pf:i7"]


def test_quiz_options_are_answered_by_letter():
    turn = render([Reply("第 1/6 题（单选）\n题干\nA. 甲\nB. 乙\nC. 丙\nD. 丁", SINGLE)])
    assert turn.text.endswith("回复选项字母作答，例如 B")
    assert read("b", turn.buttons) == ["qa:f1:0:B"]
    assert read("Ｃ", turn.buttons) == ["qa:f1:0:C"]
    assert read("AB", turn.buttons) is None  # single choice takes one letter
    assert read("E", turn.buttons) is None


def test_multiple_choice_letters_set_exactly_those_boxes_then_submit():
    turn = render([Reply("第 3/6 题（多选）", MULTI)])
    assert "回复全部所选字母即可提交" in turn.text and "（已选 B）" in turn.text
    # B is ticked already: ACD unticks B, ticks A, C, D, then submits
    assert read("ACD", turn.buttons) == ["qm:f1:2:A", "qm:f1:2:B", "qm:f1:2:C", "qm:f1:2:D", "qs:f1:2"]
    assert read("d, b", turn.buttons) == ["qm:f1:2:D", "qs:f1:2"]
    assert read("B", turn.buttons) == ["qs:f1:2"]
    assert read("ABX", turn.buttons) is None


def test_true_false_by_dui_cuo():
    turn = render([Reply("第 2/6 题（判断）", TRUE_FALSE)])
    assert turn.text.endswith("回复“对”或“错”作答")
    assert read("对", turn.buttons) == ["qa:f1:1:T"] and read("错", turn.buttons) == ["qa:f1:1:F"]
    assert read("√", turn.buttons) == ["qa:f1:1:T"] and read("错误", turn.buttons) == ["qa:f1:1:F"]


def test_check_boxes_take_several_numbers_and_one_final_button():
    boxes = [[Button("☐ 粉尘", "ob:h:dust")], [Button("☑ 噪声", "ob:h:noise")], [Button("☐ 化学", "ob:h:chem")],
             [Button("下一步", "ob:next")]]
    turn = render([Reply("第1步：危害因素？", boxes)])
    assert "可一次回复多个数字" in turn.text
    assert read("1 3", turn.buttons) == ["ob:h:dust", "ob:h:chem"]
    assert read("1，3，4", turn.buttons) == ["ob:h:dust", "ob:h:chem", "ob:next"]
    assert read("4 1", turn.buttons) is None  # "下一步" can only come last


def test_plain_words_stand_for_commands_in_either_script():
    assert text_command("测验") == "/quiz" and text_command("測驗！") == "/quiz"
    assert text_command("刪除我的數據") == "/forget" and text_command("我的资料") == "/me"
    assert text_command("测验里噪声题怎么做") is None


class Recorder:
    """A dialogue stand-in that records what it receives."""

    def __init__(self) -> None:
        self.got: list[Message] = []

    def handle(self, user_key: str, message: Message) -> list[Reply]:
        self.got.append(message)
        return [Reply(f"第{len(self.got)}次", [[Button("好", "ok")]])]


def test_converse_shows_only_the_last_press_and_stores_the_new_menu():
    menus, recorder = MemoryMenus(), Recorder()
    menus.set("u", [Button("☐ 甲", "t:1"), Button("☐ 乙", "t:2")])
    turn = converse(recorder, menus, "u", "1 2")
    assert [m.callback for m in recorder.got] == ["t:1", "t:2"]
    assert turn.text == "第2次\n回复 1 好" and menus.get("u") == [Button("好", "ok")]
    assert converse(recorder, menus, "u", "7").text == "请回复 1 到 1 之间的数字，或直接输入你的问题。"
    assert len(recorder.got) == 2 and menus.get("u") == [Button("好", "ok")]  # nothing sent, menu kept
    converse(recorder, menus, "u", None)  # a photo: an empty message for the dialogue's polite reply
    converse(recorder, menus, "u", "帮助")
    assert recorder.got[-2].text is None and recorder.got[-1].text == "/help"


# --------------------------------------------------------------------------- through the dialogue core


@pytest.fixture
def dialogue(tmp_path):
    """The real dialogue core with no index (quiz, roles and the self-check do not search)."""
    settings = load_settings(str(tmp_path), str(KNOWLEDGE), env={"OHBOT_QUIZ_SEED": "7"})
    retriever = SimpleNamespace(docs={}, by_faq={})
    return Dialogue(retriever, State(settings.state_url, "salt"), settings)


def test_a_practice_quiz_by_typed_letters(dialogue):
    menus = MemoryMenus()
    turn = converse(dialogue, menus, "u1", "测验")
    size = int(re.search(r"第 1/(\d+) 题", turn.text).group(1))
    feedback = 0
    for k in range(1, size + 1):
        assert f"第 {k}/{size} 题" in turn.text
        if "“对”或“错”" in turn.text:
            typed = "对"
        elif "所选字母" in turn.text:
            typed = "AB"
        else:
            typed = "A"
        turn = converse(dialogue, menus, "u1", typed)
        assert "出处：" in turn.text, turn.text  # the answer was taken: feedback with its source
        feedback += 1
    assert feedback == size and "测验完成" in turn.text and f"/{size} 题" in turn.text


def test_employer_self_check_by_numbers(dialogue):
    menus = MemoryMenus()
    converse(dialogue, menus, "boss", "/start")
    assert "已设为“用人单位”" in converse(dialogue, menus, "boss", "2").text
    turn = converse(dialogue, menus, "boss", "单位义务自查")
    assert "第1步" in turn.text
    numbers = {label: n for n, label in re.findall(r"(\d+) ([^\n·]+?)(?= ·|\n|$)", turn.text)}
    nxt = numbers["下一步"]
    turn = converse(dialogue, menus, "boss", f"1 2 {nxt}")  # two hazards ticked, then 下一步
    assert "第2步" in turn.text
    assert menus.get("boss")  # the head-count choices wait for a number


def test_my_profile_shows_what_is_stored(dialogue):
    menus = MemoryMenus()
    assert "角色：未设置" in converse(dialogue, menus, "p", "我的资料").text
    user = dialogue.state.get_user("p")
    user.profile.update(role="employer", industry="construction", sex="")
    dialogue.state.save_user(user)
    text = converse(dialogue, menus, "p", "/me").text
    assert "角色：用人单位" in text and "行业：建筑" in text and "性别" not in text and "/forget" in text
