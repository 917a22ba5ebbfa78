"""Aspect: among the best units that are close in score, prefer the one whose questions ask what the
user asks about the subject.

The dense model and BM25 both weigh a question's subject most (尘肺, 噪声, 职业病诊断, 工伤): the best
unit is often about the right subject but answers another aspect of it (能治好吗 for 补偿政策, 谁负总责
for 诊断负责部门), while the unit that answers it is ranked second or third. A question's *aspects* are
the groups of knowledge/dict/aspects.yaml (general words of the field that ask for one aspect:
补偿/待遇/保障, 上班/调离/安置, 部门/机构/哪里 …) with a word in its asking part once its subject words
(the topic and work-injury cue words of doors.yaml) are blanked out, and the *stage* groups (STAGES:
确诊/诊断了, 鉴定结论, 申请后: how far along a procedure the asker already is) read on the question as
typed, so that "already diagnosed, what next" is not answered with "how to get diagnosed"; its *subject words* are its
other content words. A unit matches an aspect when the questions it answers (a card's question and
variants, a section's heading) hold a word of that group. Among the first ASPECT_DEPTH units within
ASPECT_MARGIN of the best score, a unit that matches more of the question's aspects than the best
unit, and whose questions hold as much of the subject (IDF-weighted, synonyms counted) as the best
unit's, may go first: the one with the best score + ASPECT_WEIGHT × aspect share + COVER_WEIGHT ×
subject share (README "Answering").
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from bot.answering.decide import cue_words, cues_in, heat_reading, word_lists
from bot.answering.query import Query
from bot.answering.rank import Candidate, ranks_of
from bot.answering.retrieve import Retriever, UnitScores
from bot.text import MAX_FOLDERS, cached_by_folder, dict_dir, reading
from bot.text.tokenize import synonyms, tokens

ASPECT_DEPTH = 3  # the first units that may be reordered (4 and 5 measured: README "Answering")
ASPECT_MARGIN = 0.06  # … when within this much of the best score
ASPECT_WEIGHT = 0.1  # the score a unit's full match of the question's aspects is worth
COVER_WEIGHT = 0.05  # the score a unit whose questions hold every word of the question but its aspect is worth
SUBJECT_KINDS = ("oh", "oh_weak", "oh_check", "injury")  # cue words that name what a question is about
SUBJECT_SLACK = 0.0  # how much less of the subject a promoted unit's questions may hold
# aspect groups that name a stage of a procedure (already diagnosed, already appraised, already applied) →
# the group of the earlier stage a neighbouring answer stops at (suspected, the diagnosis's result, the
# deadline to apply). A stage is read on the question as typed (stages_in), since its words hold subject
# words, and counts only against a best unit whose questions name the earlier stage and not the stage
# itself; an earlier stage is never an aspect of a question (aspects_in)
STAGES = {"diagnosed": "suspected", "appraised": "diagnosis_result", "applied": "to_apply"}
# words of cold and of heat: a question about one is never answered by a unit about the other (the dense model
# puts 低温 next to 高温: "低温环境下上班要注意什么" was answered with the heat-stroke tips); `by_opposite`
COLD_WORDS = ("低温", "寒冷", "严寒", "冷库", "冻伤", "冻疮", "冻僵", "冰冻", "天冷", "很冷", "太冷", "冷水作业", "制冷剂",
              "温度很低", "温度低", "温度太低")
HEAT_WORDS = ("高温", "中暑", "防暑", "炎热", "酷暑", "天热", "很热", "太热", "热射病", "温度很高", "温度高", "温度太高")
# aspects whose units answer only that aspect, so that a best unit asking one the question does not ask is
# answering another question (`by_unasked`); every aspect group was measured: 9 correct answers lost. Whether
# a disease passes to others or to one's children (`contagion`: 尘肺病有传染性吗) answers only that (session 14, coverage pass)
UNASKED_ASPECTS = ("cure", "contagion")
MIN_WORD = 2  # shorter tokens (病, 人, 能) name nothing on their own
# a temperature of 30–60 in digits or in words (四十, 三十七八); in a unit's questions only where they speak of
# degrees (度, ℃ → °c after normalising, 气温)
DIGITS = re.compile(r"(?<![\d.])[3-6]\d(?:\.\d)?(?![\d])")
WORDS = re.compile(r"([三四五六])十([一二三四五六七八九]{0,2})")
CHINESE_DIGITS = {d: i for i, d in enumerate("一二三四五六七八九", start=1)}
DEGREE_WORDS = ("度", "°c", "气温")


def aspect_groups() -> dict[str, tuple[str, ...]]:
    """The aspect groups of aspects.yaml: name → its words."""
    return word_lists("aspects.yaml")


def subject_words() -> tuple[str, ...]:
    """The cue words that name a question's subject (SUBJECT_KINDS of doors.yaml), longest first."""
    return _subject_words(dict_dir())


