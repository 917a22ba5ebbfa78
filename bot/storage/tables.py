"""The state database's tables as SQLAlchemy Core objects: what queries on the engine are written with.

What: one `Table` per table (users, unanswered, campaigns, forms, responses, the text channels'
channel_inbox, access_tokens, text_menus, the answers' conversation, answers, feedback, the web
chat's rate_limits, and the web console's staff, staff_sessions, staff_login_failures, staff_audit),
with their columns, types and indexes. Queries built from these objects render
correctly on SQLite and on PostgreSQL: reserved words used as column names (`user`, `end`) are quoted
by SQLAlchemy, and an `Integer` primary key becomes SQLite's rowid alias or a PostgreSQL
identity/serial column.

The one schema is this module plus the Alembic revisions (bot/storage/migrations/versions/), which
are what `ohbot db upgrade` and the start-up check apply (bot/storage/migrate.py). A new table or
column needs both; tests/storage/test_schema.py checks (Alembic's autogenerate comparison) that the
head revision makes exactly these tables, and that a SQLite file made before migrations is adopted.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text, text

# Profile fields kept per user and per imported respondent: the codes of knowledge/taxonomy.yaml's
# `profile` section (tests/test_taxonomy.py checks that the two agree). `enterprise` (optional, imports
# only) is the bureau's own enterprise code, stored hashed like user keys: the sampling unit of
# design-based awareness intervals (bot/awareness/design.py), never shown raw.
PROFILE_FIELDS = ("role", "region", "industry", "enterprise_size", "sex", "age_band", "education", "years_service",
                  "enterprise")

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("key", Text, primary_key=True),  # salted hash of "channel:id"
    *(Column(f, Text) for f in PROFILE_FIELDS),
    Column("consent", Integer),
    Column("pending", Text),  # JSON of the step a dialogue waits on
    Column("created", Text),
    Column("updated", Text),
)

unanswered = Table(
    "unanswered", metadata,
    Column("id", Integer, primary_key=True),
    Column("question", Text),
    Column("norm", Text),  # bot.storage.state.gap_key(question)
    Column("user", Text),
    Column("asked_at", Text),
    Index("idx_unanswered_norm", "norm"),
)

campaigns = Table(
    "campaigns", metadata,
    Column("name", Text, primary_key=True),
    Column("start", Text),
    Column("end", Text),
    Column("region", Text),
    Column("threshold", Float),
    Column("form_size", Integer),
    Column("status", Text),  # open | closed
    Column("created", Text),
)

forms = Table(
    "forms", metadata,
    Column("id", Text, primary_key=True),
    Column("campaign", Text),
    Column("user", Text),
    Column("kind", Text),  # counted | practice | superseded (a duplicate counted form, migration 0006)
    Column("items", Text),  # JSON: [{"id": item id, "order": [bank letters in display order]}]
    Column("position", Integer),
    Column("started_at", Text),
    Column("completed_at", Text),
    Column("source", Text),  # bot | import
    # the form's score (migration 0010), written with its answers (quiz.record_answer, the CSV import):
    # answers stored, and of them right (responses.correct neither 0 nor NULL); reports read these
    # instead of re-totalling every form's answers
    Column("answered", Integer, nullable=False, server_default="0"),
    Column("correct", Integer, nullable=False, server_default="0"),
    # its answers' marks (migration 0013), written with them: a JSON array of "1<item id>" (right) and
    # "0<item id>" (wrong), in no particular order; reports count items from these instead of joining
    # every answer to its form
    Column("marks", Text, nullable=False, server_default="[]"),
    # the profile the form was answered with (migration 0009): reports group by these, so a later
    # change of the user's profile, or the same respondent id imported into another campaign, never
    # changes this form's report
    *(Column(f, Text) for f in PROFILE_FIELDS),
    Index("idx_forms_campaign_user", "campaign", "user"),
    # one counted form per campaign and user, whichever process inserts it (migration 0006)
    Index("uq_forms_counted", "campaign", "user", unique=True,
          sqlite_where=text("kind = 'counted'"), postgresql_where=text("kind = 'counted'")),
)

responses = Table(
    "responses", metadata,
    Column("id", Integer, primary_key=True),
    Column("form", Text),
    Column("campaign", Text),
    Column("user", Text),
    Column("item_id", Text),
    Column("answer", Text),
    Column("correct", Integer),
    Column("answered_at", Text),
    Index("idx_responses_form_item_id", "form", "item_id", unique=True),
    Index("idx_responses_campaign", "campaign"),
)

channel_inbox = Table(  # WeChat/WeCom callbacks already taken (bot/storage/channels.py Inbox)
    "channel_inbox", metadata,
    Column("channel", Text, primary_key=True),  # wechat | wecom
    Column("msg_key", Text, primary_key=True),  # MsgId, or a salted hash for events
    Column("received_at", Integer, nullable=False),  # epoch seconds
    Column("reply", Text),  # the passive reply given (sent again only to a retry)
    Index("idx_channel_inbox_received", "received_at"),
)

access_tokens = Table(  # platform access tokens, refreshed by the lease holder (TokenStore)
    "access_tokens", metadata,
    Column("name", Text, primary_key=True),  # wechat:APPID | wecom:CORPID:AGENTID
    Column("token", Text),
    Column("refresh_at", Integer, nullable=False),  # epoch seconds
    Column("expires_at", Integer, nullable=False),
    Column("lease_owner", Text),
    Column("lease_until", Integer, nullable=False),
)

text_menus = Table(  # the buttons last shown to a user of a text channel (DbMenus)
    "text_menus", metadata,
    Column("user", Text, primary_key=True),  # salted user key
    Column("buttons", Text, nullable=False),  # JSON [[label, data], …]
    Column("updated", Text),
)

conversation = Table(  # each user's last question, for follow-ups and the typed 更多/👍/👎 (issue #9)
    "conversation", metadata,
    Column("user", Text, primary_key=True),  # salted user key
    Column("question", Text),  # as the answerer read it (a follow-up with its previous question)
    Column("answer_id", Integer),  # answers.id of the reply
    Column("more_id", Text),  # chunk id whose whole section 更多 shows (62 bits: kept as text)
    Column("asked_at", Text),
)

answers = Table(  # every reply to a question, so that 👍/👎 can name it (issue #9)
    "answers", metadata,
    Column("id", Integer, primary_key=True),
    Column("user", Text),
    Column("question", Text),
    Column("norm", Text),  # bot.storage.state.gap_key(question)
    Column("answer", Text),
    Column("decision", Text),  # answer | refer | refuse
    Column("door", Text),  # labour | medical | injury | injury_cost | environment | product | safety | civil
    Column("faq_id", Text),
    Column("confidence", Float),
    Column("asked_at", Text),
    Index("idx_answers_user", "user"),
)

feedback = Table(  # 👍/👎 on a reply with its question and text as shown (issue #9)
    "feedback", metadata,
    Column("id", Integer, primary_key=True),
    Column("answer_id", Integer),
    Column("user", Text),
    Column("vote", Text),  # up | down
    Column("reason", Text),  # the optional reason of a 👎
    Column("question", Text),
    Column("norm", Text),
    Column("answer", Text),
    Column("created", Text),
    Index("idx_feedback_answer_user", "answer_id", "user", unique=True),
    Index("idx_feedback_norm", "norm"),
)

rate_limits = Table(  # requests per client per time slot: the web chat's per-IP limit (bot/storage/limits.py)
    "rate_limits", metadata,
    Column("key", Text, primary_key=True),  # salted hash of the client IP
    Column("slot", Integer, primary_key=True),  # epoch seconds // window
    Column("hits", Integer, nullable=False),
    Index("idx_rate_limits_slot", "slot"),
)

staff = Table(  # web console accounts (issue #13; bot/storage/staff.py): never the bot's users
    "staff", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text),  # login name, unique
    Column("role", Text),  # admin | analyst | reviewer
    Column("region", Text),  # an analyst limited to one region's respondents (profile field `region`)
    Column("password", Text),  # argon2id hash (argon2-cffi), never the password
    Column("disabled", Integer),  # 1: cannot log in
    Column("must_change", Integer),  # 1: a one-time password; the console asks for a new one first
    Column("created", Text),
    Column("updated", Text),
    Index("idx_staff_name", "name", unique=True),
)

staff_sessions = Table(  # console log-ins, shared by every `ohbot serve` worker
    "staff_sessions", metadata,
    Column("id", Text, primary_key=True),  # sha256 of the cookie's random token (the token is not stored)
    Column("staff", Integer),  # staff.id
    Column("csrf", Text),  # the session's CSRF token, put into every form
    Column("created", Integer),  # epoch seconds
    Column("seen", Integer),  # last request (idle timeout), updated at most once a minute
    Column("expires", Integer),  # absolute end
    Index("idx_staff_sessions_staff", "staff"),
)

staff_login_failures = Table(  # failed console log-ins, for the lock-out (by name and by address)
    "staff_login_failures", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text),
    Column("ip", Text),
    Column("at", Integer),  # epoch seconds
    Index("idx_staff_login_failures_name", "name", "at"),
    Index("idx_staff_login_failures_ip", "ip", "at"),
)

staff_audit = Table(  # who exported or imported what, when (and other staff actions); admins read it
    "staff_audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text),  # UTC ISO 8601
    Column("staff", Text),  # the account's name at the time
    Column("action", Text),  # export | import | campaign_create | ...
    Column("target", Text),  # e.g. the campaign
    Column("detail", Text),  # what exactly (format, level, file name, rows)
    Index("idx_staff_audit_at", "at"),
)

telegram_inbox = Table(  # Telegram updates from receipt until handled (bot/storage/inbox.py, issue #11)
    "telegram_inbox", metadata,
    Column("update_id", BigInteger, primary_key=True, autoincrement=False),  # Telegram's, unique per bot
    Column("payload", Text),  # the update's JSON until it is handled, then NULL (it holds ids and text)
    Column("received_at", Integer, nullable=False),  # epoch seconds
    Column("handled_at", Integer),  # epoch seconds; NULL: not handled yet (replayed at start)
    Index("idx_telegram_inbox_handled", "handled_at"),
)

report_snapshots = Table(  # the console's last computed report of each key (bot/web/report_cache.py, issue #13)
    "report_snapshots", metadata,
    Column("key", Text, primary_key=True),  # JSON of [campaign, grouping, region]
    Column("version", Text, nullable=False),  # the data version (fingerprint) it was computed for
    Column("computed_at", Float, nullable=False),  # epoch seconds
    Column("body", Text, nullable=False),  # the report as JSON: aggregates only, no user ids
)

# Every table in the order a copy fills them (no foreign keys today; kept stable for reports and tests).
TABLES: tuple[Table, ...] = (users, unanswered, campaigns, forms, responses, channel_inbox, access_tokens,
                             text_menus, conversation, answers, feedback, rate_limits, staff, staff_sessions,
                             staff_login_failures, staff_audit, telegram_inbox, report_snapshots)
