"""The web chat's routes (bot/web/webchat.py) with Starlette's TestClient over the real app of
`ohbot serve` (bot/web/app.py) and the real dialogue core and database. Most tests give questions
canned answers (no index needed: fast); the last ones use the real index and model (slow)."""
from __future__ import annotations

import html
import re
import sqlite3
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot.answering.answer import Answer
from bot.config import load_settings
from bot.dialogue.core import MAX_QUESTION_CHARS, Dialogue
from bot.storage.state import State
from bot.storage.tables import feedback
from bot.web.app import create_app
from bot.web.webchat import COOKIE, CSRF_HEADER, sign_button, split_sources
from tests.helpers import KNOWLEDGE

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class CannedDialogue(Dialogue):
    """The real dialogue core; a question gets a canned, sourced answer kept like a real one (so 👍/👎 work)."""

    def ask(self, user, text):
        if len(text) > MAX_QUESTION_CHARS:
            return super().ask(user, text)  # the core's own "too long" reply, before any search
        reply = f"答：{text}\n\n来源：测试材料 › 第一节"
        answer_id = self.state.log_answer(user.key, text, reply, "answer", None, None, 0.9)
        self.state.remember(user.key, text, answer_id, None)
        result = Answer(question=text, text=reply, found=True, confidence=0.9, decision="answer")
        return [self.answer_reply(user, result, answer_id)]


def make_app(data_dir, database_url: str | None = None, **env: str):
    """One `ohbot serve` worker over the data directory's database, or `database_url`'s (a second
    call: a second worker)."""
    settings = load_settings(str(data_dir), str(KNOWLEDGE), env={"OHBOT_QUIZ_SEED": "7", **env},
                             database_url=database_url)
    dialogue = CannedDialogue(SimpleNamespace(docs={}, by_faq={}), State(settings.state_url, "salt"), settings)
    return create_app(settings, dialogue)


class Browser:
    """A TestClient with its own cookies, that has loaded the page (cookie + CSRF token)."""

    def __init__(self, app, ip: str = "203.0.113.5") -> None:
        self.client = TestClient(app, client=(ip, 50000))
        self.client.__enter__()
        self.page = self.client.get("/")
        assert self.page.status_code == 200
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', self.page.text).group(1)

    def send(self, **payload):
        return self.client.post("/chat/api", json=payload, headers={CSRF_HEADER: self.csrf})

    def ask(self, text: str) -> list[dict]:
        response = self.send(text=text)
        assert response.status_code == 200, response.text
        return response.json()["replies"]

    def press(self, replies: list[dict], label: str) -> list[dict]:
        response = self.send(button=button(replies, label))
        assert response.status_code == 200, response.text
        return response.json()["replies"]

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def button(replies: list[dict], label: str) -> str:
    """The token of the button labelled `label` (prefix) among the replies."""
    for reply in replies:
        for row in reply["buttons"]:
            for b in row:
                if b["label"].startswith(label):
                    return b["token"]
    raise AssertionError(f"no button {label!r} in {[b['label'] for r in replies for row in r['buttons'] for b in row]}")


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


@pytest.fixture
def browser(app):
    b = Browser(app)
    yield b
    b.close()


def db(tmp_path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "ohbot.db")


# --------------------------------------------------------------------------- page and identity


def test_page_sets_a_pseudonymous_cookie_and_security_headers(browser, tmp_path):
    page = browser.page
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is set (test below)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp and page.headers["x-frame-options"] == "SAMEORIGIN"
    assert 'src="/static/chat.js"' in page.text and "<script>" not in page.text  # no inline script
    for path in ("/static/chat.js", "/static/chat.css"):
        assert browser.client.get(path).status_code == 200  # served by the app itself: no CDN
    # the greeting offers the roles as real buttons; picking one is stored under the salted "web:<id>" key
    browser.press([{"buttons": [[{"label": "劳动者", "token": _greeting_token(page.text, "劳动者")}]]}], "劳动者")
    chat_id = browser.client.cookies[COOKIE]
    key = State(tmp_path / "ohbot.db", "salt").user_key("web", chat_id)
    rows = db(tmp_path).execute("select key, role from users").fetchall()
    assert rows == [(key, "worker")] and chat_id not in str(rows)
    again = browser.client.get("/")
    assert "欢迎回来（身份：劳动者）" in again.text


def _greeting_token(page: str, label: str) -> str:
    return html.unescape(re.search(rf'name="button" value="([^"]+)">{label}<', page).group(1))


def test_cookie_is_secure_over_https(app):
    with TestClient(app, base_url="https://chat.example.gov.cn") as client:
        assert "Secure" in client.get("/").headers["set-cookie"]


