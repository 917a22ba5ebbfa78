"""The public web chat at `/`: a thin adapter between a browser and the dialogue core (bot/dialogue/core.py).

What it adds to the core is only what a browser needs, all of it stateless per process so that any
`ohbot serve` worker can take any request (everything else is in the state database, as for every
channel):

* **Who**: a random id in a cookie (HttpOnly, SameSite=Lax, Secure over HTTPS), pseudonymised like
  other channels' ids: the dialogue sees `State.user_key("web", id)`, a salted hash.
* **Buttons** are real buttons. Each carries a token: the core's callback data and an HMAC of that
  data and the user key (key derived from the salt every worker shares), so a button only works for
  the user it was shown to; forged or another user's tokens are refused (403) before the core sees them.
* **CSRF**: the JSON endpoint wants `X-CSRF-Token` (an HMAC of the cookie id, embedded in the page),
  a JSON body, and an Origin of this host when the browser sends one; the no-JS form posts the
  token as a field.
* **Rate limit**: requests per client IP per window (`Settings.webchat_rate_limit`), counted in the
  database (bot/storage/limits.py) so all workers share it; over it: 429 with a friendly message.
* **Text is text**: replies go out as JSON strings that the page's script inserts with textContent;
  the page itself is a Jinja2 template with autoescaping. Nothing the user or the knowledge base
  wrote is ever parsed as HTML.

Routes: `GET /` (the page), `POST /chat/api` (JSON: {"text": …} or {"button": token} → {"replies":
[{"text", "sources", "after", "buttons": [[{"label", "token"}]]}]}), `POST /chat` (the same as a plain form,
for browsers without JavaScript: the page again with the last turn).
"""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.text_menu import text_command
from bot.config import WEBCHAT_RATE_WINDOW, Settings
from bot.dialogue.types import Message, Reply
from bot.errors import DatabaseUnavailable

log = logging.getLogger("ohbot.webchat")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
COOKIE = "ohbot_chat"
COOKIE_MAX_AGE = 90 * 24 * 3600  # renewed on every visit; a quiz in progress survives a few weeks' pause
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 16 * 1024  # bytes: a question is at most 500 characters (the core says so politely)
_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
_SOURCE = re.compile(r"^(来源|出处)：")
TITLE = "职业健康知识助手"
GREETING = "你好！我是职业健康知识助手，回答依据法规、标准和防护材料，并注明出处。直接输入你的问题；先选身份，答案会更贴合你："
WELCOME_BACK = "欢迎回来（身份：{role}）。直接输入你的问题，或用上面的菜单做测验、自查。"
EXAMPLES = ("噪声超标怎么办？", "体检费要我自己出吗？", "单位要不要申报职业病危害项目？")
MENU = (("/quiz", "知识测验"), ("/obligations", "单位义务自查"), ("/role", "身份"), ("/region", "地区"),
        ("/me", "我的资料"), ("/privacy", "隐私说明"), ("/forget", "删除我的数据"))
# the friendly one-liners of every refusal (the page shows them as a notice in the conversation)
ERRORS = {
    "no_session": (403, "会话已失效（浏览器没有保存本站的 Cookie）。请刷新页面，或在新窗口中打开本页。"),
    "csrf": (403, "页面已过期，请刷新后再试。"),
    "bad_button": (403, "这个按钮无效或已过期。请重新输入你的问题。"),
    "bad_request": (400, "没有看懂这条消息。请输入文字问题。"),
    "too_large": (413, "消息太长了。请用一两句话提问，不超过 500 字。"),
    "rate_limited": (429, "你发送得太快了，请稍等一会儿再试（{seconds} 秒后可以继续）。"),
    "unavailable": (503, "服务暂时不可用，请稍后再试。"),
    "failed": (500, "抱歉，处理你的消息时出错了，请稍后再试。"),
}


