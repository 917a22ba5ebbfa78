"""The WeChat and WeCom channels in-process and fast: the real ASGI app (bot/web/app.py) under
uvicorn in a thread, the fake platform (tests/fakes/wechat_platform.py) on loopback, the real
dialogue core with canned answers instead of the index (the end-to-end tests against the real
`ohbot serve` process and index are in test_wechat_e2e.py)."""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn

from bot.channels import redact
from bot.channels.wechat import ACK, MENU, TEXT_LIMIT_BYTES, cap_parts, create_menu, split_utf8, utf8_len
from bot.config import load_settings
from bot.dialogue.core import MAX_QUESTION_CHARS, Dialogue
from bot.dialogue.types import Reply
from bot.storage.channels import TokenStore
from bot.storage.state import State
from bot.web.app import create_app
from tests.fakes.wechat_platform import SYSTEM_NOTICE, FakeWeChatPlatform, build_xml, signature
from tests.helpers import KNOWLEDGE, free_port, sql

LONG_ANSWER = "职业健康检查费用由用人单位承担。" * 700  # 11,200 characters, 33,600 bytes


class CannedDialogue(Dialogue):
    """The real dialogue core; questions get canned answers (no index in these tests)."""

    asked = 0

    def ask(self, user, text):
        self.asked += 1
        if len(text) > MAX_QUESTION_CHARS:
            return super().ask(user, text)  # the core's own "too long" reply, before any search
        if text.startswith("长"):
            return [Reply(LONG_ANSWER)]
        if text.startswith("崩"):
            raise RuntimeError("a bug")
        return [Reply(f"答：{text}\n来源：测试")]


def _env(fake: FakeWeChatPlatform, **extra: str) -> dict[str, str]:
    return {"WECHAT_APP_ID": fake.oa.app_id, "WECHAT_APP_SECRET": fake.oa.app_secret, "WECHAT_TOKEN": fake.oa.token,
            "WECHAT_AES_KEY": fake.oa.encoding_aes_key, "WECHAT_API_BASE_URL": fake.api_base_url,
            "WECOM_CORP_ID": fake.wecom.corp_id, "WECOM_AGENT_ID": str(fake.wecom.agent_id),
            "WECOM_SECRET": fake.wecom.secret, "WECOM_TOKEN": fake.wecom.token,
            "WECOM_AES_KEY": fake.wecom.encoding_aes_key, "WECOM_API_BASE_URL": fake.api_base_url,
            "OHBOT_QUIZ_SEED": "5", "OHBOT_TEST_SLOW_REPLY": "慢:4.5", **extra}


class App:
    """One instance of the app under uvicorn in a thread: what one `ohbot serve` process is."""

    def __init__(self, settings) -> None:
        self.dialogue = CannedDialogue(SimpleNamespace(docs={}, by_faq={}), State(settings.state_url, "salt"), settings)
        app = create_app(settings, self.dialogue)
        self.services = app.state.services
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the app did not start"
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def served(tmp_path):
    """(fake platform, app services, base URL): the app serving both channels against the fake."""
    with FakeWeChatPlatform() as fake:
        app = App(load_settings(str(tmp_path), str(KNOWLEDGE), env=_env(fake)))
        fake.oa_callback_url, fake.wecom_callback_url = f"{app.base}/wechat", f"{app.base}/wecom"
        try:
            yield fake, app.services, app.base
        finally:
            app.stop()


# --------------------------------------------------------------------------- pure helpers


def test_split_at_2048_bytes_prefers_line_and_sentence_ends():
    parts = split_utf8(LONG_ANSWER)
    assert all(utf8_len(p) <= TEXT_LIMIT_BYTES for p in parts) and "".join(parts) == LONG_ANSWER
    assert all(p.endswith("。") for p in parts)  # cut after sentences, never inside one
    lines = "\n".join(["第一行" * 100] * 10)
    assert all(utf8_len(p) <= 2048 for p in split_utf8(lines)) and "\n".join(split_utf8(lines)) == lines
    emoji = "😀" * 1000  # 4 bytes each
    assert "".join(split_utf8(emoji)) == emoji and max(map(utf8_len, split_utf8(emoji))) <= 2048
    capped = cap_parts(split_utf8(LONG_ANSWER), 6)
    assert len(capped) == 6 and capped[-1].endswith("后面部分未能发送）") and utf8_len(capped[-1]) <= 2048


