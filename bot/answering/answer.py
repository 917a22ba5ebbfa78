"""Grounded answers, in five stages read top to bottom:

analyse (query.py: the question once) → retrieve (retrieve.py: every unit scored) → rank (rank.py:
cards, sections and table rows in one ranking) → decide (decide.py: answer, refer or refuse) →
compose (compose.py: a verdict, ~150 characters of detail, the source line). A question that asks
several things (query.asking_parts) also has each part read through the stages; when two parts are
answered by different units, the answer gives each part's verdict and its share of the detail.

Nothing in an answer is text that is not in the knowledge base, apart from fixed phrases (the
door texts, the review note, the plan's owner).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from bot.answering.aspect import (
    asked_aspects,
    by_agent,
    by_aspect,
    by_named,
    by_opposite,
    by_other_trade,
    by_temperature,
    by_trade,
    by_unasked,
    named_in,
    other_subject,
)
from bot.answering.catalogue import Catalogue, Lookup, named_verdict, unlisted_verdict
from bot.answering.compose import (
    BARE_VERDICT_MATCH,
    DETAIL_CHARS,
    DRAFT_NOTE,
    Composed,
    compose,
    needs_review_note,
    sentences,
    source_line,
)
from bot.answering.decide import (
    DOOR_NOTES,
    QUALIFIERS,
    REFUSAL,
    THRESHOLD,
    Decision,
    cues_in,
    decide,
    door_text,
    leans_on,
)
from bot.answering.query import Query, analyse, asking_parts, is_follow_up, outermost
from bot.answering.rank import Candidate, rank, ranks_of
from bot.answering.retrieve import Passage, Retriever, UnitScores, in_its_dictionaries
from bot.text.normalize import normalize
from bot.text.regions import is_local, provinces_named

__all__ = ["Answer", "REFUSAL", "DRAFT_NOTE", "answer", "answer_query"]

RELATED = 3  # other cards offered as buttons under an answer
MAX_PARTS = 3  # parts of a question that asks several things answered in one answer
# … each at least this confident (below THRESHOLD only with a topic of its own, and when the parts' mean
# reaches THRESHOLD): measured on real-a..d, README "Answering"
PART_FLOOR = 0.47
LOOKUP_CONFIDENCE = 0.9  # a disease found in (or missing from) the catalogue's own list: a lookup, not a guess
# words by which a question that names a province asks for that province's own figure or standard (besides the
# amount kind of Query.asks): a province's heat-allowance 标准 is not answered by the national rule that leaves it
# to the provinces
LOCAL_FIGURE_WORDS = ("标准",)
# aspects (knowledge/dict/aspects.yaml) a best unit must name, in its questions or its text, to answer a question
# that asks them; measured (session 16) one by one: `unfit` alone moved a wrong answer to a refusal and nothing
# else, while contagion, penalty, frequency, items, cure, cost or every aspect cost right answers (stories that
# name an aspect in passing)
CAPPED_ASPECTS = frozenset({"unfit"})


@dataclass
class Answer:
    """One answer as the user sees it, and what it was made from."""
    question: str
    text: str
    found: bool  # an occupational-health answer was shown
    confidence: float
    passages: list[Passage] = field(default_factory=list)
    faq_id: str | None = None
    related: list[tuple[str, str]] = field(default_factory=list)  # (faq_id, question)
    decision: str = "refuse"  # answer | refer | refuse
    door: str | None = None  # labour | medical | injury | injury_cost | environment | product | safety | civil, for a referral
    more_id: int | None = None  # chunk id whose full section "更多" shows
    follow_up_of: str | None = None  # the previous question this one was read with
    draft: str = ""  # the best occupational-health answer, also when it is not shown (evaluation)

    def as_json(self) -> dict:
        """The object `ohbot ask --json` prints."""
        return {
            "question": self.question, "answer": self.text, "found": self.found,
            "decision": self.decision, "door": self.door,
            "confidence": round(self.confidence, 4),
            "passages": [{k: v for k, v in p.as_json().items() if k != "doc_id"} for p in self.passages],
            "faq_id": self.faq_id,
        }


def to_passage(c: Candidate) -> Passage:
    """A ranked unit in the retriever's Passage form (JSON output, evaluation)."""
    return Passage(chunk=c.chunk, doc=c.doc, score=c.score, bm25=c.bm25, dense=c.dense)