def test_embedding_sites_are_configurable(tmp_path):
    with TestClient(make_app(tmp_path, OHBOT_WEBCHAT_EMBED_ORIGINS="https://www.example.gov.cn")) as client:
        page = client.get("/")
    assert "frame-ancestors 'self' https://www.example.gov.cn" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers


# --------------------------------------------------------------------------- questions and buttons


def test_a_question_gets_its_answer_with_the_source_apart_and_feedback_buttons(browser):
    replies = browser.ask("噪聲超標怎麼辦")
    assert len(replies) == 1
    assert replies[0]["text"] == "答：噪聲超標怎麼辦" and replies[0]["sources"] == ["来源：测试材料 › 第一节"]
    labels = [b["label"] for row in replies[0]["buttons"] for b in row]
    assert labels == ["👍 有用", "👎 没用"]


def test_feedback_round_trip_is_stored_with_the_question_and_reason(browser, tmp_path):
    replies = browser.ask("体检费谁出")
    assert browser.press(replies, "👍")[0]["text"] == "谢谢你的反馈！"
    replies = browser.ask("噪声多大算超标")
    prompt = browser.press(replies, "👎")
    assert "原因" in prompt[0]["text"]
    assert browser.ask("没说限值是多少")[0]["text"].startswith("已记录")
    rows = db(tmp_path).execute("select vote, question, reason from feedback order by id").fetchall()
    assert rows == [("up", "体检费谁出", None), ("down", "噪声多大算超标", "没说限值是多少")]


def test_menu_commands_and_typed_words_reach_the_core(browser):
    assert "隐私说明" in browser.ask("/privacy")[0]["text"]
    assert "隐私说明" in browser.ask("隐私")[0]["text"]  # a plain word stands for the command, as on WeChat


def test_quiz_is_playable_with_buttons(browser, tmp_path):
    replies = browser.ask("/quiz")
    assert "练习测验" in replies[0]["text"] and replies[1]["text"].startswith("第 1/20 题")
    for n in range(1, 4):
        item = replies[-1]
        labels = [b["label"] for row in item["buttons"] for b in row]
        if "提交" in labels:  # multiple choice: tick A (the box comes back ticked), then submit
            ticked = browser.press([item], "☐A")
            assert [b["label"] for b in ticked[0]["buttons"][0]][0] == "☑A"
            replies = browser.press(ticked, "提交")
        else:
            replies = browser.press([item], labels[0])
        assert replies[0]["text"].startswith(("✅", "❌")) and "解析：" in replies[0]["text"]
        assert replies[0]["sources"] and replies[0]["sources"][0].startswith("出处：")
        assert replies[-1]["text"].startswith(f"第 {n + 1}/20 题")
    assert db(tmp_path).execute("select count(*) from responses").fetchone() == (3,)
    # pressing an already answered item's button again changes nothing
    again = browser.send(button=button([item], labels[0]))
    assert again.status_code == 200 and db(tmp_path).execute("select count(*) from responses").fetchone() == (3,)


def test_the_no_javascript_form_works_and_escapes(browser):
    page = browser.client.post("/chat", data={"csrf": browser.csrf, "text": f"问{SCRIPT}"})
    assert page.status_code == 200
    assert SCRIPT not in page.text and "<img" not in page.text and "&lt;script&gt;" in page.text
    texts = [html.unescape(t) for t in re.findall(r'<div class="text">(.*?)</div>', page.text, re.S)]
    assert texts == [f"问{SCRIPT}", f"答：问{SCRIPT}"]  # the user's message, then the answer: as text
    token = _greeting_token(page.text, "👍 有用")
    thanks = browser.client.post("/chat", data={"csrf": browser.csrf, "button": token})
    assert "谢谢你的反馈！" in thanks.text
    assert browser.client.post("/chat", data={"csrf": "wrong", "text": "x"}).status_code == 403


