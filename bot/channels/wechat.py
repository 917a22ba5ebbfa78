"""WeChat Official Account (公众号) channel, and what it shares with the WeCom channel (wecom.py):
a thin adapter between the platform's callbacks and the dialogue core, on wechatpy.

For every callback:

1. Check the signature (403 and nothing processed if it is wrong), decrypt in compatible and safe
   mode (AES; wechatpy), parse the XML (400 if malformed).
2. Claim the message in the database (MsgId; a salted hash of sender + CreateTime for events), so a
   delivery WeChat repeats is never answered twice, whichever process it reaches.
3. Run the dialogue (text in, buttons as text: bot/channels/text_menu.py). WeChat waits 5 seconds
   and then delivers the message again: an answer ready within PASSIVE_BUDGET is the passive reply;
   otherwise the reply is a short acknowledgement and the answer follows through the
   customer-service message API (客服消息).
4. Split long answers at 2048 bytes: the WeCom documentation gives that limit for text messages
   ("消息内容，最长不超过2048个字节"), the Official Account's customer-service API answers longer
   text with 45002 "content size out of limit" and documents no number; 2048 bytes holds for both.
   The first part is the passive reply, the rest go through the API, at most as many as the
   platform allows after one user message (5 within 48 hours; 3 within a minute after a subscribe
   or menu click: developers.weixin.qq.com/doc/offiaccount/Customer_Service/Customer_Service_Messages.html).

Access tokens live in the database (bot/storage/channels.py: one process refreshes, all read).
Users are keyed by a salted hash of the OpenID / UserID; raw ids are only held in memory while a
message is being answered.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException, WeChatClientException
from wechatpy.messages import BaseMessage
from wechatpy.parser import parse_message
from wechatpy.replies import TextReply
from wechatpy.session import SessionStorage
from wechatpy.utils import check_signature

from bot.channels import redact
from bot.channels.split import split_parts
from bot.channels.telegram import KeyedLocks
from bot.channels.text_menu import converse
from bot.config import Settings
from bot.storage.channels import DbMenus, Inbox, TokenStore, TokenUnavailable

log = logging.getLogger("ohbot.wechat")

PASSIVE_BUDGET = 4.0  # seconds: WeChat gives up (and delivers again) after 5
DUPLICATE_WAIT = 4.0  # how long a repeated delivery waits for the first one's reply
TEXT_LIMIT_BYTES = 2048
MAX_BODY_BYTES = 256 * 1024  # a 10,000-character message in compatible mode is about 70 KB
QUOTA_AFTER_MESSAGE = 5  # customer-service messages allowed after a user's message …
QUOTA_AFTER_EVENT = 3  # … and after a subscribe or a menu click
ACK = "收到，正在查找答案，请稍候……"
APOLOGY = "抱歉，处理你的消息时出错了，请稍后再试。"
TRUNCATED = "\n……（内容较长，后面部分未能发送）"
SEND_ATTEMPTS = 3
SUCCESS = "success"  # WeChat's "no reply, do not retry"
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# The custom menu (自定义菜单) of `ohbot wechat menu`: at most 3 buttons of at most 16 bytes, so
# 单位义务自查 (18 bytes) and 我的资料 go under 更多. A click arrives as a CLICK event with the key.
MENU: dict[str, list[dict[str, Any]]] = {"button": [
    {"type": "click", "name": "问答", "key": "OHBOT_HELP"},
    {"type": "click", "name": "测验", "key": "OHBOT_QUIZ"},
    {"name": "更多", "sub_button": [
        {"type": "click", "name": "单位义务自查", "key": "OHBOT_OBLIGATIONS"},
        {"type": "click", "name": "我的资料", "key": "OHBOT_ME"},
    ]},
]}
CLICK_COMMANDS = {"OHBOT_HELP": "/help", "OHBOT_QUIZ": "/quiz", "OHBOT_OBLIGATIONS": "/obligations",
                  "OHBOT_ME": "/me"}


class Refused(Exception):
    """A callback that is not from the platform (bad signature): 403, nothing processed."""


class Malformed(Exception):
    """A callback that cannot be read (not XML, not decryptable): 400."""


# --------------------------------------------------------------------------- text helpers


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes (how WeChat counts)."""
    return len(text.encode("utf-8"))


def _fit(text: str, limit: int) -> int:
    """The largest n such that text[:n] is at most `limit` UTF-8 bytes (at least 1)."""
    return max(len(text.encode("utf-8")[:limit].decode("utf-8", "ignore")), 1)