@in_its_dictionaries
def answer(retriever: Retriever, question: str, role: str | None = None, region: str | None = None,
           context: str | None = None, top_k: int = 3) -> Answer:
    """Answer one question (already checked for length and emptiness by the dialogue); `context`
    is the same user's previous question, used when this one is a follow-up."""
    follow_up = bool(context) and (is_follow_up(question) or leans_on(question, context or ""))
    query = analyse(question, retriever.encode, context=context, role=role, region=region, follow_up=follow_up)
    return answer_query(retriever, query, top_k)


_CATALOGUES: weakref.WeakKeyDictionary[Retriever, Catalogue] = weakref.WeakKeyDictionary()


def catalogue_of(retriever: Retriever) -> Catalogue:
    """The catalogue sections of this retriever's index (made once per retriever)."""
    catalogue = _CATALOGUES.get(retriever)
    if catalogue is None:
        catalogue = _CATALOGUES[retriever] = Catalogue(retriever)
    return catalogue


@dataclass
class Reading:
    """One reading of a question through the stages: its ranking, the best unit's composed answer
    and the decision on it."""
    query: Query
    scores: UnitScores
    ranked: list[Candidate]
    composed: Composed | None
    decision: Decision


def read(retriever: Retriever, query: Query, threshold: float | None = None) -> Reading:
    """Retrieve, rank, compose the best unit and decide, for one analysed question."""
    scores = retriever.unit_scores(query)
    ranked = by_aspect(retriever, query, rank(retriever, query, scores, top_k=10), scores)
    ranked = by_temperature(retriever, query, ranked, scores)
    ranked = by_opposite(retriever, query, ranked, scores)
    ranked = by_agent(retriever, query, ranked, scores)
    ranked = by_other_trade(retriever, query, ranked, scores)
    ranked = by_unasked(retriever, query, ranked, scores)
    ranked = by_trade(retriever, query, ranked, scores)
    ranked = by_named(retriever, query, ranked, scores)
    if ranked and tells_story(query):  # how the three measurements rank the best unit for what is asked
        alone = analyse(query.focus, retriever.encode, role=query.role, region=query.region)
        ranked[0].focus_ranks = ranks_of(retriever.unit_scores(alone), ranked[0].position)
    # the best unit's answer is composed before deciding: whether its verdict holds an answer of the
    # asked kind is one of the confidence's features
    composed = compose(retriever, query, ranked[0], None, ranked[1:]) if ranked else None
    verdict = composed.verdict if composed else None
    other = bool(ranked) and answers_another_question(retriever, query, ranked[0], verdict or "")
    decision = decide(query, ranked, retriever.vocab, threshold, verdict, other)
    return Reading(query, scores, ranked, composed, decision)


def answers_another_question(retriever: Retriever, query: Query, top: Candidate, verdict: str) -> bool:
    """Whether the best unit, with the `verdict` composed from it, answers another question than the one asked,
    so that its confidence is capped (decide: `other_subject`): another province's figure (unheld_province), or,
    unless it is a trade's own section (by_trade: Candidate.named), another hazard, trade or kind of dust
    (about_other) or not the asked aspect (unanswered_aspect). Never a reviewed card typed as it stands."""
    if top.exact:
        return False
    if unheld_province(retriever, query, top):
        return True
    return not top.named and (about_other(retriever, query, top, verdict) or unanswered_aspect(retriever, query, top))


