"""Campaign reports: awareness rate (知晓率) overall, by group and by month, plus item analysis.

What: `build_report` turns counted quiz forms (one per respondent) into a JSON-ready dict;
`format_text` renders it as a short Chinese plain-text summary (console, Telegram /stats);
`write_outputs` writes CSV, one XLSX workbook, PNG charts and a self-contained HTML page.

Why this shape: the database layer is wired elsewhere and fills the small input dataclasses
below, so this module stays testable without a database. Respondents arrive only as salted
hashes and nothing here ever outputs them: reports carry counts and rates only.

Definitions used throughout:
- A respondent is aware (知晓) when score rate = correct / answered ≥ threshold; a rate
  exactly equal to the threshold counts as aware.
- Rates carry a 95 % Wilson interval; status against the target (default 85 %) is "met"
  only when the whole interval is at or above it, "not_met" when it is wholly below
  (see `bot.awareness.stats.target_status`). Groups with n < min_n are listed but not ranked.
- When respondents carry an enterprise code (or strata or population counts are given) every
  block also gets the design-based figures of bot.awareness.design: the interval from the
  cluster-robust variance, deff, the effective sample size, and the status and extra sample
  (extra enterprises) judged on that interval; the Wilson status stays as `simple_status`.
- Item discrimination (upper–lower 27 % and point-biserial) ranks respondents by their
  rest score: the score rate on the *other* items of their form, so an item does not
  correlate with itself; forms may differ in length, hence rates rather than counts.
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import json
import logging
import os
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.awareness.cells import safe_cell, xlsx_row
from bot.awareness.stats import (
    _decision,
    is_negative_discrimination,
    point_biserial,
    target_status,
    upper_lower_discrimination,
)
from bot.config import AWARENESS_TARGET, MIN_GROUP_N
from bot.errors import InputError, OutputError
from bot.storage.tables import PROFILE_FIELDS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

    from bot.awareness.design import Design, DesignEstimate
    from bot.awareness.population import Population

__all__ = [
    "AnswerRecord",
    "RespondentResult",
    "ItemInfo",
    "PROFILE_KEYS",
    "GROUP_KEYS",
    "MISSING",
    "build_report",
    "format_text",
    "write_outputs",
    "find_cjk_font",
]

#: Profile fields a respondent carries (values are taxonomy codes or free text, or None).
#: `enterprise` is left out: a hashed sampling unit (bot.awareness.design), never a group or stratum.
PROFILE_KEYS: tuple[str, ...] = tuple(f for f in PROFILE_FIELDS if f != "enterprise")
#: Keys `build_report(by=...)` accepts: the profile fields plus the completion month.
GROUP_KEYS: tuple[str, ...] = PROFILE_KEYS + ("month",)
#: Group value for a missing / empty profile field.
MISSING = "未填写"
#: Dimension shown for an answered item that is not in the `items` mapping.
UNKNOWN_DIMENSION = "未知"
#: How many most-missed items each group lists.
MOST_MISSED_N = 5
#: Item discrimination is only computed with at least this many usable respondents;
#: below that D and r swing wildly and would flag sound items.
MIN_N_DISCRIMINATION = 10
#: Item flag value for negative discrimination.
FLAG_NEGATIVE = "negative_discrimination"

DESIGN_LABELS: dict[str, str] = {"srs": "简单随机抽样", "cluster": "按企业整群抽样"}
STATUS_LABELS: dict[str, str] = {
    "met": "已达标", "not_met": "未达标", "undecided": "尚难判定", "no_data": "无数据",
}
FLAG_LABELS: dict[str, str] = {FLAG_NEGATIVE: "区分度为负"}

log = logging.getLogger(__name__)


def _field_labels(report: Mapping[str, Any]) -> dict[str, str]:
    """Labels of the grouping fields: those `label_report` put into the report, else the default
    knowledge folder's taxonomy (a report built without one)."""
    from bot.config import DEFAULT_KNOWLEDGE_DIR
    from bot.taxonomy import field_labels, load_taxonomy

    return report.get("labels") or field_labels(load_taxonomy(DEFAULT_KNOWLEDGE_DIR))

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class AnswerRecord:
    """One answered item of a form: which item, and whether the answer was correct."""

    item_id: str
    correct: bool


@dataclass(frozen=True)
class RespondentResult:
    """One respondent's counted form (their first completed one), or a practice form.

    respondent: a salted hash, never a raw user id (it is used only to de-duplicate).
    profile: keys from PROFILE_KEYS; None or "" means not given (grouped as 未填写).
    completed_at: completion time, in the local time zone the report's months should use.
    """

    respondent: str
    profile: dict[str, str | None]
    completed_at: datetime
    answers: list[AnswerRecord]


@dataclass(frozen=True)
class ItemInfo:
    """Quiz bank metadata for an item: its dimension code, stem and knowledge point."""

    item_id: str
    dimension: str
    stem: str
    knowledge_point: str


# --------------------------------------------------------------------------- build


def _score(r: RespondentResult) -> tuple[int, int]:
    """(correct, answered) of a form."""
    return sum(1 for a in r.answers if a.correct), len(r.answers)


def _is_aware(correct: int, answered: int, threshold: float) -> bool:
    """Score rate ≥ threshold; a tiny tolerance so 6/10 vs 0.6 counts as equal (aware)."""
    return answered > 0 and correct / answered >= threshold - 1e-9


def _value(profile: Mapping[str, str | None], month: str, key: str) -> str:
    """A form's value of a grouping key: its month, or a profile field (未填写 when missing or blank)."""
    if key == "month":
        return month
    value = profile.get(key)
    if value is None or str(value).strip() == "":
        return MISSING
    return str(value)


def _group_value(r: RespondentResult, key: str) -> str:
    return _value(r.profile, r.completed_at.strftime("%Y-%m") if key == "month" else "", key)


