"""Secrets out of the logs: the configured secrets (app secrets, callback tokens, AES keys, the
Telegram token) and every access token fetched at run time are replaced by "<redacted>" in each
log record's message and traceback, and so are the values of access_token=, secret= and
corpsecret= in any URL a library prints."""
from __future__ import annotations

import logging
import re
import threading

URL_SECRET = re.compile(r"((?:access_token|corpsecret|secret)=)[^&\s'\"<>]+")
MASK = "<redacted>"

_known: set[str] = set()
_known_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Mask this value from now on (an access token just fetched, a secret from the settings)."""
    if secret and len(secret) >= 6:  # shorter values would mask ordinary words
        with _known_lock:
            _known.add(secret)


def redact(text: str) -> str:
    """`text` with every known secret and every URL secret parameter masked."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return URL_SECRET.sub(lambda m: m.group(1) + MASK, text)


class SecretFilter(logging.Filter):
    """A handler filter applying `redact` to the formatted message, the traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            message = str(record.msg)
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(secrets: list[str]) -> None:
    """Remember `secrets` and put the filter on every handler of the root logger (configuring
    plain console logging first if nothing is configured); quiet the HTTP libraries, whose debug
    lines carry request URLs."""
    for secret in secrets:
        remember(secret)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("urllib3", "httpx", "httpcore", "hpack", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    for handler in root.handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
