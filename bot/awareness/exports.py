"""Responses out: the counted answers of a campaign as CSV, XLSX, SPSS (.sav) or Stata (.dta).

Levels:
- item: one row per answer: respondent_id, item_id, answer, correct (1/0), answered_at, then the
  profile. As CSV this is the import format (`correct` is ignored on import), so an export can be
  imported again.
- respondent: one row per respondent: respondent_id, completed_at, the profile, answered, correct,
  score_rate, aware (1/0 at the campaign's threshold), then one column per item id, 1 right,
  0 wrong, empty when the item was not on the respondent's form.

Only each respondent's first completed counted form is exported (the one reports count).
respondent_id and enterprise are the stored salted hashes, never a raw id or enterprise code.
SPSS and Stata files carry variable labels (Chinese) and value labels: profile fields with
taxonomy options (industry, enterprise size, role, sex, ...) as their labels, free-text fields
(region) as their text, correct/aware and the item columns as 对/错, 是/否. They are written with pyreadstat (a
wrapper of the ReadStat C library) from a polars data frame; answer times are local China time.
CSV and XLSX are streamed: memory does not grow with the number of answers. SPSS and Stata
files are built in memory (pyreadstat writes whole data frames).
"""
from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import text

from bot.awareness.campaigns import PROFILE_COLUMNS, TZ, coded_fields
from bot.awareness.cells import safe_cell, xlsx_row
from bot.awareness.report import ItemInfo, _is_aware
from bot.errors import InputError
from bot.quiz import forms as quiz
from bot.storage.state import State
from bot.taxonomy import field_labels

FORMATS = ("csv", "xlsx", "sav", "dta")
LEVELS = ("item", "respondent")
ITEM_COLUMNS = ("respondent_id", "item_id", "answer", "correct", "answered_at") + PROFILE_COLUMNS
RESPONDENT_COLUMNS = ("respondent_id", "completed_at") + PROFILE_COLUMNS + ("answered", "correct", "score_rate",
                                                                             "aware")
XLSX_MAX_ROWS = 1_048_576
#: Variable labels of the columns that are not profile fields (those take the taxonomy's labels).
VARIABLE_LABELS = {
    "respondent_id": "受访者编号（加密）", "item_id": "题目编号", "answer": "作答选项", "correct": "答对",
    "answered_at": "作答时间（北京时间）", "completed_at": "完成时间（北京时间）", "answered": "作答题数",
    "score_rate": "得分率", "aware": "知晓", "enterprise": "企业编码（加密）",
}
_TIME_CACHE_LIMIT = 100_000
BATCH_ROWS = 10_000  # rows fetched at a time from a streamed (server-side on PostgreSQL) query


class _LocalTimes:
    """Stored UTC ISO times → China-time datetimes, memoised (a campaign repeats its times)."""

    def __init__(self) -> None:
        self.cache: dict[str, datetime] = {}

    def __call__(self, iso: str) -> datetime:
        hit = self.cache.get(iso)
        if hit is None:
            if len(self.cache) >= _TIME_CACHE_LIMIT:
                self.cache.clear()
            hit = self.cache[iso] = datetime.fromisoformat(iso).astimezone(TZ)
        return hit


def _region_sql(region: str | None, alias: str) -> str:
    """The condition that keeps only respondents of `region` (an analyst limited to it), or ''."""
    return f' AND {alias}."region" = :region ' if region else ""


def answer_rows(state: State, campaign: str, region: str | None = None) -> Iterator[tuple]:
    """(form, user, completed_at, item_id, answer, correct, answered_at, *profile) of every answer of
    each user's first completed counted form, in completion order; streamed from the database.
    `region`: only respondents whose profile region is that one."""
    cols = ", ".join(f'f."{c}"' for c in PROFILE_COLUMNS)  # the profile the form was answered with
    # one counted form per campaign and user is the database's rule (migration 0006): no tie-breaking
    sql = text(f'SELECT f.id, f."user", f.completed_at, r.item_id, r.answer, r.correct, r.answered_at, {cols} '
               'FROM forms f JOIN responses r ON r.form = f.id '
               "WHERE f.campaign = :campaign AND f.kind = 'counted' AND f.completed_at IS NOT NULL "
               + _region_sql(region, "f") +
               # the reports' form order (completion time, then form id: bot.awareness.report_sql), so an
               # export imported again (its form ids sort in import order) orders its ties as before
               "ORDER BY f.completed_at, f.id, r.id")
    with state.read() as conn:
        yield from conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
            sql, {"campaign": campaign, "region": region})


