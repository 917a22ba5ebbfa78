"""Content lint for knowledge/: every fact is traceable, and four known bad habits cannot come back.

Why (issue #10): a review of cards and quiz items found content that cited no source for a number,
and four habits that make an answer misleading although no single number in it is wrong:

1. the scope of the 2025 disease catalogue dropped (carpal tunnel only for manufacturing workers with
   long repetitive or forceful wrist work; PTSD only for police, medical and fire/rescue staff taking
   part in handling emergencies; work stress or depression is not in the catalogue at all);
2. the Art. 72 fine stated as immediate (it follows a warning and an order to correct, and is imposed
   only if not corrected in time, 逾期不改正);
3. the 3-dB halving rule for noise credited to GBZ 2.2-2007 (it is a reference limit in GBZ/T 189.8-2007
   Annex B and assumes no other noise that day);
4. a local plan (柳南区, 城中区, 石台县, 秦皇岛, 广东) said as if it were national.

The lint reads the data files directly (YAML and Markdown front matter, as documented in
knowledge/README.md), so it does not depend on where the bot's loaders live. Each rule is a plain
function from one text unit to a list of problems; the unit tests at the bottom run every rule on
the old wording (which must be flagged) and on corrected wording (which must pass), so the lint is
shown to be able to fail.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


def _find_knowledge() -> Path:
    """The repository's knowledge/ folder, found upward from this file so the test can move
    between tests/ subfolders (a restructure of tests/ is under way) without a change."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "knowledge" / "taxonomy.yaml").is_file():
            return parent / "knowledge"
    raise FileNotFoundError("no knowledge/taxonomy.yaml above " + str(Path(__file__).parent))


KNOWLEDGE = _find_knowledge()

# ---------------------------------------------------------------------------------------------
# Text units: one FAQ card, one quiz item, one material section, one employer duty.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One piece of content that must stand on its own: its text and what it cites."""

    where: str         # e.g. "faq-haz-002", "Q0215", "hazard-noise § 工作场所噪声多大算超标？"
    text: str          # what is asserted (card answer; item stem and explanation; section; duty)
    cite: str          # the cite field ("" for material sections: they cite inline)
    options: str = ""  # a quiz item's options: shown, so their numbers need a source, but a wrong
                       # option is not a claim, so the habit rules do not read them


