"""`ohbot chat`: the dialogue in a terminal. Buttons are shown as numbers; type a number to press."""
from __future__ import annotations

import sys
from typing import TextIO

from bot.dialogue.core import Button, Dialogue, Message, Reply


def render(replies: list[Reply], out: TextIO) -> list[Button]:
    """Print replies; return the buttons in the order they were numbered."""
    numbered: list[Button] = []
    for reply in replies:
        print(reply.text, file=out)
        for row in reply.buttons:
            for button in row:
                numbered.append(button)
                print(f"  [{len(numbered)}] {button.label}", file=out)
        print(file=out)
    return numbered


def run(dialogue: Dialogue, user_id: str = "local", stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
        first: str = "/start") -> None:
    """Read lines until end of input or /quit; `first` is sent on the user's behalf to begin."""
    key = dialogue.state.user_key("console", user_id)
    print("职业健康知识助手（输入问题；输入数字选择按钮；/help 帮助；/quit 退出）\n", file=out)
    buttons = render(dialogue.handle(key, Message(text=first)), out)
    while True:
        print("> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            break
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(buttons):
            message = Message(callback=buttons[int(text) - 1].data)
        else:
            message = Message(text=text)
        buttons = render(dialogue.handle(key, message), out)
