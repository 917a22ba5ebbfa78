"""Telegram channel: a thin adapter between python-telegram-bot (v22) and bot.dialogue.

Everything the bot *says* comes from ``Dialogue.handle``; this module only

* maps Telegram updates to ``dialogue.Message`` (text, commands, stickers, photos, button presses),
* runs ``Dialogue.handle`` in a worker thread (it is synchronous: CPU + SQLite),
* sends each ``Reply`` as plain text (no parse_mode, so nothing needs escaping), split at Telegram's
  4096-character limit, with its inline keyboard on the last part,
* keeps each user's updates in order (one asyncio.Lock per user) while different users run
  concurrently (``concurrent_updates(True)``),
* limits each user to ``RATE_LIMIT`` messages (and three times as many button presses) per
  ``RATE_WINDOW`` seconds: one polite notice, then silence until the window has passed,
* retries sends on network errors with exponential back-off and honours RetryAfter (flood control),
* logs one line per Bot API error (no tracebacks for expected network trouble) and never lets the
  bot token reach the logs.

Only private chats are served: answers depend on the sender's stored profile, so answering in a
group would show one member's profile-dependent answers to everyone.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import time
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, TypeHandler, filters

from bot.channels.aiohttp_request import AiohttpRequest
from bot.channels.split import split_parts
from bot.channels.sync_request import SyncRequest
from bot.config import TELEGRAM_CONFLICT_SECONDS, Settings
from bot.dialogue.core import COMMANDS, Message, Reply
from bot.errors import ChannelError, ConfigError, DatabaseUnavailable
from bot.storage.inbox import STALE_AFTER, TelegramInbox

if TYPE_CHECKING:
    from bot.storage.state import User

log = logging.getLogger("ohbot.telegram")
T = TypeVar("T")

MAX_TEXT = 4096  # Telegram's limit, counted in UTF-16 code units
MAX_CALLBACK_BYTES = 64
RATE_LIMIT = 20  # messages (and button presses) per user ...
RATE_WINDOW = 60.0  # ... per this many seconds
BUTTON_RATE_FACTOR = 3  # button presses: three times as many
SEND_ATTEMPTS = 6  # first try + 5 retries: 0.5 + 1 + 2 + 4 + 8 s of back-off
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
READ_TIMEOUT = 20.0  # seconds a Bot API request waits for the answer (getUpdates: see build_application)
CONNECT_TIMEOUT = 10.0  # seconds to connect to the Bot API
APOLOGY = "抱歉，处理你的消息时出错了，请稍后再试。"
RATE_NOTICE = "你发消息太快了，请稍等一分钟再发。"
REJECTED_STOP_DELAY = 0.5  # seconds
LOCK_POLL = 0.01  # seconds between tries for a user's lock held by another worker
SHARED_HANDLING = 4  # updates a webhook worker handles at once (each holds a pooled connection: 5 + 5)
BUTTONS_ONLY = "请选择："  # Telegram rejects empty text; used if a reply has buttons but no text


# --------------------------------------------------------------------------- pure helpers


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The largest n such that text[:n] is at most `limit` UTF-16 code units."""
    n = min(len(text), limit)
    while (excess := utf16_len(text[:n]) - limit) > 0:
        n -= (excess + 1) // 2  # a character is one or two code units: never overshoots by more than one
    return max(n, 1)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` UTF-16 units (see `split_parts`); blank parts are dropped."""
    return split_parts(text, limit, utf16_len, _fit)


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    rows = []
    for row in reply.buttons:
        buttons = []
        for b in row:
            if not b.label or not 1 <= len(b.data.encode("utf-8")) <= MAX_CALLBACK_BYTES:
                log.warning("dropping invalid button %r (callback data must be 1-64 bytes)", b.label)
                continue
            buttons.append(InlineKeyboardButton(b.label, callback_data=b.data))
        if buttons:
            rows.append(buttons)
    return InlineKeyboardMarkup(rows) if rows else None


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # v22 warns about int vs timedelta; either is fine here
        warnings.simplefilter("ignore")
        return _seconds(exc.retry_after)


class RateLimiter:
    """Sliding window per user: `limit` events per `window` seconds. `check` answers
    "ok" (handle it), "notice" (first refusal: say so once) or "drop" (stay silent)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[Any, deque[float]] = {}
        self._noticed: set[Any] = set()
        self._checks = 0

    def check(self, key: Any) -> str:
        now = self.clock()
        self._checks += 1
        if self._checks % 1000 == 0:
            self._prune(now)
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) < self.limit:
            events.append(now)
            self._noticed.discard(key)
            return "ok"
        if key in self._noticed:
            return "drop"
        self._noticed.add(key)
        return "notice"

    def _prune(self, now: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - self.window]:
            del self._events[key]
            self._noticed.discard(key)


class KeyedLocks:
    """One asyncio.Lock per key, removed when nobody holds or waits for it. Waiters are served
    first come, first served, so one user's updates are handled in the order they arrived."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Any) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class ConflictWatch:
    """409 Conflict from getUpdates, as a run: conflicts each less than `gap` seconds after the
    previous one. `note()` is true once a run has lasted `seconds`: another process is polling with
    this token, and answering alongside it would answer users twice."""

    def __init__(self, seconds: float = TELEGRAM_CONFLICT_SECONDS, gap: float = 45.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.gap, self.clock = seconds, gap, clock
        self.first: float | None = None
        self.last = 0.0

    def note(self) -> bool:
        """Record one conflict; whether the run of conflicts is now persistent."""
        now = self.clock()
        if self.first is None or now - self.last > self.gap:
            self.first = now
        self.last = now
        return now - self.first >= self.seconds


# --------------------------------------------------------------------------- logging


class TokenFilter(logging.Filter):
    """Replaces the bot token with "<token>" in a record's message and traceback."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            message = str(record.msg)
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        if record.stack_info and self.token in record.stack_info:
            record.stack_info = record.stack_info.replace(self.token, "<token>")
        return True


class QuietInvalidToken(logging.Filter):
    """PTB's own records of Bot API errors in one line. It logs InvalidToken with a traceback as its
    polling ends (retry loop, final getUpdates): `TelegramChannel.token_rejected` says it in one line,
    so those records are dropped. Any other TelegramError's traceback (e.g. the 409 of the last
    getUpdates while stopping) becomes its name and message. Put before TokenFilter, which then masks
    the token in the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InvalidToken):
            return False
        if isinstance(error, TelegramError):
            record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", None
            record.exc_info, record.exc_text = None, None
        return True


def setup_logging(token: str | None) -> None:
    """Plain console logging if nothing is configured; quiet HTTP loggers (their INFO lines carry
    request URLs, which contain the token); the token filter on every root handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(max(logging.getLogger("telegram").getEffectiveLevel(), logging.INFO))
    logging.captureWarnings(True)  # warnings go through the handlers (and the filter) too
    for handler in root.handlers:
        if not any(isinstance(f, QuietInvalidToken) for f in handler.filters):
            handler.filters.insert(0, QuietInvalidToken())  # before TokenFilter, which masks its line
    if token:
        for handler in root.handlers:
            if not any(isinstance(f, TokenFilter) and f.token == token for f in handler.filters):
                handler.addFilter(TokenFilter(token))


# --------------------------------------------------------------------------- the durable inbox


class InboxQueue(asyncio.Queue):
    """PTB's update queue, which every update enters through (polling, PTB's webhook server and `ohbot
    serve`'s /telegram): `put` first records the update in the durable inbox (bot/storage/inbox.py),
    and only then returns, so PTB confirms an update to Telegram (next getUpdates offset, or the
    webhook's 200) only once it is on disk. An update_id seen before is dropped, not handled twice."""

    def __init__(self, inbox: TelegramInbox) -> None:
        super().__init__()
        self.inbox = inbox

    async def put(self, item: Any) -> None:
        if isinstance(item, Update):
            payload = json.dumps(item.to_dict())  # ASCII: a lone surrogate in a text survives the database
            if not await asyncio.to_thread(self.inbox.record, item.update_id, payload):
                log.info("update %d was received before: not handled again", item.update_id)
                return
        await super().put(item)


def open_inbox(settings: Settings, dialogue: Any) -> TelegramInbox:
    """The inbox in the dialogue's state database (its engine: SQLite or PostgreSQL)."""
    return TelegramInbox(dialogue.state.engine)


# --------------------------------------------------------------------------- webhook updates


@dataclass(frozen=True, slots=True)
class WebUser:
    """A webhook update's sender (Telegram's User): its id."""
    id: int


@dataclass(frozen=True, slots=True)
class WebChat:
    """A webhook update's chat: its id and type ("private", "group", …)."""
    id: int
    type: str


@dataclass(frozen=True, slots=True)
class WebMessage:
    """A webhook update's message: its text (None for a sticker, a photo …) and chat."""
    text: str | None
    chat: WebChat

    @property
    def chat_id(self) -> int:
        return self.chat.id


@dataclass(frozen=True, slots=True)
class WebCallback:
    """A webhook update's button press: the query's id (to stop the spinner) and the button's data."""
    id: str
    data: str | None


@dataclass(frozen=True, slots=True)
class WebUpdate:
    """The fields of a webhook update that `TelegramChannel.handle_update` reads, with python-telegram-bot's
    names (`message`, `callback_query`, `effective_user`, `effective_chat`), taken from the JSON
    without building PTB's object tree: `Update.de_json` cost a webhook worker a tenth of its CPU
    per update (issue #14). Any other kind of update has neither a message nor a button press."""
    update_id: int
    message: WebMessage | None = None
    callback_query: WebCallback | None = None
    effective_user: WebUser | None = None
    effective_chat: WebChat | None = None


def _web_chat(data: Any) -> WebChat:
    return WebChat(_int(data["id"]), str(data["type"]))


def _web_user(data: Any) -> WebUser | None:
    return WebUser(_int(data["id"])) if data else None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def web_update(data: Any) -> WebUpdate:
    """A Telegram update (the webhook's JSON body) as a `WebUpdate`; TypeError, KeyError or
    ValueError for a body that is no update (the route answers 400)."""
    if not isinstance(data, dict):
        raise TypeError("an update is a JSON object")
    update_id = _int(data["update_id"])
    if isinstance(message := data.get("message"), dict):
        text = message.get("text")
        chat = _web_chat(message["chat"])
        return WebUpdate(update_id, message=WebMessage(text if isinstance(text, str) else None, chat),
                         effective_user=_web_user(message.get("from")), effective_chat=chat)
    if isinstance(query := data.get("callback_query"), dict):
        button = query.get("data")
        shown = query.get("message")
        return WebUpdate(update_id, callback_query=WebCallback(str(query["id"]), button if isinstance(button, str) else None),
                         effective_user=_web_user(query["from"]),
                         effective_chat=_web_chat(shown["chat"]) if isinstance(shown, dict) and "chat" in shown else None)
    return WebUpdate(update_id)


# --------------------------------------------------------------------------- the channel


class TelegramChannel:
    """The update handlers; one instance per Application."""

    def __init__(self, dialogue: Any, settings: Settings, rate_limit: int = RATE_LIMIT,
                 rate_window: float = RATE_WINDOW, inbox: TelegramInbox | None = None) -> None:
        self.dialogue = dialogue
        self.inbox = inbox
        self.replay_after = 0.0  # seconds: replay every unhandled update at start (ohbot serve: STALE_AFTER)
        self.settings = settings
        self.limiter = RateLimiter(rate_limit, rate_window)
        # button presses have their own, looser budget: the employer self-check alone can take
        # twenty quick taps, and the buttons on offer are the bot's own
        self.button_limiter = RateLimiter(rate_limit * BUTTON_RATE_FACTOR, rate_window)
        self.locks = KeyedLocks()
        self.api: SyncRequest | None = None  # webhook workers send from their worker threads (`turn_now`)
        # webhook workers hold one pooled connection per user being handled (the user's lock): at
        # most this many at once, so the dialogue's own queries always find a free connection
        self.handling = asyncio.Semaphore(SHARED_HANDLING)
        self.rejected: str | None = None  # set when the Bot API refused the token (wrong or revoked)
        self.stop: Callable[[], None] | None = None  # ends the run (set by `run`; None under `ohbot serve`)
        self.conflicts = ConflictWatch()
        self.stopped_by_conflict = False

    def token_rejected(self, status: int) -> None:
        """The Bot API answered 401/404 (PTB: InvalidToken): the token is wrong or was revoked. Logged
        once; under `ohbot telegram` the process then stops (and exits 2) instead of living on
        without polling."""
        if self.rejected is None:
            self.rejected = f"HTTP {status}"
            log.error("Telegram rejected the bot token (HTTP %d): it is wrong or was revoked", status)
        if self.stop is not None:  # a moment later: PTB's polling task first ends on the InvalidToken it raises
            asyncio.get_running_loop().call_later(REJECTED_STOP_DELAY, self.stop)

    def on_polling_error(self, error: TelegramError) -> None:
        """One line per failed getUpdates (PTB retries with growing pauses, up to 30 s); must not raise.
        409 Conflict for TELEGRAM_CONFLICT_SECONDS (another process polls with this token) ends the run."""
        if isinstance(error, Conflict) and self.conflicts.note():
            if not self.stopped_by_conflict:
                log.error("getUpdates has answered 409 Conflict for %.0f s: another process is polling with this "
                          "bot token; stopping", self.conflicts.seconds)
                self.stopped_by_conflict = True
                if self.stop is not None:
                    self.stop()
            return
        log.warning("getUpdates failed: %s: %s; retrying", type(error).__name__, error)

    def user_key(self, user_id: int) -> str:
        return self.dialogue.state.user_key("telegram", user_id)

    # ---- handlers --------------------------------------------------------------------------
    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.message(update, context.bot)

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.callback(update, context.bot)

    async def message(self, update: Update | WebUpdate, bot: Any, shared: bool = False) -> None:
        """A text message: the dialogue's replies. `shared` (webhook workers on one database): handled
        by `shared_turn`."""
        message, user = update.message, update.effective_user
        if message is None or user is None:
            return
        verdict = self.limiter.check(user.id)  # decided on arrival, before any await
        if verdict == "drop":
            return
        incoming = None if verdict == "notice" else Message(text=message.text,
                                                            is_admin=user.id in self.settings.admin_ids)
        if shared:
            await self.shared_turn(update.update_id, user.id, incoming, message.chat_id)
            return
        async with self.locks.hold(user.id):
            await self.send(bot, message.chat_id, await self.turn(user.id, incoming))

    async def callback(self, update: Update | WebUpdate, bot: Any, shared: bool = False) -> None:
        """A button press: stop its spinner, then the dialogue's replies (see `message`)."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        verdict = self.button_limiter.check(user.id)  # decided on arrival, before any await
        answer = lambda: bot.answer_callback_query(query.id)  # noqa: E731 - stops the button's spinner
        if verdict == "drop" or not query.data:
            await self.call(answer, "answerCallbackQuery", attempts=2)
            return
        chat_id = update.effective_chat.id if update.effective_chat else user.id
        incoming = None if verdict == "notice" else Message(callback=query.data,
                                                            is_admin=user.id in self.settings.admin_ids)
        if shared:
            await self.shared_turn(update.update_id, user.id, incoming, chat_id, query.id)
            return
        async with self.locks.hold(user.id):
            replies = await self.turn(user.id, incoming)
            await self.call(answer, "answerCallbackQuery", attempts=2)  # a stale query does not matter
            await self.send(bot, chat_id, replies)

    async def handle_update(self, update: Update | WebUpdate, bot: Any) -> None:
        """One webhook update in `ohbot serve`, handled before the request is answered (so that an
        update is confirmed to Telegram only once handled): private messages and button presses,
        in order per user across workers, once per update_id. DatabaseUnavailable propagates (the
        route answers 503 and Telegram delivers the update again, to this or another worker)."""
        chat = update.effective_chat
        if update.message is not None and chat is not None and chat.type == "private":
            await self.message(update, bot, shared=True)
        elif update.callback_query is not None:
            await self.callback(update, bot, shared=True)

    async def _slow(self, incoming: Message | None) -> None:
        """Tests only (OHBOT_TEST_SLOW_REPLY): an answer to a marked text takes this long."""
        slow = self.settings.test_slow_reply
        if slow and incoming is not None and incoming.text and slow[0] in incoming.text:
            await asyncio.sleep(slow[1])

    async def turn(self, user_id: int, incoming: Message | None) -> list[Reply]:
        """One update's replies in this process alone (polling, PTB's webhook server, a replayed
        update): the dialogue's to `incoming`, or the rate notice when `incoming` is None."""
        await self._slow(incoming)
        return await asyncio.to_thread(self.replies, user_id, incoming, False)

    async def shared_turn(self, update_id: int, user_id: int, incoming: Message | None, chat_id: int,
                          query_id: str | None = None) -> None:
        """One webhook update's turn (workers on one database), in one worker thread (`turn_now`):
        the user's lock, the "handled?" check, the dialogue, the replies sent (and a pressed button's
        spinner stopped) and the update recorded as handled. While another worker holds the user's
        lock the thread returns at once and the turn is tried again LOCK_POLL seconds later."""
        async with self.locks.hold(user_id):
            await self._slow(incoming)
            async with self.handling:
                while not await asyncio.to_thread(self.turn_now, str(update_id), user_id, incoming, chat_id,
                                                  query_id):
                    await asyncio.sleep(LOCK_POLL)  # another worker handles this user's update

    def turn_now(self, key: str, user_id: int, incoming: Message | None, chat_id: int,
                 query_id: str | None) -> bool:
        """In a worker thread: `shared_turn`'s work; False, with nothing done, when another worker holds
        the user's lock.

        On PostgreSQL the user's advisory lock is taken (the user's updates are handled one at a time
        whichever worker they reach) in the statement that also asks whether update `key` was handled
        already (a retried delivery: the lock is released, nothing is sent again); the replies are sent
        while the lock is held, and only then is the update recorded as handled, in the lock's own
        transaction, whose commit releases the lock. Recording before sending would lose the replies of
        a worker killed in between; this way such an update is handled again (README "Running at
        scale"). On SQLite (one process) the check, the dialogue, the sending and the record follow
        one another the same way."""
        from bot.storage.channels import begin_turn, end_turn, mark_handled, was_handled
        from bot.storage.db import backend, release_lock

        state = self.dialogue.state
        if backend(state.engine) != "postgresql":  # one process: no lock across workers
            replies = None if was_handled(state, "telegram", key) else self.replies(user_id, incoming, True)
            self.deliver_now(chat_id, replies, query_id)
            if replies is not None:
                mark_handled(state, "telegram", key)
            return True
        user_key = self.user_key(user_id)
        turn = begin_turn(state, f"ohbot:user:{user_key}", "telegram", key, user_key)
        if turn is None:
            return False
        held, handled, user = turn
        try:
            replies = None if handled else self.replies(user_id, incoming, True, user)
            if replies is not None:
                self.deliver_now(chat_id, replies, query_id)
        except BaseException:
            release_lock(held)
            raise
        if replies is None:  # handled already: only the pressed button's spinner, after the lock
            release_lock(held)
            self.deliver_now(chat_id, None, query_id)
            return True
        end_turn(state, held, "telegram", key)
        return True

    def replies(self, user_id: int, incoming: Message | None, shared: bool, user: User | None = None) -> list[Reply]:
        """In a worker thread: the dialogue's replies to `incoming` (the rate notice for None); an
        apology if it failed, except that a webhook worker (`shared`) lets DatabaseUnavailable
        through, so the update is delivered again instead of apologised for. `user`: the user's
        stored state when the caller read it already (`begin_turn`, with the user's lock)."""
        if incoming is None:
            return [Reply(RATE_NOTICE)]
        key = self.user_key(user_id)
        try:
            return self.dialogue.handle(key, incoming, user)
        except DatabaseUnavailable:
            if shared:
                raise
            log.warning("database unavailable for user %s", key[:8])
            return [Reply(APOLOGY)]
        except Exception:
            log.exception("dialogue failed for user %s", key[:8])
            return [Reply(APOLOGY)]

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Errors from polling or from a handler: one line for Bot API errors, a traceback only
        for what must be a bug. Never raises."""
        error = context.error
        where = "polling" if update is None else "update"
        if isinstance(error, TelegramError):
            log.warning("Bot API error (%s): %s: %s", where, type(error).__name__, error)
        else:
            log.error("unexpected error (%s): %r", where, error, exc_info=error)

    async def post_init(self, application: Application) -> None:
        commands = [BotCommand(name, description) for name, description in COMMANDS]
        ok = await self.call(lambda: application.bot.set_my_commands(commands), "setMyCommands")
        if ok is None:
            log.warning("could not set the command menu; continuing without it")
        await self.replay(application)
        log.info("Telegram bot @%s ready", application.bot.username)

    async def on_handled(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """After every handler (group 1): the update is done, its inbox row marked and its text erased."""
        if self.inbox is not None and isinstance(update, Update):
            await asyncio.to_thread(self.inbox.done, update.update_id)

    async def replay(self, application: Application) -> int:
        """Handle the updates recorded but not handled before (a process killed in between), oldest
        first, before any new one; the number handled."""
        if self.inbox is None:
            return 0
        rows = await asyncio.to_thread(self.inbox.claim_unhandled, self.replay_after)
        for update_id, payload in rows:
            log.info("handling update %d, received before a restart", update_id)
            await application.process_update(Update.de_json(json.loads(payload), application.bot))
        return len(rows)

    async def sweep(self, application: Application) -> None:
        """`ohbot serve`: replay updates a dead worker left unhandled, every STALE_AFTER seconds."""
        while True:
            await asyncio.sleep(STALE_AFTER)
            try:
                await self.replay(application)
            except Exception as exc:  # the database away for a moment: the next sweep retries
                log.warning("inbox sweep failed: %s: %s", type(exc).__name__, exc)

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, bot: Any, chat_id: int, replies: list[Reply]) -> None:
        """Send the replies on the event loop (python-telegram-bot's `Bot`), stopping at the first
        message that cannot be delivered."""
        for text, markup in outgoing(replies):
            def send_part(text: str = text, markup: Any = markup) -> Awaitable[Any]:
                return bot.send_message(chat_id, text, reply_markup=markup)

            if await self.call(send_part, "sendMessage") is None:
                return  # undeliverable (blocked, gone, or the network stayed down): stop here

    def deliver_now(self, chat_id: int, replies: list[Reply] | None, query_id: str | None) -> None:
        """In a worker thread (`turn_now`), through `self.api`: stop the pressed button's spinner
        (`query_id`), then send the replies (None: nothing to send), as `send` does."""
        api = self.api
        if api is None:
            raise RuntimeError("the channel has no SyncRequest (build_application makes it)")
        if query_id is not None:  # a stale query does not matter
            self.call_now(lambda: api.call("answerCallbackQuery", callback_query_id=query_id),
                          "answerCallbackQuery", attempts=2)
        for text, markup in outgoing(replies or []):
            def send_part(text: str = text, markup: Any = markup) -> Any:
                return api.call("sendMessage", chat_id=chat_id, text=text, reply_markup=markup)

            if self.call_now(send_part, "sendMessage") is None:
                return

    async def call(self, request: Callable[[], Awaitable[T]], what: str,
                   attempts: int = SEND_ATTEMPTS) -> T | None:
        """Run a Bot API request; retry network errors with exponential back-off and flood
        control after the time Telegram asks for (`Attempts`). None (logged in one line) if it failed."""
        tries = Attempts(what, attempts)
        while True:
            try:
                return await request()
            except TelegramError as exc:
                wait = tries.failed(exc)
            if wait is None:
                return None
            await asyncio.sleep(wait)

    def call_now(self, request: Callable[[], T], what: str, attempts: int = SEND_ATTEMPTS) -> T | None:
        """`call` for a blocking request in a worker thread (bot/channels/sync_request.py)."""
        tries = Attempts(what, attempts)
        while True:
            try:
                return request()
            except TelegramError as exc:
                wait = tries.failed(exc)
            if wait is None:
                return None
            time.sleep(wait)


def outgoing(replies: list[Reply]) -> Iterator[tuple[str, InlineKeyboardMarkup | None]]:
    """The messages that send these replies: each reply's text in parts of Telegram's length, its
    buttons on its last part."""
    for reply in replies:
        markup = keyboard(reply)
        text = reply.text if reply.text.strip() else (BUTTONS_ONLY if markup else "")
        parts = split_text(text)
        for n, part in enumerate(parts):
            yield part, markup if n == len(parts) - 1 else None


class Attempts:
    """The attempts of one Bot API request: which failures are tried again and after how long."""

    def __init__(self, what: str, attempts: int) -> None:
        """`what`: the method's name, for the log; `attempts`: at most this many tries."""
        self.what, self.attempts = what, attempts
        self.attempt = 0
        self.delay = BACKOFF_FIRST

    def failed(self, exc: TelegramError) -> float | None:
        """One failed try (logged in one line): seconds to wait before the next, or None to give up.
        Network errors (TimedOut, HTTP 5xx) back off exponentially, flood control waits as long as
        Telegram asks; a rejected request, a refused chat or token is not tried again."""
        self.attempt += 1
        what, attempt, attempts = self.what, self.attempt, self.attempts
        if isinstance(exc, RetryAfter):
            wait = retry_after_seconds(exc) + 0.5
            log.warning("%s: flood control, retrying in %.1f s (attempt %d/%d)", what, wait, attempt, attempts)
        elif isinstance(exc, InvalidToken):
            log.error("%s: invalid token: %s", what, exc)
            return None
        elif isinstance(exc, BadRequest):  # checked before NetworkError, its base class in PTB
            log.warning("%s rejected: %s", what, exc)
            return None
        elif isinstance(exc, NetworkError):  # includes TimedOut and HTTP 5xx from the Bot API
            wait, self.delay = self.delay, min(self.delay * 2, BACKOFF_MAX)
            log.warning("%s: %s: %s; retrying in %.1f s (attempt %d/%d)",
                        what, type(exc).__name__, exc, wait, attempt, attempts)
        elif isinstance(exc, Forbidden):
            log.info("%s refused: %s", what, exc)  # e.g. the user blocked the bot
            return None
        else:
            log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
            return None
        if attempt < attempts:
            return wait
        log.warning("%s: giving up after %d attempts", what, attempts)
        return None


# --------------------------------------------------------------------------- wiring


def file_url(base_url: str) -> str:
    """The file download base for an API base such as "http://host:port/bot" → ".../file/bot"."""
    base = base_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("bot")] + "file/bot"
    return base + "/file/bot"


def build_application(settings: Settings, dialogue: Any, *, rate_limit: int = RATE_LIMIT,
                      rate_window: float = RATE_WINDOW) -> Application:
    if not settings.telegram_token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
    inbox = open_inbox(settings, dialogue)
    channel = TelegramChannel(dialogue, settings, rate_limit, rate_window, inbox=inbox)
    requests = (AiohttpRequest(connection_pool_size=8, read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                               pool_timeout=10.0, on_rejected=channel.token_rejected),
                # the read timeout of getUpdates is added to the long-poll timeout by PTB
                AiohttpRequest(connection_pool_size=1, read_timeout=10.0, connect_timeout=CONNECT_TIMEOUT, pool_timeout=10.0,
                               on_rejected=channel.token_rejected))
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .update_queue(InboxQueue(inbox))
        .concurrent_updates(True)
        .request(requests[0])
        .get_updates_request(requests[1])
        .post_init(channel.post_init)
    )
    if settings.telegram_api_base_url:
        builder = builder.base_url(settings.telegram_api_base_url).base_file_url(
            file_url(settings.telegram_api_base_url)
        )
    application = builder.build()
    # webhook workers (`ohbot serve`) send from the thread that handled the update, with the same timeouts;
    # under `ohbot serve` token_rejected only logs (no `stop`), so calling it from a thread is safe
    channel.api = SyncRequest(application.bot.base_url, read_timeout=READ_TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                              on_rejected=channel.token_rejected)
    application.bot_data["channel"] = channel
    application.bot_data["requests"] = requests  # closed by `run` also when PTB never finished initialising
    application.add_handler(
        MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE, channel.on_message)
    )
    application.add_handler(CallbackQueryHandler(channel.on_callback))
    application.add_handler(TypeHandler(Update, channel.on_handled), group=1)  # after the handlers: done
    application.add_error_handler(channel.on_error)
    return application


START_RETRY_MAX = 30.0  # seconds between attempts to reach the Bot API at start


async def _initialize(application: Application, stopping: asyncio.Event) -> bool:
    """application.initialize() (getMe), retried with back-off while the Bot API is unreachable,
    one log line per attempt; InvalidToken is raised. False when a stop signal came first."""
    delay = 1.0
    while True:
        try:
            await application.initialize()
            return True
        except InvalidToken:
            raise
        except TelegramError as exc:
            log.warning("cannot reach the Bot API at start (%s: %s); retrying in %.0f s", type(exc).__name__, exc, delay)
        try:
            await asyncio.wait_for(stopping.wait(), delay)
            return False
        except TimeoutError:
            delay = min(delay * 2, START_RETRY_MAX)


async def _run(application: Application, channel: TelegramChannel, webhook: dict[str, Any] | None) -> None:
    """Start, wait for SIGINT/SIGTERM (or a rejected token), stop: PTB's own run_polling cannot end
    when its polling task dies on InvalidToken, and then skips closing the HTTP sessions."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    channel.stop = stopping.set
    updater = application.updater
    assert updater is not None
    allowed = [Update.MESSAGE, Update.CALLBACK_QUERY]
    try:
        if not await _initialize(application, stopping):
            return
        await channel.post_init(application)
        if webhook is not None:
            await updater.start_webhook(**webhook, allowed_updates=allowed, drop_pending_updates=False,
                                        bootstrap_retries=-1)
        else:
            await updater.start_polling(allowed_updates=allowed, drop_pending_updates=False, bootstrap_retries=-1,
                                        error_callback=channel.on_polling_error)
        await application.start()
        await stopping.wait()
    finally:
        if updater.running:
            try:
                await updater.stop()
            except TelegramError as exc:  # how the polling task ended, e.g. the rejected token: logged above
                log.debug("polling ended with %s", type(exc).__name__)
        if application.running:
            await application.stop()
        await application.shutdown()  # closes the aiohttp sessions once initialised ...
        for request in application.bot_data.get("requests", ()):
            await request.shutdown()  # ... and these close them when getMe failed (a refused token)


def run(settings: Settings, dialogue: Any, webhook_url: str | None = None, listen: str = "127.0.0.1",
        port: int = 8443, *, rate_limit: int = RATE_LIMIT, rate_window: float = RATE_WINDOW) -> None:
    """Run the Telegram bot until SIGINT/SIGTERM: long polling, or a webhook when `webhook_url`
    (the public HTTPS URL Telegram should call) is given; the local server listens on
    `listen`:`port` (default loopback, behind the TLS proxy) at the URL's path and checks a secret
    token generated for this run. A token the Bot API rejects, at start or later (revoked), ends the
    run with ConfigError (one line, the token never in it)."""
    setup_logging(settings.telegram_token)
    application = build_application(settings, dialogue, rate_limit=rate_limit, rate_window=rate_window)
    channel: TelegramChannel = application.bot_data["channel"]
    webhook = None
    if webhook_url:
        webhook = {"listen": listen, "port": port, "url_path": urlsplit(webhook_url).path.lstrip("/"),
                   "webhook_url": webhook_url, "secret_token": secrets.token_urlsafe(32)}
    try:
        asyncio.run(_run(application, channel, webhook))
    except InvalidToken:
        channel.rejected = channel.rejected or "at start"
    if channel.rejected:
        raise ConfigError(f"Telegram rejected TELEGRAM_BOT_TOKEN ({channel.rejected}): it is wrong or was revoked; "
                          "set the current token from @BotFather")
    if channel.stopped_by_conflict:
        raise ChannelError(f"Telegram answered 409 Conflict for {TELEGRAM_CONFLICT_SECONDS:.0f} s: another process "
                           "is polling with this bot token. Stop it (one polling process per token), or run "
                           "several workers with the webhook (ohbot serve)")
    log.info("Telegram bot stopped")
