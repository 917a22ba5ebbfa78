"""A fake WeChat platform on loopback: an Official Account (公众号) and a WeCom (企业微信) app.

The real bot process is pointed at it with ``WECHAT_API_BASE_URL`` / ``WECOM_API_BASE_URL`` =
``platform.api_base_url`` and registers its callback URLs here (``oa_callback_url`` /
``wecom_callback_url``). Typical use from a synchronous test::

    with FakeWeChatPlatform(oa_callback_url="http://127.0.0.1:8000/wechat") as platform:
        alice = platform.oa_user(mode="safe")
        alice.subscribe()
        [greeting] = alice.wait_for()              # the next message Alice sees
        alice.send_text("1")
        [confirm] = alice.wait_for("劳动者")

What it models, each because it catches a real bug (sources: the Official Account and WeCom
developer documentation; the limits are the documented ones, cited where they are used):

* Callbacks signed like WeChat: ``signature`` = SHA-1 of the sorted token, timestamp and nonce; in
  compatible and safe mode (Official Account) and always (WeCom) the message is AES-256-CBC encrypted
  (key = Base64(EncodingAESKey + "="), IV = its first 16 bytes, PKCS#7 to 32-byte blocks, plaintext =
  16 random bytes + 4-byte big-endian length + message + AppID/CorpID) and ``msg_signature`` signs the
  ciphertext too. Compatible mode sends the plaintext fields *and* the ciphertext.
* Delivery like WeChat: a callback unanswered within 5 s (or refused) is delivered again, three
  deliveries in all; if none is answered the user sees "该公众号暂时无法提供服务，请稍后再试". An
  empty body or ``success`` means "no reply". A reply must be well-formed XML addressed to the sender,
  encrypted and correctly signed in safe mode (and always for WeCom); a bad reply shows the same
  system notice and is listed in ``errors``. ``lose_responses=n`` throws away the bot's first n
  responses (as if lost on the network), so the same message is delivered again: the duplicate test.
* Access tokens: ``/cgi-bin/token`` (Official Account) issues a new token on every call and the
  previous one stays valid only for a short grace period (5 minutes in the documentation);
  ``/cgi-bin/gettoken`` (WeCom) returns the same token while it is valid. Every API call checks
  its token (41001 missing, 40001 invalid, 42001 expired).
* Sending: ``/cgi-bin/message/custom/send`` (customer-service message) needs the user's quota: a
  user's message allows 5 messages within 48 hours, a subscribe or menu click 3 within 1 minute
  (45047 beyond); text over 2048 bytes is refused (45002). WeCom ``/cgi-bin/message/send``
  truncates text at 2048 bytes and drops more than 30 messages a minute to one member.
* ``/cgi-bin/menu/create``: 1-3 buttons, 1-5 sub-buttons, names ≤ 16 bytes (sub-buttons ≤ 40),
  click keys ≤ 128 bytes.

Everything the bot sends is recorded: ``messages(user)`` (what the user sees, in order),
``api_calls(path)`` and ``deliveries()``. All waits are bounded. The crypto here is written from
the published scheme without wechatpy (which the bot uses), so a shared bug cannot hide; it is
pinned to Tencent's and wechatpy's test vectors in tests/test_wechat_fake.py.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import itertools
import json
import random
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "FakeWeChatPlatform", "FakeUser", "OAConfig", "WeComConfig", "CryptoError",
    "signature", "decode_aes_key", "encrypt", "decrypt", "SYSTEM_NOTICE",
]

CALLBACK_TIMEOUT = 5.0  # seconds WeChat waits for the developer's server
DELIVERY_ATTEMPTS = 3  # "总共重试三次": three deliveries in all
SYSTEM_NOTICE = "该公众号暂时无法提供服务，请稍后再试"
TEXT_LIMIT_BYTES = 2048
TOKEN_TTL = 7200
TOKEN_GRACE = 300.0  # the old Official Account token stays usable this long after a new one
CS_QUOTA = {"message": (5, 48 * 3600.0), "subscribe": (3, 60.0), "click": (3, 60.0), "scan": (3, 60.0)}
WECOM_PER_MEMBER_PER_MINUTE = 30
MENU_NAME_BYTES, SUB_NAME_BYTES, MENU_KEY_BYTES = 16, 40, 128


class CryptoError(ValueError):
    """A message that cannot be decrypted: bad padding, bad length or the wrong receiver id."""


# --------------------------------------------------------------------------- crypto (the published scheme)


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 hex digest of the parts sorted as strings and joined."""
    return hashlib.sha1("".join(sorted(str(p) for p in parts)).encode("utf-8")).hexdigest()


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (Base64 without its "=")."""
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must be 43 characters of Base64 (32 bytes)")
    return key


def encrypt(key: bytes, message: str, receive_id: str, random_bytes: bytes) -> str:
    """Encrypt like WeChat: random16 + big-endian length + message + receive id, PKCS#7 padded to
    32-byte blocks, AES-256-CBC with IV = key[:16], Base64."""
    if len(random_bytes) != 16:
        raise ValueError("16 random bytes expected")
    body = message.encode("utf-8")
    raw = random_bytes + struct.pack(">I", len(body)) + body + receive_id.encode("utf-8")
    pad = 32 - len(raw) % 32  # 1..32: a full block of padding when already aligned
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode("ascii")


def decrypt(key: bytes, ciphertext: str) -> tuple[str, str]:
    """(message, receive id) of a Base64 ciphertext made by `encrypt`; CryptoError if malformed."""
    try:
        data = base64.b64decode(ciphertext, validate=True)
    except (ValueError, TypeError) as exc:
        raise CryptoError("ciphertext is not Base64") from exc
    if not data or len(data) % 16:
        raise CryptoError("ciphertext length is not a multiple of the AES block")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(data) + decryptor.finalize()
    pad = raw[-1]
    if not 1 <= pad <= 32 or raw[-pad:] != bytes([pad]) * pad:
        raise CryptoError("bad padding")
    raw = raw[:-pad]
    if len(raw) < 20:
        raise CryptoError("too short")
    length = struct.unpack(">I", raw[16:20])[0]
    if 20 + length > len(raw):
        raise CryptoError("length field exceeds the message")
    try:
        return raw[20:20 + length].decode("utf-8"), raw[20 + length:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CryptoError("not UTF-8") from exc


# --------------------------------------------------------------------------- XML


def _cdata(value: str) -> str:
    """A CDATA section holding `value` (a "]]>" inside is split across two sections)."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: list[tuple[str, str | int]]) -> str:
    """WeChat's flat <xml> document: strings in CDATA, integers bare, in the given order."""
    parts = [f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(v)}</{k}>" for k, v in fields]
    return "<xml>" + "".join(parts) + "</xml>"


