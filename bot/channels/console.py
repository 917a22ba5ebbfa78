"""`ohbot chat`: the dialogue in a terminal. Buttons are text (bot/channels/text_menu.py, the same
as on WeChat): type a number to press one, letters to answer a quiz item."""
from __future__ import annotations

import sys
from typing import TextIO

from bot.channels.text_menu import MemoryMenus, converse, render
from bot.dialogue.core import Dialogue, Message


def run(dialogue: Dialogue, user_id: str = "local", stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
        first: str = "/start") -> None:
    """Read lines until end of input or /quit; `first` is sent on the user's behalf to begin."""
    key = dialogue.state.user_key("console", user_id)
    menus = MemoryMenus()
    print("职业健康知识助手（输入问题；输入数字选择；/help 帮助；/quit 退出）\n", file=out)
    turn = render(dialogue.handle(key, Message(text=first)))
    menus.set(key, turn.buttons)
    print(turn.text + "\n", file=out)
    while True:
        print("> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            break
        print(converse(dialogue, menus, key, line.strip()).text + "\n", file=out)