def _rate_block(aware: int, n: int, target: float, min_n: int) -> dict[str, Any]:
    """The common n / aware / rate / CI / status fields of overall, groups and months."""
    ts = target_status(aware, n, target=target, min_n=min_n)
    return {
        "n": ts.n, "aware": ts.aware, "rate": ts.rate, "ci_low": ts.ci_low, "ci_high": ts.ci_high,
        "status": ts.status, "extra_n": ts.extra_n, "small_sample": ts.small_sample,
    }


def _simple_design_fields(block: Mapping[str, Any]) -> dict[str, Any]:
    """Design fields of a simple random sample: the design-based figures are the Wilson ones."""
    n = block["n"]
    return {"simple_status": block["status"], "weighted_rate": None, "design_n": n,
            "deff": 1.0 if n else None, "n_effective": float(n) if n else None,
            "df": n - 1 if n else None, "enterprises": None, "design_ci_low": block["ci_low"],
            "design_ci_high": block["ci_high"], "extra_enterprises": None}


def _design_fields(est: DesignEstimate, block: Mapping[str, Any], target: float, clustered: bool,
                   weighted: bool) -> dict[str, Any]:
    """Design fields of one block; status and extra sample come from the design-based interval."""
    from bot.awareness.design import extra_to_decide

    if est.n == 0:
        status = "no_data"
    else:
        status = _decision(est.ci_low, est.ci_high, target)
    extra = extra_to_decide(est, target) if status == "undecided" else None
    return {"simple_status": block["status"], "status": status,
            "weighted_rate": est.rate if weighted else None, "design_n": est.n,
            "deff": est.deff, "n_effective": est.n_effective, "df": est.df if est.n else None,
            "enterprises": est.psus if clustered else None,
            "design_ci_low": est.ci_low, "design_ci_high": est.ci_high,
            "extra_n": extra[1] if extra else None,
            "extra_enterprises": extra[0] if extra and clustered else None}


# --------------------------------------------------------------------------- aggregated input
# What a report needs of the counted forms, aggregated: bot.awareness.report_sql fills it with GROUP BY
# queries (a province-wide campaign never comes into Python one form at a time), `build_report` from a
# list of forms. `report_from_data` turns either into the report, so the statistics exist once.


@dataclass(frozen=True)
class FormCell:
    """`count` counted, non-empty forms alike in everything the report reads of a form.

    profile: the profile fields the report groups, stratifies, weights or clusters by (enterprise);
    month: completion month "YYYY-MM" (China time); correct / answered: the form's score.
    """

    profile: Mapping[str, str | None]
    month: str
    correct: int
    answered: int
    count: int = 1


@dataclass(frozen=True)
class ItemStats:
    """One answered item over the counted forms: answers, correct answers and its discrimination
    (upper–lower D and point-biserial on the rest score; None below MIN_N_DISCRIMINATION)."""

    item_id: str
    n: int
    correct: int
    discrimination: float | None
    point_biserial: float | None


@dataclass(frozen=True)
class ReportData:
    """The aggregated input of `report_from_data`.

    cells: the counted non-empty forms (form order, when every cell is one form);
    items: per answered item; missed: per group (values of `by`, as `_value` gives them) the
    (correct, answered) counts per item, for the most-missed list of each group;
    practice: the report's practice block; excluded: empty_forms, duplicate_forms.
    """

    cells: Sequence[FormCell]
    items: Sequence[ItemStats]
    missed: Mapping[tuple[str, ...], Mapping[str, tuple[int, int]]]
    practice: Mapping[str, Any]
    excluded: Mapping[str, int]


def _expand(values: Sequence[Any], counts: Sequence[int]) -> list[Any]:
    """Per-cell values as per-form values (a cell of count k gives k equal entries)."""
    if all(c == 1 for c in counts):
        return list(values)
    return [v for v, k in zip(values, counts) for _ in range(k)]


def _design_for(cells: Sequence[FormCell], aware: Sequence[bool], strata: Sequence[str],
                population: Population | None) -> tuple[Design | None, dict[str, Any]]:
    """The sample design of the counted forms (None: a plain simple random sample) and the report's
    top-level design keys. The design sees one entry per form (cells expanded)."""
    counts = [c.count for c in cells]
    clusters = [(c.profile.get("enterprise") or None) for c in cells]
    clustered = any(c is not None for c in clusters)
    without = sum(k for c, k in zip(clusters, counts) if c is None) if clustered else 0
    info: dict[str, Any] = {"design": "cluster" if clustered else "srs", "strata": list(strata),
                            "weighted": population is not None, "population": None,
                            "respondents_without_enterprise": without}
    if not clustered and not strata and population is None:
        return None, info
    from bot.awareness.design import Design, poststratify

    weights = post = None
    if population is not None:
        post = _expand([population.cell(c.profile) for c in cells], counts)
        weights, summary = poststratify(post, population.counts)
        info["population"] = {"source": population.source, "fields": list(population.fields), **summary}
    stratum = _expand([tuple(_value(c.profile, c.month, k) for k in strata) for c in cells], counts) \
        if strata else None
    design = Design(_expand(aware, counts), _expand(clusters, counts) if clustered else None, stratum, weights, post)
    return design, info


def _most_missed(counts: Mapping[str, tuple[int, int]], items: Mapping[str, ItemInfo],
                 top: int = MOST_MISSED_N) -> list[dict[str, Any]]:
    """The `top` items with the lowest correct rate given (correct, answered) per item (items always
    answered correctly are left out: they are not "missed")."""
    rows = [(c / n, -n, item_id, n) for item_id, (c, n) in counts.items() if c < n]
    rows.sort()
    out = []
    for rate, _, item_id, n in rows[:top]:
        info = items.get(item_id)
        out.append({"item_id": item_id, "knowledge_point": info.knowledge_point if info else "",
                    "correct_rate": rate, "n": n})
    return out


