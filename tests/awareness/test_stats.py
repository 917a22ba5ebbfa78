"""Tests for bot.awareness.stats: Wilson intervals, target status, extra_n and item analysis.

Expected values are computed independently here (the other algebraic form of the Wilson
bounds, hand-worked sums) or taken from published examples, never from bot.awareness.stats itself.
"""

from __future__ import annotations

import math

import pytest

from bot.awareness.stats import (  # noqa: E402
    Z95,
    TargetStatus,
    extra_n_to_decide,
    is_negative_discrimination,
    item_difficulty,
    point_biserial,
    target_status,
    upper_lower_discrimination,
    wilson_interval,
    wilson_interval_rate,
)
from tests.helpers import wilson_by_hand

# --------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize("x,n", [(85, 100), (0, 10), (10, 10), (1, 2), (81, 263), (850, 1000), (3, 7)])
def test_wilson_matches_closed_form(x: int, n: int) -> None:
    lo, hi = wilson_interval(x, n)
    elo, ehi = wilson_by_hand(x, n)
    assert lo == pytest.approx(max(0.0, elo), abs=1e-12)
    assert hi == pytest.approx(min(1.0, ehi), abs=1e-12)


def test_wilson_85_of_100_known_values() -> None:
    lo, hi = wilson_interval(85, 100)
    assert lo == pytest.approx(0.7672, abs=5e-5)
    assert hi == pytest.approx(0.9069, abs=5e-5)


def test_wilson_published_81_of_263() -> None:
    lo, hi = wilson_interval(81, 263)
    assert round(lo, 4) == 0.2553
    assert round(hi, 4) == 0.3662