def test_secret_filter_masks_known_secrets_and_url_parameters():
    redact.remember("s3cr3t-app-secret")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "GET %s failed",
                               ("http://h/cgi-bin/token?appid=wx1&secret=abc123&x=1",), None)
    try:
        raise ValueError("s3cr3t-app-secret in http://h/send?access_token=TOKEN123")
    except ValueError:
        record.exc_info = __import__("sys").exc_info()
    redact.SecretFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "abc123" not in text and "s3cr3t-app-secret" not in text and "TOKEN123" not in text
    assert "secret=<redacted>" in text and "access_token=<redacted>" in text


# --------------------------------------------------------------------------- callbacks


def test_url_checks_and_healthz(served):
    fake, found, base = served
    status, body, echostr = fake.verify_oa_url()
    assert (status, body) == (200, echostr)
    assert fake.verify_oa_url(token="not-the-token")[0] == 403
    status, body, plain = fake.verify_wecom_url()
    assert (status, body) == (200, plain)
    status, body = fake.request("GET", f"{base}/healthz")
    assert status == 503 and '"index":false' in body and '"database":true' in body  # no index in these tests


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_subscribe_greets_and_a_typed_number_sets_the_role(served, mode):
    fake, _, _ = served
    user = fake.oa_user(mode=mode)
    user.subscribe()
    [greeting] = user.wait_for()
    assert greeting["via"] == "passive" and "回复 1 劳动者 · 2 用人单位" in greeting["text"]
    user.send_text("２")
    assert "已设为“用人单位”" in user.wait_for()[0]["text"]
    user.send_text("體檢費誰出")  # Traditional script reaches the dialogue as typed
    assert user.wait_for()[0]["text"].startswith("答：體檢費誰出")
    assert fake.errors == []


def test_wecom_member_takes_a_practice_quiz_by_letters(served):
    fake, _, _ = served
    member = fake.wecom_user("wangwu")
    member.send_text("测验")
    [first] = member.wait_for("第 1/20 题")
    assert "练习" in first["text"]
    for k in range(1, 4):
        text = member.messages()[-1]["text"]
        typed = "对" if "“对”或“错”" in text else ("AC" if "所选字母" in text else "b")
        member.send_text(typed)
        [feedback] = member.wait_for("出处：")
        assert f"第 {k + 1}/20 题" in feedback["text"]
    assert fake.errors == []


def test_a_long_answer_is_split_passive_first_then_the_api(served):
    fake, _, _ = served
    user = fake.oa_user(mode="safe")
    user.send_text("长答案")
    messages = user.wait_for(count=6)
    assert [m["via"] for m in messages] == ["passive"] + ["custom"] * 5  # the quota after one message
    assert all(utf8_len(m["text"]) <= 2048 for m in messages)
    assert messages[-1]["text"].endswith("后面部分未能发送）")
    assert fake.errors == [] and fake.token_fetches("oa") == 1


def test_a_repeated_delivery_gets_one_answer(served):
    fake, _, _ = served
    user = fake.oa_user(mode="plain")
    sent = user.send_text("重复的问题", lose_responses=2)
    record = fake.wait_delivered(sent["key"])
    assert [d["outcome"] for d in record["deliveries"]] == ["lost", "lost", "reply"]
    # The same reply each time; CreateTime is the second it was rendered in, so it is left out.
    bodies = [re.sub(r"<CreateTime>\d+</CreateTime>", "", d["body"]) for d in record["deliveries"]]
    assert "答：重复的问题" in bodies[0] and bodies == [bodies[0]] * 3
    time.sleep(0.5)
    assert user.texts() == ["答：重复的问题\n来源：测试"]


