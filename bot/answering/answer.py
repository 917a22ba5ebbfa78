"""Grounded answers: a close FAQ card, or the sentences of the best passages that answer the
question, always with sources; below the calibrated confidence, an honest refusal.

Nothing in an answer is text that is not in the knowledge base, apart from the fixed phrases here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.answering.retrieve import Passage, Retriever
from bot.text.normalize import normalize
from bot.text.tokenize import domain_cues, query_tokens, tokens

# Calibrated on the dev set, tests/eval/materials-*.jsonl (in-domain) and tests/eval/ood.jsonl:
# score = best dense cosine + 0.03 × min(best BM25, 10). A question with a work/health cue word
# (knowledge/dict/domain_cues.txt) is answered from SCORE_WITH_CUE, one without only from
# SCORE_WITHOUT_CUE (no small-talk question reached it). See README "Answering".
SCORE_WITH_CUE = 0.84
SCORE_WITHOUT_CUE = 1.00
# A card answers on its own only when one of its questions (or variants) is this close to the
# user's question: at ≥ 0.95 the closest card question was a true paraphrase in every case of our
# question sets; between 0.90 and 0.95 about one in six was a different question (README).
FAQ_MATCH = 0.95
# Below a strong score, refuse also when half of the question's words occur nowhere in the knowledge
# base and no FAQ question is close (cosine < 0.90): 年会, 迟到扣钱, 团建 … are not occupational health.
UNKNOWN_WORDS = 0.5
CARD_NEAR = 0.90
MAX_ANSWER_CHARS = 300
REFUSAL = (
    "抱歉，我的知识库里没有找到可靠的答案，不想给你猜一个。你可以：\n"
    "· 拨打 12320 卫生健康热线咨询；\n"
    "· 向当地卫生健康主管部门（卫生健康局/委）咨询或反映；\n"
    "· 怀疑得了职业病，可到依法承担职业病诊断的医疗卫生机构咨询。"
)
DRAFT_NOTE = "（本条为防护常识，尚待职业卫生专业人员审核）"
SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")


@dataclass
class Answer:
    question: str
    text: str
    found: bool
    confidence: float
    passages: list[Passage] = field(default_factory=list)
    faq_id: str | None = None
    related: list[tuple[str, str]] = field(default_factory=list)  # (faq_id, question)

    def as_json(self) -> dict:
        return {
            "question": self.question, "answer": self.text, "found": self.found,
            "confidence": round(self.confidence, 4),
            "passages": [{k: v for k, v in p.as_json().items() if k != "doc_id"} for p in self.passages],
            "faq_id": self.faq_id,
        }


def has_domain_cue(question: str) -> bool:
    text = normalize(question)
    return any(cue in text for cue in domain_cues())


def unknown_share(retriever: Retriever, question: str) -> float:
    """Share of the question's words (two characters or more) that are not in the BM25 vocabulary."""
    words = list(dict.fromkeys(t for t in tokens(question) if len(t) >= 2))
    return sum(t not in retriever.vocab for t in words) / len(words) if words else 0.0


def confidence_score(dense_best: float, bm25_best: float) -> float:
    return dense_best + 0.03 * min(bm25_best, 10.0)


def to_confidence(score: float) -> float:
    """The raw score mapped to 0..1 for display and JSON (0.6 → 0, 1.2 → 1)."""
    return max(0.0, min(1.0, (score - 0.6) / 0.6))


def source_line(p: Passage) -> str:
    date = p.doc.get("date")
    where = p.chunk.heading if p.chunk.kind != "faq" else f"常见问题 › {p.chunk.section[0]}"
    return f"{where}" + (f"（{date}）" if date else "")


