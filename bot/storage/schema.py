"""The one schema of the bot's state database: every table and index, in one place.

Written as portable SQL (SQLite today; the statements avoid SQLite-only syntax so the same schema
can move to PostgreSQL). `State` applies it when it opens the database; every statement is
idempotent (`if not exists`), so opening an existing database changes nothing. A feature that
needs a table adds it here, not in its own module.
"""
from __future__ import annotations

# Profile fields kept per user and per imported respondent: the codes of knowledge/taxonomy.yaml's
# `profile` section (tests/test_taxonomy.py checks that the two agree). `enterprise` (optional, imports
# only) is the bureau's own enterprise code, stored hashed like user keys: the sampling unit of
# design-based awareness intervals (bot/awareness/design.py), never shown raw.
PROFILE_FIELDS = ("role", "region", "industry", "enterprise_size", "sex", "age_band", "education", "years_service",
                  "enterprise")
# Profile fields added after the users table was first released: their columns come last, where
# ALTER TABLE (ADDED_COLUMNS) and the migrations (bot/storage/migrations/) put them.
_LATER_PROFILE_FIELDS = ("enterprise",)

_PROFILE_COLUMNS = ", ".join(f"{f} TEXT" for f in PROFILE_FIELDS if f not in _LATER_PROFILE_FIELDS)
_LATER_PROFILE_COLUMNS = "".join(f", {f} TEXT" for f in _LATER_PROFILE_FIELDS)

TABLES: tuple[str, ...] = (
    # users: one row per salted user key; `pending` is the JSON of the step a dialogue waits on
    f"CREATE TABLE IF NOT EXISTS users (key TEXT PRIMARY KEY, {_PROFILE_COLUMNS}, consent INTEGER, "
    f"pending TEXT, created TEXT, updated TEXT{_LATER_PROFILE_COLUMNS})",
    # questions the bot could not answer (for `ohbot gaps`); `norm` folds spelling variants
    "CREATE TABLE IF NOT EXISTS unanswered (id INTEGER PRIMARY KEY, question TEXT, norm TEXT, user TEXT, "
    "asked_at TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_unanswered_norm ON unanswered (norm)",
    # quiz campaigns: threshold and form size are fixed for a campaign's whole life
    "CREATE TABLE IF NOT EXISTS campaigns (name TEXT PRIMARY KEY, start TEXT, \"end\" TEXT, region TEXT, "
    "threshold FLOAT, form_size INTEGER, status TEXT, created TEXT)",
    # forms: the drawn items and their option order (JSON), the next position, counted or practice
    "CREATE TABLE IF NOT EXISTS forms (id TEXT PRIMARY KEY, campaign TEXT, user TEXT, kind TEXT, items TEXT, "
    "position INTEGER, started_at TEXT, completed_at TEXT, source TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_forms_campaign_user ON forms (campaign, user)",
    # responses: one answer per form and item, committed when given
    "CREATE TABLE IF NOT EXISTS responses (id INTEGER PRIMARY KEY, form TEXT, campaign TEXT, user TEXT, "
    "item_id TEXT, answer TEXT, correct INTEGER, answered_at TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_responses_form_item_id ON responses (form, item_id)",
    "CREATE INDEX IF NOT EXISTS idx_responses_campaign ON responses (campaign)",
    # WeChat/WeCom callbacks already taken, so a retried delivery is answered once, also when it reaches
    # another process: `msg_key` is the MsgId (a salted hash for events), `reply` the passive reply
    # given (sent again only to a retry, whose first answer WeChat never received); times in epoch s
    "CREATE TABLE IF NOT EXISTS channel_inbox (channel TEXT NOT NULL, msg_key TEXT NOT NULL, "
    "received_at INTEGER NOT NULL, reply TEXT, PRIMARY KEY (channel, msg_key))",
    "CREATE INDEX IF NOT EXISTS idx_channel_inbox_received ON channel_inbox (received_at)",
    # platform access tokens shared by every process: fetching a new one invalidates the old, so the
    # process holding the lease refreshes it (before `refresh_at`) and every process reads it here
    "CREATE TABLE IF NOT EXISTS access_tokens (name TEXT PRIMARY KEY, token TEXT, refresh_at INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER NOT NULL)",
    # the buttons last shown to a user of a text channel (WeChat, WeCom): what a typed "1" or "B" presses
    "CREATE TABLE IF NOT EXISTS text_menus (\"user\" TEXT PRIMARY KEY, buttons TEXT NOT NULL, updated TEXT)",
    # each user's last question, read with a follow-up ("那离职的时候呢？") and the typed 更多/👍/👎;
    # older than ten minutes it is ignored. more_id is a chunk id (62 bits: TEXT, portable)
    "CREATE TABLE IF NOT EXISTS conversation (\"user\" TEXT PRIMARY KEY, question TEXT, answer_id INTEGER, "
    "more_id TEXT, asked_at TEXT)",
    # every reply to a question (answer, referral or refusal), so that feedback can name what it is about
    "CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY, \"user\" TEXT, question TEXT, norm TEXT, "
    "answer TEXT, decision TEXT, door TEXT, faq_id TEXT, confidence FLOAT, asked_at TEXT)",
    "CREATE INDEX IF NOT EXISTS idx_answers_user ON answers (\"user\")",
    # 👍/👎 on a reply, with its question and text as shown, and the optional reason of a 👎
    "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, answer_id INTEGER, \"user\" TEXT, vote TEXT, "
    "reason TEXT, question TEXT, norm TEXT, answer TEXT, created TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_feedback_answer_user ON feedback (answer_id, \"user\")",
    "CREATE INDEX IF NOT EXISTS idx_feedback_norm ON feedback (norm)",
    # requests per client and time slot (the web chat's per-IP limit, shared by every worker): `key` is a
    # salted hash of the IP, `slot` the epoch seconds // the window; rows older than two slots are pruned
    "CREATE TABLE IF NOT EXISTS rate_limits (key TEXT NOT NULL, slot INTEGER NOT NULL, hits INTEGER NOT NULL, "
    "PRIMARY KEY (key, slot))",
    "CREATE INDEX IF NOT EXISTS idx_rate_limits_slot ON rate_limits (slot)",
    # Telegram updates from receipt until handled (bot/storage/inbox.py): the payload is erased once handled
    "CREATE TABLE IF NOT EXISTS telegram_inbox (update_id BIGINT PRIMARY KEY, payload TEXT, "
    "received_at INTEGER NOT NULL, handled_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS idx_telegram_inbox_handled ON telegram_inbox (handled_at)",
)

# Columns added to a table after databases with it exist: `State` adds each one an existing database
# lacks (ALTER TABLE ... ADD COLUMN is portable; SQLite has no ADD COLUMN IF NOT EXISTS, so State looks first).
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("users", "enterprise", "TEXT"),  # issue #15
)