def _dedupe(respondents: Sequence[RespondentResult]) -> tuple[list[RespondentResult], int, int]:
    """Keep one form per respondent (earliest completed) and drop forms with no answers.

    The caller should already pass one counted form per respondent; this is a guard so a
    wiring mistake cannot double-count anybody. Returns (kept, empty, duplicates).
    """
    nonempty = [r for r in respondents if r.answers]
    empty = len(respondents) - len(nonempty)
    seen: dict[str, RespondentResult] = {}
    for r in sorted(nonempty, key=lambda r: r.completed_at):
        seen.setdefault(r.respondent, r)
    kept = [r for r in nonempty if seen.get(r.respondent) is r]
    return kept, empty, len(nonempty) - len(kept)


def _item_stats(forms: Sequence[RespondentResult]) -> list[ItemStats]:
    """Per answered item of these forms: answers, correct answers, discrimination on the rest score."""
    per_item: dict[str, list[bool]] = defaultdict(list)
    rest_pairs: dict[str, tuple[list[bool], list[float]]] = defaultdict(lambda: ([], []))
    for r in forms:
        correct, answered = _score(r)
        for a in r.answers:
            per_item[a.item_id].append(a.correct)
            if answered > 1:  # a rest score needs at least one other item
                xs, ys = rest_pairs[a.item_id]
                xs.append(a.correct)
                ys.append((correct - (1 if a.correct else 0)) / (answered - 1))
    out = []
    for item_id, answers in per_item.items():
        xs, ys = rest_pairs.get(item_id, ([], []))
        if len(xs) >= MIN_N_DISCRIMINATION:
            d = upper_lower_discrimination(xs, ys)
            pb = point_biserial(xs, ys, rest=False)  # ys are already rest scores
        else:
            d = pb = None
        out.append(ItemStats(item_id, len(answers), sum(1 for c in answers if c), d, pb))
    return out


def _item_rows(stats: Iterable[ItemStats], items: Mapping[str, ItemInfo]) -> list[dict[str, Any]]:
    """Per answered item: n, correct rate, discrimination on the rest score, flag."""
    rows = []
    for s in sorted(stats, key=lambda s: s.item_id):
        info = items.get(s.item_id)
        rows.append({
            "item_id": s.item_id,
            "dimension": info.dimension if info else UNKNOWN_DIMENSION,
            "knowledge_point": info.knowledge_point if info else "",
            "n": s.n,
            "correct_rate": s.correct / s.n,
            "discrimination": s.discrimination,
            "point_biserial": s.point_biserial,
            "flag": FLAG_NEGATIVE if is_negative_discrimination(s.discrimination, s.point_biserial) else None,
        })
    return rows


def _dimension_rows(stats: Iterable[ItemStats], items: Mapping[str, ItemInfo]) -> list[dict[str, Any]]:
    """Answers and correct rate per dimension, over all counted answers."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in stats:
        info = items.get(s.item_id)
        c = acc[info.dimension if info else UNKNOWN_DIMENSION]
        c[0] += s.correct
        c[1] += s.n
    return [{"dimension": dim, "answers": n, "correct_rate": c / n}
            for dim, (c, n) in sorted(acc.items())]


def _sort_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ranked groups (n ≥ min_n) by rate descending, then small-sample groups by n
    descending (deliberately not by rate: their rates are too noisy to order)."""
    def key_str(g: dict[str, Any]) -> str:
        return "\x1f".join(g["key"].values())

    def estimate(g: dict[str, Any]) -> float:
        return (g["weighted_rate"] if g.get("weighted_rate") is not None else g["rate"]) or 0.0

    ranked = sorted((g for g in groups if not g["small_sample"]),
                    key=lambda g: (-estimate(g), -g["n"], key_str(g)))
    small = sorted((g for g in groups if g["small_sample"]), key=lambda g: (-g["n"], key_str(g)))
    for i, g in enumerate(ranked, 1):
        g["rank"] = i
    for g in small:
        g["rank"] = None
    return ranked + small


def check_arguments(threshold: float, target: float, by: Sequence[str], strata: Sequence[str]) -> None:
    """InputError for a threshold, target, grouping keys or strata fields a report cannot use."""
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}")
    if not 0.0 < target <= 1.0:
        raise InputError(f"target must be in (0, 1], got {target}")
    unknown = [k for k in by if k not in GROUP_KEYS]
    if unknown:
        raise InputError(f"unknown grouping keys {unknown}; allowed: {', '.join(GROUP_KEYS)}")
    if len(set(by)) != len(by):
        raise InputError(f"duplicate grouping keys in {list(by)}")
    bad_strata = [k for k in strata if k not in PROFILE_KEYS]
    if bad_strata:
        raise InputError(f"unknown strata fields {bad_strata}; allowed: {', '.join(PROFILE_KEYS)}")


