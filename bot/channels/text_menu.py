"""Buttons as text, for every channel without buttons (the console, WeChat, WeCom): one renderer and
one reader, so a menu looks and works the same everywhere.

* Ordinary buttons are numbered across the replies of one turn ("回复 1 劳动者 · 2 用人单位 · …",
  one per line when the list is long); typing the number presses the button. Several numbers
  ("1 3 5") tick several check boxes (☐/☑ buttons) in one message, optionally ending with
  one other button ("1 3 8" with 8 = 下一步).
* Quiz options are answered as on paper: the letter for single choice ("B"), all the letters for
  multiple choice ("ACD", any order: the boxes are set to exactly those and the answer submitted),
  对/错 for true-false.
* Typing a button's label ("劳动者", "跳过") presses it too, and a few plain words stand for commands
  a text channel cannot show as buttons ("测验" → /quiz, "删除我的数据" → /forget), in Simplified
  or Traditional script.

The buttons of the last turn are what the next message is read against; channels keep them per
user (`MenuStore`): the console in memory, WeChat in the database, since any process may take the
user's next message.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from bot.dialogue.types import Button, Message, Reply
from bot.text.clean import scrub
from bot.text.normalize import normalize

LETTER = re.compile(r"^([☐☑]?)([A-Z])$")
TOGGLE_MARKS = ("☐", "☑")
SUBMIT = "提交"
TRUE_LABEL, FALSE_LABEL = "正确", "错误"
TRUE_WORDS = frozenset({"对", "正确", "是", "√", "✓", "✔", "T", "TRUE", "Y"})
FALSE_WORDS = frozenset({"错", "错误", "不对", "否", "×", "✗", "✘", "X", "F", "FALSE", "N"})
INLINE_MAX = 40  # a numbered list longer than this many characters gets one line per choice
SEPARATORS = r"[\s,，、;；.。]+"
TEXT_COMMANDS = {
    "开始": "/start", "帮助": "/help", "使用说明": "/help", "菜单": "/help", "问答": "/help",
    "测验": "/quiz", "答题": "/quiz", "知识测验": "/quiz",
    "自查": "/obligations", "义务自查": "/obligations", "单位义务自查": "/obligations",
    "身份": "/role", "更改身份": "/role", "地区": "/region", "设置地区": "/region",
    "隐私": "/privacy", "隐私说明": "/privacy", "我的资料": "/me",
    "删除我的数据": "/forget", "删除数据": "/forget",
}


@dataclass
class TextTurn:
    """One turn as text: what to show, and the buttons the user's next message is read against."""
    text: str
    buttons: list[Button]


class MenuStore(Protocol):
    """Where a channel keeps each user's last buttons."""

    def get(self, user_key: str) -> list[Button]:
        """The buttons last offered to the user (empty if none)."""
        ...

    def set(self, user_key: str, buttons: list[Button]) -> None:
        """Replace them (an empty list forgets them)."""
        ...


class MemoryMenus:
    """A MenuStore in this process's memory (the console: one user, one process)."""

    def __init__(self) -> None:
        """No menus yet."""
        self._menus: dict[str, list[Button]] = {}

    def get(self, user_key: str) -> list[Button]:
        """The buttons last offered to the user."""
        return self._menus.get(user_key, [])

    def set(self, user_key: str, buttons: list[Button]) -> None:
        """Replace them."""
        self._menus[user_key] = list(buttons)


# --------------------------------------------------------------------------- rendering


def _letter(button: Button) -> re.Match[str] | None:
    """The (mark, letter) match of a quiz option button ("B", "☐A", "☑C"), else None."""
    return LETTER.match(button.label)


def _choice_text(reply: Reply, numbered: list[Button]) -> str:
    """The instruction under one reply's buttons; appends its buttons to `numbered` in the order
    their numbers count."""
    flat = [b for row in reply.buttons for b in row]
    options = [b for b in flat if _letter(b)]
    lines: list[str] = []
    if options:
        numbered.extend(options)
        marks = [_letter(b) for b in options]
        if any(m.group(1) for m in marks if m):
            chosen = "".join(m.group(2) for m in marks if m and m.group(1) == "☑")
            lines.append("回复全部所选字母即可提交，例如 AC" + (f"（已选 {chosen}）" if chosen else ""))
        else:
            lines.append("回复选项字母作答，例如 B")
        numbered.extend(b for b in flat if b.label == SUBMIT)
        flat = [b for b in flat if b not in options and b.label != SUBMIT]
    if len(flat) == 2 and {b.label for b in flat} == {TRUE_LABEL, FALSE_LABEL}:
        numbered.extend(flat)
        return "\n".join(lines + ["回复“对”或“错”作答"])
    if flat:
        start = len(numbered)
        numbered.extend(flat)
        items = [f"{start + i + 1} {b.label}" for i, b in enumerate(flat)]
        inline = "回复 " + " · ".join(items)
        lines.append(inline if len(inline) <= INLINE_MAX else "回复数字选择：\n" + "\n".join(items))
        if any(b.label.startswith(TOGGLE_MARKS) for b in flat):
            lines.append("（可一次回复多个数字，如 1 3）")
    return "\n".join(lines)


