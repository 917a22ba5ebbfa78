"""Pure statistics for quiz campaigns: awareness rates against a target, and item analysis.

Why this module exists: health bureaus use the quiz campaigns to estimate the
重点人群职业健康知识知晓率 and compare it with a target (85 % by default). A bare
percentage over a few dozen respondents says little, so every rate is reported with a
Wilson score interval, and a group is only called "met" / "not met" when the whole
interval lies on one side of the target. Item analysis (difficulty, discrimination)
tells the content team which quiz items measure badly.

Everything here is pure: numbers in, numbers out, no I/O, no numpy needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.config import AWARENESS_TARGET, MIN_GROUP_N

__all__ = [
    "Z95",
    "MAX_EXTRA_N",
    "Status",
    "TargetStatus",
    "wilson_interval",
    "wilson_interval_rate",
    "target_status",
    "extra_n_to_decide",
    "item_difficulty",
    "upper_lower_discrimination",
    "point_biserial",
    "is_negative_discrimination",
    "upper_lower_discrimination_grouped",
    "point_biserial_grouped",
]

#: Two-sided 95 % normal quantile, the default z of every interval here.
Z95: float = 1.959963984540054

#: How far `extra_n` searches before giving up (additional respondents).
MAX_EXTRA_N: int = 1_000_000

#: Share of respondents in each of the upper and lower groups (Kelley's 27 %).
UPPER_LOWER_FRACTION: float = 0.27

Status = Literal["met", "not_met", "undecided", "no_data"]

# Tolerance for "the observed rate equals the target": rates are ratios of small
# integers and targets are decimal literals, so exact float equality is not reliable.
_EQ_TOL = 1e-12


def wilson_interval_rate(rate: float, n: int | float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for an observed proportion `rate` over `n` trials.

    Same closed form as `wilson_interval`, but takes the rate directly so that
    "what if the observed rate held with more respondents" can be asked without
    rounding the number of successes to an integer (used by `extra_n_to_decide`).
    n = 0 gives the uninformative (0.0, 1.0).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if n == 0:
        return (0.0, 1.0)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (rate + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(rate * (1.0 - rate) / n + z2 / (4.0 * n * n))
    low = max(0.0, centre - half)
    high = min(1.0, centre + half)
    # The closed form gives exactly 0 / 1 at the extremes; pin them against rounding.
    if rate == 0.0:
        low = 0.0
    if rate == 1.0:
        high = 1.0
    return (low, high)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (default 95 %) for `successes` out of `n`.

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and keeps
    close to nominal coverage for small groups and rates near 0 or 1, which is exactly
    the situation of an awareness rate around 85 % in a small enterprise.
    n = 0 returns (0.0, 1.0): no data, every rate is possible.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    return wilson_interval_rate(successes / n, n, z)


def _decision(low: float, high: float, target: float) -> Status:
    """Status of an interval against the target: met, not_met or undecided."""
    if low >= target:
        return "met"
    if high < target:
        return "not_met"
    return "undecided"


def extra_n_to_decide(
    aware: int,
    n: int,
    target: float = AWARENESS_TARGET,
    z: float = Z95,
    max_extra: int = MAX_EXTRA_N,
) -> int | None:
    """Smallest number of additional respondents that would decide the status.

    Assumes the observed rate aware/n holds unchanged for the larger sample (the
    number of successes is then rate × total, not rounded) and searches the smallest
    total N > n whose Wilson interval lies entirely at or above the target ("met")
    or entirely below it ("not_met"); returns N − n.

    Returns None when there is no data, when the observed rate equals the target
    (the interval always straddles it), or when more than `max_extra` additional
    respondents would be needed. Returns 0 when the status is already decided.

    For a fixed rate the Wilson lower bound rises and the upper bound falls as N
    grows, so "decided at N" is monotone in N and a doubling + bisection search
    finds the exact smallest N quickly.
    """
    if n <= 0:
        return None
    rate = aware / n
    if math.isclose(rate, target, rel_tol=_EQ_TOL, abs_tol=_EQ_TOL):
        return None

    def decided(total: int) -> bool:
        low, high = wilson_interval_rate(rate, total, z)
        return _decision(low, high, target) != "undecided"

    if decided(n):
        return 0
    limit = n + max_extra
    lo, hi = n, n + 1  # invariant: undecided at lo
    while not decided(hi):
        if hi >= limit:
            return None
        lo, hi = hi, min(limit, n + 2 * (hi - n))
    while hi - lo > 1:  # decided at hi, undecided at lo
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid
    return hi - n


@dataclass(frozen=True)
class TargetStatus:
    """An awareness count judged against the target.

    status: "met" (CI lower bound ≥ target), "not_met" (CI upper bound < target),
    "undecided" (the interval contains the target) or "no_data" (n = 0).
    small_sample: n < min_n; such groups are shown but flagged and not ranked.
    extra_n: for undecided groups, additional respondents needed to decide if the
    observed rate held (see `extra_n_to_decide`); None otherwise.
    rate is None when n = 0; ci_low/ci_high are the Wilson bounds.
    """

    n: int
    aware: int
    rate: float | None
    ci_low: float
    ci_high: float
    status: Status
    small_sample: bool
    extra_n: int | None


def target_status(
    aware: int,
    n: int,
    target: float = AWARENESS_TARGET,
    min_n: int = MIN_GROUP_N,
    z: float = Z95,
) -> TargetStatus:
    """Judge `aware` out of `n` against `target` with a Wilson interval.

    Why interval-based: a group at 83 % of 40 respondents has not shown that it misses
    85 %; calling it "not met" would push bureaus to act on noise. Groups smaller than
    `min_n` get `small_sample=True` so reports list them without ranking them.
    """
    low, high = wilson_interval(aware, n, z)
    if n == 0:
        return TargetStatus(n=0, aware=0, rate=None, ci_low=low, ci_high=high,
                            status="no_data", small_sample=True, extra_n=None)
    status = _decision(low, high, target)
    extra = extra_n_to_decide(aware, n, target, z) if status == "undecided" else None
    return TargetStatus(n=n, aware=aware, rate=aware / n, ci_low=low, ci_high=high,
                        status=status, small_sample=n < min_n, extra_n=extra)


# --------------------------------------------------------------------------- items


def item_difficulty(correct: Sequence[bool]) -> float:
    """Classical difficulty index p: the share of answers that are correct.

    Higher means easier (p = 0.95 is an item almost everybody gets right). Raises
    ValueError for an empty list, since an item nobody answered has no difficulty.
    """
    if len(correct) == 0:
        raise ValueError("item_difficulty needs at least one answer")
    return sum(1 for c in correct if c) / len(correct)


def _check_pairs(item_correct: Sequence[bool], total_scores: Sequence[float]) -> None:
    if len(item_correct) != len(total_scores):
        raise ValueError(
            f"item_correct and total_scores differ in length: {len(item_correct)} != {len(total_scores)}"
        )


def upper_lower_discrimination(
    item_correct: Sequence[bool],
    total_scores: Sequence[float],
    fraction: float = UPPER_LOWER_FRACTION,
) -> float | None:
    """Discrimination index D = p(upper group) − p(lower group) (Kelley's 27 % groups).

    Respondents are ranked by `total_scores`; the top and bottom k = round(fraction·N)
    (at least 1) form the upper and lower groups. Ties at a group boundary are broken
    by input order (a stable sort), which keeps the result deterministic.
    D ranges from −1 to 1; D < 0 means weaker respondents do better on the item than
    stronger ones, usually a wrong key or a misleading stem.

    Pass whatever score the caller wants to rank by: `bot.awareness.report` passes the rest
    score (score rate on the other items) so the item does not rank on itself.
    Returns None with fewer than 2 respondents or when all scores are equal (no
    upper and lower group to speak of).
    """
    _check_pairs(item_correct, total_scores)
    n = len(item_correct)
    if n < 2 or min(total_scores) == max(total_scores):
        return None
    k = max(1, round(fraction * n))
    k = min(k, n // 2)
    order = sorted(range(n), key=lambda i: total_scores[i])
    lower = order[:k]
    upper = order[-k:]
    p_upper = sum(1 for i in upper if item_correct[i]) / k
    p_lower = sum(1 for i in lower if item_correct[i]) / k
    return p_upper - p_lower


def point_biserial(
    item_correct: Sequence[bool],
    total_scores: Sequence[float],
    rest: bool = True,
) -> float | None:
    """Point-biserial correlation between an item (0/1) and a score.

    With `rest=True` (default) `total_scores` must be number-correct totals that
    include this item; the item is subtracted first, giving the corrected item–total
    (item–rest) correlation. That avoids the part–whole inflation of the plain
    item–total correlation, which is large on short quizzes (an item is 1/10 of a
    10-item form). With `rest=False` the scores are used as given — `bot.awareness.report`
    does that, passing rest score *rates* already computed per respondent because
    forms may differ in length.

    r = (M1 − M0) / s · √(p·q), i.e. the Pearson correlation with the 0/1 item.
    Returns None with fewer than 2 respondents or when the item or the scores have no
    variance (everybody right, everybody wrong, or all scores equal).
    """
    _check_pairs(item_correct, total_scores)
    n = len(item_correct)
    if n < 2:
        return None
    x = [1.0 if c else 0.0 for c in item_correct]
    y = [float(s) - xi for s, xi in zip(total_scores, x)] if rest else [float(s) for s in total_scores]
    mx = sum(x) / n
    my = sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0.0 or syy <= 1e-15 * max(1.0, my * my) * n:
        return None
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    r = sxy / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def is_negative_discrimination(discrimination: float | None, pb: float | None) -> bool:
    """True when either discrimination statistic is below zero.

    Such an item is answered correctly more often by low scorers than by high scorers:
    it should be reviewed (wrong key, ambiguous stem, trick distractor).
    """
    return (discrimination is not None and discrimination < 0) or (pb is not None and pb < 0)


# --------------------------------------------------------------------------- items, grouped
# The same two statistics over respondents given as groups (a report aggregated in the database sends
# counts, not 10^6 respondents): a group is a rest score with how many respondents of that score got
# the item wrong and right. Counts and interval bounds are exactly those of the functions above; the
# point-biserial sums are formed in another order, so it may differ from `point_biserial` in the last
# bits of a float.


def upper_lower_discrimination_grouped(
    groups: Sequence[tuple[float, int, int]],
    tie: Callable[[float, str, int], int],
    fraction: float = UPPER_LOWER_FRACTION,
) -> float | None:
    """`upper_lower_discrimination` over (score, respondents wrong, respondents right) groups sorted by
    score ascending (respondents of one score in input order: their stable-sort order).

    tie(score, side, m): of the first ("lower") or last ("upper") m respondents of that score, in input
    order, how many got the item right. It is asked only when the k-th respondent falls inside a group
    that holds both right and wrong answers, since only then does the order within the group matter.
    """
    n = sum(n0 + n1 for _, n0, n1 in groups)
    if n < 2 or groups[0][0] == groups[-1][0]:
        return None
    k = max(1, round(fraction * n))
    k = min(k, n // 2)

    def right_among(seq: Iterable[tuple[float, int, int]], side: str) -> int:
        left, right = k, 0
        for score, n0, n1 in seq:
            if n0 + n1 <= left:
                right += n1
                left -= n0 + n1
            else:
                right += left if n0 == 0 else 0 if n1 == 0 else tie(score, side, left)
                left = 0
            if left == 0:
                break
        return right

    p_lower = right_among(groups, "lower") / k
    p_upper = right_among(reversed(groups), "upper") / k
    return p_upper - p_lower


def point_biserial_grouped(pairs: Sequence[tuple[bool, float, int]]) -> float | None:
    """`point_biserial(..., rest=False)` over (item correct, score, respondents) groups."""
    n = sum(c for _, _, c in pairs)
    if n < 2:
        return None
    xs = [(1.0 if x else 0.0, float(y), c) for x, y, c in pairs]
    mx = sum(x * c for x, _, c in xs) / n
    my = sum(y * c for _, y, c in xs) / n
    sxx = sum(c * (x - mx) ** 2 for x, _, c in xs)
    syy = sum(c * (y - my) ** 2 for _, y, c in xs)
    if sxx == 0.0 or syy <= 1e-15 * max(1.0, my * my) * n:
        return None
    sxy = sum(c * (x - mx) * (y - my) for x, y, c in xs)
    r = sxy / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))
