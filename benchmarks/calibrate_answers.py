"""Fit the answerer's confidence model and choose its threshold; measure how it generalises.

Usage: .venv/bin/python benchmarks/calibrate_answers.py [--data-dir DIR] [--cost 2] [--sets NAME ...]
           [--feature NAME ...] [--loso] [--curve]

Every question of the fitted sets (by default tests/eval/materials-a.jsonl and materials-b.jsonl;
`--sets` names others: real-a, …, or a path such as the shared dev set) and of ood.jsonl and
near-ood.jsonl (always: out-of-scope questions, never right) is read as `ohbot eval answers` reads it,
and the best unit is drafted into an answer as if it were shown; the label is whether that draft is
right (a gold/must group, no must_not). Questions the catalogue's lookup answers and questions their
words send to a door (decide.door_by_words) are not decided by the confidence and are left out. A
ridge logistic regression of decide.features (and of any `--feature` candidate below) on the label
gives the coefficients; the threshold maximises (right answers − COST × wrong answers) over those
questions, averaged with its neighbours: a wrong answer taught to a worker is worse than none.
Prints the constants to paste into bot/answering/decide.py.

`--loso` measures generalisation instead: each set of `--sets` (default: real-a..d, materials-a/b and
the shared dev set when it is there) is held out in turn, the model and its threshold are fitted and
chosen on the others (with ood and near-ood), and the held-out set is answered by the real answerer
(answer_query, with those constants: door rules, lookups and two-part questions as in `ohbot eval
answers`) and judged: in-scope AUC, correct and wrong. Today's constants (decide.py) are measured the
same way. README "Answering" says which sets the shipped constants were fitted on, and why.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answering import decide as D  # noqa: E402
from bot.answering.answer import answer_query, catalogue_of, compose_answer, read  # noqa: E402
from bot.answering.aspect import coverage  # noqa: E402
from bot.answering.evaluate_answers import EvalItem, judge, load_items, summarise  # noqa: E402
from bot.answering.query import Query, analyse  # noqa: E402
from bot.answering.rank import Candidate  # noqa: E402
from bot.answering.retrieve import Retriever, open_retriever  # noqa: E402
from bot.config import load_settings  # noqa: E402

EVAL = ROOT / "tests" / "eval"
NEGATIVES = ("ood", "near-ood")  # out-of-scope sets: always fitted on, as negatives
AUTHORED = ("materials-a", "materials-b")  # what the constants are fitted on by default (with NEGATIVES)
FOLDS = ("real-a", "real-b", "real-c", "real-d", "materials-a", "materials-b")  # --loso's default sets
DEV = Path("/work/shared/eval/dev-questions.jsonl")  # the shared dev set: a --loso fold when present
L2 = 1.0  # ridge penalty on the standardised coefficients
SMOOTH = 0.03  # thresholds are compared by their gain averaged over this neighbourhood

FeatureFn = Callable[[Retriever, Query, list[Candidate]], float]


def own_questions(retriever: Retriever, query: Query, ranked: list[Candidate]) -> float:
    """IDF-weighted share of the question's words (two characters or more) found in the best unit's own
    questions (its card question and variants, its heading)."""
    words = [t for t in dict.fromkeys(query.tokens) if len(t) >= 2]
    return coverage(words, [retriever.idf(t) or 1.0 for t in words], retriever.unit_questions(ranked[0].position))


def other_doc_gap(retriever: Retriever, query: Query, ranked: list[Candidate]) -> float:
    """How far the best unit stands above the first unit of another document (the last one ranked when
    all are of its document), 0–1."""
    top = ranked[0]
    other = next((c.score for c in ranked[1:] if c.chunk.doc_id != top.chunk.doc_id), ranked[-1].score)
    return max(0.0, min(top.score - other, 1.0))


def same_doc(retriever: Retriever, query: Query, ranked: list[Candidate]) -> float:
    """The share of the second and third units that are of the best unit's document."""
    follow = ranked[1:3]
    return sum(c.chunk.doc_id == ranked[0].chunk.doc_id for c in follow) / len(follow) if follow else 1.0


def length(retriever: Retriever, query: Query, ranked: list[Candidate]) -> float:
    """The question's length (normalised characters) / 100, at most 1: a story is long."""
    return min(len(query.normalized), 100) / 100


# candidate features (`--feature`), measured leave-one-set-out (README "Answering")
CANDIDATES: dict[str, FeatureFn] = {"own_questions": own_questions, "other_doc_gap": other_doc_gap,
                                    "same_doc": same_doc, "length": length}


