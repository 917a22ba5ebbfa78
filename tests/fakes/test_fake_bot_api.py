"""Proves tests/fakes/fake_bot_api.py works with the real python-telegram-bot library.

* End-to-end: a minimal PTB Application runs in a subprocess (``python -c``), exactly
  like the real bot, pointed at the fake via TELEGRAM_API_BASE_URL.
* In-process: telegram.Bot de-jsons every object the fake returns.
* Protocol: raw httpx requests check offsets, long polling, errors and fault injection.

Nothing here talks to Telegram: everything is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_bot_api import FakeBotAPI

ALICE, BOB = 1001, 1002

BOT_SCRIPT = textwrap.dedent(
    """
    import logging, os
    from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import (Application, CallbackQueryHandler, CommandHandler,
                              MessageHandler, filters)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def post_init(app):
        await app.bot.set_my_commands(
            [BotCommand("start", "Start the bot"), BotCommand("help", "Get help")])

    async def start(update, context):
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes"),
                                          InlineKeyboardButton("No", callback_data="no")]])
        await update.message.reply_text(
            f"Hello {update.effective_user.first_name}", reply_markup=keyboard)

    async def button(update, context):
        query = update.callback_query
        await query.answer()
        await query.edit_message_text(f"You chose {query.data}")

    async def echo(update, context):
        await update.message.reply_text(f"echo: {update.message.text}")

    async def media(update, context):
        kind = "sticker" if update.message.sticker else "photo"
        await update.message.reply_text(f"got a {kind}")

    app = (Application.builder()
           .token(os.environ["TELEGRAM_BOT_TOKEN"])
           .base_url(os.environ["TELEGRAM_API_BASE_URL"])
           .post_init(post_init)
           .build())
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(MessageHandler(filters.Sticker.ALL | filters.PHOTO, media))
    app.run_polling()
    """
)


def _start_bot(fake: FakeBotAPI, log_path: Path, token: str | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "TELEGRAM_BOT_TOKEN": token or fake.token,
        "PYTHONUNBUFFERED": "1",
    }
    log = open(log_path, "wb")  # a file, not a pipe: a full pipe would block the bot
    try:
        return subprocess.Popen(
            [sys.executable, "-c", BOT_SCRIPT], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()


def _stop_bot(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # run_polling stops gracefully on SIGTERM
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


@pytest.fixture
def fake():
    with FakeBotAPI() as api:
        yield api


@pytest.fixture
def bot(fake, tmp_path):
    """The PTB app in a subprocess, already long-polling the fake."""
    log_path = tmp_path / "bot.log"
    proc = _start_bot(fake, log_path)
    proc.log_path = log_path  # type: ignore[attr-defined]
    try:
        fake.wait_for_call("getUpdates", timeout=15)
        yield proc
        assert proc.poll() is None, "bot died:\n" + log_path.read_text()
    finally:
        code = _stop_bot(proc)
        print(log_path.read_text())  # shown by pytest on failure
    assert code == 0, f"bot did not shut down cleanly (exit {code})"


def _api(fake: FakeBotAPI, method: str, token: str | None = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{fake.base_url}{token or fake.token}/{method}", timeout=10, **kwargs)


# --------------------------------------------------------------------------- end-to-end


def test_two_users_commands_echo_callbacks_and_media(fake, bot):
    # post_init's setMyCommands was recorded before polling started
    assert fake.set_my_commands == [
        {
            "commands": [
                {"command": "start", "description": "Start the bot"},
                {"command": "help", "description": "Get help"},
            ],
            "scope": None,
            "language_code": "",
        }
    ]
    assert [c["command"] for c in fake.my_commands()] == ["start", "help"]

    fake.send_text(ALICE, "/start", first_name="Alice")
    fake.send_text(BOB, "/start", first_name="Bob")
    [hello_alice] = fake.wait_for(ALICE)
    [hello_bob] = fake.wait_for(BOB)
    assert hello_alice["method"] == "sendMessage"
    assert hello_alice["text"] == "Hello Alice"
    assert hello_bob["text"] == "Hello Bob"
    buttons = hello_bob["reply_markup"]["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [("Yes", "yes"), ("No", "no")]

    fake.send_text(ALICE, "how are you?")
    [echo] = fake.wait_for(ALICE)
    assert echo["text"] == "echo: how are you?"
    assert echo["message_id"] > hello_alice["message_id"]

    # Bob presses "yes" on his keyboard: only his message is edited, keyboard removed
    press = fake.press_button(BOB, hello_bob["message_id"], "yes")
    [edit] = fake.wait_for(BOB, lambda m: m["method"] == "editMessageText")
    assert edit["message_id"] == hello_bob["message_id"]
    assert edit["text"] == "You chose yes"
    assert edit["reply_markup"] is None
    fake.wait_until(lambda: fake.calls("answerCallbackQuery"), 5, "answerCallbackQuery")
    [answer] = fake.calls("answerCallbackQuery")
    assert answer["params"]["callback_query_id"] == press["callback_query"]["id"]
    assert answer["status"] == 200

    # non-text messages de-json in PTB (filters.Sticker / filters.PHOTO matched)
    fake.send_sticker(ALICE)
    fake.send_photo(BOB, caption="my desk")
    assert fake.wait_for(ALICE)[0]["text"] == "got a sticker"
    assert fake.wait_for(BOB)[0]["text"] == "got a photo"

    assert [m["text"] for m in fake.messages(ALICE)] == [
        "Hello Alice", "echo: how are you?", "got a sticker"
    ]
    assert [(m["method"], m["text"]) for m in fake.messages(BOB)] == [
        ("sendMessage", "Hello Bob"),
        ("editMessageText", "You chose yes"),
        ("sendMessage", "got a photo"),
    ]
    # PTB confirms every fetched update through the getUpdates offset
    fake.wait_until(lambda: not fake.pending_updates(), 5, "all updates confirmed")
    assert all(c["status"] == 200 for c in fake.calls() if c["method"] != "getUpdates")


def test_handler_error_does_not_kill_the_bot(fake, bot):
    fake.fail_next("sendMessage")  # 502 Bad Gateway -> telegram.error.NetworkError
    fake.send_text(ALICE, "first")
    fake.wait_until(
        lambda: any(c["status"] == 502 for c in fake.calls("sendMessage")), 10, "failed reply"
    )
    fake.send_text(ALICE, "second")
    [reply] = fake.wait_for(ALICE)
    assert reply["text"] == "echo: second"
    assert [m["text"] for m in fake.messages(ALICE)] == ["echo: second"]
    assert [c["status"] for c in fake.calls("sendMessage")] == [502, 200]
    # PTB's default: no error handler registered -> the error is logged, the app goes on
    fake.wait_until(lambda: "Bad Gateway" in bot.log_path.read_text(), 5, "error logged")
    assert bot.poll() is None


def test_polling_survives_dropped_connection_and_502(fake, bot):
    fake.drop_connection_next("getUpdates")
    fake.fail_next("getUpdates", status=502)
    fake.send_text(ALICE, "one")  # answered from the poll already in flight
    assert fake.wait_for(ALICE)[0]["text"] == "echo: one"
    fake.wait_until(
        lambda: [c["status"] for c in fake.calls("getUpdates")][-3:-1] == ["dropped", 502]
        and fake.calls("getUpdates")[-1]["status"] is None,
        15,
        "polling to resume after the faults",
    )
    fake.send_text(ALICE, "two")
    assert fake.wait_for(ALICE)[0]["text"] == "echo: two"
    assert [m["text"] for m in fake.messages(ALICE)] == ["echo: one", "echo: two"]


def test_wrong_token_makes_the_bot_exit(fake, tmp_path):
    proc = _start_bot(fake, tmp_path / "bot.log", token="999:WRONG")
    try:
        code = proc.wait(timeout=20)
    finally:
        _stop_bot(proc)
    log = (tmp_path / "bot.log").read_text()
    assert code != 0
    assert "InvalidToken" in log, log
    assert fake.calls("getMe")[0]["status"] == 401


# --------------------------------------------------------------------------- in-process PTB


def test_objects_dejson_in_ptb(fake):
    from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.constants import ChatAction, ParseMode

    async def scenario():
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            me = await bot.get_me()
            assert me.is_bot and me.id == 123 and me.username == "ohbot_test_bot"
            assert await bot.delete_webhook()
            assert (await bot.get_webhook_info()).url == ""

            fake.send_text(ALICE, "/help me", first_name="Alice")
            fake.send_sticker(ALICE)
            fake.send_photo(ALICE)
            updates = await bot.get_updates(timeout=0)
            assert updates[0].message.text == "/help me"
            assert updates[0].message.chat.type == "private"
            assert updates[0].message.entities[0].type == "bot_command"
            assert updates[1].message.sticker.emoji == "👍"
            assert updates[2].message.photo[-1].width == 800

            markup = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
            sent = await bot.send_message(
                ALICE, "<b>Hi</b>", parse_mode=ParseMode.HTML, reply_markup=markup
            )
            assert sent.chat_id == ALICE and sent.from_user.is_bot
            assert sent.message_id == 4  # ids are per chat, shared with Alice's 3 messages
            assert sent.reply_markup == markup
            assert await bot.send_chat_action(ALICE, ChatAction.TYPING)

            fake.press_button(ALICE, sent.message_id, "ok")
            [update] = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
            assert update.callback_query.message.message_id == sent.message_id
            assert await update.callback_query.answer("done")
            edited = await bot.edit_message_text("Bye", ALICE, sent.message_id)
            assert edited.text == "Bye" and edited.edit_date is not None
            edited = await bot.edit_message_reply_markup(
                ALICE, sent.message_id, reply_markup=markup
            )
            assert edited.reply_markup == markup

            assert await bot.set_my_commands([BotCommand("start", "Start")])
            assert [c.command for c in await bot.get_my_commands()] == ["start"]
            assert await bot.close() and await bot.log_out()
            return update.update_id

    callback_update_id = asyncio.run(scenario())
    records = fake.messages(ALICE)
    assert [r["method"] for r in records] == [
        "sendMessage", "editMessageText", "editMessageReplyMarkup"
    ]
    assert records[0]["parse_mode"] == "HTML"
    assert records[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]
    }
    assert records[2]["text"] == "Bye"
    # the callback update was fetched but never confirmed by a later offset
    assert [u["update_id"] for u in fake.pending_updates()] == [callback_update_id]


# --------------------------------------------------------------------------- protocol


def test_auth_unknown_method_and_body_encodings(fake):
    assert _api(fake, "getMe", token="123:WRONG").status_code == 401
    response = _api(fake, "sendSomething")
    assert response.status_code == 404
    assert response.json() == {
        "ok": False, "error_code": 404, "description": "Not Found: method not found"
    }
    fake.send_text(ALICE, "hi")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    as_json = _api(
        fake, "sendMessage", json={"chat_id": ALICE, "text": "1", "reply_markup": markup}
    )
    as_form = _api(
        fake, "sendMessage",
        data={"chat_id": str(ALICE), "text": "2", "reply_markup": json.dumps(markup)},
    )
    as_multipart = _api(
        fake, "sendDocument",
        data={"chat_id": str(ALICE), "caption": "3"},
        files={"document": ("report.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert [r.status_code for r in (as_json, as_form, as_multipart)] == [200, 200, 200]
    assert as_multipart.json()["result"]["document"]["file_name"] == "report.pdf"
    records = fake.messages(ALICE)
    assert [(r["text"], r["message_id"]) for r in records] == [("1", 2), ("2", 3), ("3", 4)]
    assert records[0]["reply_markup"] == records[1]["reply_markup"] == markup
    assert records[2]["params"]["document"]["size"] == 8


def test_get_updates_offset_limit_and_long_poll(fake):
    for n in range(3):
        fake.send_text(ALICE, f"m{n}")
    first = _api(fake, "getUpdates", data={"limit": "2"}).json()["result"]
    assert [u["message"]["text"] for u in first] == ["m0", "m1"]
    rest = _api(fake, "getUpdates", data={"offset": str(first[-1]["update_id"] + 1)}).json()
    assert [u["message"]["text"] for u in rest["result"]] == ["m2"]
    assert [u["message"]["text"] for u in fake.pending_updates()] == ["m2"]  # m0, m1 confirmed
    offset = rest["result"][0]["update_id"] + 1

    began = time.monotonic()
    empty = _api(fake, "getUpdates", data={"offset": str(offset), "timeout": "1"}).json()
    assert empty == {"ok": True, "result": []}
    assert time.monotonic() - began >= 0.9  # honoured the long-poll timeout

    timer = threading.Timer(0.3, fake.send_text, args=(BOB, "late"))
    timer.start()
    began = time.monotonic()
    late = _api(fake, "getUpdates", data={"offset": str(offset), "timeout": "5"}).json()
    timer.join()
    assert [u["message"]["text"] for u in late["result"]] == ["late"]
    assert time.monotonic() - began < 3  # woke up as soon as the update arrived
    assert fake.pending_updates()[0]["message"]["text"] == "late"


def test_telegram_like_validation_errors(fake):
    fake.send_text(ALICE, "hi")

    def send(**params):
        return _api(fake, "sendMessage", json={"chat_id": ALICE, **params}).json()

    assert send(text="a <br> b", parse_mode="HTML")["description"].startswith(
        "Bad Request: can't parse entities"
    )
    assert send(text="")["description"] == "Bad Request: message text is empty"
    assert send(text="x" * 4097)["description"] == "Bad Request: message is too long"
    long_data = {"inline_keyboard": [[{"text": "A", "callback_data": "x" * 65}]]}
    assert send(text="a", reply_markup=long_data)["description"] == (
        "Bad Request: BUTTON_DATA_INVALID"
    )
    assert _api(fake, "sendMessage", json={"chat_id": 42, "text": "a"}).json()["description"] == (
        "Bad Request: chat not found"
    )
    message_id = send(text="same")["result"]["message_id"]
    not_modified = _api(
        fake, "editMessageText", json={"chat_id": ALICE, "message_id": message_id, "text": "same"}
    )
    assert not_modified.status_code == 400 and "not modified" in not_modified.json()["description"]
    missing = _api(fake, "editMessageText", json={"chat_id": ALICE, "message_id": 99, "text": "x"})
    assert missing.json()["description"] == "Bad Request: message to edit not found"
    bad_query = _api(fake, "answerCallbackQuery", data={"callback_query_id": "nope"})
    assert bad_query.status_code == 400
    fake.block_user(ALICE)
    assert _api(fake, "sendMessage", json={"chat_id": ALICE, "text": "a"}).status_code == 403
    assert [m["text"] for m in fake.messages(ALICE)] == ["same"]  # failures are not recorded


def test_fault_injection(fake):
    fake.send_text(ALICE, "hi")
    fake.fail_next("sendMessage", times=2, status=429, retry_after=3)
    fake.drop_connection_next("sendMessage", after_processing=True)
    body = {"chat_id": ALICE, "text": "x"}
    for _ in range(2):
        limited = _api(fake, "sendMessage", json=body)
        assert limited.status_code == 429
        assert limited.json()["parameters"] == {"retry_after": 3}
    with pytest.raises(httpx.TransportError):
        _api(fake, "sendMessage", json=body)  # processed, but the response is lost
    assert _api(fake, "sendMessage", json=body).status_code == 200
    assert len(fake.messages(ALICE)) == 2  # the "lost" one and the retry
    assert [c["status"] for c in fake.calls("sendMessage")] == [429, 429, "dropped", 200]


def test_wait_for_semantics_and_timeout_report(fake):
    fake.send_text(ALICE, "hi")
    for text in ("one", "two", "three"):
        _api(fake, "sendMessage", json={"chat_id": ALICE, "text": text})
    assert [m["text"] for m in fake.wait_for(ALICE, "t", count=2)] == ["two", "three"]
    _api(fake, "sendMessage", json={"chat_id": ALICE, "text": "four"})
    assert fake.wait_for(ALICE)[0]["text"] == "four"  # only messages after the last match
    with pytest.raises(AssertionError, match="timed out .* chat 1001"):
        fake.wait_for(ALICE, timeout=0.2)
    _api(fake, "sendMessage", json={"chat_id": ALICE, "text": "five"})
    with pytest.raises(AssertionError, match="'five'"):
        fake.wait_for(ALICE, lambda m: m["text"] == "six", timeout=0.2)


def test_stop_is_prompt_with_a_long_poll_in_flight():
    fake = FakeBotAPI().start()
    results: list = []

    def poll():
        try:
            results.append(_api(fake, "getUpdates", data={"timeout": "25"}).json())
        except httpx.TransportError as exc:
            results.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    fake.wait_for_call("getUpdates", timeout=5)
    began = time.monotonic()
    fake.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and results
    assert time.monotonic() - began < 3
    fake.stop()  # idempotent
