"""A python-telegram-bot request backend on aiohttp.

PTB's default backend (httpx over httpcore/anyio) spent ~40 % of the bot's CPU per update in our
benchmark (tests/fake_bot_api.py, 50 concurrent users); aiohttp's C-accelerated HTTP handling does
the same requests for a fraction of that. Behaviour follows PTB's HTTPXRequest: the same timeouts
and the same TimedOut / NetworkError exceptions, so PTB's retries and error handling are unchanged.
"""
from __future__ import annotations

from collections.abc import Callable

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.channels.sync_request import FORM, form_body


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a bounded pool of kept-alive connections."""

    def __init__(self, connection_pool_size: int = 8, read_timeout: float | None = 20.0,
                 write_timeout: float | None = 20.0, connect_timeout: float | None = 10.0,
                 pool_timeout: float | None = 10.0, on_rejected: Callable[[int], None] | None = None) -> None:
        """`on_rejected(status)` is called when the Bot API answers 401 or 404, which PTB reports as
        InvalidToken (a wrong or revoked token): a fatal error the caller must act on, since PTB's
        polling task ends on it silently."""
        self.on_rejected = on_rejected
        self._pool_size = connection_pool_size
        self._read, self._write, self._connect, self._pool = read_timeout, write_timeout, connect_timeout, pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size), headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        pool = self._pool if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp has no separate write timeout; a stalled upload is caught by the read timeout
        timeout = aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)
        data: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, part in files.items():
                    filename, content, mimetype = part if len(part) == 3 else (part[0], part[1], None)
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            else:
                data, headers = form_body(request_data), FORM
        try:
            async with self._session.request(method, url, data=data, headers=headers, timeout=timeout) as response:
                status, body = response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
        if status in (401, 404) and self.on_rejected is not None:
            self.on_rejected(status)
        return status, body
