"""Rank: cards, material sections, policy passages and table rows compete in one ranking.

A unit's score is a weighted sum of four measurements (retrieve.UnitScores): the dense cosine of
its text, the best dense cosine among the questions it answers (a card's question and variants, a
section's heading: materials' headings are questions), and BM25 over its text and over those
questions, each BM25 divided by the best of the question so that it lies in 0..1. The weights were
measured on the authored question sets (README "Answering"); near-ties are broken by the question
match, and local plans take part only for their own region.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bot.answering.query import Query
from bot.answering.retrieve import Retriever, UnitScores, is_plan_question, question_key
from bot.index.store import ChunkRow
from bot.text.regions import is_local, names_region

# Measured on materials-a/b and the shared dev set (README "Answering"): MRR@10 of the first unit
# containing a gold group, grid over the four weights.
WEIGHTS = {"dense": 1.0, "q_dense": 0.5, "bm25": 0.1, "q_bm25": 0.0}
# Questions about a policy plan (retrieve.is_plan_question): BM25 finds the plan's own terms and figures.
# Measured on the policy-plan questions of the shared dev set (answered right: 3 of 6 at 0.1, 5 at 0.3–1.0).
PLAN_WEIGHTS = {"dense": 1.0, "q_dense": 0.5, "bm25": 0.5, "q_bm25": 0.0}
TIE = 0.01  # scores closer than this count as a tie: the better question match goes first
RANKED_ALONE = 3  # units whose rank by each measurement alone is recorded (agreement → confidence)
ROLE_BONUS = 0.005
EXACT_BONUS = 1.0  # more than any other unit can score: the reviewed card wins
NAMED_REGION_BONUS = 0.05  # a question naming a region prefers that region's plan over national texts
USER_REGION_BONUS = 0.03  # the user's own region's plan, a little less  # documents written for the user's role, by about a rank


@dataclass
class Candidate:
    """One ranked unit and the measurements behind its score."""
    position: int  # index into retriever.chunks
    chunk: ChunkRow
    doc: dict
    score: float
    dense: float
    q_dense: float
    bm25: float  # relative: this unit's BM25 / the best unit's
    q_bm25: float  # relative, likewise
    ranks: dict[str, int] = field(default_factory=dict)  # its rank by each measurement alone (top units only)
    # the same for the asking part of a question that tells a story first, scored alone (the best unit only:
    # answer.read); empty otherwise
    focus_ranks: dict[str, int] = field(default_factory=dict)
    exact: bool = False  # a card whose question or variant is the user's question, word for word
    named: bool = False  # its questions name the trade and the harm the question asks (aspect.by_trade)

    @property
    def is_card(self) -> bool:
        """A FAQ card (not a document passage)."""
        return self.chunk.kind == "faq"


def region_masks(retriever: Retriever, query: Query) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed, named, mine): national units are always allowed; a local plan's only when the
    user's region is its region or the question names it; `named` marks the plans the question
    names, `mine` those of the user's region."""
    allowed = ~retriever.local
    named = np.zeros(len(retriever.chunks), dtype=bool)
    own = np.zeros(len(retriever.chunks), dtype=bool)
    for doc_id, doc in retriever.docs.items():
        region = doc.get("region")
        if not is_local(region):
            continue
        mine = bool(query.region) and bool(region) and (
            str(query.region) in str(region) or names_region(str(query.region), region))
        if names_region(query.text, region):
            named |= retriever.doc_mask(doc_id)
        elif mine:
            own |= retriever.doc_mask(doc_id)
    return allowed | named | own, named, own


def _relative(x: np.ndarray) -> np.ndarray:
    """Scores divided by the best one (0..1); all zero when nothing scored."""
    top = float(x.max()) if len(x) else 0.0
    return x / top if top > 0 else np.zeros_like(x)


def fuse(scores: UnitScores, weights: dict[str, float] = WEIGHTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused score of every unit, and the relative BM25 arrays it was made of."""
    bm25 = _relative(scores.bm25)
    q_bm25 = _relative(scores.q_bm25)
    fused = (weights["dense"] * scores.dense + weights["q_dense"] * np.maximum(scores.q_dense, 0.0)
             + weights["bm25"] * bm25 + weights["q_bm25"] * q_bm25)
    return fused, bm25, q_bm25


def weights_for(retriever: Retriever, query: Query) -> dict[str, float]:
    """The fusion weights for this question: BM25-heavier for a question about a policy plan."""
    return PLAN_WEIGHTS if is_plan_question(query.text, retriever.regions) else WEIGHTS


def rank(retriever: Retriever, query: Query, scores: UnitScores, top_k: int = 10,
         weights: dict[str, float] | None = None) -> list[Candidate]:
    """The best `top_k` units for the question, best first."""
    fused, bm25, q_bm25 = fuse(scores, weights or weights_for(retriever, query))
    allowed, named, own = region_masks(retriever, query)
    fused = np.where(allowed, fused + NAMED_REGION_BONUS * named + USER_REGION_BONUS * own, -np.inf)
    if query.role:
        fused = fused + ROLE_BONUS * retriever.audience_mask(query.role)
    exact = retriever.exact_cards.get(question_key(query.text))
    if exact is not None:
        fused[exact] += EXACT_BONUS
    top = np.argsort(-fused, kind="stable")[: max(top_k * 3, 30)]
    order = [int(i) for i in top if np.isfinite(fused[i])]
    candidates = [
        Candidate(i, retriever.chunks[i], retriever.docs.get(retriever.chunks[i].doc_id, {}), float(fused[i]),
                  float(scores.dense[i]), float(scores.q_dense[i]), float(bm25[i]), float(q_bm25[i]),
                  exact=i == exact)
        for i in order
    ]
    ranked = break_ties(candidates)[:top_k]
    for c in ranked[:RANKED_ALONE]:
        c.ranks = ranks_of(scores, c.position)
    return ranked


def ranks_of(scores: UnitScores, i: int) -> dict[str, int]:
    """The rank of unit `i` by each measurement alone (1 = best)."""
    return {"bm25": int((scores.bm25 > scores.bm25[i]).sum()) + 1,
            "dense": int((scores.dense > scores.dense[i]).sum()) + 1,
            "q_dense": int((scores.q_dense > scores.q_dense[i]).sum()) + 1}


def break_ties(candidates: list[Candidate]) -> list[Candidate]:
    """Within runs of scores closer than TIE to the run's best, the better question match first
    (an exact card match stays first: its score is far ahead of any run)."""
    out: list[Candidate] = []
    rest = list(candidates)
    while rest:
        head = rest[0].score
        run = [c for c in rest if head - c.score < TIE]
        run.sort(key=lambda c: (-c.q_dense, -c.score))
        out += run
        rest = [c for c in rest if head - c.score >= TIE]
    return out
