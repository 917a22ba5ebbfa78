"""`ohbot eval answers FILE`: what users see, judged per question.

A question set is JSON lines in one of two forms:

* real-question rows (tests/eval/README-real.md): `question`, `scope` (oh | labour | medical |
  other), `must` (alternative groups of strings), `must_not`, `door`, `kind`;
* authored rows (tests/eval/materials-*.jsonl, ood.jsonl, near-ood.jsonl): `q`, `gold`, `kind`.
  `gold` becomes `must`; a row without gold is out of scope (`kind: ood` → other, `near_ood` → near:
  a workplace question outside occupational health, right when it is not answered from our texts).

Each answer is judged on the text the user is shown (not on the passages behind it):

* in scope (`oh`): **correct** = answered, every string of one `must` group present, no `must_not`
  string, and one `door` string when the row has doors (work-injury rows); **wrong** = answered but
  not correct (of which **false claim** = a `must_not` string is present); **refused** = the
  refusal; **referred** = sent to another door instead of answered.
* out of scope (`labour`, `medical`): **referral right** = not answered from our texts, one `door`
  string named, no `must_not`; `other` and `near`: right = not answered from our texts and no
  `must_not` string; **answered** = an occupational-health answer was shown (always wrong here).

`confidence` (0–1) is the answerer's own; the ROC-AUC says how well it ranks right answers above
everything else, over the in-scope questions and over all questions (where an out-of-scope
question can never have a right occupational-health answer). "Right" here is judged on the
occupational-health answer the bot drafted, shown or not (when the answerer reports its draft),
so that the AUC measures the confidence itself and not the threshold that used it.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.errors import InputError
from bot.text.normalize import normalize

SCOPES = ("oh", "labour", "medical", "other", "near")


@dataclass
class EvalItem:
    """One question to judge, in the real-question form."""
    id: str
    question: str
    scope: str
    must: list[list[str]] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)
    door: list[str] = field(default_factory=list)
    kind: str = "?"


@dataclass
class Judged:
    """The verdict on one answer."""
    id: str
    question: str
    scope: str
    kind: str
    decision: str  # answer | refer | refuse (what the bot did)
    status: str  # correct | wrong | refused | referred (in scope); right | answered | no_door | bad (out of scope)
    correct: bool  # the row's success: a right answer in scope, a right referral/refusal out of scope
    shown_right: bool  # the occupational-health answer (shown or drafted) is right: AUC's positive class
    false_claim: bool
    door_named: bool
    confidence: float
    answer: str


def load_items(path: Path) -> list[EvalItem]:
    """Rows of a question set in either form (see the module docstring); errors name the line."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if "question" in row and "scope" in row:
            if row["scope"] not in SCOPES:
                raise InputError(f"{path}:{n}: unknown scope {row['scope']!r}")
            items.append(EvalItem(
                id=str(row.get("id", n)), question=row["question"], scope=row["scope"],
                must=row.get("must") or [], must_not=row.get("must_not") or [], door=row.get("door") or [],
                kind=row.get("kind", "?")))
        elif "q" in row and "gold" in row:
            kind = row.get("kind", "?")
            scope = "oh" if row["gold"] else ("near" if kind == "near_ood" else "other")
            items.append(EvalItem(id=str(row.get("id", n)), question=row["q"], scope=scope,
                                  must=row["gold"], kind=kind))
        else:
            raise InputError(f"{path}:{n}: needs 'question' and 'scope' (real set) or 'q' and 'gold'")
    return items


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_NUMERAL_RUN = re.compile(f"[{''.join(_DIGITS)}{''.join(_UNITS)}]+")


def _numeral_value(run: str) -> int | None:
    """The value of a Chinese numeral (十五 → 15, 三十 → 30, 一百二十 → 120), None when the run of
    numeral characters is not one number (十四五, 一一)."""
    total = section = 0
    digit: int | None = None
    for ch in run:
        if ch in _DIGITS:
            if digit is not None:
                return None
            digit = _DIGITS[ch]
        elif ch == "万":
            section = (section + (digit or 0)) * 10000
            total, section, digit = total + section, 0, None
        else:
            unit = _UNITS[ch]
            section += (1 if digit is None else digit) * unit
            digit = None
    return total + section + (digit or 0)


def fold_numerals(text: str) -> str:
    """Chinese numerals as digits, so that 三十日 and 30日, 十五日 and 15日 match (a reference written
    with digits, an answer quoting a law's 三十日); runs that are not one number stay as they are."""
    def one(m: re.Match) -> str:
        value = _numeral_value(m.group())
        return m.group() if value is None else str(value)
    return _NUMERAL_RUN.sub(one, text)


def matching_form(text: str) -> str:
    """What answers and `must` strings are compared in: normalised (script, width, case), numerals as digits."""
    return fold_numerals(normalize(text))


def contains(text: str, needle: str) -> bool:
    """Substring test of a needle in a text already in the matching form."""
    return matching_form(needle) in text


def judge(item: EvalItem, decision: str, text: str, confidence: float, draft: str | None = None) -> Judged:
    """The verdict on one answer: `decision` is answer | refer | refuse, `text` what was shown,
    `draft` the occupational-health answer the bot would have shown (for the AUC: is the answer
    that the confidence is about right, whether or not it was shown)."""
    norm = matching_form(text)
    false_claim = any(contains(norm, s) for s in item.must_not)
    door_named = any(contains(norm, s) for s in item.door)
    has_must = any(group and all(contains(norm, s) for s in group) for group in item.must)
    if item.scope == "oh":
        correct = decision == "answer" and has_must and not false_claim and (door_named or not item.door)
        status = "correct" if correct else {"answer": "wrong", "refuse": "refused", "refer": "referred"}[decision]
        right = correct if draft is None else holds(item, draft)
    else:
        if decision == "answer":
            status = "answered"
        elif false_claim:
            status = "bad"
        elif item.scope in ("labour", "medical") and not door_named:
            status = "no_door"
        else:
            status = "right"
        correct = status == "right"
        right = False
    return Judged(item.id, item.question, item.scope, item.kind, decision, status, correct, right,
                  false_claim, door_named, round(float(confidence), 4), text)