def split_utf8(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """Parts of at most `limit` UTF-8 bytes (see `split_parts`); never empty (a blank text is "…")."""
    return split_parts(text, limit, utf8_len, _fit) or ["…"]


def cap_parts(parts: list[str], most: int, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """At most `most` parts; if some are dropped, the last kept one says so."""
    if len(parts) <= most:
        return parts
    kept = parts[:most]
    room = limit - utf8_len(TRUNCATED)
    kept[-1] = kept[-1][:_fit(kept[-1], room)] + TRUNCATED
    return kept


def xml_text(text: str) -> str:
    """Text that survives wechatpy's CDATA rendering: "]]>" split across sections, characters XML
    forbids removed."""
    return _XML_INVALID.sub("", text).replace("]]>", "]]]]><![CDATA[>")


# --------------------------------------------------------------------------- API clients


class _TokenSession(SessionStorage):
    """wechatpy's session storage, reading the token from the database: after a refused token
    wechatpy refreshes (fetch_access_token) and reads the new one through this."""

    def __init__(self, client: Any) -> None:
        """For one client."""
        self.client = client

    def get(self, key: str, default: Any = None) -> Any:
        """The current token for the token key; nothing else is kept."""
        return self.client.access_token if key == self.client.access_token_key else default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Tokens are written by TokenStore only."""

    def delete(self, key: str) -> None:
        """Nothing to delete."""


class StoredTokenMixin:
    """For wechatpy clients: the access token comes from TokenStore (the database, one refresher)
    and is fetched from `API_BASE_URL` + the token path (wechatpy's own fetch uses a fixed URL)."""

    API_BASE_URL: str
    timeout: Any
    _http: requests.Session

    def _use_store(self, tokens: TokenStore, name: str, base_url: str, path: str, params: dict[str, str]) -> None:
        """Wire the client to the store; called from the subclass's __init__."""
        self.API_BASE_URL = base_url
        self._tokens, self._token_name = tokens, name
        self._token_path, self._token_params = path, params
        self._used = threading.local()
        self.session = _TokenSession(self)

    @property
    def access_token(self) -> str:
        """A valid token (refreshed by whichever process holds the lease when it is due)."""
        token = self._tokens.get(self._token_name, self._fetch_new)
        if getattr(self._used, "token", None) != token:
            redact.remember(token)  # fetched by another process, perhaps: mask it here too
        self._used.token = token
        return token

    def fetch_access_token(self) -> dict:
        """Called by wechatpy when the platform refused the token this thread just used."""
        token = self._tokens.get(self._token_name, self._fetch_new, invalid=getattr(self._used, "token", None))
        self._used.token = token
        return {"access_token": token}

    def _fetch_new(self) -> tuple[str, int]:
        """(token, seconds valid) from the platform. Errors carry no URL: it contains the secret."""
        try:
            response = self._http.get(self.API_BASE_URL + self._token_path, params=self._token_params,
                                      timeout=self.timeout or 10)
            response.raise_for_status()
            data = response.json()
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "error"
            raise RuntimeError(f"token request failed: HTTP {status}") from None
        except (requests.RequestException, ValueError) as exc:
            raise RuntimeError(f"token request failed: {type(exc).__name__}") from None
        if data.get("errcode"):
            raise WeChatClientException(data["errcode"], data.get("errmsg"))
        redact.remember(data["access_token"])
        return data["access_token"], int(data.get("expires_in") or 7200)


class OfficialAccountClient(StoredTokenMixin, WeChatClient):
    """wechatpy's Official Account client on the configured base URL and the shared token row."""

    def __init__(self, settings: Settings, tokens: TokenStore, timeout: float = 10.0) -> None:
        """From WECHAT_* settings."""
        super().__init__(settings.wechat_app_id, settings.wechat_app_secret, timeout=timeout)
        self._use_store(tokens, f"wechat:{settings.wechat_app_id}", settings.wechat_api_base_url, "token",
                        {"grant_type": "client_credential", "appid": settings.wechat_app_id or "",
                         "secret": settings.wechat_app_secret or ""})


def create_menu(settings: Settings, tokens: TokenStore) -> dict:
    """`ohbot wechat menu`: create the Official Account's custom menu (MENU); the platform's answer."""
    return OfficialAccountClient(settings, tokens).menu.create(MENU)


def menu_summary() -> str:
    """The menu as one line, for the command's output."""
    parts = []
    for button in MENU["button"]:
        subs = button.get("sub_button")
        parts.append(button["name"] + (f"（{' · '.join(s['name'] for s in subs)}）" if subs else ""))
    return " · ".join(parts)


# --------------------------------------------------------------------------- the shared callback logic


@dataclass
class Incoming:
    """One callback, channel-neutral: who sent what, and how many API messages may follow."""
    key: str  # de-duplication key
    user: str  # OpenID / UserID (raw: kept in memory only while answering)
    to: str  # the account's own id (ToUserName): the passive reply comes from it
    text: str | None  # None: not text (photo, voice …)
    quota: int  # customer-service messages allowed after it


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The request body, or None as soon as it exceeds `limit` bytes (read no further)."""
    if int(request.headers.get("content-length") or 0) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def run_sync(executor: ThreadPoolExecutor | None, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a worker thread (`executor`, or the event loop's default)."""
    return await asyncio.get_running_loop().run_in_executor(executor, lambda: fn(*args))


class CallbackChannel:
    """What the Official Account and WeCom adapters share: verify, claim, answer within the
    passive budget or acknowledge and send, split, de-duplicate. Subclasses read and write the
    platform's formats (`open`, `parse`, `passive`, `verify_url`, `send`)."""

    name = "channel"

    def __init__(self, settings: Settings, dialogue: Any, client: Any, *, passive_budget: float = PASSIVE_BUDGET,
                 duplicate_wait: float = DUPLICATE_WAIT, senders: int = 8) -> None:
        """Over the dialogue core and its state database; `client` is the platform's API client."""
        self.settings = settings
        self.dialogue = dialogue
        self.client = client
        self.inbox = Inbox(dialogue.state)
        self.menus = DbMenus(dialogue.state)
        self.passive_budget = passive_budget
        self.duplicate_wait = duplicate_wait
        self.locks = KeyedLocks()
        self.background: set[asyncio.Task] = set()
        self.send_pool = ThreadPoolExecutor(senders, thread_name_prefix=f"{self.name}-send")

    # ---- to implement -------------------------------------------------------------------------
    def verify_url(self, query: dict[str, str]) -> str:
        """The body answering the platform's URL check; Refused/Malformed."""
        raise NotImplementedError

    def open(self, query: dict[str, str], body: bytes) -> tuple[str, dict]:
        """(message XML, reply context) of a callback; Refused/Malformed."""
        raise NotImplementedError

    def parse(self, xml: str) -> Incoming | None:
        """The message, or None for what gets no reply (unsubscribe, unknown events); Malformed."""
        raise NotImplementedError

    def passive(self, incoming: Incoming, text: str, ctx: dict) -> str:
        """The passive reply document (encrypted when the callback was)."""
        raise NotImplementedError

    def send(self, user: str, text: str) -> None:
        """One text message through the platform's API (blocking; raises on failure)."""
        raise NotImplementedError

    # ---- HTTP ---------------------------------------------------------------------------------
    async def get(self, request: Request) -> Response:
        """URL verification (the GET the platform sends when the URL is saved)."""
        try:
            return PlainTextResponse(self.verify_url(dict(request.query_params)))
        except Refused as exc:
            log.warning("%s: URL check refused: %s", self.name, exc)
            return PlainTextResponse("forbidden", status_code=403)
        except Malformed as exc:
            log.warning("%s: malformed URL check: %s", self.name, exc)
            return PlainTextResponse("bad request", status_code=400)

    async def post(self, request: Request) -> Response:
        """One callback: verify, claim, answer (passively in time, else acknowledge and send)."""
        body = await read_body(request)
        if body is None:
            log.warning("%s: refused a callback over %d bytes", self.name, MAX_BODY_BYTES)
            return PlainTextResponse("too large", status_code=413)
        try:
            xml, ctx = self.open(dict(request.query_params), body)
            incoming = self.parse(xml)
        except Refused as exc:
            log.warning("%s: refused a callback: %s", self.name, exc)
            return PlainTextResponse("forbidden", status_code=403)
        except Malformed as exc:
            log.warning("%s: malformed callback: %s", self.name, exc)
            return PlainTextResponse(f"bad request: {exc}", status_code=400)
        if incoming is None:
            return PlainTextResponse(SUCCESS)
        if not await run_sync(None, self.inbox.claim, self.name, incoming.key):
            return await self.duplicate(incoming, ctx)
        task = asyncio.create_task(self.answer(incoming))
        self._keep(task)
        try:
            parts = await asyncio.wait_for(asyncio.shield(task), self.passive_budget)
        except TimeoutError:
            log.info("%s: answer not ready within %.1f s: acknowledged, it follows by the API", self.name,
                     self.passive_budget)
            await run_sync(None, self.inbox.set_reply, self.name, incoming.key, ACK)
            task.add_done_callback(lambda done: self._send_late(incoming, done))
            return self._xml(self.passive(incoming, ACK, ctx))
        parts = cap_parts(parts, incoming.quota + 1)
        await run_sync(None, self.inbox.set_reply, self.name, incoming.key, parts[0])
        later = BackgroundTask(self.deliver, incoming.user, parts[1:]) if len(parts) > 1 else None
        return self._xml(self.passive(incoming, parts[0], ctx), later)

    def _send_late(self, incoming: Incoming, done: asyncio.Task) -> None:
        """When a late answer is ready: send it through the API (it was acknowledged already)."""
        if done.cancelled() or done.exception() is not None:
            return
        self._keep(asyncio.ensure_future(self.deliver(incoming.user, cap_parts(done.result(), incoming.quota))))

    async def duplicate(self, incoming: Incoming, ctx: dict) -> Response:
        """A delivery of a message already taken: WeChat delivers again only when it did not get
        the first answer, so the passive reply given then is given again (once it exists)."""
        deadline = time.monotonic() + self.duplicate_wait
        while True:
            reply = await run_sync(None, self.inbox.reply, self.name, incoming.key)
            if reply is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        log.info("%s: repeated delivery of a message already taken: %s", self.name,
                 "its reply given again" if reply else "no reply yet, acknowledged")
        return self._xml(self.passive(incoming, reply, ctx)) if reply else PlainTextResponse(SUCCESS)

    @staticmethod
    def _xml(document: str, background: BackgroundTask | None = None) -> Response:
        """An XML response (with work to do after it is sent)."""
        return Response(document, media_type="application/xml", background=background)

    # ---- answering ------------------------------------------------------------------------------
    async def answer(self, incoming: Incoming) -> list[str]:
        """The dialogue's answer as parts of at most 2048 bytes (one user's messages in order)."""
        slow = self.settings.test_slow_reply
        async with self.locks.hold(incoming.user):
            if slow and incoming.text and slow[0] in incoming.text:
                await asyncio.sleep(slow[1])
            key = self.dialogue.state.user_key(self.name, incoming.user)
            try:
                turn = await run_sync(None, converse, self.dialogue, self.menus, key, incoming.text)
            except Exception:
                log.exception("%s: the dialogue failed for user %s", self.name, key[:8])
                return [APOLOGY]
        return split_utf8(turn.text)

    async def deliver(self, user: str, parts: list[str]) -> None:
        """Send parts in order through the API; stop at the first that cannot be sent."""
        for part in parts:
            if not await run_sync(self.send_pool, self.send_with_retry, user, part):
                return

    def send_with_retry(self, user: str, text: str) -> bool:
        """One API message, retried on network errors and "system busy" (-1); one log line per
        failure, never the request URL (it carries the token)."""
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                self.send(user, text)
                return True
            except WeChatClientException as exc:
                if exc.errcode not in (-1, None) or attempt == SEND_ATTEMPTS:
                    log.warning("%s: sending failed: errcode %s %s", self.name, exc.errcode, exc.errmsg)
                    return False
                log.warning("%s: sending failed (errcode %s), retrying", self.name, exc.errcode)
            except TokenUnavailable as exc:  # its message says why (e.g. 40164: IP not whitelisted)
                log.warning("%s: sending failed: %s", self.name, exc)
                return False
            except (requests.RequestException, RuntimeError) as exc:
                if attempt == SEND_ATTEMPTS:
                    log.warning("%s: sending failed: %s", self.name, type(exc).__name__)
                    return False
                log.warning("%s: sending failed (%s), retrying", self.name, type(exc).__name__)
            time.sleep(delay)
            delay *= 2
        return False

    def _keep(self, task: asyncio.Task | asyncio.Future) -> None:
        """Hold a background task until it is done (the loop keeps only weak references)."""
        self.background.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        """Finish answers and sends in flight (on shutdown)."""
        if self.background:
            await asyncio.wait(list(self.background), timeout=15)
        self.send_pool.shutdown(wait=False, cancel_futures=True)

    def event_key(self, user: str, create_time: Any, event: str) -> str:
        """De-duplication key of an event (no MsgId): sender + CreateTime as WeChat recommends, plus
        the event and its key (two menu taps in one second are two messages); salted, so no raw id
        is stored."""
        return "e:" + self.dialogue.state.user_key(self.name, f"{user}:{create_time}:{event}")


def required(query: dict[str, str], *names: str) -> list[str]:
    """The named query parameters; Refused if one is missing (the platform always sends them)."""
    try:
        return [query[n] for n in names]
    except KeyError as exc:
        raise Refused(f"missing {exc.args[0]}") from None


def classify(channel: CallbackChannel, parse: Callable[[], BaseMessage | None], quota_message: int,
             quota_event: int) -> Incoming | None:
    """An Incoming for a message parsed by `parse()` (wechatpy): text; subscribe greets; menu
    clicks run their command; other events get no reply; photos, voice, locations … get the
    core's "text only" reply. Malformed for anything wechatpy cannot read."""
    try:
        msg = parse()
        if msg is None:
            raise Malformed("empty body")
        return _classify(channel, msg, quota_message, quota_event)
    except Malformed:
        raise
    except Exception as exc:
        raise Malformed(f"not a WeChat message ({type(exc).__name__})") from None


def _classify(channel: CallbackChannel, msg: BaseMessage, quota_message: int, quota_event: int) -> Incoming | None:
    """classify() of a parsed message."""
    user = msg.source
    if not user:
        raise Malformed("no FromUserName")
    raw_type = (getattr(msg, "_data", {}) or {}).get("MsgType", "")
    if msg.type == "event" or str(raw_type).lower() == "event":
        event = getattr(msg, "event", "") or str((getattr(msg, "_data", {}) or {}).get("Event", "")).lower()
        key = channel.event_key(user, msg.time, f"{event}:{getattr(msg, 'key', '') or ''}")
        if event in ("subscribe", "subscribe_scan"):
            return Incoming(key, user, msg.target, "/start", quota_event)
        if event == "click" and getattr(msg, "key", None) in CLICK_COMMANDS:
            return Incoming(key, user, msg.target, CLICK_COMMANDS[msg.key], quota_event)
        log.debug("%s: event %r needs no reply", channel.name, event)
        return None
    key = f"m:{msg.id}" if msg.id else channel.event_key(user, msg.time, msg.type)
    text = getattr(msg, "content", None) if msg.type == "text" else None
    if text is not None and not isinstance(text, str):
        raise Malformed("Content is not text")
    return Incoming(key, user, msg.target, text or "" if msg.type == "text" else None, quota_message)


class OfficialAccountChannel(CallbackChannel):
    """/wechat: the Official Account in plaintext, compatible or safe mode."""

    name = "wechat"

    def __init__(self, settings: Settings, dialogue: Any, client: Any = None, **kw: Any) -> None:
        """From WECHAT_* settings; `client` defaults to the Official Account API client."""
        client = client or OfficialAccountClient(settings, TokenStore(dialogue.state))
        super().__init__(settings, dialogue, client, **kw)
        self.crypto = (WeChatCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
                       if settings.wechat_aes_key else None)

    def _check(self, query: dict[str, str]) -> tuple[str, str]:
        """The plain signature every callback carries; (timestamp, nonce)."""
        signature, timestamp, nonce = required(query, "signature", "timestamp", "nonce")
        try:
            check_signature(self.settings.wechat_token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Refused("bad signature") from None
        return timestamp, nonce

    def verify_url(self, query: dict[str, str]) -> str:
        """Echo `echostr` back after the signature check."""
        self._check(query)
        return required(query, "echostr")[0]

    def open(self, query: dict[str, str], body: bytes) -> tuple[str, dict]:
        """Check the signature; decrypt when encrypt_type=aes (compatible and safe mode)."""
        timestamp, nonce = self._check(query)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("body is not UTF-8") from None
        if query.get("encrypt_type", "raw") != "aes":
            return text, {"aes": False}
        if self.crypto is None:
            raise Malformed("an encrypted callback, but WECHAT_AES_KEY is not set")
        (msg_signature,) = required(query, "msg_signature")
        try:
            xml = self.crypto.decrypt_message(text, msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Refused("bad msg_signature") from None
        except InvalidAppIdException:
            raise Refused("encrypted for another AppID") from None
        except Exception as exc:  # not XML, no Encrypt, not Base64, bad padding …
            raise Malformed(f"cannot decrypt ({type(exc).__name__})") from None
        return xml, {"aes": True, "timestamp": timestamp, "nonce": nonce}

    def parse(self, xml: str) -> Incoming | None:
        """wechatpy's parser; any failure is a malformed message."""
        return classify(self, lambda: parse_message(xml), QUOTA_AFTER_MESSAGE, QUOTA_AFTER_EVENT)

    def passive(self, incoming: Incoming, text: str, ctx: dict) -> str:
        """A text reply, encrypted in compatible and safe mode (the platform accepts it in both)."""
        document = TextReply(source=incoming.to, target=incoming.user, content=xml_text(text)).render()
        if ctx.get("aes") and self.crypto is not None:
            return self.crypto.encrypt_message(document, ctx["nonce"], ctx["timestamp"])
        return document

    def send(self, user: str, text: str) -> None:
        """客服消息 (customer-service message)."""
        self.client.message.send_text(user, text)
