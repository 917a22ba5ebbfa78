"""Bot API requests from a worker thread, for `ohbot serve`'s webhook (issue #14).

A webhook worker handles an update in one worker thread: the user's lock, the "handled already?"
check and the dialogue. Sending the replies from that same thread, instead of handing them back to
the event loop for python-telegram-bot's `Bot.send_message` and then hopping into a thread again to
record the update as handled, saves a thread hop and PTB's parsing of each sent message into a
`Message` object: together about a fifth of a worker's CPU per update.

`SyncRequest` is a python-telegram-bot request class (`BaseRequest`) whose `do_request` does its I/O
with the standard library's `http.client`, blocking the calling thread, and never suspends; so
PTB's own `post` (its HTTP status → exception mapping: RetryAfter from `retry_after`, BadRequest,
Forbidden, InvalidToken for 401/404, NetworkError for 5xx, TimedOut) runs to completion without
an event loop. Errors are PTB's exceptions, handled by the same rules as every other Bot API call
(bot/channels/telegram.py `TelegramChannel.call`). Each thread keeps its own kept-alive connection.
Only url-encoded requests (no file uploads).
"""
from __future__ import annotations

import http.client
import select
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from telegram.request._requestparameter import RequestParameter

T = TypeVar("T")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # PTB's HTTPXRequest sends the same


def form_body(request_data: RequestData) -> bytes:
    """A request's parameters url-encoded, as PTB's HTTPXRequest sends them (aiohttp's FormData for a
    dict costs more than the rest of the request)."""
    return urlencode(request_data.json_parameters).encode("ascii")


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (all its awaits finish at once), run in this
    thread without an event loop; RuntimeError if it does suspend."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the request suspended: it needs an event loop")


class SyncRequest(BaseRequest):
    """Blocking Bot API requests, one kept-alive `http.client` connection per thread."""

    def __init__(self, base_url: str, read_timeout: float | None = 20.0, connect_timeout: float | None = 10.0,
                 on_rejected: Callable[[int], None] | None = None) -> None:
        """`base_url`: the bot's API URL with its token (PTB's `Bot.base_url`, e.g.
        "https://api.telegram.org/bot<token>"). `on_rejected(status)` as in `AiohttpRequest`: the Bot API
        answered 401 or 404 (PTB: InvalidToken)."""
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._read, self._connect = read_timeout, connect_timeout
        self.on_rejected = on_rejected
        self._local = threading.local()

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        """Nothing to set up: connections are opened by the threads that use them."""

    async def shutdown(self) -> None:
        """Nothing to close here: each thread's connection closes with the thread (or on an error)."""

    def call(self, method: str, **params: Any) -> Any:
        """POST one Bot API method with these parameters (None values left out) from this thread; its
        result, or PTB's TelegramError subclass for a failure."""
        data = RequestData([RequestParameter.from_input(name, value) for name, value in params.items()
                            if value is not None])
        return run_to_end(self.post(f"{self.base_url}/{method}", data))

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection: the kept-alive one unless the server closed it meanwhile (its socket
        is readable while idle: end of stream), else a new one."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            if not select.select([conn.sock], [], [], 0)[0]:
                return conn
            conn.close()
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = kind(self._host, self._port, timeout=self._connect)
        conn.connect()
        conn.sock.settimeout(self._read)
        self._local.conn = conn
        return conn

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if request_data is not None and request_data.multipart_data:
            raise NetworkError("SyncRequest sends no files")
        body = form_body(request_data) if request_data is not None else None
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        try:
            conn = self._connection()
            if read != self._read and conn.sock is not None:
                conn.sock.settimeout(read)
            conn.request(method, urlsplit(url).path, body=body, headers={**FORM, "User-Agent": self.USER_AGENT})
            response = conn.getresponse()
            status, payload = response.status, response.read()
            if response.will_close:
                conn.close()
            elif read != self._read and conn.sock is not None:
                conn.sock.settimeout(self._read)
        except TimeoutError as err:
            self._drop()
            raise TimedOut from err
        except (OSError, http.client.HTTPException) as err:
            self._drop()
            raise NetworkError(f"http.client.{err.__class__.__name__}: {err}") from err
        if status in (401, 404) and self.on_rejected is not None:
            self.on_rejected(status)
        return status, payload

    def _drop(self) -> None:
        """Close this thread's connection after an error (its state is unknown)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