def test_html_and_script_in_a_question_come_back_as_text(browser):
    replies = browser.ask(SCRIPT + "怎么办")
    assert replies[0]["text"] == f"答：{SCRIPT}怎么办"  # a JSON string; the page inserts it with textContent
    script = browser.client.get("/static/chat.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script


def test_sources_are_split_from_the_text():
    text, sources, after = split_sources("结论。\n\n来源：《职业病防治法》第三十五条\n\n你可能还想问：")
    assert (text, sources, after) == ("结论。", ["来源：《职业病防治法》第三十五条"], "你可能还想问：")
    quiz = "❌ 回答错误。\n解析：……\n出处：GB 2626-2019"
    assert split_sources(quiz) == ("❌ 回答错误。\n解析：……", ["出处：GB 2626-2019"], "")
    assert split_sources("只有文字\n\n\n第二段") == ("只有文字\n\n第二段", [], "")


# --------------------------------------------------------------------------- refusals


def test_forged_and_cross_user_button_presses_are_refused(app, tmp_path):
    alice, mallory = Browser(app, "198.51.100.1"), Browser(app, "198.51.100.2")
    try:
        replies = alice.ask("体检费谁出")
        token = button(replies, "👍")
        # Mallory replays Alice's token: refused before the dialogue sees it, nothing stored
        stolen = mallory.send(button=token)
        assert stolen.status_code == 403 and stolen.json()["code"] == "bad_button"
        # raw callback data, or data with a MAC made for another user, is refused too
        answer_id = db(tmp_path).execute("select id from answers").fetchone()[0]
        for forged in (f"fb:down:{answer_id}", sign_button(b"guessed key", "x", f"fb:down:{answer_id}"),
                       token.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA", "", "a.b.c", "%%%.%%%"):
            refused = mallory.send(button=forged)
            assert refused.status_code == 403 and "按钮无效" in refused.json()["error"], forged
        assert db(tmp_path).execute("select count(*) from feedback").fetchone() == (0,)
        # Alice's own press works
        assert alice.press(replies, "👍")[0]["text"] == "谢谢你的反馈！"
    finally:
        alice.close()
        mallory.close()


def test_requests_without_cookie_csrf_token_or_from_another_origin_are_refused(app, browser):
    url = "/chat/api"
    assert browser.client.post(url, json={"text": "x"}).json()["code"] == "csrf"  # no token
    assert browser.client.post(url, json={"text": "x"}, headers={CSRF_HEADER: "forged"}).status_code == 403
    other = browser.client.post(url, json={"text": "x"},
                                headers={CSRF_HEADER: browser.csrf, "Origin": "https://evil.example"})
    assert other.status_code == 403 and other.json()["code"] == "csrf"
    same = browser.client.post(url, json={"text": "x"}, headers={CSRF_HEADER: browser.csrf, "Origin": "http://testserver"})
    assert same.status_code == 200
    form_encoded = browser.client.post(url, data={"text": "x"}, headers={CSRF_HEADER: browser.csrf})
    assert form_encoded.status_code == 403  # a cross-site form cannot send JSON with the header
    with TestClient(app) as stranger:  # no cookie at all
        refused = stranger.post(url, json={"text": "x"}, headers={CSRF_HEADER: browser.csrf})
        assert refused.status_code == 403 and refused.json()["code"] == "no_session"
    # another browser's token does not fit this browser's cookie
    other_browser = Browser(app, "198.51.100.9")
    try:
        assert browser.client.post(url, json={"text": "x"}, headers={CSRF_HEADER: other_browser.csrf}).status_code == 403
    finally:
        other_browser.close()


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"text": 5}', b'{"text": "a", "button": "b"}', b"{}",
                                  b'{"text": "   "}'])