def test_wilson_extremes() -> None:
    z2 = Z95 ** 2
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(z2 / (10 + z2), abs=1e-12)  # closed form at x = 0
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0
    assert lo == pytest.approx(10 / (10 + z2), abs=1e-12)  # closed form at x = n
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_other_z_and_bad_input() -> None:
    lo, hi = wilson_interval(40, 50, z=1.0)
    elo, ehi = wilson_by_hand(40, 50, z=1.0)
    assert (lo, hi) == pytest.approx((elo, ehi))
    for x, n in [(-1, 5), (6, 5), (0, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(x, n)


def test_wilson_rate_form_agrees_with_counts() -> None:
    assert wilson_interval_rate(0.85, 100) == pytest.approx(wilson_interval(85, 100))


# --------------------------------------------------------------------------- status


def test_status_met() -> None:
    s = target_status(190, 200)  # 95 %: lower bound ≈ 0.910
    assert isinstance(s, TargetStatus)
    assert s.status == "met"
    assert s.ci_low >= 0.85
    assert s.extra_n is None and not s.small_sample
    assert s.rate == pytest.approx(0.95)


def test_status_not_met() -> None:
    s = target_status(60, 100)
    assert s.status == "not_met"
    assert s.ci_high < 0.85
    assert s.extra_n is None


def test_status_undecided_and_no_data() -> None:
    s = target_status(85, 100)
    assert s.status == "undecided"
    assert s.extra_n is None  # rate equals target exactly: never decidable
    s = target_status(0, 0)
    assert s.status == "no_data"
    assert s.rate is None and s.extra_n is None and s.small_sample
    assert (s.ci_low, s.ci_high) == (0.0, 1.0)


def test_all_and_none_aware() -> None:
    s = target_status(50, 50)
    assert s.rate == 1.0 and s.ci_high == 1.0
    assert s.status == "met"  # lower bound 50/(50+z²) ≈ 0.929
    s = target_status(0, 50)
    assert s.rate == 0.0 and s.ci_low == 0.0 and s.status == "not_met"


def test_small_sample_flag() -> None:
    assert target_status(10, 10).small_sample
    assert target_status(29, 29).small_sample
    assert not target_status(30, 30).small_sample
    assert target_status(30, 30, min_n=31).small_sample
    # small sample does not change the decision itself
    assert target_status(29, 29).status == "met"


@pytest.mark.parametrize("aware,n", [(90, 100), (80, 100), (30, 40), (27, 30), (45, 50), (7, 10)])
def test_extra_n_really_decides(aware: int, n: int) -> None:
    s = target_status(aware, n)
    assert s.status == "undecided"
    extra = s.extra_n
    assert extra is not None and extra > 0
    rate = aware / n
    want = "met" if rate > 0.85 else "not_met"

    def status_at(total: int) -> str:
        # the observed rate held: successes = rate × total (possibly fractional)
        x = rate * total
        root = Z95 * math.sqrt(Z95 ** 2 + 4.0 * x * (total - x) / total)
        den = 2.0 * (total + Z95 ** 2)
        lo, hi = (2 * x + Z95 ** 2 - root) / den, (2 * x + Z95 ** 2 + root) / den
        return "met" if lo >= 0.85 else "not_met" if hi < 0.85 else "undecided"

    assert status_at(n + extra) == want
    assert status_at(n + extra - 1) == "undecided"


def test_extra_n_integer_example() -> None:
    # 90 % held over 100 + 96 = 196 respondents would be met, so with integer counts
    # a larger sample at the same rate (e.g. 180/200) must be met too.
    assert target_status(90, 100).extra_n == 96
    assert target_status(180, 200).status == "met"
    assert target_status(171, 190).status == "undecided"  # 90 % of 190 < 196: not yet


def test_extra_n_already_decided_and_limits() -> None:
    assert extra_n_to_decide(190, 200) == 0
    assert extra_n_to_decide(0, 0) is None
    assert extra_n_to_decide(17, 20) is None  # 85 % exactly
    # 85.1 % needs about 489k more: found within the default limit, not within a small one
    assert extra_n_to_decide(851, 1000) is not None
    assert extra_n_to_decide(851, 1000, max_extra=1000) is None


# --------------------------------------------------------------------------- items


def test_item_difficulty() -> None:
    assert item_difficulty([True, True, False, True]) == 0.75
    assert item_difficulty([False]) == 0.0
    with pytest.raises(ValueError):
        item_difficulty([])


def test_upper_lower_discrimination_hand_worked() -> None:
    # 10 respondents: k = round(0.27·10) = 3. Lowest three scores 1,2,3; highest 8,9,10.
    scores = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    item = [False, False, True, False, True, True, False, True, True, True]
    # upper (8,9,10): 3/3 correct; lower (1,2,3): 1/3 → D = 2/3
    assert upper_lower_discrimination(item, scores) == pytest.approx(2 / 3)
    reversed_item = [not c for c in item]
    assert upper_lower_discrimination(reversed_item, scores) == pytest.approx(-2 / 3)


def test_upper_lower_degenerate() -> None:
    assert upper_lower_discrimination([True], [1.0]) is None
    assert upper_lower_discrimination([True, False, True], [2, 2, 2]) is None
    with pytest.raises(ValueError):
        upper_lower_discrimination([True, False], [1.0])


def test_point_biserial_matches_formula_on_rest_score() -> None:
    item = [True, True, True, False, False, True, False, True]
    totals = [9, 8, 7, 3, 5, 6, 2, 8]  # number correct, including this item
    rest = [t - (1 if c else 0) for t, c in zip(totals, item)]
    # r_pb = (M1 − M0)/s · √(p q), s the population SD of the rest scores
    m1 = sum(r for r, c in zip(rest, item) if c) / sum(item)
    m0 = sum(r for r, c in zip(rest, item) if not c) / (len(item) - sum(item))
    mean = sum(rest) / len(rest)
    s = math.sqrt(sum((r - mean) ** 2 for r in rest) / len(rest))
    p = sum(item) / len(item)
    expected = (m1 - m0) / s * math.sqrt(p * (1 - p))
    assert point_biserial(item, totals) == pytest.approx(expected)
    assert point_biserial(item, rest, rest=False) == pytest.approx(expected)
    # without correction the item–total correlation is larger (part–whole inflation)
    assert point_biserial(item, totals, rest=False) > expected


def test_point_biserial_degenerate() -> None:
    assert point_biserial([True, True, True], [1, 2, 3], rest=False) is None
    assert point_biserial([True, False, True], [0.5, 0.5, 0.5], rest=False) is None
    assert point_biserial([True], [1.0]) is None


def test_negative_discrimination_flag() -> None:
    assert is_negative_discrimination(-0.1, 0.2)
    assert is_negative_discrimination(0.1, -0.01)
    assert not is_negative_discrimination(0.0, 0.3)
    assert not is_negative_discrimination(None, None)