def about_other(retriever: Retriever, query: Query, top: Candidate, verdict: str) -> bool:
    """Whether the best unit and the verdict composed from it are about another hazard, trade or kind of dust than
    the one the question names (aspect.other_subject)."""
    return other_subject(query.normalized, retriever.unit_questions(top.position), normalize(verdict)) is not None


def unheld_province(retriever: Retriever, query: Query, top: Candidate) -> bool:
    """Whether the question asks a province's own figure or standard (the amount kind, or LOCAL_FIGURE_WORDS) and
    the best unit is not that province's (neither from its document nor naming it): our national texts leave such
    figures to each province (高温津贴, 《防暑降温措施管理办法》第十七条), so the answer would be another
    jurisdiction's rule."""
    asked = provinces_named(query.focus or query.normalized)
    if not asked or not (query.asks == "amount" or any(w in query.normalized for w in LOCAL_FIGURE_WORDS)):
        return False
    # the best unit is that province's when its document is from there or its text names it (广东's own rules
    # set out in the heat material)
    own = provinces_named(str(top.doc.get("region") or "")) if is_local(top.doc.get("region")) else set()
    return not asked & (own | provinces_named(top.chunk.text + retriever.unit_questions(top.position)))


def unanswered_aspect(retriever: Retriever, query: Query, top: Candidate) -> bool:
    """Whether the question asks an aspect of CAPPED_ASPECTS (aspects.yaml) that the best unit neither asks nor
    says: "who must not do this work" answered from a unit on how to prevent the disease, whose text names no
    禁忌 / 不宜 / 不适合, is a neighbouring answer, not a partial one."""
    wanted = asked_aspects(query) & CAPPED_ASPECTS
    if not wanted:
        return False
    text = normalize(top.chunk.text) + retriever.unit_questions(top.position)
    return any(not named_in(a, text) for a in wanted)


def tells_story(query: Query) -> bool:
    """A question that tells a story before it asks (its asking part, Query.focus, is not all of it): the
    story's words pull BM25 and the dense match toward units about its details, so the best unit's agreement
    is also read on the asking part alone (decide.features)."""
    return not query.is_follow_up and bool(query.focus) and query.focus != query.normalized


def topic_words(question: str) -> list[str]:
    """The cue words of doors.yaml a question names (its topic and situation: 粉尘, 尘肺, 劳动合同 …; not
    the words that only place it at work or qualify another word: decide.QUALIFIERS), none inside another, in the order the question names them."""
    text = normalize(question)
    found = {w for kind, words in cues_in(text).items() if kind not in QUALIFIERS for w in words}
    return sorted(outermost(found), key=text.index)


def with_topic(text: str, topic: list[str]) -> str:
    """What a part of a question is read as: the part itself when it names a topic word of the question,
    else the question's topic words and the part (it leans on the rest: "我该怎么办？", "费用谁负担？")."""
    own = normalize(text)
    return text if any(w in own for w in topic) else " ".join([*topic, text])


def part_readings(retriever: Retriever, query: Query, threshold: float | None = None) -> list[Reading]:
    """For a question that asks two or more things (query.asking_parts): each part read on its own
    (led by the question's topic words it lacks), kept when it is answered (or, with a topic of its
    own, at least PART_FLOOR confident) by a unit that no earlier part's answer uses; at most MAX_PARTS.
    Empty when fewer than two remain or their mean confidence is below the threshold."""
    parts = asking_parts(query.original)
    if len(parts) < 2:
        return []
    topic = topic_words(query.original)
    kept: list[Reading] = []
    for part in parts:
        text = with_topic(part, topic)
        reading = read(retriever, analyse(text, retriever.encode, role=query.role, region=query.region), threshold)
        # a part with a topic of its own may stand below the threshold when the parts together reach it;
        # one read with the question's topic words ("我该怎么维护自己权益？") is read less surely
        floor = reading.decision.kind == "refuse" and reading.decision.confidence >= PART_FLOOR and text == part
        if not reading.ranked or not (reading.decision.kind == "answer" or floor):
            continue
        if any(reading.ranked[0].position == k.ranked[0].position for k in kept):
            continue
        kept.append(reading)
    kept = kept[:MAX_PARTS]
    needed = THRESHOLD if threshold is None else threshold
    if len(kept) < 2 or sum(r.decision.confidence for r in kept) / len(kept) < needed:
        return []
    return kept