def build_report(
    campaign: str,
    threshold: float,
    respondents: Sequence[RespondentResult],
    items: Mapping[str, ItemInfo],
    by: Sequence[str] = (),
    target: float = AWARENESS_TARGET,
    min_n: int = MIN_GROUP_N,
    practice: Sequence[RespondentResult] = (),
    strata: Sequence[str] = (),
    population: Population | None = None,
) -> dict[str, Any]:
    """Build the campaign report as a JSON-ready dict.

    respondents: counted forms only, one per respondent (first completed form), in the order that
        breaks ties of the upper–lower index (a stable sort by rest score); ohbot's reports use form
        order: completion time (completed_at as stored), then form id, both by code point
        (bot.awareness.report_sql, tests/awareness/reference.py).
    items: quiz bank metadata by item id (items missing here still count, with
        dimension "未知").
    by: grouping keys from GROUP_KEYS, combined as a cross product of the values present
        in the data (missing values group as "未填写"; month = completed_at "YYYY-MM").
    practice: practice forms, reported separately (counts and mean score rate only) and
        never mixed into the awareness rate.
    strata: profile fields (PROFILE_KEYS) whose values are the sampling strata, if any.
    population: workers per cell (bot.awareness.population) for post-stratified weights.

    Keys: campaign, threshold, target, min_n, by, design ("srs" or "cluster": respondents carry
    enterprise codes), strata, weighted, population, respondents_without_enterprise, overall,
    groups, months, dimensions, items, practice, excluded. Rates are None when n = 0. Every
    block (overall, group, month) has n, aware, rate, ci_low, ci_high (Wilson), status, extra_n,
    small_sample and the design fields simple_status, weighted_rate, design_n, deff,
    n_effective, df, enterprises, design_ci_low, design_ci_high, extra_enterprises.

    The list is turned into `ReportData` (one cell per form) and `report_from_data` does the rest,
    as it does for the database's aggregates (bot.awareness.report_sql).
    """
    check_arguments(threshold, target, list(by), strata)
    forms, n_empty, n_dup = _dedupe(respondents)
    cells = [FormCell(r.profile, r.completed_at.strftime("%Y-%m"), *_score(r)) for r in forms]
    missed: dict[tuple[str, ...], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    if by:
        for r in forms:
            counts = missed[tuple(_group_value(r, k) for k in by)]
            for a in r.answers:
                c = counts[a.item_id]
                c[0] += 1 if a.correct else 0
                c[1] += 1
    practice_forms = [p for p in practice if p.answers]
    practice_rates = [c / a for c, a in map(_score, practice_forms)]
    practice_block = {
        "forms": len(practice),
        "respondents": len({p.respondent for p in practice}),
        "mean_score_rate": sum(practice_rates) / len(practice_rates) if practice_rates else None,
    }
    data = ReportData(cells, _item_stats(forms),
                      {g: {i: (c, n) for i, (c, n) in counts.items()} for g, counts in missed.items()},
                      practice_block, {"empty_forms": n_empty, "duplicate_forms": n_dup})
    return report_from_data(campaign, threshold, data, items, by=by, target=target, min_n=min_n, strata=strata,
                            population=population)


def report_from_data(
    campaign: str,
    threshold: float,
    data: ReportData,
    items: Mapping[str, ItemInfo],
    by: Sequence[str] = (),
    target: float = AWARENESS_TARGET,
    min_n: int = MIN_GROUP_N,
    strata: Sequence[str] = (),
    population: Population | None = None,
) -> dict[str, Any]:
    """The report of `build_report` from aggregated input (see ReportData)."""
    by = list(by)
    check_arguments(threshold, target, by, strata)
    cells = list(data.cells)
    aware = [_is_aware(c.correct, c.answered, threshold) for c in cells]
    design, design_info = _design_for(cells, aware, list(strata), population)
    starts: list[int] = []
    total = 0
    for c in cells:
        starts.append(total)
        total += c.count

    def block(members: Sequence[int]) -> dict[str, Any]:
        """The rate block of these cells (indices into `cells`)."""
        b = _rate_block(sum(cells[i].count for i in members if aware[i]), sum(cells[i].count for i in members),
                        target, min_n)
        if design is None:
            b.update(_simple_design_fields(b))
        else:
            positions = [p for i in members for p in range(starts[i], starts[i] + cells[i].count)]
            est = design.estimate(positions)
            b.update(_design_fields(est, b, target, design.clustered, population is not None))
        return b

    overall = block(range(len(cells)))
    overall["most_missed"] = _most_missed({s.item_id: (s.correct, s.n) for s in data.items}, items)

    groups: list[dict[str, Any]] = []
    if by:
        members: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, c in enumerate(cells):
            members[tuple(_value(c.profile, c.month, k) for k in by)].append(i)
        for values, idx in members.items():
            g: dict[str, Any] = {"key": dict(zip(by, values))}
            g.update(block(idx))
            g["most_missed"] = _most_missed(data.missed.get(values, {}), items)
            groups.append(g)
        groups = _sort_groups(groups)

    by_month: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cells):
        by_month[c.month].append(i)
    months = [{"month": m, **block(by_month[m])} for m in sorted(by_month)]

    return {
        "campaign": campaign,
        "threshold": threshold,
        "target": target,
        "min_n": min_n,
        "by": by,
        **design_info,
        "overall": overall,
        "groups": groups,
        "months": months,
        "dimensions": _dimension_rows(data.items, items),
        "items": _item_rows(data.items, items),
        "practice": dict(data.practice),
        "excluded": dict(data.excluded),
    }


# --------------------------------------------------------------------------- text


def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x * 100:.{digits}f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _group_label(key: Mapping[str, str]) -> str:
    return " / ".join(key.values()) if key else "总体"


def _plain(text: Any) -> str:
    """Chart text drawn as it is: control characters removed and every `$` escaped, so matplotlib
    never reads a respondent's text as mathtext (`$\\foo$` would make it fail)."""
    from bot.text.clean import strip_controls

    return strip_controls(str(text)).replace("\n", " ").replace("\t", " ").replace("$", r"\$")


def designed(report: Mapping[str, Any]) -> bool:
    """Whether the report's status comes from a design-based interval (enterprise clusters, strata
    or post-stratification weights) rather than the plain Wilson interval."""
    return report.get("design") == "cluster" or bool(report.get("weighted")) or bool(report.get("strata"))


def _ci_keys(report: Mapping[str, Any]) -> tuple[str, str]:
    """The interval the status uses: design-based when the report has a design, else Wilson."""
    return ("design_ci_low", "design_ci_high") if designed(report) else ("ci_low", "ci_high")


