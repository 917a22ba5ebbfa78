"""The DDL with which ohbot created its SQLite state file before migrations (bot/storage/schema.py,
removed by issue #14), frozen here: pilots' data directories hold files made by it, and
`migrate.upgrade` / `ensure_schema` must adopt them (tests/storage/test_schema.py).

`LEGACY_DDL` is its last version (users.enterprise, the text channels', the answers' and the web chat's
tables);
`FIRST_DDL` its first (the five tables of revision 0001, users without enterprise).
"""
from __future__ import annotations

_PROFILE = ("role", "region", "industry", "enterprise_size", "sex", "age_band", "education", "years_service")
_PROFILE_COLUMNS = ", ".join(f"{f} TEXT" for f in _PROFILE)

FIRST_DDL: tuple[str, ...] = (
    f"CREATE TABLE IF NOT EXISTS users (key TEXT PRIMARY KEY, {_PROFILE_COLUMNS}, consent INTEGER, "
    f"pending TEXT, created TEXT, updated TEXT)",
    "CREATE TABLE IF NOT EXISTS unanswered (id INTEGER PRIMARY KEY, question TEXT, norm TEXT, user TEXT, "
    "asked_at TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_unanswered_norm ON unanswered (norm)",
    "CREATE TABLE IF NOT EXISTS campaigns (name TEXT PRIMARY KEY, start TEXT, \"end\" TEXT, region TEXT, "
    "threshold FLOAT, form_size INTEGER, status TEXT, created TEXT)",
    "CREATE TABLE IF NOT EXISTS forms (id TEXT PRIMARY KEY, campaign TEXT, user TEXT, kind TEXT, items TEXT, "
    "position INTEGER, started_at TEXT, completed_at TEXT, source TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_forms_campaign_user ON forms (campaign, user)",
    "CREATE TABLE IF NOT EXISTS responses (id INTEGER PRIMARY KEY, form TEXT, campaign TEXT, user TEXT, "
    "item_id TEXT, answer TEXT, correct INTEGER, answered_at TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_responses_form_item_id ON responses (form, item_id)",
    "CREATE INDEX IF NOT EXISTS idx_responses_campaign ON responses (campaign)",
)

LEGACY_DDL: tuple[str, ...] = (
    f"CREATE TABLE IF NOT EXISTS users (key TEXT PRIMARY KEY, {_PROFILE_COLUMNS}, consent INTEGER, "
    f"pending TEXT, created TEXT, updated TEXT, enterprise TEXT)",
    *FIRST_DDL[1:],
    "CREATE TABLE IF NOT EXISTS channel_inbox (channel TEXT NOT NULL, msg_key TEXT NOT NULL, "
    "received_at INTEGER NOT NULL, reply TEXT, PRIMARY KEY (channel, msg_key))",
    "CREATE INDEX IF NOT EXISTS idx_channel_inbox_received ON channel_inbox (received_at)",
    "CREATE TABLE IF NOT EXISTS access_tokens (name TEXT PRIMARY KEY, token TEXT, refresh_at INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS text_menus (\"user\" TEXT PRIMARY KEY, buttons TEXT NOT NULL, updated TEXT)",
    "CREATE TABLE IF NOT EXISTS conversation (\"user\" TEXT PRIMARY KEY, question TEXT, answer_id INTEGER, "
    "more_id TEXT, asked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY, \"user\" TEXT, question TEXT, norm TEXT, "
    "answer TEXT, decision TEXT, door TEXT, faq_id TEXT, confidence FLOAT, asked_at TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_answers_user ON answers (\"user\")",
    "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, answer_id INTEGER, \"user\" TEXT, vote TEXT, "
    "reason TEXT, question TEXT, norm TEXT, answer TEXT, created TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_feedback_answer_user ON feedback (answer_id, \"user\")",
    "CREATE INDEX IF NOT EXISTS idx_feedback_norm ON feedback (norm)",
    "CREATE TABLE IF NOT EXISTS rate_limits (key TEXT NOT NULL, slot INTEGER NOT NULL, hits INTEGER NOT NULL, "
    "PRIMARY KEY (key, slot))",
    "CREATE INDEX IF NOT EXISTS idx_rate_limits_slot ON rate_limits (slot)",
)
