"""Measure a small learned reranker over the first units of the answer ranking, leave-one-set-out.

Usage: .venv/bin/python benchmarks/fit_rerank.py [--data-dir DIR] [--pairwise] [--extra SET.jsonl]

For every in-scope question of the sets below, the first DEPTH units of the current ranking
(rank + aspect) get `features` (≤ 16 measurements of how a unit fits the question); a unit is positive when its whole section holds a must/gold
group and no must_not (as the evaluation judges a draft). Questions with no positive among them
teach nothing about order and are left out of the fit (they count as misses in the figures).
Leave-one-set-out: for each set, a model fitted on the others orders the held-out set; MRR@5 and
hit@1 of the first positive unit are printed against the current order, and the in-scope AUC of
today's confidence against today's confidence combined with the model's probability of the best
unit. The model fitted on all sets is printed last. Measured in session 9 and not kept (README
"Answering"): the linear model does not beat the current order, not even on the sets it was fitted
on. real-e and real-f are never read: they measure generalisation at the end of a session.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.calibrate_answers import fit  # noqa: E402  (the same ridge logistic regression)
from bot.answering import decide as D  # noqa: E402
from bot.answering.answer import catalogue_of, compose_answer  # noqa: E402
from bot.answering.aspect import MIN_WORD, asked_and_rest, aspects_in, by_aspect, coverage  # noqa: E402
from bot.answering.compose import compose  # noqa: E402
from bot.answering.evaluate_answers import holds, judge, load_items, roc_auc  # noqa: E402
from bot.answering.query import Query, analyse, has_answer  # noqa: E402
from bot.answering.rank import Candidate, rank, ranks_of  # noqa: E402
from bot.answering.retrieve import Retriever, UnitScores, open_retriever  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.text import reading  # noqa: E402
from bot.text.normalize import normalize  # noqa: E402

SETS = {name: ROOT / "tests" / "eval" / f"{name}.jsonl"
        for name in ("real-a", "real-b", "real-c", "real-d", "materials-a", "materials-b")}
PLAN_TYPES = ("plan", "work_plan")  # doc_type of the policy plans
DEPTH = 10  # the units that are scored
FEATURES = ("dense", "q_dense", "bm25", "q_bm25", "lag", "position", "agree", "aspect", "subject", "kind",
            "card", "row", "plan", "heading", "in_heading", "in_text")

ITERATIONS = 5000  # gradient steps of the ridge logistic fit (the figures in README were measured so)


def features(retriever: Retriever, query: Query, ranked: list[Candidate], scores: UnitScores) -> np.ndarray:
    """One row of FEATURES per unit of `ranked` (its first DEPTH): the measurements the model weighs."""
    asked, rest, rest_weights = asked_and_rest(retriever, query)
    all_words = [t for t in dict.fromkeys(query.tokens) if len(t) >= MIN_WORD]
    all_weights = [retriever.idf(t) for t in all_words]
    head = ranked[0].score if ranked else 0.0
    rows = []
    for i, c in enumerate(ranked[:DEPTH]):
        questions = retriever.unit_questions(c.position)
        text = normalize(" ".join(c.chunk.section) + " " + c.chunk.text)
        ranks = c.ranks or ranks_of(scores, c.position)
        rows.append([
            c.dense, max(c.q_dense, 0.0), c.bm25, c.q_bm25,
            max(-1.0, c.score - head) if not c.exact else 0.0,
            1.0 / (i + 1),
            sum(1.0 / r for r in ranks.values()) / len(ranks),
            len(asked & aspects_in(questions)) / len(asked) if asked else 0.0,
            coverage(rest, rest_weights, questions),
            (0.5 if query.asks is None else float(has_answer(query.asks, c.chunk.text))),
            float(c.chunk.kind == "faq"), float(c.chunk.kind == "row"),
            float(c.doc.get("doc_type") in PLAN_TYPES),
            math.log1p(len(questions)) / 5.0,
            coverage(all_words, all_weights, questions),
            coverage(all_words, all_weights, text),
        ])
    return np.array(rows, dtype=float).reshape(-1, len(FEATURES))


class Question(NamedTuple):
    """One in-scope question: the features and labels of its first units, the current confidence
    of its best unit's draft and whether that draft is right (None: answered by a catalogue lookup,
    not by the confidence; a named tuple: this script is also imported by path, where a dataclass
    cannot find its module)."""
    x: np.ndarray
    y: np.ndarray
    confidence: float
    right: bool | None


def collect(retriever: Retriever, path: Path) -> list[Question]:
    """Every in-scope question of one set with gold."""
    out = []
    for item in load_items(path):
        if item.scope != "oh" or not item.must:
            continue
        with reading(retriever.dict_dir):
            query = analyse(item.question, retriever.encode)
            scores = retriever.unit_scores(query)
            ranked = by_aspect(retriever, query, rank(retriever, query, scores, top_k=DEPTH), scores)
            x = features(retriever, query, ranked, scores)
            composed = compose(retriever, query, ranked[0], None, ranked[1:])
            draft, _ = compose_answer(retriever, query, ranked[0], [], None, ranked[1:], composed)
            confidence = D.confidence_of(D.features(query, ranked, D.topic_of(D.cues_in(query.normalized), ranked),
                                                    composed.verdict))
            lookup = catalogue_of(retriever).lookup(query)
        right = None if lookup is not None and lookup.section is not None else judge(item, "answer", draft, 0.0).correct
        y = np.array([holds(item, " ".join(c.chunk.section) + " " + " ".join(
            s.text for s in retriever.section_chunks(c.chunk))) for c in ranked[:DEPTH]], dtype=float)
        out.append(Question(x, y, confidence, right))
    return out


def training(questions: list[Question], pairwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit: every unit of a question with a positive and a negative (pointwise), or the
    differences positive − negative and back (pairwise)."""
    useful = [q for q in questions if 0 < q.y.sum() < len(q.y)]
    if not pairwise:
        return np.vstack([q.x for q in useful]), np.concatenate([q.y for q in useful])
    d = np.array([q.x[i] - q.x[j] for q in useful for i in np.flatnonzero(q.y) for j in np.flatnonzero(q.y == 0)])
    return np.vstack([d, -d]), np.concatenate([np.ones(len(d)), np.zeros(len(d))])