def campaign_items(state: State, campaign: str, region: str | None = None) -> list[str]:
    """Item ids answered on the campaign's counted forms, sorted (the respondent level's columns)."""
    with state.read() as conn:
        rows = conn.execute(text(
            "SELECT DISTINCT r.item_id FROM responses r JOIN forms f ON f.id = r.form "
            "WHERE f.campaign = :campaign AND f.kind = 'counted'" + _region_sql(region, "f")),
            {"campaign": campaign, "region": region}).all()
    return sorted(r[0] for r in rows)


def item_level(state: State, campaign: str, region: str | None = None) -> Iterator[tuple]:
    """Rows of ITEM_COLUMNS (answered_at as a China-time datetime)."""
    local = _LocalTimes()
    for _, user, _, item_id, answer, correct, answered_at, *profile in answer_rows(state, campaign, region):
        yield (user, item_id, answer, int(correct), local(answered_at), *profile)


def respondent_level(state: State, campaign: str, items: list[str], region: str | None = None) -> Iterator[tuple]:
    """Rows of RESPONDENT_COLUMNS + items (item cells 1, 0 or None)."""
    threshold = quiz.get_campaign(state, campaign).threshold
    local = _LocalTimes()
    position = {item: k for k, item in enumerate(items)}
    current = None
    head: tuple = ()
    cells: list[int | None] = []

    def row() -> tuple:
        answered = sum(c is not None for c in cells)
        right = sum(c or 0 for c in cells)
        return (*head, answered, right, right / answered if answered else None,
                int(_is_aware(right, answered, threshold)), *cells)

    for form, user, completed_at, item_id, _, correct, _, *profile in answer_rows(state, campaign, region):
        if form != current:
            if current is not None:
                yield row()
            current = form
            head = (user, local(completed_at), *profile)
            cells = [None] * len(items)
        cells[position[item_id]] = int(correct)
    if current is not None:
        yield row()


def _cell(value: Any) -> Any:
    """CSV cell: datetimes as ISO 8601 with +08:00, floats to 4 places, None empty, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return round(value, 4)
    return safe_cell(value)


def _item_csv_rows(state: State, campaign: str, region: str | None = None) -> Iterator[tuple]:
    """Item-level CSV rows, the fast way: keys, item ids and answer letters are our own (safe as they
    are); times and profiles repeat, so each distinct one is formatted and neutralised once."""
    local = _LocalTimes()
    times: dict[str, str] = {}
    profiles: dict[tuple, tuple] = {}
    for _, user, _, item_id, answer, correct, answered_at, *profile in answer_rows(state, campaign, region):
        when = times.get(answered_at)
        if when is None:
            if len(times) >= _TIME_CACHE_LIMIT:
                times.clear()
            when = times[answered_at] = local(answered_at).isoformat(timespec="seconds")
        key = tuple(profile)
        cells = profiles.get(key)
        if cells is None:
            if len(profiles) >= _TIME_CACHE_LIMIT:
                profiles.clear()
            cells = profiles[key] = tuple(_cell(v) for v in profile)
        yield (user, item_id, answer, correct, when, *cells)


def write_csv(state: State, campaign: str, out: TextIO, level: str = "item", region: str | None = None) -> int:
    """Stream a level's rows as CSV to `out`; returns the number of data rows written."""
    quiz.get_campaign(state, campaign)
    writer = csv.writer(out, lineterminator="\n")
    if level == "item":
        writer.writerow(ITEM_COLUMNS)
        written = 0
        for row in _item_csv_rows(state, campaign, region):
            writer.writerow(row)
            written += 1
        return written
    items = campaign_items(state, campaign, region)
    writer.writerow(RESPONDENT_COLUMNS + tuple(items))
    written = 0
    for row in respondent_level(state, campaign, items, region):
        writer.writerow([_cell(v) for v in row])
        written += 1
    return written


def _count_answers(state: State, campaign: str) -> int:
    with state.read() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM responses r JOIN forms f ON f.id = r.form WHERE f.campaign = :campaign "
            "AND f.kind = 'counted' AND f.completed_at IS NOT NULL"), {"campaign": campaign}).scalar_one()


