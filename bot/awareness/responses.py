"""Responses in: CSV files of answers, long or wide, streamed into a campaign all or nothing.

Layouts (both UTF-8 with or without BOM, GB18030 or Big5; every value rule in bot/awareness/campaigns.py):
- long (default): one row per answer,
      respondent_id,item_id,answer,answered_at[,profile columns][,correct]
- wide (`--layout wide`, what survey tools export): one row per respondent,
      respondent_id,answered_at[,profile columns],<item id>,<item id>,...
  each item column holding that respondent's answer (empty: the item was not on their form).
  Errors name the line and the column ("line 7, column Q0601: ...").

Why streamed: a campaign of 50,000 workers × 20 items is 10^6 rows; holding them as Python objects
took 750 MB. Here each row is checked as it is read and written to a staging SQLite file in a
private temporary folder beside the database (deleted afterwards); the checks across rows (an item
answered twice, a profile value that changes between rows, a respondent already counted) are SQL
over that file, and the accepted rows go into the state database (SQLite or PostgreSQL) in batches
read from that file as tuples and handed to the driver's executemany (`insert_tuples`), inside one
write transaction. Memory stays flat whatever the length of the file (10^6 rows: ≈ 18 s of CPU,
≈ 140 MB peak; benchmarks/responses_bench.py); the state database is locked for writing only during
that last step.
"""
from __future__ import annotations

import csv
import json
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from bot.awareness.campaigns import (
    IGNORED_COLUMNS,
    PROFILE_COLUMNS,
    REQUIRED_COLUMNS,
    _iso,
    _lines,
    _memo,
    _profile_value,
    normalize_answer,
    parse_time,
)
from bot.errors import InputError
from bot.quiz import forms as quiz
from bot.quiz.bank import Item
from bot.storage.db import advisory_lock, insert_tuples, upsert
from bot.storage.state import State, now
from bot.storage.tables import forms, responses, users
from bot.text.encoding import detect_encoding

LAYOUTS = ("long", "wide")
WIDE_REQUIRED = ("respondent_id", "answered_at")
BATCH = 5000  # rows per executemany
MAX_ERRORS = 1000  # problems listed; the rest are counted
_CACHE_LIMIT = 200_000  # memoised times before the cache is emptied (a file of unique times stays small)
_SQL_IN = 500  # keys per `in (...)` query on the state database
_FORM_COLUMNS = ("id", "campaign", "user", "kind", "items", "position", "started_at", "completed_at", "source",
                 "answered", "correct", "marks", *PROFILE_COLUMNS)
_RESPONSE_COLUMNS = ("form", "campaign", "user", "item_id", "answer", "correct", "answered_at")


def respondent_key(state: State, campaign: str, raw_id: str, link_campaigns: bool = False) -> str:
    """The stored key of an imported respondent: a pseudonym, never the raw id. Scoped to the campaign
    (respondent `1` of campaign A and `1` of campaign B are two people: bureaus number each survey
    from 1), unless the bureau says its ids name the same person in every campaign
    (`--link-campaigns`): then one key across campaigns, as imports made before issue #11 had."""
    if link_campaigns:
        return state.user_key("import", raw_id)
    return state.user_key("import", json.dumps([campaign, raw_id], ensure_ascii=False))


def erase_respondent(state: State, campaign: str, raw_id: str) -> int:
    """Delete one imported respondent's counted form and answers from one campaign (the id as in the
    imported file), and their profile when no other form of theirs is left; the number of answers
    deleted. The bureau's way to honour a respondent's request, as /forget is a bot user's.
    InputError when the campaign has no such imported respondent (CampaignError: no such campaign)."""
    quiz.get_campaign(state, campaign)
    keys = [respondent_key(state, campaign, raw_id), respondent_key(state, campaign, raw_id, link_campaigns=True)]
    with state.write() as conn:
        found = conn.execute(select(forms.c.id, forms.c.user).where(
            forms.c.campaign == campaign, forms.c.user.in_(keys), forms.c.source == "import")).all()
        ids = [row[0] for row in found]
        key = found[0][1] if found else keys[0]
        if not ids:
            raise InputError(f"campaign {campaign!r} has no imported respondent {raw_id!r} "
                             "(give the respondent_id as in the imported file)")
        erased = conn.execute(delete(responses).where(responses.c.form.in_(ids))).rowcount
        conn.execute(delete(forms).where(forms.c.id.in_(ids)))
        if conn.execute(select(forms.c.id).where(forms.c.user == key).limit(1)).first() is None:
            conn.execute(delete(users).where(users.c.key == key))
    return int(erased)