@lru_cache(maxsize=MAX_FOLDERS)
def _subject_words(folder: Path) -> tuple[str, ...]:
    """subject_words of one dictionary folder, gathered and sorted once (read on every question)."""
    with reading(folder):
        words = cue_words()
    return tuple(sorted(dict.fromkeys(w for kind in SUBJECT_KINDS for w in words.get(kind, ())), key=len, reverse=True))


cached_by_folder(_subject_words.cache_clear)


def without_subject(text: str) -> str:
    """The normalised text with its subject words blanked out: what it asks about them."""
    return _without_subject(dict_dir(), text)


@lru_cache(maxsize=4096)
def _without_subject(folder: Path, text: str) -> str:
    """without_subject with the subject words of `folder` (cached: one question's asking part and its units'
    questions are read several times per answer, each time through a few hundred words)."""
    for w in _subject_words(folder):
        text = text.replace(w, " ")
    return text


cached_by_folder(_without_subject.cache_clear)


def aspects_in(text: str) -> set[str]:
    """The aspect groups that have a word in a (normalised) text (never an earlier stage's group: STAGES)."""
    earlier = set(STAGES.values())
    return {name for name in aspect_groups() if name not in earlier and named_in(name, text)}


def named_in(name: str, text: str) -> bool:
    """Whether a (normalised) text holds a word of one aspect group."""
    return any(w in text for w in aspect_groups().get(name, ()))


def stages_in(text: str) -> set[str]:
    """The stage groups (STAGES: how far along its procedure the asker is) that a question's normalised
    asking text names. Their words hold subject words (诊断了, 鉴定结论) or straddle them (申请工伤后 is
    申请…后), so they are read on the text as typed and on the text with its subject words taken out,
    not on the blanked text the other aspects are read on."""
    squeezed = "".join(without_subject(text).split())
    return {name for name in STAGES if named_in(name, text) or named_in(name, squeezed)}


def coverage(words: list[str], weights: list[float], questions: str) -> float:
    """0–1: the weighted share of `words` found in `questions`, each by itself or by one of the
    documents' terms it stands for (synonyms.yaml: 矽肺 → 尘肺)."""
    total = sum(weights)
    table = synonyms()
    found = sum(w for t, w in zip(words, weights) if t in questions or any(s in questions for s in table.get(t, ())))
    return found / total if total > 0 else 0.0


def asked_aspects(query: Query) -> set[str]:
    """The aspect groups the asking part of a question (Query.focus) asks, read with its subject words blanked
    out, and its stages."""
    asking = query.focus or query.normalized
    return (aspects_in(without_subject(asking)) - set(STAGES)) | stages_in(asking)


def asked_and_rest(retriever: Retriever, query: Query) -> tuple[set[str], list[str], list[float]]:
    """What the asking part of a question (Query.focus) asks: its aspect groups (asked_aspects), the rest of
    its words (MIN_WORD characters or more, none of them an aspect word) and their IDF weights (1 for a word
    the index does not know)."""
    asking = query.focus or query.normalized
    asked = asked_aspects(query)
    groups = aspect_groups()
    words = [t for t in dict.fromkeys(tokens(asking)) if len(t) >= MIN_WORD]
    rest = [t for t in words if not any(t in w or w in t for name in asked for w in groups[name])]
    return asked, rest, [retriever.idf(t) or 1.0 for t in rest]


def with_ranks(candidate: Candidate, scores: UnitScores | None) -> Candidate:
    """A unit a re-ranker puts first, with its ranks by each measurement recorded (the confidence reads
    them; `rank` records them for its first RANKED_ALONE units only)."""
    if scores is not None and not candidate.ranks:
        candidate.ranks = ranks_of(scores, candidate.position)
    return candidate


