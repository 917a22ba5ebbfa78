"""The bureau's web console at /console/ (issue #13): server-rendered pages over the same library
functions as the CLI (one implementation, two views).

Pages: log-in and log-out; the overview (open campaigns: respondents, awareness rate with its 95 %
interval against the target, status); campaigns (create, close) and each campaign's report by a
chosen field (`bot.awareness.campaigns.campaign_report`: the numbers of `ohbot report --json --by F`),
with inline SVG charts, the trend by month, item analysis and the most-missed knowledge points;
report downloads (CSV, XLSX, HTML: `bot.awareness.report.write_outputs`); responses upload
(`import_responses`: all or nothing, errors by line) and export (`bot.awareness.exports.export`);
gaps and feedback (`State.gaps`, as `ohbot gaps`) with FAQ card drafts (`bot.faq_drafts`); staff
accounts and the audit log (admins).

Security: every page but the log-in needs a session (bot/storage/staff.py; the cookie is HttpOnly,
SameSite=Lax, Secure over HTTPS, path /console); every form carries the session's CSRF token (the
log-in form a token bound to a cookie of its own) and a POST without it is refused (403); roles
decide what each account may do (staff.PERMISSIONS; a refused action is 403); an analyst with a
region sees only that region's respondents in every page and file; templates escape all text
(Jinja2 autoescape), files are served with Content-Disposition: attachment, and pages carry a
Content-Security-Policy without inline scripts. Database and report work runs in worker threads.
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import re
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.config import AWARE_THRESHOLD, FORM_SIZE, UPLOAD_MAX_BYTES, Settings
from bot.errors import OhbotError
from bot.storage.staff import ROLE_LABELS, ROLES, LoginFailed, LoginLocked, Session, Staff, StaffStore, new_password
from bot.web import charts
from bot.web.report_cache import ReportCache, Snapshot

log = logging.getLogger("ohbot.console")

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static" / "console"
COOKIE = "ohbot_console"
LOGIN_COOKIE = "ohbot_console_login"  # the log-in form's CSRF token (no session yet)
PREFIX = "/console"
UPLOAD_SLACK = 64 * 1024  # multipart headers and the form's other fields around an upload
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATUS_LABELS = {"met": "已达标", "not_met": "未达标", "undecided": "尚难判定", "no_data": "无数据"}
REPORT_CACHE_SIZE = 32  # reports kept per worker (campaign × grouping × region)
REPORT_FILES = {"csv": ("groups.csv", "text/csv; charset=utf-8"),
                "xlsx": ("report.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                "html": ("report.html", "text/html; charset=utf-8")}
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _environment() -> Environment:
    """Jinja2 with autoescape on for every template (also the SVG partials)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x, d=1: "–" if x is None else f"{x * 100:.{d}f}%"
    env.filters["num"] = lambda x, d=2: "–" if x is None else f"{x:.{d}f}"
    env.filters["status"] = lambda s: STATUS_LABELS.get(str(s), str(s))
    env.filters["urlpart"] = lambda s: quote(str(s), safe="")
    return env


class Forbidden(Exception):
    """The account's role does not allow this (403)."""