def _extra_phrase(block: Mapping[str, Any]) -> str:
    """"约再需 N 人" or "约再需 K 家企业（约 N 人）"; empty without an estimate."""
    if block.get("extra_enterprises"):
        return f"约再需 {block['extra_enterprises']} 家企业（约 {block['extra_n']} 人）"
    return f"约再需 {block['extra_n']} 人" if block.get("extra_n") else ""


def _status_phrase(block: Mapping[str, Any], target: float) -> str:
    status = block["status"]
    if status == "met":
        return f"已达到 {_pct(target, 0)} 目标（置信区间下限不低于目标）"
    if status == "not_met":
        return f"未达到 {_pct(target, 0)} 目标（置信区间上限低于目标）"
    if status == "no_data":
        return "无数据"
    extra = _extra_phrase(block)
    more = f"；若知晓率保持不变，{extra}可判定" if extra else ""
    return f"尚难判定是否达到 {_pct(target, 0)}（置信区间跨越目标{more}）"


def _design_lines(report: Mapping[str, Any]) -> list[str]:
    """The overall design-based figures, for reports with a design."""
    o = report["overall"]
    parts = [DESIGN_LABELS.get(report.get("design", "srs"), "")]
    if o.get("enterprises") is not None:
        parts.append(f"{o['enterprises']} 家企业")
    if report.get("strata"):
        parts.append("按" + "×".join(_field_labels(report).get(k, k) for k in report["strata"]) + "分层")
    if report.get("weighted"):
        parts.append("事后分层加权")
    lines = ["抽样设计：" + "，".join(p for p in parts if p)]
    rate = f"加权知晓率 {_pct(o['weighted_rate'])}，" if o.get("weighted_rate") is not None else ""
    lines.append(f"设计校正：{rate}设计效应 deff={_num(o.get('deff'))}，有效样本量 {_num(o.get('n_effective'), 1)}，"
                 f"95% CI {_pct(o['design_ci_low'])}–{_pct(o['design_ci_high'])}"
                 f"（简单随机抽样判定：{STATUS_LABELS.get(o['simple_status'], o['simple_status'])}）")
    p = report.get("population") or {}
    if p.get("unmatched"):
        lines.append(f"注意：{p['unmatched']} 人的行业/规模/地区不在总体表中，未计入加权结果。")
    if report.get("respondents_without_enterprise"):
        lines.append(f"注意：{report['respondents_without_enterprise']} 人没有企业编码，各按单独一群计算。")
    return lines


def format_text(report: Mapping[str, Any], max_groups: int = 15, max_items: int = 10) -> str:
    """Readable Chinese plain-text summary (no Markdown, fits a Telegram message).

    Overall rate with 95 % CI and status against the target, the groups table (first
    `max_groups` rows; small-sample groups marked *), items with negative discrimination
    and the most-missed knowledge points.
    """
    o = report["overall"]
    target = report["target"]
    lines = [f"【职业健康知识知晓率】{report['campaign']}",
             f"知晓判定：得分率 ≥ {_pct(report['threshold'], 0)}；目标知晓率 {_pct(target, 0)}"]
    if o["n"] == 0:
        lines.append("总体：暂无有效答卷。")
    else:
        lines.append(f"总体：{o['n']} 人，知晓 {o['aware']} 人，知晓率 {_pct(o['rate'])}"
                     f"（95% CI {_pct(o['ci_low'])}–{_pct(o['ci_high'])}）")
        if designed(report):
            lines += _design_lines(report)
        lines.append(f"结论：{_status_phrase(o, target)}")
        if o["small_sample"]:
            lines.append(f"注意：样本量不足 {report['min_n']} 人，结果仅供参考。")

    groups = report.get("groups") or []
    if groups:
        dims = " × ".join(_field_labels(report).get(k, k) for k in report.get("by", []))
        lines += ["", f"分组（按{dims}）："]
        labels = [_group_label(g["key"]) + ("*" if g["small_sample"] else "") for g in groups[:max_groups]]
        w = max(8, *(_width(s) for s in labels))
        low_key, high_key = _ci_keys(report)
        ci_head = "设计校正95% CI  deff" if designed(report) else "95% CI"
        lines.append(f"  {_pad('组别', w)}  {'人数':>4}  {'知晓率':>6}  {ci_head:<15}  状态")
        for label, g in zip(labels, groups[:max_groups]):
            ci = f"{_pct(g[low_key])}–{_pct(g[high_key])}"
            if designed(report):
                ci += f"  {_num(g.get('deff'))}"
            rate = g["weighted_rate"] if g.get("weighted_rate") is not None else g["rate"]
            status = STATUS_LABELS.get(g["status"], g["status"])
            if g["status"] == "undecided" and _extra_phrase(g):
                status += f"（{_extra_phrase(g)}）"
            lines.append(f"  {_pad(label, w)}  {g['n']:>6}  {_pct(rate):>9}  {ci:<15}  {status}")
        if len(groups) > max_groups:
            lines.append(f"  ……另有 {len(groups) - max_groups} 组，见完整报表")
        if any(g["small_sample"] for g in groups):
            lines.append(f"  * 样本量不足 {report['min_n']} 人，仅列出，不参与排名")

    flagged = [i for i in report.get("items", []) if i.get("flag")]
    if flagged:
        lines += ["", "需复核的题目（区分度为负：低分者反而更常答对）："]
        for it in flagged[:max_items]:
            kp = f" {it['knowledge_point']}" if it.get("knowledge_point") else ""
            lines.append(f"  {it['item_id']}{kp}：正确率 {_pct(it['correct_rate'])}，"
                         f"D={_num(it['discrimination'])}，r={_num(it['point_biserial'])}，n={it['n']}")
        if len(flagged) > max_items:
            lines.append(f"  ……另有 {len(flagged) - max_items} 题")

    missed = o.get("most_missed") or []
    if missed:
        lines += ["", "最常答错的知识点："]
        for k, m in enumerate(missed, 1):
            kp = m["knowledge_point"] or m["item_id"]
            lines.append(f"  {k}. {kp}（{m['item_id']}）正确率 {_pct(m['correct_rate'])}")

    p = report.get("practice") or {}
    if p.get("forms"):
        lines += ["", f"练习答卷（不计入知晓率）：{p['forms']} 份，平均得分率 {_pct(p.get('mean_score_rate'))}"]
    ex = report.get("excluded") or {}
    if ex.get("empty_forms") or ex.get("duplicate_forms"):
        lines.append(f"已排除：空白答卷 {ex.get('empty_forms', 0)} 份，重复答卷 {ex.get('duplicate_forms', 0)} 份")
    return "\n".join(lines)