def asks_as_one(ranked: list[Candidate]) -> bool:
    """Whether the best unit's own question is the user's (a reviewed card typed as it stands, or a
    paraphrase of a question it answers: BARE_VERDICT_MATCH, compose.py): a heading that asks two things
    ("不服怎么办？可以申请再鉴定吗？") answers both."""
    return bool(ranked) and (ranked[0].exact or ranked[0].q_dense >= BARE_VERDICT_MATCH)


def compose_parts(retriever: Retriever, readings: list[Reading], notes: list[str]) -> tuple[str, bool]:
    """One answer to a question that asks several things: each part's verdict and detail (the detail's
    length shared between the parts), the review note when any of them is draft text, the notes (the
    work-injury door's line when there are none and a part sends the worker to 工伤保险: injury_note), one
    source line naming every unit shown; and whether "更多" has more (of the first part's unit)."""
    limit = DETAIL_CHARS // len(readings)
    lines, sources, draft, more = [], [], False, False
    for i, r in enumerate(readings):
        top = r.ranked[0]
        composed = compose(retriever, r.query, top, None, r.ranked[1:], limit, more_hint=i == 0)
        lines.append(composed.verdict + composed.detail)
        draft = draft or needs_review_note(top, composed)
        more = more or (i == 0 and composed.more)
        sources += unit_sources(top, composed)
    notes = notes or injury_note("\n".join(lines))
    return "\n".join(lines + ([DRAFT_NOTE] if draft else []) + notes) + f"\n\n来源：{joined(sources)}", more


@in_its_dictionaries
def answer_query(retriever: Retriever, query: Query, top_k: int = 3, threshold: float | None = None) -> Answer:
    """The stages after analysis, for an already analysed question."""
    if not query.normalized:
        return Answer(query.original, REFUSAL, False, 0.0)
    main = read(retriever, query, threshold)
    scores, ranked, composed, decision = main.scores, main.ranked, main.composed, main.decision
    lookup = catalogue_of(retriever).lookup(query) if decision.kind != "refer" or decision.cues.get("oh") else None
    verdict, extra = None, []
    if lookup is not None and lookup.section is not None:
        ranked = promote(retriever, ranked, lookup.section, scores)
        decision = Decision("answer", max(decision.confidence, LOOKUP_CONFIDENCE), None, decision.notes, decision.cues)
        if not lookup.listed:
            verdict, extra = unlisted_verdict(lookup.name), nearest_line(retriever, lookup)
        elif lookup.known_as:  # asked by a name workers use: which entry it is, then the section
            verdict = named_verdict(lookup.known_as)
        composed = None  # another unit or verdict: composed again
    elif decision.kind != "refer" and not query.is_follow_up and not asks_as_one(ranked):
        parts = part_readings(retriever, query, threshold)
        if parts:  # a question that asks several things, each answered by its own unit
            draft, more = compose_parts(retriever, parts, decision.notes)
            confidence = sum(r.decision.confidence for r in parts) / len(parts)
            top = parts[0].ranked[0]
            shown = [to_passage(r.ranked[0]) for r in parts][:top_k]
            return Answer(query.original, draft, True, confidence, shown, top.chunk.faq_id, [],
                          "answer", None, top.chunk.id if more else None, query.context, draft)
    shown = [to_passage(c) for c in ranked[:top_k]]
    draft, more = (compose_answer(retriever, query, ranked[0], extra + decision.notes, verdict, ranked[1:], composed)
                   if ranked else ("", False))
    if decision.kind != "answer":
        return refusal_or_referral(query, decision, shown, draft)
    top = ranked[0]
    related = [(c.chunk.faq_id, c.chunk.section[0]) for c in ranked[1:]
               if c.is_card and c.chunk.faq_id and c.chunk.faq_id != top.chunk.faq_id][:RELATED]
    return Answer(query.original, draft, True, decision.confidence, shown, top.chunk.faq_id, related,
                  "answer", None, top.chunk.id if more else None, query.context, draft)


