"""Compose what the user reads: a one-sentence verdict, at most ~150 characters of detail, the
source line; the full section on "更多".

Every sentence shown is a sentence of the knowledge base (a card's answer, a section's text, a
table row), chosen, never rewritten; only fixed phrases are added (the plan's owner, the review
note, the door lines of decide.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from bot.answering.query import Query, has_answer
from bot.answering.rank import Candidate
from bot.answering.retrieve import Retriever, in_its_dictionaries
from bot.text.normalize import normalize
from bot.text.regions import is_local, region_label
from bot.text.tokenize import tokens

DETAIL_CHARS = 150
VERDICT_CHARS = 120  # a longer first sentence is cut at its last clause that fits
HEADING_MATCH = 0.90  # the unit's own question is this close to the user's: its opening sentence leads
# A bare opening verdict ("不用。", "算。") answers its own question only: shown when that question is a
# paraphrase of the user's (at ≥ 0.95 the closest card question was a true paraphrase in every case of
# our sets; between 0.90 and 0.95 about one in six was another question, whose yes/no may be the opposite)
BARE_VERDICT_MATCH = 0.95
BARE = 8  # a shorter sentence is a bare verdict ("能。", "不是。"): true only of its own heading
# The detail may go on with sentences of the next units of the ranking (README "Answering", session 4:
# the fact was often in the second or third unit): only after the unit's own sentences, and only a
# sentence sharing a distinctive word of the question (IDF ≥ DISTINCT_IDF: not 用人单位/劳动者/职业病,
# which half the units contain) that the shown text does not already say.
NEIGHBOURS = 2
DISTINCT_IDF = 1.2
DRAFT_NOTE = "（本条为防护常识，尚待职业卫生专业人员审核）"
SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")
CLAUSE = re.compile(r"[^，,、：:]+[，,、：:]?")
YES_NO = re.compile(r"(?<![什怎这那多])[吗么嘛][?？!！。]*$|能不能|可不可以|是不是|算不算|要不要|有没有|是否|行不行|对不对|合不合法|能否|可否")
# A sentence holding an answer of the kind the question asks for (Query.asks: a duration for 多久, an
# amount for 多少, an authority for 谁/哪个部门 …, knowledge/dict/answer_types.yaml) counts as this many
# more shared words when the verdict and detail are picked (before: figures first for 多少/几/目标 only).
ASKED_BONUS = 1.5


def sentences(text: str) -> list[str]:
    """The sentences of a text, each with its end mark."""
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def section_text(retriever: Retriever, candidate: Candidate) -> str:
    """The whole section a unit belongs to (all chunks with its document and heading path, in order);
    a card's whole answer; a table row's own text."""
    chunk = candidate.chunk
    if chunk.kind in ("faq", "row"):
        return chunk.text
    parts = [c.text for c in retriever.section_chunks(chunk) if c.kind != "row"]
    return "\n".join(parts) or chunk.text


def owner_prefix(candidate: Candidate) -> str:
    """A local plan's sentence says whose plan it is: "柳南区的规划：…"."""
    region = candidate.doc.get("region")
    if not is_local(region) or candidate.chunk.kind == "faq":
        return ""
    label = region_label(region)
    if label and normalize(label) in normalize(candidate.chunk.text[:20]):
        return ""  # a table row already opens with it
    kind = "工作要点" if candidate.doc.get("doc_type") == "work_plan" else "规划"
    return f"{label}的{kind}："


@lru_cache(maxsize=8192)
def words(text: str) -> frozenset[str]:
    """The search tokens of a knowledge-base sentence or section (cached: they recur across questions)."""
    return frozenset(tokens(text))


def _overlap(wanted: set[str], sentence: str) -> int:
    """How many of the question's words a sentence contains."""
    return len(wanted & words(sentence))