class Console:
    """What the console's routes share: settings, the accounts, the state database, bank and taxonomy."""

    def __init__(self, settings: Settings, store: StaffStore | None = None) -> None:
        """Nothing is opened yet: the database and the bank are opened at first use."""
        self.settings = settings
        self._store = store
        self._state: Any = None
        self._bank: Any = None
        self._taxonomy: Any = None
        self._lock = threading.RLock()
        self._reports: ReportCache[dict[str, Any]] = ReportCache(REPORT_CACHE_SIZE, StoredReports(self))
        self.templates = Jinja2Templates(env=_environment())

    # ---- lazily opened resources --------------------------------------------------------------------
    @property
    def store(self) -> StaffStore:
        """The staff accounts (schema made current at first use)."""
        with self._lock:
            if self._store is None:  # on the state database's engine: one connection pool per worker
                self._store = StaffStore(self.state.engine)
            return self._store

    @property
    def state(self) -> Any:
        """The state database (campaigns, forms, responses, gaps)."""
        with self._lock:
            if self._state is None:
                from bot.storage.state import open_state

                self._state = open_state(self.settings)
            return self._state

    @property
    def bank(self) -> Any:
        """The quiz bank by id (scoring imports) and its item infos (reports)."""
        with self._lock:
            if self._bank is None:
                from bot.awareness.campaigns import item_infos
                from bot.quiz.bank import load_bank

                items = load_bank(self.settings.knowledge_dir)
                self._bank = ({i.id: i for i in items}, item_infos(items))
            return self._bank

    @property
    def taxonomy(self) -> dict[str, Any]:
        """knowledge/taxonomy.yaml."""
        with self._lock:
            if self._taxonomy is None:
                from bot.taxonomy import load_taxonomy

                self._taxonomy = load_taxonomy(self.settings.knowledge_dir)
            return self._taxonomy

    # ---- reports, kept per data version ------------------------------------------------------------
    def report(self, name: str, by: Sequence[str], region: str | None,
               wait: float | None = None) -> Snapshot[dict[str, Any]]:
        """`campaign_report(state, name, bank, by=by, region=region)` as a `Snapshot`, kept while the
        campaign's data are unchanged: a report of 10^5 respondents takes seconds to compute, a page view
        must not. The version holds a fingerprint of everything the report reads (the campaign's forms
        and answers, the respondents' profiles), so a new answer, an import or a /forget is computed for
        the next view. `wait`: seconds a page waits for that computation before the previous figures are
        shown, marked with their time (bot/web/report_cache.py); None (downloads): the current data."""
        from bot.awareness.campaigns import campaign_report

        _, infos = self.bank
        key = json.dumps([name, list(by), region], ensure_ascii=False)
        version = json.dumps(report_fingerprint(self.state, name), default=str)
        return self._reports.get(key, version,
                                 lambda: campaign_report(self.state, name, infos, by=list(by), region=region),
                                 wait)

    # ---- rendering ----------------------------------------------------------------------------------
    def page(self, request: Request, name: str, session: Session | None, status_code: int = 200,
             **context: Any) -> Response:
        """A template rendered with the account, its CSRF token and the navigation."""
        account = session.staff if session else None
        context.update(me=account, csrf=session.csrf if session else "", prefix=PREFIX, role_labels=ROLE_LABELS)
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


class StoredReports:
    """The last computed report of each key in the state database (table report_snapshots), so a worker
    that has computed nothing yet (after a restart, or another worker) shows it at once, marked with its
    time, while it computes the current one. Keys and versions are JSON text; bodies the report's JSON."""

    def __init__(self, console: Console) -> None:
        """The console whose state database holds the table."""
        self.console = console

    def load(self, key: Hashable) -> tuple[Hashable, float, dict[str, Any]] | None:
        """(version, computed_at, report) stored for `key`, or None."""
        from sqlalchemy import select

        from bot.storage.tables import report_snapshots as t

        with self.console.state.read() as conn:
            row = conn.execute(select(t.c.version, t.c.computed_at, t.c.body).where(t.c.key == key)).first()
        return None if row is None else (row.version, float(row.computed_at), json.loads(row.body))

    def save(self, key: Hashable, version: Hashable, computed_at: float, value: dict[str, Any]) -> None:
        """Replace the stored report of `key`."""
        from bot.storage.db import upsert
        from bot.storage.tables import report_snapshots as t

        body = json.dumps(value, ensure_ascii=False)
        with self.console.state.write() as conn:
            upsert(conn, t, {"key": key, "version": version, "computed_at": computed_at, "body": body}, on=["key"])