def _front_matter(path: Path) -> tuple[dict, str]:
    """Split a Markdown file into (front-matter mapping, body); ({}, text) without front matter."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if not match:
        return {}, text
    return yaml.safe_load(match.group(1)) or {}, text[match.end():]


def material_paths() -> list[Path]:
    """Every material (knowledge/materials/*.md), sorted so failures list in a stable order."""
    return sorted((KNOWLEDGE / "materials").glob("*.md"))


def sections(body: str) -> list[tuple[str, str]]:
    """(heading, heading + text) for each `##`/`###` section; text before the first one is '(intro)'."""
    parts: list[tuple[str, str]] = []
    heading, lines = "(intro)", []
    for line in body.splitlines():
        match = re.match(r"^(#{2,3})\s+(.+)$", line)
        if match:
            parts.append((heading, "\n".join(lines)))
            heading, lines = match.group(2).strip(), [line]
        elif not line.startswith("# "):
            lines.append(line)
    parts.append((heading, "\n".join(lines)))
    return [(h, t) for h, t in parts if t.strip()]


def card_units() -> list[Unit]:
    """One unit per FAQ card: the answer is what the bot shows, the cite field goes with it."""
    units = []
    for path in sorted((KNOWLEDGE / "faq").glob("*.yaml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            units.append(Unit(card["id"], str(card["answer"]), str(card.get("cite") or "")))
    return units


def item_units() -> list[Unit]:
    """One unit per quiz item: stem, options and explanation are all shown to the respondent."""
    units = []
    for path in sorted((KNOWLEDGE / "quiz").glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if item.get("retired"):  # kept only to read stored answers; never shown again
                continue
            options = "；".join(str(v) for v in (item.get("options") or {}).values())
            text = f"{item['stem']}\n{item.get('explanation') or ''}"
            units.append(Unit(item["id"], text, str(item.get("cite") or ""), options))
    return units


def section_units() -> list[Unit]:
    """One unit per material section (citations are written inline in the text)."""
    units = []
    for path in material_paths():
        meta, body = _front_matter(path)
        doc_id = str(meta.get("id") or path.stem)
        units += [Unit(f"{doc_id} § {heading}", text, "") for heading, text in sections(body)]
    return units


def duty_units() -> list[Unit]:
    """One unit per duty of the employer self-check (knowledge/obligations.yaml)."""
    duties = yaml.safe_load((KNOWLEDGE / "obligations.yaml").read_text(encoding="utf-8")) or []
    return [Unit(f"obligations:{d['id']}", str(d["duty"]), str(d["cite"])) for d in duties]


def all_units() -> list[Unit]:
    """Every card, item, material section and duty."""
    return card_units() + item_units() + section_units() + duty_units()


# ---------------------------------------------------------------------------------------------
# Rule (a): a number needs a citation.
# ---------------------------------------------------------------------------------------------

# A number a reader could act on: digits (or a Chinese-numeral amount of money or time) with a unit.
NUMBER = re.compile(
    r"\d+(?:\.\d+)?\s*(?:万元|元|万|日|天|年|个月|小时|周岁|岁|%|％|dB|分贝|℃|°C|种|类|个|人|家|例|项|倍|次)"
    r"|[一二三四五六七八九十百千两]+(?:万元|元|日内|个月|小时)"
)
# A citation: a named document, an article, or a standard number. Our own material titles
# ("防护知识材料《…》") are pointers inside the project, not sources, so they do not count.
CITATION = re.compile(
    r"《[^》]+》|第[一二三四五六七八九十百零\d]+条|\bGBZ?(?:/T)?\s*\d"       # document, article, GB/GBZ standard
    r"|(?:国家卫生健康委|国家卫健委|应急管理部|中国疾控中心)[^。；\n]{0,40}?(?:发布会|通知|介绍|提示|公布)"  # official statement
    r"|\b29 CFR \d|\bWAC \d|CDC/NIOSH|NIOSH出版物|NINDS|职业病防治院"     # US regulation/agency, provincial OH institute
)
OWN_MATERIAL = re.compile(r"防护知识材料《[^》]*》")


def cites_something(text: str) -> bool:
    """True if the text names a document, an article or a standard (own-material pointers excluded)."""
    return bool(CITATION.search(OWN_MATERIAL.sub("", text)))


def uncited_numbers(unit: Unit) -> list[str]:
    """The numbers in a unit that has no citation in its text or its cite field."""
    numbers = [m.group(0) for m in NUMBER.finditer(f"{unit.text}\n{unit.options}")]
    if not numbers or cites_something(unit.text) or cites_something(unit.cite):
        return []
    return numbers


# ---------------------------------------------------------------------------------------------
# Rule (b): the four habits.
# ---------------------------------------------------------------------------------------------

HALVING = re.compile(r"88\s*(?:dB|分贝)|减(?:少)?一半|减半|每减|3\s*(?:dB|分贝)")
NO_OTHER_NOISE = re.compile(r"其余时间|其他时间|其他噪声|别的噪声|不再接触")


def noise_rule_problems(unit: Unit) -> list[str]:
    """The halving rule must be credited to GBZ/T 189.8 and state that it assumes no other noise."""
    text = f"{unit.text}\n{unit.cite}"
    if not HALVING.search(text) or "dB" not in text.replace("分贝", "dB"):
        return []
    problems = []
    if "189.8" not in text:
        problems.append("3-dB halving rule without GBZ/T 189.8-2007 (附录B)")
    if re.search(r"GBZ\s*2\.2", text) and "189.8" not in text:
        problems.append("3-dB halving rule credited to GBZ 2.2")
    if not NO_OTHER_NOISE.search(text):
        problems.append("3-dB halving rule without its assumption (no other noise that day)")
    return problems


ART72_FINE = re.compile(r"(?:5|五)万元以上(?:20|二十)万元以下|(?:20|二十)万元")


def art72_problems(unit: Unit) -> list[str]:
    """A 5–20万 fine (Art. 72) is only imposed if not corrected in time: say 逾期 with it."""
    text = f"{unit.text}\n{unit.cite}"
    if not ART72_FINE.search(unit.text) or "第七十三条" in text:
        return []
    if "逾期" in unit.text or "限期改正" in unit.text and "不改正" in unit.text:
        return []
    return ["Art. 72 fine (5–20万元) without 警告/责令限期改正/逾期不改正"]


CATALOGUE = re.compile(r"职业病|目录|新增|列入|职业性肌肉骨骼|职业性精神")


def catalogue_scope_problems(unit: Unit) -> list[str]:
    """Carpal tunnel, PTSD and work stress, when said about the catalogue, carry its exact scope."""
    text = unit.text
    if not CATALOGUE.search(text):
        return []
    problems = []
    limited = re.search(r"限于|仅限|只限|只有|不属于|不在", text)
    if "腕管" in text and not ("制造业" in text and limited):
        problems.append("腕管综合征 without its scope (限于长时间重复或用力腕部作业的制造业工人)")
    ptsd_scope = limited and "警察" in text and "医疗" in text and re.search(r"消防|救援", text) \
        and re.search(r"突发事件|应急处置|处置突发", text)
    if re.search(r"创伤后应激|PTSD", text) and not (ptsd_scope or re.search(r"非[^，。；]{0,12}应急救援人员", text)):
        problems.append("创伤后应激障碍 without its scope (限于参与突发事件处置的警察、医疗、消防救援人员)")
    if re.search(r"抑郁|工作压力|职业紧张|鼠标手", text) and re.search(r"不一定|要看目录|看目录", text):
        problems.append("work stress/depression answered 'it depends': say it is not in the catalogue")
    return problems


# The five local documents in knowledge/corpus: a fragment of each title, and the region names that
# must appear in the text when the document is cited.
LOCAL_DOCS = {
    "柳南区职业病防治": ("柳南区",), "城中区职业病防治": ("城中区",), "石台县职业病防治": ("石台县", "石台"),
    "秦皇岛市职业健康监管": ("秦皇岛",), "广东省职业病防治规划": ("广东",),
}
REGION_NAMES = ("柳南区", "城中区", "石台县", "石台", "秦皇岛", "广东")
VAGUE_LOCAL = re.compile(r"地方规划|各地规划|区级规划|地方工作要点|多地|“十四五”规划(?:明确)?要求")


def local_plan_problems(unit: Unit) -> list[str]:
    """A local plan cited in the cite field must be named (with its region) in the text itself,
    and vague phrases like 地方规划/多地 must say which region they mean."""
    problems = []
    for title, names in LOCAL_DOCS.items():
        if title in unit.cite and not any(name in unit.text for name in names):
            problems.append(f"cites 《{title}…》 but the text does not say whose plan it is ({names[0]})")
    if VAGUE_LOCAL.search(unit.text) and not any(name in unit.text for name in REGION_NAMES):
        problems.append("local plan used without naming its region")
    return problems


HEDGE = re.compile(r"^(?:可能|不一定|有的地方|有些地方|各地|地方|例如|以)")
NATIONAL = re.compile(r"NIOSH|OSHA|WAC |《职业病防治法》|《中华人民共和国|第[一二三四五六七八九十百零\d]+条|国家|全国|GBZ?\s*\d|通知》")


def local_answer_problems(unit: Unit) -> list[str]:
    """A card resting on local plans only (no national source in its cite) must not open with a flat
    yes/must as if the plan were national: its first sentence names the region, gives a national rule,
    or is hedged (可能/有的地方/例如…)."""
    if not unit.where.startswith("faq-") or not any(title in unit.cite for title in LOCAL_DOCS):
        return []
    if NATIONAL.search(unit.cite):
        return []
    first = re.split(r"[。！？]", unit.text, maxsplit=1)[0]
    if HEDGE.search(first) or NATIONAL.search(first) or any(name in first for name in REGION_NAMES):
        return []
    return [f"opens with a general claim ({first}) but cites a local plan: name the region or give the national rule first"]


HABITS = (noise_rule_problems, art72_problems, catalogue_scope_problems, local_plan_problems, local_answer_problems)


def habit_problems(unit: Unit) -> list[str]:
    """Every habit rule's findings for one unit."""
    return [p for rule in HABITS for p in rule(unit)]


# ---------------------------------------------------------------------------------------------
# The lint on the real content.
# ---------------------------------------------------------------------------------------------


def test_every_number_has_a_citation() -> None:
    """A number in a card, item, material section or duty is useless to check without its source."""
    bad = {u.where: uncited_numbers(u) for u in all_units() if uncited_numbers(u)}
    assert bad == {}


def test_no_bad_habit_is_back() -> None:
    """None of the four habits of issue #10 appears anywhere in the content."""
    bad = {u.where: habit_problems(u) for u in all_units() if habit_problems(u)}
    assert bad == {}


def status_problems(meta: dict) -> list[str]:
    """What is wrong with a material's status metadata: status is reviewed | sourced | draft; a
    draft says why (draft_reason); a sourced material lists its sources, each with a document and
    the article or section used (url optional). Answers from sourced material carry no review note."""
    status = meta.get("status")
    if status not in ("reviewed", "sourced", "draft"):
        return [f"status {status!r}"]
    if status == "draft" and not str(meta.get("draft_reason") or "").strip():
        return ["draft without draft_reason"]
    if status == "sourced":
        sources = meta.get("sources")
        if not isinstance(sources, list) or not sources:
            return ["sourced without a sources: list"]
        return [f"source without document/section: {s!r}" for s in sources
                if not isinstance(s, dict) or not str(s.get("document") or "").strip()
                or not str(s.get("section") or "").strip()]
    return []


def test_materials_say_how_far_they_are_sourced() -> None:
    """Every material's status metadata is complete (see status_problems)."""
    bad = {path.name: status_problems(_front_matter(path)[0]) for path in material_paths()}
    assert {name: problems for name, problems in bad.items() if problems} == {}


def test_status_rule_can_fail() -> None:
    """The status rule rejects a draft without a reason and a sourced material without sources."""
    assert status_problems({"status": "draft"})
    assert status_problems({"status": "sourced"})
    assert status_problems({"status": "sourced", "sources": [{"document": "《职业病防治法》"}]})
    assert status_problems({"status": "signed"})
    assert status_problems({"status": "draft", "draft_reason": "第三节尚未核对出处"}) == []
    assert status_problems({"status": "sourced",
                            "sources": [{"document": "《职业病防治法》", "section": "第三十五条"}]}) == []


def test_obligations_are_well_formed() -> None:
    """Each self-check duty has a unique id, a known 'applies' value and a 《…》 citation."""
    duties = yaml.safe_load((KNOWLEDGE / "obligations.yaml").read_text(encoding="utf-8"))
    ids = [d["id"] for d in duties]
    assert len(ids) == len(set(ids))
    taxonomy = yaml.safe_load((KNOWLEDGE / "taxonomy.yaml").read_text(encoding="utf-8"))
    known = {"always", "hazard", *taxonomy["self_check"]["hazards"], *taxonomy["self_check"]["situations"]}
    assert {c for d in duties for c in d["applies"].split("+")} <= known
    assert all(re.search(r"《[^》]+》", d["cite"]) for d in duties)
    assert all("盖章" not in d["duty"] for d in duties)  # Art. 36 says 签章


# ---------------------------------------------------------------------------------------------
# The rules themselves: old wording is flagged, corrected wording passes.
# ---------------------------------------------------------------------------------------------

OLD_AND_NEW = [
    # habit 3: the halving rule credited to GBZ 2.2
    (Unit("faq-haz-002 old", "不是。接触时间每减半，限值可以提高3 dB(A)：每天8小时是85 dB(A)，每天4小时是88 dB(A)。",
          "国家职业卫生标准GBZ 2.2-2007"),
     Unit("faq-haz-002 new", "8小时的限值85 dB(A)出自GBZ 2.2-2007。GBZ/T 189.8-2007附录B给出参考："
          "接触时间每减半，限值加3 dB(A)，每天4小时对应88 dB(A)，前提是当天其余时间不再接触噪声。",
          "GBZ 2.2-2007；GBZ/T 189.8-2007 附录B")),
    # habit 2: the Art. 72 fine as immediate
    (Unit("faq-duty-017 old", "危害因素强度或浓度超过国家职业卫生标准的，可被处5万元以上20万元以下罚款。",
          "《职业病防治法》第七十二条"),
     Unit("faq-duty-017 new", "超标的，由卫生健康主管部门给予警告、责令限期改正；逾期不改正的，处5万元以上20万元以下罚款。",
          "《职业病防治法》第七十二条")),
    # habit 1: carpal tunnel without its scope
    (Unit("faq-cat-004 old", "可能算。新版目录新增职业性肌肉骨骼疾病类别，例如制造业中从事手腕反复或用力作业工人的腕管综合征。",
          "《职业病分类和目录》"),
     Unit("faq-cat-004 new", "新版目录列入的腕管综合征，限于长时间从事腕部重复或用力作业的制造业工人；"
          "办公室“鼠标手”不在职业病目录内。", "《职业病分类和目录》")),
    # habit 1: PTSD without its scope
    (Unit("faq-cat-005 old", "新增职业性精神和行为障碍类别，其中包括警察、医疗、消防救援人员的创伤后应激障碍。",
          "《职业病分类和目录》"),
     Unit("faq-cat-005 new", "目录只列入创伤后应激障碍，限于参与突发事件处置的警察、医疗卫生人员和消防救援等应急救援人员，"
          "是否属于职业病由诊断机构诊断。", "《职业病分类和目录》")),
    # habit 1: work stress answered "it depends"
    (Unit("faq-cat-006 old", "不一定。法定职业病以《职业病分类和目录》为准；其他情况是否属于，要看目录。抑郁要就医。",
          "《职业病分类和目录》"),
     Unit("faq-cat-006 new", "不算。工作压力和抑郁不在《职业病分类和目录》之内。", "《职业病分类和目录》")),
    # habit 1, said the other way round: what falls outside the scope is not an occupational disease
    (Unit("faq-key-013 old", "新版职业病目录新增职业性精神和行为障碍类别，其中包括医疗、警察、消防救援人员的创伤后应激障碍。",
          "《职业病分类和目录》"),
     Unit("negative scope", "不符合条目限定条件的（例如非制造业人员的腕管综合征、非应急救援人员的创伤后应激障碍），"
          "法律上不属于职业病。", "《职业病防治法》第二条")),
    # habit 4: a local plan as if national
    (Unit("local practice without region", "会被重点监管。实行检测评价到期提醒、逾期通报，拒不检测评价的企业实施黑名单制度。",
          "《职业病防治法》第二十六条；《2021年秦皇岛市职业健康监管工作要点》"),
     Unit("local practice with region", "秦皇岛市2021年的工作要点实行到期提醒、逾期通报。",
          "《2021年秦皇岛市职业健康监管工作要点》")),
    (Unit("faq-duty-006 old", "要补做评价。柳南区规划提出，已在使用防护设施但未严格执行“三同时”的建设项目补做评价。",
          "《柳南区职业病防治“十四五”规划》"),
     Unit("faq-duty-006 new", "先看国家规定：防护设施要与主体工程同时设计、同时施工、同时投入使用（《职业病防治法》第十八条）。"
          "例如柳南区规划提出补做评价。", "《职业病防治法》第十八条；《柳南区职业病防治“十四五”规划》")),
    (Unit("faq-duty-032 old", "会。柳南区规划提出对新发职业病的企业实行监督执法全覆盖。", "《柳南区职业病防治“十四五”规划》"),
     Unit("faq-duty-032 new", "可能。国家层面，发现职业病病人要及时报告（《职业病防治法》第五十条）；柳南区规划提出监督执法全覆盖。",
          "《职业病防治法》第五十条；《柳南区职业病防治“十四五”规划》")),
    (Unit("faq-haz-003 old", "地方规划还在制造、建材等重点行业开展听力保护行动。", "《职业病防治法》第二十二条"),
     Unit("faq-haz-003 new", "柳南区规划在制造、建材等行业开展听力保护行动。", "《柳南区职业病防治“十四五”规划》")),
]


@pytest.mark.parametrize("old, new", OLD_AND_NEW, ids=[o.where for o, _ in OLD_AND_NEW])
def test_habit_rules_flag_old_wording_and_pass_new(old: Unit, new: Unit) -> None:
    """Each habit rule catches the wording the review found and accepts the corrected wording."""
    assert habit_problems(old), old.where
    assert habit_problems(new) == [], (new.where, habit_problems(new))


def test_number_rule_flags_an_uncited_number_only() -> None:
    """A number with no source is flagged; the same number with an article, a named document or a
    standard is not; a pointer to our own material is not a source."""
    assert uncited_numbers(Unit("x", "全天室外作业累计不得超过6小时。", ""))
    assert uncited_numbers(Unit("x", "每天4小时是88 dB(A)。", "防护知识材料《噪声与噪声聋》"))
    assert uncited_numbers(Unit("x", "可处五万元以上十万元以下的罚款。", ""))
    assert not uncited_numbers(Unit("x", "累计不得超过6小时（《防暑降温措施管理办法》第八条）。", ""))
    assert not uncited_numbers(Unit("x", "可处五万元以上十万元以下的罚款。", "《职业病防治法》第七十一条"))
    assert not uncited_numbers(Unit("x", "限值85 dB(A)（GBZ 2.2-2007）。", ""))
    assert not uncited_numbers(Unit("x", "戴好耳塞，全程佩戴。", ""))


def test_local_plan_rule_needs_the_region_in_the_text() -> None:
    """Citing a local plan is fine when the text says whose plan it is; 多地/地方规划 alone is not."""
    cite = "《2021年秦皇岛市职业健康监管工作要点》"
    assert local_plan_problems(Unit("x", "工作要点要求危害严重的项目100%核查。", cite))
    assert local_plan_problems(Unit("x", "多地把中小微企业作为帮扶重点。", ""))
    assert local_plan_problems(Unit("x", "秦皇岛市2021年工作要点要求危害严重的项目100%核查。", cite)) == []
    assert local_plan_problems(Unit("x", "广东省职业病防治院介绍电光性眼炎。", "广东省职业病防治院科普")) == []


def test_art72_rule_leaves_art71_alone() -> None:
    """Art. 71 allows a fine at once (可以并处5–10万); only the 5–20万 fine needs 逾期."""
    assert art72_problems(Unit("x", "未申报的，可处5万元以上10万元以下罚款。", "《职业病防治法》第七十一条")) == []