def figures(questions: list[Question], w: np.ndarray | None, b: float) -> tuple[float, float]:
    """(MRR@5, hit@1) of the first positive unit: in the current order (w None) or the model's."""
    rr, hit = [], []
    for q in questions:
        order = np.arange(len(q.y)) if w is None else np.argsort(-(q.x @ w + b), kind="stable")
        first = next((k for k, i in enumerate(order) if q.y[i]), None)
        rr.append(1.0 / (first + 1) if first is not None and first < 5 else 0.0)
        hit.append(float(first == 0))
    return float(np.mean(rr)), float(np.mean(hit))


def confidence_now(q: Question) -> float:
    """Today's confidence of the question's draft (decide.confidence_of)."""
    return q.confidence


def logits(q: Question, w: np.ndarray, b: float) -> list[float]:
    """Today's confidence and the reranker's probability that the current best unit holds the
    answer (the unit drafted), both as logits."""
    c = min(max(q.confidence, 1e-6), 1 - 1e-6)
    return [math.log(c / (1 - c)), float(q.x[0] @ w + b)]


def combined(w: np.ndarray, b: float, w2: np.ndarray, b2: float) -> Callable[[Question], float]:
    """The confidence of a logistic model over `logits` (reranker w, b; combination w2, b2)."""
    def conf(q: Question) -> float:
        """0–1 for one question's draft."""
        return float(1.0 / (1.0 + np.exp(-(np.array(logits(q, w, b)) @ w2 + b2))))
    return conf


def threshold(scores: list[float], right: list[bool], cost: float) -> float:
    """The threshold maximising right − cost × wrong among the answers it lets through."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    gain = [sum(r if s >= t else 0 for s, r in zip(scores, right)) - cost * sum((not r) and s >= t
            for s, r in zip(scores, right)) for t in grid]
    return float(grid[int(np.argmax(gain))])


def main() -> None:
    """Leave-one-set-out figures, then the constants fitted on every set."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--pairwise", action="store_true", help="fit on positive − negative differences")
    parser.add_argument("--extra", action="append", default=[], type=Path,
                        help="another question set with gold (e.g. the shared dev set)")
    parser.add_argument("--cost", type=float, default=2.0, help="a wrong answer costs this many right ones")
    args = parser.parse_args()
    retriever = open_retriever(load_settings(args.data_dir))
    sets = dict(SETS, **{path.stem: path for path in args.extra})
    data = {name: collect(retriever, path) for name, path in sets.items()}
    print("ranking: the first unit whose section holds a must group, now and reranked | confidence of the "
          "current draft, now and combined with the reranker's probability: in-scope AUC, and right/wrong "
          f"shown at the threshold best on the other sets (right − {args.cost:g} × wrong; lookups left out)")
    print(f"{'held out':13s} {'n':>3s}  {'MRR@5 now':>9s} {'model':>6s}  {'hit@1 now':>9s} {'model':>6s}  "
          f"{'AUC now':>7s} {'model':>6s}  {'R/W now':>7s} {'model':>6s}")
    for name, questions in data.items():
        others = [q for other, qs in data.items() if other != name for q in qs]
        w, b = fit(*training(others, args.pairwise), iterations=ITERATIONS)
        now, model = figures(questions, None, 0.0), figures(questions, w, b)
        # the two confidences of the current draft: today's model, and the reranker's probability
        # of the current best unit combined with it (a logistic fit on the other sets' drafts)
        train = [q for q in others if q.right is not None]
        judged = [q for q in questions if q.right is not None]
        mixed = fit(np.array([logits(q, w, b) for q in train]), np.array([float(bool(q.right)) for q in train]),
                    iterations=ITERATIONS)
        cells = []
        for conf in (confidence_now, combined(w, b, *mixed)):
            t = threshold([conf(q) for q in train], [bool(q.right) for q in train], args.cost)
            shown = [conf(q) >= t for q in judged]
            right = [bool(q.right) for q in judged]
            area = roc_auc([conf(q) for q in judged], right)
            cells.append((f"{area:.3f}" if area is not None else "-",
                          f"{sum(s and r for s, r in zip(shown, right))}/{sum(s and not r for s, r in zip(shown, right))}"))
        print(f"{name:13s} {len(questions):3d}  {now[0]:9.3f} {model[0]:6.3f}  {now[1]:9.3f} {model[1]:6.3f}  "
              f"{cells[0][0]:>7s} {cells[1][0]:>6s}  {cells[0][1]:>7s} {cells[1][1]:>6s}")
    w, b = fit(*training([q for qs in data.values() for q in qs], args.pairwise), iterations=ITERATIONS)
    print("COEFFICIENTS = {" + ", ".join(f'"{k}": {v:.3f}' for k, v in zip(FEATURES, w)) + "}")
    print(f"INTERCEPT = {b:.3f}")


if __name__ == "__main__":
    main()