class Refused(Exception):
    """A request the chat will not pass to the dialogue: `code` is a key of ERRORS."""

    def __init__(self, code: str, retry_after: int = 0) -> None:
        """The refusal's code, and for `rate_limited` the seconds to wait."""
        super().__init__(code)
        self.code, self.retry_after = code, retry_after

    @property
    def status(self) -> int:
        """The HTTP status."""
        return ERRORS[self.code][0]

    @property
    def message(self) -> str:
        """The friendly message shown to the user."""
        return ERRORS[self.code][1].format(seconds=self.retry_after)


# --------------------------------------------------------------------------- pure helpers


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def chat_secret(salt: str) -> bytes:
    """The key of button tokens and CSRF tokens: derived from the salt, so every worker sharing the
    database (and therefore the salt) accepts every other worker's tokens."""
    return hmac.new(salt.encode("utf-8"), b"ohbot web chat v1", hashlib.sha256).digest()


def sign_button(secret: bytes, user_key: str, data: str) -> str:
    """A button's token: its callback data and a MAC binding it to the user it is shown to."""
    mac = hmac.new(secret, f"button\0{user_key}\0{data}".encode(), hashlib.sha256).digest()[:16]
    return f"{_b64(data.encode('utf-8'))}.{_b64(mac)}"


def read_button(secret: bytes, user_key: str, token: str) -> str | None:
    """The callback data of a token signed for this user; None when it is forged, damaged or another user's."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 256:
        return None
    payload, mac = token.split(".")
    try:
        data = _unb64(payload).decode("utf-8")
    except ValueError:  # bad base64 or bad UTF-8
        return None
    return data if hmac.compare_digest(sign_button(secret, user_key, data), token) else None


def csrf_token(secret: bytes, chat_id: str) -> str:
    """The CSRF token of a browser: a MAC of its cookie id (the page embeds it; a foreign site cannot read it)."""
    return _b64(hmac.new(secret, f"csrf\0{chat_id}".encode(), hashlib.sha256).digest()[:18])


def split_sources(text: str) -> tuple[str, list[str], str]:
    """A reply's text cut around its 来源/出处 lines: (the text before them, those lines, the text
    after them, e.g. "你可能还想问：" above the related questions' buttons). The page shows the
    sources apart, under the text they belong to."""
    before: list[str] = []
    sources: list[str] = []
    after: list[str] = []
    for line in text.split("\n"):
        if _SOURCE.match(line.strip()):
            sources.append(line.strip())
            before, after = before + after, []
        else:
            after.append(line)
    if not sources:
        before, after = after, []

    def tidy(lines: list[str]) -> str:
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    return tidy(before), sources, tidy(after)


def new_chat_id() -> str:
    """A fresh random browser id (144 bits)."""
    return secrets.token_urlsafe(18)


# --------------------------------------------------------------------------- the chat


@dataclass
class Turn:
    """What one request produced: replies shown as dicts (text, sources, buttons with tokens)."""
    replies: list[dict]


class WebChat:
    """One per worker, made on the first request (the dialogue is loaded at start-up already)."""

    def __init__(self, settings: Settings, dialogue: Any) -> None:
        """Over the app's dialogue; the limiter counts in the dialogue's state database (its engine)."""
        from bot.storage.limits import RateLimiter

        self.settings = settings
        self.dialogue = dialogue
        self.secret = chat_secret(dialogue.state.salt)
        self.limiter = RateLimiter(dialogue.state.engine, settings.webchat_rate_limit, WEBCHAT_RATE_WINDOW)

    def user_key(self, chat_id: str) -> str:
        """The dialogue's key of a browser (salted hash of "web:<id>")."""
        return str(self.dialogue.state.user_key("web", chat_id))

    def view(self, user_key: str, reply: Reply) -> dict:
        """A reply as the page shows it: text, source lines apart, buttons with this user's tokens."""
        text, sources, after = split_sources(reply.text)
        return {"text": text, "sources": sources, "after": after,
                "buttons": [[{"label": b.label, "token": sign_button(self.secret, user_key, b.data)} for b in row]
                            for row in reply.buttons]}

    def greeting(self, chat_id: str) -> dict:
        """The page's first message: role buttons and example questions, or a welcome back."""
        key = self.user_key(chat_id)
        role = self.dialogue.state.get_user(key).role
        roles: dict[str, str] = self.dialogue.roles
        if role in roles:
            return {"text": WELCOME_BACK.format(role=roles[role]), "sources": [],
                    "buttons": [[{"label": q, "text": q}] for q in EXAMPLES]}
        from bot.dialogue.core import role_buttons

        shown = self.view(key, Reply(GREETING, [[b for row in role_buttons(self.dialogue.taxonomy) for b in row]]))
        shown["buttons"] += [[{"label": q, "text": q}] for q in EXAMPLES]
        return shown

    def check_rate(self, request: Request) -> None:
        """Count the request against its client IP's budget; Refused("rate_limited") when over it."""
        ip = request.client.host if request.client else "unknown"
        verdict = self.limiter.hit(self.dialogue.state.user_key("ip", ip))
        if not verdict.allowed:
            raise Refused("rate_limited", verdict.retry_after)

    async def handle(self, chat_id: str, text: str | None, token: str | None) -> Turn:
        """One message or button press through the dialogue core."""
        key = self.user_key(chat_id)
        if token is not None:
            data = read_button(self.secret, key, token)
            if data is None:
                log.info("web chat: refused a button token not signed for user %s", key[:8])
                raise Refused("bad_button")
            message = Message(callback=data)
        elif text is not None and text.strip():
            message = Message(text=text_command(text) or text)
        else:
            raise Refused("bad_request")
        try:
            replies = await asyncio.to_thread(self.dialogue.handle, key, message)
        except DatabaseUnavailable as exc:
            log.warning("web chat: %s", exc)
            raise Refused("unavailable") from exc
        except Exception:
            log.exception("web chat: the dialogue failed for user %s", key[:8])
            raise Refused("failed") from None
        return Turn([self.view(key, r) for r in replies])


