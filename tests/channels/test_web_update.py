"""The webhook route's reading of a Telegram update (bot/channels/telegram.py `web_update`): the fields
the handlers use are python-telegram-bot's own reading of the same JSON, and a body that is no update
is refused (the route answers 400)."""
from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from bot.channels.telegram import web_update

USER = {"id": 7001, "is_bot": False, "first_name": "Ann", "language_code": "zh-hans"}
PRIVATE = {"id": 7001, "type": "private", "first_name": "Ann"}
GROUP = {"id": -100200, "type": "supergroup", "title": "工友群"}
BOT_MESSAGE = {"message_id": 11, "date": 1764400000, "chat": PRIVATE, "text": "请选择：",
               "from": {"id": 4242, "is_bot": True, "first_name": "ohbot"},
               "reply_markup": {"inline_keyboard": [[{"text": "劳动者", "callback_data": "role:worker"}]]}}

UPDATES = {
    "text": {"update_id": 1, "message": {"message_id": 5, "date": 1764400000, "chat": PRIVATE, "from": USER,
                                         "text": "体检费要我自己出吗？"}},
    "command": {"update_id": 2, "message": {"message_id": 6, "date": 1764400001, "chat": PRIVATE, "from": USER,
                                            "text": "/help", "entities": [{"type": "bot_command", "offset": 0,
                                                                           "length": 5}]}},
    "sticker": {"update_id": 3, "message": {"message_id": 7, "date": 1764400002, "chat": PRIVATE, "from": USER,
                                            "sticker": {"file_id": "s1", "file_unique_id": "u1", "width": 512,
                                                        "height": 512, "is_animated": False, "is_video": False,
                                                        "type": "regular", "emoji": "👍"}}},
    "group": {"update_id": 4, "message": {"message_id": 8, "date": 1764400003, "chat": GROUP, "from": USER,
                                          "text": "大家好"}},
    "button": {"update_id": 5, "callback_query": {"id": "9001", "from": USER, "chat_instance": "c1",
                                                  "data": "role:worker", "message": BOT_MESSAGE}},
    "inaccessible": {"update_id": 6, "callback_query": {"id": "9002", "from": USER, "chat_instance": "c1",
                                                        "data": "role:worker",
                                                        "message": {"message_id": 3, "date": 0, "chat": PRIVATE}}},
    "edited": {"update_id": 7, "edited_message": {"message_id": 5, "date": 1764400000, "edit_date": 1764400100,
                                                  "chat": PRIVATE, "from": USER, "text": "改了"}},
}


def _fields(update: Any) -> dict:
    """What TelegramChannel.message/callback/handle_update read of an update: the sender and the chat
    only of a message or a button press (every other kind is confirmed without being read)."""
    message = update.message
    query = update.callback_query
    read = message is not None or query is not None
    user = update.effective_user if read else None
    chat = update.effective_chat if read else None
    return {"update_id": update.update_id,
            "message": None if message is None else (message.text, message.chat_id),
            "callback_query": None if query is None else (query.id, query.data),
            "user": None if user is None else user.id,
            "chat": None if chat is None else (chat.id, chat.type)}


@pytest.mark.parametrize("kind", sorted(UPDATES))
def test_the_handlers_read_what_python_telegram_bot_reads(kind: str) -> None:
    data = UPDATES[kind]
    assert _fields(web_update(data)) == _fields(Update.de_json(data, None))


@pytest.mark.parametrize("body", [
    [], "update", {"message": UPDATES["text"]["message"]},  # no update_id
    {"update_id": "1"}, {"update_id": True},
    {"update_id": 1, "message": {"message_id": 5, "date": 1, "from": USER, "text": "x"}},  # no chat
    {"update_id": 1, "message": {"message_id": 5, "date": 1, "chat": {"id": "7001", "type": "private"}}},
    {"update_id": 1, "callback_query": {"id": "9", "data": "x"}},  # no sender
])
def test_a_body_that_is_no_update_is_refused(body: object) -> None:
    with pytest.raises((TypeError, KeyError, ValueError)):
        web_update(body)