class Row(NamedTuple):
    """One question's features, its draft's label and what decides it (a named tuple: this script is
    also imported by path, where a dataclass cannot be)."""
    set: str
    x: dict[str, float]
    y: float  # the drafted answer is right
    oh: bool  # in scope
    topic: bool  # it has a topic word (without one it needs decide.WITHOUT_TOPIC)


def set_path(name: str) -> Path:
    """A set's file: a name of tests/eval (real-a, ood …) or a path."""
    path = Path(name)
    return path if path.suffix == ".jsonl" else EVAL / f"{name}.jsonl"


def set_name(path: Path) -> str:
    """A set's short name (its file's stem)."""
    return path.stem


def features_with(retriever: Retriever, names: list[str]) -> Callable[..., dict[str, float]]:
    """decide.features with the named candidate features added (what decide reads while they are measured)."""
    base = D.features

    def features(query: Query, ranked: list[Candidate], has_topic: bool, verdict: str | None = None) -> dict[str, float]:
        x = base(query, ranked, has_topic, verdict)
        x.update({n: CANDIDATES[n](retriever, query, ranked) for n in names})
        return x
    return features


def rows(retriever: Retriever, path: Path) -> list[Row]:
    """The questions of one set that the confidence decides, with every feature (candidates too) and the
    label of the best unit's draft."""
    out = []
    extended = features_with(retriever, list(CANDIDATES))
    for item in load_items(path):
        query = analyse(item.question, retriever.encode)
        reading = read(retriever, query)  # the answerer's own ranking and composition of the best unit
        ranked, composed = reading.ranked, reading.composed
        if not ranked or composed is None or ranked[0].exact:
            continue  # nothing to answer from, or a reviewed card typed as it stands: not a confidence
        lookup = catalogue_of(retriever).lookup(query)
        if lookup is not None and lookup.section is not None:
            continue  # answered by a lookup in the catalogue, not by the confidence
        cues = D.cues_in(query.normalized)
        topic = D.topic_of(cues, ranked)
        if D.door_by_words(query, cues, topic) is not None:
            continue  # sent to a door by its words, whatever the confidence
        # with the door's line an answer carries (a work-injury row is right only when it names 人社部门)
        draft, _ = compose_answer(retriever, query, ranked[0], D.door_notes(cues), None, ranked[1:], composed)
        x = extended(query, ranked, topic, composed.verdict)
        right = judge(item, "answer", draft, 0.0).correct
        out.append(Row(set_name(path), x, float(right), item.scope == "oh", topic))
    return out


