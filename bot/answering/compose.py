"""Compose what the user reads: a one-sentence verdict, at most ~150 characters of detail, the
source line; the full section on "更多".

Every sentence shown is a sentence of the knowledge base (a card's answer, a section's text, a
table row), chosen, never rewritten; only fixed phrases are added (the plan's owner, the review
note, the door lines of decide.py).
"""
from __future__ import annotations

import re

from bot.answering.query import Query
from bot.answering.rank import Candidate
from bot.answering.retrieve import Retriever
from bot.text.normalize import normalize
from bot.text.regions import is_local, region_label
from bot.text.tokenize import tokens

DETAIL_CHARS = 150
VERDICT_CHARS = 120  # a longer first sentence is cut at its last clause that fits
HEADING_MATCH = 0.90  # the unit's own question is this close to the user's: its opening verdict answers it
BARE = 8  # a shorter sentence is a bare verdict ("能。", "不是。"): true only of its own heading
DRAFT_NOTE = "（本条为防护常识，尚待职业卫生专业人员审核）"
SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")
CLAUSE = re.compile(r"[^，,、：:]+[，,、：:]?")
FIGURE = re.compile(r"\d|[一二三四五六七八九十百千万]+[个项种类家条年月日天%]|%|‰|≥|≤")
ASKS_FIGURE = re.compile(r"多少|几|目标|比例|百分之|多久|多长|多高|多大|哪年|什么时候")


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


def _overlap(wanted: set[str], sentence: str) -> int:
    return len(wanted & set(tokens(sentence)))


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


def pick_verdict(query: Query, candidate: Candidate, body: list[str]) -> int:
    """Index of the verdict sentence: the opening sentence when the unit answers the user's question
    (a card, a section whose heading matches, a table row), else the sentence closest to it."""
    if not body:
        return -1
    if candidate.chunk.kind in ("faq", "row") or candidate.q_dense >= HEADING_MATCH:
        return 0
    wanted = set(query.expanded) | set(tokens(query.focus))
    figure = bool(ASKS_FIGURE.search(query.focus))
    scored = [(_overlap(wanted, s) + (1.5 if figure and FIGURE.search(s) else 0), -i) for i, s in enumerate(body)]
    return -max(scored)[1]


def pick_detail(query: Query, body: list[str], verdict: int, limit: int = DETAIL_CHARS) -> list[int]:
    """Indices of the detail sentences: those sharing most words with the question (figures first
    when it asks 多少/几/目标), in their own order, within `limit` characters."""
    wanted = set(query.expanded) | set(tokens(query.focus))
    figure = bool(ASKS_FIGURE.search(query.focus))
    ranked = sorted(
        (i for i in range(len(body)) if i != verdict and len(body[i]) >= BARE),
        key=lambda i: (-(_overlap(wanted, body[i]) + (1.5 if figure and FIGURE.search(body[i]) else 0)), abs(i - verdict)),
    )
    chosen, total = [], 0
    for i in ranked:
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


def compose(retriever: Retriever, query: Query, candidate: Candidate,
            verdict: str | None = None) -> tuple[str, str, bool]:
    """(verdict, detail, more): the verdict sentence, the detail sentences, and whether "更多"
    has more to show than this. A given `verdict` (a fixed sentence, e.g. the catalogue lookup's)
    replaces the section's own; the detail then comes from the whole section."""
    full = section_text(retriever, candidate)
    body = sentences(full)
    if not body:
        return verdict or full, "", False
    v = pick_verdict(query, candidate, body) if verdict is None else -1
    detail_ix = pick_detail(query, body, v)
    shown_verdict = owner_prefix(candidate) + _shorten(body[v], VERDICT_CHARS) if verdict is None else verdict
    detail = "".join(body[i] for i in detail_ix)
    shown = (len(body[v]) if v >= 0 else 0) + len(detail)
    return shown_verdict, detail, shown < len("".join(body))


def needs_review_note(candidate: Candidate) -> bool:
    """Only text from a `draft` material carries the review note (not `sourced` or `reviewed`)."""
    return candidate.doc.get("status") == "draft"


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