def report_fingerprint(state: Any, campaign: str) -> tuple:
    """What a campaign report depends on, in three index-only queries: the campaign's forms (their
    count: a /forget deletes some), its newest answer (a form completes with its last answer; an
    import adds answers) and the newest profile change of any user."""
    from sqlalchemy import text

    with state.read() as conn:
        forms = conn.execute(text("SELECT count(*) FROM forms WHERE campaign = :c"), {"c": campaign}).scalar()
        answers = conn.execute(text("SELECT max(id) FROM responses WHERE campaign = :c"), {"c": campaign}).scalar()
        profiles = conn.execute(text("SELECT max(updated), count(*) FROM users")).one()
    return (forms, answers, *profiles)


async def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work (database, reports, files) in a worker thread."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Where to go after log-in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


Handler = Callable[[Request, Session], Awaitable[Response]]


def guarded(console: Console, permission: str, handler: Handler,
            before_new_password: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of a page: a session or a redirect to the log-in; the role's permission or 403;
    on POST the session's CSRF token or 403. An account still on its one-time password is sent to
    the password page first (except for that page and the log-out: `before_new_password`)."""

    async def endpoint(request: Request) -> Response:
        session = await _run(console.store.session, request.cookies.get(COOKIE))
        if session is None:
            if request.method != "GET":
                return Response("session expired: log in again", status_code=403, headers=SECURITY_HEADERS)
            raw = request.scope.get("raw_path") or request.url.path.encode()  # as requested (still %-encoded)
            target = raw.decode("latin-1") + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)
        if not session.staff.can(permission):
            return console.page(request, "console/error.html", session, status_code=403,
                                message="您的账户角色无权进行此操作。")
        if session.staff.must_change and not before_new_password:
            return RedirectResponse(f"{PREFIX}/password", status_code=303)
        if request.method == "POST":
            if request.headers.get("content-type", "").startswith("multipart/"):  # an upload: size first
                length = request.headers.get("content-length", "")
                if not length.isdigit():
                    return console.page(request, "console/error.html", session, status_code=411,
                                        message="上传请求缺少长度（Content-Length）。")
                if int(length) > UPLOAD_MAX_BYTES + UPLOAD_SLACK:
                    return console.page(request, "console/error.html", session, status_code=413,
                                        message=f"文件超过 {UPLOAD_MAX_BYTES // 1024 // 1024} MB 上限，未导入。")
            form = await request.form(max_files=1, max_fields=50, max_part_size=256 * 1024)
            token = form.get("csrf")
            if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
                return console.page(request, "console/error.html", session, status_code=403,
                                    message="表单已失效（CSRF 校验失败），请返回重新提交。")
        try:
            return await handler(request, session)
        except Forbidden:
            return console.page(request, "console/error.html", session, status_code=403,
                                message="您的账户角色无权进行此操作。")
        except OhbotError as exc:
            return console.page(request, "console/error.html", session, status_code=400, message=str(exc))

    return endpoint


# ---- log-in -----------------------------------------------------------------------------------------
def login_routes(console: Console) -> list[BaseRoute]:
    """GET/POST /console/login and POST /console/logout."""

    def login_page(request: Request, error: str = "", status_code: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = console.page(request, "console/login.html", None, status_code=status_code, error=error,
                                login_csrf=token, next=_safe_next(request.query_params.get("next")))
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                            secure=_secure(request))
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page(request)
        form = await request.form(max_files=0, max_fields=10, max_part_size=8192)
        cookie = request.cookies.get(LOGIN_COOKIE) or ""
        token = form.get("csrf")
        if not cookie or not isinstance(token, str) or not hmac.compare_digest(token, cookie):
            return login_page(request, "表单已失效，请重新登录。", status_code=403)
        name, password = str(form.get("name") or ""), str(form.get("password") or "")
        try:
            session = await _run(console.store.login, name, password, _client_ip(request))
        except LoginLocked:
            return login_page(request, "登录失败次数过多，账户已临时锁定，请 15 分钟后再试。", status_code=429)
        except LoginFailed:
            return login_page(request, "账户名或密码错误。", status_code=401)
        response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
        response.set_cookie(COOKIE, session.token, path=PREFIX, httponly=True, samesite="lax",
                            secure=_secure(request))
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        log.info("console log-in: %s", session.staff.name)
        return response

    async def logout(request: Request, session: Session) -> Response:
        await _run(console.store.logout, session.token)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    return [Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", guarded(console, "view", logout, before_new_password=True), methods=["POST"])]


# ---- overview and campaigns ---------------------------------------------------------------------------
def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """The overall block with the interval the status uses (design-based when the report has a design)."""
    from bot.awareness.report import _ci_keys

    low, high = _ci_keys(report)
    o = report["overall"]
    return {**o, "shown_rate": charts.block_rate(o), "shown_low": o.get(low), "shown_high": o.get(high),
            "designed": low != "ci_low"}


def _as_of(snapshot: Snapshot[dict[str, Any]]) -> dict[str, Any]:
    """When the figures shown were computed (China time) and whether newer data are being computed."""
    from bot.awareness.campaigns import TZ

    return {"time": datetime.fromtimestamp(snapshot.computed_at, TZ).strftime("%Y-%m-%d %H:%M:%S"),
            "fresh": snapshot.fresh}


def overview_data(console: Console, account: Staff) -> list[dict[str, Any]]:
    """Every open campaign with its headline figures (the account's region only, if it has one)."""
    from bot.quiz import forms as quiz

    out = []
    for c in quiz.list_campaigns(console.state):
        if c.status != "open":
            continue
        snapshot = console.report(c.name, (), account.region, wait=console.settings.report_wait)
        report = snapshot.value
        out.append({"campaign": c, "overall": _headline(report), "target": report["target"],
                    "as_of": _as_of(snapshot),
                    "chart": charts.rate_bars([("总体", _headline(report), "overall")], report["target"],
                                              ("shown_low", "shown_high"))})
    return out


def campaign_routes(console: Console, extra: list[BaseRoute]) -> list[BaseRoute]:
    """The overview, the campaigns list with create and close, each campaign's report and its files;
    `extra`: other routes under /campaigns/NAME/… (they must precede the report page's)."""

    async def overview(request: Request, session: Session) -> Response:
        rows = await _run(overview_data, console, session.staff)
        return console.page(request, "console/overview.html", session, campaigns=rows)

    async def campaigns(request: Request, session: Session) -> Response:
        from bot.awareness.campaigns import campaign_counts
        from bot.quiz import forms as quiz

        def load() -> tuple[list, dict]:
            return quiz.list_campaigns(console.state), campaign_counts(console.state)

        found, counts = await _run(load)
        if session.staff.region:
            found = [c for c in found if not c.region or c.region == session.staff.region]
        return console.page(request, "console/campaigns.html", session, campaigns=found, counts=counts,
                            today=date.today().isoformat(), defaults={"threshold": AWARE_THRESHOLD,
                                                                      "form_size": FORM_SIZE})

    async def create(request: Request, session: Session) -> Response:
        from bot.errors import CampaignError
        from bot.quiz import forms as quiz

        form = await request.form()
        name = str(form.get("name") or "").strip()[:100]
        region = str(form.get("region") or "").strip()[:100] or None
        if session.staff.region:
            region = session.staff.region  # an analyst of a region runs campaigns of that region
        try:
            threshold = float(str(form.get("threshold") or AWARE_THRESHOLD))
            form_size = int(str(form.get("form_size") or FORM_SIZE))
        except ValueError:
            raise CampaignError("阈值是 0–1 之间的小数，每卷题数是整数") from None
        await _run(quiz.create_campaign, console.state, name, str(form.get("start") or ""),
                   str(form.get("end") or ""), region=region, threshold=threshold, form_size=form_size)
        await _run(console.store.audit, session.staff, "campaign_create", name,
                   f"region={region or '-'} threshold={threshold} form_size={form_size}")
        return RedirectResponse(f"{PREFIX}/campaigns/{quote(name, safe='')}", status_code=303)

    async def close(request: Request, session: Session) -> Response:
        from bot.quiz import forms as quiz

        name = request.path_params["name"]
        campaign = await _run(quiz.get_campaign, console.state, name)
        _check_campaign_region(session.staff, campaign)
        await _run(quiz.close_campaign, console.state, name)
        await _run(console.store.audit, session.staff, "campaign_close", name)
        return RedirectResponse(f"{PREFIX}/campaigns/{quote(name, safe='')}", status_code=303)

    async def report_page(request: Request, session: Session) -> Response:
        by = _by(request)
        data = await _run(report_data, console, request.path_params["name"], by, session.staff)
        return console.page(request, "console/report.html", session, by=by, **data)

    async def download(request: Request, session: Session) -> Response:
        kind = request.path_params["kind"]
        if kind not in REPORT_FILES:
            return Response("not found", status_code=404)
        name, by = request.path_params["name"], _by(request)
        path, folder = await _run(report_file, console, name, by, session.staff, kind)
        await _run(console.store.audit, session.staff, "export", name,
                   f"report {kind} by={by}" + (f" region={session.staff.region}" if session.staff.region else ""))
        filename, media = REPORT_FILES[kind]
        from starlette.background import BackgroundTask

        return FileResponse(path, media_type=media, filename=f"{_file_stem(name)}-{filename}",
                            background=BackgroundTask(folder.cleanup), headers=SECURITY_HEADERS)

    return [
        Route("/", guarded(console, "view", overview), methods=["GET"]),
        Route("/campaigns", guarded(console, "view", campaigns), methods=["GET"]),
        Route("/campaigns", guarded(console, "campaigns", create), methods=["POST"]),
        # a campaign name may hold "/" (path parameters are decoded): the specific routes come first
        Route("/campaigns/{name:path}/close", guarded(console, "campaigns", close), methods=["POST"]),
        Route("/campaigns/{name:path}/report.{kind}", guarded(console, "export", download), methods=["GET"]),
        *extra,
        Route("/campaigns/{name:path}", guarded(console, "view", report_page), methods=["GET"]),
    ]


def _check_campaign_region(account: Staff, campaign: Any) -> None:
    """An analyst of a region changes only that region's campaigns."""
    if account.region and campaign.region and campaign.region != account.region:
        raise Forbidden()


def _by(request: Request) -> str:
    """The grouping field of a report page (default industry)."""
    from bot.awareness.report import GROUP_KEYS

    by = request.query_params.get("by") or "industry"
    return by if by in GROUP_KEYS else "industry"


def _file_stem(name: str) -> str:
    """A campaign name fit for a file name (Content-Disposition)."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_")[:60] or "campaign"


def report_data(console: Console, name: str, by: str, account: Staff) -> dict[str, Any]:
    """Everything the report page shows: `campaign_report(by=[by])` (the JSON of `ohbot report --by`)
    for the account's region, labelled for people, with the chart geometry."""
    from bot.awareness.campaigns import label_report
    from bot.awareness.report import GROUP_KEYS, _ci_keys
    from bot.quiz import forms as quiz

    campaign = quiz.get_campaign(console.state, name)
    snapshot = console.report(name, (by,), account.region, wait=console.settings.report_wait)
    report = snapshot.value
    labelled = label_report(report, console.taxonomy)
    low, high = _ci_keys(report)
    target = report["target"]
    rows = [("总体", labelled["overall"], "overall")]
    rows += [(" / ".join(g["key"].values()) + ("*" if g["small_sample"] else ""), g,
              "small" if g["small_sample"] else "ranked") for g in labelled["groups"] if g["n"] > 0]
    labels = labelled["labels"]
    return {
        "campaign": campaign, "report": report, "labelled": labelled, "headline": _headline(report),
        "ci_low_key": low, "ci_high_key": high, "target": target,
        "group_chart": charts.rate_bars(rows, target, (low, high)),
        "trend_chart": charts.trend(labelled["months"], target, (low, high)),
        "fields": [(k, labels.get(k, k)) for k in GROUP_KEYS], "by_label": labels.get(by, by),
        "min_n": report["min_n"], "as_of": _as_of(snapshot),
    }


def report_file(console: Console, name: str, by: str, account: Staff, kind: str) -> tuple[Path, Any]:
    """One file of `write_outputs` (what `ohbot report --by BY --out DIR` writes) in a temporary folder
    removed after sending: (path, folder)."""
    from bot.awareness.campaigns import label_report
    from bot.awareness.report import write_outputs

    report = console.report(name, (by,), account.region).value  # the current data, however long it takes
    folder = tempfile.TemporaryDirectory(prefix="ohbot-report-")
    try:
        paths = write_outputs(label_report(report, console.taxonomy), Path(folder.name))
    except BaseException:
        folder.cleanup()
        raise
    wanted = REPORT_FILES[kind][0]
    return next(p for p in paths if p.name == wanted), folder


# ---- staff accounts and the audit log (admins) ------------------------------------------------------
def admin_routes(console: Console) -> list[BaseRoute]:
    """GET/POST /console/users (list, add with a one-time password) and GET /console/audit."""

    async def users(request: Request, session: Session) -> Response:
        accounts = await _run(console.store.accounts)
        return console.page(request, "console/users.html", session, accounts=accounts, roles=ROLES)

    async def add_user(request: Request, session: Session) -> Response:
        form = await request.form()
        password = new_password()
        account = await _run(console.store.add, str(form.get("name") or ""), str(form.get("role") or ""), password,
                             region=str(form.get("region") or "") or None, one_time=True)
        await _run(console.store.audit, session.staff, "user_add", account.name,
                   f"role={account.role}" + (f" region={account.region}" if account.region else ""))
        accounts = await _run(console.store.accounts)
        return console.page(request, "console/users.html", session, accounts=accounts, roles=ROLES,
                            created=account, password=password)

    async def audit(request: Request, session: Session) -> Response:
        rows = await _run(console.store.audit_log, 500)
        return console.page(request, "console/audit.html", session, rows=rows)

    async def password_page(request: Request, session: Session) -> Response:
        if request.method == "GET":
            return console.page(request, "console/password.html", session)
        form = await request.form()
        old, new, again = (str(form.get(k) or "") for k in ("old", "new", "again"))
        if not await _run(console.store.verify, session.staff, old):
            return console.page(request, "console/password.html", session, status_code=400, error="当前密码不对。")
        if new != again:
            return console.page(request, "console/password.html", session, status_code=400,
                                error="两次输入的新密码不一致。")
        if new == old:
            return console.page(request, "console/password.html", session, status_code=400,
                                error="新密码不能与当前密码相同。")
        await _run(console.store.set_password, session.staff.name, new, keep_session=session.token)
        await _run(console.store.audit, session.staff, "password_change", session.staff.name)
        return RedirectResponse(PREFIX + "/", status_code=303)

    return [Route("/password", guarded(console, "view", password_page, before_new_password=True),
                  methods=["GET", "POST"]),
            Route("/users", guarded(console, "users", users), methods=["GET"]),
            Route("/users", guarded(console, "users", add_user), methods=["POST"]),
            Route("/audit", guarded(console, "audit", audit), methods=["GET"])]


def routes(settings: Settings, store: StaffStore | None = None) -> list[BaseRoute]:
    """The console's routes for `create_app(routes=...)`: everything under /console."""
    from bot.web import console_data as data

    console = Console(settings, store)
    inner: list[BaseRoute] = [
        *login_routes(console), *campaign_routes(console, data.campaign_routes(console)), *admin_routes(console),
        *data.routes(console),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="console-static"),
    ]

    async def bare(request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=307)

    return [Route(PREFIX, bare, methods=["GET"]), Mount(PREFIX, routes=inner)]

