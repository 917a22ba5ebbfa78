"""Campaign data in and out of the state database: awareness reports, CSV import and export.

What: `respondent_results` turns the forms and responses of one campaign into the input of
`bot.awareness.report.build_report`; `campaign_report` runs it with the campaign's threshold;
`import_responses` loads paper or third-party answers from a CSV file (all or nothing);
`export_responses` writes the counted answers back out in the same CSV format.

Why here: `bot.awareness.report` and `bot.awareness.stats` are pure (no database); `bot.quiz` owns the tables and
the bot's own answering. This module is the only bridge between the two, so both stay small.

CSV format (one row per answer, UTF-8 with or without BOM; GB18030 as Excel saves it is read too):
    respondent_id,item_id,answer,answered_at[,industry,region,enterprise_size,role,sex,age_band,education]
- answer: the bank's option letters (B, ACD, T, F); case, order, spaces and separators are ignored.
- answered_at: ISO 8601 (2024-03-05, 2024-03-05 10:00, 2024-03-05T10:00:00+08:00) or 2024/03/05 10:00;
  a time without zone is China time (Asia/Shanghai). Stored in UTC, exported in China time.
- industry / enterprise_size / role: taxonomy codes (knowledge/taxonomy.yaml); the Chinese label is
  accepted as well and stored as its code. The other profile columns are free text.
On import each respondent_id becomes a salted user key (no raw id is stored) with one completed
counted form; on export respondent_id is that stored key.

Months in reports are calendar months in Asia/Shanghai.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.awareness.report import AnswerRecord, ItemInfo, RespondentResult, build_report
from bot.config import AWARENESS_TARGET, MIN_GROUP_N
from bot.errors import InputError
from bot.quiz import forms as quiz
from bot.quiz.bank import Item
from bot.storage.state import PROFILE_FIELDS, State, now
from bot.taxonomy import field_labels, profile_fields

TZ = ZoneInfo("Asia/Shanghai")
REQUIRED_COLUMNS = ("respondent_id", "item_id", "answer", "answered_at")
PROFILE_COLUMNS = ("industry", "region", "enterprise_size", "role", "sex", "age_band", "education")
CSV_COLUMNS = REQUIRED_COLUMNS + PROFILE_COLUMNS
KNOWLEDGE_POINT_CHARS = 24
MAX_TEXT = 100  # longest accepted free-text profile value
_SEPARATORS = re.compile(r"[\s,，、;；/|+]+")
_SQL_CHUNK = 500  # parameters per `in (...)` query


# ---- bank and taxonomy -----------------------------------------------------------------------
def knowledge_point(item: Item) -> str:
    """A short name for what the item tests: its stem cut to a few words, else its citation."""
    stem = item.stem.strip().rstrip("？?。")
    if not stem:
        return item.cite
    return stem if len(stem) <= KNOWLEDGE_POINT_CHARS else stem[: KNOWLEDGE_POINT_CHARS - 1] + "…"


def item_infos(bank: Iterable[Item]) -> dict[str, ItemInfo]:
    return {i.id: ItemInfo(i.id, i.dimension, i.stem, knowledge_point(i)) for i in bank}


def coded_fields(taxonomy: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Profile fields whose values are taxonomy codes → their code → label options."""
    return {f.code: f.options for f in profile_fields(dict(taxonomy)) if f.options}