# --------------------------------------------------------------------------- files

_CJK_FONT_NAMES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK JP", "Noto Sans CJK TC",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Droid Sans Fallback",
    "AR PL UMing CN", "Noto Serif CJK SC", "Noto Serif CJK JP",
)
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "wenquanyi",
                   "droidsansfallback", "uming", "ukai", "simhei", "msyh")


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Family name of an installed font that can draw Chinese, or None.

    Looks in matplotlib's font cache first, then scans system font files whose names
    suggest CJK coverage (the cache may predate a font installed later) and registers
    them. On Debian, `apt-get install -y fonts-noto-cjk` provides one.
    """
    from matplotlib import font_manager as fm

    def pick() -> str | None:
        names = {f.name for f in fm.fontManager.ttflist}
        for name in _CJK_FONT_NAMES:
            if name in names:
                return name
        for name in sorted(names):
            if "CJK" in name or "WenQuanYi" in name:
                return name
        return None

    found = pick()
    if found:
        return found
    try:
        for path in fm.findSystemFonts():
            if any(h in Path(path).name.lower().replace("-", "").replace("_", "") for h in _CJK_FILE_HINTS):
                try:
                    fm.fontManager.addfont(path)
                except Exception:  # unreadable font file: skip it
                    continue
    except Exception:
        return None
    return pick()


def _fmt(v: Any, pct: bool = False) -> Any:
    """CSV cell: rates rounded to 4 places, booleans as 是/否, None as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float):
        return round(v, 4)
    return v


_BLOCK_COLS: list[tuple[str, str, bool]] = [  # (field, header, is_rate)
    ("n", "人数", False), ("aware", "知晓人数", False), ("rate", "知晓率", True),
    ("ci_low", "95%CI下限", True), ("ci_high", "95%CI上限", True), ("status", "状态", False),
    ("extra_n", "判定还需人数", False), ("small_sample", "小样本", False),
]
#: Added after the status columns when the report has a design (enterprises, strata or weights).
_DESIGN_COLS: list[tuple[str, str, bool]] = [
    ("weighted_rate", "加权知晓率", True), ("design_ci_low", "设计校正95%CI下限", True),
    ("design_ci_high", "设计校正95%CI上限", True), ("deff", "设计效应deff", False),
    ("n_effective", "有效样本量", False), ("enterprises", "企业数", False),
    ("extra_enterprises", "判定还需企业数", False), ("simple_status", "简单随机抽样判定", False),
]
_STATUS_FIELDS = ("status", "simple_status")


def _tables(report: Mapping[str, Any]) -> dict[str, tuple[list[str], list[list[Any]], set[int]]]:
    """Every tabular output as (headers, rows, indexes of rate columns), keyed by table name."""
    cols = _BLOCK_COLS + (_DESIGN_COLS if designed(report) else [])

    def block_cells(b: Mapping[str, Any]) -> list[Any]:
        return [STATUS_LABELS.get(str(b.get(f)), b.get(f)) if f in _STATUS_FIELDS else b.get(f) for f, _, _ in cols]

    block_heads = [h for _, h, _ in cols]
    block_rates = [i for i, (_, _, r) in enumerate(cols) if r]
    o = report["overall"]
    overall = (["活动", "知晓阈值", "目标"] + block_heads,
               [[report["campaign"], report["threshold"], report["target"]] + block_cells(o)],
               {1, 2} | {3 + i for i in block_rates})
    by = list(report.get("by") or [])
    g_heads = ["排名"] + [_field_labels(report).get(k, k) for k in by] + block_heads + ["最常答错"]
    g_rows = [[g.get("rank")] + [g["key"].get(k, "") for k in by] + block_cells(g)
              + ["；".join(f"{m['knowledge_point'] or m['item_id']}({_pct(m['correct_rate'], 0)})"
                          for m in g.get("most_missed", []))]
              for g in report.get("groups", [])]
    groups = (g_heads, g_rows, {1 + len(by) + i for i in block_rates})
    months = (["月份"] + block_heads, [[m["month"]] + block_cells(m) for m in report.get("months", [])],
              {1 + i for i in block_rates})
    items = (["题目", "维度", "知识点", "作答数", "正确率", "区分度D(27%)", "点二列相关(剩余分)", "标记"],
             [[i["item_id"], i["dimension"], i.get("knowledge_point", ""), i["n"], i["correct_rate"],
               i["discrimination"], i["point_biserial"], FLAG_LABELS.get(i["flag"], i["flag"]) if i["flag"] else None]
              for i in report.get("items", [])],
             {4})
    dims = (["维度", "作答数", "正确率"],
            [[d["dimension"], d["answers"], d["correct_rate"]] for d in report.get("dimensions", [])], {2})
    return {"overall": overall, "groups": groups, "items": items, "dimensions": dims, "months": months}


_SHEETS = {"overall": "总体", "groups": "分组", "items": "题目", "dimensions": "维度", "months": "月度"}