def _shorten(sentence: str, limit: int) -> str:
    """A sentence cut at its last clause that fits the limit."""
    if len(sentence) <= limit:
        return sentence
    out = ""
    for clause in CLAUSE.findall(sentence):
        if len(out) + len(clause) > limit:
            break
        out += clause
    return (out.rstrip("，,、：:") + "……") if out else sentence[:limit] + "……"


def _asked_bonus(query: Query, sentence: str) -> float:
    """ASKED_BONUS when the sentence holds an answer of the kind the question asks for, else 0."""
    return ASKED_BONUS if has_answer(query.asks, sentence) else 0.0


def pick_verdict(query: Query, candidate: Candidate, body: list[str]) -> int:
    """Index of the verdict sentence: the opening sentence when the unit answers the user's question
    (a card, a section whose heading matches, a table row), else the sentence closest to it (an
    answer of the asked kind counts ASKED_BONUS more)."""
    if not body:
        return -1
    if candidate.chunk.kind in ("faq", "row") or candidate.q_dense >= HEADING_MATCH:
        # a bare "能。"/"不用。" answers a yes/no question, and only its own: for "怎么申请…" or a
        # neighbouring question the next sentence leads (a card whose own question the user typed keeps it)
        bare = len(body[0]) < BARE and len(body) > 1 and not candidate.exact
        if bare and (not YES_NO.search(query.focus) or candidate.q_dense < BARE_VERDICT_MATCH):
            return 1
        return 0
    wanted = set(query.expanded) | words(query.focus)
    scored = [(_overlap(wanted, s) + _asked_bonus(query, s), -i) for i, s in enumerate(body)]
    return -max(scored)[1]


def pick_detail(query: Query, body: list[str], verdict: int, limit: int = DETAIL_CHARS,
                own: int | None = None, neighbours: int | None = None,
                distinct: frozenset[str] = frozenset()) -> list[int]:
    """Indices of the detail sentences: those sharing most words with the question (an answer of
    the kind it asks for counts ASKED_BONUS more: figures for 多少, an authority for 谁 …), in their
    own order, within `limit` characters. The first `own` sentences (the unit's own, before those
    of a card's section) go first; sentences from index
    `neighbours` on (other units') only fill what is left, and only with a `distinct` word."""
    wanted = set(query.expanded) | words(query.focus)
    own = len(body) if own is None else own
    ranked = sorted(
        (i for i in range(len(body)) if i != verdict and len(body[i]) >= BARE),
        key=lambda i: (i >= own, -(_overlap(wanted, body[i]) + _asked_bonus(query, body[i])),
                       abs(i - verdict)),
    )
    chosen, total = [], 0
    for i in ranked:
        if neighbours is not None and i >= neighbours and not distinct & words(body[i]):
            continue
        if total + len(body[i]) > limit:
            continue
        chosen.append(i)
        total += len(body[i])
    return sorted(chosen)


def source_line(candidate: Candidate) -> str:
    """Where the shown text comes from: a card's citation, else document › heading path (date)."""
    chunk = candidate.chunk
    if chunk.kind == "faq":
        return chunk.cite or f"常见问题 › {chunk.section[0]}"
    date = candidate.doc.get("date")
    return chunk.heading + (f"（{date}）" if date else "")


@dataclass
class Composed:
    """What compose chose: the verdict, the detail, whether "更多" has more, and where the shown
    sentences come from (for the review note and the source line)."""
    verdict: str
    detail: str
    more: bool
    from_section: bool = False  # detail sentences were taken from the section a card restates
    section_doc: dict = field(default_factory=dict)
    section_heading: str = ""
    neighbours: list[Candidate] = field(default_factory=list)  # other units whose sentences were shown


def overlaps(sentence: str, text: str, share: float = 0.6) -> bool:
    """Whether most of a sentence's words are already in `text` (a card restating its section)."""
    mine = words(sentence)
    return bool(mine) and len(mine & words(text)) / len(mine) >= share