def write_xlsx(state: State, campaign: str, path: Path, level: str = "item", region: str | None = None) -> int:
    """A level's rows as one XLSX sheet (openpyxl write-only: streamed). Every text cell is a string
    and neutralised (bot.awareness.cells); answer times are Excel date-times. Returns the number of data rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    quiz.get_campaign(state, campaign)
    if level == "item" and _count_answers(state, campaign) >= XLSX_MAX_ROWS:
        raise InputError("too many answers for one XLSX sheet (Excel's limit is 1,048,576 rows): "
                         "export --format csv or --level respondent")
    header: tuple[str, ...]
    if level == "item":
        header, rows = ITEM_COLUMNS, item_level(state, campaign, region)
    else:
        items = campaign_items(state, campaign, region)
        header, rows = RESPONDENT_COLUMNS + tuple(items), respondent_level(state, campaign, items, region)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("作答" if level == "item" else "受访者")
    bold = Font(bold=True)
    heads = []
    for name in header:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = bold
        heads.append(cell)
    ws.append(heads)
    written = 0
    for row in rows:
        ws.append(xlsx_row(ws, [v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row]))
        written += 1
    wb.save(path)
    return written


def _variable_name(item_id: str, taken: set[str]) -> str:
    """An SPSS/Stata variable name for an item column: letters, digits, underscore, starting with a
    letter, at most 32 characters, unique."""
    name = re.sub(r"\W", "_", item_id, flags=re.ASCII)
    if not name[:1].isalpha():
        name = "q_" + name
    name = name[:32]
    base, k = name, 1
    while name.lower() in taken:
        k += 1
        name = f"{base[:28]}_{k}"
    taken.add(name.lower())
    return name


class _Column:
    """One SPSS/Stata column built while rows stream by, in a compact form (an array of numbers, or
    shared strings): a campaign of 10^6 answers must not become 10^7 Python objects.

    kind: "code" (a profile field: integer codes, value labels from `options` then other values as
    themselves), "time" (China-time datetimes as microseconds), "int" (small counts or 1/0 flags),
    "float", or "text".
    """

    _TYPECODES = {"code": "i", "time": "q", "int": "i", "float": "d"}

    def __init__(self, name: str, kind: str, options: Mapping[str, str] | None = None) -> None:
        self.name, self.kind = name, kind
        self.options = dict(options or {})
        self.codes: dict[Any, int] = {v: k for k, v in enumerate(self.options, 1)}
        self.values: Any = array(self._TYPECODES[kind]) if kind in self._TYPECODES else []
        self.shared: dict[str, str] = {}

    def add(self, value: Any) -> None:
        kind = self.kind
        if kind == "text":
            text = "" if value is None else str(value)
            self.values.append(self.shared.setdefault(text, text))
        elif kind == "code":
            if value in (None, ""):
                self.values.append(0)
            else:
                code = self.codes.get(value)
                if code is None:
                    code = self.codes[value] = len(self.codes) + 1
                self.values.append(code)
        elif kind == "time":
            self.values.append((value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND)
        elif kind == "int":
            self.values.append(-1 if value is None else int(value))
        else:
            self.values.append(math.nan if value is None else float(value))

    def series(self) -> Any:
        """The column as a polars Series (missing values as nulls)."""
        import numpy as np
        import polars as pl

        if self.kind == "text":
            return pl.Series(self.name, self.values, dtype=pl.String)
        if self.kind == "time":
            return pl.Series(self.name, np.frombuffer(self.values, dtype=np.int64)).cast(pl.Datetime("us"))
        if self.kind == "float":
            return pl.Series(self.name, np.frombuffer(self.values, dtype=np.float64)).fill_nan(None)
        col = pl.Series(self.name, np.frombuffer(self.values, dtype=np.int32))
        return col.set(col == (0 if self.kind == "code" else -1), None)

    def value_labels(self) -> dict[int, str]:
        """Code → label of a "code" column: every option, and the other values present as themselves."""
        labels = {**self.options}
        return {code: str(labels.get(value, value))[:120] for value, code in self.codes.items()}


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def write_stat(state: State, campaign: str, path: Path, fmt: str, level: str, items_info: Mapping[str, ItemInfo],
               taxonomy: Mapping[str, Any], region: str | None = None) -> int:
    """A level's rows as an SPSS .sav or Stata .dta file with variable and value labels (pyreadstat).
    Returns the number of data rows."""
    import polars as pl
    import pyreadstat

    quiz.get_campaign(state, campaign)
    if level == "item":
        names = list(ITEM_COLUMNS)
        rows: Iterator[tuple] = item_level(state, campaign, region)
        item_ids: list[str] = []
    else:
        item_ids = campaign_items(state, campaign, region)
        names = list(RESPONDENT_COLUMNS)
        rows = respondent_level(state, campaign, item_ids, region)
    taken = {n.lower() for n in names}
    item_names = [_variable_name(i, taken) for i in item_ids]
    coded = coded_fields(taxonomy)
    profile_labels = field_labels(dict(taxonomy))
    yes_no = {0: "否", 1: "是"}
    right_wrong = {0: "错", 1: "对"}
    columns: list[_Column] = []
    labels: dict[str, str] = {}
    value_labels: dict[str, dict[int, str]] = {}
    for name in names:
        labels[name] = VARIABLE_LABELS.get(name) or profile_labels.get(name, name)
        if name in PROFILE_COLUMNS and name != "enterprise":
            columns.append(_Column(name, "code", coded.get(name)))
        elif name in ("answered_at", "completed_at"):
            columns.append(_Column(name, "time"))
        elif name in ("correct", "aware", "answered"):
            columns.append(_Column(name, "int"))
            if name != "answered":
                value_labels[name] = right_wrong if name == "correct" and level == "item" else yes_no
        elif name == "score_rate":
            columns.append(_Column(name, "float"))
        else:
            columns.append(_Column(name, "text"))
    if level == "respondent":
        labels["correct"] = "答对题数"
    for item_id, name in zip(item_ids, item_names):
        info = items_info.get(item_id)
        labels[name] = f"{item_id} {info.knowledge_point}" if info else item_id
        columns.append(_Column(name, "int"))
        value_labels[name] = right_wrong
    adders = [c.add for c in columns]
    for row in rows:
        for add, v in zip(adders, row):
            add(v)
    for c in columns:
        if c.kind == "code":
            value_labels[c.name] = c.value_labels()
    frame = pl.DataFrame([c.series() for c in columns])
    del columns, adders
    # pyreadstat's signatures want optional labels and int-or-float codes (its dicts are invariant).
    column_labels: dict[str, str | None] = {k: v[:80] for k, v in labels.items()}  # Stata's limit
    code_labels: dict[str, dict[int | float, str]] = {
        k: {code: text for code, text in v.items()} for k, v in value_labels.items() if v}
    note = f"ohbot campaign {campaign}: {'one row per answer' if level == 'item' else 'one row per respondent'}"
    if fmt == "sav":
        pyreadstat.write_sav(frame, str(path), column_labels=column_labels, variable_value_labels=code_labels,
                             note=note)
    else:
        pyreadstat.write_dta(frame, str(path), column_labels=column_labels, variable_value_labels=code_labels,
                             file_label=note[:80], version=15)
    return frame.height


def export(state: State, campaign: str, fmt: str, level: str, out: Path | TextIO,
           items_info: Mapping[str, ItemInfo] | None = None, taxonomy: Mapping[str, Any] | None = None,
           region: str | None = None) -> int:
    """Write a campaign's counted answers in `fmt` (csv, xlsx, sav, dta) at `level` (item, respondent)
    to `out` (a path; csv also takes an open text stream). Returns the number of data rows.
    `region`: only respondents whose profile region is that one (a console analyst limited to it)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}: use {' or '.join(LEVELS)}")
    if fmt == "csv":
        if isinstance(out, Path | str):
            with open(out, "w", encoding="utf-8-sig", newline="") as f:
                return write_csv(state, campaign, f, level, region)
        return write_csv(state, campaign, out, level, region)
    if not isinstance(out, Path | str):
        raise InputError(f"--format {fmt} writes a file: give --out FILE")
    if fmt == "xlsx":
        return write_xlsx(state, campaign, Path(out), level, region)
    return write_stat(state, campaign, Path(out), fmt, level, items_info or {}, taxonomy or {}, region)
