"""All configuration in one place: command-line flags override environment variables override defaults.

Every other module receives a `Settings` value; nothing else reads the environment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError

DEFAULT_MODEL = "m3e-small"

# Awareness campaigns: the one place of each default (CLI flags, reports and the quiz read these).
AWARENESS_TARGET = 0.85  # the plans' target 重点人群职业健康知识知晓率 (≥ 85 %)
AWARE_THRESHOLD = 0.8  # score rate from which a respondent counts as aware (national literacy monitoring)
MIN_GROUP_N = 30  # groups smaller than this are listed but flagged, not ranked
FORM_SIZE = 20  # items per quiz form
# Telegram long polling: 409 Conflict from getUpdates for this long (another process polls with the
# same token) makes the bot exit with one line instead of answering alongside it.
TELEGRAM_CONFLICT_SECONDS = 20.0
STATS_MIN_USERS = 2  # /stats shows an unanswered question only once this many different users asked it
DEFAULT_LISTEN = "127.0.0.1"  # what `serve` and the Telegram webhook bind: loopback, behind a TLS proxy (--listen)
# The public web chat (bot/web/webchat.py): requests (questions and button presses) per client IP
# per window, counted in the state database so that every `ohbot serve` worker shares one budget.
# Generous because a factory's workers may all share one public IP; 0 switches the limit off.
WEBCHAT_RATE_LIMIT = 60
WEBCHAT_RATE_WINDOW = 60  # seconds
# The console's report pages (bot/web/report_cache.py): seconds a page waits for figures of new data
# before it shows the previous figures, marked with their time, while the new ones are computed.
REPORT_WAIT = 0.5

# The web console (issue #13; bot/storage/staff.py, bot/web/console.py).
SESSION_IDLE_SECONDS = 2 * 3600  # a console session ends after two hours without a request
SESSION_MAX_SECONDS = 12 * 3600  # and after twelve hours in any case (one working day)
LOGIN_MAX_FAILURES = 5  # failed log-ins of one account within LOGIN_WINDOW_SECONDS lock it ...
LOGIN_MAX_FAILURES_PER_IP = 20  # ... and this many from one address lock that address, whatever the names
LOGIN_WINDOW_SECONDS = 15 * 60  # ... for the rest of this window after the last failure
MIN_PASSWORD_CHARS = 10
UPLOAD_MAX_BYTES = 50 * 1024 * 1024  # a response CSV uploaded in the console (the CLI import has no limit)
CONSOLE_PORT = 8000  # `ohbot serve` / `make run` listen on 127.0.0.1:8000
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = REPO_ROOT / "knowledge"
WECHAT_API_BASE_URL = "https://api.weixin.qq.com/cgi-bin/"
WECOM_API_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
WECHAT_SETTINGS = ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN")  # WECHAT_AES_KEY is optional
WECOM_SETTINGS = ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")


def _redact(url: str) -> str:
    """A database URL without its password, for messages (`postgresql://u:***@host/db`)."""
    return re.sub(r"(//[^/:@]+:)[^/@]*@", r"\1***@", url)


def _env_ids(value: str | None) -> frozenset[int]:
    ids = set()
    for part in (value or "").replace(";", ",").split(","):
        part = part.strip()
        if part.lstrip("-").isdigit():
            ids.add(int(part))
    return frozenset(ids)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    model: str = DEFAULT_MODEL
    backend: str = "onnx"  # "onnx" (exported once, locally, from the model's own weights) or "torch"
    telegram_token: str | None = None
    telegram_api_base_url: str | None = None
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    salt: str | None = None  # OHBOT_SALT: the old pseudonym salt (kept working; see bot/storage/state.py)
    # the pseudonym key (HMAC-SHA256): OHBOT_PSEUDONYM_KEY, else the 0600 file OHBOT_PSEUDONYM_KEY_FILE
    # (default ~/.config/ohbot/pseudonym.key), outside the data directory so a copy of it reverses nothing
    pseudonym_key: str | None = field(default=None, repr=False)
    pseudonym_key_file: Path = field(default_factory=lambda: default_key_file({}))
    quiz_seed: int | None = None  # OHBOT_QUIZ_SEED: reproducible quiz forms (tests, demonstrations)
    database_url: str | None = None  # OHBOT_DATABASE_URL; None: the SQLite file DATA_DIR/ohbot.db
    telegram_webhook_url: str | None = None  # the public URL of `ohbot serve`'s /telegram
    # WeChat Official Account (公众号); secrets are left out of repr so a logged Settings shows none
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = field(default=None, repr=False)
    wechat_token: str | None = field(default=None, repr=False)
    wechat_aes_key: str | None = field(default=None, repr=False)  # None: plaintext mode only
    wechat_api_base_url: str = WECHAT_API_BASE_URL
    # WeCom (企业微信) self-built app
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: str | None = field(default=None, repr=False)
    wecom_token: str | None = field(default=None, repr=False)
    wecom_aes_key: str | None = field(default=None, repr=False)
    wecom_api_base_url: str = WECOM_API_BASE_URL
    # the web chat: requests per client IP per WEBCHAT_RATE_WINDOW (OHBOT_WEBCHAT_RATE_LIMIT; 0: off) and
    # the sites allowed to show it in an iframe (OHBOT_WEBCHAT_EMBED_ORIGINS; none: this site only)
    webchat_rate_limit: int = WEBCHAT_RATE_LIMIT
    webchat_embed_origins: tuple[str, ...] = ()
    report_wait: float = REPORT_WAIT  # OHBOT_REPORT_WAIT: see REPORT_WAIT
    # tests only (OHBOT_TEST_SLOW_REPLY="MARKER:SECONDS"): text containing MARKER is answered that late
    test_slow_reply: tuple[str, float] | None = None

    @property
    def wechat_enabled(self) -> bool:
        """The Official Account channel is on (its settings are complete; checked in load_settings)."""
        return bool(self.wechat_app_id)

    @property
    def wecom_enabled(self) -> bool:
        """The WeCom channel is on."""
        return bool(self.wecom_corp_id)

    def secrets(self) -> list[str]:
        """Every configured secret, for masking in logs."""
        values = [self.telegram_token, self.wechat_app_secret, self.wechat_token, self.wechat_aes_key,
                  self.wecom_secret, self.wecom_token, self.wecom_aes_key]
        return [v for v in values if v]

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        """Local exports of the embedding model (the ONNX files made from its weights)."""
        return self.data_dir / "models"

    @property
    def state_url(self) -> str:
        """The state database as a URL: `OHBOT_DATABASE_URL`, else the SQLite file DATA_DIR/ohbot.db.
        A property, not a stored default, so a Settings with another data_dir follows it."""
        return self.database_url or f"sqlite:///{self.data_dir / 'ohbot.db'}"

    @property
    def state_db(self) -> Path:
        """The file of a `sqlite:///` state URL (messages, tests and tools that need the file itself);
        a ConfigError for a PostgreSQL URL, which has no file."""
        url = self.state_url
        for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
            if url.startswith(prefix) and len(url) > len(prefix):
                return Path(url[len(prefix):].split("?", 1)[0])
        raise ConfigError(f"the state database {_redact(url)} is not a SQLite file")


def default_key_file(env: dict[str, str]) -> Path:
    """Where the pseudonym key lives by default: $XDG_CONFIG_HOME/ohbot/pseudonym.key, else
    ~/.config/ohbot/pseudonym.key: the user's own configuration, never inside a data directory."""
    base = env.get("XDG_CONFIG_HOME") or os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ohbot" / "pseudonym.key"