def test_malformed_bodies_get_a_clear_400(browser, body):
    response = browser.client.post("/chat/api", content=body,
                                   headers={CSRF_HEADER: browser.csrf, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_a_huge_body_is_refused_unread(browser):
    response = browser.send(text="问" * 20000)
    assert response.status_code == 413 and "不超过 500 字" in response.json()["error"]
    long = browser.ask("问" * 600)  # within the body limit: the core's own polite reply
    assert "问题太长了" in long[0]["text"]


def test_rate_limit_per_ip_is_shared_by_workers_and_says_when_to_retry(tmp_path):
    first, second = make_app(tmp_path, OHBOT_WEBCHAT_RATE_LIMIT="3"), make_app(tmp_path, OHBOT_WEBCHAT_RATE_LIMIT="3")
    one, two, elsewhere = Browser(first, "192.0.2.7"), Browser(second, "192.0.2.7"), Browser(second, "192.0.2.8")
    try:
        assert one.send(text="一").status_code == 200 and two.send(text="二").status_code == 200
        assert one.send(text="三").status_code == 200
        limited = two.send(text="四")  # the fourth from this IP, whichever worker takes it
        assert limited.status_code == 429
        assert "太快" in limited.json()["error"] and 1 <= int(limited.headers["retry-after"]) <= 60
        assert elsewhere.send(text="五").status_code == 200  # another IP has its own budget
        page = two.client.post("/chat", data={"csrf": two.csrf, "text": "六"})
        assert page.status_code == 429 and "太快" in page.text
    finally:
        for b in (one, two, elsewhere):
            b.close()


def test_workers_share_everything_a_conversation_needs(tmp_path):
    """A token shown by one worker is pressed at another; the quiz goes on there."""
    first, second = make_app(tmp_path), make_app(tmp_path)
    browser = Browser(first)
    try:
        replies = browser.ask("/quiz")
        with TestClient(second, client=("203.0.113.5", 50000), cookies=dict(browser.client.cookies)) as other:
            item = replies[-1]
            labels = [b["label"] for row in item["buttons"] for b in row]
            press = labels[0] if "提交" not in labels else "提交"
            if press == "提交":
                other.post("/chat/api", json={"button": button([item], "☐A")}, headers={CSRF_HEADER: browser.csrf})
            moved = other.post("/chat/api", json={"button": button([item], press)}, headers={CSRF_HEADER: browser.csrf})
            assert moved.status_code == 200 and moved.json()["replies"][-1]["text"].startswith("第 2/20 题")
    finally:
        browser.close()


def test_two_workers_on_one_database_share_buttons_feedback_and_the_budget(state_url, tmp_path):
    """On SQLite and on PostgreSQL: what one worker showed, the other takes; one IP budget for both."""
    first = make_app(tmp_path / "a", state_url, OHBOT_WEBCHAT_RATE_LIMIT="5")
    second = make_app(tmp_path / "b", state_url, OHBOT_WEBCHAT_RATE_LIMIT="5")
    alice = Browser(first, "192.0.2.20")
    try:
        replies = alice.ask("噪声多大算超标")  # 1
        with TestClient(second, client=("192.0.2.20", 50001), cookies=dict(alice.client.cookies)) as other:
            headers = {CSRF_HEADER: alice.csrf}
            voted = other.post("/chat/api", json={"button": button(replies, "👎")}, headers=headers)  # 2
            assert voted.status_code == 200 and "原因" in voted.json()["replies"][0]["text"]
            reason = other.post("/chat/api", json={"text": "没有限值"}, headers=headers)  # 3
            assert reason.json()["replies"][0]["text"].startswith("已记录")
            assert alice.send(text="再问一次").status_code == 200  # 4, at the first worker
            assert other.post("/chat/api", json={"text": "五"}, headers=headers).status_code == 200  # 5
            assert other.post("/chat/api", json={"text": "六"}, headers=headers).status_code == 429
            assert alice.send(text="七").status_code == 429
        state = second.state.services.dialogue.state
        with state.read() as conn:
            rows = conn.execute(select(feedback.c.vote, feedback.c.question, feedback.c.reason)).all()
        assert [tuple(r) for r in rows] == [("down", "噪声多大算超标", "没有限值")]
    finally:
        alice.close()


def test_a_failing_dialogue_gets_an_apology_not_a_traceback(tmp_path, caplog):
    app = make_app(tmp_path)
    b = Browser(app)
    app.state.services.dialogue.ask = lambda user, text: 1 / 0
    try:
        response = b.send(text="崩")
        assert response.status_code == 500 and response.json()["error"].startswith("抱歉")
        assert "Traceback" not in response.text and "ZeroDivision" not in response.text
        assert any("the dialogue failed" in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        b.close()


# --------------------------------------------------------------------------- the real index (slow)


@pytest.fixture
def real_app(retriever, tmp_path):
    settings = load_settings(str(tmp_path), str(KNOWLEDGE), env={})
    return create_app(settings, Dialogue(retriever, State(settings.state_url, "salt"), settings))


def test_a_traditional_question_gets_a_sourced_answer_and_more_round_trips(real_app, tmp_path):
    browser = Browser(real_app)
    try:
        replies = browser.ask("噪聲超標怎麼辦？")
        answer = replies[0]
        assert "超标" in answer["text"] or "噪声" in answer["text"]
        assert answer["sources"] and answer["sources"][0].startswith("来源：")
        assert "来源：" not in answer["text"]
        labels = [b["label"] for row in answer["buttons"] for b in row]
        assert "👍 有用" in labels and "👎 没用" in labels
        if "更多" in labels:
            whole = browser.press(replies, "更多")  # the whole section, with its heading and source
            assert whole[0]["text"].startswith("【") and whole[0]["sources"][0].startswith("来源：")
        related = [label for label in labels if label not in ("更多", "👍 有用", "👎 没用")]
        if related:  # a related question as a button: asked on the user's behalf
            assert browser.press(replies, related[0])[0]["sources"]
        assert browser.press(replies, "👎")[0]["text"].startswith("谢谢反馈")
        stored = db(tmp_path).execute("select vote, question from feedback").fetchall()
        assert stored == [("down", "噪聲超標怎麼辦？")]
    finally:
        browser.close()