def fit(X: np.ndarray, y: np.ndarray, iterations: int = 20000, rate: float = 0.5,
        l2: float = L2) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by gradient descent on standardised features; raw-scale result."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = (X - mu) / sd
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(Z @ w + b)))
        w -= rate * (Z.T @ (p - y) / len(y) + l2 * w / len(y))
        b -= rate * float((p - y).mean())
    return w / sd, b - float((w * mu / sd).sum())


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC by pair counting (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


class Model(NamedTuple):
    """Fitted constants: coefficients by feature name, intercept, threshold, and the choice's figures."""
    coefficients: dict[str, float]
    intercept: float
    threshold: float
    plateau: tuple[float, float]
    gain: float


GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


def shown_at(p: np.ndarray, topic: np.ndarray, t: float) -> np.ndarray:
    """Which drafts decide would show at threshold t (topic-less questions need WITHOUT_TOPIC)."""
    return np.where(topic, p >= t, p >= max(t, D.WITHOUT_TOPIC))


def gains(p: np.ndarray, y: np.ndarray, topic: np.ndarray, cost: float) -> tuple[np.ndarray, np.ndarray]:
    """right − cost × wrong shown at every threshold of GRID, and the same averaged over ±SMOOTH: on
    ~110 in-scope questions a single threshold's gain moves by one or two questions, and its maximum
    alone is noise."""
    raw = np.array([float((shown_at(p, topic, t) & (y == 1)).sum() - cost * (shown_at(p, topic, t) & (y == 0)).sum())
                    for t in GRID])
    width = int(round(SMOOTH / 0.01))
    return raw, np.array([raw[max(0, i - width): i + width + 1].mean() for i in range(len(GRID))])


def fit_model(data: list[Row], names: list[str], cost: float, l2: float = L2) -> Model:
    """Fit the coefficients on these rows and choose the threshold (`chosen`)."""
    X = np.array([[r.x[k] for k in names] for r in data], float)
    w, b = fit(X, np.array([r.y for r in data]), l2=l2)
    return chosen(data, {k: round(float(v), 3) for k, v in zip(names, w)}, round(b, 3), cost)


def chosen(data: list[Row], coefficients: dict[str, float], intercept: float, cost: float) -> Model:
    """The model with these constants and the threshold chosen on these rows: the lowest of the plateau,
    the thresholds within one question's gain of the best smoothed gain (the best single point moves
    along it whenever the content changes); all are equally good at this cost, its lowest refuses least."""
    model = Model(coefficients, intercept, 0.0, (0.0, 0.0), 0.0)
    _, smoothed = gains(confidences(model, data), np.array([r.y for r in data]), np.array([r.topic for r in data]), cost)
    plateau = GRID[smoothed >= smoothed.max() - 1.0]
    return model._replace(threshold=float(plateau.min()), plateau=(float(plateau.min()), float(plateau.max())),
                          gain=float(smoothed.max()))


def confidences(model: Model, data: list[Row]) -> np.ndarray:
    """The model's confidence of each row."""
    return np.array([1.0 / (1.0 + np.exp(-(model.intercept + sum(c * r.x[k] for k, c in model.coefficients.items()))))
                     for r in data])


@contextmanager
def using(retriever: Retriever, model: Model) -> Iterator[None]:
    """decide.py's constants (and features, with the model's candidates) replaced by the model's for a while."""
    saved = D.COEFFICIENTS, D.INTERCEPT, D.features
    D.COEFFICIENTS, D.INTERCEPT = model.coefficients, model.intercept
    D.features = features_with(retriever, [k for k in model.coefficients if k in CANDIDATES])
    try:
        yield
    finally:
        D.COEFFICIENTS, D.INTERCEPT, D.features = saved


def answered(retriever: Retriever, items: list[EvalItem], model: Model) -> dict:
    """`ohbot eval answers`' summary of a set answered with the model's constants and threshold."""
    judged = []
    with using(retriever, model):
        for item in items:
            result = answer_query(retriever, analyse(item.question, retriever.encode), threshold=model.threshold)
            judged.append(judge(item, result.decision, result.text, result.confidence, result.draft))
    return summarise(judged)


def figures(summary: dict) -> tuple[float | None, int, int, int]:
    """In-scope AUC, correct, wrong and in-scope n of an eval summary."""
    ins = summary["in_scope"]
    return summary["auc_in_scope"], ins["correct"], ins["status"].get("wrong", 0), ins["n"]


def loso(retriever: Retriever, sets: list[Path], names: list[str], cost: float, l2: float = L2) -> None:
    """Leave-one-set-out: each set answered with constants fitted and chosen on the others (and the negatives),
    against today's constants (and today's coefficients with the threshold the others choose); a table,
    means and sums."""
    negatives = [r for name in NEGATIVES for r in rows(retriever, set_path(name))]
    data = {set_name(p): rows(retriever, p) for p in sets}
    today = Model(dict(D.COEFFICIENTS), D.INTERCEPT, D.THRESHOLD, (D.THRESHOLD, D.THRESHOLD), 0.0)
    print(f"features: {', '.join(names)}; cost {cost:g}; ridge {l2:g}; fitted on {sum(map(len, data.values()))} questions "
          f"of {len(data)} sets + {len(negatives)} negatives")
    columns = ("today", "today+t", "loso")
    print(f"{'held out':12} {'n':>4} " + "".join(f"| {c + ' AUC':>11} {'C':>3} {'W':>3} {'C-2W':>5} " for c in columns)
          + "| LOSO threshold (plateau), coefficients")
    totals = {c: [0, 0] for c in columns}
    aucs: dict[str, list[float]] = {c: [] for c in columns}
    for path in sets:
        held = set_name(path)
        train = negatives + [r for name, rs in data.items() if name != held for r in rs]
        model = fit_model(train, names, cost, l2)
        # today's coefficients with the threshold the other sets choose for them
        retuned = chosen(train, today.coefficients, today.intercept, cost)
        items = load_items(path)
        line = f"{held:12} "
        for label, m in zip(columns, (today, retuned, model)):
            a, c, w, n = figures(answered(retriever, items, m))
            totals[label][0] += c
            totals[label][1] += w
            aucs[label].append(a if a is not None else float("nan"))
            line += (f"{n:4} " if label == "today" else "") + f"| {a if a is not None else float('nan'):11.3f} {c:3} {w:3} {c - cost * w:5.0f} "
        coefs = " ".join(f"{k} {v:.2f}" for k, v in model.coefficients.items())
        print(f"{line}| {model.threshold:.2f} ({model.plateau[0]:.2f}–{model.plateau[1]:.2f}) {coefs} b {model.intercept:.2f}"
              f"; today's: {retuned.threshold:.2f}")
    for label in columns:
        c, w = totals[label]
        print(f"{label:8}: mean in-scope AUC {np.nanmean(aucs[label]):.3f}; held out: correct {c}, wrong {w}, "
              f"correct − {cost:g} × wrong {c - cost * w:.0f}")


def calibrate(retriever: Retriever, sets: list[Path], names: list[str], cost: float, curve: bool,
              l2: float = L2) -> None:
    """Fit on the sets (and the negatives), print the constants and the in-scope figures at the chosen threshold."""
    data = [r for p in [*sets, *map(set_path, NEGATIVES)] for r in rows(retriever, p)]
    model = fit_model(data, names, cost, l2)
    p = confidences(model, data)
    y = np.array([r.y for r in data])
    topic = np.array([r.topic for r in data])
    oh = np.array([r.oh for r in data])
    print(f"sets: {', '.join(set_name(s) for s in sets)} + {', '.join(NEGATIVES)}")
    print(f"questions: {len(y)}  right drafts: {int(y.sum())}  AUC on these sets: {auc(p, y):.3f}")
    if curve:
        raw, smoothed = gains(p, y, topic, cost)
        for t, gain, smooth in zip(GRID, raw, smoothed):
            shown = shown_at(p, topic, t)
            print(f"  {t:.2f}: gain {gain:5.0f} (smoothed {smooth:5.1f})  in scope right {(shown & (y == 1) & oh).sum():3d} "
                  f"wrong {(shown & (y == 0) & oh).sum():3d}  out of scope shown {(shown & ~oh).sum():3d}")
    print(f"plateau {model.plateau[0]:.2f}–{model.plateau[1]:.2f} (smoothed gain ≥ {model.gain - 1.0:.1f})")
    print("COEFFICIENTS = {" + ", ".join(f'"{k}": {v:.3f}' for k, v in model.coefficients.items()) + "}")
    print(f"INTERCEPT = {model.intercept:.3f}")
    print(f"THRESHOLD = {model.threshold:.2f}  (the plateau's lowest; best right − {cost:g} × wrong, averaged over "
          f"±{SMOOTH:g}: {model.gain:.1f})")
    shown = shown_at(p, topic, model.threshold)
    n = int(oh.sum())
    print(f"in scope at that threshold: right {(shown & (y == 1) & oh).sum() / n:.1%}, "
          f"wrong {(shown & (y == 0) & oh).sum() / n:.1%}, not shown {(~shown & oh).sum() / n:.1%}")


def main() -> None:
    """Fit and print the constants, or (--loso) measure them leave-one-set-out."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--cost", type=float, default=2.0, help="a wrong answer costs this many right ones")
    parser.add_argument("--curve", action="store_true", help="print the gain at every threshold")
    parser.add_argument("--sets", nargs="+", help="sets to fit on (names of tests/eval or paths); "
                        f"default {' '.join(AUTHORED)}, with --loso {' '.join(FOLDS)} and the shared dev set")
    parser.add_argument("--extra", action="append", default=[], help="another set to fit on (as --sets adds)")
    parser.add_argument("--feature", action="append", default=[], choices=sorted(CANDIDATES),
                        help="a candidate feature to add to decide.features")
    parser.add_argument("--l2", type=float, default=L2, help="ridge penalty on the standardised coefficients")
    parser.add_argument("--loso", action="store_true", help="measure leave-one-set-out against today's constants")
    args = parser.parse_args()
    default = [*FOLDS, *([str(DEV)] if DEV.exists() else [])] if args.loso else list(AUTHORED)
    sets = [set_path(s) for s in (args.sets or default) + args.extra]
    names = list(D.COEFFICIENTS) + [f for f in args.feature if f not in D.COEFFICIENTS]
    retriever = open_retriever(load_settings(args.data_dir))
    if args.loso:
        loso(retriever, sets, names, args.cost, args.l2)
    else:
        calibrate(retriever, sets, names, args.cost, args.curve, args.l2)


if __name__ == "__main__":
    main()