def enterprise_key(state: State, code: str) -> str:
    """The stored form of a bureau's enterprise code: a salted hash, like user keys."""
    return state.user_key("enterprise", code)


def sniff_encoding(path: Path) -> str:
    """utf-8-sig, gb18030 or cp950 (Big5): bot.text.encoding.detect_encoding, which also tells Big5
    from GB18030 (which decodes Big5 bytes as mojibake); InputError when it is none of them."""
    return detect_encoding(path)


class _Errors:
    """(line, message) problems: the first MAX_ERRORS kept, the rest counted."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []
        self.more = 0

    def add(self, line: int, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append((line, message))
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def lines(self, wide: bool) -> list[str]:
        """Sorted by line: "line N: msg" (long) or "line N, column C: msg" (wide, C in the message)."""
        sep = ", " if wide else ": "
        out = [f"line {line}{sep}{msg}" for line, msg in sorted(self.items, key=lambda e: e[0])]
        if self.more:
            out.append(f"… and {self.more} more problems (the first {MAX_ERRORS} are listed)")
        return out


_PROFILE_SQL = ", ".join(f'"{c}" TEXT' for c in PROFILE_COLUMNS)
_STAGE_DDL = (
    f"CREATE TABLE rows (seq INTEGER PRIMARY KEY, line INTEGER, rid TEXT, item TEXT, answer TEXT, correct INTEGER, "
    f"answered_at TEXT, ok INTEGER, {_PROFILE_SQL})",
    f"CREATE TABLE people (rid TEXT PRIMARY KEY, first INTEGER, key TEXT, form TEXT, layout TEXT, n INTEGER, "
    f"n_right INTEGER, marks TEXT, started TEXT, completed TEXT, {_PROFILE_SQL})",
)
_ROW_INSERT = (f"INSERT INTO rows (line, rid, item, answer, correct, answered_at, ok, "
               f"{', '.join(PROFILE_COLUMNS)}) VALUES ({', '.join('?' * (7 + len(PROFILE_COLUMNS)))})")


class _Reader:
    """Checks rows as they are read; yields staging rows; problems go to `errors`."""

    def __init__(self, bank: Mapping[str, Item], taxonomy: Mapping[str, Any], errors: _Errors) -> None:
        self.bank = bank
        self.taxonomy = taxonomy
        self.errors = errors
        self.cache: dict[Any, tuple[Any, str | None]] = {}
        self.times: dict[str, tuple[str | None, str | None]] = {}
        self.profiles: dict[tuple[str, ...], tuple[tuple[str | None, ...], list[tuple[str, str]]]] = {}
        self.answers: dict[tuple[str, str], tuple[str | None, str | None, int, list[str]]] = {}
        self.latest = datetime.now(UTC) + timedelta(days=1)
        self.present: list[str] = []  # the file's profile columns, in PROFILE_COLUMNS order

    def time(self, raw: str) -> tuple[str | None, str | None]:
        """(stored UTC ISO time, None) or (None, problem), memoised by the raw text."""
        hit = self.times.get(raw)
        if hit is None:
            try:
                hit = (_iso(parse_time(raw, self.latest)), None)
            except ValueError as exc:
                hit = (None, str(exc))
            if len(self.times) >= _CACHE_LIMIT:
                self.times.clear()
            self.times[raw] = hit
        return hit

    def profile(self, raws: tuple[str, ...]) -> tuple[tuple[str | None, ...], list[tuple[str, str]]]:
        """The profile values of the raw cells of the file's profile columns (`self.present`), in
        PROFILE_COLUMNS order (None: absent, empty or invalid), and the (column, problem) list;
        memoised by the raw cells, which repeat on every row of a respondent."""
        hit = self.profiles.get(raws)
        if hit is None:
            given = dict(zip(self.present, raws))
            values: list[str | None] = []
            problems: list[tuple[str, str]] = []
            for column in PROFILE_COLUMNS:
                raw = given.get(column, "")
                value = None
                if raw and not raw.isspace():
                    value, problem = _memo(self.cache, (column, raw), _profile_value, column, raw, self.taxonomy)
                    if problem:
                        problems.append((column, problem))
                values.append(value)
            hit = (tuple(values), problems)
            if len(self.profiles) >= _CACHE_LIMIT:
                self.profiles.clear()
            self.profiles[raws] = hit
        return hit

    def header(self, cells: list[str] | None, wide: bool) -> tuple[list[str], dict[int, Item]] | None:
        """Checked column names (and, wide, the item of each item column); None after an error."""
        if cells is None:
            self.errors.add(1, "the file is empty")
            return None
        columns = [h.strip().lower() for h in cells]
        required = WIDE_REQUIRED if wide else REQUIRED_COLUMNS
        known = set(required) | set(PROFILE_COLUMNS) | (set() if wide else set(REQUIRED_COLUMNS + IGNORED_COLUMNS))
        by_lower = {i.lower(): i for i in self.bank} if wide else {}
        items = {k: self.bank[by_lower[c]] for k, c in enumerate(columns) if wide and c not in known and c in by_lower}
        missing = [c for c in required if c not in columns]
        unknown = [cells[k].strip() for k, c in enumerate(columns) if c not in known and k not in items]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if wide and not items:
            missing.append("at least one item id column")
        if missing or unknown or duplicated:
            problems = ([f"missing columns {', '.join(missing)}"] if missing else []) + \
                       ([f"unknown columns {', '.join(unknown)}"] if unknown else []) + \
                       ([f"repeated columns {', '.join(duplicated)}"] if duplicated else [])
            allowed = (f"{', '.join(required + PROFILE_COLUMNS)} and item ids of the bank" if wide
                       else ", ".join(REQUIRED_COLUMNS + PROFILE_COLUMNS + IGNORED_COLUMNS))
            self.errors.add(1, ("column *: " if wide else "") + "; ".join(problems) + f" (columns: {allowed})")
            return None
        return columns, items

    def answer(self, raw_item: str, raw_answer: str) -> tuple[str | None, str | None, int, list[str]]:
        """(item id, normalised answer, 1 if right else 0, problems) of a raw item id and answer,
        memoised by the pair (a file repeats them on most of its rows)."""
        key = (raw_item, raw_answer)
        hit = self.answers.get(key)
        if hit is None:
            item = self.bank.get(raw_item.strip())
            if item is None:
                hit = (None, None, 0, [f"unknown item {raw_item.strip()!r}"])
            else:
                answer, problem = _memo(self.cache, (item.id, raw_answer), normalize_answer, raw_answer, item)
                hit = (item.id, answer, int(answer == item.answer), [problem] if problem else [])
            if len(self.answers) >= _CACHE_LIMIT:
                self.answers.clear()
            self.answers[key] = hit
        return hit

    def long(self, reader: Any) -> Iterator[tuple]:
        """Staging rows of the long layout (one per CSV row with a respondent id)."""
        head = self.header(next(reader, None), wide=False)
        if head is None:
            return
        columns, _ = head
        width = len(columns)
        at = {c: k for k, c in enumerate(columns)}
        i_rid, i_item, i_answer, i_time = (at[c] for c in REQUIRED_COLUMNS)
        self.present = [c for c in PROFILE_COLUMNS if c in at]
        raw_profile: Callable[[list[str]], tuple[str, ...]]
        if len(self.present) > 1:
            raw_profile = itemgetter(*(at[c] for c in self.present))
        else:  # itemgetter of one index gives a value, not a tuple
            only = [at[c] for c in self.present]
            raw_profile = lambda cells: tuple(cells[k] for k in only)  # noqa: E731
        answer_of, time_of, profile_of, errors = self.answer, self.time, self.profile, self.errors
        for cells in reader:
            line = reader.line_num
            if len(cells) != width:
                if not any(c and not c.isspace() for c in cells):
                    continue
                if len(cells) > width:
                    errors.add(line, f"{len(cells)} fields, the header has {width}")
                    continue
                cells = cells + [""] * (width - len(cells))
            rid = cells[i_rid].strip()
            if not rid and not any(c and not c.isspace() for c in cells):
                continue
            item_id, answer, correct, problems = answer_of(cells[i_item], cells[i_answer])
            when, time_problem = time_of(cells[i_time])
            profile, profile_problems = profile_of(raw_profile(cells))
            if not rid or problems or time_problem or profile_problems:
                problems = (["empty respondent_id"] if not rid else []) + problems + \
                    ([time_problem] if time_problem else []) + [p for _, p in profile_problems]
                errors.add(line, "; ".join(problems))
                if rid:
                    yield (line, rid, item_id, answer, 0, when, 0, *profile)
            else:
                yield (line, rid, item_id, answer, correct, when, 1, *profile)

    def wide(self, reader: Any) -> Iterator[tuple]:
        """Staging rows of the wide layout (one per answered item column of each row)."""
        head = self.header(next(reader, None), wide=True)
        if head is None:
            return
        columns, items = head
        self.present = [c for c in PROFILE_COLUMNS if c in columns]
        cells_header = {k: item.id for k, item in items.items()}
        width = len(columns)
        for cells in reader:
            line = reader.line_num
            if not any(c and not c.isspace() for c in cells):
                continue
            if len(cells) > width:
                self.errors.add(line, f"column *: {len(cells)} fields, the header has {width}")
                continue
            row = dict(zip(columns, cells))
            rid = row["respondent_id"].strip()
            problems: list[tuple[str, str]] = []
            if not rid:
                problems.append(("respondent_id", "empty respondent_id"))
            when, problem = self.time(row.get("answered_at", ""))
            if problem:
                problems.append(("answered_at", problem))
            profile, profile_problems = self.profile(tuple(row.get(c, "") for c in self.present))
            problems += profile_problems
            answers = []
            given = 0
            for k, item in items.items():
                raw = cells[k] if k < len(cells) else ""
                if not raw or raw.isspace():
                    continue
                given += 1
                answer, problem = _memo(self.cache, (item.id, raw), normalize_answer, raw, item)
                if problem:
                    problems.append((cells_header[k], problem))
                else:
                    answers.append((item, answer))
            if not given:
                problems.append(("*", "no answers: every item column is empty"))
            for column, message in problems:
                self.errors.add(line, f"column {column}: {message}")
            if rid:
                ok = int(not problems)
                for item, answer in answers:
                    yield (line, rid, item.id, answer, int(answer == item.answer), when, ok, *profile)


def _batched(rows: Iterable[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _detail_checks(stage: sqlite3.Connection, errors: _Errors, wide: bool) -> None:
    """The problems of the respondents in the `flagged` table, row by row: an item answered twice,
    a profile value that changes between a respondent's rows (long), a respondent on two rows (wide)."""
    if wide:
        for line, rid, first in stage.execute(
                "SELECT DISTINCT line, rid, first FROM (SELECT line, rid, min(line) OVER (PARTITION BY rid) AS first "
                "FROM rows WHERE rid IN (SELECT rid FROM flagged)) WHERE line != first ORDER BY line"):
            errors.add(line, f"column respondent_id: respondent {rid!r} has a row already on line {first} "
                             "(one row per respondent in the wide layout)")
        return
    for line, rid, item, first in stage.execute(
            "SELECT line, rid, item, first FROM (SELECT line, rid, item, min(line) OVER (PARTITION BY rid, item) "
            "AS first FROM rows WHERE ok AND rid IN (SELECT rid FROM flagged)) WHERE line != first ORDER BY line"):
        errors.add(line, f"respondent {rid!r} answered {item} already on line {first}")
    for column in PROFILE_COLUMNS:
        for line, rid, value, first, first_line in stage.execute(
                f'SELECT line, rid, "{column}", first, first_line FROM (SELECT line, rid, "{column}", '
                f'first_value("{column}") OVER w AS first, first_value(line) OVER w AS first_line FROM rows '
                f'WHERE "{column}" IS NOT NULL AND rid IN (SELECT rid FROM flagged) '
                f'WINDOW w AS (PARTITION BY rid ORDER BY seq)) WHERE "{column}" != first ORDER BY line'):
            errors.add(line, f"{column} {value!r} differs from {first!r} given for respondent {rid!r} on line "
                             f"{first_line}")


