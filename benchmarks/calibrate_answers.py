"""Fit the answerer's confidence model and choose its threshold, on the authored question sets only.

Usage: .venv/bin/python benchmarks/calibrate_answers.py [--data-dir DIR] [--cost 2]

For every question of tests/eval/materials-a.jsonl, materials-b.jsonl, ood.jsonl, near-ood.jsonl
(and of any --extra set, e.g. the shared dev set) the best unit is drafted into an answer as if it were shown;
the label is whether that draft is right (a gold/must group, no must_not; out-of-scope questions
are never right). A logistic regression of decide.features on the label gives the coefficients; the
threshold maximises (right answers − COST × wrong answers) over those sets: a wrong answer taught
to a worker is worse than none. The real-question sets are never used here: they measure
generalisation (README "Answering"). Prints the constants to paste into bot/answering/decide.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answering import decide as D  # noqa: E402
from bot.answering.answer import catalogue_of, compose_answer  # noqa: E402
from bot.answering.aspect import by_aspect  # noqa: E402
from bot.answering.compose import compose  # noqa: E402
from bot.answering.evaluate_answers import judge, load_items  # noqa: E402
from bot.answering.query import analyse  # noqa: E402
from bot.answering.rank import rank  # noqa: E402
from bot.answering.retrieve import Retriever, open_retriever  # noqa: E402
from bot.config import load_settings  # noqa: E402

AUTHORED = ("materials-a.jsonl", "materials-b.jsonl", "ood.jsonl", "near-ood.jsonl")
L2 = 1.0  # ridge penalty on the standardised coefficients
SMOOTH = 0.03  # thresholds are compared by their gain averaged over this neighbourhood


def rows(retriever: Retriever, extra: list[Path]) -> tuple[list[dict], list[str]]:
    """Features and label of every authored question (and of the extra sets); the feature names."""
    files = [ROOT / "tests" / "eval" / name for name in AUTHORED] + extra
    out, names = [], []
    for path in files:
        for item in load_items(path):
            query = analyse(item.question, retriever.encode)
            scores = retriever.unit_scores(query)
            ranked = by_aspect(retriever, query, rank(retriever, query, scores), scores)
            lookup = catalogue_of(retriever).lookup(query)
            if lookup is not None and lookup.section is not None:
                continue  # answered by a lookup in the catalogue, not by the confidence
            cues = D.cues_in(query.normalized)
            composed = compose(retriever, query, ranked[0], None, ranked[1:])
            draft, _ = compose_answer(retriever, query, ranked[0], [], None, ranked[1:], composed)
            x = D.features(query, ranked, D.topic_of(cues, ranked), composed.verdict)
            right = judge(item, "answer", draft, 0.0).correct
            names = list(x)
            out.append({"x": [x[k] for k in names], "y": float(right), "oh": item.scope == "oh",
                        "topic": x["topic"] > 0})
    return out, names


def fit(X: np.ndarray, y: np.ndarray, iterations: int = 20000, rate: float = 0.5) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by gradient descent on standardised features; raw-scale result."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(Z @ w + b)))
        w -= rate * (Z.T @ (p - y) / len(y) + L2 * w / len(y))
        b -= rate * float((p - y).mean())
    return w / sd, b - float((w * mu / sd).sum())


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC by pair counting (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def main() -> None:
    """Fit, choose, print the constants and the in-scope figures at the chosen threshold."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--cost", type=float, default=2.0, help="a wrong answer costs this many right ones")
    parser.add_argument("--curve", action="store_true", help="print the gain at every threshold")
    parser.add_argument("--extra", action="append", default=[], type=Path, help="another question set to fit on")
    args = parser.parse_args()
    retriever = open_retriever(load_settings(args.data_dir))
    data, names = rows(retriever, args.extra)
    X = np.array([r["x"] for r in data], float)
    y = np.array([r["y"] for r in data])
    w, b = fit(X, y)
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    print(f"questions: {len(y)}  right drafts: {int(y.sum())}  AUC on these sets: {auc(p, y):.3f}")
    topic = np.array([r["topic"] for r in data])
    def shown_at(t: float) -> np.ndarray:
        """Which drafts decide would show at threshold t (topic-less questions need more)."""
        return np.where(topic, p >= t, p >= max(t, D.WITHOUT_TOPIC))

    oh = np.array([r["oh"] for r in data])
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    gains = np.array([float((shown_at(t) & (y == 1)).sum() - args.cost * (shown_at(t) & (y == 0)).sum())
                      for t in grid])
    # the gain of a threshold averaged with its neighbours (±SMOOTH): on ~110 in-scope questions a
    # single threshold's gain moves by one or two questions, and its maximum alone is noise
    width = int(round(SMOOTH / 0.01))
    smoothed = np.array([gains[max(0, i - width): i + width + 1].mean() for i in range(len(grid))])
    for t, gain, smooth in zip(grid, gains, smoothed):
        shown = shown_at(t)
        if args.curve:
            print(f"  {t:.2f}: gain {gain:5.0f} (smoothed {smooth:5.1f})  in scope right {(shown & (y == 1) & oh).sum():3d} "
                  f"wrong {(shown & (y == 0) & oh).sum():3d}  out of scope shown {(shown & ~oh).sum():3d}")

    # the plateau: thresholds within one question's gain of the best smoothed gain (the best single
    # point moves along it whenever the content changes). All are equally good at this cost; its
    # lowest threshold refuses least: the authored sets keep their right answers and plain questions
    # ("体检费谁出") stay answered.
    plateau = grid[smoothed >= smoothed.max() - 1.0]
    best = (float(smoothed.max()), float(plateau.min()))
    print(f"plateau {plateau.min():.2f}–{plateau.max():.2f} (smoothed gain ≥ {smoothed.max() - 1.0:.1f})")
    print("COEFFICIENTS = {" + ", ".join(f'"{k}": {v:.3f}' for k, v in zip(names, w)) + "}")
    print(f"INTERCEPT = {b:.3f}")
    print(f"THRESHOLD = {best[1]:.2f}  (the plateau's lowest; best right − {args.cost:g} × wrong, averaged over "
          f"±{SMOOTH:g}: {best[0]:.1f})")
    shown = shown_at(best[1])
    n = int(oh.sum())
    print(f"in scope at that threshold: right {(shown & (y == 1) & oh).sum() / n:.1%}, "
          f"wrong {(shown & (y == 0) & oh).sum() / n:.1%}, refused {(~shown & oh).sum() / n:.1%}")


if __name__ == "__main__":
    main()