def _write_csv(path: Path, headers: list[str], rows: list[list[Any]]) -> None:
    """One table as CSV; every cell through bot.awareness.cells (never a formula in Excel)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow([safe_cell(h) for h in headers])
        for row in rows:
            w.writerow([safe_cell(_fmt(v)) for v in row])


def _write_xlsx(path: Path, tables: Mapping[str, tuple[list[str], list[list[Any]], set[int]]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, title in _SHEETS.items():
        headers, rows, rate_cols = tables[name]
        ws = wb.create_sheet(title)
        ws.append(xlsx_row(ws, headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:  # text cells are strings, never formulas (bot.awareness.cells)
            ws.append(xlsx_row(ws, [("是" if v else "否") if isinstance(v, bool) else v for v in row]))
        for col in rate_cols:
            for (cell,) in ws.iter_rows(min_row=2, min_col=col + 1, max_col=col + 1):
                if isinstance(cell.value, float):
                    cell.number_format = "0.0%"
        for col_cells in ws.columns:
            width = max(_width(str(c.value)) if c.value is not None else 0 for c in col_cells)
            ws.column_dimensions[col_cells[0].column_letter].width = min(60, max(8, width + 2))
        ws.freeze_panes = "A2"
    wb.save(path)


def _chart_context() -> tuple[dict[RcKeyType, Any], bool]:
    """rcParams for the charts, and whether a CJK font was found (else English titles)."""
    font = find_cjk_font()
    rc: dict[RcKeyType, Any] = {"axes.unicode_minus": False, "font.family": "sans-serif"}
    if font:
        rc["font.sans-serif"] = [font, "DejaVu Sans"]
    else:
        log.warning("no CJK font found (e.g. apt-get install fonts-noto-cjk): "
                    "chart titles in English, Chinese labels may not render")
    return rc, font is not None


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", metadata={"Software": None})


def _plot_groups(report: Mapping[str, Any], path: Path, cjk: bool, max_bars: int = 40) -> None:
    """Horizontal bars: overall then each group, error bars of the interval the status uses
    (design-based when the report has a design, else Wilson), dashed target line."""
    rows = [("总体" if cjk else "Overall", report["overall"], "overall")]
    for g in (report.get("groups") or [])[:max_bars]:
        rows.append((_plain(_group_label(g["key"])) + ("*" if g["small_sample"] else ""), g,
                     "small" if g["small_sample"] else "ranked"))
    rows = [r for r in rows if r[1]["n"] > 0] or rows[:1]
    colours = {"overall": "#2b6cb0", "ranked": "#4a9bd6", "small": "#b0b7c0"}
    fig = _new_figure(8.0, max(2.6, 0.42 * len(rows) + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(rows)))[::-1]
    low_key, high_key = _ci_keys(report)

    def rate(b: Mapping[str, Any]) -> float:
        return (b["weighted_rate"] if b.get("weighted_rate") is not None else b["rate"]) or 0.0

    rates = [rate(b) for _, b, _ in rows]
    lo_err = [max(0.0, rate(b) - b[low_key]) if b["n"] else 0.0 for _, b, _ in rows]
    hi_err = [max(0.0, b[high_key] - rate(b)) if b["n"] else 0.0 for _, b, _ in rows]
    ax.barh(ys, rates, color=[colours[k] for _, _, k in rows], height=0.6,
            xerr=[lo_err, hi_err], error_kw={"ecolor": "#333333", "capsize": 3, "elinewidth": 1})
    target = report["target"]
    ax.axvline(target, color="#c53030", linestyle="--", linewidth=1.2)
    ax.text(target, 1.0, f" {'目标' if cjk else 'target'} {_pct(target, 0)}", color="#c53030",
            fontsize=8, ha="left", va="bottom", transform=ax.get_xaxis_transform())
    for y, (_, b, _) in zip(ys, rows):
        if b["n"]:
            ax.text(min(b[high_key] + 0.01, 1.005), y, f"{_pct(rate(b))} (n={b['n']})",
                    va="center", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.5})
    ax.set_yticks(ys)
    ax.set_yticklabels([label for label, _, _ in rows], fontsize=9)
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xticklabels(["0%", "20%", "40%", "60%", "80%", "100%"])
    if designed(report):
        title = "知晓率（95% 设计校正置信区间）" if cjk else "Awareness rate (95% design-based CI)"
    else:
        title = "知晓率（95% Wilson 置信区间）" if cjk else "Awareness rate (95% Wilson CI)"
    ax.set_title(f"{_plain(report['campaign'])} {title}" if cjk else title, fontsize=11, pad=14)
    if any(k == "small" for _, _, k in rows):
        ax.set_xlabel(f"* 样本量 < {report['min_n']}，不参与排名" if cjk else f"* n < {report['min_n']}, not ranked",
                      fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _month_range(first: str, last: str) -> list[str]:
    """All "YYYY-MM" labels from first to last inclusive."""
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _plot_trend(report: Mapping[str, Any], path: Path, cjk: bool) -> None:
    """Monthly awareness rate with its interval band (as in _plot_groups) and the dashed target line."""
    data = {m["month"]: m for m in report.get("months", []) if m["n"] > 0}
    low_key, high_key = _ci_keys(report)
    fig = _new_figure(8.0, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    target = report["target"]
    if data:
        labels = _month_range(min(data), max(data))  # months without answers stay as gaps
        nan = float("nan")
        xs = list(range(len(labels)))
        rate = [(data[m]["weighted_rate"] if data[m].get("weighted_rate") is not None else data[m]["rate"])
                if m in data else nan for m in labels]
        low = [data[m][low_key] if m in data else nan for m in labels]
        high = [data[m][high_key] if m in data else nan for m in labels]
        ax.fill_between(xs, low, high, color="#4a9bd6", alpha=0.25, linewidth=0, label="95% CI")
        ax.errorbar(xs, rate, yerr=[[r - lo for r, lo in zip(rate, low)], [hi - r for r, hi in zip(rate, high)]],
                    fmt="o-", color="#2b6cb0", ecolor="#2b6cb0", capsize=3,
                    label=("知晓率" if cjk else "awareness"))
        for x, m in zip(xs, labels):
            if m in data:
                ax.annotate(f"n={data[m]['n']}", (x, data[m][low_key]), textcoords="offset points",
                            xytext=(0, -12), ha="center", fontsize=7)
        step = max(1, len(labels) // 18)
        ax.set_xticks(xs[::step])
        ax.set_xticklabels(labels[::step], rotation=30 if len(labels) > 6 else 0, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        ax.text(0.5, 0.5, "无数据" if cjk else "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    ax.axhline(target, color="#c53030", linestyle="--", linewidth=1.2,
               label=(f"目标 {_pct(target, 0)}" if cjk else f"target {_pct(target, 0)}"))
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_yticklabels(["0%", "20%", "40%", "60%", "80%", "100%"])
    ax.set_title(f"{_plain(report['campaign'])} 知晓率月度趋势" if cjk else "Awareness rate by month", fontsize=11)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _html_table(headers: list[str], rows: list[list[Any]], rate_cols: set[int]) -> str:
    def cell(i: int, v: Any) -> str:
        if v is None:
            text = ""
        elif isinstance(v, bool):
            text = "是" if v else "否"
        elif i in rate_cols and isinstance(v, float):
            text = _pct(v)
        elif isinstance(v, float):
            text = f"{v:.3f}"
        else:
            text = str(v)
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f0f4f8}
img{max-width:100%;height:auto}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap}
.note{color:#666;font-size:.85em}
"""