def by_aspect(retriever: Retriever, query: Query, ranked: list[Candidate],
              scores: UnitScores | None = None) -> list[Candidate]:
    """The ranking with the unit that best matches the question's aspect first, when it is among
    the first ASPECT_DEPTH units, within ASPECT_MARGIN of the best score, its questions name more of
    the question's aspects than the best unit's and hold as much of the rest of the question (its
    subject: 培训, 尘肺 …) as the best unit's do. Among such units the one with the best score +
    ASPECT_WEIGHT × its share of the aspects + COVER_WEIGHT × its questions' share of the subject's
    words goes first. Read on the asking part of the question (Query.focus); unchanged when it names
    no aspect or the best unit is an exact card match. `scores`: the question's unit scores, to
    record the promoted unit's ranks (the confidence reads them)."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    asked, rest, rest_weights = asked_and_rest(retriever, query)
    # a stage counts only against a best unit that stops at its earlier stage (疑似 for an already
    # diagnosed worker), so that a unit naming the stage is not promoted over one that merely omits it
    first = retriever.unit_questions(ranked[0].position)
    asked = {a for a in asked if a not in STAGES or (named_in(STAGES[a], first) and not named_in(a, first))}
    if not asked:
        return ranked
    head = ranked[0].score
    value: dict[int, float] = {}
    share: dict[int, float] = {}
    subject: dict[int, float] = {}
    for c in ranked[:ASPECT_DEPTH]:
        if head - c.score > ASPECT_MARGIN:
            continue
        questions = retriever.unit_questions(c.position)
        share[c.position] = len(asked & aspects_in(questions)) / len(asked)
        subject[c.position] = coverage(rest, rest_weights, questions)
        value[c.position] = c.score + ASPECT_WEIGHT * share[c.position] + COVER_WEIGHT * subject[c.position]
    top = ranked[0].position
    allowed = [c for c in ranked if c.position in value and (c.position == top or (
        share[c.position] > share[top] and subject[c.position] >= subject[top] - SUBJECT_SLACK))]
    best = max(allowed, key=lambda c: value[c.position])
    if best.position == top:
        return ranked
    return [with_ranks(best, scores)] + [c for c in ranked if c is not best]


def degrees(text: str) -> list[float]:
    """The temperatures of 30–60 a normalised text names, in its order: 40度 → 40, 38.5°c → 38.5, 三十七八度 → 37.5
    (two units named: their mean), 四十 → 40. Empty when the text does not speak of degrees."""
    if not any(w in text for w in DEGREE_WORDS):
        return []
    found = [(m.start(), float(m.group(0))) for m in DIGITS.finditer(text)]
    for m in WORDS.finditer(text):
        units = [CHINESE_DIGITS[u] for u in m.group(2)] or [0]
        found.append((m.start(), 10 * CHINESE_DIGITS[m.group(1)] + sum(units) / len(units)))
    return [t for _, t in sorted(found)]


def fits(temperature: float, named: list[float]) -> bool | None:
    """Whether a temperature falls in what a unit's questions name (《防暑降温措施管理办法》第八条 grades by "X℃以上、
    Y℃以下"): from the lowest named to below the highest when they name two or more ("37℃到40℃之间（38℃、39℃）"),
    that one or above when one ("40℃了还让在外面干活"); None when they name none."""
    if not named:
        return None
    low, high = min(named), max(named)
    return low <= temperature < high if high > low else temperature >= low


def by_temperature(retriever: Retriever, query: Query, ranked: list[Candidate],
                   scores: UnitScores | None = None) -> list[Candidate]:
    """For a question that names a temperature at work or in the weather (decide.heat_reading: "工地39度"): when
    the best unit's questions name a temperature grade it does not fall in (the 40 ℃ rule for 39度), the first unit
    among the first ASPECT_DEPTH within ASPECT_MARGIN of the best score whose questions name a grade it falls in
    goes first. Unchanged when the best unit names no temperature or fits, or is an exact card match.
    `scores`: as for by_aspect (the promoted unit's ranks, read by the confidence)."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    heat = heat_reading(query.normalized, cues_in(query.normalized))
    named = degrees(heat) if heat else []
    if not named or fits(named[0], degrees(retriever.unit_questions(ranked[0].position))) is not False:
        return ranked
    head = ranked[0].score
    for c in ranked[1:ASPECT_DEPTH]:
        if head - c.score <= ASPECT_MARGIN and fits(named[0], degrees(retriever.unit_questions(c.position))):
            return [with_ranks(c, scores)] + [u for u in ranked if u is not c]
    return ranked


def climate(text: str) -> str | None:
    """"cold" or "heat" when a (normalised) text names one of them and not the other, else None."""
    cold, heat = any(w in text for w in COLD_WORDS), any(w in text for w in HEAT_WORDS)
    return "cold" if cold and not heat else "heat" if heat and not cold else None


def after_the_others(ranked: list[Candidate], against: list[bool], scores: UnitScores | None) -> list[Candidate]:
    """The ranking with the units that contradict the question (`against`, one flag per unit) after all the others,
    each group in its order; unchanged when the best unit does not contradict it or every unit does. The unit
    that then leads has its ranks recorded (`with_ranks`: the confidence reads them)."""
    if not against[0]:
        return ranked
    kept = [c for c, a in zip(ranked, against) if not a]
    if not kept:
        return ranked
    return [with_ranks(kept[0], scores)] + kept[1:] + [c for c, a in zip(ranked, against) if a]


def by_opposite(retriever: Retriever, query: Query, ranked: list[Candidate],
                scores: UnitScores | None = None) -> list[Candidate]:
    """A question about cold work (低温, 冷库, 冻伤) is not answered from a unit about heat (高温, 中暑), nor
    the other way round: units whose questions name only the opposite climate go after all the others, so
    the best unit that does not contradict the question leads (its confidence decides whether it is
    shown). Unchanged when the question names neither or both, or the best unit does not contradict it.
    `scores`: as for by_aspect (the promoted unit's ranks, read by the confidence)."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    asked = climate(query.normalized)
    if asked is None:
        return ranked
    opposite = {"cold": "heat", "heat": "cold"}[asked]
    return after_the_others(ranked, [climate(retriever.unit_questions(c.position)) == opposite for c in ranked], scores)


def names_of(file: str) -> tuple[tuple[str, str], ...]:
    """Every name of a word-list file of named things (agents.yaml, trades.yaml: key → its names) with its key,
    longest first."""
    return _names_of(dict_dir(), file)


@lru_cache(maxsize=MAX_FOLDERS * 2)
def _names_of(folder: Path, file: str) -> tuple[tuple[str, str], ...]:
    """names_of one file of one dictionary folder, gathered and sorted once (read for every ranked unit)."""
    with reading(folder):
        table = word_lists(file)
    return tuple(sorted(((n, key) for key, names in table.items() for n in names), key=lambda x: len(x[0]),
                        reverse=True))


cached_by_folder(_names_of.cache_clear)


def keys_named(file: str, text: str) -> set[str]:
    """The things of one word-list file of named things (agents.yaml, trades.yaml, dusts.yaml) a (normalised) text
    names, each once however it is named; a name inside a longer one is read as the longer one only (苯 in 甲苯)."""
    found = set()
    for name, key in names_of(file):
        if name in text:
            found.add(key)
            text = text.replace(name, " ")
    return found


def agents_in(text: str) -> set[str]:
    """The named hazards a (normalised) text names, each once however it is named (汞, 水银); 苯 inside 甲苯
    is 甲苯 only, 苯 beside 甲苯 (“苯、甲苯”) is both."""
    return keys_named("agents.yaml", text)


def by_agent(retriever: Retriever, query: Query, ranked: list[Candidate],
             scores: UnitScores | None = None) -> list[Candidate]:
    """A question that names a hazard (agents.yaml: 汞, 氯气, 噪声 …) is not answered from a unit whose
    questions name other hazards and not it (the dense model puts 汞中毒 next to 苯中毒, 氯气 next to 苯): such
    units go after all the others, so the best unit that names the asked hazard, or none, leads (its
    confidence decides whether it is shown). Unchanged when the question names none or the best unit does not
    contradict it, or is an exact card match. `scores`: as for by_aspect."""
    return not_about_others(retriever, query, ranked, scores, agents_in)


def not_about_others(retriever: Retriever, query: Query, ranked: list[Candidate], scores: UnitScores | None,
                     names_in: Callable[[str], set[str]]) -> list[Candidate]:
    """The ranking with the units whose questions name things of one kind (`names_in`: hazards, trades) other
    than the question's and not its own after all the others (`after_the_others`); unchanged when the question
    names none, or for an exact card match."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    asked = names_in(query.normalized)
    if not asked:
        return ranked
    named = [names_in(retriever.unit_questions(c.position)) for c in ranked]
    return after_the_others(ranked, [bool(n) and not (n & asked) for n in named], scores)


def by_unasked(retriever: Retriever, query: Query, ranked: list[Candidate],
               scores: UnitScores | None = None) -> list[Candidate]:
    """A best unit whose questions ask an aspect of UNASKED_ASPECTS (can it be cured) that the question does
    not ask, and none that it asks, gives way to the first unit among the first ASPECT_DEPTH within
    ASPECT_MARGIN of its score that asks fewer of them and whose questions hold as much of the rest of the
    question: "做装修打磨会不会得尘肺" is not answered with "尘肺病能治好吗" (the dense model puts the cure card
    next to every question on a disease). Unchanged for an exact card match. `scores`: as for by_aspect."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    asked, rest, rest_weights = asked_and_rest(retriever, query)  # its stages included

    def unasked(questions: str) -> set[str]:
        """The aspects of UNASKED_ASPECTS a unit's questions ask that the question does not."""
        return (aspects_in(without_subject(questions)) & set(UNASKED_ASPECTS)) - asked

    top_questions = retriever.unit_questions(ranked[0].position)
    top_aspects = aspects_in(without_subject(top_questions))
    first = (top_aspects & set(UNASKED_ASPECTS)) - asked
    if not first or asked & top_aspects:
        return ranked
    cover = coverage(rest, rest_weights, top_questions)
    for c in ranked[1:ASPECT_DEPTH]:
        questions = retriever.unit_questions(c.position)
        if ranked[0].score - c.score <= ASPECT_MARGIN and len(unasked(questions)) < len(first) and \
                coverage(rest, rest_weights, questions) >= cover:
            return [with_ranks(c, scores)] + [u for u in ranked if u is not c]
    return ranked


TRADE_DEPTH = 10  # the units searched for one whose questions name the asked trade
NOT_PLAIN_HARM = ("maternity", "minor", "child")  # cue kinds that make a harm question someone's (pregnancy, a minor's)


def trade_names() -> tuple[tuple[str, str], ...]:
    """Every name of the trades of trades.yaml with its trade, longest first."""
    return names_of("trades.yaml")


def trades_in(text: str) -> set[str]:
    """The trades a (normalised) text names."""
    return {trade for name, trade in trade_names() if name in text}


def asks_harm(text: str) -> bool:
    """Whether a (normalised) text holds a word that asks what work does to the body (harm.yaml)."""
    return any(w in text for w in word_lists("harm.yaml").get("harm", ()))


def named_hazards(text: str) -> set[str]:
    """The hazards and diseases a (normalised) text names: its agents (agents.yaml) and the disease words of
    doors.yaml's oh_field that are not the field's own words (尘肺, 矽肺; not 职业病, 职业危害)."""
    diseases = {w for w in cue_words().get("oh_field", ()) if not w.startswith("职业") and w in text}
    return agents_in(text) | diseases


def by_trade(retriever: Retriever, query: Query, ranked: list[Candidate],
             scores: UnitScores | None = None) -> list[Candidate]:
    """A question that names a trade (trades.yaml: 钣金, 电镀, 矿工 …) and asks only what the work does to the
    body (harm.yaml, and no aspect of aspects.yaml, no pregnancy or minor) is answered from the first of the
    best TRADE_DEPTH units whose questions name that trade, ask about harm or name the question's other
    hazards (尘肺, 锰: named_hazards), and name one of those when the question names any ("木工容易得尘肺吗" is
    not answered from the woodworking section that does not speak of 尘肺). That unit's match counts as full
    agreement in the confidence (Candidate.named). Unchanged for an exact card match."""
    if len(ranked) < 2 or ranked[0].exact:
        return ranked
    asking = query.focus or query.normalized
    asked = trades_in(query.normalized)
    # 上班 is the `working` aspect ("还能上班吗") but, beside a trade, says where the worker is ("在电镀厂上班有害吗")
    if not asked or not asks_harm(asking) or aspects_in(without_subject(asking).replace("上班", " ")):
        return ranked
    if any(cues_in(query.normalized).get(kind) for kind in NOT_PLAIN_HARM):
        return ranked
    own = named_hazards(query.normalized)
    for c in ranked[:TRADE_DEPTH]:
        questions = retriever.unit_questions(c.position)
        shared = bool(own & named_hazards(questions))
        if trades_in(questions) & asked and (shared if own else asks_harm(questions)):
            c.named = True
            return [with_ranks(c, scores)] + [u for u in ranked if u is not c]
    return ranked


# word lists of specific subjects, each a kind of its own: an answer naming one thing of a list is about it (other_subject)
SUBJECT_LISTS = ("agents.yaml", "trades.yaml", "dusts.yaml")


def other_subject(question: str, questions: str, verdict: str) -> str | None:
    """The one other subject an answer is about, when the question names a subject of a list of SUBJECT_LISTS (a
    hazard, a trade, a kind of dust) and the unit's questions with the verdict shown, or the verdict alone, name
    exactly one thing of that list and not the asked one (a question on 铜粉 answered with the verdict "铝粉尘可引起
    铝尘肺"). A text that names none is general (有没有害要看岗位 …), one that names several is a list: neither is
    about another subject. None when there is no such subject. Its confidence is capped (decide.OTHER_SUBJECT):
    by_agent and by_other_trade re-rank such units but leave the best one when every unit is of that kind, and read
    only the units' questions, not the verdict shown. `question`, `questions`, `verdict`: normalised."""
    for file in SUBJECT_LISTS:
        asked = keys_named(file, question)
        if not asked:
            continue
        for text in (questions + " " + verdict, verdict):
            named = keys_named(file, text)
            if len(named) == 1 and not named & asked:
                return next(iter(named))
    return None


# the word lists of named hazards whose units a question naming one of them prefers to a general unit (by_named)
HAZARD_LISTS = ("agents.yaml", "dusts.yaml")


def hazards_in(text: str) -> set[str]:
    """The hazards and kinds of dust a (normalised) text names (HAZARD_LISTS), as "file:key"."""
    return {f"{file}:{key}" for file in HAZARD_LISTS for key in keys_named(file, text)}


def by_named(retriever: Retriever, query: Query, ranked: list[Candidate],
             scores: UnitScores | None = None) -> list[Candidate]:
    """A question that names a hazard (agents.yaml, dusts.yaml: 噪声, 苯, 煤尘 …) is answered from a close unit whose
    questions name it rather than from a general one whose questions name no hazard at all: when the best unit's
    questions name none (nor the question's trade), the first of the next ASPECT_DEPTH − 1 units within
    ASPECT_MARGIN of its score whose questions name one of the question's hazards, and hold as much of the rest
    of the question as the best unit's (coverage: 怀孕 in a question on radiation and pregnancy), goes first (a question on
    what a noise worker's check covers was answered with the kinds of check in general, the unit listing the noise
    check's items second). by_agent handles a best unit
    naming another hazard. Unchanged when the question names none, or for an exact card match or a trade's own
    section (Candidate.named). `scores`: as for by_aspect."""
    if len(ranked) < 2 or ranked[0].exact or ranked[0].named:
        return ranked
    asked = hazards_in(query.normalized)
    first = retriever.unit_questions(ranked[0].position)
    # a best unit naming a hazard (by_agent's matter) or the question's trade (装修) is not a general one
    if not asked or hazards_in(first) or trades_in(first) & trades_in(query.normalized):
        return ranked
    _, rest, rest_weights = asked_and_rest(retriever, query)
    cover = coverage(rest, rest_weights, first)
    for c in ranked[1:ASPECT_DEPTH]:
        questions = retriever.unit_questions(c.position)
        if ranked[0].score - c.score <= ASPECT_MARGIN and hazards_in(questions) & asked and \
                coverage(rest, rest_weights, questions) >= cover - SUBJECT_SLACK:
            return [with_ranks(c, scores)] + [u for u in ranked if u is not c]
    return ranked


def by_other_trade(retriever: Retriever, query: Query, ranked: list[Candidate],
                   scores: UnitScores | None = None) -> list[Candidate]:
    """A question that names a trade (trades.yaml) is not answered from a unit whose questions name other trades
    and not it (the dense model puts 锂电池 next to 铅酸蓄电池): such units go after all the others, as by_agent
    does for hazards. Unchanged when the question names none, or for an exact card match."""
    return not_about_others(retriever, query, ranked, scores, trades_in)
