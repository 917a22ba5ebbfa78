"""A campaign report's input aggregated in the database: GROUP BY queries, never one Python object per answer.

What: `report_data(state, campaign, by, strata, population, region)` returns the `ReportData` that
`bot.awareness.report.report_from_data` turns into the report, the same figures `build_report` gives
for the campaign's forms loaded one by one (the reference in tests/awareness/reference.py); this is
what `ohbot report`, the console and the bot's /stats show (`campaigns.campaign_report`).

Why: a province-wide campaign has 10^6 respondents × 20 answers; loading them as objects took minutes
and gigabytes. Each form's score is stored on its row (forms.answered, forms.correct: migration 0010)
and so are its answers' marks (forms.marks, migration 0013: a JSON array of "1<item id>" right and
"0<item id>" wrong), written with the answers, so no query reads the answers table. The database returns:
- cells: counted non-empty forms grouped by (the profile fields the report needs, the enterprise,
  month, correct, answered) with a count: a few thousand rows, not one per respondent;
- the item histogram: the one pass over the counted forms with their marks unnested (`_each_mark`),
  grouped by (mark, form score, form length, completion bucket), from which per-item difficulty,
  point-biserial and upper–lower D on the rest score follow (summed over buckets), and the buckets of
  tied respondents (below); rows: items × kinds of answer × buckets, not one per answer;
- with `by`, a second pass grouped by (the `by` values, mark) for each group's most-missed items
  (crossed with the buckets, the `by` values would multiply the histogram's rows);
- the order of tied respondents where the upper–lower D needs it. D ranks respondents by rest score
  with ties in **form order: completion time (forms.completed_at as stored), then form id, both
  compared by code point** (a documented, deterministic order; `build_report` gets its forms in this
  order from tests/awareness/reference.py). Only when the 27 % boundary splits a score that has both
  right and wrong answers is the order inside that score needed, and the histogram's buckets (a prefix
  of completed_at: a text's prefix never sorts after a later text's) already say how many tied
  respondents, and how many right, come before the boundary's bucket; only the tied forms of that one
  bucket (filtered by their bucket and integer scores) are read and ordered (`_ties`).

Cost at province scale (10^6 forms × 20 answers, PostgreSQL, 2 cores): joining the 2×10^7 answers to
their forms took 11–14 s of one backend's CPU, and the whole report 19–24 s; reading the forms with
their marks instead, the report takes about 5 s (issue #14, README "Running at scale").

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
    JSON,
    DateTime,
    cast,
    distinct,
    func,
    literal_column,
    select,
    text,
    true,
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
from bot.storage.tables import forms

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
#: Prefix lengths of forms.completed_at that bucket the form order, coarse to fine: the item histogram
#: counts tied answers by UTC month ("YYYY-MM": items × kinds × months rows, not × days), then inside
#: the month where a 27 % cut falls by day ("YYYY-MM-DD"), and only that day's tied forms are read and
#: ordered. A text's prefix never sorts after the prefix of a later text, so any prefixes give the same
#: figures (tests/awareness/test_report_sql.py); these keep every step's rows few at 10^6 forms.
BUCKET_CHARS: tuple[int, ...] = (7, 10)


def _month(conn: Connection) -> ColumnElement[str]:
    """forms.completed_at as the "YYYY-MM" of its China-time date."""
    if backend(conn) == "postgresql":
        local = func.timezone(TZ_NAME, cast(forms.c.completed_at, DateTime(timezone=True)))
        return func.to_char(local, "YYYY-MM")
    return func.strftime("%Y-%m", forms.c.completed_at, f"+{TZ_HOURS} hours")


def _scored(conn: Connection, campaign: str, kind: str, region: str | None, fields: Sequence[str],
            bucket: int | None = None, marks: bool = False) -> Subquery:
    """The completed forms of a kind, one row each: form, user, answered, correct (the score stored on
    the form, migration 0010), month, `fields` (as answered with: forms' own profile), with `bucket` the
    form's bucket of that many characters (`_bucket`) and with `marks` its answers' marks (migration 0013)."""
    columns: list[Any] = [forms.c.id.label("form"), forms.c.user.label("user"),
                          forms.c.answered.label("answered"), forms.c.correct.label("correct"),
                          _month(conn).label("month"), *(forms.c[f].label(f) for f in fields)]
    if bucket is not None:
        columns.append(_bucket(bucket).label("bucket"))
    if marks:
        columns.append(forms.c.marks.label("marks"))
    query = (select(*columns)
             .where(forms.c.campaign == campaign, forms.c.completed_at.is_not(None), forms.c.kind == kind))
    if region:
        query = query.where(forms.c.region == region)
    return query.subquery("s")


def _bucket(chars: int) -> ColumnElement[str]:
    """The first `chars` characters of forms.completed_at: a bucket of the form order (completion
    time, then form id): a text's prefix never sorts after the prefix of a later text."""
    # literals, not parameters: PostgreSQL's statistics on the day expression (migration 0011) must match it
    return func.substr(forms.c.completed_at, literal_column("1"), literal_column(str(chars)))


def _each_mark(conn: Connection, marks: Any) -> Any:
    """The marks of a form's JSON array `marks` (migration 0013) as a table of one column `value` ("1"
    or "0", then the item id) to join to the form: json_each on SQLite, json_array_elements_text on
    PostgreSQL (a set-returning function in FROM may read the rows before it: no LATERAL needed)."""
    if backend(conn) == "postgresql":
        return func.json_array_elements_text(cast(marks, JSON)).table_valued("value").alias("m")
    return func.json_each(marks).table_valued("value").alias("m")


def _mark(value: str) -> tuple[str, int]:
    """(item id, x) of a mark: x = 1 when the answer was right."""
    return value[1:], int(value[0])


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


#: One item's answers of counted forms by bucket: {(x, form correct, form answered): {bucket: answers}},
#: x = 1 when right; the buckets are `_bucket(BUCKET_CHARS[0])`'s, of the form order.
ItemBuckets = dict[tuple[int, int, int], dict[str, int]]


def _histogram(conn: Connection, campaign: str, region: str | None) -> dict[str, ItemBuckets]:
    """The one pass over the counted forms' answers (their marks: migration 0013, no join to the
    answers table), grouped by (mark, form correct, form answered, form bucket): per item its answers by
    kind and bucket. Summed over buckets, the item histogram; by bucket, where the upper–lower index's
    tied respondents fall (`_ties`)."""
    s = _scored(conn, campaign, "counted", region, (), bucket=BUCKET_CHARS[0], marks=True)
    m = _each_mark(conn, s.c.marks)
    keys = [m.c.value, s.c.correct, s.c.answered, s.c.bucket]
    query = select(*keys, func.count()).select_from(s.join(m, true())).group_by(*keys)
    per_item: dict[str, ItemBuckets] = defaultdict(lambda: defaultdict(dict))
    row: Any
    for row in conn.execute(query):
        value, c, a, b, n = row
        i, xv = _mark(value)
        per_item[i][(xv, int(c), int(a))][b] = int(n)
    return per_item


def _totals(buckets: ItemBuckets) -> dict[tuple[int, int, int], int]:
    """An item's histogram {(x, form correct, form answered): answers}: its answers summed over buckets, in
    kind order, so that sums over it (the point-biserial) do not follow the database's row order."""
    return {kind: sum(buckets[kind].values()) for kind in sorted(buckets)}


def _missed(conn: Connection, campaign: str, region: str | None, by: Sequence[str]) -> list[tuple]:
    """With `by`, the rows (`by` values…, item, x, answers) of the groups' most-missed lists: a second
    pass over the marks, grouped by the `by` values (crossed with its buckets they would multiply the
    histogram's rows)."""
    s = _scored(conn, campaign, "counted", region, [k for k in by if k != "month"], marks=True)
    m = _each_mark(conn, s.c.marks)
    keys = [*(s.c[k] for k in by), m.c.value]
    query = select(*keys, func.count()).select_from(s.join(m, true())).group_by(*keys)
    return [(*values, *_mark(value), int(n)) for *values, value, n in conn.execute(query)]


def _locate(buckets: Sequence[tuple[str, int, int]], p: int) -> tuple[int, str | None, int]:
    """Position p (1-based) among tied answers given as [(bucket, answers, right answers)] in bucket
    order: (right answers before p's bucket, the bucket when p falls inside it, p within that bucket);
    when p ends a bucket (or is past them all) the right answers up to p and no bucket."""
    before = right = 0
    for bucket, n, r in buckets:
        if p <= before + n:
            return (right + r, None, 0) if p == before + n else (right, bucket, p - before)
        before, right = before + n, right + r
    return right, None, 0


def _tied_forms(conn: Connection, campaign: str, region: str | None, kinds: set[tuple[int, int, int]],
                chars: int, wanted: set[tuple[str, str]]) -> Any:
    """The marks of the items wanted in a bucket, `wanted` = {(bucket of `chars` characters, item)}, on
    the counted forms of those buckets whose (correct, answered) is among `kinds`' (x, correct,
    answered): (query, mark table). Each bucket's own items only: the cuts of a bank's items fall in
    different buckets, and a form holds 20 of them (reading every mark of those forms put 7×10^5 rows
    into Python at 10^6 respondents)."""
    m = _each_mark(conn, forms.c.marks)
    bucket = _bucket(chars)
    # one text per (bucket, mark): a scalar IN list, which PostgreSQL hashes (a row-value IN is a
    # linear search per mark: 116 s instead of 4 at 10^6 respondents)
    marks = sorted({b + x + item for b, item in wanted for x in "01"})
    query = (select().select_from(forms.join(m, true()))
             .where(forms.c.campaign == campaign, forms.c.completed_at.is_not(None), forms.c.kind == "counted",
                    forms.c.answered > 1, forms.c.correct.in_(sorted({c for _, c, _ in kinds})),
                    forms.c.answered.in_(sorted({a for _, _, a in kinds})),
                    bucket.in_(sorted({b for b, _ in wanted})), bucket.concat(m.c.value).in_(marks)))
    if region:
        query = query.where(forms.c.region == region)
    return query, m


def _ties(conn: Connection, campaign: str, region: str | None, wanted: Sequence[tuple[str, float, str, int]],
          per_item: Mapping[str, ItemBuckets] | None = None) -> dict[tuple[str, float, str, int], int]:
    """For each (item, rest score, side, m): of the first ("lower") or last ("upper") m respondents, in
    form order, who answered the item with that rest score, how many answered it right.

    per_item: the item histogram by bucket (`_histogram`; read here when not given). It names the (x,
    form correct, form answered) kinds of answer that make up each tied score, and counts them by
    bucket (BUCKET_CHARS: prefixes of completed_at, a text's prefix never sorting after a later
    text's), which tells how many tied respondents, and how many right, come before the bucket the
    m-th falls in. When it falls inside a bucket (not at its end), that bucket's tied answers are
    counted by the next, finer bucket, and so on; only the finest bucket's tied answers of the item are
    read and ordered, by (completion time, form id). No sort or window over all tied answers."""
    if not wanted:
        return {}
    if per_item is None:
        per_item = _histogram(conn, campaign, region)
    members: dict[tuple[str, float], list[tuple[int, int, int]]] = defaultdict(list)
    for item in {w[0] for w in wanted}:
        for x, c, a in per_item[item]:
            if a > 1:
                members[(item, (c - x) / (a - 1))].append((x, c, a))

    def by_bucket(group: tuple[str, float], counts: Mapping[tuple[int, int, int], Mapping[str, int]],
                  within: str = "") -> list[tuple[str, int, int]]:
        """A tied score's [(bucket, answers, right answers)] in bucket order, of the buckets in `within`."""
        size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for kind in members[group]:
            for b, n in counts.get(kind, {}).items():
                if b.startswith(within):
                    size[b][0] += n
                    size[b][1] += n if kind[0] else 0
        return [(b, n, r) for b, (n, r) in sorted(size.items())]

    groups = {w[:2] for w in wanted}
    buckets = {group: by_bucket(group, per_item[group[0]]) for group in groups}
    located: dict[tuple[str, float, str, int], tuple[int, str | None, int]] = {}
    for spec in wanted:
        item, y, side, m = spec
        total = sum(n for _, n, _ in buckets[spec[:2]])
        located[spec] = _locate(buckets[spec[:2]], m if side == "lower" else total - m)
    for coarse, chars in zip(BUCKET_CHARS, BUCKET_CHARS[1:]):  # into the finer buckets of the cut's bucket
        inside = {spec for spec, (_, b, _) in located.items() if b is not None}
        if not inside:
            break
        kinds = {k for spec in inside for k in members[spec[:2]]}
        query, mk = _tied_forms(conn, campaign, region, kinds, coarse,
                                {(located[spec][1] or "", spec[0]) for spec in inside})
        keys = [mk.c.value, forms.c.correct, forms.c.answered, _bucket(chars)]
        finer: dict[str, dict[tuple[int, int, int], dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for value, c, a, b, n in conn.execute(query.add_columns(*keys, func.count()).group_by(*keys)):
            item, xv = _mark(value)
            finer[item][(xv, int(c), int(a))][b] = int(n)
        for spec in inside:
            right, bucket, p = located[spec]
            more, bucket, p = _locate(by_bucket(spec[:2], finer[spec[0]], bucket or ""), p)
            located[spec] = (right + more, bucket, p)
    inside = {spec for spec, (_, b, _) in located.items() if b is not None}
    ordered = _tied_answers(conn, campaign, region, {(spec[0], located[spec][1] or "") for spec in inside},
                            {k for spec in inside for k in members[spec[:2]]})
    out = {}
    for spec, (right, bucket, p) in located.items():
        item, y, side, m = spec
        if bucket is not None:
            tied = [xv for c, a, xv in ordered.get((item, bucket), ()) if (c - xv) / (a - 1) == y]
            right += sum(tied[:p])
        total_right = sum(r for _, _, r in buckets[(item, y)])
        out[spec] = right if side == "lower" else total_right - right
    return out


def _tied_answers(conn: Connection, campaign: str, region: str | None, inside: set[tuple[str, str]],
                  kinds: set[tuple[int, int, int]]) -> dict[tuple[str, str], list[tuple[int, int, int]]]:
    """{(item, bucket): [(form correct, form answered, x)] in form order} of the counted forms completed
    in that bucket (of BUCKET_CHARS[-1] characters) whose score is among `kinds`' (x, correct,
    answered), for each (item, bucket) in `inside`: forms filtered on their bucket and integer scores,
    only the marks of that bucket's items (`_tied_forms`)."""
    if not inside:
        return {}
    chars = BUCKET_CHARS[-1]
    query, m = _tied_forms(conn, campaign, region, kinds, chars, {(b, item) for item, b in inside})
    query = query.add_columns(m.c.value, _bucket(chars), forms.c.completed_at, forms.c.id, forms.c.correct,
                              forms.c.answered)
    rows: dict[tuple[str, str], list[tuple[str, str, int, int, int]]] = defaultdict(list)
    for value, b, completed_at, form, c, a in conn.execute(query):
        item, xv = _mark(value)
        if (item, b) in inside:
            rows[(item, b)].append((completed_at, form, int(c), int(a), xv))
    return {key: [r[2:] for r in sorted(found)] for key, found in rows.items()}  # code point order, as "C"


def _item_stats(conn: Connection, campaign: str, region: str | None,
                per_item: Mapping[str, ItemBuckets]) -> list[ItemStats]:
    """Per item from its histogram by bucket (`_histogram`): n, correct, D, r."""
    totals = {item: _totals(buckets) for item, buckets in per_item.items()}
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