def _respondents(stage: sqlite3.Connection, state: State, campaign: str, bank: Mapping[str, Item],
                 errors: _Errors, wide: bool, link_campaigns: bool = False) -> None:
    """One pass over the staged rows grouped by respondent: the checks across rows, and, while
    nothing is wrong, one staged form per respondent (first row, salted key, form id, items in file
    order, first and last answer time, profile with the enterprise hashed). Respondents whose rows
    disagree are listed in `flagged` and explained row by row by _detail_checks."""
    profile_sql = ", ".join(f'min("{c}"), max("{c}")' for c in PROFILE_COLUMNS)
    enterprise = PROFILE_COLUMNS.index("enterprise")
    enterprises: dict[str, str] = {}
    fragments: dict[str, str] = {}
    # form ids that sort in import order: this import's start time, then the respondent's first line
    # (reports order respondents tied on completion time by form id: bot.awareness.report_sql), so an
    # export imported again orders its ties as before; random bytes keep concurrent imports apart
    started_ns = f"{time.time_ns():016x}"
    stage.execute("CREATE TABLE flagged (rid TEXT PRIMARY KEY)")
    insert = (f"INSERT INTO people (rid, first, key, form, layout, n, n_right, marks, started, completed, "
              f"{', '.join(PROFILE_COLUMNS)}) VALUES ({', '.join('?' * (10 + len(PROFILE_COLUMNS)))})")
    building = not errors
    batch: list[tuple] = []
    flagged: list[tuple[str]] = []
    cursor = stage.execute(
        f"SELECT rid, min(seq), min(line) != max(line), sum(ok) != count(DISTINCT CASE WHEN ok THEN item END), "
        f"group_concat(seq || ':' || item), min(answered_at), max(answered_at), count(*), "
        f"sum(CASE WHEN coalesce(correct, 0) != 0 THEN 1 ELSE 0 END), "
        # the form's marks (migration 0013; bot.quiz.forms.form_mark): "1<item>" right, "0<item>" wrong
        f"json_group_array(CASE WHEN coalesce(correct, 0) != 0 THEN '1' ELSE '0' END || item), {profile_sql} "
        "FROM rows GROUP BY rid")
    width = 2 * len(PROFILE_COLUMNS)
    for rid, first, lines_differ, repeated, items, started, completed, n, right, marks, *bounds in cursor:
        profile = list(bounds[0:width:2])
        disagree = any(bounds[k] != bounds[k + 1] for k in range(0, width, 2))
        if (wide and lines_differ) or (not wide and (repeated or disagree)):
            flagged.append((rid,))
            building = False
        if not building:
            continue
        order = sorted((int(seq), item) for seq, _, item in (x.partition(":") for x in items.split(",")))
        # json.dumps of the list of {"id", "order"} dicts, joined from each item's own (made once)
        layout = "[" + ", ".join(fragments.get(item) or fragments.setdefault(
            item, json.dumps({"id": item, "order": list(bank[item].options)})) for _, item in order) + "]"
        code = profile[enterprise]
        if code is not None:
            profile[enterprise] = enterprises.get(code) or enterprises.setdefault(code, enterprise_key(state, code))
        batch.append((rid, first, respondent_key(state, campaign, rid, link_campaigns),
                      f"{started_ns}{int(first):09x}{secrets.token_hex(4)}",
                      layout, n, right, marks, started, completed, *profile))
        if len(batch) >= BATCH:
            stage.executemany(insert, batch)
            batch = []
    if building and batch:
        stage.executemany(insert, batch)
    stage.executemany("INSERT INTO flagged (rid) VALUES (?)", flagged)
    if flagged:
        _detail_checks(stage, errors, wide)
    stage.commit()


