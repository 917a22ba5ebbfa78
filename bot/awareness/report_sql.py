"""A campaign report's input aggregated in the database: GROUP BY queries, never one Python object per answer.

What: `report_data(state, campaign, by, strata, population, region)` returns the `ReportData` that
`bot.awareness.report.report_from_data` turns into the report, the same figures `build_report` gives
for the campaign's forms loaded one by one (the reference in tests/awareness/reference.py); this is
what `ohbot report`, the console and the bot's /stats show (`campaigns.campaign_report`).

Why: a province-wide campaign has 10^6 respondents × 20 answers; loading them as objects took minutes
and gigabytes. Each form's score is stored on its row (forms.answered, forms.correct: migration 0010,
written with the answers), so no query re-totals the answers. The database returns:
- cells: counted non-empty forms (the forms table alone) grouped by (the profile fields the report
  needs, the enterprise, month, correct, answered) with a count: a few thousand rows, not one per
  respondent;
- the item histogram: one pass over the answers joined to their forms, grouped by (the `by` values,
  item, correct, form score, form length), from which per-item difficulty, point-biserial and upper–lower D on the rest score follow, and per
  group the most-missed items;
- the order of tied respondents where the upper–lower D needs it: D ranks respondents by rest score
  with ties in form order (completion time, then first stored answer, then form id: the order the
  form-by-form reading gave); only when the 27 % boundary splits a score that has both right and wrong
  answers is the order inside that score asked for (row_number() over the form order, SQLite ≥ 3.25
  and PostgreSQL).

Portable: SQLAlchemy Core on SQLite and PostgreSQL. Months are the China-time month of completed_at
(Asia/Shanghai has had no daylight saving since 1991, so SQLite adds 8 hours; PostgreSQL converts with
AT TIME ZONE). One counted form per campaign and user is guaranteed by the unique index
uq_forms_counted, so no respondent is de-duplicated here (duplicate_forms is 0, as before).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DateTime,
    Float,
    Text,
    case,
    cast,
    distinct,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from bot.awareness.report import (
    MIN_N_DISCRIMINATION,
    FormCell,
    ItemStats,
    ReportData,
    _value,
)
from bot.awareness.stats import point_biserial_grouped, upper_lower_discrimination_grouped
from bot.storage.db import backend
from bot.storage.tables import forms, responses

if TYPE_CHECKING:
    from bot.awareness.population import Population
    from bot.storage.state import State

__all__ = ["report_data"]

#: The report's time zone (bot.awareness.campaigns.TZ) and its fixed UTC offset.
TZ_NAME = "Asia/Shanghai"
TZ_HOURS = 8
#: PostgreSQL memory per sort or hash of the report's queries: the per-form scores of 10^6 forms
#: fit, instead of spilling to disk (set for the report's transaction only).
PG_WORK_MEM = "256MB"


def _is_correct(column: Any) -> ColumnElement[int]:
    """1 for a correct answer (responses.correct not 0 and not NULL: `bool(correct)`), else 0."""
    return case((func.coalesce(column, 0) != 0, 1), else_=0)


def _month(conn: Connection) -> ColumnElement[str]:
    """forms.completed_at as the "YYYY-MM" of its China-time date."""
    if backend(conn) == "postgresql":
        local = func.timezone(TZ_NAME, cast(forms.c.completed_at, DateTime(timezone=True)))
        return func.to_char(local, "YYYY-MM")
    return func.strftime("%Y-%m", forms.c.completed_at, f"+{TZ_HOURS} hours")


def _binary(conn: Connection, column: Any) -> Any:
    """Text ordered by code point, as Python orders str (PostgreSQL's default collation may not)."""
    return column.collate("C") if backend(conn) == "postgresql" else column


def _scored(conn: Connection, campaign: str, kind: str, region: str | None, fields: Sequence[str],
            rank: bool = False) -> Subquery:
    """The completed forms of a kind, one row each: form, user, answered, correct (the score stored on
    the form, migration 0010), month, `fields` (as answered with: forms' own profile) and, with `rank`,
    the form order (1, 2, …), which needs each form's first stored answer (a pass over the answers)."""
    columns: list[Any] = [forms.c.id.label("form"), forms.c.user.label("user"),
                          forms.c.answered.label("answered"), forms.c.correct.label("correct"),
                          _month(conn).label("month"), *(forms.c[f].label(f) for f in fields)]
    source: Any = forms
    if rank:  # completion time, then first stored answer (forms without one last), then form id
        first = (select(responses.c.form, func.min(responses.c.id).label("first"))
                 .where(responses.c.campaign == campaign).group_by(responses.c.form).subquery("a"))
        source = forms.outerjoin(first, first.c.form == forms.c.id)
        columns.append(func.row_number().over(order_by=(
            _binary(conn, forms.c.completed_at), case((first.c.first.is_(None), 1), else_=0),
            first.c.first, _binary(conn, forms.c.id))).label("rank"))
    query = (select(*columns).select_from(source)
             .where(forms.c.campaign == campaign, forms.c.completed_at.is_not(None), forms.c.kind == kind))
    if region:
        query = query.where(forms.c.region == region)
    return query.subquery("s")


def _cells(conn: Connection, campaign: str, region: str | None, fields: Sequence[str]) -> tuple[list[FormCell], int]:
    """(cells of the counted non-empty forms, number of empty counted forms)."""
    s = _scored(conn, campaign, "counted", region, fields)
    keys = [s.c.month, *(s.c[f] for f in fields), s.c.correct, s.c.answered]
    rows = conn.execute(select(*keys, func.count()).group_by(*keys).order_by(*keys)).all()
    cells: list[FormCell] = []
    empty = 0
    for month, *profile, correct, answered, count in rows:
        if not answered:
            empty += count
            continue
        cells.append(FormCell(dict(zip(fields, profile)), month, int(correct), int(answered), int(count)))
    return cells, empty


def _practice(conn: Connection, campaign: str, region: str | None) -> dict[str, Any]:
    """The practice block: completed practice forms, their respondents and mean score rate."""
    s = _scored(conn, campaign, "practice", region, ())
    n_forms, n_users = conn.execute(select(func.count(), func.count(distinct(s.c.user)))).one()
    scores = conn.execute(select(s.c.correct, s.c.answered, func.count()).where(s.c.answered > 0)
                          .group_by(s.c.correct, s.c.answered).order_by(s.c.correct, s.c.answered)).all()
    rated = sum(n for _, _, n in scores)
    mean = sum(n * (c / a) for c, a, n in scores) / rated if rated else None
    return {"forms": int(n_forms), "respondents": int(n_users), "mean_score_rate": mean}


def _histogram(conn: Connection, campaign: str, region: str | None, by: Sequence[str]) -> list[tuple]:
    """Answers of counted forms by (`by` values…, item, correct, form's correct, form's answered)."""
    s = _scored(conn, campaign, "counted", region, [k for k in by if k != "month"])
    x = _is_correct(responses.c.correct)
    keys = [s.c[k] for k in by] + [responses.c.item_id, x, s.c.correct, s.c.answered]
    query = (select(*keys, func.count()).select_from(responses.join(s, responses.c.form == s.c.form))
             .where(responses.c.campaign == campaign).group_by(*keys))
    return [tuple(r) for r in conn.execute(query).all()]


def _ties(conn: Connection, campaign: str, region: str | None, wanted: Sequence[tuple[str, float, str, int]],
          per_item: Mapping[str, Mapping[tuple[int, int, int], int]] | None = None,
          ) -> dict[tuple[str, float, str, int], int]:
    """For each (item, rest score, side, m): of the first ("lower") or last ("upper") m respondents, in
    form order, who answered the item with that rest score, how many answered it right.

    per_item: the item histogram (`_histogram` without `by`; read here when not given). It names the
    (answer, form correct, form answered) kinds of answer that make up each tied score and the size of
    each: only those answers are read, numbered in form order within their score (row_number) with the
    running count right (sum … over), and only the rows at the wanted positions come back (the upper m
    are the group's right answers less those among its first size − m)."""
    if not wanted:
        return {}
    if per_item is None:
        per_item = defaultdict(dict)
        for item, x, c, a, n in _histogram(conn, campaign, region, ()):
            per_item[item][(int(x), int(c), int(a))] = int(n)  # type: ignore[index]
    members: dict[tuple[str, float], list[tuple[int, int, int]]] = defaultdict(list)
    for item in {w[0] for w in wanted}:
        for x, c, a in per_item[item]:
            if a > 1:
                members[(item, (c - x) / (a - 1))].append((x, c, a))
    size = {g: sum(per_item[g[0]][k] for k in kinds) for g, kinds in members.items()}
    right = {g: sum(per_item[g[0]][k] for k in kinds if k[0]) for g, kinds in members.items()}
    position = {spec: spec[3] if spec[2] == "lower" else size[spec[:2]] - spec[3] for spec in wanted}

    s = _scored(conn, campaign, "counted", region, (), rank=True)
    x = _is_correct(responses.c.correct)
    rest = cast(s.c.correct - x, Float) / (s.c.answered - 1)
    kind = (responses.c.item_id + "|" + cast(x, Text) + "|" + cast(s.c.correct, Text) + "|"
            + cast(s.c.answered, Text))
    kinds = sorted({f"{item}|{k[0]}|{k[1]}|{k[2]}" for (item, y) in {w[:2] for w in wanted}
                    for k in members[(item, y)]})
    group = (responses.c.item_id, rest)
    rows = (select(responses.c.item_id.label("item"), (s.c.correct - x).label("rc"), s.c.answered.label("a"),
                   func.row_number().over(partition_by=group, order_by=s.c.rank).label("rn"),
                   func.sum(x).over(partition_by=group, order_by=s.c.rank, rows=(None, 0)).label("cum"))
            .select_from(responses.join(s, responses.c.form == s.c.form))
            .where(responses.c.campaign == campaign, s.c.answered > 1, kind.in_(kinds))).subquery("t")
    spots = sorted({f"{spec[0]}|{p}" for spec, p in position.items() if p > 0})
    cum: dict[tuple[str, float, int], int] = {}
    if spots:
        query = select(rows.c.item, rows.c.rc, rows.c.a, rows.c.rn, rows.c.cum).where(
            (rows.c.item + "|" + cast(rows.c.rn, Text)).in_(spots))
        for item, rc, a, rn, total in conn.execute(query).all():
            cum[(item, int(rc) / (int(a) - 1), int(rn))] = int(total)
    out = {}
    for spec in wanted:
        item, y, side, m = spec
        p = position[spec]
        before = cum[(item, y, p)] if p > 0 else 0
        out[spec] = before if side == "lower" else right[(item, y)] - before
    return out


def _item_stats(conn: Connection, campaign: str, region: str | None,
                per_item: Mapping[str, Mapping[tuple[int, int, int], int]]) -> list[ItemStats]:
    """Per item from its histogram {(x, form correct, form answered): answers}: n, correct, D, r."""
    groups: dict[str, list[tuple[float, int, int]]] = {}
    pairs: dict[str, list[tuple[bool, float, int]]] = {}
    for item, hist in per_item.items():
        scores: dict[float, list[int]] = defaultdict(lambda: [0, 0])
        for (x, c, a), n in hist.items():
            if a > 1:  # a rest score needs at least one other item
                scores[(c - x) / (a - 1)][x] += n
        groups[item] = [(y, n0, n1) for y, (n0, n1) in sorted(scores.items())]
        pairs[item] = [(x == 1, y, n) for y, counts in scores.items() for x, n in enumerate(counts) if n]

    wanted: list[tuple[str, float, str, int]] = []

    def record(item: str) -> Any:
        def tie(score: float, side: str, m: int) -> int:
            wanted.append((item, score, side, m))
            return 0
        return tie

    usable = {item for item, g in groups.items() if sum(a + b for _, a, b in g) >= MIN_N_DISCRIMINATION}
    for item in usable:  # first pass: which tied scores does D need ordered?
        upper_lower_discrimination_grouped(groups[item], record(item))
    resolved = _ties(conn, campaign, region, wanted, per_item)
    out = []
    for item, hist in per_item.items():
        d = pb = None
        if item in usable:
            def known(score: float, side: str, m: int, item: str = item) -> int:
                return resolved[(item, score, side, m)]

            d = upper_lower_discrimination_grouped(groups[item], known)
            pb = point_biserial_grouped(pairs[item])
        out.append(ItemStats(item, sum(hist.values()), sum(n for (x, _, _), n in hist.items() if x), d, pb))
    return out


def report_data(state: State, campaign: str, by: Sequence[str] = (), strata: Sequence[str] = (),
                population: Population | None = None, region: str | None = None) -> ReportData:
    """The aggregated input of a campaign's report (see the module docstring); `region`: only forms
    answered with that profile region."""
    fields = sorted({k for k in by if k != "month"} | set(strata)
                    | set(population.fields if population is not None else ()) | {"enterprise"})
    by = list(by)
    with state.read() as conn:
        if backend(conn) == "postgresql":
            conn.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
            conn.execute(text("SET LOCAL jit = off"))  # compiling costs more than these scans gain
        cells, empty = _cells(conn, campaign, region, fields)
        per_item: dict[str, dict[tuple[int, int, int], int]] = defaultdict(lambda: defaultdict(int))
        missed: dict[tuple[str, ...], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for *values, item, x, c, a, n in _histogram(conn, campaign, region, by):
            per_item[item][(int(x), int(c), int(a))] += n
            if by:
                month = values[by.index("month")] if "month" in by else ""
                profile = dict(zip(by, values))
                counts = missed[tuple(_value(profile, month, k) for k in by)][item]
                counts[0] += n if x else 0
                counts[1] += n
        items = _item_stats(conn, campaign, region, per_item)
        practice = _practice(conn, campaign, region)
    return ReportData(cells, items, {g: {i: (c, n) for i, (c, n) in m.items()} for g, m in missed.items()},
                      practice, {"empty_forms": empty, "duplicate_forms": 0})
