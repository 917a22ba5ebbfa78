"""End-to-end test of the Telegram channel: the real `ohbot telegram` process against the fake Bot
API server (tests/fakes/fake_bot_api.py) on loopback, with the real knowledge index.

The bot process is started once for the module (loading the model takes a few seconds); each test
uses its own Telegram user ids, and the last test stops the process with SIGTERM and checks its log.
A few fast unit tests of the adapter's helpers come first.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.channels.telegram import (
    APOLOGY,
    RATE_NOTICE,
    KeyedLocks,
    RateLimiter,
    TokenFilter,
    file_url,
    split_text,
    utf16_len,
)
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.helpers import REPO_ROOT, post_webhook, private_data_dir, stop_process

OHBOT = Path(sys.executable).parent / "ohbot"
TOKEN = "987654321:AAH-ohbotTestToken_x9YqZ3kLmN0pQrStUvW"
ADMIN = 9009
START_TIMEOUT = 90.0  # loading the model and the index
REPLY_TIMEOUT = 20.0


# --------------------------------------------------------------------------- unit tests


def test_split_text_respects_limit_and_prefers_newlines():
    text = ("一二三四五六七八九十。" * 30 + "\n") * 30  # 9,930 characters in 30 lines
    parts = split_text(text)
    assert len(parts) == 3
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text  # cut only at newlines, nothing lost
    emoji = "a😀" * 3000  # astral characters count twice
    parts = split_text(emoji)
    assert all(utf16_len(p) <= 4096 for p in parts) and "".join(parts) == emoji
    assert split_text("短") == ["短"] and split_text("   ") == []


def test_rate_limiter_notices_once_then_silent_until_window_passes():
    now = [0.0]
    limiter = RateLimiter(limit=3, window=60, clock=lambda: now[0])
    assert [limiter.check("u") for _ in range(6)] == ["ok", "ok", "ok", "notice", "drop", "drop"]
    assert limiter.check("other") == "ok"
    now[0] = 61.0
    assert limiter.check("u") == "ok"


def test_token_filter_masks_message_args_and_traceback():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"https://h/bot{TOKEN}/getMe",), None)
    try:
        raise RuntimeError(f"failed {TOKEN}")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    TokenFilter(TOKEN).filter(record)
    assert TOKEN not in record.getMessage() and "<token>" in record.getMessage()
    assert TOKEN not in logging.Formatter().format(record)


def test_keyed_locks_serialise_one_key_and_clean_up():
    import asyncio

    async def main():
        locks, order = KeyedLocks(), []

        async def work(key, n):
            async with locks.hold(key):
                await asyncio.sleep(0.01 * (3 - n))
                order.append((key, n))

        await asyncio.gather(*(work("a", n) for n in range(3)), work("b", 0))
        return locks, order

    locks, order = asyncio.run(main())
    assert [n for k, n in order if k == "a"] == [0, 1, 2]
    assert len(locks) == 0
    assert file_url("http://127.0.0.1:5/bot") == "http://127.0.0.1:5/file/bot"


# --------------------------------------------------------------------------- the bot process


@dataclass
class BotProcess:
    api: FakeBotAPI
    proc: subprocess.Popen
    stdout: Path
    stderr: Path

    def log(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace") + self.stderr.read_text(
            encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def bot_data_dir(built_index, data_dir, tmp_path_factory) -> Path:
    """A private data dir (the bot writes ohbot.db and salt): a copy of the session index and the
    session's exported model, linked."""
    return private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp("telegram-data"))