def best_sentences(question: str, text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """The sentences of `text` that share the most words with the question, in their order."""
    sentences = [s.strip() for s in SENTENCE.findall(text) if s.strip()]
    if len(text) <= limit or len(sentences) <= 1:
        return text[:limit] if len(text) > limit else text
    wanted = set(query_tokens(question))
    scored = sorted(range(len(sentences)), key=lambda i: (-len(wanted & set(tokens(sentences[i]))), i))
    chosen: list[int] = []
    total = 0
    for i in scored:
        if total + len(sentences[i]) > limit and chosen:
            continue
        chosen.append(i)
        total += len(sentences[i])
    return "".join(sentences[i] for i in sorted(chosen))


def with_heading(passage: Passage, extract: str) -> str:
    """The extract under its own heading: materials answer the question in their heading, often
    starting with a bare verdict ("不合法。", "算。") that is only true of that question."""
    return f"【{passage.chunk.section[-1]}】{extract}" if passage.chunk.section else extract


def _rerank(passages: list[Passage], role: str | None, region: str | None) -> list[Passage]:
    """Prefer, by about one rank, the user's own audience and district documents."""
    def bonus(p: Passage) -> float:
        b = 0.0
        if role and p.doc.get("audience") == role:
            b += 0.002
        if region and region in (p.doc.get("region") or ""):
            b += 0.004
        return b
    return sorted(passages, key=lambda p: -(p.score + bonus(p)))


def answer(retriever: Retriever, question: str, role: str | None = None, region: str | None = None,
           top_k: int = 3) -> Answer:
    """Answer one question (already checked for length and emptiness by the dialogue)."""
    passages, dense_best, bm25_best = retriever.search_scored(question, top_k=20)  # FAQ cards take many places
    if not passages:
        return Answer(question, REFUSAL, False, 0.0)
    score = confidence_score(dense_best, bm25_best)
    confidence = to_confidence(score)
    needed = SCORE_WITH_CUE if has_domain_cue(question) else SCORE_WITHOUT_CUE
    if score < needed:
        return Answer(question, REFUSAL, False, confidence)
    card_chunk, similarity = retriever.closest_card(question)
    if score < SCORE_WITHOUT_CUE and similarity < CARD_NEAR and unknown_share(retriever, question) >= UNKNOWN_WORDS:
        return Answer(question, REFUSAL, False, confidence)
    ranked = _rerank(passages, role, region)
    related = [(p.chunk.faq_id, p.chunk.section[0]) for p in ranked if p.chunk.kind == "faq"]
    if card_chunk is not None and similarity >= FAQ_MATCH:
        card = next((p for p in ranked if p.chunk.id == card_chunk.id), None) or Passage(
            chunk=card_chunk, doc=retriever.docs.get(card_chunk.doc_id, {}), score=similarity, dense=similarity)
        body = card.chunk.text
        shown = [card] + [p for p in ranked if p is not card][: top_k - 1]
        text = f"{body}\n\n来源：{card_citation(card)}"
        related = [r for r in related if r[0] != card.chunk.faq_id][:3]
        return Answer(question, text, True, confidence, shown, card.chunk.faq_id, related)
    ranked = [p for p in ranked if p.chunk.kind != "faq"] or ranked  # extracts come from documents
    top = ranked[0]
    shown = ranked[:top_k]
    parts = [with_heading(top, best_sentences(question, top.chunk.text))]
    sources = [source_line(top)]
    second = ranked[1] if len(ranked) > 1 else None
    if second and second.chunk.doc_id != top.chunk.doc_id and second.chunk.kind != "faq" \
            and sum(map(len, parts)) < MAX_ANSWER_CHARS // 2:
        parts.append(with_heading(second, best_sentences(question, second.chunk.text,
                                                          MAX_ANSWER_CHARS - len(parts[0]))))
        sources.append(source_line(second))
    note = DRAFT_NOTE if any(p.doc.get("status") == "draft" for p in shown[: len(parts)]) else ""
    text = "\n".join(parts) + (f"\n{note}" if note else "") + "\n\n来源：" + "；".join(sources)
    return Answer(question, text, True, confidence, shown, None, related[:3])


def card_citation(passage: Passage) -> str:
    """A FAQ card's citation as written on the card, else where the card stands."""
    return passage.chunk.cite or source_line(passage)