def _channel(env: dict[str, str], names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str] | None:
    """The values of one channel's settings: None when none is set (the channel is off); a
    ConfigError naming the missing ones when only some are."""
    values = {n: (env.get(n) or "").strip() for n in names + optional}
    if not any(values.values()):
        return None
    missing = [n for n in names if not values[n]]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set (set all of {', '.join(names)}, or none to switch it off)")
    for name in names + optional:
        if name.endswith("_AES_KEY") and values[name] and len(values[name]) != 43:
            raise ConfigError(f"{name} must be the 43-character EncodingAESKey from the platform's settings page")
    return values


def _base_url(value: str | None, default: str) -> str:
    """An API base URL ending in a slash (wechatpy appends paths such as message/custom/send)."""
    value = (value or "").strip() or default
    return value if value.endswith("/") else value + "/"


def _slow_reply(value: str | None) -> tuple[str, float] | None:
    """OHBOT_TEST_SLOW_REPLY="MARKER:SECONDS" (tests only)."""
    marker, _, seconds = (value or "").rpartition(":")
    try:
        return (marker, float(seconds)) if marker else None
    except ValueError:
        raise ConfigError("OHBOT_TEST_SLOW_REPLY must look like MARKER:SECONDS") from None


def load_settings(
    data_dir: str | None = None,
    knowledge_dir: str | None = None,
    model: str | None = None,
    backend: str | None = None,
    env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> Settings:
    """Build settings from flags (arguments) and environment variables (OHBOT_*, TELEGRAM_*, WECHAT_*,
    WECOM_*)."""
    env = dict(os.environ) if env is None else env
    backend = backend or env.get("OHBOT_EMBEDDING_BACKEND") or "onnx"
    if backend not in ("onnx", "torch"):
        raise ConfigError(f"embedding backend must be 'onnx' or 'torch', not {backend!r}")
    return Settings(
        data_dir=Path(data_dir or env.get("OHBOT_DATA_DIR") or "data"),
        knowledge_dir=Path(knowledge_dir or env.get("OHBOT_KNOWLEDGE_DIR") or DEFAULT_KNOWLEDGE_DIR),
        model=model or env.get("OHBOT_EMBEDDING_MODEL") or DEFAULT_MODEL,
        backend=backend,
        telegram_token=env.get("TELEGRAM_BOT_TOKEN") or None,
        telegram_api_base_url=env.get("TELEGRAM_API_BASE_URL") or None,
        admin_ids=_env_ids(env.get("OHBOT_ADMIN_IDS")),
        salt=env.get("OHBOT_SALT") or None,
        pseudonym_key=env.get("OHBOT_PSEUDONYM_KEY") or None,
        pseudonym_key_file=Path(env["OHBOT_PSEUDONYM_KEY_FILE"]) if env.get("OHBOT_PSEUDONYM_KEY_FILE")
        else default_key_file(env),
        quiz_seed=int(env["OHBOT_QUIZ_SEED"]) if (env.get("OHBOT_QUIZ_SEED") or "").isdecimal() else None,
        database_url=_database_url(database_url or env.get("OHBOT_DATABASE_URL") or None),
        telegram_webhook_url=env.get("TELEGRAM_WEBHOOK_URL") or None,
        **_wechat_settings(env),
        webchat_rate_limit=_count(env.get("OHBOT_WEBCHAT_RATE_LIMIT"), WEBCHAT_RATE_LIMIT, "OHBOT_WEBCHAT_RATE_LIMIT"),
        webchat_embed_origins=_origins(env.get("OHBOT_WEBCHAT_EMBED_ORIGINS")),
        report_wait=_seconds(env.get("OHBOT_REPORT_WAIT"), REPORT_WAIT, "OHBOT_REPORT_WAIT"),
        test_slow_reply=_slow_reply(env.get("OHBOT_TEST_SLOW_REPLY")),
    )


def _count(value: str | None, default: int, name: str) -> int:
    """A whole number ≥ 0 from the environment, the default when unset."""
    value = (value or "").strip()
    if not value:
        return default
    if not value.isdecimal():
        raise ConfigError(f"{name} must be a whole number ≥ 0, not {value!r}")
    return int(value)


def _seconds(value: str | None, default: float, name: str) -> float:
    """A number of seconds ≥ 0 from the environment, the default when unset."""
    value = (value or "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigError(f"{name} must be a number of seconds ≥ 0, not {value!r}")
    return seconds


def _origins(value: str | None) -> tuple[str, ...]:
    """Origins such as `https://www.example.gov.cn`, separated by spaces or commas."""
    origins = tuple(o.rstrip("/") for o in re.split(r"[\s,]+", value or "") if o)
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d+)?", origin):
            raise ConfigError(f"OHBOT_WEBCHAT_EMBED_ORIGINS: {origin!r} is not an origin like https://www.example.gov.cn")
    return origins


def _database_url(url: str | None) -> str | None:
    """A state database URL as given, checked for a scheme ohbot speaks (SQLite or PostgreSQL)."""
    if url is None:
        return None
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"database URL must start with sqlite:/// or postgresql://, not {_redact(url)!r}")
    return url