def parse_xml(text: str) -> dict[str, str]:
    """The child elements of a flat <xml> document as a dict (ValueError if it is not one)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    if root.tag != "xml":
        raise ValueError(f"root element is <{root.tag}>, not <xml>")
    return {child.tag: child.text or "" for child in root}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class OAConfig:
    """An Official Account's settings as the platform knows them (test values, not secrets)."""
    app_id: str = "wx5e1f0a2b3c4d5e6f"
    app_secret: str = "oa-secret-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c1e"
    token: str = "ohbotOAtoken2024"
    encoding_aes_key: str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
    original_id: str = "gh_0hb0t0ffic1a1"  # the account's own id, ToUserName of every message


@dataclass(frozen=True)
class WeComConfig:
    """A WeCom self-built app's settings (test values)."""
    corp_id: str = "ww0a1b2c3d4e5f6a7b"
    agent_id: int = 1000002
    secret: str = "wecom-secret-Xk2P9mQ4rT7vW1yZ3bD5fH8jL0nR6sU"
    token: str = "ohbotWeComToken"
    encoding_aes_key: str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@dataclass
class FakeUser:
    """One WeChat user (an OpenID of the Official Account) or WeCom member (a UserID)."""

    platform: FakeWeChatPlatform
    id: str
    channel: str  # "oa" or "wecom"
    mode: str  # Official Account: "plain", "compatible" or "safe"; WeCom: always "safe"

    def send_text(self, text: str, **kw: Any) -> dict:
        """The user types `text`; returns the inbound record (its "key" identifies it)."""
        return self.platform.send(self, "text", {"Content": text}, **kw)

    def send_voice(self, **kw: Any) -> dict:
        """A voice message (no speech recognition result attached)."""
        return self.platform.send(self, "voice", {"MediaId": "media-voice-1", "Format": "amr"}, **kw)

    def send_image(self, **kw: Any) -> dict:
        """A photo."""
        return self.platform.send(self, "image", {"PicUrl": "http://mmbiz.example/pic.jpg",
                                                   "MediaId": "media-image-1"}, **kw)

    def send_location(self, **kw: Any) -> dict:
        """A shared location."""
        return self.platform.send(self, "location", {"Location_X": "23.134521", "Location_Y": "113.358803",
                                                      "Scale": "20", "Label": "广州市天河区"}, **kw)

    def send_event(self, event: str, key: str | None = None, **kw: Any) -> dict:
        """An event (subscribe, unsubscribe, CLICK with its key, or anything else)."""
        fields = {"Event": event} if key is None else {"Event": event, "EventKey": key}
        return self.platform.send(self, "event", fields, **kw)

    def subscribe(self, **kw: Any) -> dict:
        """关注: follows the account (WeCom: the member joins the app)."""
        return self.send_event("subscribe", **kw)

    def unsubscribe(self, **kw: Any) -> dict:
        """取消关注."""
        return self.send_event("unsubscribe", **kw)

    def click(self, key: str, **kw: Any) -> dict:
        """Taps a custom-menu button of type click."""
        return self.send_event("CLICK" if self.channel == "oa" else "click", key, **kw)

    def messages(self) -> list[dict]:
        """Everything this user has seen from the account, in order."""
        return self.platform.messages(self.id)

    def texts(self) -> list[str]:
        """The texts of `messages()`."""
        return [m["text"] for m in self.messages()]

    def wait_for(self, predicate: Callable[[dict], bool] | str | None = None, count: int = 1,
                 timeout: float = 20.0) -> list[dict]:
        """The next `count` messages this user sees that match (see FakeWeChatPlatform.wait_for)."""
        return self.platform.wait_for(self.id, predicate, count, timeout)