def test_a_slow_answer_is_acknowledged_then_sent(served):
    fake, _, _ = served
    user = fake.oa_user(mode="safe")
    started = time.monotonic()
    sent = user.send_text("慢一点的问题")
    ack, answer = user.wait_for(count=2, timeout=15)
    assert ack["via"] == "passive" and ack["text"] == ACK and ack["at"] - started < 5.0
    assert answer["via"] == "custom" and answer["text"].startswith("答：慢一点的问题")
    assert len(fake.wait_delivered(sent["key"])["deliveries"]) == 1  # answered in time: no retry


def test_odd_callbacks_get_a_clear_response(served):
    fake, _, base = served
    url = f"{base}/wechat"
    ts, nonce = "1700000000", "123"
    good = {"signature": signature(fake.oa.token, ts, nonce), "timestamp": ts, "nonce": nonce}
    assert fake.request("POST", url, {**good, "signature": "0" * 40}, "<xml/>")[0] == 403
    assert fake.request("POST", url, {"timestamp": ts, "nonce": nonce}, "<xml/>")[0] == 403
    status, body = fake.request("POST", url, good, "<xml><MsgType>text</MsgType><oops></xml>")
    assert status == 400 and "bad request" in body
    assert fake.request("POST", url, good, "")[0] == 400
    assert fake.request("POST", url, good, b"\xff\xfe")[0] == 400
    assert fake.request("POST", url, good, b"<xml>" + b" " * 300_000 + b"</xml>")[0] == 413
    aes = {**good, "encrypt_type": "aes", "msg_signature": "0" * 40}
    assert fake.request("POST", url, aes, "<xml><Encrypt>abc</Encrypt></xml>")[0] == 403
    wecom = {"msg_signature": "0" * 40, "timestamp": ts, "nonce": nonce}
    assert fake.request("POST", f"{base}/wecom", wecom, "<xml><Encrypt>abc</Encrypt></xml>")[0] == 403
    user = fake.oa_user(mode="safe")
    assert fake.wait_delivered(user.send_event("TEMPLATESENDJOBFINISH")["key"])["outcome"] == "ack"
    assert fake.wait_delivered(user.unsubscribe()["key"])["outcome"] == "ack"
    user.send_voice()
    assert "文字" in user.wait_for()[0]["text"]
    user.send_location()
    assert "文字" in user.wait_for()[0]["text"]
    user.send_text("问" * 10_000)
    assert "太长" in user.wait_for()[0]["text"]
    user.send_text("崩溃吧")
    assert "出错" in user.wait_for()[0]["text"]
    assert user.messages()[-1]["via"] == "passive" and fake.errors == []


def test_menu_clicks_run_their_commands_and_forget_works_by_text(served):
    fake, found, _ = served
    user = fake.oa_user(mode="plain")
    user.click("OHBOT_ME")
    assert "我的资料" in user.wait_for()[0]["text"]
    user.click("OHBOT_OBLIGATIONS")
    assert "第1步" in user.wait_for()[0]["text"]
    user.send_text("1")
    assert "☑ 粉尘" in user.wait_for()[0]["text"]
    state = found.dialogue.state
    key = state.user_key("wechat", user.id)
    assert state.get_user(key).pending  # the self-check is under way, and its menu is stored
    user.send_text("刪除我的數據")
    assert "确定要删除" in user.wait_for()[0]["text"]
    user.send_text("1")
    assert "已删除" in user.wait_for()[0]["text"]
    assert state.get_user(key).pending == {} and found.wechat.menus.get(key) == []
    assert user.id not in str(sql(state, "SELECT * FROM channel_inbox"))  # no raw OpenID stored


def test_refused_token_is_refreshed_once_and_the_menu_is_created(served):
    fake, found, _ = served
    user = fake.oa_user(mode="plain")
    user.send_text("长")
    user.wait_for(count=6)
    fake.invalidate_tokens()  # e.g. the secret was reset: the stored token is refused (40001)
    user.send_text("长")
    user.wait_for(count=6)
    codes = [c["response"].get("errcode") for c in fake.api_calls("message/custom/send")]
    assert codes == [0] * 5 + [40001] + [0] * 5 and fake.token_fetches("oa") == 2
    create_menu(found.settings, TokenStore(found.dialogue.state))
    assert fake.menu == MENU and fake.token_fetches("oa") == 2  # the stored token was reused