def _write(state: State, stage: sqlite3.Connection, campaign: str, errors: _Errors) -> int:
    """In one write transaction on the state database: refuse respondents already counted in the
    campaign, or copy every staged respondent, form and answer into it (batches of BATCH rows read
    from the staging file). Returns answers written. An advisory lock per campaign makes two imports
    into one campaign wait for each other; the counted-once index stops a race with the bot."""
    with state.write() as db:
        advisory_lock(db, f"ohbot:import:{campaign}")
        stage.execute("DELETE FROM flagged")
        for batch in _batched(stage.execute("SELECT key, rid FROM people"), _SQL_IN):
            rid_of = dict(batch)
            counted = db.execute(select(forms.c.user).where(
                forms.c.campaign == campaign, forms.c.kind == "counted", forms.c.user.in_(list(rid_of)))).scalars()
            stage.executemany("INSERT INTO flagged (rid) VALUES (?)", [(rid_of[key],) for key in counted])
        lines: dict[str, list[int]] = {}
        unlisted: set[str] = set()  # past MAX_ERRORS respondents: counted, not listed
        for rid, line in stage.execute("SELECT rid, line FROM rows WHERE rid IN (SELECT rid FROM flagged) "
                                       "ORDER BY line"):
            at = lines.get(rid)
            if at is None:
                if len(lines) >= MAX_ERRORS:
                    unlisted.add(rid)
                    continue
                at = lines[rid] = []
            at.append(line)
        errors.more += len(unlisted)
        for rid, at in lines.items():
            errors.add(at[0], f"respondent {rid!r} ({_lines(at)}) already has a counted form in "
                              f"{campaign!r} and cannot count twice")
        if errors:
            return 0
        stamp = now()
        # forms and answers go in as the staging file's own tuples (insert_tuples: no dict per row)
        # with the form's score (migration 0010): its answers (n) and how many are right, and their
        # marks (migration 0013)
        people = stage.execute(f"SELECT form, ?, key, 'counted', layout, n, started, completed, 'import', n, n_right, marks, "
                               f"{', '.join(PROFILE_COLUMNS)} FROM people ORDER BY first", (campaign,))
        while batch := people.fetchmany(BATCH):
            upsert(db, users, [{"key": row[2], **dict(zip(PROFILE_COLUMNS, row[12:])), "consent": 0, "pending": "{}",
                                "created": stamp, "updated": stamp} for row in batch],
                   on=["key"], update=[*PROFILE_COLUMNS, "updated"], keep_when_null=PROFILE_COLUMNS)
            insert_tuples(db, forms, _FORM_COLUMNS, batch)
            # each form keeps the profile it was answered with: the file's, and for a column the file
            # leaves empty, what is known of the respondent (a linked respondent's earlier answer)
            known = {c: func.coalesce(forms.c[c], select(users.c[c]).where(users.c.key == forms.c.user)
                                      .scalar_subquery()) for c in PROFILE_COLUMNS}
            db.execute(update(forms).where(forms.c.id.in_([row[0] for row in batch])).values(known))
        written = 0
        answers = stage.execute("SELECT p.form, ?, p.key, r.item, r.answer, r.correct, r.answered_at "
                                "FROM rows r JOIN people p ON p.rid = r.rid ORDER BY r.seq", (campaign,))
        while batch := answers.fetchmany(BATCH):
            insert_tuples(db, responses, _RESPONSE_COLUMNS, batch)
            written += len(batch)
        return written