def compose(retriever: Retriever, query: Query, candidate: Candidate, verdict: str | None = None,
            others: list[Candidate] | None = None, limit: int = DETAIL_CHARS) -> Composed:
    """The verdict sentence, the detail sentences, and whether "更多" has more to show. A given
    `verdict` (a fixed sentence, e.g. the catalogue lookup's) replaces the unit's own; the detail
    then comes from the whole section. A card's detail may also come from the material section the
    card restates (its `ref`): the card is a summary, the section has the facts around it. Room
    left in the detail goes to sentences of the next units of the ranking (`others`, the first
    NEIGHBOURS of them) that share a distinctive word with the question. `limit`: the detail's
    length (an answer to one part of a question that asks two things gets its share)."""
    full = section_text(retriever, candidate)
    body = sentences(full)
    if not body:
        return Composed(verdict or full, "", False)
    extra: list[str] = []
    section = retriever.ref_section(candidate.chunk) if candidate.chunk.kind == "faq" else []
    if section:
        extra = [x for x in sentences("\n".join(c.text for c in section)) if not overlaps(x, full, 0.5)]
    pool = body + extra
    own = len(pool)
    origin: list[Candidate] = []  # the unit of each neighbour sentence, in pool order from `own`
    seen = set().union(*(words(x) for x in pool))  # words already in the pool (per sentence: cached)
    for other in (others or [])[:NEIGHBOURS]:
        if other.position == candidate.position:
            continue
        for x in sentences(section_text(retriever, other)):
            mine = words(x)
            if mine and len(mine & seen) / len(mine) < 0.5:  # not a restatement of what is there
                pool.append(x)
                origin.append(other)
                seen |= mine
    v = pick_verdict(query, candidate, body) if verdict is None else -1
    distinct = frozenset(w for w in set(query.expanded) | words(query.focus) if retriever.idf(w) >= DISTINCT_IDF)
    detail_ix = pick_detail(query, pool, v, limit, own=len(body), neighbours=own, distinct=distinct)
    shown_verdict = owner_prefix(candidate) + _shorten(body[v], VERDICT_CHARS) if verdict is None else verdict
    detail = "".join(pool[i] for i in detail_ix)
    shown = (len(body[v]) if v >= 0 else 0) + sum(len(pool[i]) for i in detail_ix if i < len(body))
    used_section = any(len(body) <= i < own for i in detail_ix)
    used = list({id(origin[i - own]): origin[i - own] for i in detail_ix if i >= own}.values())
    return Composed(shown_verdict, detail, shown < len("".join(body)), used_section,
                    retriever.docs.get(section[0].doc_id, {}) if used_section else {},
                    section[0].heading if used_section else "", used)


def needs_review_note(candidate: Candidate, composed: Composed | None = None) -> bool:
    """Only text from a `draft` material carries the review note (not `sourced` or `reviewed`):
    the unit's own document, or the section a card's detail was taken from."""
    if candidate.doc.get("status") == "draft":
        return True
    if composed and any(n.doc.get("status") == "draft" for n in composed.neighbours):
        return True
    return bool(composed and composed.from_section and composed.section_doc.get("status") == "draft")


@in_its_dictionaries
def full_section(retriever: Retriever, chunk_id: int) -> str | None:
    """What "更多" shows: the whole section (or card) of a unit, with its source line; None when the
    id is not in the index (e.g. an old button after a rebuild)."""
    position = retriever.position.get(chunk_id)
    if position is None:
        return None
    chunk = retriever.chunks[position]
    doc = retriever.docs.get(chunk.doc_id, {})
    candidate = Candidate(position, chunk, doc, 0.0, 0.0, 0.0, 0.0, 0.0)
    title = chunk.section[-1] if chunk.section else chunk.heading
    note = f"\n{DRAFT_NOTE}" if needs_review_note(candidate) else ""
    return f"【{title}】\n{section_text(retriever, candidate)}{note}\n\n来源：{source_line(candidate)}"