def render(replies: list[Reply]) -> TextTurn:
    """The replies of one turn as one text (separated by blank lines), buttons as text; the
    numbers run on across the replies."""
    numbered: list[Button] = []
    parts = []
    for reply in replies:
        text = reply.text.strip()
        if reply.buttons:
            choice = _choice_text(reply, numbered)
            text = f"{text}\n{choice}" if text else choice
        if text:
            parts.append(text)
    return TextTurn("\n\n".join(parts), numbered)


# --------------------------------------------------------------------------- reading


def _fold(text: str) -> str:
    """Full-width forms to ASCII (ＡＢ１ → AB1), letters upper-cased, outer spaces removed."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def read(text: str, buttons: list[Button]) -> list[str] | None:
    """The button presses (callback data, in order) that the typed `text` stands for while
    `buttons` are on offer; None when it is ordinary text for the dialogue."""
    folded = _fold(text)
    if not folded or not buttons:
        return None
    numbers = re.split(SEPARATORS, folded.strip(",，、;；.。 "))
    if numbers and all(n.isdecimal() for n in numbers):
        picks = [int(n) for n in numbers]
        if not all(1 <= n <= len(buttons) for n in picks):
            return None
        chosen = [buttons[n - 1] for n in picks]
        if not all(b.label.startswith(TOGGLE_MARKS) for b in chosen[:-1]):
            return None  # several numbers: check boxes, then at most one other button ("下一步")
        return [b.data for b in chosen]
    options = {m.group(2): (m.group(1), b) for b in buttons if (m := _letter(b))}
    letters = re.sub(SEPARATORS, "", folded)
    if options and re.fullmatch(r"[A-Z]+", letters) and set(letters) <= set(options):
        toggles = {k: v for k, v in options.items() if v[0]}
        if not toggles:
            return [options[letters][1].data] if len(letters) == 1 else None
        submit = next((b for b in buttons if b.label == SUBMIT), None)
        if submit is None:
            return None
        wanted = set(letters)
        flips = [b.data for k, (mark, b) in sorted(toggles.items()) if (mark == "☑") != (k in wanted)]
        return flips + [submit.data]
    by_label = {b.label: b for b in buttons}
    if folded in TRUE_WORDS and TRUE_LABEL in by_label:
        return [by_label[TRUE_LABEL].data]
    if folded in FALSE_WORDS and FALSE_LABEL in by_label:
        return [by_label[FALSE_LABEL].data]
    if text.strip() in by_label:
        return [by_label[text.strip()].data]
    return None


def text_command(text: str) -> str | None:
    """The command a plain word stands for ("测验" → "/quiz"; "刪除我的數據" → "/forget")."""
    word = re.sub(r"[\s。.!！?？]+$", "", normalize(text))
    return TEXT_COMMANDS.get(word)


def messages_for(text: str | None, buttons: list[Button], is_admin: bool = False) -> list[Message]:
    """What the dialogue receives for one typed message: button presses, a command, the text as
    it is, or (text None: a photo, voice …) an empty message the dialogue answers politely."""
    if text is None:
        return [Message(text=None, is_admin=is_admin)]
    presses = read(text, buttons)
    if presses:
        return [Message(callback=data, is_admin=is_admin) for data in presses]
    return [Message(text=text_command(text) or text, is_admin=is_admin)]


def converse(dialogue, menus: MenuStore, user_key: str, text: str | None, is_admin: bool = False) -> TextTurn:
    """One typed message through the dialogue (`dialogue.handle`), read against the user's last
    buttons; the new buttons are stored for the next message. Of several presses in one message
    only the last one's replies are shown (the earlier ones only tick boxes)."""
    text = scrub(text)
    buttons = menus.get(user_key)
    if text is not None and buttons and _fold(text).isdecimal() and read(text, buttons) is None:
        return TextTurn(f"请回复 1 到 {len(buttons)} 之间的数字，或直接输入你的问题。", buttons)
    replies: list[Reply] = []
    for message in messages_for(text, buttons, is_admin):
        replies = dialogue.handle(user_key, message)
    turn = render(replies)
    menus.set(user_key, turn.buttons)
    return turn
