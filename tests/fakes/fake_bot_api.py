"""A small fake Telegram Bot API server for tests (stdlib only).

The real bot process is pointed at it with ``TELEGRAM_API_BASE_URL=<fake.base_url>``
(``Application.builder().base_url(...)``); python-telegram-bot then sends
``POST /bot<TOKEN>/<method>`` with form-encoded, JSON or multipart bodies.

Typical use from a synchronous pytest test::

    with FakeBotAPI() as api:
        start_bot(env={"TELEGRAM_API_BASE_URL": api.base_url, ...})
        api.wait_for_call("getUpdates")          # the bot is polling
        api.send_text(1001, "/start", first_name="Alice")
        [reply] = api.wait_for(1001)             # next bot message to chat 1001
        api.press_button(1001, reply["message_id"], "yes")
        [edit] = api.wait_for(1001, lambda m: m["method"] == "editMessageText")

Design notes
------------
* One ``threading.Condition`` (over an ``RLock``) guards all state; every state change
  calls ``notify_all`` so long polls and ``wait_*`` helpers wake up immediately.
* Every wait is bounded: long polls are capped at ``MAX_LONG_POLL`` seconds, the
  ``wait_*`` helpers take a timeout, idle keep-alive sockets time out, and ``stop()``
  wakes pending long polls and closes open connections.
* A few real Bot API checks are modelled because they catch real bugs: unknown chat,
  blocked user, empty / too long text, malformed HTML with ``parse_mode=HTML``,
  ``callback_data`` longer than 64 bytes, "message is not modified", editing a message
  that does not exist, answering an unknown callback query, webhook/getUpdates and
  concurrent-getUpdates conflicts (409), and ``editMessageText`` without
  ``reply_markup`` removing the inline keyboard.
* Webhook delivery (``deliver_webhooks``): pending updates are POSTed as Telegram does, with the
  secret token the bot registered, to a list of URLs in turn (round-robin: N workers behind a load
  balancer); a delivery that gets no 2xx (an error status, a refused or dropped connection, a
  timeout) stays pending and is delivered again, to the next URL, after ``retry_delay``. Up to
  ``connections`` deliveries run at once (Telegram's max_connections), one at a time per chat, in
  update_id order, so a chat's updates arrive in order unless a delivery is retried. Each of those
  deliverers keeps its connection to a URL alive between deliveries, as Telegram does.
  ``webhook_log`` lists every attempt.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["FakeBotAPI", "BotAPIError"]

MAX_LONG_POLL = 30.0  # seconds; upper bound for getUpdates' ``timeout``
MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
IDLE_SOCKET_TIMEOUT = 60.0  # keep-alive connections idle longer than this are closed
WEBHOOK_REUSE_IDLE = 2.0  # seconds: a webhook connection idle longer is not used again (uvicorn closes at 5)

# Form/multipart fields that are plain strings; every other field is JSON-decoded when
# possible (PTB JSON-encodes ints, bools, lists and dicts but sends strings verbatim).
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "inline_message_id",
        "url", "secret_token", "ip_address", "action", "language_code", "description",
        "short_description", "name", "title", "emoji", "query", "data",
        "business_connection_id", "message_effect_id", "photo", "document", "sticker",
        "video", "audio", "voice", "animation",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)
_HTML_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "a", "code", "pre", "blockquote", "tg-emoji",
    }
)
_TAG_RE = re.compile(r"<(/?)([A-Za-z][\w-]*)([^<>]*)>")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class BotAPIError(Exception):
    """Raised by method implementations; becomes ``{"ok": false, ...}`` with ``status``."""

    def __init__(self, status: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


# --------------------------------------------------------------------------- helpers


def _decode_value(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    params = {k: _decode_value(k, v) for k, v in parse_qsl(query, keep_blank_values=True)}
    if not body:
        return params
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("JSON body must be an object")
        params.update(decoded)
    elif ctype == "multipart/form-data":
        params.update(_parse_multipart(content_type, body))
    else:  # application/x-www-form-urlencoded (PTB's default) or missing
        for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
            params[key] = _decode_value(key, value)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            params[name] = _decode_value(name, payload.decode("utf-8"))
        else:  # uploaded file: keep metadata only
            params[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(payload),
            }
    return params


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _html_error(text: str) -> str | None:
    """Return Telegram-like parse error for ``parse_mode=HTML`` text, or None if it is ok.

    Conservative: only checks that every ``<`` starts a supported, properly nested tag.
    """
    stack: list[str] = []
    pos = 0
    while (start := text.find("<", pos)) != -1:
        match = _TAG_RE.match(text, start)
        if match is None:
            return f"Unexpected '<' at offset {start}; escape it as &lt;"
        closing, tag, rest = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if tag not in _HTML_TAGS:
            return f'Unsupported start tag "{tag}" at offset {start}'
        if closing:
            if not stack:
                return f'Unmatched end tag "{tag}" at offset {start}'
            if stack[-1] != tag:
                return (
                    f'Unmatched end tag at offset {start}, expected "</{stack[-1]}>", '
                    f'found "</{tag}>"'
                )
            stack.pop()
        elif rest.rstrip().endswith("/"):
            return f'Unsupported self-closing tag "{tag}" at offset {start}'
        else:
            stack.append(tag)
        pos = match.end()
    if stack:
        return f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return None


def _to_int(value: Any, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BotAPIError(400, f"Bad Request: invalid integer value {value!r}") from None


# --------------------------------------------------------------------------- HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeBotAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (or stop() closing sockets) is normal here; stay quiet.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.telegram.org
    timeout = IDLE_SOCKET_TIMEOUT
    # headers and body go out in separate writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK (~40 ms on Linux), which capped a keep-alive connection at ~25 requests/s
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.server.fake._dispatch(
            self.path, self.headers.get("Content-Type", ""), body
        )
        if payload is None:  # injected fault: drop the connection without a response
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


# --------------------------------------------------------------------------- the fake


class FakeBotAPI:
    """Fake Bot API server on 127.0.0.1:<free port>. See the module docstring."""

    _instances = itertools.count()

    def __init__(
        self,
        token: str = "123:TEST",
        *,
        bot_username: str = "ohbot_test_bot",
        bot_first_name: str = "OhBot Test",
        validate_html: bool = True,
    ):
        self.token = token
        self.validate_html = validate_html
        bot_id = token.split(":", 1)[0]
        self.bot_user = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._cond = threading.Condition(threading.RLock())
        # wait_for() waits on its chat's own condition (same lock): a bot message wakes only the
        # waiters of that chat, not every scripted user (50 users would otherwise all wake per message)
        self._chat_conds: dict[int, threading.Condition] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self._stopped = False
        # Bot API state
        self._updates: list[dict] = []  # unconfirmed updates, ascending update_id
        # update ids go on from one fake server to the next in a test session, as a real bot's do
        # across restarts: a bot's durable inbox (bot/storage/inbox.py) rightly drops an id it has seen
        self._next_update_id = 1 + 100_000 * next(FakeBotAPI._instances)
        self._poll_generation = 0
        self._allowed_updates: list[str] | None = None
        self._webhook_url = ""
        self._users: dict[int, dict] = {}
        self._chats: dict[int, dict] = {}
        self._blocked: set[int] = set()
        self._next_message_id: dict[int, int] = defaultdict(lambda: 1)
        self._bot_messages: dict[tuple[int, int], dict] = {}  # current state of bot messages
        self._callback_queries: dict[str, dict] = {}
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._commands: dict[tuple[str, str], list[dict]] = {}
        self._set_my_commands: list[dict] = []
        # observation
        self._sent: dict[int, list[dict]] = defaultdict(list)
        self._cursor: dict[int, int] = defaultdict(int)  # per chat, for wait_for()
        self._calls: list[dict] = []
        self._faults: dict[str, deque[dict]] = defaultdict(deque)
        # webhook delivery (deliver_webhooks)
        self._webhook_secret = ""
        self._targets: list[str] = []
        self._turn = 0
        self._busy_chats: set[int] = set()
        self._in_flight: set[int] = set()
        self._not_before: dict[int, float] = {}
        self._deliverers: list[threading.Thread] = []
        self.webhook_log: list[dict] = []  # {"update_id", "chat", "url", "status" (None: none), "error", "at"}
        self._methods: dict[str, Callable[[dict], Any]] = {
            name.lower(): getattr(self, "_api_" + name)
            for name in (
                "getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo",
                "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
                "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup",
                "deleteMessage", "answerCallbackQuery", "sendChatAction", "close", "logOut",
            )
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        if self._server is not None:
            raise RuntimeError("FakeBotAPI already started")
        self._stopped = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeBotAPI",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake long polls, close connections, join threads (bounded)."""
        if self._server is None:
            return
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            for cond in self._chat_conds.values():
                cond.notify_all()
        self._server.shutdown()
        with self._cond:
            threads = list(self._handler_threads)
        self.close_connections()
        self._server.server_close()
        deadline = time.monotonic() + timeout
        for thread in [self._thread, *threads, *self._deliverers]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        self._thread = None

    def close_connections(self) -> None:
        """Close every open client connection, as a server restart or an idle timeout does to kept-alive ones."""
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ webhook delivery

    def deliver_webhooks(self, urls: list[str], *, connections: int = 40, timeout: float = 10.0,
                         retry_delay: float = 0.3) -> None:
        """Deliver pending updates to `urls` in turn until stop() (see the module docstring)."""
        with self._cond:
            self._targets = list(urls)
            for n in range(connections):
                thread = threading.Thread(target=self._deliver_loop, args=(timeout, retry_delay),
                                          name=f"FakeBotAPI-webhook-{n}", daemon=True)
                self._deliverers.append(thread)
                thread.start()

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Change the URLs deliveries go to (a worker removed from the load balancer)."""
        with self._cond:
            self._targets = list(urls)

    def wait_delivered(self, timeout: float = 60.0) -> None:
        """Until every update so far was confirmed with a 2xx; AssertionError with what is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._updates:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self._updates)} updates still undelivered, e.g. "
                                         f"{[u['update_id'] for u in self._updates[:10]]}")
                self._cond.wait(min(remaining, 0.5))

    @staticmethod
    def _update_chat(update: dict) -> int:
        """The chat an update belongs to (its sender's for a button press without a message)."""
        if "message" in update:
            return int(update["message"]["chat"]["id"])
        query = update.get("callback_query") or {}
        message = query.get("message") or {}
        return int((message.get("chat") or query.get("from") or {}).get("id", 0))

    def _deliver_loop(self, timeout: float, retry_delay: float) -> None:
        """One of `connections` delivery threads. Like Telegram (and a load balancer keeping its
        upstream connections alive), it keeps one connection per URL open between deliveries; one
        idle longer than WEBHOOK_REUSE_IDLE (less than uvicorn's 5 s keep-alive) is replaced, and
        one that failed is closed: the next delivery connects anew."""
        import http.client
        from urllib.parse import urlsplit

        kept: dict[str, tuple[http.client.HTTPConnection, float]] = {}
        try:
            while True:
                with self._cond:
                    picked = None
                    while not self._stopped and (picked := self._next_delivery_in_order()) is None:
                        self._cond.wait(0.05)
                    if self._stopped or picked is None:
                        return
                    update, url = picked
                    secret = self._webhook_secret
                status, error = None, ""
                conn, used = kept.pop(url, (None, 0.0))
                if conn is not None and time.monotonic() - used > WEBHOOK_REUSE_IDLE:
                    conn.close()
                    conn = None
                parts = urlsplit(url)
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
                    conn.request("POST", parts.path or "/", body=json.dumps(update).encode(), headers={
                        "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
                    with conn.getresponse() as response:
                        response.read()
                        status = response.status
                        if not response.will_close:
                            kept[url] = (conn, time.monotonic())
                except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timed out
                    error = f"{type(exc).__name__}: {exc}"
                if conn is not None and kept.get(url, (None,))[0] is not conn:
                    conn.close()
                with self._cond:
                    uid = update["update_id"]
                    self.webhook_log.append({"update_id": uid, "chat": self._update_chat(update), "url": url,
                                             "status": status, "error": error, "at": time.monotonic()})
                    self._in_flight.discard(uid)
                    self._busy_chats.discard(self._update_chat(update))
                    if status is not None and 200 <= status < 300:
                        self._updates = [u for u in self._updates if u["update_id"] != uid]
                        self._not_before.pop(uid, None)
                    else:
                        self._not_before[uid] = time.monotonic() + retry_delay
                    self._cond.notify_all()
        finally:
            for conn, _ in kept.values():
                conn.close()

    def _next_delivery_in_order(self) -> tuple[dict, str] | None:
        """Under the lock: the oldest pending update of a chat with no delivery running, if its
        retry time has come (a chat's later updates wait behind it), marked busy, with its URL."""
        if not self._targets:
            return None
        now = time.monotonic()
        blocked: set[int] = set(self._busy_chats)
        for update in self._updates:
            uid = update["update_id"]
            chat = self._update_chat(update)
            if chat in blocked:
                continue
            blocked.add(chat)  # only a chat's oldest pending update may go
            if self._not_before.get(uid, 0) > now:
                continue
            self._in_flight.add(uid)
            self._busy_chats.add(chat)
            url = self._targets[self._turn % len(self._targets)]
            self._turn += 1
            return copy.deepcopy(update), url
        return None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeBotAPI is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """Value for ``Application.builder().base_url(...)`` / TELEGRAM_API_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/bot"

    # ------------------------------------------------------------------ scripted users

    def send_text(
        self, user_id: int, text: str, first_name: str = "User", **message_fields: Any
    ) -> dict:
        """A user writes ``text`` in their private chat; returns the queued update.

        Text starting with "/" gets a ``bot_command`` entity, so CommandHandler matches.
        """
        fields: dict[str, Any] = {"text": text, **message_fields}
        if text.startswith("/") and "entities" not in fields:
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        return self._user_message(user_id, first_name, fields)

    def send_sticker(self, user_id: int, first_name: str = "User", emoji: str = "👍") -> dict:
        file_id, unique_id = self._new_file_id("sticker")
        sticker = {
            "file_id": file_id, "file_unique_id": unique_id, "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
            "emoji": emoji, "file_size": 20480,
        }
        return self._user_message(user_id, first_name, {"sticker": sticker})

    def send_photo(
        self, user_id: int, first_name: str = "User", caption: str | None = None
    ) -> dict:
        file_id, unique_id = self._new_file_id("photo")
        photo = [
            {"file_id": f"{file_id}_{w}", "file_unique_id": f"{unique_id}{w}",
             "width": w, "height": w * 3 // 4, "file_size": w * 100}
            for w in (90, 320, 800)
        ]
        fields: dict[str, Any] = {"photo": photo}
        if caption is not None:
            fields["caption"] = caption
        return self._user_message(user_id, first_name, fields)

    def press_button(
        self, user_id: int, message_id: int | None, data: str, *, strict: bool = True
    ) -> dict:
        """The user presses the inline button with ``callback_data == data``.

        ``message_id`` is the bot's message carrying the keyboard (None: the latest bot
        message in that chat that has an inline keyboard). With ``strict`` the button
        must currently exist on that message, as it would for a real user.
        """
        with self._cond:
            chat_id = int(user_id)
            if message_id is None:
                with_keyboard = [
                    m for (c, _), m in self._bot_messages.items()
                    if c == chat_id and "reply_markup" in m
                ]
                if not with_keyboard:
                    raise ValueError(f"no bot message with an inline keyboard in chat {chat_id}")
                message_id = max(m["message_id"] for m in with_keyboard)
            message = self._bot_messages.get((chat_id, int(message_id)))
            if message is None:
                raise ValueError(f"bot message {message_id} not found in chat {chat_id}")
            if strict:
                buttons = [
                    button.get("callback_data")
                    for row in message.get("reply_markup", {}).get("inline_keyboard", [])
                    for button in row
                ]
                if data not in buttons:
                    raise ValueError(
                        f"message {message_id} in chat {chat_id} has no button with "
                        f"callback_data={data!r}; available: {buttons}"
                    )
            user = self._users.get(chat_id) or self._ensure_user(chat_id, "User")
            query_id = str(next(self._callback_ids) * 1000 + chat_id % 1000)
            self._callback_queries[query_id] = {"answered": False, "chat_id": chat_id}
            query = {
                "id": query_id,
                "from": user,
                "message": copy.deepcopy(message),
                "chat_instance": f"ci{chat_id}",
                "data": data,
            }
            return self._enqueue({"callback_query": query})

    def send_raw_update(self, update: dict) -> dict:
        """Queue an arbitrary update (``update_id`` is assigned if missing)."""
        with self._cond:
            return self._enqueue(copy.deepcopy(update))

    def block_user(self, user_id: int, blocked: bool = True) -> None:
        """Make sends to this user fail with 403 "bot was blocked by the user"."""
        with self._cond:
            (self._blocked.add if blocked else self._blocked.discard)(int(user_id))

    # ------------------------------------------------------------------ observation

    def messages(self, chat_id: int) -> list[dict]:
        """Everything the bot sent to / edited in ``chat_id``, in order.

        Each record: method, chat_id, message_id, text (caption for media; current text
        for editMessageReplyMarkup), parse_mode, reply_markup, params, time.
        """
        with self._cond:
            return copy.deepcopy(self._sent.get(int(chat_id), []))

    def wait_for(
        self,
        chat_id: int,
        predicate: Callable[[dict], bool] | str | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[dict]:
        """Block until ``count`` new bot messages to ``chat_id`` match ``predicate``.

        "New" means after the last message returned by a previous ``wait_for`` for this
        chat, so a reply that arrived before the call is not missed. A str predicate
        means "substring of text". Raises AssertionError (listing what was received and
        recent failed calls) on timeout.
        """
        if isinstance(predicate, str):
            needle = predicate
            predicate = lambda m: needle in (m.get("text") or "")  # noqa: E731
        chat_id = int(chat_id)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                records = self._sent.get(chat_id, [])
                start = self._cursor[chat_id]
                matched: list[int] = []
                for index in range(start, len(records)):
                    if predicate is None or predicate(records[index]):  # records are never mutated
                        matched.append(index)
                        if len(matched) == count:
                            self._cursor[chat_id] = index + 1
                            return [dict(records[i]) for i in matched]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    raise AssertionError(
                        self._describe_timeout(chat_id, start, len(matched), count, timeout)
                    )
                self._chat_cond(chat_id).wait(remaining)

    def calls(self, method: str | None = None) -> list[dict]:
        """Log of all requests: method, params, time, status (None while in flight,
        "dropped" for dropped connections)."""
        with self._cond:
            return copy.deepcopy(
                [c for c in self._calls if method is None or c["method"].lower() == method.lower()]
            )

    def wait_for_call(self, method: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Block until ``method`` has been requested at least ``count`` times in total."""
        self.wait_until(
            lambda: len(self.calls(method)) >= count,
            timeout,
            f"{count} call(s) to {method}",
        )
        return self.calls(method)

    def wait_until(
        self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        """Block until ``condition()`` (evaluated under the fake's lock) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    methods = [f"{c['method']}->{c['status']}" for c in self._calls[-15:]]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; last calls: {methods}"
                    )
                self._cond.wait(remaining)

    @property
    def set_my_commands(self) -> list[dict]:
        """Record of successful setMyCommands requests: commands, scope, language_code."""
        with self._cond:
            return copy.deepcopy(self._set_my_commands)

    def my_commands(self, scope: dict | None = None, language_code: str = "") -> list[dict]:
        """Current command list for a scope/language (as getMyCommands would return)."""
        with self._cond:
            return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    def pending_updates(self) -> list[dict]:
        """Updates queued but not yet confirmed by a getUpdates offset."""
        with self._cond:
            return copy.deepcopy(self._updates)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        times: int = 1,
        status: int = 502,
        description: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` requests to ``method`` get an HTTP error response.

        ``retry_after`` adds ``parameters.retry_after`` (use with status=429 → RetryAfter).
        """
        if description is None:
            try:
                description = HTTPStatus(status).phrase
            except ValueError:
                description = "Error"
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
        fault = {"kind": "http", "status": status, "description": description}
        if retry_after is not None:
            fault["parameters"] = {"retry_after": retry_after}
        with self._cond:
            self._faults[method.lower()].extend(dict(fault) for _ in range(times))

    def drop_connection_next(
        self, method: str, times: int = 1, *, after_processing: bool = False
    ) -> None:
        """The next ``times`` requests to ``method`` have their socket closed with no
        response. With ``after_processing`` the request takes effect first (e.g. the
        message *is* sent), modelling a lost response."""
        with self._cond:
            self._faults[method.lower()].extend(
                {"kind": "drop", "after_processing": after_processing} for _ in range(times)
            )

    # ------------------------------------------------------------------ internals: HTTP

    def _track_connection(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            if add:
                self._connections.add(conn)
                self._handler_threads.add(threading.current_thread())
            else:
                self._connections.discard(conn)
                self._handler_threads.discard(threading.current_thread())

    def _dispatch(self, path: str, content_type: str, body: bytes) -> tuple[int, dict | None]:
        """Handle one request; returns (status, payload) or (0, None) to drop the socket."""
        url = urlsplit(path)
        prefix, _, method = url.path.lstrip("/").partition("/")
        if not prefix.startswith("bot") or not method or "/" in method:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            params = _parse_params(url.query, content_type, body)
        except (ValueError, UnicodeDecodeError) as exc:
            params, parse_error = {}, exc
        else:
            parse_error = None
        with self._cond:
            call = {"method": method, "params": params, "time": time.time(), "status": None}
            self._calls.append(call)
            self._cond.notify_all()
            status, payload = self._respond(prefix[3:], method, params, parse_error)
            call["status"] = status if payload is not None else "dropped"
            if payload is not None and not payload["ok"]:
                call["error"] = payload["description"]
            self._cond.notify_all()
            return status, payload

    def _respond(
        self, token: str, method: str, params: dict, parse_error: Exception | None
    ) -> tuple[int, dict | None]:
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        faults = self._faults.get(method.lower())
        fault = faults.popleft() if faults else None
        if fault and fault["kind"] == "drop" and not fault["after_processing"]:
            return 0, None
        if fault and fault["kind"] == "http":
            payload = {
                "ok": False, "error_code": fault["status"], "description": fault["description"]
            }
            if "parameters" in fault:
                payload["parameters"] = fault["parameters"]
            return fault["status"], payload
        implementation = self._methods.get(method.lower())
        try:
            if parse_error is not None:
                raise BotAPIError(400, f"Bad Request: can't parse request: {parse_error}")
            if implementation is None:
                raise BotAPIError(404, "Not Found: method not found")
            result = implementation(params)
        except BotAPIError as exc:
            payload = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                payload["parameters"] = exc.parameters
            return exc.status, payload
        if fault:  # drop after processing
            return 0, None
        return 200, {"ok": True, "result": result}

    def _describe_timeout(
        self, chat_id: int, start: int, matched: int, count: int, timeout: float
    ) -> str:
        fresh = [
            {k: r[k] for k in ("method", "message_id", "text", "reply_markup")}
            for r in self._sent.get(chat_id, [])[start:]
        ]
        failed = [
            f"{c['method']} -> {c['status']} {c.get('error', '')}".strip()
            for c in self._calls
            if c["status"] not in (None, 200)
        ][-10:]
        return (
            f"timed out after {timeout}s waiting for {count} bot message(s) to chat "
            f"{chat_id}; {matched} matched. New messages since last wait_for: {fresh}. "
            f"Failed calls: {failed}. Pending updates: {len(self._updates)}"
        )

    # ------------------------------------------------------------------ internals: state

    def _ensure_user(self, user_id: int, first_name: str) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        self._users[user_id] = user
        self._chats[user_id] = {"id": user_id, "type": "private", "first_name": first_name}
        return user

    def _user_message(self, user_id: int, first_name: str, fields: dict) -> dict:
        with self._cond:
            chat_id = int(user_id)
            user = self._ensure_user(chat_id, first_name)
            message = {
                "message_id": self._new_message_id(chat_id),
                "from": user,
                "chat": dict(self._chats[chat_id]),
                "date": int(time.time()),
                **fields,
            }
            return self._enqueue({"message": message})

    def _enqueue(self, update: dict) -> dict:
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        self._updates.append(update)
        self._updates.sort(key=lambda u: u["update_id"])
        self._cond.notify_all()
        return copy.deepcopy(update)

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] += 1
        return message_id

    def _new_file_id(self, kind: str) -> tuple[str, str]:
        n = next(self._file_ids)
        return f"fake-{kind}-{n}", f"u{kind[:2]}{n}"

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _chat(self, params: dict) -> int:
        """Resolve and check ``chat_id`` for sending to a chat."""
        value = params.get("chat_id")
        if value in (None, ""):
            raise BotAPIError(400, "Bad Request: chat_id is empty")
        try:
            chat_id = int(value)
        except (TypeError, ValueError):
            raise BotAPIError(400, "Bad Request: chat not found") from None
        if chat_id not in self._chats:
            raise BotAPIError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise BotAPIError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def _check_text(self, text: Any, parse_mode: Any, *, caption: bool = False) -> str:
        if text is None or not str(text).strip():
            raise BotAPIError(400, "Bad Request: message text is empty")
        text = str(text)
        limit = 1024 if caption else MAX_MESSAGE_LENGTH
        if _utf16_len(text) > limit:
            raise BotAPIError(
                400, f"Bad Request: message {'caption ' if caption else ''}is too long"
            )
        if parse_mode:
            mode = str(parse_mode).lower()
            if mode not in ("html", "markdown", "markdownv2"):
                raise BotAPIError(400, "Bad Request: unsupported parse_mode")
            if mode == "html" and self.validate_html:
                error = _html_error(text)
                if error:
                    raise BotAPIError(400, f"Bad Request: can't parse entities: {error}")
        return text

    @staticmethod
    def _check_markup(markup: Any) -> dict | None:
        """Validate reply_markup; return the part echoed in Message (inline keyboards)."""
        if markup in (None, ""):
            return None
        if not isinstance(markup, dict):
            raise BotAPIError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            return None  # reply keyboards etc. are accepted but not echoed
        for row in keyboard:
            for button in row:
                if not button.get("text"):
                    raise BotAPIError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                size = len(str(data).encode("utf-8")) if data is not None else 1
                if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                    raise BotAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
        return {"inline_keyboard": keyboard}

    def _chat_cond(self, chat_id: int) -> threading.Condition:
        cond = self._chat_conds.get(chat_id)
        if cond is None:
            cond = self._chat_conds[chat_id] = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
        return cond

    def _record(self, method: str, message: dict, params: dict) -> None:
        chat_id = message["chat"]["id"]
        self._sent[chat_id].append(
            {
                "method": method,
                "chat_id": chat_id,
                "message_id": message["message_id"],
                "text": message.get("text", message.get("caption")),
                "parse_mode": params.get("parse_mode"),
                "reply_markup": params.get("reply_markup") or None,
                "params": params,  # parsed from this request alone, never shared
                "time": time.time(),
            }
        )
        self._cond.notify_all()
        self._chat_cond(chat_id).notify_all()

    def _new_bot_message(self, method: str, params: dict, chat_id: int, fields: dict) -> dict:
        markup = self._check_markup(params.get("reply_markup"))
        message = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": dict(self._chats[chat_id]),
            "date": int(time.time()),
            **fields,
        }
        if markup:
            message["reply_markup"] = markup
        self._bot_messages[(chat_id, message["message_id"])] = message
        self._record(method, message, params)
        return copy.deepcopy(message)

    def _message_to_edit(self, params: dict) -> dict | None:
        """The bot message addressed by chat_id+message_id; None for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id = self._chat(params)
        message_id = _to_int(params.get("message_id"))
        if message_id is None:
            raise BotAPIError(400, "Bad Request: message identifier is not specified")
        message = self._bot_messages.get((chat_id, message_id))
        if message is None:
            raise BotAPIError(400, "Bad Request: message to edit not found")
        return message

    # ------------------------------------------------------------------ Bot API methods

    def _api_getMe(self, params: dict) -> dict:
        return dict(self.bot_user)

    def _api_getUpdates(self, params: dict) -> list[dict]:
        if self._webhook_url:
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _to_int(params.get("offset"), 0)
        limit = min(max(_to_int(params.get("limit"), 100), 1), 100)
        try:
            timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_LONG_POLL)
        except (TypeError, ValueError):
            raise BotAPIError(400, "Bad Request: invalid timeout") from None
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"]) or None
        # offset semantics: confirm (drop) everything before it; negative = keep last N
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # a newer getUpdates request terminates an older waiting one (409), like Telegram
        self._poll_generation += 1
        generation = self._poll_generation
        self._cond.notify_all()
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise BotAPIError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._allowed_updates:  # Telegram never stores updates of other types
                self._updates = [
                    u for u in self._updates
                    if next(k for k in u if k != "update_id") in self._allowed_updates
                ]
            remaining = deadline - time.monotonic()
            if self._updates or self._stopped or remaining <= 0:
                return copy.deepcopy(self._updates[:limit])
            self._cond.wait(remaining)

    def _api_deleteWebhook(self, params: dict) -> bool:
        self._webhook_url = ""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_setWebhook(self, params: dict) -> bool:
        self._webhook_url = str(params.get("url") or "")
        self._webhook_secret = str(params.get("secret_token") or "")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_getWebhookInfo(self, params: dict) -> dict:
        return {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    def _api_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise BotAPIError(400, "Bad Request: commands must be a list of at most 100 items")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not _COMMAND_RE.match(str(name)):
                raise BotAPIError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise BotAPIError(400, "Bad Request: command description is empty or too long")
        scope, language = params.get("scope"), params.get("language_code", "")
        self._commands[self._commands_key(scope, language)] = copy.deepcopy(commands)
        self._set_my_commands.append(
            {"commands": copy.deepcopy(commands), "scope": scope, "language_code": language}
        )
        return True

    def _api_getMyCommands(self, params: dict) -> list[dict]:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    def _api_deleteMyCommands(self, params: dict) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands.pop(key, None)
        return True

    def _api_sendMessage(self, params: dict) -> dict:
        chat_id = self._chat(params)
        text = self._check_text(params.get("text"), params.get("parse_mode"))
        return self._new_bot_message("sendMessage", params, chat_id, {"text": text})

    def _send_media(self, method: str, field: str, params: dict) -> dict:
        chat_id = self._chat(params)
        if params.get(field) in (None, ""):
            raise BotAPIError(400, f"Bad Request: there is no {field} in the request")
        file_id, unique_id = self._new_file_id(field)
        if field == "photo":
            media: Any = [
                {"file_id": file_id, "file_unique_id": unique_id, "width": 800, "height": 600}
            ]
        else:
            upload = params[field]
            name = upload.get("filename") if isinstance(upload, dict) else None
            media = {"file_id": file_id, "file_unique_id": unique_id, "file_name": name or "file"}
        fields: dict[str, Any] = {field: media}
        if params.get("caption"):
            fields["caption"] = self._check_text(
                params["caption"], params.get("parse_mode"), caption=True
            )
        return self._new_bot_message(method, params, chat_id, fields)

    def _api_sendPhoto(self, params: dict) -> dict:
        return self._send_media("sendPhoto", "photo", params)

    def _api_sendDocument(self, params: dict) -> dict:
        return self._send_media("sendDocument", "document", params)

    def _api_editMessageText(self, params: dict) -> dict | bool:
        text = self._check_text(params.get("text"), params.get("parse_mode"))
        markup = self._check_markup(params.get("reply_markup"))
        message = self._message_to_edit(params)
        if message is None:
            return True
        if "text" not in message:
            raise BotAPIError(400, "Bad Request: there is no text in the message to edit")
        if message["text"] == text and message.get("reply_markup") == markup:
            raise BotAPIError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        message["text"] = text
        message.pop("reply_markup", None)  # like Telegram: no reply_markup removes it
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        self._record("editMessageText", message, params)
        return copy.deepcopy(message)

    def _api_editMessageReplyMarkup(self, params: dict) -> dict | bool:
        markup = self._check_markup(params.get("reply_markup"))
        message = self._message_to_edit(params)
        if message is None:
            return True
        if message.get("reply_markup") == markup:
            raise BotAPIError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        self._record("editMessageReplyMarkup", message, params)
        return copy.deepcopy(message)

    def _api_deleteMessage(self, params: dict) -> bool:
        chat_id = self._chat(params)
        key = (chat_id, _to_int(params.get("message_id"), 0))
        if self._bot_messages.pop(key, None) is None:
            raise BotAPIError(400, "Bad Request: message to delete not found")
        return True

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        query = self._callback_queries.get(str(params.get("callback_query_id", "")))
        if query is None or query["answered"]:
            raise BotAPIError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        query.update(answered=True, text=params.get("text"), show_alert=params.get("show_alert"))
        return True

    def _api_sendChatAction(self, params: dict) -> bool:
        self._chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise BotAPIError(400, "Bad Request: wrong parameter action in request")
        return True

    def _api_close(self, params: dict) -> bool:
        return True

    def _api_logOut(self, params: dict) -> bool:
        return True