def label_report(report: Mapping[str, Any], taxonomy: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a report with taxonomy codes shown as Chinese labels (for people, not machines)."""
    out = copy.deepcopy(dict(report))
    dims = taxonomy.get("dimensions") or {}
    coded = coded_fields(taxonomy)
    out["labels"] = field_labels(dict(taxonomy))
    for g in out.get("groups", []):
        g["key"] = {k: coded[k].get(v, v) if k in coded else v for k, v in g["key"].items()}
    for row in out.get("items", []) + out.get("dimensions", []):
        row["dimension"] = dims.get(row["dimension"], row["dimension"])
    return out


# ---- database → report -----------------------------------------------------------------------
def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(TZ)


def _profiles(state: State, campaign: str) -> dict[str, dict[str, str | None]]:
    fields = ", ".join(f'"{f}"' for f in PROFILE_FIELDS)
    rows = state.db.conn.execute(
        f"select key, {fields} from users where key in (select user from forms where campaign = ?)", [campaign])
    return {r[0]: dict(zip(PROFILE_FIELDS, r[1:])) for r in rows}


def respondent_results(state: State, campaign: str) -> tuple[list[RespondentResult], list[RespondentResult]]:
    """(counted, practice) completed forms of a campaign as report inputs.

    counted: one per user, their earliest completed counted form; practice: every completed practice form.
    completed_at is in China time, so report months are local months. Two indexed scans (forms, then
    responses by campaign) instead of a sorted join: this is most of a report's database time.
    """
    with state.lock:
        conn = state.db.conn
        forms = conn.execute(
            "select id, user, kind, completed_at from forms where campaign = ? and completed_at is not null "
            "and kind in ('counted', 'practice') order by completed_at, rowid", [campaign]).fetchall()
        rows = conn.execute("select form, item_id, correct from responses where campaign = ? order by id",
                            [campaign]).fetchall()
        profiles = _profiles(state, campaign)
    records: dict[str, list[AnswerRecord]] = {f[0]: [] for f in forms}
    shared: tuple[dict[str, AnswerRecord], dict[str, AnswerRecord]] = ({}, {})  # frozen: one object per answer kind
    for form_id, item_id, correct in rows:
        answers = records.get(form_id)
        if answers is None:  # an unfinished form
            continue
        cache = shared[1 if correct else 0]
        a = cache.get(item_id)
        if a is None:
            a = cache[item_id] = AnswerRecord(item_id, bool(correct))
        answers.append(a)
    empty = dict.fromkeys(PROFILE_FIELDS)
    counted: list[RespondentResult] = []
    practice: list[RespondentResult] = []
    seen: set[str] = set()
    for form_id, user, kind, completed_at in forms:
        if kind == "counted":
            if user in seen:  # a second counted form (should not happen): never count anybody twice
                continue
            seen.add(user)
        result = RespondentResult(user, profiles.get(user, empty), _local(completed_at), records[form_id])
        (counted if kind == "counted" else practice).append(result)
    return counted, practice


def campaign_report(state: State, campaign: str, bank: Iterable[Item] | Mapping[str, ItemInfo],
                    by: Sequence[str] = (), min_n: int = MIN_GROUP_N, target: float = AWARENESS_TARGET) -> dict[str, Any]:
    """The awareness report of a campaign (see `bot.awareness.report.build_report`), threshold from the campaign."""
    c = quiz.get_campaign(state, campaign)
    items = bank if isinstance(bank, Mapping) else item_infos(bank)
    counted, practice = respondent_results(state, campaign)
    return build_report(c.name, c.threshold, counted, items, by=by, target=target, min_n=min_n, practice=practice)


def campaign_counts(state: State) -> dict[str, dict[str, int]]:
    """Completed counted and practice forms per campaign."""
    out: dict[str, dict[str, int]] = {}
    with state.lock:
        for name, kind, n in state.db.conn.execute(
                "select campaign, kind, count(*) from forms where completed_at is not null and campaign is not null "
                "group by campaign, kind"):
            out.setdefault(name, {"counted": 0, "practice": 0})[kind] = n
    return out


# ---- CSV import --------------------------------------------------------------------------------
@dataclass
class _Row:
    line: int
    item: Item
    answer: str
    answered_at: datetime  # UTC


@dataclass
class _Respondent:
    raw_id: str
    rows: list[_Row] = field(default_factory=list)  # the valid rows
    item_lines: dict[str, int] = field(default_factory=dict)  # item id → line of its valid row
    lines: list[int] = field(default_factory=list)  # every row of this respondent
    profile: dict[str, str] = field(default_factory=dict)
    profile_lines: dict[str, int] = field(default_factory=dict)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError("the file is neither UTF-8 nor GB18030 text")


def normalize_answer(raw: str, item: Item) -> str:
    """The bank's letters, sorted (' c,a d' → 'ACD'); ValueError when they cannot be this item's answer."""
    letters = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if not letters:
        raise ValueError("empty answer")
    bad = sorted({c for c in letters if c not in item.options})
    if bad:
        raise ValueError(f"answer {raw.strip()!r}: {''.join(bad)} not among the options of {item.id} "
                         f"({''.join(item.options)})")
    answer = "".join(sorted(set(letters)))
    if item.type in ("single", "truefalse") and len(answer) != 1:
        raise ValueError(f"answer {raw.strip()!r}: {item.id} is a {item.type} item and takes exactly one letter")
    return answer


_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")


def parse_time(raw: str, latest: datetime | None = None) -> datetime:
    """An answer time as UTC; a time without zone is China time. ValueError when it is not a valid date,
    before 2000 or after `latest` (default: a day from now)."""
    text = raw.strip()
    when = None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                when = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if when is None:
        raise ValueError(f"answered_at {text!r} is not a date (use e.g. 2024-03-05 10:00)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=TZ)
    when = when.astimezone(UTC)
    if latest is None:
        latest = datetime.now(UTC) + timedelta(days=1)
    if when.year < 2000 or when > latest:
        raise ValueError(f"answered_at {text!r} is out of range (before 2000 or in the future)")
    return when


def _profile_value(column: str, raw: str, taxonomy: Mapping[str, Any]) -> str:
    value = unicodedata.normalize("NFKC", raw).strip()
    codes = coded_fields(taxonomy).get(column)
    if codes:
        if value in codes:
            return value
        by_label = {label: code for code, label in codes.items()}
        if value in by_label:
            return by_label[value]
        raise ValueError(f"{column} {value!r} is not a taxonomy code ({', '.join(codes)})")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{column} is longer than {MAX_TEXT} characters")
    return value


def _lines(lines: Iterable[int]) -> str:
    lines = sorted(set(lines))
    return f"line {lines[0]}" if len(lines) == 1 else "lines " + ", ".join(map(str, lines))


def _memo(cache: dict, key: Any, fn: Any, *args: Any) -> tuple[Any, str | None]:
    """(fn(*args), None) or (None, error message), computed once per key: a file repeats its
    profile values and answers thousands of times."""
    hit = cache.get(key)
    if hit is None:
        try:
            hit = (fn(*args), None)
        except ValueError as exc:
            hit = (None, str(exc))
        cache[key] = hit
    return hit


def _read_csv(text: str, bank: Mapping[str, Item], taxonomy: Mapping[str, Any],
              errors: list[tuple[int, str]]) -> dict[str, _Respondent]:
    """Parse and check every row; problems go to `errors` as (line, message)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        errors.append((1, "the file is empty"))
        return {}
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or duplicated:
        problems = ([f"missing columns {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown columns {', '.join(unknown)}"] if unknown else []) + \
                   ([f"repeated columns {', '.join(duplicated)}"] if duplicated else [])
        errors.append((1, "; ".join(problems) + f" (columns: {', '.join(CSV_COLUMNS)})"))
        return {}
    people: dict[str, _Respondent] = {}
    cache: dict[Any, tuple[Any, str | None]] = {}
    latest = datetime.now(UTC) + timedelta(days=1)
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            errors.append((line, f"{len(cells)} fields, the header has {len(columns)}"))
            continue
        row = dict(zip(columns, cells + [""] * (len(columns) - len(cells))))
        problems = []
        rid = row["respondent_id"].strip()
        if not rid:
            problems.append("empty respondent_id")
        item = bank.get(row["item_id"].strip())
        answer, when = "", None
        if item is None:
            problems.append(f"unknown item {row['item_id'].strip()!r}")
        else:
            answer, problem = _memo(cache, (item.id, row["answer"]), normalize_answer, row["answer"], item)
            problems += [problem] if problem else []
        try:
            when = parse_time(row["answered_at"], latest)
        except ValueError as exc:
            problems.append(str(exc))
        profile = {}
        for column in PROFILE_COLUMNS:
            raw = row.get(column, "")
            if raw and not raw.isspace():
                value, problem = _memo(cache, (column, raw), _profile_value, column, raw, taxonomy)
                if problem:
                    problems.append(problem)
                else:
                    profile[column] = value
        if problems:
            errors.append((line, "; ".join(problems)))
        if not rid:
            continue
        person = people.setdefault(rid, _Respondent(rid))
        person.lines.append(line)
        for column, value in profile.items():
            if person.profile.setdefault(column, value) != value:
                errors.append((line, f"{column} {value!r} differs from {person.profile[column]!r} given for "
                                     f"respondent {rid!r} on line {person.profile_lines[column]}"))
            person.profile_lines.setdefault(column, line)
        if not problems:
            previous = person.item_lines.setdefault(item.id, line)
            if previous != line:
                errors.append((line, f"respondent {rid!r} answered {item.id} already on line {previous}"))
            else:
                person.rows.append(_Row(line, item, answer, when))
    return people


def _counted_already(conn: Any, campaign: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _SQL_CHUNK):
        chunk = keys[start:start + _SQL_CHUNK]
        found.update(r[0] for r in conn.execute(
            f"select user from forms where campaign = ? and kind = 'counted' and user in "
            f"({','.join('?' * len(chunk))})", [campaign, *chunk]))
    return found


def _iso(when: datetime) -> str:
    """Stored times: UTC, ISO 8601 to the second, like bot.storage.state.now()."""
    return when.isoformat(timespec="seconds")


def _insert(conn: Any, campaign: str, people: Mapping[str, _Respondent]) -> int:
    users, forms, responses = [], [], []
    stamp = now()
    for key, person in people.items():
        users.append([key, *(person.profile.get(f) for f in PROFILE_COLUMNS), stamp, stamp])
        form_id = secrets.token_hex(8)
        times = [r.answered_at for r in person.rows]
        layout = [{"id": r.item.id, "order": list(r.item.options)} for r in person.rows]
        forms.append([form_id, campaign, key, json.dumps(layout), len(layout), _iso(min(times)), _iso(max(times))])
        responses += [[form_id, campaign, key, r.item.id, r.answer, int(r.answer == r.item.answer),
                       _iso(r.answered_at)] for r in person.rows]
    cols = ", ".join(f'"{c}"' for c in PROFILE_COLUMNS)
    updates = ", ".join(f'"{c}" = coalesce(excluded."{c}", users."{c}")' for c in PROFILE_COLUMNS)
    conn.executemany(
        f"insert into users (key, {cols}, consent, pending, created, updated) "
        f"values (?, {', '.join('?' * len(PROFILE_COLUMNS))}, 0, '{{}}', ?, ?) "
        f"on conflict(key) do update set {updates}, updated = excluded.updated", users)
    conn.executemany(
        "insert into forms (id, campaign, user, kind, items, position, started_at, completed_at, source) "
        "values (?, ?, ?, 'counted', ?, ?, ?, ?, 'import')", forms)
    conn.executemany(
        "insert into responses (form, campaign, user, item_id, answer, correct, answered_at) "
        "values (?, ?, ?, ?, ?, ?, ?)", responses)
    return len(responses)


def import_responses(state: State, campaign: str, path: Path, bank: Iterable[Item] | Mapping[str, Item],
                     taxonomy: Mapping[str, Any]) -> tuple[int, list[str]]:
    """Import a CSV file of answers into a campaign: all rows or none.

    Returns (answers imported, errors). Errors are "line N: what is wrong", sorted by line; with any
    error nothing is written. A respondent who already has a counted form in the campaign is an
    error (nobody counts twice). The check and the writes run in one transaction.
    """
    quiz.get_campaign(state, campaign)  # raises for an unknown campaign
    bank = bank if isinstance(bank, Mapping) else {i.id: i for i in bank}
    errors: list[tuple[int, str]] = []
    people = _read_csv(_decode(Path(path).read_bytes()), bank, taxonomy, errors)
    if not errors and not any(p.rows for p in people.values()):
        errors.append((2, "no answers to import"))
    by_key = {state.user_key("import", rid): p for rid, p in people.items()}
    with state.write() as conn:
        for key in _counted_already(conn, campaign, list(by_key)):
            p = by_key[key]
            errors.append((min(p.lines), f"respondent {p.raw_id!r} ({_lines(p.lines)}) already has a "
                                                 f"counted form in {campaign!r} and cannot count twice"))
        if errors:  # nothing written yet: the transaction ends empty
            return 0, [f"line {line}: {msg}" for line, msg in sorted(errors, key=lambda e: e[0])]
        count = _insert(conn, campaign, by_key)
    return count, []


# ---- CSV export --------------------------------------------------------------------------------
def export_responses(state: State, campaign: str, out: TextIO) -> int:
    """Write the answers of every counted, completed form of a campaign as CSV (the import format);
    respondent_id is the stored salted key. Returns the number of answer rows written."""
    quiz.get_campaign(state, campaign)
    cols = ", ".join(f'u."{c}"' for c in PROFILE_COLUMNS)
    with state.lock:
        rows = state.db.conn.execute(
            f"select f.id, f.user, r.item_id, r.answer, r.answered_at, {cols} "
            "from forms f join responses r on r.form = f.id left join users u on u.key = f.user "
            "where f.campaign = ? and f.kind = 'counted' and f.completed_at is not null "
            "order by f.completed_at, f.rowid, r.id", [campaign]).fetchall()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    first_form: dict[str, str] = {}
    written = 0
    for form_id, user, item_id, answer, answered_at, *profile in rows:
        if first_form.setdefault(user, form_id) != form_id:
            continue  # only the counted form a report uses
        writer.writerow([user, item_id, answer, _local(answered_at).isoformat(timespec="seconds"),
                         *("" if v is None else v for v in profile)])
        written += 1
    return written