# --------------------------------------------------------------------------- the platform


class FakeWeChatPlatform:
    """The fake platform: an aiohttp server (the APIs) and client (the callbacks) on one event loop
    in a background thread; the test-facing methods are synchronous and thread-safe."""

    def __init__(self, oa: OAConfig | None = None, wecom: WeComConfig | None = None, *,
                 oa_callback_url: str | None = None, wecom_callback_url: str | None = None,
                 callback_timeout: float = CALLBACK_TIMEOUT, attempts: int = DELIVERY_ATTEMPTS,
                 token_ttl: int = TOKEN_TTL, token_grace: float = TOKEN_GRACE, seed: int = 12,
                 max_connections: int = 200) -> None:
        """Settings of both apps, where to deliver callbacks, and WeChat's timing (overridable so a
        test can shorten a 5-second wait)."""
        self.oa = oa or OAConfig()
        self.wecom = wecom or WeComConfig()
        self.oa_callback_url = oa_callback_url
        self.wecom_callback_url = wecom_callback_url
        self.callback_timeout = callback_timeout
        self.attempts = attempts
        self.token_ttl = token_ttl
        self.token_grace = token_grace
        self.max_connections = max_connections
        self._rng = random.Random(seed)
        self._cond = threading.Condition(threading.RLock())
        self._clock_offset = 0.0
        self._users: dict[str, FakeUser] = {}
        self._user_numbers = itertools.count(1)
        self._visible: dict[str, list[dict]] = defaultdict(list)
        self._cursor: dict[str, int] = defaultdict(int)
        self._inbound: list[dict] = []
        self._calls: list[dict] = []
        self._quota: dict[str, list[list[float]]] = defaultdict(list)  # user → [[left, until], …]
        self._wecom_sent: dict[str, list[float]] = defaultdict(list)
        self._oa_tokens: dict[str, float] = {}  # token → valid until (platform clock)
        self._wecom_token: tuple[str, float] | None = None
        self._failures: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        self.errors: list[str] = []  # bad replies and refused requests from the bot, one line each
        self.menu: dict | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Future] = set()
        self._port = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeWeChatPlatform:
        """Start the event loop thread and the API server on a free loopback port."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._startup())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-wechat", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake WeChat platform did not start")
        return self

    async def _startup(self) -> None:
        """Bind the API server and open the callback client."""
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{path:.*}", self._handle_api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        connector = aiohttp.TCPConnector(limit=self.max_connections, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel deliveries in flight, close the client and server, stop the thread."""
        if self._loop is None:
            return

        async def shutdown() -> None:
            for task in list(self._pending):
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)
            if self._session is not None:
                await self._session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout)
            self._loop.close()
            self._loop = None
            with self._cond:
                self._cond.notify_all()

    def __enter__(self) -> FakeWeChatPlatform:
        """Start on entering a with block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()

    @property
    def api_base_url(self) -> str:
        """What WECHAT_API_BASE_URL / WECOM_API_BASE_URL should be (like https://api.weixin.qq.com/cgi-bin/)."""
        return f"http://127.0.0.1:{self._port}/cgi-bin/"

    def now(self) -> float:
        """The platform's clock (wall time plus `advance_clock`)."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the platform's clock forward: tokens and quotas expire without waiting."""
        with self._cond:
            self._clock_offset += seconds

    # ---- users -------------------------------------------------------------------------------
    def oa_user(self, openid: str | None = None, mode: str = "safe") -> FakeUser:
        """A follower of the Official Account; `mode` is the message encryption mode the account
        uses for this user's callbacks ("plain", "compatible" or "safe")."""
        if mode not in ("plain", "compatible", "safe"):
            raise ValueError(f"unknown mode {mode!r}")
        openid = openid or f"oFake{next(self._user_numbers):04d}_" + self._hex(8)
        return self._register(FakeUser(self, openid, "oa", mode))

    def wecom_user(self, userid: str | None = None) -> FakeUser:
        """A member of the WeCom corporation who can use the app."""
        userid = userid or f"member{next(self._user_numbers):04d}"
        return self._register(FakeUser(self, userid, "wecom", "safe"))

    def _register(self, user: FakeUser) -> FakeUser:
        """Remember a user (ids are unique across both apps here)."""
        with self._cond:
            if user.id in self._users:
                raise ValueError(f"user {user.id} exists")
            self._users[user.id] = user
        return user

    # ---- sending callbacks -------------------------------------------------------------------
    def send(self, user: FakeUser, msg_type: str, fields: dict[str, str], *, msg_id: int | None = None,
             create_time: int | None = None, lose_responses: int = 0) -> dict:
        """Create one message from `user` and deliver it to the bot in the background (WeChat's
        retries included). Returns the inbound record; `wait_delivered(record["key"])` waits for
        the outcome. `msg_id`/`create_time` force the ids (to send a duplicate by hand)."""
        url = self.oa_callback_url if user.channel == "oa" else self.wecom_callback_url
        if not url:
            raise RuntimeError(f"no callback URL for {user.channel}")
        create_time = create_time or int(self.now())
        to = self.oa.original_id if user.channel == "oa" else self.wecom.corp_id
        xml_fields: list[tuple[str, str | int]] = [("ToUserName", to), ("FromUserName", user.id),
                                                   ("CreateTime", create_time), ("MsgType", msg_type)]
        xml_fields += list(fields.items())
        if msg_type != "event":
            msg_id = msg_id or self._rng.randrange(10**18, 10**19)
            xml_fields.append(("MsgId", msg_id))
        if user.channel == "wecom":
            xml_fields.append(("AgentID", self.wecom.agent_id))
        key = str(msg_id) if msg_type != "event" else f"{user.id}:{create_time}:{fields.get('Event')}"
        record = {
            "key": key, "user": user.id, "channel": user.channel, "mode": user.mode, "type": msg_type,
            "fields": dict(fields), "xml": build_xml(xml_fields), "sent_at": time.monotonic(),
            "deliveries": [], "outcome": None, "done": False,
        }
        with self._cond:
            self._inbound.append(record)
            self._grant_quota(user, msg_type, fields)
        assert self._loop is not None, "start() the platform first"
        future = asyncio.run_coroutine_threadsafe(self._deliver(record, url, lose_responses), self._loop)
        future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        return record

    def _grant_quota(self, user: FakeUser, msg_type: str, fields: dict[str, str]) -> None:
        """Customer-service quota the message opens (Official Account only)."""
        if user.channel != "oa":
            return
        event = fields.get("Event", "").lower()
        kind = "message" if msg_type != "event" else {"subscribe": "subscribe", "click": "click",
                                                      "scan": "scan"}.get(event)
        if kind:
            left, ttl = CS_QUOTA[kind]
            self._quota[user.id].append([float(left), self.now() + ttl])

    def signed_request(self, record: dict) -> tuple[dict[str, str], str]:
        """(query parameters, body) of one delivery of `record`, signed (and encrypted) afresh."""
        timestamp, nonce = str(int(self.now())), str(self._rng.randrange(10**8, 10**10))
        if record["channel"] == "wecom":
            cfg = self.wecom
            encrypted = encrypt(decode_aes_key(cfg.encoding_aes_key), record["xml"], cfg.corp_id, self._random16())
            body = build_xml([("ToUserName", cfg.corp_id), ("AgentID", str(cfg.agent_id)), ("Encrypt", encrypted)])
            return {"msg_signature": signature(cfg.token, timestamp, nonce, encrypted),
                    "timestamp": timestamp, "nonce": nonce}, body
        cfg = self.oa
        params = {"signature": signature(cfg.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "openid": record["user"]}
        if record["mode"] == "plain":
            return params, record["xml"]
        encrypted = encrypt(decode_aes_key(cfg.encoding_aes_key), record["xml"], cfg.app_id, self._random16())
        params.update(encrypt_type="aes", msg_signature=signature(cfg.token, timestamp, nonce, encrypted))
        if record["mode"] == "safe":
            body = build_xml([("ToUserName", cfg.original_id), ("Encrypt", encrypted)])
        else:  # compatible: the plaintext fields and the ciphertext in one document
            body = record["xml"][: -len("</xml>")] + f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
        return params, body

    async def _deliver(self, record: dict, url: str, lose_responses: int) -> None:
        """POST the callback; deliver again after a timeout, refusal or 5xx, or when the response
        is to be "lost"; show the reply (or the system notice) to the user."""
        task = asyncio.current_task()
        self._pending.add(task)  # type: ignore[arg-type]
        try:
            attempts = max(self.attempts, lose_responses + 1)
            for attempt in range(1, attempts + 1):
                params, body = self.signed_request(record)
                started = time.monotonic()
                delivery = {"attempt": attempt, "status": None, "body": None, "error": None,
                            "elapsed": None, "outcome": None}
                try:
                    assert self._session is not None
                    async with self._session.post(
                        url, params=params, data=body.encode("utf-8"),
                        headers={"Content-Type": "text/xml; charset=utf-8"},
                        timeout=aiohttp.ClientTimeout(total=self.callback_timeout),
                    ) as response:
                        delivery["status"] = response.status
                        delivery["body"] = await response.text()
                except TimeoutError:
                    delivery["error"] = f"no answer within {self.callback_timeout:g} s"
                except aiohttp.ClientError as exc:
                    delivery["error"] = f"{type(exc).__name__}: {exc}"
                delivery["elapsed"] = time.monotonic() - started
                if delivery["error"] is not None or delivery["status"] >= 500:
                    delivery["outcome"] = "retry"
                elif attempt <= lose_responses:
                    delivery["outcome"] = "lost"
                with self._cond:
                    record["deliveries"].append(delivery)
                    if delivery["outcome"] is None:
                        self._accept(record, delivery)
                        return
                    self._cond.notify_all()
            self._finish(record, "failed")
            self._show(record["user"], "system", SYSTEM_NOTICE, record["key"])
        finally:
            self._pending.discard(task)  # type: ignore[arg-type]

    def _accept(self, record: dict, delivery: dict) -> None:
        """Judge the bot's response like WeChat: nothing, a passive reply, or the system notice."""
        status, body = delivery["status"], (delivery["body"] or "")
        if status != 200:
            delivery["outcome"] = f"http {status}"
            self._error(f"{record['key']}: HTTP {status} from the callback")
        elif body.strip() in ("", "success"):
            delivery["outcome"] = "ack"
            self._finish(record, "ack")
            return
        else:
            try:
                text = self.open_reply(record["user"], body, record["mode"])
            except ValueError as exc:
                delivery["outcome"] = "bad reply"
                self._error(f"{record['key']}: {exc}")
            else:
                delivery["outcome"] = "reply"
                self._finish(record, "reply")
                self._show(record["user"], "passive", text, record["key"])
                return
        self._finish(record, delivery["outcome"])
        self._show(record["user"], "system", SYSTEM_NOTICE, record["key"])

    def open_reply(self, user_id: str, body: str, mode: str = "safe") -> str:
        """The text of a passive reply to `user_id` after every check WeChat makes; ValueError
        saying what is wrong otherwise."""
        channel = self._users[user_id].channel if user_id in self._users else "oa"
        fields = parse_xml(body)
        if "Encrypt" in fields:
            if channel == "oa" and mode == "plain":
                raise ValueError("encrypted reply to a plaintext-mode message")
            cfg_token, key_text, receive_id = (
                (self.oa.token, self.oa.encoding_aes_key, self.oa.app_id) if channel == "oa"
                else (self.wecom.token, self.wecom.encoding_aes_key, self.wecom.corp_id))
            for name in ("MsgSignature", "TimeStamp", "Nonce"):
                if not fields.get(name):
                    raise ValueError(f"encrypted reply without {name}")
            expected = signature(cfg_token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
            if fields["MsgSignature"] != expected:
                raise ValueError("reply MsgSignature does not match")
            try:
                inner, rid = decrypt(decode_aes_key(key_text), fields["Encrypt"])
            except CryptoError as exc:
                raise ValueError(f"reply cannot be decrypted: {exc}") from exc
            if rid != receive_id:
                raise ValueError(f"reply encrypted for {rid!r}, not {receive_id!r}")
            fields = parse_xml(inner)
        elif channel == "wecom" or mode == "safe":
            raise ValueError("plaintext reply in safe mode")
        sender = self.oa.original_id if channel == "oa" else self.wecom.corp_id
        if fields.get("ToUserName") != user_id:
            raise ValueError(f"reply addressed to {fields.get('ToUserName')!r}, not {user_id!r}")
        if fields.get("FromUserName") != sender:
            raise ValueError(f"reply from {fields.get('FromUserName')!r}, not {sender!r}")
        if not fields.get("CreateTime", "").isdigit():
            raise ValueError("reply without an integer CreateTime")
        if fields.get("MsgType") != "text":
            raise ValueError(f"reply of type {fields.get('MsgType')!r} (only text is modelled)")
        content = fields.get("Content", "")
        if not content.strip():
            raise ValueError("empty reply Content")
        if len(content.encode("utf-8")) > TEXT_LIMIT_BYTES:
            raise ValueError(f"reply Content of {len(content.encode('utf-8'))} bytes > {TEXT_LIMIT_BYTES}")
        return content

    # ---- URL verification and raw requests ----------------------------------------------------
    def verify_oa_url(self, url: str | None = None, token: str | None = None) -> tuple[int, str, str]:
        """The GET WeChat sends when the URL is saved: (status, body, echostr sent)."""
        timestamp, nonce, echostr = str(int(self.now())), str(self._rng.randrange(10**8, 10**10)), self._hex(10)
        params = {"signature": signature(token or self.oa.token, timestamp, nonce), "timestamp": timestamp,
                  "nonce": nonce, "echostr": echostr}
        status, body = self.request("GET", url or self.oa_callback_url, params)
        return status, body, echostr

    def verify_wecom_url(self, url: str | None = None) -> tuple[int, str, str]:
        """WeCom's URL check: an encrypted echostr that must come back decrypted: (status, body, plain)."""
        cfg = self.wecom
        timestamp, nonce, plain = str(int(self.now())), str(self._rng.randrange(10**8, 10**10)), self._hex(10)
        echostr = encrypt(decode_aes_key(cfg.encoding_aes_key), plain, cfg.corp_id, self._random16())
        params = {"msg_signature": signature(cfg.token, timestamp, nonce, echostr), "timestamp": timestamp,
                  "nonce": nonce, "echostr": echostr}
        status, body = self.request("GET", url or self.wecom_callback_url, params)
        return status, body, plain

    def request(self, method: str, url: str | None, params: dict[str, str] | None = None,
                body: str | bytes | None = None, timeout: float = 30.0) -> tuple[int, str]:
        """One raw HTTP request to the bot (for malformed or badly signed callbacks): (status, text)."""
        if not url:
            raise RuntimeError("no URL")
        data = body.encode("utf-8") if isinstance(body, str) else body

        async def go() -> tuple[int, str]:
            assert self._session is not None
            async with self._session.request(method, url, params=params, data=data,
                                             headers={"Content-Type": "text/xml; charset=utf-8"},
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                return response.status, await response.text()

        assert self._loop is not None, "start() the platform first"
        return asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout + 5)

    # ---- observing -----------------------------------------------------------------------------
    def messages(self, user_id: str) -> list[dict]:
        """What `user_id` has seen, in order: dicts with via ("passive", "custom", "app" or
        "system"), text, at (monotonic seconds), reply_to (inbound key or None), truncated."""
        with self._cond:
            return copy.deepcopy(self._visible.get(user_id, []))

    def wait_for(self, user_id: str, predicate: Callable[[dict], bool] | str | None = None,
                 count: int = 1, timeout: float = 20.0) -> list[dict]:
        """Block until `count` new messages to `user_id` match `predicate` (a str: substring of
        the text). "New" means after the last message a previous wait_for returned for this user.
        AssertionError with what arrived on timeout."""
        if isinstance(predicate, str):
            needle = predicate
            predicate = lambda m: needle in m["text"]  # noqa: E731
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                records = self._visible.get(user_id, [])
                start = self._cursor[user_id]
                matched = [i for i in range(start, len(records)) if predicate is None or predicate(records[i])]
                if len(matched) >= count:
                    self._cursor[user_id] = matched[count - 1] + 1
                    return [copy.deepcopy(records[i]) for i in matched[:count]]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._loop is None:
                    seen = [f"{r['via']}: {r['text'][:80]!r}" for r in records[start:]]
                    raise AssertionError(f"{user_id}: {len(matched)}/{count} matching messages within "
                                         f"{timeout:g} s; new: {seen}; errors: {self.errors[-5:]}")
                self._cond.wait(remaining)

    def wait_delivered(self, key: str, timeout: float = 30.0) -> dict:
        """Block until the inbound message `key` is settled (answered, acknowledged or given up)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                record = next((r for r in self._inbound if r["key"] == key), None)
                if record is not None and record["done"]:
                    return copy.deepcopy(record)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"inbound {key} not settled within {timeout:g} s")
                self._cond.wait(remaining)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        """Block until `condition()` (checked under the lock after every state change) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._cond.wait(remaining)

    def inbound(self, user_id: str | None = None) -> list[dict]:
        """Every message users sent (with its deliveries), optionally of one user."""
        with self._cond:
            return copy.deepcopy([r for r in self._inbound if user_id is None or r["user"] == user_id])

    def deliveries(self) -> list[dict]:
        """Every callback POST made: the inbound key merged into each delivery record."""
        with self._cond:
            return [{"key": r["key"], **d} for r in self._inbound for d in copy.deepcopy(r["deliveries"])]

    def api_calls(self, path: str | None = None) -> list[dict]:
        """Log of API requests (path relative to /cgi-bin/, e.g. "message/custom/send"): method,
        path, query, json, status, response."""
        with self._cond:
            return copy.deepcopy([c for c in self._calls if path is None or c["path"] == path])

    def token_fetches(self, channel: str = "oa") -> int:
        """How many access tokens the bot fetched successfully ("oa" or "wecom")."""
        path = "token" if channel == "oa" else "gettoken"
        return sum(1 for c in self.api_calls(path) if "access_token" in (c["response"] or {}))

    def fail_next(self, path: str, times: int = 1, status: int = 200, errcode: int = -1,
                  errmsg: str = "system error") -> None:
        """The next `times` calls to `path` fail: HTTP `status`, or with status 200 the JSON error
        `errcode` (-1 is WeChat's "system busy")."""
        with self._cond:
            self._failures[path].extend([(status, errcode, errmsg)] * times)

    def invalidate_tokens(self) -> None:
        """Every issued token stops working at once (as after a secret reset)."""
        with self._cond:
            self._oa_tokens.clear()
            self._wecom_token = None

    # ---- the API server ----------------------------------------------------------------------
    async def _handle_api(self, request: web.Request) -> web.Response:
        """Dispatch /cgi-bin/<path>; record the call; every answer is JSON like WeChat's."""
        path = request.match_info["path"]
        query = dict(request.query)
        raw = await request.read()
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            payload = {"__invalid__": raw[:200].decode("utf-8", "replace")}
        with self._cond:
            failure = self._failures[path].pop(0) if self._failures.get(path) else None
            if failure is not None and failure[0] != 200:
                status, response = failure[0], {"errcode": -1, "errmsg": "bad gateway"}
            elif failure is not None:
                status, response = 200, {"errcode": failure[1], "errmsg": failure[2]}
            else:
                status, response = 200, self._dispatch(request.method, path, query, payload)
            self._calls.append({"method": request.method, "path": path, "query": query, "json": payload,
                                "status": status, "response": response, "at": time.monotonic()})
            self._cond.notify_all()
        return web.json_response(response, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _dispatch(self, method: str, path: str, query: dict, payload: Any) -> dict:
        """One API call under the lock: its JSON answer."""
        if path == "token" and method == "GET":
            return self._api_token(query)
        if path == "gettoken" and method == "GET":
            return self._api_gettoken(query)
        handlers = {"message/custom/send": ("oa", self._api_custom_send),
                    "menu/create": ("oa", self._api_menu_create),
                    "message/send": ("wecom", self._api_wecom_send)}
        if path not in handlers or method != "POST":
            return {"errcode": 40066 if path not in handlers else 43002, "errmsg": f"invalid url {path}"}
        channel, handler = handlers[path]
        error = self._check_token(channel, query.get("access_token"))
        if error:
            self._error(f"{path}: {error['errmsg']}")
            return error
        if not isinstance(payload, dict) or "__invalid__" in payload:
            return {"errcode": 47001, "errmsg": "data format error"}
        return handler(payload)

    def _api_token(self, query: dict) -> dict:
        """Official Account access token: a new one per call; older ones expire after the grace."""
        if query.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if query.get("appid") != self.oa.app_id:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != self.oa.app_secret:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        now = self.now()
        for token, until in list(self._oa_tokens.items()):
            self._oa_tokens[token] = min(until, now + self.token_grace)
        token = "OA_" + self._hex(48)
        self._oa_tokens[token] = now + self.token_ttl
        return {"access_token": token, "expires_in": self.token_ttl}

    def _api_gettoken(self, query: dict) -> dict:
        """WeCom access token: the same one while it is valid."""
        if query.get("corpid") != self.wecom.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.wecom.secret:
            return {"errcode": 40001, "errmsg": "invalid secret"}
        now = self.now()
        if self._wecom_token is None or self._wecom_token[1] <= now:
            self._wecom_token = ("WW_" + self._hex(48), now + self.token_ttl)
        token, until = self._wecom_token
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": int(until - now)}

    def _check_token(self, channel: str, token: str | None) -> dict | None:
        """None if `token` is a valid token of `channel`, else WeChat's error answer."""
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        now = self.now()
        if channel == "oa":
            until = self._oa_tokens.get(token)
        else:
            until = self._wecom_token[1] if self._wecom_token and self._wecom_token[0] == token else None
        if until is None:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if until <= now:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    def _api_custom_send(self, payload: dict) -> dict:
        """客服消息: text to a follower who has quota left."""
        user = self._users.get(payload.get("touser", ""))
        if user is None or user.channel != "oa":
            return {"errcode": 40003, "errmsg": "invalid openid"}
        if payload.get("msgtype") != "text":
            return {"errcode": 40008, "errmsg": "invalid message type (only text is modelled)"}
        content = (payload.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return {"errcode": 44003, "errmsg": "empty content"}
        if len(content.encode("utf-8")) > TEXT_LIMIT_BYTES:
            self._error(f"custom send: {len(content.encode('utf-8'))} bytes")
            return {"errcode": 45002, "errmsg": "content size out of limit"}
        now = self.now()
        grants = [g for g in self._quota[user.id] if g[1] > now and g[0] > 0]
        if not grants:
            self._error(f"custom send to {user.id}: no quota left")
            return {"errcode": 45047, "errmsg": "out of response count limit"}
        min(grants, key=lambda g: g[1])[0] -= 1
        self._show(user.id, "custom", content, None)
        return {"errcode": 0, "errmsg": "ok"}

    def _api_wecom_send(self, payload: dict) -> dict:
        """WeCom app message: text to members; truncated at 2048 bytes; 30 a minute per member."""
        if payload.get("agentid") not in (self.wecom.agent_id, str(self.wecom.agent_id)):
            return {"errcode": 40056, "errmsg": "invalid agentid"}
        if payload.get("msgtype") != "text":
            return {"errcode": 40008, "errmsg": "invalid message type (only text is modelled)"}
        content = (payload.get("text") or {}).get("content")
        if not isinstance(content, str) or not content:
            return {"errcode": 41009, "errmsg": "missing content"}
        targets = [t for t in str(payload.get("touser", "")).split("|") if t]
        invalid = [t for t in targets if t not in self._users or self._users[t].channel != "wecom"]
        valid = [t for t in targets if t not in invalid]
        if not valid:
            return {"errcode": 81013, "errmsg": "user & party & tag all invalid"}
        encoded = content.encode("utf-8")
        truncated = len(encoded) > TEXT_LIMIT_BYTES
        if truncated:
            content = encoded[:TEXT_LIMIT_BYTES].decode("utf-8", "ignore")
            self._error(f"wecom send: {len(encoded)} bytes truncated")
        now = self.now()
        for member in valid:
            recent = [t for t in self._wecom_sent[member] if t > now - 60]
            self._wecom_sent[member] = recent + [now]
            if len(recent) >= WECOM_PER_MEMBER_PER_MINUTE:
                self._error(f"wecom send to {member}: over 30 a minute, dropped")
                continue
            self._show(member, "app", content, None, truncated=truncated)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid), "msgid": self._hex(16)}

    def _api_menu_create(self, payload: dict) -> dict:
        """自定义菜单: validated against the documented limits, then stored in `menu`."""
        buttons = payload.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return {"errcode": 40016, "errmsg": "invalid button size"}
        for button in buttons:
            error = self._check_button(button, MENU_NAME_BYTES)
            if error:
                return error
            subs = button.get("sub_button")
            if subs is not None:
                if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
                    return {"errcode": 40023, "errmsg": "invalid sub button size"}
                for sub in subs:
                    error = self._check_button(sub, SUB_NAME_BYTES, top=False)
                    if error or sub.get("sub_button"):
                        return error or {"errcode": 40023, "errmsg": "invalid sub button size"}
            elif button.get("type") is None:
                return {"errcode": 40017, "errmsg": "invalid button type"}
        self.menu = copy.deepcopy(payload)
        return {"errcode": 0, "errmsg": "ok"}

    @staticmethod
    def _check_button(button: Any, name_limit: int, top: bool = True) -> dict | None:
        """None if one button is valid, else the error answer."""
        if not isinstance(button, dict) or not isinstance(button.get("name"), str) or not button["name"]:
            return {"errcode": 40018, "errmsg": "invalid button name size"}
        if len(button["name"].encode("utf-8")) > name_limit:
            return {"errcode": 40018, "errmsg": "invalid button name size"}
        kind = button.get("type")
        if top and kind is None and button.get("sub_button"):
            return None
        if kind == "click":
            key = button.get("key")
            if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MENU_KEY_BYTES:
                return {"errcode": 40019, "errmsg": "invalid button key size"}
            return None
        if kind == "view":
            url = button.get("url")
            return None if isinstance(url, str) and url.startswith(("http://", "https://")) else \
                {"errcode": 40055, "errmsg": "invalid button url domain"}
        return {"errcode": 40017, "errmsg": "invalid button type"}

    # ---- internals -----------------------------------------------------------------------------
    def _show(self, user_id: str, via: str, text: str, reply_to: str | None, truncated: bool = False) -> None:
        """Record a message the user sees and wake the waiters."""
        with self._cond:
            self._visible[user_id].append({"via": via, "text": text, "at": time.monotonic(),
                                           "reply_to": reply_to, "truncated": truncated})
            self._cond.notify_all()

    def _finish(self, record: dict, outcome: str) -> None:
        """Mark an inbound message settled."""
        with self._cond:
            record["outcome"], record["done"] = outcome, True
            self._cond.notify_all()

    def _error(self, line: str) -> None:
        """Remember something the real platform would have refused or shown as an error."""
        with self._cond:
            self.errors.append(line)
            self._cond.notify_all()

    def _hex(self, n: int) -> str:
        """`n` deterministic pseudo-random hex digits (seeded: runs are repeatable)."""
        with self._cond:
            return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def _random16(self) -> bytes:
        """The 16 random bytes in front of every encrypted message (letters and digits, like WeChat's)."""
        with self._cond:
            return "".join(self._rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                           for _ in range(16)).encode("ascii")
