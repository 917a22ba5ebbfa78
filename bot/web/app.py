"""`ohbot serve`: one ASGI application (Starlette, run by uvicorn) for every channel.

Fixed paths: / (the public web chat, bot/web/webchat.py; assets under /static), /console/ (the bureau's
web console, bot/web/console.py), /wechat (Official Account callback), /wecom (WeCom app callback),
/telegram (the Telegram webhook, python-telegram-bot's custom-webhook pattern: the route hands each
update to the `Application`), /healthz (200 when the index and the database are usable, 503 otherwise). A
channel without its settings is off (its path answers 404). Everything another process would need
is in the state database (users, menus, de-duplication, access tokens), so several processes can
serve behind a load balancer once that database is shared.

Other features add their routes through `create_app(..., routes=[...])`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.channels import redact
from bot.config import Settings
from bot.errors import DatabaseUnavailable
from bot.web import webchat

log = logging.getLogger("ohbot.serve")

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_ATTEMPTS = 5


def telegram_webhook_secret(bot_token: str, salt: str) -> str:
    """The webhook's secret token: derived from the bot token and the salt, so every process
    behind a load balancer checks the same one (Telegram allows A-Z, a-z, 0-9, _ and -)."""
    return hmac.new(salt.encode(), bot_token.encode(), hashlib.sha256).hexdigest()[:64]


def warm_up(dialogue: Any) -> None:
    """Answer one question before serving: the first answer pays for lazy loading (the tokenizer's
    dictionary, the model's first run), which must not eat a user's 5-second passive window."""
    from bot.answering.answer import answer
    from bot.dialogue.core import WARM_QUESTION

    started = time.monotonic()
    try:
        answer(dialogue.retriever, WARM_QUESTION)
    except Exception as exc:  # the service still starts; /healthz tells whether the index works
        log.warning("warm-up question failed: %s: %s", type(exc).__name__, exc)
    log.info("warm-up answer in %.1f s", time.monotonic() - started)


class Services:
    """What the routes use, filled in at startup (the dialogue takes seconds to load)."""

    def __init__(self, settings: Settings, telegram_polling: bool = False) -> None:
        """Nothing loaded yet. `telegram_polling`: long-poll Telegram in this process when no webhook
        URL is set (`ohbot start`, one process; never several `serve` workers: Telegram allows one poller)."""
        self.settings = settings
        self.telegram_polling = telegram_polling
        self.polling_task: asyncio.Task | None = None
        self.dialogue: Any = None
        self.wechat: Any = None
        self.wecom: Any = None
        self.telegram: Any = None  # the python-telegram-bot Application
        self.telegram_secret = ""
        self.sweeper: asyncio.Task | None = None  # replays updates a dead worker left (bot/storage/inbox.py)

    async def start(self, dialogue: Any, build_if_missing: bool) -> None:
        """Load the dialogue (index, model, database) and start the configured channels."""
        settings = self.settings
        if dialogue is None:
            from bot.dialogue.core import open_dialogue

            dialogue = await asyncio.to_thread(open_dialogue, settings, build_if_missing)
            await asyncio.to_thread(warm_up, dialogue)
        self.dialogue = dialogue
        if settings.wechat_enabled:
            from bot.channels.wechat import OfficialAccountChannel

            self.wechat = OfficialAccountChannel(settings, dialogue)
        if settings.wecom_enabled:
            from bot.channels.wecom import WeComChannel

            self.wecom = WeComChannel(settings, dialogue)
        if settings.telegram_token and settings.telegram_webhook_url:
            try:
                await self.start_telegram()
            except Exception as exc:  # Telegram unreachable or the token refused: serve the other channels
                log.error("Telegram did not start (%s: %s); /telegram answers 503", type(exc).__name__, exc)
        elif settings.telegram_token and self.telegram_polling:
            try:
                await self.start_telegram(polling=True)
            except Exception as exc:  # the token refused or Telegram unreachable: serve the rest
                log.error("Telegram did not start (%s: %s)", type(exc).__name__, exc)
        elif settings.telegram_token:
            log.info("Telegram: set TELEGRAM_WEBHOOK_URL (the public URL of /telegram) to serve it here")
        on = [name for name, channel in (("/wechat", self.wechat), ("/wecom", self.wecom),
                                         ("/telegram", self.telegram)) if channel is not None]
        log.info("serving %s", ", ".join(on + ["/healthz"]))

    async def start_telegram(self, polling: bool = False) -> None:
        """python-telegram-bot without its own server: initialise, register the webhook (same URL
        and secret from every process), start handling the update queue. `polling`: long-poll
        instead (a background task that waits out a network outage; no webhook)."""
        from telegram import Update

        from bot.channels.telegram import build_application
        from bot.storage.inbox import STALE_AFTER

        settings = self.settings
        application = build_application(settings, self.dialogue)
        self.telegram_secret = telegram_webhook_secret(settings.telegram_token or "", self.dialogue.state.salt)
        redact.remember(self.telegram_secret)
        await application.initialize()
        channel = application.bot_data["channel"]
        channel.replay_after = STALE_AFTER  # other workers may be handling younger updates right now
        await channel.post_init(application)
        if polling:
            await application.start()
            self.telegram = application
            self.sweeper = asyncio.create_task(channel.sweep(application))
            updater = application.updater
            assert updater is not None
            self.polling_task = asyncio.create_task(updater.start_polling(
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY], drop_pending_updates=False,
                bootstrap_retries=-1))
            log.info("Telegram: long polling")
            return
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                await application.bot.set_webhook(settings.telegram_webhook_url, secret_token=self.telegram_secret,
                                                  allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
                break
            except Exception as exc:  # network trouble at start: try again, then serve anyway
                log.warning("Telegram setWebhook failed (%s: %s), attempt %d/%d", type(exc).__name__, exc,
                            attempt, WEBHOOK_ATTEMPTS)
                await asyncio.sleep(min(2 ** attempt, 10))
        await application.start()
        self.telegram = application
        self.sweeper = asyncio.create_task(channel.sweep(application))

    async def stop(self) -> None:
        """Finish answers in flight, stop the Telegram application."""
        for channel in (self.wechat, self.wecom):
            if channel is not None:
                await channel.close()
        if self.sweeper is not None:
            self.sweeper.cancel()
        if self.polling_task is not None and not self.polling_task.done():
            self.polling_task.cancel()
        if self.telegram is not None:
            updater = self.telegram.updater
            if updater is not None and updater.running:
                await updater.stop()
            await self.telegram.stop()
            await self.telegram.shutdown()


def services(request: Request) -> Services:
    """The app's Services."""
    return request.app.state.services


async def wechat(request: Request) -> Response:
    """/wechat: URL check (GET) and callbacks (POST) of the Official Account."""
    channel = services(request).wechat
    return await (channel.get(request) if request.method == "GET" else channel.post(request))


async def wecom(request: Request) -> Response:
    """/wecom: URL check and callbacks of the WeCom app."""
    channel = services(request).wecom
    return await (channel.get(request) if request.method == "GET" else channel.post(request))


async def telegram(request: Request) -> Response:
    """/telegram: one update from Telegram, checked by its secret token and handled before the answer:
    200 once its replies are sent (or it was handled already, by this or another worker), 503 while
    the database is unavailable, so that Telegram delivers it again (to any worker)."""
    from bot.channels.telegram import web_update

    found = services(request)
    if found.telegram is None:
        return PlainTextResponse("telegram is not running", status_code=503)
    if not hmac.compare_digest(request.headers.get(TELEGRAM_SECRET_HEADER, ""), found.telegram_secret):
        log.warning("Telegram webhook: wrong or missing secret token")
        return PlainTextResponse("forbidden", status_code=403)
    try:
        update = web_update(await request.json())
    except Exception as exc:
        log.warning("Telegram webhook: unreadable update (%s)", type(exc).__name__)
        return PlainTextResponse("bad request", status_code=400)
    await found.telegram.bot_data["channel"].handle_update(update, found.telegram.bot)
    return Response(status_code=200)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """Any route whose database call failed: 503 (one log line), so the platform retries later."""
    log.warning("%s %s: 503, %s", request.method, request.url.path, exc)
    return PlainTextResponse("database unavailable, try again", status_code=503)


def _database_ok(dialogue: Any) -> bool:
    """The state database answers a query."""
    with dialogue.state.read() as conn:
        return conn.execute(text("SELECT 1")).scalar() == 1


async def healthz(request: Request) -> Response:
    """200 when the index is loaded and still on disk and the database answers, else 503."""
    found = services(request)
    dialogue = found.dialogue
    index = bool(dialogue is not None and getattr(dialogue.retriever, "chunks", None)
                 and (found.settings.index_dir / "index.db").exists())
    try:
        database = dialogue is not None and await asyncio.wait_for(asyncio.to_thread(_database_ok, dialogue), 5)
    except Exception as exc:
        log.warning("healthz: the database does not answer (%s)", type(exc).__name__)
        database = False
    body = {"index": index, "database": database,
            "channels": [n for n in ("wechat", "wecom", "telegram") if getattr(found, n) is not None]}
    return JSONResponse(body, status_code=200 if index and database else 503)


def create_app(settings: Settings, dialogue: Any = None, *, build_if_missing: bool = True,
               routes: Sequence[BaseRoute] = (), telegram_polling: bool = False) -> Starlette:
    """The one ASGI app. `dialogue` (tests) skips loading one; `routes` are added after the
    channels' fixed paths; `telegram_polling` as `Services` takes it."""
    found = Services(settings, telegram_polling)
    fixed: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if settings.wechat_enabled:
        fixed.append(Route("/wechat", wechat, methods=["GET", "POST"]))
    if settings.wecom_enabled:
        fixed.append(Route("/wecom", wecom, methods=["GET", "POST"]))
    if settings.telegram_token and settings.telegram_webhook_url:
        fixed.append(Route("/telegram", telegram, methods=["POST"]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await found.start(dialogue, build_if_missing)
        try:
            yield
        finally:
            await found.stop()

    from bot.web import console

    fixed += [*webchat.routes(), *console.routes(settings),
              Mount("/static", StaticFiles(directory=webchat.STATIC), name="static")]
    app = Starlette(routes=[*fixed, *routes], lifespan=lifespan,
                    exception_handlers={DatabaseUnavailable: database_unavailable})
    app.state.services = found
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, telegram_polling: bool = False) -> None:
    """Run the app with uvicorn until SIGINT/SIGTERM (answers in flight are finished), then exit 0.
    `telegram_polling`: also long-poll Telegram (`ohbot start` without a webhook URL)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            """Shut down gracefully; uvicorn would then raise the signal again (exit status -15)."""
            super().handle_exit(sig, frame)
            getattr(self, "_captured_signals", []).clear()

    redact.install(settings.secrets())
    config = uvicorn.Config(create_app(settings, telegram_polling=telegram_polling), host=host, port=port, log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=15, server_header=False)
    Server(config).run()
