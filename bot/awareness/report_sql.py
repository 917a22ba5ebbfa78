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
- the item histogram: the one pass over the answers, joined to their forms and grouped by (item,
  correct, form score, form length, completion day), from which per-item difficulty, point-biserial
  and upper–lower D on the rest score follow (summed over days), and the days of tied respondents
  (below); rows: items × kinds of answer × days, not one per answer;
- with `by`, a second pass grouped by (the `by` values, item, correct) for each group's most-missed
  items (crossed with the days, the `by` values would multiply the histogram's rows);
- the order of tied respondents where the upper–lower D needs it. D ranks respondents by rest score
  with ties in **form order: completion time (forms.completed_at as stored), then form id, both
  compared by code point** (a documented, deterministic order; `build_report` gets its forms in this
  order from tests/awareness/reference.py). Only when the 27 % boundary splits a score that has both
  right and wrong answers is the order inside that score needed, and the histogram's days (buckets of
  the form order: a text's prefix never sorts after a later text's) already say how many tied
  respondents, and how many right, come before the boundary's day; only the tied forms of that one
  day (filtered by their day and integer scores, the item's answer found by the (form, item) index)
  are read and ordered (`_ties`).

Cost at province scale (10^6 forms, 2×10^7 answers, PostgreSQL): the join of the answers to their
forms is nearly all of it (one backend: a scan of the answers alone 1.3 s of CPU, the join 11–14 s,
grouping the joined rows by day 7 s more; issue #14, README "Running at scale"). Reading the answers once instead
of twice (the tied scores' days used to be a second join) is what this layout gains; less than one
join needs aggregates kept as forms complete.

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
    case,
    cast,
    distinct,
    func,
    literal_column,
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
#: Characters of forms.completed_at that make a form's day ("YYYY-MM-DD"): the buckets of the form order
#: in the item histogram, so that tied respondents are read only for the day the 27 % cut falls in.
DAY_CHARS = 10


def _is_correct(column: Any) -> ColumnElement[int]:
    """1 for a correct answer (responses.correct not 0 and not NULL: `bool(correct)`), else 0."""
    return case((func.coalesce(column, 0) != 0, 1), else_=0)


def _month(conn: Connection) -> ColumnElement[str]:
    """forms.completed_at as the "YYYY-MM" of its China-time date."""
    if backend(conn) == "postgresql":
        local = func.timezone(TZ_NAME, cast(forms.c.completed_at, DateTime(timezone=True)))
        return func.to_char(local, "YYYY-MM")
    return func.strftime("%Y-%m", forms.c.completed_at, f"+{TZ_HOURS} hours")


def _scored(conn: Connection, campaign: str, kind: str, region: str | None, fields: Sequence[str],
            day: bool = False) -> Subquery:
    """The completed forms of a kind, one row each: form, user, answered, correct (the score stored on
    the form, migration 0010), month, `fields` (as answered with: forms' own profile) and with `day`
    the form's day (`_day()`)."""
    columns: list[Any] = [forms.c.id.label("form"), forms.c.user.label("user"),
                          forms.c.answered.label("answered"), forms.c.correct.label("correct"),
                          _month(conn).label("month"), *(forms.c[f].label(f) for f in fields)]
    if day:
        columns.append(_day().label("day"))
    query = (select(*columns)
             .where(forms.c.campaign == campaign, forms.c.completed_at.is_not(None), forms.c.kind == kind))
    if region:
        query = query.where(forms.c.region == region)
    return query.subquery("s")


def _day() -> ColumnElement[str]:
    """The first DAY_CHARS characters of forms.completed_at (its UTC date): a bucket of the form order
    (completion time, then form id): a text's prefix never sorts after the prefix of a later text."""
    # literals, not parameters: PostgreSQL's statistics on the expression (migration 0011) must match it
    return func.substr(forms.c.completed_at, literal_column("1"), literal_column(str(DAY_CHARS)))


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


#: One item's answers of counted forms by day: {(x, form correct, form answered): {form day: answers}},
#: x = 1 when right; the day is `_day()`'s, a bucket of the form order.
ItemDays = dict[tuple[int, int, int], dict[str, int]]


def _histogram(conn: Connection, campaign: str, region: str | None) -> dict[str, ItemDays]:
    """The one pass over the answers of counted forms, joined to their forms and grouped by (item, x,
    form correct, form answered, form day): per item its answers by kind and day. Summed over days,
    the item histogram; by day, where the upper–lower index's tied respondents fall (`_ties`)."""
    s = _scored(conn, campaign, "counted", region, (), day=True)
    keys = [responses.c.item_id, _is_correct(responses.c.correct), s.c.correct, s.c.answered, s.c.day]
    query = (select(*keys, func.count()).select_from(responses.join(s, responses.c.form == s.c.form))
             .where(responses.c.campaign == campaign).group_by(*keys))
    per_item: dict[str, ItemDays] = defaultdict(lambda: defaultdict(dict))
    row: Any
    for row in conn.execute(query):
        i, xv, c, a, d, n = row
        per_item[i][(int(xv), int(c), int(a))][d] = int(n)
    return per_item


def _totals(days: ItemDays) -> dict[tuple[int, int, int], int]:
    """An item's histogram {(x, form correct, form answered): answers}: its answers summed over days, in
    kind order, so that sums over it (the point-biserial) do not follow the database's row order."""
    return {kind: sum(days[kind].values()) for kind in sorted(days)}


def _missed(conn: Connection, campaign: str, region: str | None, by: Sequence[str]) -> list[tuple]:
    """With `by`, the rows (`by` values…, item, x, answers) of the groups' most-missed lists: a second
    pass over the answers, grouped by the `by` values (their days would multiply the histogram's rows)."""
    s = _scored(conn, campaign, "counted", region, [k for k in by if k != "month"])
    keys = [*(s.c[k] for k in by), responses.c.item_id, _is_correct(responses.c.correct)]
    query = (select(*keys, func.count()).select_from(responses.join(s, responses.c.form == s.c.form))
             .where(responses.c.campaign == campaign).group_by(*keys))
    return [(*values, i, int(xv), int(n)) for *values, i, xv, n in conn.execute(query)]


def _tied_forms(conn: Connection, campaign: str, region: str | None, kinds: set[tuple[int, int, int]],
                days: Sequence[str]) -> Any:
    """The answers of counted forms completed on `days` whose (correct, answered) is among `kinds`' (x,
    correct, answered): forms filtered on their day and integer scores, their answers found by the
    (form, item) index. Not filtered on items (an IN list of hundreds of items made SQLite probe that
    index once per item and form): the callers keep the items they want. Returns (query, x, day)."""
    day = _day()
    x = _is_correct(responses.c.correct)
    query = (select().select_from(forms.join(responses, responses.c.form == forms.c.id))
             .where(forms.c.campaign == campaign, forms.c.completed_at.is_not(None), forms.c.kind == "counted",
                    forms.c.answered > 1, forms.c.correct.in_(sorted({c for _, c, _ in kinds})),
                    forms.c.answered.in_(sorted({a for _, _, a in kinds})), day.in_(sorted(days))))
    if region:
        query = query.where(forms.c.region == region)
    return query, x, day


def _ties(conn: Connection, campaign: str, region: str | None, wanted: Sequence[tuple[str, float, str, int]],
          per_item: Mapping[str, ItemDays] | None = None) -> dict[tuple[str, float, str, int], int]:
    """For each (item, rest score, side, m): of the first ("lower") or last ("upper") m respondents, in
    form order, who answered the item with that rest score, how many answered it right.

    per_item: the item histogram by day (`_histogram`; read here when not given). It names the (x, form
    correct, form answered) kinds of answer that make up each tied score, and counts them by day (the
    first DAY_CHARS characters of completed_at: buckets of the form order, a text's prefix never
    sorting after a later text's), which tells how many tied respondents, and how many right, come
    before the day the m-th falls in; only when it falls inside a day (not at its end) are that day's
    tied answers of the item read and ordered here, by (completion time, form id). No sort or window
    over all tied answers, and no second pass over the answers."""
    if not wanted:
        return {}
    if per_item is None:
        per_item = _histogram(conn, campaign, region)
    members: dict[tuple[str, float], list[tuple[int, int, int]]] = defaultdict(list)
    for item in {w[0] for w in wanted}:
        for x, c, a in per_item[item]:
            if a > 1:
                members[(item, (c - x) / (a - 1))].append((x, c, a))
    # per tied score: [(day, answers, right answers)] in day order
    days: dict[tuple[str, float], list[tuple[str, int, int]]] = {}
    for group in {w[:2] for w in wanted}:
        size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for kind in members[group]:
            for d, n in per_item[group[0]][kind].items():
                size[d][0] += n
                size[d][1] += n if kind[0] else 0
        days[group] = [(d, n, r) for d, (n, r) in sorted(size.items())]

    def locate(group: tuple[str, float], p: int) -> tuple[int, str | None, int]:
        """(right answers before position p's day, the day when p falls inside it, p within that day)."""
        before = right = 0
        for day, n, r in days[group]:
            if p <= before + n:
                return (right + r, None, 0) if p == before + n else (right, day, p - before)
            before, right = before + n, right + r
        return right, None, 0

    located = {}
    for spec in wanted:
        item, y, side, m = spec
        total = sum(n for _, n, _ in days[(item, y)])
        located[spec] = locate((item, y), m if side == "lower" else total - m)
    inside = {(spec[0], bucket) for spec, (_, bucket, _) in located.items() if bucket is not None}
    ordered = _tied_answers(conn, campaign, region, inside,
                            {k for spec in located if located[spec][1] is not None for k in members[spec[:2]]})
    out = {}
    for spec, (right, bucket, p) in located.items():
        item, y, side, m = spec
        if bucket is not None:
            tied = [xv for c, a, xv in ordered.get((item, bucket), ()) if (c - xv) / (a - 1) == y]
            right += sum(tied[:p])
        total_right = sum(r for _, _, r in days[(item, y)])
        out[spec] = right if side == "lower" else total_right - right
    return out


def _tied_answers(conn: Connection, campaign: str, region: str | None, inside: set[tuple[str, str]],
                  kinds: set[tuple[int, int, int]]) -> dict[tuple[str, str], list[tuple[int, int, int]]]:
    """{(item, day): [(form correct, form answered, x)] in form order} of the counted forms completed
    that day whose score is among `kinds`' (x, correct, answered), for each (item, day) in `inside`."""
    if not inside:
        return {}
    query, x, day = _tied_forms(conn, campaign, region, kinds, sorted({d for _, d in inside}))
    query = query.add_columns(responses.c.item_id, day, forms.c.completed_at, forms.c.id, forms.c.correct,
                              forms.c.answered, x)
    rows: dict[tuple[str, str], list[tuple[str, str, int, int, int]]] = defaultdict(list)
    for item, d, completed_at, form, c, a, xv in conn.execute(query):
        if (item, d) in inside:
            rows[(item, d)].append((completed_at, form, int(c), int(a), int(xv)))
    return {key: [r[2:] for r in sorted(found)] for key, found in rows.items()}  # code point order, as "C"


def _item_stats(conn: Connection, campaign: str, region: str | None,
                per_item: Mapping[str, ItemDays]) -> list[ItemStats]:
    """Per item from its histogram by day (`_histogram`): n, correct, D, r."""
    totals = {item: _totals(days) for item, days in per_item.items()}
    groups: dict[str, list[tuple[float, int, int]]] = {}
    pairs: dict[str, list[tuple[bool, float, int]]] = {}
    for item, hist in totals.items():
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
    for item, hist in totals.items():
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
        per_item = _histogram(conn, campaign, region)
        by_group = _missed(conn, campaign, region, by) if by else []
        missed: dict[tuple[str, ...], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for *values, item, x, n in by_group:
            month = values[by.index("month")] if "month" in by else ""
            profile = dict(zip(by, values))
            counts = missed[tuple(_value(profile, month, k) for k in by)][item]
            counts[0] += n if x else 0
            counts[1] += n
        items = _item_stats(conn, campaign, region, per_item)
        practice = _practice(conn, campaign, region)
    return ReportData(cells, items, {g: {i: (c, n) for i, (c, n) in m.items()} for g, m in missed.items()},
                      practice, {"empty_forms": empty, "duplicate_forms": 0})