def test_wecom_long_answer_and_api_sends(served):
    fake, _, _ = served
    member = fake.wecom_user("zhaoliu")
    member.send_text("长")
    messages = member.wait_for(count=6)
    assert [m["via"] for m in messages] == ["passive"] + ["app"] * 5
    assert not any(m["truncated"] for m in messages) and fake.token_fetches("wecom") == 1
    assert fake.inbound(member.id)[0]["outcome"] == "reply"


def test_system_notice_never_shown_for_normal_traffic(served):
    fake, _, _ = served
    users = [fake.oa_user(mode=m) for m in ("plain", "safe", "compatible")] + [fake.wecom_user()]
    for user in users:
        for text in ("你好", "帮助", "/privacy"):
            user.send_text(text)
    for user in users:
        user.wait_for(count=3)
    assert not any(SYSTEM_NOTICE in t for u in users for t in u.texts()) and fake.errors == []


# --------------------------------------------------------------------------- configuration and the CLI


def test_start_runs_the_web_service_when_a_wechat_app_is_configured(monkeypatch, tmp_path, capsys):
    from bot import cli

    for name in [n for n in os.environ if n.startswith(("WECHAT_", "WECOM_", "TELEGRAM_"))]:
        monkeypatch.delenv(name)
    served = []
    monkeypatch.setattr("bot.web.app.serve", lambda settings, host, port, **kw: served.append((host, port, settings)))
    monkeypatch.setenv("WECHAT_APP_ID", "wx0000000000000001")
    monkeypatch.setenv("WECHAT_APP_SECRET", "app-secret-value")
    monkeypatch.setenv("WECHAT_TOKEN", "callback-token")
    assert cli.main(["--data-dir", str(tmp_path), "start"]) == 0
    [(host, port, settings)] = served
    assert (host, port) == ("127.0.0.1", 8000) and settings.wechat_enabled and not settings.wecom_enabled
    assert "app-secret-value" not in repr(settings) and "callback-token" not in repr(settings)
    monkeypatch.setenv("WECOM_CORP_ID", "ww0000000000000001")  # a half-configured WeCom app: a clear error
    assert cli.main(["--data-dir", str(tmp_path), "start"]) == 2
    assert "WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN, WECOM_AES_KEY not set" in capsys.readouterr().err
    monkeypatch.delenv("WECOM_CORP_ID")
    monkeypatch.setenv("WECHAT_AES_KEY", "too-short")
    assert cli.main(["--data-dir", str(tmp_path), "start"]) == 2
    assert "43-character" in capsys.readouterr().err


def test_a_retry_reaching_another_process_gets_the_same_reply_and_one_token_serves_both(served):
    fake, first, base = served
    second = App(first.settings)  # a second process on the same database, behind the same load balancer
    try:
        user = fake.oa_user(mode="safe")
        record = {"key": "m", "user": user.id, "channel": "oa", "mode": "safe", "xml": build_xml([
            ("ToUserName", fake.oa.original_id), ("FromUserName", user.id), ("CreateTime", int(time.time())),
            ("MsgType", "text"), ("Content", "长的问题"), ("MsgId", 9876543210123)])}
        replies = []
        for target in (base, second.base):  # WeChat's first delivery, then its retry to the other process
            params, body = fake.signed_request(record)
            status, text = fake.request("POST", f"{target}/wechat", params, body)
            replies.append(fake.open_reply(user.id, text, "safe"))
        assert replies[0] == replies[1] and first.dialogue.asked == 1 and second.dialogue.asked == 0
        user.send_text("长")  # answered by the first process: its API messages fetch the one token
        user.wait_for(lambda m: m["via"] == "custom", count=5)
        fake.oa_callback_url = f"{second.base}/wechat"
        user.send_text("长")  # the second process uses the same stored token
        user.wait_for(lambda m: m["via"] == "custom", count=5)
        assert second.dialogue.asked == 1 and fake.token_fetches("oa") == 1
    finally:
        second.stop()
