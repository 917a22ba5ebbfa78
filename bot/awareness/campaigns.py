"""Campaign data in and out of the state database: awareness reports, CSV import and export.

What: `campaign_report` reports a campaign with its threshold, aggregated in the database
(bot.awareness.report_sql → bot.awareness.report.report_from_data);
`import_responses` loads paper or third-party answers from a CSV file (all or nothing; streamed by
bot.awareness.responses, long or wide layout); `export_responses` writes the counted answers back
out in the same CSV format (bot.awareness.exports also writes XLSX, SPSS and Stata files).

Why here: `bot.awareness.report` and `bot.awareness.stats` are pure (no database); `bot.quiz` owns the tables and
the bot's own answering. This module is the only bridge between the two, so both stay small.

CSV format (one row per answer, UTF-8 with or without BOM; GB18030 as Excel saves it is read too):
    respondent_id,item_id,answer,answered_at[,industry,region,enterprise_size,role,sex,age_band,education,
    years_service,enterprise][,correct]
- answer: the bank's option letters (B, ACD, T, F); case, order, spaces and separators are ignored.
- answered_at: ISO 8601 (2024-03-05, 2024-03-05 10:00, 2024-03-05T10:00:00+08:00) or 2024/03/05 10:00;
  a time without zone is China time (Asia/Shanghai). Stored in UTC, exported in China time.
- industry / enterprise_size / role: taxonomy codes (knowledge/taxonomy.yaml); the Chinese label is
  accepted as well and stored as its code. The other profile columns are free text.
- enterprise: the bureau's own enterprise code (optional); stored as a salted hash like user keys,
  it makes reports give design-based intervals with enterprises as clusters (bot/awareness/design.py).
- correct: written by the export and ignored on import (it is recomputed from answer and the bank).
The wide layout (`--layout wide`, bot/awareness/responses.py) has one row per respondent instead:
respondent_id, answered_at, the profile columns, then one column per item id holding the answer.
On import each respondent_id becomes a salted user key (no raw id is stored) with one completed
counted form; on export respondent_id is that stored key.

Months in reports are calendar months in Asia/Shanghai.
"""
from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import text

from bot.awareness.report import ItemInfo, check_arguments, report_from_data
from bot.awareness.report_sql import report_data
from bot.config import AWARENESS_TARGET, MIN_GROUP_N
from bot.quiz import forms as quiz
from bot.quiz.bank import Item
from bot.storage.state import State
from bot.taxonomy import field_labels, profile_fields
from bot.text.clean import clean_region, strip_controls

if TYPE_CHECKING:
    from bot.awareness.population import Population

TZ = ZoneInfo("Asia/Shanghai")
REQUIRED_COLUMNS = ("respondent_id", "item_id", "answer", "answered_at")
PROFILE_COLUMNS = ("industry", "region", "enterprise_size", "role", "sex", "age_band", "education", "years_service",
                   "enterprise")
IGNORED_COLUMNS = ("correct",)  # written by the export, recomputed on import
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
def campaign_report(state: State, campaign: str, bank: Iterable[Item] | Mapping[str, ItemInfo],
                    by: Sequence[str] = (), min_n: int = MIN_GROUP_N, target: float = AWARENESS_TARGET,
                    strata: Sequence[str] = (), population: Population | None = None,
                    region: str | None = None) -> dict[str, Any]:
    """The awareness report of a campaign (see `bot.awareness.report.build_report`), threshold from the
    campaign; strata and population (post-stratification counts) as build_report takes them.
    `region`: only respondents whose profile region is that one (a console analyst limited to a region).
    Aggregated in the database (bot.awareness.report_sql): the figures `build_report` gives for the
    campaign's forms loaded one by one (tests/awareness/reference.py), without loading the answers."""
    c = quiz.get_campaign(state, campaign)
    items = bank if isinstance(bank, Mapping) else item_infos(bank)
    check_arguments(c.threshold, target, list(by), strata)
    data = report_data(state, campaign, by=by, strata=strata, population=population, region=region)
    return report_from_data(c.name, c.threshold, data, items, by=by, target=target, min_n=min_n, strata=strata,
                            population=population)


def campaign_counts(state: State) -> dict[str, dict[str, int]]:
    """Completed counted and practice forms per campaign."""
    out: dict[str, dict[str, int]] = {}
    with state.read() as conn:
        for name, kind, n in conn.execute(text(
                "select campaign, kind, count(*) from forms where completed_at is not null and campaign is not null "
                "and kind in ('counted', 'practice') group by campaign, kind")):
            out.setdefault(name, {"counted": 0, "practice": 0})[kind] = n
    return out


# ---- CSV import --------------------------------------------------------------------------------
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
    """A profile cell as stored: coded fields as their taxonomy code (the code or its label is
    accepted; anything else is a ValueError listing every accepted code and label), the region as a
    place name (bot.text.clean.clean_region: never a formula), others as trimmed text of at most
    MAX_TEXT characters; control characters removed."""
    if column == "region":
        return clean_region(raw)
    value = strip_controls(unicodedata.normalize("NFKC", raw)).strip()
    codes = coded_fields(taxonomy).get(column)
    if codes:
        if value in codes:
            return value
        by_label = {label: code for code, label in codes.items()}
        if value in by_label:
            return by_label[value]
        accepted = ", ".join(f"{code} ({label})" for code, label in codes.items())
        raise ValueError(f"{column} {value!r} is not an accepted value; give a code or its label: {accepted}")
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


def _iso(when: datetime) -> str:
    """Stored times: UTC, ISO 8601 to the second, like bot.storage.state.now()."""
    return when.isoformat(timespec="seconds")


def import_responses(state: State, campaign: str, path: Path, bank: Iterable[Item] | Mapping[str, Item],
                     taxonomy: Mapping[str, Any], layout: str = "long",
                     link_campaigns: bool = False) -> tuple[int, list[str]]:
    """Import a CSV file of answers into a campaign: all rows or none (bot.awareness.responses).
    Respondent ids are the campaign's own unless `link_campaigns` (the same id is the same person in
    every campaign: bot.awareness.responses.respondent_key).

    Returns (answers imported, errors). Errors are "line N: what is wrong" (wide layout: "line N,
    column C: ..."), sorted by line; with any error nothing is written. A respondent who already has
    a counted form in the campaign is an error (nobody counts twice). The file is streamed: memory
    does not grow with its length.
    """
    from bot.awareness.responses import import_file

    return import_file(state, campaign, Path(path), bank, taxonomy, layout=layout, link_campaigns=link_campaigns)


# ---- CSV export --------------------------------------------------------------------------------
def export_responses(state: State, campaign: str, out: TextIO) -> int:
    """Write the answers of every counted, completed form of a campaign as CSV (the import format,
    plus `correct`); respondent_id is the stored salted key. Streamed (bot.awareness.exports).
    Returns the number of answer rows written."""
    from bot.awareness.exports import write_csv

    return write_csv(state, campaign, out, level="item")
