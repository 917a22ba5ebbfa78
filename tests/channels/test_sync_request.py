"""Replies sent from a webhook worker's thread (bot/channels/sync_request.py through
`TelegramChannel.deliver_now`) against the fake Bot API: the same error rules as python-telegram-bot's
own sending — flood control waited out, network errors and 5xx retried, a rejected or refused message
not sent again — and one kept-alive connection per thread, replaced when the server closed it."""
from __future__ import annotations

import logging
import time

import pytest
from telegram import Bot

from bot.channels.sync_request import SyncRequest
from bot.channels.telegram import TelegramChannel
from bot.config import load_settings
from bot.dialogue.core import Reply
from bot.dialogue.types import Button
from tests.fakes.fake_bot_api import FakeBotAPI

TOKEN = "777:SYNC-test-token"
USER = 4101


@pytest.fixture
def api():
    with FakeBotAPI(token=TOKEN) as fake:
        fake.send_text(USER, "你好")  # the chat exists for the fake once the user wrote
        yield fake


@pytest.fixture
def channel(api, tmp_path):
    made = TelegramChannel(None, load_settings(tmp_path))
    rejected: list[int] = []
    made.api = SyncRequest(Bot(TOKEN, base_url=api.base_url).base_url, read_timeout=5.0, connect_timeout=5.0,
                           on_rejected=rejected.append)
    made.rejected_statuses = rejected  # type: ignore[attr-defined]
    return made


def _texts(api: FakeBotAPI) -> list[str]:
    return [m["text"] for m in api.messages(USER)]


def test_replies_are_sent_in_order_with_buttons_on_the_last_part(api, channel):
    long = "长" * 5000  # two parts at Telegram's 4096
    channel.deliver_now(USER, [Reply("第一条"), Reply(long, [[Button("劳动者", "role:worker")]])], None)
    sent = api.messages(USER)
    assert [m["text"] for m in sent] == ["第一条", "长" * 4096, "长" * 904]
    assert sent[0].get("reply_markup") is None and sent[1].get("reply_markup") is None
    assert sent[2]["reply_markup"] == {"inline_keyboard": [[{"text": "劳动者", "callback_data": "role:worker"}]]}


def test_flood_control_is_waited_out_and_5xx_and_dropped_connections_are_retried(api, channel):
    api.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    channel.deliver_now(USER, [Reply("一")], None)
    assert _texts(api) == ["一"]
    assert time.monotonic() - started >= 1.4  # Telegram's 1 s, plus half a second
    api.fail_next("sendMessage", status=502)
    api.drop_connection_next("sendMessage")
    channel.deliver_now(USER, [Reply("二")], None)
    assert _texts(api) == ["一", "二"]
    assert len(api.calls("sendMessage")) == 5  # 429, ok, 502, dropped, ok


def test_a_rejected_or_refused_message_is_not_sent_again_and_the_rest_is_dropped(api, channel):
    api.fail_next("sendMessage", status=400, description="Bad Request: message is too long")
    channel.deliver_now(USER, [Reply("一"), Reply("二")], None)
    assert _texts(api) == [] and len(api.calls("sendMessage")) == 1
    api.block_user(USER)
    channel.deliver_now(USER, [Reply("三")], None)
    assert len(api.calls("sendMessage")) == 2


def test_a_revoked_token_is_reported_and_not_retried(api, channel):
    api.fail_next("sendMessage", status=401, description="Unauthorized")
    channel.deliver_now(USER, [Reply("一")], None)
    assert channel.rejected_statuses == [401] and len(api.calls("sendMessage")) == 1


def test_a_pressed_button_is_answered_before_the_replies(api, channel):
    channel.deliver_now(USER, [Reply("你是？", [[Button("劳动者", "role:worker")]])], None)
    query = api.press_button(USER, None, "role:worker")["callback_query"]
    channel.deliver_now(USER, [Reply("好的")], query["id"])
    calls = [(c["method"], c["status"]) for c in api.calls() if c["method"] in ("answerCallbackQuery", "sendMessage")]
    assert calls == [("sendMessage", 200), ("answerCallbackQuery", 200), ("sendMessage", 200)]


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error(api, channel, caplog):
    channel.deliver_now(USER, [Reply("一")], None)
    api.close_connections()
    time.sleep(0.2)  # the server's close reaches this side
    with caplog.at_level(logging.INFO, logger="ohbot.telegram"):
        channel.deliver_now(USER, [Reply("二")], None)
    assert _texts(api) == ["一", "二"] and len(api.calls("sendMessage")) == 2
    assert caplog.records == []  # no failed attempt, no retry
