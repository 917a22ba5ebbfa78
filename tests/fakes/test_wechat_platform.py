"""The fake WeChat platform (tests/fakes/wechat_platform.py) itself: its crypto pinned to published
test vectors and cross-checked with wechatpy, its deliveries (retries, lost responses, bad replies)
against a small stub bot built on wechatpy, and its APIs (tokens, quotas, limits, the menu).

Fast: no model, no index, no bot process.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto as OACrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

from tests.fakes.wechat_platform import (
    SYSTEM_NOTICE,
    CryptoError,
    FakeWeChatPlatform,
    build_xml,
    decode_aes_key,
    decrypt,
    encrypt,
    parse_xml,
    signature,
)

# --------------------------------------------------------------------------- published test vectors

# Tencent's own example, WeCom developer documentation "加解密方案说明 › 举例说明"
# (https://developer.work.weixin.qq.com/document/path/91144); the Official Account's sample code
# (WXBizMsgCrypt Sample) uses the same token, key and id, named AppID there.
TENCENT_TOKEN = "QDG6eK"
TENCENT_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TENCENT_ID = "wx5823bf96d3bd56c7"
TENCENT_SIGNATURE, TENCENT_TIMESTAMP, TENCENT_NONCE = "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149"
TENCENT_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sY"
    "YvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJY"
    "uR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUc"
    "allcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDY"
    "A5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
# The URL-verification example of the same sample code (sVerifyMsgSig, sVerifyEchoStr …).
TENCENT_VERIFY = ("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
                  "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")

# wechatpy's own test vectors, copied from wechatpy/tests/test_crypto.py and tests/test_utils.py
# (github.com/wechatpy/wechatpy, MIT licence).
WP_TOKEN, WP_KEY, WP_CORP = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
WP_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WP_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtOb"
    "vesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8"
    "NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O"
    "5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
WP_REPLY_SIGNATURE, WP_REPLY_TIMESTAMP, WP_REPLY_NONCE = "407518b7649e86ef23978113f92d27afa9296533", "1411525903", "461056294"
WP_MESSAGE_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymz"
    "xh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIi"
    "OAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvc"
    "cTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
WP_MESSAGE_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
WP_ECHO = ("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425",
           "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==")


def test_tencent_official_vector_decrypts_and_verifies():
    assert signature(TENCENT_TOKEN, TENCENT_TIMESTAMP, TENCENT_NONCE, TENCENT_ENCRYPT) == TENCENT_SIGNATURE
    message, receive_id = decrypt(decode_aes_key(TENCENT_KEY), TENCENT_ENCRYPT)
    assert receive_id == TENCENT_ID
    fields = parse_xml(message)
    assert fields["Content"] == "hello" and fields["FromUserName"] == "mycreate"
    assert fields["MsgId"] == "4561255354251345929" and fields["AgentID"] == "218"
    sig, timestamp, nonce, echostr = TENCENT_VERIFY
    assert signature(TENCENT_TOKEN, timestamp, nonce, echostr) == sig
    assert decrypt(decode_aes_key(TENCENT_KEY), echostr) == ("1616140317555161061", TENCENT_ID)


def test_wechatpy_vectors_encrypt_to_the_same_ciphertext():
    key = decode_aes_key(WP_KEY)
    assert encrypt(key, WP_REPLY, WP_CORP, b"1234567890123456") == WP_REPLY_ENCRYPT  # byte for byte
    assert signature(WP_TOKEN, WP_REPLY_TIMESTAMP, WP_REPLY_NONCE, WP_REPLY_ENCRYPT) == WP_REPLY_SIGNATURE
    message, corp = decrypt(key, WP_MESSAGE_ENCRYPT)
    assert corp == WP_CORP and parse_xml(message)["Content"] == "test"
    assert signature(WP_TOKEN, "1411525903", "461056294", WP_MESSAGE_ENCRYPT) == WP_MESSAGE_SIGNATURE
    sig, timestamp, nonce, echostr = WP_ECHO
    assert signature(WP_TOKEN, timestamp, nonce, echostr) == sig
    assert signature(WP_TOKEN, timestamp, "437374424", echostr) != sig  # wechatpy's "should fail" case
    assert decrypt(key, echostr)[1] == WP_CORP
    # plain URL check (tests/test_utils.py): token "test"
    assert signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"


def test_decrypt_rejects_tampered_or_garbage_ciphertext():
    key = decode_aes_key(TENCENT_KEY)
    with pytest.raises(CryptoError):
        decrypt(key, "not base64 !!")
    with pytest.raises(CryptoError):
        decrypt(key, TENCENT_ENCRYPT[:-8] + "AAAAAAA=")  # last block changed: padding breaks
    with pytest.raises(ValueError):
        decode_aes_key("short")


def test_fake_and_wechatpy_interoperate_both_ways():
    key = decode_aes_key(WP_KEY)
    ours = encrypt(key, "<xml><Content><![CDATA[双向]]></Content></xml>", "wxAPP", b"abcdefghijklmnop")
    sig = signature(WP_TOKEN, "1700000000", "99", ours)
    theirs = OACrypto(WP_TOKEN, WP_KEY, "wxAPP")
    body = build_xml([("ToUserName", "gh_x"), ("Encrypt", ours)])
    assert "双向" in theirs.decrypt_message(body, sig, "1700000000", "99")
    reply = xmltodict.parse(theirs.encrypt_message("<xml><Content>回</Content></xml>", "42", "1700000001"))["xml"]
    assert signature(WP_TOKEN, reply["TimeStamp"], reply["Nonce"], reply["Encrypt"]) == reply["MsgSignature"]
    assert decrypt(key, reply["Encrypt"]) == ("<xml><Content>回</Content></xml>", "wxAPP")
    assert build_xml([("Content", "a]]>b"), ("N", 5)]) == "<xml><Content><![CDATA[a]]]]><![CDATA[>b]]></Content><N>5</N></xml>"
    assert parse_xml(build_xml([("Content", "a]]>b")]))["Content"] == "a]]>b"


# --------------------------------------------------------------------------- a stub bot on wechatpy


@dataclass
class StubBot:
    """A minimal callback server written with wechatpy (as the real bot is): it checks signatures,
    decrypts, and answers each text message with `reply(text)`, after `delay` seconds."""

    platform: FakeWeChatPlatform
    reply: Callable[[str], str | None] = lambda text: f"你说：{text}"
    delay: float = 0.0
    raw: Callable[[dict], tuple[int, str] | None] | None = None  # full control over the response
    seen: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Start serving on a free loopback port."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                status, body = stub.on_get(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))
                self._send(status, body)

            def do_POST(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                status, text = stub.on_post(self.path.split("?")[0], query, body)
                try:
                    self._send(status, text)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the platform gave up waiting

            def _send(self, status: int, text: str) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        self.platform.oa_callback_url = f"http://127.0.0.1:{port}/wechat"
        self.platform.wecom_callback_url = f"http://127.0.0.1:{port}/wecom"
        oa, wc = self.platform.oa, self.platform.wecom
        self.oa_crypto = OACrypto(oa.token, oa.encoding_aes_key, oa.app_id)
        self.work_crypto = WorkCrypto(wc.token, wc.encoding_aes_key, wc.corp_id)

    def on_get(self, q: dict) -> tuple[int, str]:
        """URL verification, both apps."""
        if "msg_signature" in q:
            try:
                return 200, self.work_crypto.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
            except InvalidSignatureException:
                return 403, ""
        try:
            check_signature(self.platform.oa.token, q["signature"], q["timestamp"], q["nonce"])
        except InvalidSignatureException:
            return 403, ""
        return 200, q["echostr"]

    def on_post(self, path: str, q: dict, body: str) -> tuple[int, str]:
        """A callback: verify, decrypt, record, reply."""
        wecom = path == "/wecom"
        try:
            if wecom:
                plain = self.work_crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
            else:
                check_signature(self.platform.oa.token, q["signature"], q["timestamp"], q["nonce"])
                aes = q.get("encrypt_type") == "aes"
                plain = (self.oa_crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
                         if aes else body)
        except InvalidSignatureException:
            return 403, ""
        message = xmltodict.parse(plain)["xml"]
        self.seen.append({"query": q, "body": body, "message": message})
        if self.raw is not None:
            custom = self.raw(message)
            if custom is not None:
                return custom
        time.sleep(self.delay)
        text = self.reply(message.get("Content", "")) if message["MsgType"] == "text" else None
        if text is None:
            return 200, "success"
        reply = build_xml([("ToUserName", message["FromUserName"]), ("FromUserName", message["ToUserName"]),
                           ("CreateTime", int(time.time())), ("MsgType", "text"), ("Content", text)])
        if wecom:
            return 200, self.work_crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
        if q.get("encrypt_type") == "aes":
            return 200, self.oa_crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
        return 200, reply

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform():
    with FakeWeChatPlatform(callback_timeout=1.0) as fake:
        yield fake


@pytest.fixture
def stub(platform):
    bot = StubBot(platform)
    yield bot
    bot.close()


# --------------------------------------------------------------------------- callbacks


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_official_account_modes_round_trip(platform, stub, mode):
    user = platform.oa_user(mode=mode)
    sent = user.send_text("體檢費誰出？")
    [reply] = user.wait_for()
    assert reply == {**reply, "via": "passive", "text": "你说：體檢費誰出？", "reply_to": sent["key"]}
    [seen] = stub.seen
    assert seen["message"]["FromUserName"] == user.id and seen["query"]["openid"] == user.id
    assert ("encrypt_type" in seen["query"]) == (mode != "plain")
    assert ("<Content>" in seen["body"]) == (mode != "safe")  # compatible mode sends both
    assert ("<Encrypt>" in seen["body"]) == (mode != "plain")
    assert platform.wait_delivered(sent["key"])["outcome"] == "reply"
    assert platform.errors == []


def test_wecom_round_trip_and_url_verification(platform, stub):
    member = platform.wecom_user("zhangsan")
    member.send_text("噪声")
    [reply] = member.wait_for()
    assert reply["text"] == "你说：噪声"
    assert stub.seen[0]["message"]["AgentID"] == str(platform.wecom.agent_id)
    status, body, plain = platform.verify_wecom_url()
    assert (status, body) == (200, plain)
    status, body, echostr = platform.verify_oa_url()
    assert (status, body) == (200, echostr)
    assert platform.verify_oa_url(token="wrong-token")[0] == 403


def test_unanswered_callback_is_delivered_three_times_then_the_system_notice(platform, stub):
    stub.delay = 1.5  # longer than the platform waits (1 s in this fixture; 5 s by default)
    user = platform.oa_user(mode="safe")
    sent = user.send_text("慢")
    record = platform.wait_delivered(sent["key"], timeout=15)
    assert [d["outcome"] for d in record["deliveries"]] == ["retry", "retry", "retry"]
    assert len({d["body"] for d in stub.seen}) == 3 and len({s["message"]["MsgId"] for s in stub.seen}) == 1
    assert [m["text"] for m in user.wait_for()] == [SYSTEM_NOTICE]


def test_lost_responses_make_the_same_message_arrive_again(platform, stub):
    user = platform.oa_user(mode="plain")
    sent = user.send_text("重复", lose_responses=2)
    record = platform.wait_delivered(sent["key"])
    assert [d["outcome"] for d in record["deliveries"]] == ["lost", "lost", "reply"]
    assert [s["message"]["MsgId"] for s in stub.seen] == [sent["key"]] * 3
    assert user.texts() == ["你说：重复"]  # only the answer to the delivery WeChat kept is seen


def test_success_and_empty_mean_no_reply(platform, stub):
    stub.reply = lambda text: None
    user = platform.oa_user(mode="safe")
    sent = user.subscribe()
    assert platform.wait_delivered(sent["key"])["outcome"] == "ack"
    assert user.messages() == [] and stub.seen[0]["message"]["Event"] == "subscribe"


@pytest.mark.parametrize("response, problem", [
    ((200, '{"text": "json"}'), "not XML"),
    ((200, "<xml><ToUserName><![CDATA[someone-else]]></ToUserName></xml>"), "addressed to"),
    ((500, "oops"), None),  # 5xx: delivered again, then the notice
])
def test_bad_replies_show_the_system_notice(platform, stub, response, problem):
    stub.raw = lambda message: response
    user = platform.oa_user(mode="plain")
    sent = user.send_text("x")
    record = platform.wait_delivered(sent["key"], timeout=15)
    assert user.texts() == [SYSTEM_NOTICE]
    if problem:
        assert len(record["deliveries"]) == 1 and problem in platform.errors[0]
    else:
        assert len(record["deliveries"]) == 3


def test_plaintext_reply_to_a_safe_mode_message_is_refused(platform, stub):
    user = platform.oa_user(mode="safe")
    stub.raw = lambda m: (200, build_xml([("ToUserName", m["FromUserName"]), ("FromUserName", m["ToUserName"]),
                                          ("CreateTime", 1), ("MsgType", "text"), ("Content", "明文")]))
    user.send_text("x")
    assert user.wait_for()[0]["text"] == SYSTEM_NOTICE
    assert "plaintext reply in safe mode" in platform.errors[0]


def test_reply_over_2048_bytes_is_refused(platform, stub):
    stub.reply = lambda text: "长" * 700  # 2,100 bytes
    user = platform.oa_user(mode="plain")
    user.send_text("x")
    assert user.wait_for()[0]["text"] == SYSTEM_NOTICE and "2100 bytes" in platform.errors[0]


# --------------------------------------------------------------------------- APIs


def _get(platform: FakeWeChatPlatform, path: str, **query: str) -> dict:
    url = platform.api_base_url + path + "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(platform: FakeWeChatPlatform, path: str, token: str | None, payload: dict) -> dict:
    url = platform.api_base_url + path + (f"?access_token={token}" if token else "")
    request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return {"http": exc.code}


def _oa_token(platform: FakeWeChatPlatform) -> str:
    return _get(platform, "token", grant_type="client_credential", appid=platform.oa.app_id,
                secret=platform.oa.app_secret)["access_token"]


def test_official_account_tokens_replace_each_other_after_a_grace_period(platform, stub):
    assert _get(platform, "token", grant_type="client_credential", appid=platform.oa.app_id,
                secret="wrong")["errcode"] == 40001
    first = _oa_token(platform)
    second = _oa_token(platform)
    assert first != second and platform.token_fetches("oa") == 2
    user = platform.oa_user()
    platform.wait_delivered(user.send_text("hi")["key"])  # opens the customer-service quota
    message = {"touser": user.id, "msgtype": "text", "text": {"content": "旧令牌"}}
    assert _post(platform, "message/custom/send", first, message)["errcode"] == 0  # still in its grace
    platform.advance_clock(301)
    assert _post(platform, "message/custom/send", first, message)["errcode"] == 42001
    assert _post(platform, "message/custom/send", second, message)["errcode"] == 0
    assert _post(platform, "message/custom/send", None, message)["errcode"] == 41001
    assert _post(platform, "message/custom/send", "forged", message)["errcode"] == 40001
    platform.advance_clock(7200)
    assert _post(platform, "message/custom/send", second, message)["errcode"] == 42001


def test_wecom_token_is_stable_until_it_expires(platform):
    ask = lambda: _get(platform, "gettoken", corpid=platform.wecom.corp_id, corpsecret=platform.wecom.secret)  # noqa: E731
    first, again = ask(), ask()
    assert first["access_token"] == again["access_token"]
    platform.advance_clock(7201)
    assert ask()["access_token"] != first["access_token"]
    assert _get(platform, "gettoken", corpid="other", corpsecret="x")["errcode"] == 40013


def test_customer_service_quota_and_size_limit(platform, stub):
    token = _oa_token(platform)
    user = platform.oa_user(mode="plain")
    platform.wait_delivered(user.send_text("一条消息")["key"])  # opens 5 sends within 48 hours
    send = lambda text: _post(platform, "message/custom/send", token,  # noqa: E731
                              {"touser": user.id, "msgtype": "text", "text": {"content": text}})
    assert send("长" * 683)["errcode"] == 45002  # 2,049 bytes
    assert [send(f"第{i}条")["errcode"] for i in range(6)] == [0, 0, 0, 0, 0, 45047]
    assert [m["text"] for m in user.messages() if m["via"] == "custom"] == [f"第{i}条" for i in range(5)]
    assert _post(platform, "message/custom/send", token,
                 {"touser": "nobody", "msgtype": "text", "text": {"content": "x"}})["errcode"] == 40003


def test_wecom_send_truncates_and_reports_invalid_users(platform):
    token = _get(platform, "gettoken", corpid=platform.wecom.corp_id, corpsecret=platform.wecom.secret)["access_token"]
    member = platform.wecom_user("lisi")
    result = _post(platform, "message/send", token, {"touser": "lisi|ghost", "msgtype": "text",
                                                     "agentid": platform.wecom.agent_id,
                                                     "text": {"content": "字" * 700}})
    assert result["errcode"] == 0 and result["invaliduser"] == "ghost"
    [seen] = member.messages()
    assert seen["truncated"] and len(seen["text"].encode()) <= 2048
    assert _post(platform, "message/send", token, {"touser": "lisi", "msgtype": "text", "agentid": 7,
                                                   "text": {"content": "x"}})["errcode"] == 40056


def test_menu_limits(platform):
    token = _oa_token(platform)
    click = lambda name, key: {"type": "click", "name": name, "key": key}  # noqa: E731
    too_many = {"button": [click(f"菜单{i}", f"K{i}") for i in range(4)]}
    assert _post(platform, "menu/create", token, too_many)["errcode"] == 40016
    assert _post(platform, "menu/create", token, {"button": [click("单位义务自查", "K")]})["errcode"] == 40018
    good = {"button": [click("问答", "ASK"), {"name": "更多", "sub_button": [click("单位义务自查", "OB")]}]}
    assert _post(platform, "menu/create", token, good)["errcode"] == 0
    assert platform.menu == good


def test_fail_next_and_call_log(platform):
    platform.fail_next("token", times=1, status=502)
    platform.fail_next("token", times=1, errcode=-1)
    url = platform.api_base_url + "token?" + urllib.parse.urlencode(
        {"grant_type": "client_credential", "appid": platform.oa.app_id, "secret": platform.oa.app_secret})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=5)
    assert _get(platform, "token", grant_type="client_credential", appid=platform.oa.app_id,
                secret=platform.oa.app_secret)["errcode"] == -1
    assert "access_token" in _get(platform, "token", grant_type="client_credential", appid=platform.oa.app_id,
                                  secret=platform.oa.app_secret)
    assert [c["status"] for c in platform.api_calls("token")] == [502, 200, 200]
    assert platform.token_fetches("oa") == 1


def test_wechatpy_client_talks_to_the_fake(platform, stub):
    """The bot's API client (wechatpy) works against the fake with a custom base URL."""
    from wechatpy import WeChatClient

    user = platform.oa_user(mode="plain")
    platform.wait_delivered(user.send_text("问")["key"])
    client = WeChatClient(platform.oa.app_id, platform.oa.app_secret, access_token=_oa_token(platform))
    client.API_BASE_URL = platform.api_base_url
    assert client.message.send_text(user.id, "客服消息")["errcode"] == 0
    assert user.texts() == ["你说：问", "客服消息"]