def holds(item: EvalItem, text: str) -> bool:
    """Whether a text (a drafted answer, a unit's section) has one of the item's must groups and none
    of its must_not strings; doors are not asked of it (they are added to an answer when it is shown)."""
    norm = matching_form(text)
    return (any(group and all(contains(norm, s) for s in group) for group in item.must)
            and not any(contains(norm, s) for s in item.must_not))


def roc_auc(scores: list[float], positive: list[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half); None when one class is empty."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def summarise(judged: list[Judged]) -> dict:
    """Counts and rates overall, per scope and per kind, and the two AUCs. In each cell `correct` is
    the number of rows that went right (a right answer in scope, a right referral or refusal out of
    scope) and `status` counts every status."""
    def cell(rows: list[Judged]) -> dict:
        """n, successes, their rate, every status's count and the false claims of one group."""
        counts: dict[str, int] = defaultdict(int)
        for r in rows:
            counts[r.status] += 1
        n = len(rows)
        right = sum(r.correct for r in rows)
        return {"n": n, "correct": right, "rate": round(right / n, 4) if n else None,
                "status": dict(sorted(counts.items())),
                "false_claim": sum(r.false_claim and r.decision == "answer" for r in rows)}

    by_scope = defaultdict(list)
    by_kind = defaultdict(list)
    for r in judged:
        by_scope[r.scope].append(r)
        by_kind[f"{r.scope}/{r.kind}"].append(r)
    in_scope = by_scope.get("oh", [])
    out_scope = [r for r in judged if r.scope != "oh"]
    return {
        "n": len(judged),
        "all": cell(judged),
        "in_scope": cell(in_scope),
        "out_of_scope": cell(out_scope),
        "by_scope": {s: cell(rows) for s, rows in sorted(by_scope.items())},
        "by_kind": {k: cell(rows) for k, rows in sorted(by_kind.items())},
        "auc_in_scope": _round(roc_auc([r.confidence for r in in_scope], [r.shown_right for r in in_scope])),
        "auc_all": _round(roc_auc([r.confidence for r in judged], [r.shown_right for r in judged])),
    }


def _round(x: float | None) -> float | None:
    """Four decimals, None kept."""
    return None if x is None else round(x, 4)


AnswerFn = Callable[[str], tuple]  # question → (decision, text, confidence[, draft])


def evaluate_answers(items: Iterable[EvalItem], answer_fn: AnswerFn) -> tuple[dict, list[Judged]]:
    """Ask every question through `answer_fn` and judge it; the summary and the per-row verdicts.
    `answer_fn` returns (decision, text, confidence) or (decision, text, confidence, draft)."""
    judged = []
    for item in items:
        decision, text, confidence, *draft = answer_fn(item.question)
        judged.append(judge(item, decision, text, confidence, draft[0] if draft else None))
    return summarise(judged), judged


def as_json(summary: dict, judged: list[Judged]) -> dict:
    """The machine-readable result of `ohbot eval answers --json`."""
    return {**summary, "questions": [asdict(j) for j in judged]}


def _pct(part: int, n: int) -> str:
    """A share as a fixed-width percentage, "-" for an empty group."""
    return f"{part / n:6.1%}" if n else "     -"


def format_report(summary: dict, judged: list[Judged], failures: bool = True) -> str:
    """The human-readable table: in scope, out of scope, per kind, AUC, then the failed rows."""
    ins, outs = summary["in_scope"], summary["out_of_scope"]
    si, so = ins["status"], outs["status"]
    lines = []
    if ins["n"]:
        n = ins["n"]
        lines.append(
            f"in scope      n={n:<4} correct {_pct(ins['correct'], n)}  wrong {_pct(si.get('wrong', 0), n)} "
            f"(false claim {ins['false_claim']})  refused {_pct(si.get('refused', 0), n)}  "
            f"referred {_pct(si.get('referred', 0), n)}")
    if outs["n"]:
        n = outs["n"]
        lines.append(
            f"out of scope  n={n:<4} right door/refusal {_pct(outs['correct'], n)}  "
            f"answered from our texts {_pct(so.get('answered', 0), n)}  no door named {_pct(so.get('no_door', 0), n)}"
            f"  bad {so.get('bad', 0)}")
    lines.append(f"AUC of confidence: in scope {summary['auc_in_scope']}  all {summary['auc_all']}")
    lines.append(f"{'scope/kind':<26} {'n':>4} {'right':>6}")
    for name, c in list(summary["by_scope"].items()) + list(summary["by_kind"].items()):
        lines.append(f"{name:<26} {c['n']:>4} {c['rate']:>6.1%}")
    if failures:
        bad = [j for j in judged if not j.correct]
        if bad:
            lines.append("not right:")
        for j in bad:
            shown = j.answer.replace("\n", " ")[:80]
            lines.append(f"  {j.id} [{j.scope}/{j.status} {j.confidence:.2f}] {j.question[:40]} → {shown}")
    return "\n".join(lines)