def _start(api: FakeBotAPI, data: Path, logs: Path, *extra: str, ready: str = "getUpdates",
           env: dict[str, str] | None = None) -> BotProcess:
    """`ohbot --data-dir DATA telegram EXTRA…` against the fake (`env`: more variables); returns once
    it calls `ready`."""
    extra_env = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url, OHBOT_ADMIN_IDS=str(ADMIN), OHBOT_QUIZ_SEED="11",
        PYTHONUNBUFFERED="1", **extra_env,
    )
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen([str(OHBOT), "--data-dir", str(data), "telegram", *extra],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    running = BotProcess(api, proc, stdout, stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while not api.calls(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            pytest.fail(f"the bot did not call {ready} (exit code {proc.poll()}):\n{running.log()[-3000:]}")
        time.sleep(0.1)
    return running


@pytest.fixture(scope="module")
def bot(bot_data_dir, tmp_path_factory):
    api = FakeBotAPI(token=TOKEN).start()
    try:
        running = _start(api, bot_data_dir, tmp_path_factory.mktemp("telegram-logs"))
        try:
            yield running
        finally:
            stop_process(running.proc)
    finally:
        api.stop()


def _texts(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [m["text"] or "" for m in api.messages(chat_id)]


# --------------------------------------------------------------------------- end-to-end tests


def test_command_menu_is_set(bot):
    commands = bot.api.my_commands()
    names = {c["command"] for c in commands}
    assert {"start", "help", "ask"} <= names
    assert all(c["description"] for c in commands)


def test_two_users_interleaved_get_their_own_answers(bot):
    api, alice, bob = bot.api, 1001, 2002
    api.send_text(alice, "/start", first_name="Alice")
    api.send_text(bob, "/start", first_name="Bob")
    [a_start] = api.wait_for(alice, timeout=REPLY_TIMEOUT)
    [b_start] = api.wait_for(bob, timeout=REPLY_TIMEOUT)
    assert a_start["reply_markup"] and a_start["parse_mode"] is None

    api.press_button(alice, a_start["message_id"], "role:worker")
    api.press_button(bob, b_start["message_id"], "role:employer")
    assert "劳动者" in api.wait_for(alice, timeout=REPLY_TIMEOUT)[0]["text"]
    assert "用人单位" in api.wait_for(bob, timeout=REPLY_TIMEOUT)[0]["text"]
    answered = [q for q in api.calls("answerCallbackQuery") if q["status"] == 200]
    assert len(answered) >= 2  # the buttons' spinners were stopped

    # both of Alice's questions are queued before any answer, Bob's in between
    api.send_text(alice, "體檢費要我自己出嗎？")
    api.send_text(bob, "单位要不要申报职业病危害项目？")
    api.send_text(alice, "做电焊眼睛疼是不是职业病？")
    a_exam, a_weld = api.wait_for(alice, "来源", count=2, timeout=REPLY_TIMEOUT)
    [b_answer] = api.wait_for(bob, "来源", timeout=REPLY_TIMEOUT)
    assert "职业健康检查" in a_exam["text"]  # answers arrive in the order asked
    assert "电焊" in a_weld["text"]
    assert "申报" in b_answer["text"]

    alice_texts, bob_texts = set(_texts(api, alice)), set(_texts(api, bob))
    assert a_exam["text"] not in bob_texts and a_weld["text"] not in bob_texts
    assert b_answer["text"] not in alice_texts
    assert len(api.messages(alice)) == 4 and len(api.messages(bob)) == 3  # nothing doubled


def test_button_then_question_are_handled_in_order(bot):
    api, user = bot.api, 7007
    api.send_text(user, "/start")
    [start] = api.wait_for(user, timeout=REPLY_TIMEOUT)
    api.press_button(user, start["message_id"], "role:employer")
    api.send_text(user, "单位要不要申报职业病危害项目？")  # sent before the button's reply came
    confirm, answer = api.wait_for(user, count=2, timeout=REPLY_TIMEOUT)
    assert "用人单位" in confirm["text"] and "来源" in answer["text"]


def test_odd_messages_get_a_short_polite_reply(bot):
    api, user = bot.api, 3003
    checks = [
        (lambda: api.send_text(user, "/nosuchcommand"), "命令"),
        (lambda: api.send_sticker(user), "文字"),
        (lambda: api.send_photo(user), "文字"),
        (lambda: api.send_text(user, "   "), "文字"),
        (lambda: api.send_text(user, "？"), "问题"),
        (lambda: api.send_text(user, "问" * 10_000), "太长"),
    ]
    for send, expected in checks:
        send()
        [reply] = api.wait_for(user, timeout=REPLY_TIMEOUT)
        assert expected in reply["text"] and len(reply["text"]) < 200 and reply["text"] != APOLOGY


def test_admin_flag_comes_from_admin_ids(bot):
    api = bot.api
    api.send_text(ADMIN, "/stats")
    api.send_text(3004, "/stats")
    assert api.wait_for(ADMIN, timeout=REPLY_TIMEOUT)[0]["text"].startswith("【统计】")
    assert "管理员" in api.wait_for(3004, timeout=REPLY_TIMEOUT)[0]["text"]


def test_send_is_retried_after_api_errors(bot):
    api, user = bot.api, 5005
    failed_before = sum(1 for c in api.calls("sendMessage") if c["status"] == 502)
    api.fail_next("sendMessage", times=2)
    api.send_text(user, "做电焊眼睛疼是不是职业病？")
    [reply] = api.wait_for(user, "来源", timeout=REPLY_TIMEOUT)
    assert "电焊" in reply["text"]
    assert sum(1 for c in api.calls("sendMessage") if c["status"] == 502) == failed_before + 2
    time.sleep(0.5)
    assert len(api.messages(user)) == 1


def test_rate_limit_one_notice_then_silence(bot):
    api, user = bot.api, 6006
    for _ in range(25):
        api.send_text(user, "/help")
    replies = api.wait_for(user, count=21, timeout=REPLY_TIMEOUT)
    assert all("职业健康知识助手" in r["text"] for r in replies[:20])
    assert replies[20]["text"] == RATE_NOTICE
    time.sleep(1.0)
    assert len(api.messages(user)) == 21  # the last four got no reply at all


def _buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    if isinstance(markup, str):
        markup = json.loads(markup)
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def _take_quiz(api: FakeBotAPI, user: int, size: int, pick_last: bool) -> int:
    """Consent, profile, then every item through the buttons; returns the ✅ count the user saw."""
    api.send_text(user, "/quiz")
    [consent] = api.wait_for(user, "测评", timeout=REPLY_TIMEOUT)
    api.press_button(user, consent["message_id"], "qz:consent:yes")
    for answer in ("qz:pf:construction", "qz:pf:small_micro", "qz:pf:worker", "qz:pf:-", "qz:pf:-",
                   "qz:pf:-", "qz:pf:-"):
        [question] = api.wait_for(user, lambda m, answer=answer: answer.split(":")[-1] == "-" or answer in _buttons(m),
                                  timeout=REPLY_TIMEOUT)
        api.press_button(user, question["message_id"], answer)
    right = 0
    for k in range(1, size + 1):
        [item] = api.wait_for(user, f"第 {k}/{size} 题", timeout=REPLY_TIMEOUT)
        choices = [b for b in _buttons(item) if b.startswith(("qa:", "qm:"))]
        choice = choices[-1] if pick_last else choices[0]
        api.press_button(user, item["message_id"], choice)
        if choice.startswith("qm:"):  # multiple choice: one box ticked, then 提交
            [ticked] = api.wait_for(user, f"第 {k}/{size} 题", timeout=REPLY_TIMEOUT)
            api.press_button(user, ticked["message_id"], next(b for b in _buttons(ticked) if b.startswith("qs:")))
        [feedback] = api.wait_for(user, "出处：", timeout=REPLY_TIMEOUT)
        right += feedback["text"].startswith("✅")
    [summary] = api.wait_for(user, "测验完成", timeout=REPLY_TIMEOUT)
    assert f"答对 {right}/{size} 题" in summary["text"]
    return right


def test_two_users_take_a_counted_form_and_the_report_counts_them(bot, bot_data_dir):
    size = 6
    run = [str(OHBOT), "--data-dir", str(bot_data_dir)]
    subprocess.run(run + ["campaign", "create", "端到端测评", "--start", "2000-01-01", "--end", "2999-12-31",
                          "--form-size", str(size), "--threshold", "0.5"], check=True, capture_output=True)
    api = bot.api
    scores = [_take_quiz(api, 3101, size, pick_last=False), _take_quiz(api, 3102, size, pick_last=True)]
    out = subprocess.run(run + ["report", "--campaign", "端到端测评", "--json", "--by", "industry"],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    aware = sum(score / size >= 0.5 for score in scores)
    assert report["overall"]["n"] == 2 and report["overall"]["aware"] == aware
    assert report["groups"][0]["key"] == {"industry": "construction"}
    answered = sum(item["n"] for item in report["items"])
    assert answered == 2 * size
    assert "3101" not in out and "3102" not in out  # no Telegram id reaches a report
    api.send_text(ADMIN, "/stats")
    [stats] = api.wait_for(ADMIN, "端到端测评", timeout=REPLY_TIMEOUT)
    assert "知晓" in stats["text"]


def test_stops_on_sigterm_with_a_clean_log(bot):
    api = bot.api
    api.wait_until(lambda: not api.pending_updates(), timeout=10, what="all updates confirmed")
    assert stop_process(bot.proc) == 0, "the bot did not stop gracefully on SIGTERM"
    log = bot.log()
    assert "Traceback" not in log, log[-3000:]
    assert TOKEN not in log
    assert "Bad Gateway" in log  # the retries were logged, one line each
    assert not [c for c in api.calls() if c["status"] == 400], "the bot sent a request the API rejected"


def test_webhook_mode_checks_the_secret_token(bot_data_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/telegram/hook"
    with FakeBotAPI(token=TOKEN) as api:
        running = _start(api, bot_data_dir, tmp_path, "--webhook-url", url, "--port", str(port),
                         ready="setWebhook")
        try:
            [call] = api.calls("setWebhook")
            assert call["params"]["url"] == url
            secret = call["params"]["secret_token"]
            update = api.send_text(8008, "/help")  # registers the chat; delivered by POST below

            assert post_webhook(url, update, timeout=10) == 403  # no secret: refused
            assert post_webhook(url, update, {"X-Telegram-Bot-Api-Secret-Token": secret}, timeout=10) == 200
            assert "职业健康知识助手" in api.wait_for(8008, timeout=REPLY_TIMEOUT)[0]["text"]
        finally:
            code = stop_process(running.proc)
        assert code == 0
        log = running.log()
        assert "Traceback" not in log and TOKEN not in log
