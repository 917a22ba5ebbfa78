"""Tests for bot.awareness.report: awareness counting, grouping, item analysis, text and file outputs.

Expected counts and intervals are worked out here from the test data (intervals with the
count form of the Wilson bounds), not read back from bot.awareness.report.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from bot.awareness.report import (  # noqa: E402
    MISSING,
    AnswerRecord,
    ItemInfo,
    RespondentResult,
    build_report,
    format_text,
    write_outputs,
)
from tests.helpers import wilson_by_hand

Z = 1.959963984540054
PROFILE = ("industry", "region", "enterprise_size", "role", "sex", "age_band", "education", "years_service")


ITEMS = {f"q{i}": ItemInfo(f"q{i}", "law" if i <= 5 else "skill", f"题干{i}", f"知识点{i}") for i in range(1, 11)}


def resp(idx: int, n_correct: int, n_items: int = 10, when: datetime = datetime(2024, 3, 5, 10, 0),
         **profile: str | None) -> RespondentResult:
    """A respondent who answered q1..q{n_items} and got the first `n_correct` right."""
    answers = [AnswerRecord(f"q{i}", i <= n_correct) for i in range(1, n_items + 1)]
    prof: dict[str, str | None] = {k: None for k in PROFILE}
    prof.update(profile)
    return RespondentResult(f"h{idx:04d}", prof, when, answers)


# --------------------------------------------------------------------------- counting


def test_overall_counts_threshold_equal_is_aware() -> None:
    # scores 5,6,7,8,9 of 10 → with threshold 0.6, exactly 6/10 counts: 4 aware of 5
    rs = [resp(i, c) for i, c in enumerate([5, 6, 7, 8, 9])]
    rep = build_report("c1", 0.6, rs, ITEMS)
    o = rep["overall"]
    assert (o["n"], o["aware"]) == (5, 4)
    assert o["rate"] == pytest.approx(0.8)
    assert (o["ci_low"], o["ci_high"]) == pytest.approx(wilson_by_hand(4, 5))
    assert o["small_sample"] is True
    # 7/10 at threshold 0.7 is aware too (0.7 is not exactly representable)
    assert build_report("c1", 0.7, rs, ITEMS)["overall"]["aware"] == 3


def test_all_aware_none_aware_and_empty() -> None:
    rs = [resp(i, 10) for i in range(40)]
    o = build_report("c", 0.6, rs, ITEMS)["overall"]
    assert (o["n"], o["aware"], o["rate"], o["ci_high"]) == (40, 40, 1.0, 1.0)
    assert o["status"] == "met"  # lower bound 40/(40+z²) ≈ 0.912
    assert o["ci_low"] == pytest.approx(40 / (40 + Z * Z))
    rs = [resp(i, 2) for i in range(40)]
    o = build_report("c", 0.6, rs, ITEMS)["overall"]
    assert (o["aware"], o["rate"], o["ci_low"], o["status"]) == (0, 0.0, 0.0, "not_met")

    rep = build_report("c", 0.6, [], ITEMS, by=["industry"])
    assert rep["overall"]["n"] == 0 and rep["overall"]["rate"] is None
    assert rep["overall"]["status"] == "no_data"
    assert rep["groups"] == [] and rep["months"] == [] and rep["items"] == []
    assert rep["practice"] == {"forms": 0, "respondents": 0, "mean_score_rate": None}
    json.dumps(rep, allow_nan=False)
    assert "暂无" in format_text(rep)


def test_status_in_report_met_not_met_undecided() -> None:
    met = [resp(i, 9) for i in range(95)] + [resp(100 + i, 1) for i in range(5)]
    assert build_report("c", 0.6, met, ITEMS)["overall"]["status"] == "met"  # 95/100: low ≈ 0.888
    notmet = [resp(i, 9) for i in range(60)] + [resp(100 + i, 1) for i in range(40)]
    assert build_report("c", 0.6, notmet, ITEMS)["overall"]["status"] == "not_met"
    und = [resp(i, 9) for i in range(90)] + [resp(100 + i, 1) for i in range(10)]
    o = build_report("c", 0.6, und, ITEMS)["overall"]
    assert o["status"] == "undecided" and o["extra_n"] == 96


def test_empty_and_duplicate_forms_excluded() -> None:
    rs = [resp(1, 8), resp(2, 3),
          RespondentResult("h0001", {}, datetime(2024, 4, 1), [AnswerRecord("q1", False)]),  # later duplicate
          RespondentResult("h0009", {}, datetime(2024, 3, 1), [])]
    rep = build_report("c", 0.6, rs, ITEMS)
    assert (rep["overall"]["n"], rep["overall"]["aware"]) == (2, 1)
    assert rep["excluded"] == {"empty_forms": 1, "duplicate_forms": 1}


def test_practice_reported_separately() -> None:
    rs = [resp(i, 9) for i in range(3)]
    practice = [resp(1, 2), resp(1, 4), resp(7, 6, n_items=6)]
    rep = build_report("c", 0.6, rs, ITEMS, practice=practice)
    assert rep["overall"]["n"] == 3 and rep["overall"]["aware"] == 3
    assert rep["practice"]["forms"] == 3
    assert rep["practice"]["respondents"] == 2
    assert rep["practice"]["mean_score_rate"] == pytest.approx((0.2 + 0.4 + 1.0) / 3)
    # practice answers do not enter the item statistics
    assert {i["item_id"]: i["n"] for i in rep["items"]}["q1"] == 3


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_report("c", 0.6, [], ITEMS, by=["shoe_size"])
    with pytest.raises(ValueError):
        build_report("c", 1.5, [], ITEMS)


# --------------------------------------------------------------------------- grouping


def two_key_data() -> list[RespondentResult]:
    rs: list[RespondentResult] = []
    k = 0

    def add(count: int, aware: int, **prof: str | None) -> None:
        nonlocal k
        for j in range(count):
            rs.append(resp(k, 8 if j < aware else 3, **prof))
            k += 1

    add(40, 38, industry="mining", region="A")   # 95 %
    add(35, 21, industry="mining", region="B")   # 60 %
    add(32, 29, industry="chemicals", region="A")  # 90.6 %
    add(5, 5, industry="chemicals", region=None)   # small, 100 %
    add(8, 2, industry=None, region="B")           # small, 25 %
    return rs


def test_grouping_by_two_keys() -> None:
    rep = build_report("c", 0.6, two_key_data(), ITEMS, by=["industry", "region"])
    groups = {tuple(g["key"].values()): g for g in rep["groups"]}
    assert set(groups) == {("mining", "A"), ("mining", "B"), ("chemicals", "A"),
                           ("chemicals", MISSING), (MISSING, "B")}  # only combinations present
    assert all(list(g["key"]) == ["industry", "region"] for g in rep["groups"])
    g = groups[("mining", "B")]
    assert (g["n"], g["aware"]) == (35, 21)
    assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson_by_hand(21, 35))
    assert g["status"] == "not_met"
    assert groups[("mining", "A")]["status"] == "undecided"  # 38/40: low ≈ 0.835
    # ranked by rate desc, then the small-sample groups (by n desc), unranked
    order = [tuple(g["key"].values()) for g in rep["groups"]]
    assert order == [("mining", "A"), ("chemicals", "A"), ("mining", "B"),
                     (MISSING, "B"), ("chemicals", MISSING)]
    assert [g["small_sample"] for g in rep["groups"]] == [False, False, False, True, True]
    assert [g["rank"] for g in rep["groups"]] == [1, 2, 3, None, None]
    assert rep["overall"]["n"] == 120 and rep["overall"]["aware"] == 95
    json.dumps(rep, allow_nan=False)


def test_small_sample_threshold_is_min_n() -> None:
    rep = build_report("c", 0.6, two_key_data(), ITEMS, by=["industry"], min_n=40)
    small = {g["key"]["industry"]: g["small_sample"] for g in rep["groups"]}
    assert small == {"mining": False, "chemicals": True, MISSING: True}


def test_month_grouping_and_months_list() -> None:
    rs = [resp(i, 8, when=datetime(2024, 1, 31, 23, 59)) for i in range(3)]
    rs += [resp(10 + i, 8 if i < 2 else 1, when=datetime(2024, 2, 1, 0, 1)) for i in range(4)]
    rs += [resp(20, 1, when=datetime(2023, 12, 15))]
    rep = build_report("c", 0.6, rs, ITEMS, by=["month"], min_n=2)
    assert [m["month"] for m in rep["months"]] == ["2023-12", "2024-01", "2024-02"]
    feb = rep["months"][2]
    assert (feb["n"], feb["aware"], feb["rate"]) == (4, 2, 0.5)
    assert (feb["ci_low"], feb["ci_high"]) == pytest.approx(wilson_by_hand(2, 4))
    groups = {g["key"]["month"]: (g["n"], g["aware"]) for g in rep["groups"]}
    assert groups == {"2023-12": (1, 0), "2024-01": (3, 3), "2024-02": (4, 2)}
    # months are always in the report, even without grouping by month
    assert [m["month"] for m in build_report("c", 0.6, rs, ITEMS)["months"]] == ["2023-12", "2024-01", "2024-02"]


def test_month_combined_with_profile_key() -> None:
    rs = [resp(1, 8, when=datetime(2024, 1, 2), sex="女"), resp(2, 8, when=datetime(2024, 1, 3), sex="男"),
          resp(3, 2, when=datetime(2024, 2, 3), sex="女")]
    rep = build_report("c", 0.6, rs, ITEMS, by=["sex", "month"])
    keys = sorted(tuple(g["key"].values()) for g in rep["groups"])
    assert keys == [("女", "2024-01"), ("女", "2024-02"), ("男", "2024-01")]


def test_most_missed_per_group() -> None:
    # everyone got q1..q7 right and q8..q10 wrong, except one who also got q8 right
    rs = [resp(i, 7) for i in range(4)] + [resp(9, 8)]
    rep = build_report("c", 0.6, rs, ITEMS, by=["industry"])
    missed = rep["groups"][0]["most_missed"]
    assert [m["item_id"] for m in missed] == ["q10", "q9", "q8"]  # always-right items are not "missed"
    assert missed[0]["correct_rate"] == 0.0 and missed[0]["knowledge_point"] == "知识点10"
    assert missed[2]["correct_rate"] == pytest.approx(1 / 5)
    assert rep["overall"]["most_missed"] == missed


# --------------------------------------------------------------------------- items


def item_data() -> tuple[list[RespondentResult], dict[str, ItemInfo]]:
    """40 respondents of varying ability on 10 items; "bad" is right only for weak ones."""
    items = dict(ITEMS)
    items["bad"] = ItemInfo("bad", "knowledge", "有问题的题", "错误答案键")
    rs = []
    for i in range(40):
        ability = i % 11  # 0..10 items right among q1..q10
        answers = [AnswerRecord(f"q{j}", j <= ability) for j in range(1, 11)]
        answers.append(AnswerRecord("bad", ability <= 3))
        rs.append(RespondentResult(f"h{i}", {}, datetime(2024, 5, 1), answers))
    return rs, items


def test_negative_discrimination_item_is_flagged() -> None:
    rs, items = item_data()
    rep = build_report("c", 0.6, rs, items)
    by_id = {i["item_id"]: i for i in rep["items"]}
    bad = by_id["bad"]
    assert bad["flag"] == "negative_discrimination"
    assert bad["discrimination"] < 0 and bad["point_biserial"] < 0
    assert bad["dimension"] == "knowledge" and bad["n"] == 40
    good = by_id["q5"]
    assert good["flag"] is None
    assert good["discrimination"] > 0.5 and good["point_biserial"] > 0.5
    # correct rate = difficulty: q5 right when ability ≥ 5
    expected = sum(1 for i in range(40) if i % 11 >= 5) / 40
    assert good["correct_rate"] == pytest.approx(expected)
    # q1 and q10 are answered the same way by almost everybody → still defined
    assert "q10" in by_id
    assert "bad" in format_text(rep)


def test_discrimination_needs_enough_respondents() -> None:
    rs, items = item_data()
    rep = build_report("c", 0.6, rs[:5], items)
    assert all(i["discrimination"] is None and i["flag"] is None for i in rep["items"])


def test_dimensions() -> None:
    rs = [resp(1, 7), resp(2, 3)]  # law = q1..q5, skill = q6..q10
    rep = build_report("c", 0.6, rs, ITEMS)
    dims = {d["dimension"]: d for d in rep["dimensions"]}
    assert dims["law"]["answers"] == 10 and dims["law"]["correct_rate"] == pytest.approx(8 / 10)
    assert dims["skill"]["answers"] == 10 and dims["skill"]["correct_rate"] == pytest.approx(2 / 10)


def test_unknown_item_gets_unknown_dimension() -> None:
    r = RespondentResult("h", {}, datetime(2024, 1, 1), [AnswerRecord("zz", True)])
    rep = build_report("c", 0.6, [r], ITEMS)
    assert rep["items"][0]["dimension"] == "未知"


# --------------------------------------------------------------------------- text and files


def test_format_text() -> None:
    rep = build_report("2024 春季活动", 0.6, two_key_data(), ITEMS, by=["industry", "region"])
    text = format_text(rep)
    assert "2024 春季活动" in text
    assert "79.2%" in text  # 95/120
    lo, hi = wilson_by_hand(95, 120)
    assert f"{lo * 100:.1f}%" in text and f"{hi * 100:.1f}%" in text
    assert "85%" in text
    assert "mining / A" in text and "未填写" in text
    assert "不参与排名" in text
    assert "最常答错" in text
    assert len(text) < 4096  # one Telegram message


def test_write_outputs(tmp_path: Path) -> None:
    rs, items = item_data()
    rs += [resp(100 + i, 8, when=datetime(2024, 6, 2), industry="mining", region="<b>&区") for i in range(12)]
    rep = build_report("<script>alert(1)</script> 活动", 0.6, rs, items, by=["industry", "region"],
                       practice=[resp(500, 5)])
    out = tmp_path / "out"
    paths = write_outputs(rep, out)
    names = {p.name for p in paths}
    for name in ("overall.csv", "groups.csv", "items.csv", "dimensions.csv", "report.xlsx",
                 "awareness_by_group.png", "awareness_by_month.png", "report.html"):
        assert name in names
    assert all(p.exists() and p.parent == out for p in paths)

    # CSV: utf-8-sig (BOM for Excel), Chinese headers, one row per group
    raw = (out / "groups.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with (out / "groups.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(rep["groups"])
    assert {"行业", "地区", "人数", "知晓率"} <= set(rows[0])
    assert sum(int(r["人数"]) for r in rows) == rep["overall"]["n"]
    with (out / "items.csv").open(encoding="utf-8-sig", newline="") as f:
        items_rows = {r["题目"]: r for r in csv.DictReader(f)}
    assert items_rows["bad"]["标记"] == "区分度为负"

    # XLSX re-opened with openpyxl
    from openpyxl import load_workbook

    wb = load_workbook(out / "report.xlsx")
    assert {"总体", "分组", "题目", "维度"} <= set(wb.sheetnames)
    ws = wb["总体"]
    header = [c.value for c in ws[1]]
    values = dict(zip(header, [c.value for c in ws[2]]))
    assert values["人数"] == rep["overall"]["n"]
    assert values["知晓率"] == pytest.approx(rep["overall"]["rate"])
    assert wb["分组"].max_row == len(rep["groups"]) + 1
    assert wb["题目"].max_row == len(rep["items"]) + 1

    # PNGs
    for name in ("awareness_by_group.png", "awareness_by_month.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 5000

    # HTML: self-contained, escaped
    doc = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", doc)
    assert "<script>" not in doc and "&lt;script&gt;" in doc
    assert "&lt;b&gt;&amp;区" in doc
    assert doc.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", doc)

    # JSON round-trips
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["overall"]["n"] == rep["overall"]["n"]


def test_write_outputs_without_groups_or_data(tmp_path: Path) -> None:
    paths = write_outputs(build_report("空", 0.6, [], ITEMS), tmp_path)
    for p in paths:
        assert p.exists() and p.stat().st_size > 0
    assert (tmp_path / "awareness_by_month.png").read_bytes()[:4] == b"\x89PNG"


def test_write_outputs_without_cjk_font(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Charts still render (English titles) on a machine with no CJK font installed."""
    import bot.awareness.report as report_mod

    monkeypatch.setattr(report_mod, "find_cjk_font", lambda: None)
    rep = build_report("无字体", 0.6, two_key_data(), ITEMS, by=["industry"])
    write_outputs(rep, tmp_path)
    for name in ("awareness_by_group.png", "awareness_by_month.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