def promote(retriever: Retriever, ranked: list[Candidate], position: int, scores: UnitScores) -> list[Candidate]:
    """The ranking with the unit at `position` first (a catalogue lookup's section)."""
    chosen = next((c for c in ranked if c.position == position), None)
    if chosen is None:
        chunk = retriever.chunks[position]
        chosen = Candidate(position, chunk, retriever.docs.get(chunk.doc_id, {}), ranked[0].score if ranked else 0.0,
                           float(scores.dense[position]), float(scores.q_dense[position]), 0.0, 0.0)
    return [chosen] + [c for c in ranked if c.position != position]


def nearest_line(retriever: Retriever, lookup: Lookup) -> list[str]:
    """For a disease the list does not name: the closest category of the list, as a pointer."""
    if lookup.nearest is None:
        return []
    chunk = retriever.chunks[lookup.nearest]
    # the sentence that names the category and its diseases (“职业性皮肤病”类共9种：…), else the heading
    named = [s for s in sentences(chunk.text) if "类" in s]
    return [f"目录中相近的类别：{named[0] if named else chunk.section[-1]}"]


def compose_answer(retriever: Retriever, query: Query, top: Candidate, notes: list[str],
                   verdict: str | None = None, others: list[Candidate] | None = None,
                   composed: Composed | None = None) -> tuple[str, bool]:
    """The answer text from the best unit (and sentences of the next units, `others`): verdict and
    detail, the review note for draft material, further lines (a pointer, door notes), the source
    line naming every unit shown; and whether "更多" has more. `composed`: compose's result for
    these same arguments, when the caller already has it."""
    composed = composed or compose(retriever, query, top, verdict, others)
    parts = [composed.verdict + composed.detail]
    if needs_review_note(top, composed):
        parts.append(DRAFT_NOTE)
    parts += notes or injury_note(parts[0])
    return "\n".join(parts) + f"\n\n来源：{joined(unit_sources(top, composed))}", composed.more


def injury_note(shown: str) -> list[str]:
    """The work-injury door's line for an answer that sends the worker to 工伤保险 benefits without naming where
    they are claimed (职业病待遇 "按国家工伤保险的规定执行"): 工伤认定 and 劳动能力鉴定 are 人社部门's (《工伤保险条例》
    第十七条、第二十三条); none when the answer already names that office."""
    if "工伤保险" not in shown or any(w in shown for w in ("社会保险行政部门", "人社", "人力资源社会保障")):
        return []
    return [DOOR_NOTES["injury"]]


def unit_sources(top: Candidate, composed: Composed) -> list[str]:
    """The source lines of an answer composed from `top`: its own, its section's heading when the
    detail came from the section, and those of the neighbouring units it borrowed sentences from."""
    return [source_line(top), *([composed.section_heading] if composed.from_section else []),
            *(source_line(n) for n in composed.neighbours)]


def joined(sources: list[str]) -> str:
    """The source lines as one line naming each source once: a card and the neighbour it was written
    from often cite the same page."""
    return "；".join(dict.fromkeys(part for line in sources for part in line.split("；") if part))


def refusal_or_referral(query: Query, decision: Decision, shown: list[Passage], draft: str = "") -> Answer:
    """The fixed text of the door (decide.door_text), or the refusal."""
    text = (door_text(decision) if decision.kind == "refer" and decision.door
            else "\n".join([REFUSAL, *decision.notes]))
    return Answer(query.original, text, False, decision.confidence, shown, None, [], decision.kind,
                  decision.door, None, query.context, draft)