def _stage_dir(state: State) -> str | None:
    """The SQLite database's folder (the staging file holds raw respondent ids: keep it beside the
    data, in a private folder, not in a shared /tmp); None (a private folder in the system's
    temporary directory) for PostgreSQL or an in-memory database."""
    url = state.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return str(Path(url.database).parent)


def import_file(state: State, campaign: str, path: Path, bank: Iterable[Item] | Mapping[str, Item],
                taxonomy: Mapping[str, Any], layout: str = "long", link_campaigns: bool = False) -> tuple[int, list[str]]:
    """Import a CSV file of answers (long or wide layout) into a campaign: all rows or none.

    Returns (answers imported, errors); see bot.awareness.campaigns.import_responses.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}: use {' or '.join(LAYOUTS)}")
    quiz.get_campaign(state, campaign)  # raises for an unknown campaign
    bank = bank if isinstance(bank, Mapping) else {i.id: i for i in bank}
    wide = layout == "wide"
    errors = _Errors()
    encoding = sniff_encoding(Path(path))
    with tempfile.TemporaryDirectory(prefix=".ohbot-import-", dir=_stage_dir(state)) as tmp:
        stage_path = Path(tmp) / "stage.db"
        stage = sqlite3.connect(str(stage_path))
        try:
            stage.execute("PRAGMA journal_mode=OFF")
            stage.execute("PRAGMA synchronous=OFF")
            for statement in _STAGE_DDL:
                stage.execute(statement)
            reader_state = _Reader(bank, taxonomy, errors)
            with open(path, encoding=encoding, newline="") as f:
                reader = csv.reader(f)
                rows = reader_state.wide(reader) if wide else reader_state.long(reader)
                try:
                    stage.executemany(_ROW_INSERT, rows)  # streamed: sqlite3 pulls the rows one by one
                except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
                    errors.add(reader.line_num, f"{'column *: ' if wide else ''}cannot read the CSV: {exc}")
            stage.commit()
            if not errors and stage.execute("SELECT count(*) FROM rows").fetchone()[0] == 0:
                errors.add(2, ("column *: " if wide else "") + "no answers to import")
            _respondents(stage, state, campaign, bank, errors, wide, link_campaigns)
            if errors:
                return 0, errors.lines(wide)
            count = _write(state, stage, campaign, errors)
        finally:
            stage.close()
    return (0, errors.lines(wide)) if errors else (count, [])