def _write_html(path: Path, report: Mapping[str, Any], tables: Mapping[str, Any], pngs: Sequence[Path]) -> None:
    esc = html.escape
    imgs = "\n".join(
        f'<p><img alt="{esc(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode("ascii")}"></p>'
        for p in pngs)
    sections = [
        f"<h1>{esc(report['campaign'])} 职业健康知识知晓率报告</h1>",
        f"<pre>{esc(format_text(report, max_groups=10**6, max_items=10**6))}</pre>",
        "<h2>图表</h2>", imgs,
    ]
    for name, title in (("overall", "总体"), ("groups", "分组"), ("months", "月度"),
                        ("dimensions", "维度"), ("items", "题目")):
        headers, rows, rate_cols = tables[name]
        if rows:
            sections += [f"<h2>{esc(title)}</h2>", _html_table(headers, rows, rate_cols)]
    sections.append(
        f'<p class="note">知晓：得分率 ≥ {esc(_pct(report["threshold"], 0))}。状态依据 95% '
        f'{"设计校正（按企业整群/分层/加权）" if designed(report) else "Wilson "}置信区间与目标 '
        f'{esc(_pct(report["target"], 0))} 比较；样本量不足 {report["min_n"]} 人的组仅列出不排名。'
        "区分度基于剩余分（该题以外的得分率）。</p>")
    doc = ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
           f"<title>{esc(report['campaign'])} 知晓率报告</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
           + "\n".join(sections) + "\n</body>\n</html>\n")
    path.write_text(doc, encoding="utf-8")


def write_outputs(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write the report as files in `out_dir` (created if needed) and return their paths.

    Files: report.json; overall/groups/items/dimensions/months .csv (utf-8-sig, so Excel
    opens the Chinese correctly); report.xlsx (sheets 总体, 分组, 题目, 维度, 月度);
    awareness_by_group.png and awareness_by_month.png (matplotlib Agg, a CJK font when
    one is installed, English titles otherwise); report.html, self-contained (charts as
    base64 data URIs, inline CSS, no external resources, all text html-escaped).

    Each file is written on its own: one that fails (a disk error, a library refusing a value)
    is left out and the others are still written; then OutputError names every failed file and
    why (the HTML page leaves out a chart that failed).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    failed: list[str] = []

    def attempt(path: Path, write: Any, *args: Any) -> bool:
        """Write one file through a temporary name, then rename: a failed file leaves no partial or
        stale file behind (an older file of that name is removed, so no old figure passes for new)."""
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            write(tmp, *args)
            os.replace(tmp, path)
        except Exception as exc:  # noqa: BLE001 -- reported below, after the other files are written
            log.warning("could not write %s: %s", path, exc)
            failed.append(f"{path.name} ({type(exc).__name__}: {exc})")
            for leftover in (tmp, path):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:
                    pass
            return False
        paths.append(path)
        return True

    def write_json(path: Path) -> None:
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")

    attempt(out_dir / "report.json", write_json)
    tables = _tables(report)
    for name in ("overall", "groups", "items", "dimensions", "months"):
        headers, rows, _ = tables[name]
        attempt(out_dir / f"{name}.csv", _write_csv, headers, rows)
    attempt(out_dir / "report.xlsx", _write_xlsx, tables)

    import matplotlib

    rc, cjk = _chart_context()
    pngs = []
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        # Without a CJK font, Chinese group values draw as boxes; say so once, not per glyph.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from font")
        for png, plot in ((out_dir / "awareness_by_group.png", _plot_groups),
                          (out_dir / "awareness_by_month.png", _plot_trend)):
            if attempt(png, lambda path, plot=plot: plot(report, path, cjk)):
                pngs.append(png)
    attempt(out_dir / "report.html", _write_html, report, tables, pngs)
    if failed:
        raise OutputError(f"could not write {len(failed)} of {len(failed) + len(paths)} report files: "
                          f"{'; '.join(failed)}. The other {len(paths)} are in {out_dir}")
    return paths
