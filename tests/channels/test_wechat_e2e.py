"""End to end: the real `ohbot serve` process with the real index, serving /wechat, /wecom and
/telegram at once, against the fake WeChat platform (tests/fakes/wechat_platform.py) and the fake
Telegram Bot API on loopback.

The process is started once for the module (loading the model takes seconds) and once more after
the SIGKILL in the quiz test; each test uses its own users. The last test stops it with SIGTERM
and reads its whole log: no traceback, no secret, no access token.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.channels.wechat import ACK, MENU
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.fakes.wechat_platform import SYSTEM_NOTICE, FakeUser, FakeWeChatPlatform, signature
from tests.helpers import REPO_ROOT, free_port, private_data_dir, stop_process

OHBOT = Path(sys.executable).parent / "ohbot"
TELEGRAM_TOKEN = "555666777:AAE-ohbotServeTest_q1W2e3R4t5Y6u7I8o9"
START_TIMEOUT = 120.0
REPLY = 30.0
SLOW_MARKER, SLOW_SECONDS = "慢慢", 6.0
CAMPAIGN, FORM_SIZE = "微信端到端测评", 6


@dataclass
class Served:
    """The running `ohbot serve` and what it talks to."""
    platform: FakeWeChatPlatform
    telegram: FakeBotAPI
    data: Path
    logs: Path
    port: int
    env: dict
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return "".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(self.logs.glob("*.txt")))

    def ohbot(self, *args: str) -> subprocess.CompletedProcess:
        """Another `ohbot` command on the same data directory (a bureau's terminal)."""
        return subprocess.run([str(OHBOT), "--data-dir", str(self.data), *args], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _start(served: Served) -> None:
    """Start `ohbot serve` (its output appended to a new log file) and wait for /healthz."""
    n = len(list(served.logs.glob("*.txt")))
    out = open(served.logs / f"serve-{n}.txt", "wb")  # noqa: SIM115 - the process writes it
    served.proc = subprocess.Popen(
        [str(OHBOT), "--data-dir", str(served.data), "serve", "--host", "127.0.0.1", "--port", str(served.port)],
        cwd=REPO_ROOT, env=served.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if _get(f"{served.base}/healthz")[0] == 200:
                return
        except OSError:
            pass
        if served.proc.poll() is not None or time.monotonic() > deadline:
            stop_process(served.proc)
            pytest.fail(f"ohbot serve did not become healthy (exit {served.proc.poll()}):\n{served.log()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(built_index, data_dir, tmp_path_factory):
    data = private_data_dir(built_index[0], data_dir, tmp_path_factory.mktemp("serve-data"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeWeChatPlatform(oa_callback_url=f"{base}/wechat", wecom_callback_url=f"{base}/wecom") as platform, \
            FakeBotAPI(token=TELEGRAM_TOKEN) as telegram:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
        env.update(
            WECHAT_APP_ID=platform.oa.app_id, WECHAT_APP_SECRET=platform.oa.app_secret, WECHAT_TOKEN=platform.oa.token,
            WECHAT_AES_KEY=platform.oa.encoding_aes_key, WECHAT_API_BASE_URL=platform.api_base_url,
            WECOM_CORP_ID=platform.wecom.corp_id, WECOM_AGENT_ID=str(platform.wecom.agent_id),
            WECOM_SECRET=platform.wecom.secret, WECOM_TOKEN=platform.wecom.token,
            WECOM_AES_KEY=platform.wecom.encoding_aes_key, WECOM_API_BASE_URL=platform.api_base_url,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
            TELEGRAM_WEBHOOK_URL=f"{base}/telegram", OHBOT_QUIZ_SEED="13",
            OHBOT_TEST_SLOW_REPLY=f"{SLOW_MARKER}:{SLOW_SECONDS}", PYTHONUNBUFFERED="1",
        )
        running = Served(platform, telegram, data, tmp_path_factory.mktemp("serve-logs"), port, env)
        _start(running)
        try:
            yield running
        finally:
            stop_process(running.proc)


def _next(user: FakeUser, expected: str | None = None) -> str:
    """The text of the user's next message other than the acknowledgement of a slow answer (on a
    loaded machine any answer may take longer than the passive window)."""
    return user.wait_for(lambda m: m["text"] != ACK and (expected is None or expected in m["text"]),
                         timeout=REPLY)[0]["text"]


def _number(text: str, label: str) -> str:
    """The number a rendered menu gives `label`."""
    match = re.search(rf"(\d+) {re.escape(label)}(?: ·|\n|$)", text)
    assert match, f"{label!r} is not offered in:\n{text}"
    return match.group(1)


# --------------------------------------------------------------------------- tests


def test_one_service_answers_health_and_url_checks(served):
    status, body = _get(f"{served.base}/healthz")
    assert status == 200 and json.loads(body) == {"index": True, "database": True,
                                                  "channels": ["wechat", "wecom", "telegram"]}
    status, text, echostr = served.platform.verify_oa_url()
    assert (status, text) == (200, echostr)
    status, text, plain = served.platform.verify_wecom_url()
    assert (status, text) == (200, plain)


def test_three_users_at_once_plaintext_safe_and_wecom(served):
    platform = served.platform
    alice, bob, carol = platform.oa_user(mode="plain"), platform.oa_user(mode="safe"), platform.wecom_user()
    for user in (alice, bob, carol):
        user.subscribe()
    for user in (alice, bob, carol):
        assert "回复 1 劳动者 · 2 用人单位" in _next(user)
    alice.send_text("1")
    bob.send_text("用人单位")
    carol.send_text("1")
    assert "劳动者" in _next(alice) and "用人单位" in _next(bob) and "劳动者" in _next(carol)
    alice.send_text("體檢費要我自己出嗎？")  # Traditional script
    bob.send_text("单位要不要申报职业病危害项目？")
    carol.send_text("做电焊眼睛疼是不是职业病？")
    [a] = alice.wait_for("来源", timeout=REPLY)
    [b] = bob.wait_for("来源", timeout=REPLY)
    [c] = carol.wait_for("来源", timeout=REPLY)
    assert "职业健康检查" in a["text"] and "申报" in b["text"] and "电焊" in c["text"]
    assert "/obligations" in b["text"] and "/obligations" not in a["text"]  # phrased for the employer
    # passive within 4 s, else acknowledged and sent through the API (a loaded test machine)
    assert {a["via"], b["via"]} <= {"passive", "custom"} and c["via"] in ("passive", "app")
    texts = {u.id: set(u.texts()) for u in (alice, bob, carol)}
    assert a["text"] not in texts[bob.id] | texts[carol.id] and b["text"] not in texts[alice.id] | texts[carol.id]
    assert c["text"] not in texts[alice.id] | texts[bob.id]
    answers = [[t for t in u.texts() if t != ACK] for u in (alice, bob, carol)]
    assert [len(a) for a in answers] == [3, 3, 3]  # greeting, role, answer: nothing doubled or lost
    assert platform.errors == []


def _answer(text: str) -> str:
    """What a respondent types for the item at the end of `text`."""
    if "“对”或“错”" in text:
        return "对"
    if "所选字母" in text:
        return "AB"
    return "A"


def test_a_counted_quiz_by_letters_survives_sigkill(served):
    created = served.ohbot("campaign", "create", CAMPAIGN, "--start", "2000-01-01", "--end", "2999-12-31",
                           "--form-size", str(FORM_SIZE), "--threshold", "0.5")
    assert created.returncode == 0, created.stderr
    dan: FakeUser = served.platform.oa_user(mode="safe")
    dan.send_text("测验")
    dan.send_text(_number(_next(dan, "测评"), "同意并开始"))
    text = _next(dan)
    while "题（" not in text:  # the profile: industry, size, role, then four that can be skipped
        if "跳过" in text:
            typed = "跳过"
        elif "行业" in text:
            typed = _number(text, "建筑施工")
        else:
            typed = "1"
        dan.send_text(typed)
        text = _next(dan)
    assert f"第 1/{FORM_SIZE} 题" in text
    right = 0
    for k in range(1, FORM_SIZE + 1):
        dan.send_text(_answer(text))
        text = _next(dan, "出处：")
        right += text.startswith("✅")
        if k < FORM_SIZE:
            assert f"第 {k + 1}/{FORM_SIZE} 题" in text
        if k == 3:  # killed between two answers, then started again: the next letter still counts
            served.proc.kill()
            served.proc.wait(10)
            _start(served)
    assert "测验完成" in text and f"答对 {right}/{FORM_SIZE} 题" in text
    report = json.loads(served.ohbot("report", "--campaign", CAMPAIGN, "--json").stdout)
    assert report["overall"]["n"] == 1 and sum(item["n"] for item in report["items"]) == FORM_SIZE
    assert report["overall"]["aware"] == int(right / FORM_SIZE >= 0.5)
    assert dan.id not in json.dumps(report)


def test_the_same_message_delivered_three_times_is_answered_once(served):
    eve = served.platform.oa_user(mode="plain")
    sent = eve.send_text("噪声超标怎么办？", lose_responses=2)
    record = served.platform.wait_delivered(sent["key"], timeout=REPLY)
    assert [d["outcome"] for d in record["deliveries"]] == ["lost", "lost", "reply"]
    _next(eve, "来源")
    time.sleep(1.0)
    [answer] = [m for m in eve.messages() if m["text"] != ACK]  # one answer, however many deliveries
    acknowledged = len(eve.messages()) - 1  # 1 if the answer took longer than the passive window
    sent = [c for c in served.platform.api_calls("message/custom/send") if c["json"]["touser"] == eve.id]
    assert "来源" in answer["text"] and acknowledged in (0, 1) and len(sent) == acknowledged
    assert served.log().count("repeated delivery of a message already taken: its reply given again") >= 2


def test_a_slow_answer_is_acknowledged_in_time_and_sent_by_the_api(served):
    frank = served.platform.oa_user(mode="safe")
    sent = frank.send_text(f"{SLOW_MARKER}地问：噪声会导致耳聋吗？")
    ack, answer = frank.wait_for(count=2, timeout=REPLY)
    assert ack["via"] == "passive" and ack["text"] == ACK and ack["at"] - sent["sent_at"] < 5.0
    assert answer["via"] == "custom" and answer["at"] - sent["sent_at"] >= SLOW_SECONDS
    assert len(served.platform.wait_delivered(sent["key"])["deliveries"]) == 1  # no retry was needed


def test_odd_callbacks_get_clear_responses(served):
    platform, url = served.platform, f"{served.base}/wechat"
    ts, nonce = str(int(time.time())), "4242"
    signed = {"signature": signature(platform.oa.token, ts, nonce), "timestamp": ts, "nonce": nonce}
    assert platform.request("POST", url, {**signed, "signature": "f" * 40}, "<xml></xml>")[0] == 403
    assert platform.request("POST", url, signed, "<xml><MsgType>text<MsgType></xml>")[0] == 400
    grace = platform.oa_user(mode="compatible")
    assert platform.wait_delivered(grace.send_event("SOME_FUTURE_EVENT")["key"])["outcome"] == "ack"
    grace.send_voice()
    assert "文字" in _next(grace)
    grace.send_text("问" * 10_000)
    assert "太长" in _next(grace)
    member = platform.wecom_user()
    member.send_image()
    assert "文字" in _next(member)
    assert not any(SYSTEM_NOTICE in t for u in (grace, member) for t in u.texts())


def test_menu_command_and_telegram_webhook_in_the_same_service(served):
    done = served.ohbot("wechat", "menu")
    assert done.returncode == 0, done.stderr
    assert "已创建" in done.stdout and served.platform.menu == MENU
    hank = served.platform.oa_user(mode="safe")
    hank.click("OHBOT_QUIZ")
    assert "测评" in _next(hank)  # the open campaign's consent question

    telegram = served.telegram
    webhooks = telegram.calls("setWebhook")  # one per start: the quiz test restarted the process
    assert len(webhooks) == 2 and {w["params"]["url"] for w in webhooks} == {f"{served.base}/telegram"}
    assert len({w["params"]["secret_token"] for w in webhooks}) == 1  # every process checks the same secret
    webhook = webhooks[-1]
    update = telegram.send_text(8080, "/help")

    def post(headers: dict) -> int:
        request = urllib.request.Request(f"{served.base}/telegram", data=json.dumps(update).encode(),
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post({}) == 403
    assert post({"X-Telegram-Bot-Api-Secret-Token": webhook["params"]["secret_token"]}) == 200
    assert "职业健康知识助手" in telegram.wait_for(8080, timeout=REPLY)[0]["text"]


def test_stops_on_sigterm_and_the_log_holds_no_secret(served):
    assert stop_process(served.proc) == 0, "ohbot serve did not stop gracefully on SIGTERM"
    log = served.log()
    assert "Traceback" not in log, log[-3000:]
    platform = served.platform
    issued = [c["response"]["access_token"] for c in platform.api_calls() if "access_token" in (c["response"] or {})]
    assert issued, "no access token was fetched"
    secrets = [platform.oa.app_secret, platform.oa.token, platform.oa.encoding_aes_key, platform.wecom.secret,
               platform.wecom.token, platform.wecom.encoding_aes_key, TELEGRAM_TOKEN, *issued]
    leaked = [s[:6] + "…" for s in secrets if s in log]
    assert not leaked, f"secrets in the log: {leaked}"
    assert platform.token_fetches("oa") == 1 and platform.token_fetches("wecom") <= 1  # one owner, across a restart