def _wechat_settings(env: dict[str, str]) -> dict:
    """The Official Account's and the WeCom app's settings (a channel without them is off)."""
    result: dict = {"wechat_api_base_url": _base_url(env.get("WECHAT_API_BASE_URL"), WECHAT_API_BASE_URL),
                    "wecom_api_base_url": _base_url(env.get("WECOM_API_BASE_URL"), WECOM_API_BASE_URL)}
    oa = _channel(env, WECHAT_SETTINGS, ("WECHAT_AES_KEY",))
    if oa:
        result.update(wechat_app_id=oa["WECHAT_APP_ID"], wechat_app_secret=oa["WECHAT_APP_SECRET"],
                      wechat_token=oa["WECHAT_TOKEN"], wechat_aes_key=oa["WECHAT_AES_KEY"] or None)
    wecom = _channel(env, WECOM_SETTINGS)
    if wecom:
        if not wecom["WECOM_AGENT_ID"].isdecimal():
            raise ConfigError("WECOM_AGENT_ID must be the app's numeric AgentId")
        result.update(wecom_corp_id=wecom["WECOM_CORP_ID"], wecom_agent_id=int(wecom["WECOM_AGENT_ID"]),
                      wecom_secret=wecom["WECOM_SECRET"], wecom_token=wecom["WECOM_TOKEN"],
                      wecom_aes_key=wecom["WECOM_AES_KEY"])
    return result