def webchat(request: Request) -> WebChat:
    """This worker's WebChat, made on first use."""
    chat = getattr(request.app.state, "webchat", None)
    if chat is None:
        services = request.app.state.services
        if services.dialogue is None:
            raise Refused("unavailable")
        chat = request.app.state.webchat = WebChat(services.settings, services.dialogue)
    return chat


# --------------------------------------------------------------------------- requests


def _chat_id(request: Request) -> str | None:
    """The browser's id from its cookie, if it is one of ours in form."""
    value = request.cookies.get(COOKIE, "")
    return value if _ID.match(value) else None


def _same_origin(request: Request) -> bool:
    """No Origin header (an old browser), or one naming the host the request was sent to."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")} - {""}
    return urlsplit(origin).netloc in hosts


async def _body(request: Request) -> bytes:
    """The request body, refused beyond MAX_BODY bytes (read no further than that)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise Refused("too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Refused("too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _set_cookie(request: Request, response: Response, chat_id: str) -> None:
    """The browser's id, renewed: HttpOnly, SameSite=Lax, Secure when served over HTTPS."""
    response.set_cookie(COOKIE, chat_id, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def _headers(settings: Settings) -> dict[str, str]:
    """Security headers of the page: only this site's scripts, styles and endpoints; framing by this
    site and the configured bureau sites only."""
    ancestors = " ".join(("'self'", *settings.webchat_embed_origins))
    headers = {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    if not settings.webchat_embed_origins:
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return headers


@functools.cache
def _templates() -> Any:
    """The Jinja2 environment of bot/web/templates (autoescaping on, made once)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def _page(request: Request, chat: WebChat, chat_id: str, messages: list[dict], status: int = 200) -> Response:
    """The chat page with `messages` (dicts with `who`: me | bot | notice)."""
    html = _templates().get_template("chat.html").render(
        title=TITLE, csrf=csrf_token(chat.secret, chat_id), messages=messages, menu=MENU)
    response = HTMLResponse(html, status_code=status, headers=_headers(chat.settings))
    _set_cookie(request, response, chat_id)
    return response


async def page(request: Request) -> Response:
    """GET /: the chat page with its greeting; gives a new browser its id."""
    try:
        chat = webchat(request)
        chat_id = _chat_id(request) or new_chat_id()
        greeting = await asyncio.to_thread(chat.greeting, chat_id)
    except (Refused, DatabaseUnavailable):
        return HTMLResponse(ERRORS["unavailable"][1], status_code=503)
    return _page(request, chat, chat_id, [{"who": "bot", **greeting}])


async def api(request: Request) -> Response:
    """POST /chat/api: one message or button press as JSON; the replies as JSON."""
    try:
        chat = webchat(request)
        chat_id = _chat_id(request)
        if chat_id is None:
            raise Refused("no_session")
        if (not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), csrf_token(chat.secret, chat_id))
                or not _same_origin(request)
                or request.headers.get("content-type", "").split(";")[0].strip() != "application/json"):
            raise Refused("csrf")
        await asyncio.to_thread(chat.check_rate, request)
        try:
            payload = json.loads(await _body(request))
        except (ValueError, UnicodeDecodeError):
            raise Refused("bad_request") from None
        if not isinstance(payload, dict):
            raise Refused("bad_request")
        text, token = payload.get("text"), payload.get("button")
        if not isinstance(text, str | None) or not isinstance(token, str | None) or (text is None) == (token is None):
            raise Refused("bad_request")
        turn = await chat.handle(chat_id, text, token)
    except Refused as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.code == "rate_limited" else {}
        return JSONResponse({"error": refused.message, "code": refused.code}, status_code=refused.status,
                            headers={**headers, "Cache-Control": "no-store"})
    except DatabaseUnavailable as exc:
        log.warning("web chat: %s", exc)
        return JSONResponse({"error": ERRORS["unavailable"][1], "code": "unavailable"}, status_code=503)
    return JSONResponse({"replies": turn.replies}, headers={"Cache-Control": "no-store"})


async def form(request: Request) -> Response:
    """POST /chat: the no-JavaScript fallback; the page again with the user's message and the replies."""
    try:
        chat = webchat(request)
    except Refused:
        return HTMLResponse(ERRORS["unavailable"][1], status_code=503)
    chat_id = _chat_id(request)
    if chat_id is None:  # cookies off or expired: start over with a fresh id
        chat_id = new_chat_id()
        greeting = await asyncio.to_thread(chat.greeting, chat_id)
        return _page(request, chat, chat_id, [{"who": "notice", "text": ERRORS["no_session"][1]},
                                              {"who": "bot", **greeting}], status=403)
    shown: list[dict] = []
    try:
        fields = parse_qs((await _body(request)).decode("utf-8", "replace"), max_num_fields=5)
        if (not hmac.compare_digest(fields.get("csrf", [""])[0], csrf_token(chat.secret, chat_id))
                or not _same_origin(request)):
            raise Refused("csrf")
        await asyncio.to_thread(chat.check_rate, request)
        text, token = fields.get("text", [None])[0], fields.get("button", [None])[0]
        if token is None and text is not None:
            shown.append({"who": "me", "text": text})
        turn = await chat.handle(chat_id, None if token is not None else text, token)
    except Refused as refused:
        return _page(request, chat, chat_id, [*shown, {"who": "notice", "text": refused.message}],
                     status=refused.status)
    except DatabaseUnavailable:
        return _page(request, chat, chat_id, [*shown, {"who": "notice", "text": ERRORS["unavailable"][1]}], 503)
    return _page(request, chat, chat_id, [*shown, *({"who": "bot", **r} for r in turn.replies)])


async def chat_get(request: Request) -> Response:
    """GET /chat (a reload after the fallback form): back to the page."""
    return RedirectResponse("/", status_code=303)


def routes() -> list[BaseRoute]:
    """The web chat's routes, added to `ohbot serve`'s app (bot/web/app.py)."""
    return [Route("/", page, methods=["GET"]), Route("/chat", form, methods=["POST"]),
            Route("/chat", chat_get, methods=["GET"]), Route("/chat/api", api, methods=["POST"])]


__all__ = ["Refused", "WebChat", "chat_secret", "csrf_token", "read_button", "routes", "sign_button",
           "split_sources"]
